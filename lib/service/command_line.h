// Command line: what deltatapd's arguments ask for. Options only, each as
// "--option value" or "--option=value"; "-h" is --help. An option given twice:
// the last one wins.
//
// An option that sets a key (--url, --token, --db, --http, --log-level,
// --log-format; --persist and --no-persist for [storage] enabled) is only
// recorded here, as an override: load_config (service/config.h) checks its
// value with the key's own rules, so an error reads the same whichever layer
// the value came from.
//
// Thread safety: no state is kept; safe to call from any thread.
#pragma once

#include <map>
#include <string>

#include "base/result.h"

namespace deltatap {

// What the command line asked for besides the options themselves.
struct CommandLine {
  std::string config_file;                   // --config
  bool check_config = false;
  bool version = false;
  bool help = false;
  std::map<std::string, std::string> overrides;  // "section.key" -> value
};

// On success, the options of argv[1] .. argv[argc - 1]. On error (an argument
// that is not an option, an unknown option, a missing value, a value given to
// an option that takes none, an empty --config) a message that names the
// option or quotes the argument (JSON-escaped).
Result<CommandLine> parse_command_line(int argc, const char* const* argv);

// deltatapd --help: the options with their environment variables and
// defaults, the token sources, the signals and the exit status.
extern const char* const kDeltatapdUsage;

}  // namespace deltatap
