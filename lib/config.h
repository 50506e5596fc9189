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

#include "result.h"

namespace deltatap {

using Millis = std::chrono::milliseconds;

struct StreamOptions {
  std::string url = "ws://127.0.0.1:3001/ws";
  std::string token;                         // sent as subprotocol "bearer.<token>"
  std::string token_file;                    // read at start when token is empty
  std::vector<std::string> headers;          // extra "Name: value" lines
  std::string ca_file;                       // extra CA for wss://
  bool insecure_skip_verify = false;         // warns at every connect
  Millis connect_timeout{10'000};            // resolve + connect + TLS + handshake
  Millis idle_timeout{90'000};               // no frame, ping or pong for this long
  Millis backoff_initial{500};
  Millis backoff_max{30'000};
  std::uint64_t max_message_bytes = 16u << 20;

  bool operator==(const StreamOptions&) const = default;
};

struct StorageOptions {
  bool enabled = false;                      // PERSIST=1, as the domain document says
  std::string path = "data/sessions.sqlite"; // relative to the working directory
  Millis snapshot_interval{60'000};
  bool journal = true;
  Millis journal_fsync_interval{100};
  std::uint64_t max_deltas = 0;              // 0: no limit; else the oldest are evicted
};

struct RetentionOptions {
  int days = 30;                             // 0 keeps everything
};

struct HttpOptions {
  std::string listen = "127.0.0.1:9477";     // empty disables the API
  std::string token;                         // when set, every request needs it
};

enum class LogLevel { debug, info, warning, error };
enum class LogFormat { journal, text, json };

struct LogOptions {
  LogLevel level = LogLevel::info;
  // journal when started by systemd (JOURNAL_STREAM or INVOCATION_ID set), else text.
  std::optional<LogFormat> format;
};

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

std::string_view to_string(LogLevel level);
std::string_view to_string(LogFormat format);

extern const char* const kDeltatapdUsage;

}  // namespace deltatap
