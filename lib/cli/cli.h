// The deltatap command-line tool: questions about the stored history, asked of a
// snapshot file (--db PATH, opened read-only so a running daemon is never
// disturbed) or of the live daemon's HTTP API (--url, default
// http://127.0.0.1:9477).
//
// Offline, the CLI answers through the same ApiHandler the daemon serves, so a
// command gives the same answer on a file as on the daemon that wrote it; for
// --format json the output is the API's answer itself. Human output (tables,
// the timeline) shows times in local time unless --utc, and uses colour only
// when stdout is a terminal (and NO_COLOR is unset). Exit codes: 0 done, 1 the
// operation failed (unreachable daemon, unreadable file, failed integrity
// check, server error), 2 usage (unknown command or option, bad value).
#pragma once

#include <iosfwd>
#include <string>
#include <vector>

namespace deltatap {

struct CliIo {
  std::ostream& out;
  std::ostream& err;
  bool out_is_terminal = false;  // colour is considered only then
  bool no_color = false;         // NO_COLOR set or TERM=dumb
};

// `args` are the arguments after the program name. Returns the exit code.
int run_cli(const std::vector<std::string>& args, const CliIo& io);

}  // namespace deltatap
