// Config loading: INI file, then environment, then command-line flags, each value
// validated where it enters so that the error can say where it came from. Every
// layer sets values through the one key table (service/config_keys.h); this file
// holds what is not a key: the INI reader, the token files, the order of the
// layers, the checks across keys, and --check-config's text.
//
// Choices the design leaves open (documented in conf/deltatap.conf and --help):
// - Token precedence: --token > DELTATAP_TOKEN > [stream] token > [stream] token_file
//   > $CREDENTIALS_DIRECTORY/token. A token file outside the credentials directory
//   must not be readable by group or others.
// - A key may appear once per file (except `header`); no inline comments, so a
//   value may contain '#' or ';'. A value wrapped in double quotes is unwrapped.
// - The choices about environment variables and flags are in service/config_keys.h.
#include "service/config.h"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <fstream>
#include <sstream>

#include "base/duration.h"
#include "base/files.h"
#include "base/json_text.h"
#include "base/redact.h"
#include "base/secrets.h"
#include "service/config_keys.h"
#include "sinks/pg_connection.h"

extern char** environ;

namespace deltatap {

namespace {

// ---- the file --------------------------------------------------------------

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
        return Error{where + "malformed section header " + json_quoted(redact_urls_in(line)) +
                     " (expected [section])"};
      }
      std::string name(trim(line.substr(1, line.size() - 2)));
      if (!known_section(name)) {
        return Error{where + "unknown section " + json_quoted("[" + name + "]") + " (allowed: " +
                     allowed_sections() + ")"};
      }
      section = name;
      continue;
    }
    auto equals = line.find('=');
    if (equals == std::string_view::npos) {
      // The line is quoted with any URL in it redacted: it may be a url key
      // that lost its "=".
      return Error{where + "expected \"key = value\", \"[section]\" or a comment, got " +
                   json_quoted(redact_urls_in(line))};
    }
    std::string key(trim(line.substr(0, equals)));
    std::string_view value = trim(line.substr(equals + 1));
    if (value.size() >= 2 && value.front() == '"' && value.back() == '"') {
      value = value.substr(1, value.size() - 2);
    }
    if (key.empty()) {
      return Error{where + "expected \"key = value\", got a value without a key: " +
                   json_quoted(redact_urls_in(line))};
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

// ---- the token -------------------------------------------------------------

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

}  // namespace

// ---- public interface --------------------------------------------------------

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
  // Without files, delta ids start again at 1 at every start: the sink could
  // not tell a new delta from an old one of the same id.
  if (!config.postgres.url.empty() && !config.storage.enabled) {
    return Error{"[postgres] url is set but [storage] enabled is off (expected storage on: the "
                 "sink resumes from the store's files and needs delta ids that never repeat)"};
  }
  // The archive files live beside the snapshot file, and a delta leaves
  // memory for them only when its id will never be reused.
  if (config.retention.archive && !config.storage.enabled) {
    return Error{"[retention] archive is on but [storage] enabled is off (expected storage on: "
                 "archive files are kept in the directory archive beside [storage] path, which "
                 "only a store with files has; or archive = off)"};
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
  out << "# secrets are shown as (hidden) when set and (none) when not; in URLs, the user\n"
         "# info and query values are shown as (hidden)\n";

  out << "\n[stream]\n";
  // A query value may be a credential (some deployments put the token there).
  line(out, "url", redact_url(config.stream.url));
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
  line(out, "reconcile", onoff(config.stream.reconcile));
  if (config.stream.reconcile_url.empty()) {
    auto derived = reconcile_url_for(config.stream.url);
    out << "# reconcile_url empty: derived from url, "
        << (derived ? redact_url(*derived) : std::string("(none: url is not usable)")) << "\n";
  }
  line(out, "reconcile_url", redact_url(config.stream.reconcile_url));

  out << "\n[storage]\n";
  line(out, "enabled", onoff(config.storage.enabled));
  line(out, "path", config.storage.path);
  line(out, "snapshot_interval", format_duration(config.storage.snapshot_interval));
  line(out, "journal", onoff(config.storage.journal));
  line(out, "journal_fsync_interval", format_duration(config.storage.journal_fsync_interval));
  line(out, "max_deltas", std::to_string(config.storage.max_deltas));
  line(out, "compression", config.storage.compression == Compression::zstd ? "zstd" : "off");

  out << "\n[retention]\n";
  line(out, "days", std::to_string(config.retention.days));
  line(out, "archive", onoff(config.retention.archive));
  line(out, "archive_days", std::to_string(config.retention.archive_days));

  out << "\n[http]\n";
  if (config.http.listen.empty()) out << "# empty: the HTTP API is disabled\n";
  line(out, "listen", config.http.listen);
  line(out, "token", secret(config.http.token));

  out << "\n[postgres]\n";
  if (config.postgres.url.empty()) out << "# url empty: no PostgreSQL sink\n";
  line(out, "url", config.postgres.url.empty() ? "" : redact_conninfo(config.postgres.url));
  if (config.postgres.source.empty()) out << "# source empty: the host name\n";
  line(out, "source", config.postgres.source);
  line(out, "password_file", config.postgres.password_file);

  out << "\n[log]\n";
  line(out, "level", to_string(config.log.level));
  if (!config.log.format) out << "# auto: journal when started by systemd, else text\n";
  line(out, "format", config.log.format ? to_string(*config.log.format) : "auto");
  return out.str();
}

}  // namespace deltatap
