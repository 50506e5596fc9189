// Config: the daemon's options, with their defaults beside them.
// Precedence: command-line flags > environment > config file (INI) > defaults.
// Every bad value is an error that names the key, the value and what is allowed;
// deltatapd turns it into exit code 2.
//
// The keys, their syntax and the environment variables and flags that set
// them are one table (service/config_keys.h); the command line is read by
// service/command_line.h, included here because load_config takes its result.
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
#include "service/command_line.h"
#include "sinks/postgres_options.h"
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
  PostgresOptions postgres;                  // off unless [postgres] url is set
};

// Loads file (cmdline.config_file, else none), then environment, then flags.
// `environment` is consulted through this function so tests can pass their own.
using Environment = std::map<std::string, std::string>;
Environment process_environment();
Result<Config> load_config(const CommandLine& cmdline, const Environment& env);

// The effective configuration as INI text, secrets replaced by "(hidden)":
// tokens, header values, and in URLs the user info and query values
// (base/redact.h). Without secrets, the text reads back as the same
// configuration.
std::string describe_config(const Config& config);

}  // namespace deltatap
