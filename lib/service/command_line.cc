// deltatapd's arguments (service/command_line.h). Which flag sets which key
// is the key table's business (service/config_keys.h); this file only reads
// the argument list.
#include "service/command_line.h"

#include <optional>
#include <string_view>

#include "base/json_text.h"
#include "base/redact.h"
#include "service/config_keys.h"

namespace deltatap {

Result<CommandLine> parse_command_line(int argc, const char* const* argv) {
  CommandLine cmdline;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == "-h") arg = "--help";
    if (arg.substr(0, 2) != "--" || arg.size() == 2) {
      // Quoted with any URL in it redacted: a stream URL given without --url.
      return Error{"unexpected argument " + json_quoted(redact_urls_in(arg)) +
                   " (deltatapd takes only options)"};
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
      if (inline_value) {
        return Error{"option " + name + " takes no value (got " +
                     json_quoted(redact_urls_in(*inline_value)) + ")"};
      }
      if (toggle) *toggle = true;
      else cmdline.overrides["storage.enabled"] = name == "--persist" ? "on" : "off";
      continue;
    }

    const FlagSpec* spec = find_value_flag(name);
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
    "  --check-config       validate, print the effective configuration (secrets,\n"
    "                       and user info and query values in URLs, hidden) and exit\n"
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
    "Every key, its default and its environment variable are described in\n"
    "/etc/deltatap/deltatap.conf as installed; the shipped copy stays in\n"
    "/usr/share/doc/deltatap/examples/deltatap.conf.\n";

}  // namespace deltatap
