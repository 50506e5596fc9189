// Config keys: the one table of keys ([section] key, what values it allows,
// what it does, and how its value is parsed and assigned) that drives the INI
// file, the environment and the flags; --check-config prints its keys,
// conf/deltatap.conf documents them (tests/config_test.cc checks both name
// every key), and deltatap.conf(5) is generated from this table, the
// environment table below and --check-config's text for the defaults
// (tools/manpage.cc; tests/manpages_test.cc checks the page names every key
// and variable). A value goes
// through its key's setter whichever layer it came from, so each key has one
// syntax and one set of error messages everywhere; only the variables PERSIST
// (1 or 0) and SNAPSHOT_INTERVAL (milliseconds) keep syntaxes of their own.
//
// Errors name where the value came from (Origin) and what is allowed, and
// quote the value JSON-escaped, so a message stays on one line. A secret (a
// token) is never quoted; a header is quoted only by its name.
//
// Choices the design leaves open (documented in conf/deltatap.conf and --help):
// - An environment variable set to the empty string counts as unset, except
//   DELTATAP_HTTP, where empty disables the HTTP API (as `[http] listen =` does).
// - `--persist` / `--no-persist` override `[storage] enabled` / PERSIST.
// - `format = auto` (the default) picks journal under systemd, else text.
//
// Internal to service/: config.cc (the INI reader, the token files, the order
// of the layers) and command_line.cc use it; everything else goes through
// service/config.h, except the man-page generator (tools/manpage.cc), which
// reads the tables to document them.
//
// Thread safety: no state is kept; safe to call from any thread.
#pragma once

#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "service/config.h"

namespace deltatap {

// Where a value came from: "file:line: " (or "" outside a file) and the name a
// user would type ("[stream] url", "DELTATAP_URL", "--url"). Every error about
// the value starts with where + name.
struct Origin {
  std::string where;
  std::string name;
};

// Checks `value` against its key's syntax and, only if it passes, stores it in
// `config` (`[stream] header` appends; every other key replaces). On error
// `config` is unchanged. `[stream] ca_file` must name an existing readable
// regular file (or be empty) and `[postgres] password_file` a private one
// (base/secrets.h); every other check looks at the text alone. A
// path (`[storage] path`, `token_file`, `ca_file`) that is only white space is
// refused; `[storage] path` may not be empty either. A URL is quoted in a
// message with its user info and query values hidden (base/redact.h).
using Setter = Status (*)(Config&, std::string_view, const Origin&);

struct KeySpec {
  std::string_view section;  // without brackets: "stream"
  std::string_view key;      // "url"
  // For deltatap.conf(5): the values the key allows (the text its setter's
  // "(expected ...)" uses, where it has one) and what the key does, a sentence
  // or two. Plain text, without a final period.
  std::string_view allowed;
  std::string_view help;
  Setter set;
};

// ---- the table ---------------------------------------------------------------

// The spec of `key` in [section], or nullptr if the table has none.
const KeySpec* find_key(std::string_view section, std::string_view key);

// Every key, grouped by section in the order of the sections, as the shipped
// configuration lists them.
std::span<const KeySpec> key_table();

// Whether [name] is a section of the table.
bool known_section(std::string_view name);

// For "(allowed: ...)" in error messages: the keys of `section` in the
// table's order ("url, token, ..."), and every section ("[stream], [storage], ...").
std::string allowed_keys(std::string_view section);
std::string allowed_sections();

// How messages name a key: "[stream] url".
std::string key_name(std::string_view section, std::string_view key);

// ---- values the table's neighbours share ----------------------------------------

// `s` without the white space (std::isspace) at either end.
std::string_view trim(std::string_view s);

// Whether `value` can be sent as a bearer token: non-empty, without white
// space, control bytes or commas. The error names origin and never the value,
// so a token file is checked exactly as a token given as a key.
Status check_token(std::string_view value, const Origin& origin);

// `bytes` in the largest unit that divides it ("16MiB", "3KiB", "1000"): text
// that the size keys (max_message_bytes, buffer) read back as `bytes`.
std::string format_size(std::uint64_t bytes);

// ---- the environment -----------------------------------------------------------

// The value of `name` in `env`, or nullptr when it is not there (an empty
// string when it is set to the empty string).
const char* env_value(const Environment& env, const char* name);

// A variable that sets a key. Most take their key's syntax; `own` is the
// setter of one that has a syntax of its own (PERSIST: 1 or 0;
// SNAPSHOT_INTERVAL: milliseconds), `own_syntax` what that syntax allows.
// A variable set to the empty string counts as unset unless `empty_is_value`
// (DELTATAP_HTTP, where empty disables the HTTP API).
struct EnvSpec {
  const char* name;          // "DELTATAP_URL"
  std::string_view section;  // of the key it sets: "stream"
  std::string_view key;      // "url"
  std::string_view own_syntax = {};
  Setter own = nullptr;
  bool empty_is_value = false;
};

// Every variable, in the order apply_environment applies them: DELTATAP_URL,
// DELTATAP_TOKEN, DB_PATH, DELTATAP_LOG_LEVEL, DELTATAP_LOG_FORMAT, PERSIST,
// SNAPSHOT_INTERVAL, RETENTION_DAYS, DELTATAP_POSTGRES_URL, DELTATAP_HTTP.
std::span<const EnvSpec> environment_table();

// Applies the variables of environment_table() over `config`, each through
// its key's setter or its own. Errors name the variable. Stops at the first
// bad value, leaving `config` partly updated: the caller discards it.
Status apply_environment(const Environment& env, Config& config);

// ---- the flags -----------------------------------------------------------------

// A command-line option that sets a key: "--url" sets "stream.url".
struct FlagSpec {
  std::string_view flag;
  std::string_view key;   // "section.key" in CommandLine::overrides
};

// The spec of `flag` ("--url"), or nullptr for any option that is not one of
// --url, --token, --db, --http, --log-level, --log-format.
const FlagSpec* find_value_flag(std::string_view flag);

// The deltatapd options that set [section] key: {"--url"} for stream.url,
// {"--persist", "--no-persist"} for storage.enabled, {} for a key that only
// the file and the environment set.
std::vector<std::string_view> key_flags(std::string_view section, std::string_view key);

// Applies CommandLine::overrides ("section.key" -> value) over `config`, in
// the map's order. Errors name the flag ("--url"; "--persist/--no-persist" for
// storage.enabled) and refuse an id that is not in the table. Stops at the
// first bad value, as apply_environment does.
Status apply_overrides(const std::map<std::string, std::string>& overrides, Config& config);

}  // namespace deltatap
