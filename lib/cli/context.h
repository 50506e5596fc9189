// context: what every command is run with, and the ways a command reports
// failure, so that every command words its errors and picks its exit code alike.
//
// Every message goes to the error stream as one line, "deltatap: MESSAGE".
// Nothing here is for use outside lib/cli/.
#pragma once

#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>

#include "cli/args.h"
#include "cli/cli.h"
#include "cli/human_text.h"
#include "cli/source.h"

namespace deltatap::cli {

// The exit codes cli.h promises.
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailed = 1;  // the operation failed
inline constexpr int kExitUsage = 2;   // unknown command or option, bad value

// Built by run_cli() once the source is open, and alive for the whole command.
// Holds references only: the streams, the invocation and the source belong to
// run_cli().
struct Context {
  const CliIo& io;
  const Invocation& inv;
  Style style;
  Source* source = nullptr;
  FileSource* file = nullptr;  // the same source as `source` with --db, else null
  std::string where;           // the file or URL, for messages
};

// Reports `message`; returns kExitFailed.
int fail(const Context& ctx, std::string_view message);

// Reports `message` with a pointer to --help; returns kExitUsage. Takes the
// streams alone, as it is needed before a Context exists.
int usage(const CliIo& io, std::string_view message);

// Reports an error answer from the API: its "error" and "detail" when the body
// has them, "HTTP STATUS" otherwise. Returns kExitUsage for a 400 (the user's
// input was refused), kExitFailed for anything else.
int api_error(const Context& ctx, const Answer& answer);

// Fetches from ctx.source (Source::fetch, `sink` included) and insists on a 2xx.
// Returns the answer; or reports the failure or the error answer, sets `code`
// to the exit code to end with, and returns nullopt.
std::optional<Answer> get_ok(const Context& ctx, std::string_view method,
                             const std::string& target, int& code, const Sink* sink = nullptr);

// The command's --format, `fallback` when not given. When it is not one of
// `allowed`, reports a usage error listing them, sets `code` to kExitUsage and
// returns nullopt.
std::optional<std::string> check_format(const Context& ctx,
                                        std::initializer_list<std::string_view> allowed,
                                        std::string_view fallback, int& code);

}  // namespace deltatap::cli
