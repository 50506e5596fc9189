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
#include "base/secrets.h"
#include "sinks/pg_connection.h"

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

// What the keys allow: each text is both the "(expected ...)" of its errors
// and the allowed values of the key in deltatap.conf(5).
constexpr std::string_view kSizeExpected =
    "a positive size in bytes, or with a unit KiB, MiB or GiB, e.g. 16MiB or 1024KiB";
constexpr std::string_view kBoolExpected = "on, off, true, false, yes, no, 1 or 0";
constexpr std::string_view kLevelExpected = "debug, info, warning or error";
constexpr std::string_view kFormatExpected =
    "journal, text, json, or auto (journal under systemd, else text)";
constexpr std::string_view kUrlExpected =
    "a ws:// or wss:// URL with a host, e.g. ws://127.0.0.1:3001/ws";
constexpr std::string_view kReconcileUrlExpected =
    "an http:// or https:// URL with a host, e.g. https://backend.example/api/sessions, or empty "
    "to derive it from url";
constexpr std::string_view kPathExpected =
    "a path that is not empty or only white space, e.g. data/sessions.sqlite";
constexpr std::string_view kCaFileExpected =
    "an existing readable regular file of PEM CA certificates, or empty for the system's only";
constexpr std::string_view kMaxDeltasExpected = "an integer >= 0; 0 means no limit";
constexpr std::string_view kDaysExpected = "an integer >= 0, e.g. 30; 0 keeps everything";
constexpr std::string_view kTokenAllowed =
    "a token without white space, control characters or commas, such as a hex or base64url "
    "string; empty for none";
constexpr std::string_view kListenAllowed =
    "IP:PORT or [IPv6]:PORT with a port from 1 to 65535; empty disables the HTTP API";
constexpr std::string_view kPersistExpected = "1 to store deltas or 0 not to";
constexpr std::string_view kMillisExpected = "a positive integer, e.g. 60000";
constexpr std::string_view kPostgresUrlExpected =
    "a libpq connection string or URI, e.g. postgresql://deltatap@db.example/deltatap or "
    "\"host=/run/postgresql dbname=deltatap\"; empty: no PostgreSQL sink";
constexpr std::string_view kSourceExpected =
    "a name of 1 to 200 characters without control characters, e.g. control-room-1; empty: the "
    "host name";

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
  return invalid(origin, value, "a boolean", kBoolExpected);
}

Result<LogLevel> parse_level(std::string_view value, const Origin& origin) {
  std::string v = lower(trim(value));
  if (v == "debug") return LogLevel::debug;
  if (v == "info") return LogLevel::info;
  if (v == "warning") return LogLevel::warning;
  if (v == "error") return LogLevel::error;
  return invalid(origin, value, "a log level", kLevelExpected);
}

Result<std::optional<LogFormat>> parse_format(std::string_view value, const Origin& origin) {
  std::string v = lower(trim(value));
  if (v == "journal") return std::optional<LogFormat>(LogFormat::journal);
  if (v == "text") return std::optional<LogFormat>(LogFormat::text);
  if (v == "json") return std::optional<LogFormat>(LogFormat::json);
  if (v == "auto") return std::optional<LogFormat>();
  return invalid(origin, value, "a log format", kFormatExpected);
}

// The client's own rules (stream/stream_options.h), so that what passes here
// is exactly what the client will connect to. The value is quoted with its
// user info and query values hidden (base/redact.h). When it has user info,
// which the client refuses, the parser's own detail is not used: it can quote
// a piece of the password (one holding a '/' reads as a port).
Status check_url(std::string_view value, const Origin& origin) {
  auto parsed = parse_stream_url(value);
  if (!parsed.ok()) {
    std::string detail = has_url_user_info(value)
                             ? "user info (name:password@) is not allowed in the URL: put the "
                               "credential in [stream] token or token_file"
                             : parsed.error();
    return invalid(origin, redact_url(value), "a WebSocket URL",
                   std::string(kUrlExpected) + "; " + detail);
  }
  return ok_status();
}

// The fetch's own rules (stream/stream_options.h), as check_url applies the
// client's; empty means derived from [stream] url, which check_url has vetted.
Status check_reconcile_url(std::string_view value, const Origin& origin) {
  if (value.empty()) return ok_status();
  auto parsed = parse_reconcile_url(value);
  if (!parsed.ok()) {
    std::string detail = has_url_user_info(value)
                             ? "user info (name:password@) is not allowed in the URL: the fetch "
                               "sends [stream] token as a bearer token"
                             : parsed.error();
    return invalid(origin, redact_url(value), "an HTTP URL",
                   std::string(kReconcileUrlExpected) + "; " + detail);
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
  std::string expected(kPathExpected);
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

// libpq's own parser decides (sinks/pg_connection.h). Its message may quote
// a piece of the string, which could be a password: quoted pieces are cut.
Status check_postgres_url(std::string_view value, const Origin& origin) {
  if (value.empty()) return ok_status();
  auto parsed = display_conninfo(value);
  if (parsed.ok()) return ok_status();
  // A quoted piece stays when it is punctuation or a keyword libpq knows
  // (it parses as "piece=x"); anything else may be a value.
  std::string detail, piece;
  bool quoted = false;
  for (char c : parsed.error()) {
    if (c != '"') {
      (quoted ? piece : detail) += c;
      continue;
    }
    if (quoted) {
      bool keyword = !piece.empty() && piece.find_first_of(" ='\\") == std::string::npos &&
                     display_conninfo(piece + "=x").ok();
      detail += "\"" + (piece.size() == 1 || keyword ? piece : std::string("(hidden)")) + "\"";
      piece.clear();
    }
    quoted = !quoted;
  }
  return Error{origin.where + origin.name + ": the value (hidden) is not usable: " + detail +
               " (expected " + std::string(kPostgresUrlExpected) + ")"};
}

Status check_source(std::string_view value, const Origin& origin) {
  bool usable = value.size() <= 200;
  for (unsigned char c : value) usable = usable && c >= 0x20 && c != 0x7f;
  if (!usable) return invalid(origin, value, "a source name", kSourceExpected);
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

const std::array<KeySpec, 28> kKeys = {{
    {"stream", "url", kUrlExpected,
     "The backend's WebSocket broadcast, which deltatapd connects to, and reconnects to with "
     "backoff when the connection ends",
     [](Config& c, std::string_view v, const Origin& o) -> Status {
       if (auto s = check_url(v, o); !s) return s;
       c.stream.url = std::string(v);
       return ok_status();
     }},
    {"stream", "token", kTokenAllowed,
     "Bearer token, sent as the subprotocol \"bearer.<token>\". Sources, first found wins: "
     "--token, DELTATAP_TOKEN, this key, token_file, then $CREDENTIALS_DIRECTORY/token (systemd "
     "LoadCredential=token:...). A file sets at most one of token and token_file",
     [](Config& c, std::string_view v, const Origin& o) -> Status {
       // Empty means no token, so "token =" in a file reads naturally.
       if (!v.empty()) {
         if (auto s = check_token(v, o); !s) return s;
       }
       c.stream.token = std::string(v);
       return ok_status();
     }},
    {"stream", "token_file", "a path, or empty for no token file",
     "A file holding the token on one line (a trailing newline is dropped), read at start and at "
     "every reload; refused when readable by group or others, unless it is under "
     "$CREDENTIALS_DIRECTORY",
     [](Config& c, std::string_view v, const Origin& o) -> Status {
       // Read (and checked) once every layer is in: the token may come from elsewhere.
       if (auto s = check_path(v, o, "for no token file"); !s) return s;
       c.stream.token_file = std::string(v);  // empty: no token file
       return ok_status();
     }},
    {"stream", "header",
     "\"Name: value\", e.g. \"X-Client: deltatap\", but not a header the WebSocket handshake sets "
     "(Host, Upgrade, Connection, Sec-WebSocket-*)",
     "An extra request header for the handshake. The only key that may be given more than once: "
     "each line adds a header",
     [](Config& c, std::string_view v, const Origin& o) -> Status {
       if (auto s = check_header(v, o); !s) return s;
       c.stream.headers.emplace_back(v);
       return ok_status();
     }},
    {"stream", "ca_file", kCaFileExpected,
     "Extra CA certificates (PEM) trusted for wss:// beside the system's; checked at start",
     [](Config& c, std::string_view v, const Origin& o) -> Status {
       // Only for wss://, and then at every connect: checked here all the same.
       if (auto s = check_path(v, o, "for the system's certificates only"); !s) return s;
       if (auto s = check_readable_file(v, o, kCaFileExpected); !s) return s;
       c.stream.ca_file = std::string(v);
       return ok_status();
     }},
    {"stream", "insecure_skip_verify", kBoolExpected,
     "Skip TLS certificate verification for wss:// (logged as a warning at every connect)",
     [](Config& c, std::string_view v, const Origin& o) {
       return assign(parse_bool(v, o), c.stream.insecure_skip_verify);
     }},
    {"stream", "connect_timeout", kDurationExpected,
     "Resolving the host, connecting, and the TLS and WebSocket handshakes must finish within this",
     [](Config& c, std::string_view v, const Origin& o) {
       return assign(read_duration(v, o), c.stream.connect_timeout);
     }},
    {"stream", "idle_timeout", kDurationExpected,
     "Reconnect when no frame, ping or pong arrives for this long (the backend pings every 30 s)",
     [](Config& c, std::string_view v, const Origin& o) {
       return assign(read_duration(v, o), c.stream.idle_timeout);
     }},
    {"stream", "backoff_initial", kDurationExpected,
     "The first reconnect delay; each failed attempt doubles it, up to backoff_max. May not be "
     "larger than backoff_max",
     [](Config& c, std::string_view v, const Origin& o) {
       return assign(read_duration(v, o), c.stream.backoff_initial);
     }},
    {"stream", "backoff_max", kDurationExpected,
     "The longest reconnect delay",
     [](Config& c, std::string_view v, const Origin& o) {
       return assign(read_duration(v, o), c.stream.backoff_max);
     }},
    {"stream", "max_message_bytes", kSizeExpected,
     "The largest WebSocket message accepted from the backend; a larger one fails the connection "
     "(close 1009) and the tap reconnects",
     [](Config& c, std::string_view v, const Origin& o) {
       return assign(parse_size(v, o), c.stream.max_message_bytes);
     }},
    {"stream", "buffer", kSizeExpected,
     "Received deltas waiting for the store (the queue between the stream lane and the store "
     "lane). Only when it is full does deltatapd stop reading the socket; the backend may then "
     "cut the tap off",
     [](Config& c, std::string_view v, const Origin& o) {
       return assign(parse_size(v, o), c.stream.buffer_bytes);
     }},
    {"stream", "reconcile", kBoolExpected,
     "After every connect and reconnect, ask the backend for its live sessions (GET reconcile_url "
     "with the token as \"Authorization: Bearer <token>\", the extra headers and the TLS settings "
     "of the stream) and bring the stored history in line with them: what was missed while away "
     "is stored as inferred deltas. A backend that answers 404 is not asked again until the next "
     "start. Off never asks",
     [](Config& c, std::string_view v, const Origin& o) {
       return assign(parse_bool(v, o), c.stream.reconcile);
     }},
    {"stream", "reconcile_url", kReconcileUrlExpected,
     "Where reconciliation asks. Empty: the backend's /api/sessions on the host and port of url "
     "(ws:// becomes http://, wss:// https://; the path and query of url are not kept)",
     [](Config& c, std::string_view v, const Origin& o) -> Status {
       if (auto s = check_reconcile_url(v, o); !s) return s;
       c.stream.reconcile_url = std::string(v);
       return ok_status();
     }},
    {"storage", "enabled", kBoolExpected,
     "Store deltas in files: snapshots and the journal. Off keeps the in-memory store for queries "
     "and writes nothing. The built-in default is off; the shipped /etc/deltatap/deltatap.conf "
     "turns it on. Changes only at restart",
     [](Config& c, std::string_view v, const Origin& o) {
       return assign(parse_bool(v, o), c.storage.enabled);
     }},
    {"storage", "path", kPathExpected,
     "The snapshot file, relative to the working directory (under the systemd unit: "
     "/var/lib/deltatap/data/sessions.sqlite). The journal and the lock file are kept beside it. "
     "Does not turn storage on. Changes only at restart",
     [](Config& c, std::string_view v, const Origin& o) -> Status {
       if (auto s = check_path(v, o, ""); !s) return s;
       c.storage.path = std::string(v);
       return ok_status();
     }},
    {"storage", "snapshot_interval", kDurationExpected,
     "How often the in-memory database is written out to path, atomically",
     [](Config& c, std::string_view v, const Origin& o) {
       return assign(read_duration(v, o), c.storage.snapshot_interval);
     }},
    {"storage", "journal", kBoolExpected,
     "Append every received delta to the journal beside path (sessions.journal), so that a crash "
     "loses at most one journal_fsync_interval rather than one snapshot_interval. Changes only at "
     "restart",
     [](Config& c, std::string_view v, const Origin& o) {
       return assign(parse_bool(v, o), c.storage.journal);
     }},
    {"storage", "journal_fsync_interval", kDurationExpected,
     "How often the journal is flushed to disk (fsync), in groups: the most a crash can lose",
     [](Config& c, std::string_view v, const Origin& o) {
       return assign(read_duration(v, o), c.storage.journal_fsync_interval);
     }},
    {"storage", "max_deltas", kMaxDeltasExpected,
     "Keep at most this many deltas in memory, evicting the oldest",
     [](Config& c, std::string_view v, const Origin& o) -> Status {
       auto n = parse_integer(trim(v));
       if (!n) return invalid(o, v, "a number of deltas", kMaxDeltasExpected);
       c.storage.max_deltas = static_cast<std::uint64_t>(*n);
       return ok_status();
     }},
    {"retention", "days", kDaysExpected,
     "Delete deltas stored more than this many days ago, at start and then every day at 00:00 UTC",
     [](Config& c, std::string_view v, const Origin& o) -> Status {
       auto n = parse_integer(trim(v));
       if (!n || *n > kMaxRetentionDays) {
         return invalid(o, v, "a number of days", kDaysExpected);
       }
       c.retention.days = static_cast<int>(*n);
       return ok_status();
     }},
    {"http", "listen", kListenAllowed,
     "Where the HTTP API and its Prometheus metrics (/metrics) listen. Changes only at restart",
     [](Config& c, std::string_view v, const Origin& o) -> Status {
       std::string_view t = trim(v);
       if (auto s = check_listen(t, o); !s) return s;
       c.http.listen = std::string(t);
       return ok_status();
     }},
    {"http", "token", kTokenAllowed,
     "When set, every request needs \"Authorization: Bearer <token>\"; when not, POST requests "
     "are refused unless the listener is on loopback. Changes only at restart",
     [](Config& c, std::string_view v, const Origin& o) -> Status {
       // Empty means no token, so "token =" in a file reads naturally.
       if (!v.empty()) {
         if (auto s = check_token(v, o); !s) return s;
       }
       c.http.token = std::string(v);
       return ok_status();
     }},
    {"postgres", "url", kPostgresUrlExpected,
     "Replicate every stored delta into this PostgreSQL database (docs/postgres.md), at least "
     "once and idempotently, resuming where it stopped after any restart. Needs [storage] "
     "enabled. Shown without its password",
     [](Config& c, std::string_view v, const Origin& o) -> Status {
       std::string_view t = trim(v);
       if (auto s = check_postgres_url(t, o); !s) return s;
       c.postgres.url = std::string(t);
       return ok_status();
     }},
    {"postgres", "source", kSourceExpected,
     "This tap's name in the shared table (the `source` column), so that several taps can share "
     "one database",
     [](Config& c, std::string_view v, const Origin& o) -> Status {
       std::string_view t = trim(v);
       if (auto s = check_source(t, o); !s) return s;
       c.postgres.source = std::string(t);
       return ok_status();
     }},
    {"postgres", "password_file", "a path, or empty to leave the password to libpq (the URL, PGPASSFILE, ~/.pgpass)",
     "A file holding the PostgreSQL password on one line (a trailing newline is dropped); "
     "refused when readable by group or others. Read at start",
     [](Config& c, std::string_view v, const Origin& o) -> Status {
       if (auto s = check_path(v, o, "to leave the password to libpq"); !s) return s;
       if (!v.empty()) {
         if (auto read = read_secret_file(std::string(v)); !read) {
           return Error{o.where + o.name + ": " + read.error()};
         }
       }
       c.postgres.password_file = std::string(v);
       return ok_status();
     }},
    {"log", "level", kLevelExpected,
     "The least severe messages that are logged; debug adds a line per delta",
     [](Config& c, std::string_view v, const Origin& o) {
       return assign(parse_level(v, o), c.log.level);
     }},
    {"log", "format", kFormatExpected,
     "journal: native journal entries with fields such as SESSION_ID= and DELTA_TYPE=; text: one "
     "line per event; json: one JSON object per line with level, time, msg and the fields",
     [](Config& c, std::string_view v, const Origin& o) {
       return assign(parse_format(v, o), c.log.format);
     }},
}};

constexpr std::array<std::string_view, 6> kSections = {"stream", "storage", "retention", "http",
                                                       "postgres", "log"};

}  // namespace

std::span<const KeySpec> key_table() { return kKeys; }

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

namespace {

// The variables with a syntax of their own, kept from the domain document.
Status set_persist(Config& config, std::string_view v, const Origin& origin) {
  if (v == "1") config.storage.enabled = true;
  else if (v == "0") config.storage.enabled = false;
  else return invalid(origin, v, "an allowed value", kPersistExpected);
  return ok_status();
}

Status set_snapshot_millis(Config& config, std::string_view v, const Origin& origin) {
  auto ms = parse_integer(trim(v));
  if (!ms) return invalid(origin, v, "a number of milliseconds", kMillisExpected);
  if (*ms <= 0 || *ms > DurationRules{}.max.count()) {
    return invalid(origin, v, "a usable number of milliseconds", kMillisExpected);
  }
  config.storage.snapshot_interval = Millis{*ms};
  return ok_status();
}

constexpr std::string_view kSnapshotMillisSyntax =
    "a number of milliseconds without a unit, e.g. 60000";

constexpr std::array<EnvSpec, 11> kEnvironment = {{
    {"DELTATAP_URL", "stream", "url"},
    {"DELTATAP_RECONCILE", "stream", "reconcile"},
    {"DELTATAP_TOKEN", "stream", "token"},
    {"DB_PATH", "storage", "path"},
    {"DELTATAP_LOG_LEVEL", "log", "level"},
    {"DELTATAP_LOG_FORMAT", "log", "format"},
    {"PERSIST", "storage", "enabled", kPersistExpected, set_persist},
    {"SNAPSHOT_INTERVAL", "storage", "snapshot_interval", kSnapshotMillisSyntax, set_snapshot_millis},
    {"RETENTION_DAYS", "retention", "days"},
    {"DELTATAP_POSTGRES_URL", "postgres", "url"},
    // Empty is meaningful here: it disables the HTTP API, as `[http] listen =` does.
    {"DELTATAP_HTTP", "http", "listen", {}, nullptr, true},
}};

}  // namespace

std::span<const EnvSpec> environment_table() { return kEnvironment; }

Status apply_environment(const Environment& env, Config& config) {
  for (const auto& var : kEnvironment) {
    const char* value = env_value(env, var.name);
    if (!value || (!*value && !var.empty_is_value)) continue;
    Setter set = var.own ? var.own : find_key(var.section, var.key)->set;
    if (auto s = set(config, value, Origin{"", var.name}); !s) return s;
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

// How an error names the flag of an override: "--url", "--persist/--no-persist".
std::string flag_for(std::string_view id) {
  auto dot = id.find('.');
  std::string out;
  if (dot != std::string_view::npos) {
    for (auto flag : key_flags(id.substr(0, dot), id.substr(dot + 1))) {
      if (!out.empty()) out += "/";
      out += flag;
    }
  }
  return out.empty() ? "override " + std::string(id) : out;
}

}  // namespace

std::vector<std::string_view> key_flags(std::string_view section, std::string_view key) {
  // command_line.cc reads --persist and --no-persist itself: they take no value.
  if (section == "storage" && key == "enabled") return {"--persist", "--no-persist"};
  std::vector<std::string_view> flags;
  for (const auto& f : kValueFlags) {
    auto dot = f.key.find('.');
    if (f.key.substr(0, dot) == section && f.key.substr(dot + 1) == key) flags.push_back(f.flag);
  }
  return flags;
}

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
