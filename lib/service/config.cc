// Config loading: INI file, then environment, then command-line flags, each value
// validated where it enters so that the error can say where it came from.
//
// Choices the design leaves open (documented in conf/deltatap.conf and --help):
// - Token precedence: --token > DELTATAP_TOKEN > [stream] token > [stream] token_file
//   > $CREDENTIALS_DIRECTORY/token. A token file outside the credentials directory
//   must not be readable by group or others.
// - An environment variable set to the empty string counts as unset, except
//   DELTATAP_HTTP, where empty disables the HTTP API (as `[http] listen =` does).
// - A key may appear once per file (except `header`); no inline comments, so a
//   value may contain '#' or ';'. A value wrapped in double quotes is unwrapped.
// - `--persist` / `--no-persist` override `[storage] enabled` / PERSIST.
// - `format = auto` (the default) picks journal under systemd, else text.
#include "service/config.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <fstream>
#include <sstream>

#include "base/address.h"
#include "base/duration.h"
#include "base/files.h"
#include "base/json_text.h"
#include "base/secrets.h"

extern char** environ;

namespace deltatap {

namespace {

using Millis = std::chrono::milliseconds;
constexpr int kMaxRetentionDays = 100'000;

// Where a value came from: "file:line: " (or "") and the name a user would type.
struct Origin {
  std::string where;
  std::string name;
};

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// Values are quoted as JSON strings (base/json_text.h): control bytes are
// escaped, so a message stays on one line whatever the input was.
Error invalid(const Origin& origin, std::string_view value, std::string_view what,
              std::string_view expected) {
  return Error{origin.where + origin.name + ": " + json_quoted(value) + " is not " + std::string(what) +
               " (expected " + std::string(expected) + ")"};
}

// For secrets: the value itself never goes into a message.
Error invalid_secret(const Origin& origin, std::string_view problem) {
  return Error{origin.where + origin.name + ": the value (hidden) " + std::string(problem)};
}

// ---- value parsers ---------------------------------------------------------

bool all_digits(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

// A non-negative decimal integer that fits in 63 bits.
std::optional<std::int64_t> parse_integer(std::string_view s) {
  if (!all_digits(s) || s.size() > 18) return std::nullopt;
  std::int64_t n = 0;
  for (char c : s) n = n * 10 + (c - '0');
  return n;
}

// base/duration.h's syntax; its message gets the key in front.
Result<Millis> read_duration(std::string_view value, const Origin& origin) {
  auto parsed = parse_duration(value);
  if (!parsed) return Error{origin.where + origin.name + ": " + parsed.error()};
  return parsed;
}

constexpr std::string_view kSizeExpected =
    "a positive size in bytes, or with a unit KiB, MiB or GiB, e.g. 16MiB or 1024KiB";

Result<std::uint64_t> parse_size(std::string_view value, const Origin& origin) {
  auto fail = [&] { return invalid(origin, value, "a size", kSizeExpected); };
  std::string_view s = trim(value);
  std::size_t digits_end = 0;
  while (digits_end < s.size() && std::isdigit(static_cast<unsigned char>(s[digits_end]))) {
    ++digits_end;
  }
  auto number = parse_integer(s.substr(0, digits_end));
  if (!number) return fail();
  std::string unit = lower(trim(s.substr(digits_end)));
  std::uint64_t multiplier = 0;
  if (unit.empty() || unit == "b") multiplier = 1;
  else if (unit == "k" || unit == "kib") multiplier = 1ull << 10;
  else if (unit == "m" || unit == "mib") multiplier = 1ull << 20;
  else if (unit == "g" || unit == "gib") multiplier = 1ull << 30;
  else return fail();
  std::uint64_t bytes = 0;
  if (__builtin_mul_overflow(static_cast<std::uint64_t>(*number), multiplier, &bytes)) return fail();
  if (bytes == 0) return invalid(origin, value, "a positive size", kSizeExpected);
  return bytes;
}

Result<bool> parse_bool(std::string_view value, const Origin& origin) {
  std::string v = lower(trim(value));
  if (v == "on" || v == "true" || v == "yes" || v == "1") return true;
  if (v == "off" || v == "false" || v == "no" || v == "0") return false;
  return invalid(origin, value, "a boolean", "on, off, true, false, yes, no, 1 or 0");
}

Result<LogLevel> parse_level(std::string_view value, const Origin& origin) {
  std::string v = lower(trim(value));
  if (v == "debug") return LogLevel::debug;
  if (v == "info") return LogLevel::info;
  if (v == "warning") return LogLevel::warning;
  if (v == "error") return LogLevel::error;
  return invalid(origin, value, "a log level", "debug, info, warning or error");
}

Result<std::optional<LogFormat>> parse_format(std::string_view value, const Origin& origin) {
  std::string v = lower(trim(value));
  if (v == "journal") return std::optional<LogFormat>(LogFormat::journal);
  if (v == "text") return std::optional<LogFormat>(LogFormat::text);
  if (v == "json") return std::optional<LogFormat>(LogFormat::json);
  if (v == "auto") return std::optional<LogFormat>();
  return invalid(origin, value, "a log format",
                 "journal, text, json, or auto (journal under systemd, else text)");
}

// The client's own rules (stream/stream_options.h), so that what passes here
// is exactly what the client will connect to.
Status check_url(std::string_view value, const Origin& origin) {
  constexpr std::string_view kExpected = "a ws:// or wss:// URL with a host, e.g. ws://127.0.0.1:3001/ws";
  auto parsed = parse_stream_url(value);
  if (!parsed.ok()) {
    return invalid(origin, value, "a WebSocket URL",
                   std::string(kExpected) + "; " + parsed.error());
  }
  return ok_status();
}

// base/address.h's "IP:PORT" or "[IPv6]:PORT" with a fixed port, or empty (disabled).
Status check_listen(std::string_view value, const Origin& origin) {
  if (value.empty()) return ok_status();
  auto address = parse_listen_address(value);
  if (!address) {
    return Error{origin.where + origin.name + ": " + address.error() +
                 "; an empty value disables the API"};
  }
  if (address->port == 0) {
    return invalid(origin, value, "a listen address with a valid port", "a port from 1 to 65535");
  }
  return ok_status();
}

// Bearer tokens travel in a header (the subprotocol list or Authorization), so
// whitespace, control bytes and commas would corrupt the request.
Status check_token(std::string_view value, const Origin& origin) {
  if (value.empty()) return invalid_secret(origin, "is empty (expected a non-empty token)");
  for (unsigned char c : value) {
    if (c <= 0x20 || c == 0x7f || c == ',') {
      return invalid_secret(origin,
                            "contains whitespace, a control character or a comma "
                            "(expected a token such as a hex or base64url string)");
    }
  }
  return ok_status();
}

Status check_header(std::string_view value, const Origin& origin) {
  auto header = parse_stream_header(value);
  if (!header.ok()) {
    // Only the name part is shown: the value may be a credential.
    std::string_view shown = value.substr(0, value.find(':'));
    return Error{origin.where + origin.name + ": " + json_quoted(shown) + ": " + header.error() +
                 " (expected \"Name: value\", e.g. \"X-Client: deltatap\", and not a header the "
                 "WebSocket handshake sets; put the token in [stream] token or token_file)"};
  }
  return ok_status();
}

Status check_readable(std::string_view value, const Origin& origin) {
  std::string path(value);
  if (path.empty()) return ok_status();
  if (::access(path.c_str(), R_OK) != 0) {
    return Error{origin.where + origin.name + ": cannot read " + json_quoted(value) + ": " + errno_text(errno)};
  }
  return ok_status();
}

// ---- the keys --------------------------------------------------------------

using Setter = Status (*)(Config&, std::string_view, const Origin&);

struct KeySpec {
  std::string_view section;
  std::string_view key;
  Setter set;
};

template <typename T>
Status assign(Result<T> parsed, T& target) {
  if (!parsed) return Error{parsed.error()};
  target = std::move(parsed.value());
  return ok_status();
}

const std::array<KeySpec, 23> kKeys = {{
    {"stream", "url",
     [](Config& c, std::string_view v, const Origin& o) -> Status {
       if (auto s = check_url(v, o); !s) return s;
       c.stream.url = std::string(v);
       return ok_status();
     }},
    {"stream", "token",
     [](Config& c, std::string_view v, const Origin& o) -> Status {
       // Empty means no token, so "token =" in a file reads naturally.
       if (!v.empty()) {
         if (auto s = check_token(v, o); !s) return s;
       }
       c.stream.token = std::string(v);
       return ok_status();
     }},
    {"stream", "token_file",
     [](Config& c, std::string_view v, const Origin& o) -> Status {
       (void)o;
       c.stream.token_file = std::string(v);  // empty: no token file
       return ok_status();
     }},
    {"stream", "header",
     [](Config& c, std::string_view v, const Origin& o) -> Status {
       if (auto s = check_header(v, o); !s) return s;
       c.stream.headers.emplace_back(v);
       return ok_status();
     }},
    {"stream", "ca_file",
     [](Config& c, std::string_view v, const Origin& o) -> Status {
       if (auto s = check_readable(v, o); !s) return s;
       c.stream.ca_file = std::string(v);
       return ok_status();
     }},
    {"stream", "insecure_skip_verify",
     [](Config& c, std::string_view v, const Origin& o) {
       return assign(parse_bool(v, o), c.stream.insecure_skip_verify);
     }},
    {"stream", "connect_timeout",
     [](Config& c, std::string_view v, const Origin& o) {
       return assign(read_duration(v, o), c.stream.connect_timeout);
     }},
    {"stream", "idle_timeout",
     [](Config& c, std::string_view v, const Origin& o) {
       return assign(read_duration(v, o), c.stream.idle_timeout);
     }},
    {"stream", "backoff_initial",
     [](Config& c, std::string_view v, const Origin& o) {
       return assign(read_duration(v, o), c.stream.backoff_initial);
     }},
    {"stream", "backoff_max",
     [](Config& c, std::string_view v, const Origin& o) {
       return assign(read_duration(v, o), c.stream.backoff_max);
     }},
    {"stream", "max_message_bytes",
     [](Config& c, std::string_view v, const Origin& o) {
       return assign(parse_size(v, o), c.stream.max_message_bytes);
     }},
    {"stream", "buffer",
     [](Config& c, std::string_view v, const Origin& o) {
       return assign(parse_size(v, o), c.stream.buffer_bytes);
     }},
    {"storage", "enabled",
     [](Config& c, std::string_view v, const Origin& o) {
       return assign(parse_bool(v, o), c.storage.enabled);
     }},
    {"storage", "path",
     [](Config& c, std::string_view v, const Origin& o) -> Status {
       if (v.empty()) return invalid(o, v, "a file name", "a path such as data/sessions.sqlite");
       c.storage.path = std::string(v);
       return ok_status();
     }},
    {"storage", "snapshot_interval",
     [](Config& c, std::string_view v, const Origin& o) {
       return assign(read_duration(v, o), c.storage.snapshot_interval);
     }},
    {"storage", "journal",
     [](Config& c, std::string_view v, const Origin& o) {
       return assign(parse_bool(v, o), c.storage.journal);
     }},
    {"storage", "journal_fsync_interval",
     [](Config& c, std::string_view v, const Origin& o) {
       return assign(read_duration(v, o), c.storage.journal_fsync_interval);
     }},
    {"storage", "max_deltas",
     [](Config& c, std::string_view v, const Origin& o) -> Status {
       auto n = parse_integer(trim(v));
       if (!n) return invalid(o, v, "a number of deltas", "an integer >= 0; 0 means no limit");
       c.storage.max_deltas = static_cast<std::uint64_t>(*n);
       return ok_status();
     }},
    {"retention", "days",
     [](Config& c, std::string_view v, const Origin& o) -> Status {
       auto n = parse_integer(trim(v));
       if (!n || *n > kMaxRetentionDays) {
         return invalid(o, v, "a number of days", "an integer >= 0, e.g. 30; 0 keeps everything");
       }
       c.retention.days = static_cast<int>(*n);
       return ok_status();
     }},
    {"http", "listen",
     [](Config& c, std::string_view v, const Origin& o) -> Status {
       std::string_view t = trim(v);
       if (auto s = check_listen(t, o); !s) return s;
       c.http.listen = std::string(t);
       return ok_status();
     }},
    {"http", "token",
     [](Config& c, std::string_view v, const Origin& o) -> Status {
       // Empty means no token, so "token =" in a file reads naturally.
       if (!v.empty()) {
         if (auto s = check_token(v, o); !s) return s;
       }
       c.http.token = std::string(v);
       return ok_status();
     }},
    {"log", "level",
     [](Config& c, std::string_view v, const Origin& o) {
       return assign(parse_level(v, o), c.log.level);
     }},
    {"log", "format",
     [](Config& c, std::string_view v, const Origin& o) {
       return assign(parse_format(v, o), c.log.format);
     }},
}};

const KeySpec* find_key(std::string_view section, std::string_view key) {
  for (const auto& spec : kKeys) {
    if (spec.section == section && spec.key == key) return &spec;
  }
  return nullptr;
}

constexpr std::array<std::string_view, 5> kSections = {"stream", "storage", "retention", "http", "log"};

std::string allowed_keys(std::string_view section) {
  std::string out;
  auto add = [&](const KeySpec& spec) {
    if (spec.section != section) return;
    if (!out.empty()) out += ", ";
    out += spec.key;
  };
  for (const auto& spec : kKeys) add(spec);
  return out;
}

std::string allowed_sections() {
  std::string out;
  for (auto s : kSections) {
    if (!out.empty()) out += ", ";
    out += "[" + std::string(s) + "]";
  }
  return out;
}

std::string key_name(std::string_view section, std::string_view key) {
  return "[" + std::string(section) + "] " + std::string(key);
}

// ---- the layers ------------------------------------------------------------

Status apply_file(const std::string& path, Config& config) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return Error{"cannot read config file " + json_quoted(path) + ": " + errno_text(errno)};
  }
  // Reading a directory "succeeds" at open and fails at the first read.
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0 && !S_ISREG(st.st_mode)) {
    return Error{"cannot read config file " + json_quoted(path) + ": not a regular file"};
  }
  int token_line = 0;
  int token_file_line = 0;
  std::map<std::string, int> seen;  // "section.key" -> line, to refuse a key given twice
  std::string section;
  std::string raw;
  int line_number = 0;
  while (std::getline(in, raw)) {
    ++line_number;
    std::string_view line = raw;
    if (line_number == 1 && line.substr(0, 3) == "\xEF\xBB\xBF") line.remove_prefix(3);
    line = trim(line);
    std::string where = path + ":" + std::to_string(line_number) + ": ";
    if (line.empty() || line.front() == '#' || line.front() == ';') continue;
    if (line.front() == '[') {
      if (line.back() != ']') {
        return Error{where + "malformed section header " + json_quoted(line) + " (expected [section])"};
      }
      std::string name(trim(line.substr(1, line.size() - 2)));
      bool known = false;
      for (auto s : kSections) known = known || s == name;
      if (!known) {
        return Error{where + "unknown section " + json_quoted("[" + name + "]") + " (allowed: " +
                     allowed_sections() + ")"};
      }
      section = name;
      continue;
    }
    auto equals = line.find('=');
    if (equals == std::string_view::npos) {
      return Error{where + "expected \"key = value\", \"[section]\" or a comment, got " + json_quoted(line)};
    }
    std::string key(trim(line.substr(0, equals)));
    std::string_view value = trim(line.substr(equals + 1));
    if (value.size() >= 2 && value.front() == '"' && value.back() == '"') {
      value = value.substr(1, value.size() - 2);
    }
    if (key.empty()) {
      return Error{where + "expected \"key = value\", got a value without a key: " + json_quoted(line)};
    }
    if (section.empty()) {
      return Error{where + "key " + json_quoted(key) + " comes before any section (expected a [section] "
                   "line first; sections: " + allowed_sections() + ")"};
    }
    const KeySpec* spec = find_key(section, key);
    if (!spec) {
      return Error{where + "unknown key " + json_quoted(key) + " in [" + section + "] (allowed: " +
                   allowed_keys(section) + ")"};
    }
    std::string id = section + "." + key;
    if (id != "stream.header") {
      auto [it, inserted] = seen.emplace(id, line_number);
      if (!inserted) {
        return Error{where + key_name(section, key) + " is already set on line " +
                     std::to_string(it->second) + " (expected each key once; only header repeats)"};
      }
    }
    if (auto s = spec->set(config, value, Origin{where, key_name(section, key)}); !s) return Error{s.error()};
    if (id == "stream.token" && !value.empty()) token_line = line_number;
    if (id == "stream.token_file") token_file_line = line_number;
  }
  if (in.bad()) return Error{"cannot read config file " + json_quoted(path) + ": " + errno_text(errno)};
  if (token_line && token_file_line) {
    return Error{path + ":" + std::to_string(std::max(token_line, token_file_line)) +
                 ": [stream] token (line " + std::to_string(token_line) + ") and token_file (line " +
                 std::to_string(token_file_line) + ") are both set (expected one of them)"};
  }
  return ok_status();
}

const char* env_value(const Environment& env, const char* name) {
  auto it = env.find(name);
  if (it == env.end()) return nullptr;
  return it->second.c_str();
}

Status apply_environment(const Environment& env, Config& config) {
  // Generic variables share the config keys' syntax.
  static constexpr std::array<std::pair<const char*, std::string_view>, 5> kSimple = {{
      {"DELTATAP_URL", "url"},
      {"DELTATAP_TOKEN", "token"},
      {"DB_PATH", "path"},
      {"DELTATAP_LOG_LEVEL", "level"},
      {"DELTATAP_LOG_FORMAT", "format"},
  }};
  static constexpr std::array<std::string_view, 5> kSimpleSections = {"stream", "stream", "storage",
                                                                       "log", "log"};
  for (std::size_t i = 0; i < kSimple.size(); ++i) {
    const char* value = env_value(env, kSimple[i].first);
    if (!value || !*value) continue;
    const KeySpec* spec = find_key(kSimpleSections[i], kSimple[i].second);
    if (auto s = spec->set(config, value, Origin{"", kSimple[i].first}); !s) return s;
  }

  if (const char* value = env_value(env, "PERSIST"); value && *value) {
    std::string_view v = value;
    if (v == "1") config.storage.enabled = true;
    else if (v == "0") config.storage.enabled = false;
    else return invalid(Origin{"", "PERSIST"}, v, "an allowed value", "1 to store deltas or 0 not to");
  }

  if (const char* value = env_value(env, "SNAPSHOT_INTERVAL"); value && *value) {
    std::string_view v = value;
    auto ms = parse_integer(trim(v));
    if (!ms) {
      return invalid(Origin{"", "SNAPSHOT_INTERVAL"}, v, "a number of milliseconds",
                     "a positive integer, e.g. 60000");
    }
    if (*ms <= 0 || *ms > DurationRules{}.max.count()) {
      return invalid(Origin{"", "SNAPSHOT_INTERVAL"}, v, "a usable number of milliseconds",
                     "a positive integer, e.g. 60000");
    }
    config.storage.snapshot_interval = Millis{*ms};
  }

  if (const char* value = env_value(env, "RETENTION_DAYS"); value && *value) {
    if (auto s = find_key("retention", "days")->set(config, value, Origin{"", "RETENTION_DAYS"}); !s) {
      return s;
    }
  }

  // Empty is meaningful here: it disables the HTTP API.
  if (const char* value = env_value(env, "DELTATAP_HTTP")) {
    if (auto s = find_key("http", "listen")->set(config, value, Origin{"", "DELTATAP_HTTP"}); !s) {
      return s;
    }
  }
  return ok_status();
}

struct FlagSpec {
  std::string_view flag;
  std::string_view key;   // "section.key" in CommandLine::overrides
};

constexpr std::array<FlagSpec, 6> kValueFlags = {{
    {"--url", "stream.url"},
    {"--token", "stream.token"},
    {"--db", "storage.path"},
    {"--http", "http.listen"},
    {"--log-level", "log.level"},
    {"--log-format", "log.format"},
}};

std::string flag_for(std::string_view key) {
  for (const auto& f : kValueFlags) {
    if (f.key == key) return std::string(f.flag);
  }
  if (key == "storage.enabled") return "--persist/--no-persist";
  return "override " + std::string(key);
}

Status apply_overrides(const std::map<std::string, std::string>& overrides, Config& config) {
  for (const auto& [id, value] : overrides) {
    auto dot = id.find('.');
    const KeySpec* spec =
        dot == std::string::npos ? nullptr : find_key(id.substr(0, dot), id.substr(dot + 1));
    if (!spec) return Error{"unknown override " + json_quoted(id) + " (expected section.key)"};
    if (auto s = spec->set(config, value, Origin{"", flag_for(id)}); !s) return s;
  }
  return ok_status();
}

bool under_directory(const std::string& path, const std::string& directory) {
  if (directory.empty()) return false;
  std::string prefix = directory.back() == '/' ? directory : directory + "/";
  return path.compare(0, prefix.size(), prefix) == 0;
}

// What a token file held (base/secrets.h's read_secret_file), checked as a
// token given in the config file would be.
Result<std::string> token_in_file(Result<std::string> text, const std::string& path,
                                  const Origin& origin) {
  std::string label = origin.where + origin.name;
  if (!text) return Error{label + ": " + text.error()};
  std::string file = label + ": " + json_quoted(path);
  if (text->empty()) return Error{file + ": the file is empty (expected the token)"};
  if (auto s = check_token(*text, Origin{"", file}); !s) return Error{s.error()};
  return text;
}

Status resolve_token(const Environment& env, Config& config) {
  if (!config.stream.token.empty()) return ok_status();
  const char* credentials = env_value(env, "CREDENTIALS_DIRECTORY");
  std::string credentials_dir = credentials ? credentials : "";
  if (!config.stream.token_file.empty()) {
    const std::string& path = config.stream.token_file;
    auto token = token_in_file(read_secret_file(path, !under_directory(path, credentials_dir)), path,
                               Origin{"", "[stream] token_file"});
    if (!token) return Error{token.error()};
    config.stream.token = std::move(token.value());
    return ok_status();
  }
  if (!credentials_dir.empty()) {
    std::string path = credentials_dir + "/token";
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0 && errno == ENOENT) return ok_status();
    // systemd made this file private to the service; its mode is not ours to judge.
    auto text = read_secret_file(path, false);
    // The unit's SetCredential= fallback provides an empty credential when
    // /etc/deltatap/token is absent: that means "no token", not an error.
    if (text && text->find_first_not_of("\r\n") == std::string::npos) return ok_status();
    auto token = token_in_file(std::move(text), path, Origin{"", "$CREDENTIALS_DIRECTORY/token"});
    if (!token) return Error{token.error()};
    config.stream.token = std::move(token.value());
  }
  return ok_status();
}

std::string format_size(std::uint64_t bytes) {
  if (bytes != 0 && bytes % (1ull << 30) == 0) return std::to_string(bytes >> 30) + "GiB";
  if (bytes != 0 && bytes % (1ull << 20) == 0) return std::to_string(bytes >> 20) + "MiB";
  if (bytes != 0 && bytes % (1ull << 10) == 0) return std::to_string(bytes >> 10) + "KiB";
  return std::to_string(bytes);
}

}  // namespace

// ---- public interface --------------------------------------------------------

Result<CommandLine> parse_command_line(int argc, const char* const* argv) {
  CommandLine cmdline;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == "-h") arg = "--help";
    if (arg.substr(0, 2) != "--" || arg.size() == 2) {
      return Error{"unexpected argument " + json_quoted(arg) + " (deltatapd takes only options)"};
    }
    std::string name(arg);
    std::optional<std::string> inline_value;
    if (auto eq = name.find('='); eq != std::string::npos) {
      inline_value = name.substr(eq + 1);
      name.resize(eq);
    }

    bool* toggle = nullptr;
    if (name == "--check-config") toggle = &cmdline.check_config;
    else if (name == "--version") toggle = &cmdline.version;
    else if (name == "--help") toggle = &cmdline.help;
    if (toggle || name == "--persist" || name == "--no-persist") {
      if (inline_value) return Error{"option " + name + " takes no value (got " + json_quoted(*inline_value) + ")"};
      if (toggle) *toggle = true;
      else cmdline.overrides["storage.enabled"] = name == "--persist" ? "on" : "off";
      continue;
    }

    const FlagSpec* spec = nullptr;
    for (const auto& f : kValueFlags) {
      if (f.flag == name) spec = &f;
    }
    if (!spec && name != "--config") {
      return Error{"unknown option " + json_quoted(name) +
                   " (expected --config, --url, --token, --db, --http, --log-level, --log-format, "
                   "--persist, --no-persist, --check-config, --version or --help)"};
    }
    std::string value;
    if (inline_value) {
      value = *inline_value;
    } else if (i + 1 < argc) {
      value = argv[++i];
    } else {
      return Error{"option " + name + " needs a value"};
    }
    if (name == "--config") {
      if (value.empty()) return Error{"option --config needs a file name"};
      cmdline.config_file = value;
    } else {
      cmdline.overrides[std::string(spec->key)] = value;
    }
  }
  return cmdline;
}

Environment process_environment() {
  Environment env;
  for (char** entry = environ; entry && *entry; ++entry) {
    std::string_view text = *entry;
    auto eq = text.find('=');
    if (eq == std::string_view::npos) continue;
    env.emplace(std::string(text.substr(0, eq)), std::string(text.substr(eq + 1)));
  }
  return env;
}

Result<Config> load_config(const CommandLine& cmdline, const Environment& env) {
  Config config;
  if (!cmdline.config_file.empty()) {
    if (auto s = apply_file(cmdline.config_file, config); !s) return Error{s.error()};
    config.config_file = cmdline.config_file;
  }
  if (auto s = apply_environment(env, config); !s) return Error{s.error()};
  if (auto s = apply_overrides(cmdline.overrides, config); !s) return Error{s.error()};

  if (config.stream.backoff_initial > config.stream.backoff_max) {
    return Error{"[stream] backoff_initial (" + format_duration(config.stream.backoff_initial) +
                 ") is larger than [stream] backoff_max (" + format_duration(config.stream.backoff_max) +
                 ") (expected backoff_initial <= backoff_max)"};
  }
  if (auto s = resolve_token(env, config); !s) return Error{s.error()};
  return config;
}

std::string describe_config(const Config& config) {
  auto secret = [](const std::string& value) { return value.empty() ? "(none)" : "(hidden)"; };
  auto onoff = [](bool b) { return b ? "on" : "off"; };
  auto line = [](std::ostringstream& out, std::string_view key, std::string_view value) {
    out << key << " =";
    if (!value.empty()) out << ' ' << value;
    out << '\n';
  };
  std::ostringstream out;
  out << "# deltatapd effective configuration (flags > environment > config file > defaults)\n";
  out << "# config file: " << (config.config_file.empty() ? "(none)" : config.config_file) << "\n";
  out << "# secrets are shown as (hidden) when set and (none) when not\n";

  out << "\n[stream]\n";
  line(out, "url", config.stream.url);
  line(out, "token", secret(config.stream.token));
  line(out, "token_file", config.stream.token_file);
  if (config.stream.headers.empty()) out << "# header = (none)\n";
  for (const auto& header : config.stream.headers) {
    // Header values are often credentials: show only the name.
    line(out, "header", header.substr(0, header.find(':')) + ": (hidden)");
  }
  line(out, "ca_file", config.stream.ca_file);
  line(out, "insecure_skip_verify", onoff(config.stream.insecure_skip_verify));
  line(out, "connect_timeout", format_duration(config.stream.connect_timeout));
  line(out, "idle_timeout", format_duration(config.stream.idle_timeout));
  line(out, "backoff_initial", format_duration(config.stream.backoff_initial));
  line(out, "backoff_max", format_duration(config.stream.backoff_max));
  line(out, "max_message_bytes", format_size(config.stream.max_message_bytes));
  line(out, "buffer", format_size(config.stream.buffer_bytes));

  out << "\n[storage]\n";
  line(out, "enabled", onoff(config.storage.enabled));
  line(out, "path", config.storage.path);
  line(out, "snapshot_interval", format_duration(config.storage.snapshot_interval));
  line(out, "journal", onoff(config.storage.journal));
  line(out, "journal_fsync_interval", format_duration(config.storage.journal_fsync_interval));
  line(out, "max_deltas", std::to_string(config.storage.max_deltas));

  out << "\n[retention]\n";
  line(out, "days", std::to_string(config.retention.days));

  out << "\n[http]\n";
  if (config.http.listen.empty()) out << "# empty: the HTTP API is disabled\n";
  line(out, "listen", config.http.listen);
  line(out, "token", secret(config.http.token));

  out << "\n[log]\n";
  line(out, "level", to_string(config.log.level));
  if (!config.log.format) out << "# auto: journal when started by systemd, else text\n";
  line(out, "format", config.log.format ? to_string(*config.log.format) : "auto");
  return out.str();
}

const char* const kDeltatapdUsage =
    "Usage: deltatapd [OPTION]...\n"
    "Tap the Jules Control Room WebSocket broadcast and keep its session deltas in\n"
    "SQLite (in memory, snapshotted to disk), answering queries over HTTP.\n"
    "\n"
    "Options (flags override the environment, which overrides the config file):\n"
    "  --config FILE        read this INI file (none is read without it; the systemd\n"
    "                       unit passes /etc/deltatap/deltatap.conf)\n"
    "  --url URL            backend stream, ws:// or wss://  [DELTATAP_URL]\n"
    "                       (default ws://127.0.0.1:3001/ws)\n"
    "  --token T            bearer token  [DELTATAP_TOKEN]; visible in ps, so prefer\n"
    "                       [stream] token_file or systemd LoadCredential=token\n"
    "  --db PATH            database file  [DB_PATH] (default data/sessions.sqlite);\n"
    "                       does not turn storage on\n"
    "  --persist            store deltas  [PERSIST=1] (default: off)\n"
    "  --no-persist         tap and count only, write nothing  [PERSIST=0]\n"
    "  --http ADDR:PORT     HTTP API listener, empty disables  [DELTATAP_HTTP]\n"
    "                       (default 127.0.0.1:9477)\n"
    "  --log-level L        debug, info, warning or error  [DELTATAP_LOG_LEVEL]\n"
    "  --log-format F       journal, text, json or auto  [DELTATAP_LOG_FORMAT]\n"
    "                       (auto: journal under systemd, else text)\n"
    "  --check-config       validate, print the effective configuration (secrets\n"
    "                       hidden) and exit\n"
    "  --version            print the version and exit\n"
    "  -h, --help           print this help and exit\n"
    "Options also accept the form --option=value.\n"
    "\n"
    "Environment only: SNAPSHOT_INTERVAL (milliseconds), RETENTION_DAYS (0 keeps\n"
    "everything). An empty variable counts as unset, except DELTATAP_HTTP.\n"
    "Token sources, first found wins: --token, DELTATAP_TOKEN, [stream] token,\n"
    "[stream] token_file (must not be readable by group or others),\n"
    "$CREDENTIALS_DIRECTORY/token.\n"
    "\n"
    "Signals: SIGTERM/SIGINT stop after a final snapshot; SIGHUP reloads the config\n"
    "file; SIGUSR1 snapshots now.\n"
    "Exit status: 0 clean stop, 1 fatal runtime error, 2 configuration error.\n"
    "See conf/deltatap.conf for every key, its default and its environment variable.\n";

}  // namespace deltatap
