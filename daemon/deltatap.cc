// deltatap: the command-line tool for the stored session-delta history.
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <iostream>
#include <string>
#include <vector>

#include "cli/cli.h"
#include "base/logging.h"

int main(int argc, char** argv) {
  std::ios::sync_with_stdio(false);
  // The library logs what the daemon would; for a command-line tool only
  // warnings and errors matter, and they go to stderr, never into the output.
  deltatap::init_logging({deltatap::LogLevel::warning, deltatap::LogFormat::text});
  std::vector<std::string> args(argv + 1, argv + argc);
  const char* no_color = std::getenv("NO_COLOR");
  const char* term = std::getenv("TERM");
  deltatap::CliIo io{std::cout, std::cerr, ::isatty(STDOUT_FILENO) == 1,
                     (no_color && *no_color) || (term && std::strcmp(term, "dumb") == 0)};
  int code = deltatap::run_cli(args, io);
  std::cout.flush();
  return std::cout.good() ? code : (code == 0 ? 1 : code);
}
