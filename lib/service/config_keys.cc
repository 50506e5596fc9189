// The key table and the value parsers behind it (service/config_keys.h), and
// the two layers that are only a mapping of names onto the table: environment
// variables and command-line flags. The INI reader, the token files and the
// order of the layers are in config.cc.
#include "service/config_keys.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cctype>
#include <cerrno>
#include <optional>

#include "base/address.h"
#include "base/duration.h"
#include "base/files.h"
#include "base/json_text.h"
#include "base/redact.h"

namespace deltatap {

// One definition, so that the INI reader and the value parsers agree on what
// white space around a value is.
std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

namespace {

using Millis = std::chrono::milliseconds;

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
// is exactly what the client will connect to. The value is quoted with its
// user info and query values hidden (base/redact.h). When it has user info,
// which the client refuses, the parser's own detail is not used: it can quote
// a piece of the password (one holding a '/' reads as a port).
Status check_url(std::string_view value, const Origin& origin) {
  constexpr std::string_view kExpected = "a ws:// or wss:// URL with a host, e.g. ws://127.0.0.1:3001/ws";
  auto parsed = parse_stream_url(value);
  if (!parsed.ok()) {
    std::string detail = has_url_user_info(value)
                             ? "user info (name:password@) is not allowed in the URL: put the "
                               "credential in [stream] token or token_file"
                             : parsed.error();
    return invalid(origin, redact_url(value), "a WebSocket URL",
                   std::string(kExpected) + "; " + detail);
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

// A path names a file only if it has something besides white space: " " (a
// stray DB_PATH=" ") would otherwise create a file named by a space.
// `empty_means` says what an empty value does ("" when it is refused too).
Status check_path(std::string_view value, const Origin& origin, std::string_view empty_means) {
  bool blank = trim(value).empty();
  if (!blank || (value.empty() && !empty_means.empty())) return ok_status();
  std::string expected = "a path that is not empty or only white space, e.g. data/sessions.sqlite";
  if (!empty_means.empty()) expected = "a path that is not only white space, or empty " + std::string(empty_means);
  return invalid(origin, value, "a file name", expected);
}

// A file the daemon reads later (at connect): checked now, once, so that a
// directory or a FIFO is refused at start rather than at every connect. Opened
// without blocking (a FIFO would wait for a writer) and without becoming our
// terminal. `expected` is what the key allows, for the message.
Status check_readable_file(std::string_view value, const Origin& origin, std::string_view expected) {
  if (value.empty()) return ok_status();
  auto refuse = [&](const std::string& why) {
    return Error{origin.where + origin.name + ": cannot read " + json_quoted(value) + ": " + why +
                 " (expected " + std::string(expected) + ")"};
  };
  std::string path(value);
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  if (fd < 0) return refuse(errno_text(errno));
  struct stat st {};
  int stat_errno = ::fstat(fd, &st) == 0 ? 0 : errno;
  ::close(fd);
  if (stat_errno != 0) return refuse(errno_text(stat_errno));
  if (S_ISDIR(st.st_mode)) return refuse("it is a directory");
  if (!S_ISREG(st.st_mode)) return refuse("not a regular file");
  return ok_status();
}

}  // namespace

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

// The inverse of parse_size, so that --check-config's text reads back as the
// same value.
std::string format_size(std::uint64_t bytes) {
  if (bytes != 0 && bytes % (1ull << 30) == 0) return std::to_string(bytes >> 30) + "GiB";
  if (bytes != 0 && bytes % (1ull << 20) == 0) return std::to_string(bytes >> 20) + "MiB";
  if (bytes != 0 && bytes % (1ull << 10) == 0) return std::to_string(bytes >> 10) + "KiB";
  return std::to_string(bytes);
}

// ---- the keys --------------------------------------------------------------

namespace {

constexpr int kMaxRetentionDays = 100'000;

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
       // Read (and checked) once every layer is in: the token may come from elsewhere.
       if (auto s = check_path(v, o, "for no token file"); !s) return s;
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
       // Only for wss://, and then at every connect: checked here all the same.
       if (auto s = check_path(v, o, "for the system's certificates only"); !s) return s;
       if (auto s = check_readable_file(v, o, "an existing readable regular file of PEM CA "
                                              "certificates, or empty for the system's only");
           !s) {
         return s;
       }
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
       if (auto s = check_path(v, o, ""); !s) return s;
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

constexpr std::array<std::string_view, 5> kSections = {"stream", "storage", "retention", "http", "log"};

}  // namespace

const KeySpec* find_key(std::string_view section, std::string_view key) {
  for (const auto& spec : kKeys) {
    if (spec.section == section && spec.key == key) return &spec;
  }
  return nullptr;
}

bool known_section(std::string_view name) {
  bool known = false;
  for (auto s : kSections) known = known || s == name;
  return known;
}

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

// ---- the environment -------------------------------------------------------

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

// ---- the flags -------------------------------------------------------------

namespace {

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

}  // namespace

const FlagSpec* find_value_flag(std::string_view flag) {
  for (const auto& f : kValueFlags) {
    if (f.flag == flag) return &f;
  }
  return nullptr;
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

}  // namespace deltatap
