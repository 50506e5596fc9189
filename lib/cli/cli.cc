#include "cli/cli.h"

#include <fstream>
#include <memory>
#include <ostream>
#include <string>
#include <utility>
#include <variant>

#include "cli/args.h"
#include "cli/commands.h"
#include "cli/context.h"
#include "cli/source.h"

namespace deltatap {

namespace cli {
namespace {

// Opens the source the invocation names and points ctx.source (and, with --db,
// ctx.file) at it; `owner` keeps it. Returns kExitOk, or the exit code after the
// reason was reported.
int open_source(Context& ctx, std::unique_ptr<Source>& owner) {
  const Invocation& inv = ctx.inv;
  if (inv.db) {
    if (inv.command == "snapshot") {
      return usage(ctx.io, "snapshot asks the running daemon; it cannot work on a file (--db)");
    }
    ctx.where = *inv.db;
    // cleanup changes the database, so it works on a private in-memory copy
    // that is then written back atomically; everything else reads the file.
    auto file = FileSource::open(*inv.db, inv.command == "cleanup"
                                              ? FileSource::Access::private_copy
                                              : FileSource::Access::read_only);
    if (!file.ok()) return fail(ctx, file.error());
    ctx.file = file->get();
    owner = std::move(file.value());
  } else {
    std::string token = inv.token.value_or("");
    if (inv.token_file) {
      std::ifstream in(*inv.token_file);
      if (!in) return fail(ctx, "cannot read --token-file " + *inv.token_file);
      std::getline(in, token);
      while (!token.empty() && (token.back() == '\r' || token.back() == ' ')) token.pop_back();
    }
    ctx.where = inv.url.value_or(std::string(kDefaultUrl));
    auto live = LiveSource::create(ctx.where, token);
    if (!live.ok()) return usage(ctx.io, live.error());
    owner = std::move(live.value());
  }
  ctx.source = owner.get();
  return kExitOk;
}

int dispatch(Context& ctx) {
  const std::string& command = ctx.inv.command;
  if (command == "stats") return cmd_stats(ctx);
  if (command == "query") return cmd_query(ctx);
  if (command == "sessions") return cmd_sessions(ctx);
  if (command == "timeline") return cmd_timeline(ctx);
  if (command == "export") return cmd_export(ctx);
  if (command == "cleanup") return cmd_cleanup(ctx);
  if (command == "snapshot") return cmd_snapshot(ctx);
  return cmd_check(ctx);
}

}  // namespace
}  // namespace cli

int run_cli(const std::vector<std::string>& args, const CliIo& io) {
  using namespace cli;
  auto parsed = parse_args(args);
  if (auto* error = std::get_if<UsageError>(&parsed)) return usage(io, error->message);
  const Invocation& inv = std::get<Invocation>(parsed);
  if (inv.version) {
    io.out << "deltatap " << DELTATAP_VERSION << '\n';
    return kExitOk;
  }
  if (inv.command.empty() || inv.command == "help") {
    if (inv.command == "help" && !inv.positionals.empty()) {
      const CommandSpec* spec = find_command(inv.positionals[0]);
      if (!spec) return usage(io, "unknown command \"" + inv.positionals[0] + "\"");
      io.out << spec->help;
      return kExitOk;
    }
    if (inv.help || inv.command == "help") {
      io.out << kUsageText;
      return kExitOk;
    }
    io.err << kUsageText;
    return kExitUsage;
  }
  const CommandSpec* spec = find_command(inv.command);
  if (!spec) return usage(io, "unknown command \"" + inv.command + "\"");
  if (inv.help) {
    io.out << spec->help;
    return kExitOk;
  }
  if (static_cast<int>(inv.positionals.size()) != spec->positionals) {
    return usage(io, spec->positionals == 0
                         ? inv.command + " takes no arguments, got \"" + inv.positionals[0] + "\""
                         : inv.command + " needs exactly one SESSION_ID");
  }

  Context ctx{io, inv};
  ctx.style.utc = inv.utc;
  ctx.style.colour =
      inv.color == "always" || (inv.color == "auto" && io.out_is_terminal && !io.no_color);
  std::unique_ptr<Source> source;
  if (int code = open_source(ctx, source); code != kExitOk) return code;
  return dispatch(ctx);
}

}  // namespace deltatap
