// The key table (service/config_keys.h; its value parsers are config_values.cc), and
// the two layers that are only a mapping of names onto the table: environment
// variables and command-line flags. The INI reader, the token files and the
// order of the layers are in config.cc.
#include "service/config_keys.h"

#include "service/config_values.h"

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

namespace deltatap {

// ---- the keys --------------------------------------------------------------

namespace {

constexpr int kMaxRetentionDays = 100'000;

template <typename T>
Status assign(Result<T> parsed, T& target) {
  if (!parsed) return Error{parsed.error()};
  target = std::move(parsed.value());
  return ok_status();
}

const std::array<KeySpec, 31> kKeys = {{
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
    {"storage", "compression", kCompressionExpected,
     "How states are kept in memory and in the file. zstd: compressed with a dictionary trained "
     "on the store's own states once 2,000 exist (kept in the file), and a before state equal to "
     "its session's last state kept as a reference, an update's after state compressed against "
     "its before state, and the times stored as integer milliseconds; every reader still gets "
     "the JSON text and the time's text, and the view session_deltas_json gives them to sqlite3 "
     "(docs/capacity.md). Switching converts the stored rows in the background, holding them "
     "twice until it ends. Changes only at restart",
     [](Config& c, std::string_view v, const Origin& o) {
       return assign(parse_compression(v, o), c.storage.compression);
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
    {"retention", "archive", kArchiveExpected,
     "Move the deltas that days removes into monthly archive files (SQLite, compressed, "
     "read-only once their month is over) under the directory archive beside [storage] path, "
     "each written and fsync'd before the deltas leave memory (docs/archives.md). deltatap "
     "query|timeline|export --archive and ?archive=1 read across memory and archives. Needs "
     "[storage] enabled",
     [](Config& c, std::string_view v, const Origin& o) -> Status {
       auto on = parse_bool(v, o);
       if (!on) return invalid(o, v, "on or off", kArchiveExpected);
       c.retention.archive = *on;
       return ok_status();
     }},
    {"retention", "archive_days", kArchiveDaysExpected,
     "Delete a month's archive file once its newest delta was stored more than this many days "
     "ago; 0 keeps every file",
     [](Config& c, std::string_view v, const Origin& o) -> Status {
       auto n = parse_integer(trim(v));
       if (!n || *n > kMaxRetentionDays) {
         return invalid(o, v, "a number of days", kArchiveDaysExpected);
       }
       c.retention.archive_days = static_cast<int>(*n);
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

