// Config: the daemon's options, with their defaults beside them.
// Precedence: command-line flags > environment > config file (INI) > defaults.
// Every bad value is an error that names the key, the value and what is allowed;
// deltatapd turns it into exit code 2.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "api/http_options.h"
#include "base/logging.h"
#include "base/result.h"
#include "storage/storage_options.h"
#include "stream/stream_options.h"

namespace deltatap {

struct Config {
  std::string config_file;                   // "" when none was read
  StreamOptions stream;
  StorageOptions storage;
  RetentionOptions retention;
  HttpOptions http;
  LogOptions log;
};

// What the command line asked for besides the options themselves.
struct CommandLine {
  std::string config_file;                   // --config
  bool check_config = false;
  bool version = false;
  bool help = false;
  std::map<std::string, std::string> overrides;  // "section.key" -> value
};

Result<CommandLine> parse_command_line(int argc, const char* const* argv);

// Loads file (cmdline.config_file, else none), then environment, then flags.
// `environment` is consulted through this function so tests can pass their own.
using Environment = std::map<std::string, std::string>;
Environment process_environment();
Result<Config> load_config(const CommandLine& cmdline, const Environment& env);

// The effective configuration as INI text, secrets replaced by "(hidden)".
std::string describe_config(const Config& config);

extern const char* const kDeltatapdUsage;

}  // namespace deltatap
