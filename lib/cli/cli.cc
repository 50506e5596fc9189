#include "cli/cli.h"

#include <memory>
#include <ostream>
#include <string>
#include <utility>
#include <variant>

#include "base/json_text.h"
#include "base/secrets.h"
#include "cli/args.h"
#include "cli/commands.h"
#include "cli/context.h"
#include "cli/source.h"

namespace deltatap {

namespace cli {
namespace {

// The token in `path`, read as the daemon reads its token files
// (base/secrets.h): a file that group or others may read is refused, one
// trailing newline is dropped. The token goes into the Authorization header,
// so an empty one, or one with white space or control bytes (a second line),
// is refused rather than sent broken; the message names the file, never the
// token.
Result<std::string> read_token_file(const std::string& path) {
  auto text = read_secret_file(path);
  if (!text.ok()) return text;
  if (text->empty()) return Error{json_quoted(path) + ": the file is empty (expected the token)"};
  for (unsigned char c : *text) {
    if (c <= 0x20 || c == 0x7f) {
      return Error{json_quoted(path) + ": the token contains white space or a control "
                                       "character (expected the token alone, on one line)"};
    }
  }
  return text;
}

// Opens the source the invocation names and points ctx.source (and, with --db,
// ctx.file) at it; `owner` keeps it. Returns kExitOk, or the exit code after the
// reason was reported.
int open_source(Context& ctx, std::unique_ptr<Source>& owner) {
  const Invocation& inv = ctx.inv;
  if (inv.command == "migrate") {
    if (!inv.db) return usage(ctx.io, "migrate works on a file: give it with --db");
    ctx.where = *inv.db;  // migrate_file opens it itself
    return kExitOk;
  }
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
      auto read = read_token_file(*inv.token_file);
      if (!read.ok()) return fail(ctx, "--token-file: " + read.error());
      token = std::move(read.value());
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
  if (command == "migrate") return cmd_migrate(ctx);
  if (command == "analytics") return cmd_analytics(ctx);
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
      if (!spec) return usage(io, "unknown command " + json_quoted(inv.positionals[0]));
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
  if (!spec) return usage(io, "unknown command " + json_quoted(inv.command));
  if (inv.help) {
    io.out << spec->help;
    return kExitOk;
  }
  if (static_cast<int>(inv.positionals.size()) != spec->positionals) {
    if (inv.command == "analytics") {
      return usage(io, "analytics needs exactly one of durations, approvals or heatmap");
    }
    return usage(io, spec->positionals == 0 ? inv.command + " takes no arguments, got " +
                                                  json_quoted(inv.positionals[0])
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
