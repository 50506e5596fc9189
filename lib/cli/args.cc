#include "cli/args.h"

#include <algorithm>
#include <set>
#include <string_view>

#include "base/duration.h"
#include "base/json_text.h"

namespace deltatap::cli {

const char kUsageText[] =
    "usage: deltatap [--db PATH | --url URL] [--token T | --token-file F] [--utc | --local]\n"
    "                [--color auto|always|never] COMMAND [OPTIONS]\n"
    "\n"
    "Questions about the session-delta history deltatapd keeps.\n"
    "\n"
    "Where the answers come from:\n"
    "  --db PATH          a snapshot file (e.g. /var/lib/deltatap/data/sessions.sqlite),\n"
    "                     opened read-only; the daemon need not run\n"
    "  --url URL          the running daemon's HTTP API (default " "http://127.0.0.1:9477)\n"
    "  --token T          bearer token when the API has [http] token set\n"
    "  --token-file F     read the token from a file instead\n"
    "\n"
    "Output:\n"
    "  --utc, --local     times in tables in UTC or local time (default local);\n"
    "                     json, ndjson and csv always carry the stored UTC form\n"
    "  --color WHEN       auto (default: only on a terminal, not with NO_COLOR), always, never\n"
    "\n"
    "Commands:\n"
    "  stats              what is stored, file and memory sizes, snapshot state\n"
    "  query              deltas, newest first, filtered by session, type and time\n"
    "  sessions           one line per session: counts by type, first/last seen, status\n"
    "  timeline ID        a session's history in arrival order, gaps and inferred steps marked\n"
    "  export             the whole history as json, ndjson or csv\n"
    "  cleanup            delete deltas stored before a time\n"
    "  snapshot           make the daemon write its snapshot now (live only)\n"
    "  check              integrity and schema version (file), readiness (live)\n"
    "  analytics ANSWER   durations, approvals or heatmap over a window (default 30 days)\n"
    "  migrate            rewrite a file as schema version 1 (for an older deltatap) or 2\n"
    "\n"
    "'deltatap COMMAND --help' describes a command's options.\n"
    "Exit codes: 0 done, 1 the operation failed, 2 usage error.\n";

namespace {

// The age is read by the API (olderThan), with base/duration.h's syntax and a
// unit required; the assert keeps this text's list of units in step with it.
constexpr char kCleanupHelp[] =
    "usage: deltatap cleanup --older-than 30d|12h|ISO-8601\n"
    "\n"
    "Deletes the deltas stored (created_at) before the given age or time and prints\n"
    "how many went. An age is a number with a unit: ms, s, m, h or d, or w for weeks\n"
    "(30d, 12h, 0.5h, 2w); a bare number is refused.\n"
    "Live, the daemon deletes them and its next snapshot carries the change.\n"
    "With --db, the file itself is rewritten atomically (temporary file, fsync,\n"
    "rename). Do that only on a file no daemon is writing: a running deltatapd keeps\n"
    "its own copy in memory and its next snapshot would bring the rows back.\n";
static_assert(std::string_view(kCleanupHelp).find(kDurationUnits) != std::string_view::npos,
              "the cleanup help lists base/duration.h's units");

}  // namespace

const std::vector<CommandSpec>& command_table() {
  static const std::vector<CommandSpec> table = {
      {"stats", {{"--format", true}}, 0,
       "usage: deltatap stats [--format table|json]\n"
       "\n"
       "What is stored: delta and session counts, oldest and newest delta, database size in\n"
       "memory and on disk, schema version; live, also the stream connection and the last\n"
       "snapshot. --format json prints GET /api/stats as it is.\n"},
      {"query",
       {{"--session", true}, {"--type", true}, {"--since", true}, {"--until", true},
        {"--limit", true}, {"--before", true}, {"--format", true}, {"--archive", false}},
       0,
       "usage: deltatap query [--session ID] [--type created|updated|deleted]\n"
       "                      [--since TIME] [--until TIME] [--limit N] [--before CURSOR]\n"
       "                      [--format table|json|ndjson|csv] [--archive]\n"
       "\n"
       "Deltas, newest first (ties by id). Filters combine: --since includes, --until\n"
       "excludes; TIME is ISO 8601 (2025-11-10T12:00:00Z, or with an offset). --limit is\n"
       "1 to 1000 (default 100). When more deltas match, the table ends with the cursor\n"
       "to pass as --before for the next page (json: the \"next\" field).\n"
       "The table's CHANGED column lists the fields an update changed. ORIGIN is empty\n"
       "for what the backend sent and names what deltatap inferred: resync (a session\n"
       "re-announced after a backend restart with a changed state) or reconcile (brought\n"
       "in line with the backend's live sessions). GAP says gap when changes of the\n"
       "session before that delta were not observed. json, ndjson and csv carry both\n"
       "as origin (stream, resync, reconcile) and gap (true/false; csv 1/0).\n"
       "--archive reads the monthly archive files ([retention] archive; with --db the\n"
       "directory archive beside the file) as well as memory, in the same order and\n"
       "with the same cursor (docs/archives.md).\n"},
      {"sessions", {{"--format", true}}, 0,
       "usage: deltatap sessions [--format table|json|ndjson|csv]\n"
       "\n"
       "One row per session: deltas by type, first and last seen (delta timestamps), the\n"
       "type of the newest delta and, in the table, the planStatus of its state.\n"},
      {"timeline", {{"--format", true}, {"--archive", false}}, 1,
       "usage: deltatap timeline SESSION_ID [--format text|json] [--archive]\n"
       "\n"
       "The session's history in the order it arrived (by delta id, never re-sorted by\n"
       "timestamp), with the fields each delta changed between before and after, nested\n"
       "paths included:\n"
       "    planStatus: pending → in_progress\n"
       "    metadata.attempt: 3 → 4\n"
       "    + summary: Fix the flaky test        (added)\n"
       "    - approval: pending                  (removed)\n"
       "A created delta lists the fields it set. Numbers print exactly as stored.\n"
       "What deltatap did not see is said before the delta that follows it:\n"
       "    -- changes between 12:00:05 and 12:07:40 were not observed\n"
       "and a delta it inferred says so: \"inferred: re-announced after a backend\n"
       "restart\" or \"inferred: reconciled with the backend's live sessions\". A time\n"
       "earlier than the step before it is marked \"(timestamp earlier than the previous\n"
       "step)\". --format json gives each delta its origin and gap.\n"
       "--archive adds the session's deltas kept in the archive files (query --help).\n"
       "Put -- before an id that starts with '-'.\n"},
      {"export", {{"--format", true}, {"--out", true}, {"--csv-raw", false}, {"--to", true},
                  {"--source", true}, {"--archive", false}}, 0,
       "usage: deltatap export [--format json|ndjson|csv] [--csv-raw] [--out FILE]\n"
       "                       [--archive]\n"
       "       deltatap export --to postgresql://... [--source NAME] [--archive]\n"
       "\n"
       "The whole history, newest first (the query order), streamed: json is an array of\n"
       "deltas (default), ndjson one delta per line, csv RFC 4180 with a header line\n"
       "(id,type,sessionId,timestamp,createdAt,before,after,origin,gap; states as JSON\n"
       "text, gap 0 or 1). origin is stream for what the backend sent, resync or\n"
       "reconcile for what deltatap inferred; gap 1 means changes of the session before\n"
       "that delta were not observed. --archive exports the archive files' deltas too\n"
       "(query --help), in the same order.\n"
       "\n"
       "CSV cells that a spreadsheet would run as a formula (those starting with\n"
       "= + - @, a tab or a carriage return, such as a session id =cmd|' /C calc'!A0)\n"
       "get a leading ' so that they show as text. --csv-raw writes every cell as\n"
       "stored, for programs that read the CSV; never open such a file in a spreadsheet.\n"
       "\n"
       "--out writes FILE atomically (a temporary file renamed at the end), so an\n"
       "interrupted export never leaves a truncated FILE. A FILE that exists keeps its\n"
       "mode (and its owner and group where you may keep them); a new FILE is made\n"
       "0600, less if your umask says so. A character device or FIFO (/dev/null, a\n"
       "terminal, a named pipe) is written in place; a directory, block device or\n"
       "socket is refused. A link is followed: the file it names is replaced.\n"
       "\n"
       "--to copies the history of a file (give it with --db, before the command)\n"
       "into a PostgreSQL database (a libpq connection string or URI; the password\n"
       "from it, PGPASSFILE or ~/.pgpass) in the schema the daemon's [postgres] sink\n"
       "writes (docs/postgres.md), as source NAME (default: the host name). Running it\n"
       "again adds nothing. With --archive the archive files beside the file (their\n"
       "oldest month first) go too. A progress bar on a terminal, else one summary line.\n"},
      {"cleanup", {{"--older-than", true}}, 0, kCleanupHelp},
      {"snapshot", {}, 0,
       "usage: deltatap snapshot\n"
       "\n"
       "Asks the running daemon to write its snapshot file now (like SIGUSR1) and prints\n"
       "the file, its size and how long it took. Needs the live daemon (not --db).\n"},
      {"migrate", {{"--to", true}}, 0,
       "usage: deltatap migrate --to 1|3   (on the file given by the global option)\n"
       "\n"
       "Rewrites a database file as another schema version, atomically (a crash leaves\n"
       "the old file or the new one). --to 1 rolls back for an older deltatap: every\n"
       "delta is kept, without its origin and gap, and the session ledger is dropped\n"
       "(version 1 rebuilds its own summary), and compressed states are written out as\n"
       "JSON. --to 3 does ahead of time what deltatapd does when it loads a file of\n"
       "version 0, 1 or 2. Refused while a deltatapd holds the\n"
       "file's directory. The file is named with --db: deltatap --db FILE migrate --to 1\n"},
      {"analytics",
       {{"--since", true}, {"--until", true}, {"--repo", true}, {"--tz", true}, {"--format", true}},
       1,
       "usage: deltatap analytics durations|approvals|heatmap [--since WHEN] [--until WHEN]\n"
       "                          [--repo REPO] [--tz ZONE] [--format table|json|csv]\n"
       "\n"
       "Answers over a window: --since includes, --until excludes; WHEN is an ISO 8601\n"
       "time or an age with a unit (30d, 12h, 2w) back from now. Default: the last 30\n"
       "days; at most 366 days. --repo keeps the sessions of one repo.\n"
       "  durations  created to succeeded/failed and created to deleted, for sessions\n"
       "             created in the window: count, p50, p90, p99 (nearest rank), max,\n"
       "             by outcome; still open ones counted as open; those whose life has a\n"
       "             gap (spanning gaps) or an inferred end (inferred) counted apart.\n"
       "  approvals  approved and rejected by the time of the decision, the approval\n"
       "             rate, pending sessions, time to decision p50/p90, per local day.\n"
       "  heatmap    deltas by local weekday and hour (a grid of 7 x 24), and per day.\n"
       "--tz is an IANA time zone (Europe/Berlin; default UTC) for the local days and\n"
       "hours of approvals and heatmap. On a terminal with colour the heatmap's cells are\n"
       "shade blocks in four steps up to the busiest hour; otherwise, and with NO_COLOR\n"
       "or --color never, the counts. json is the API's answer as it is; csv\n"
       "is a table (durations by measure, approvals by day, the heatmap's grid).\n"},
      {"check", {{"--archive", false}}, 0,
       "usage: deltatap check [--archive]\n"
       "\n"
       "With --db: SQLite's integrity check and the schema version of the file (exit 1\n"
       "when the file is damaged or from a newer deltatap). Live: the daemon's readiness\n"
       "(GET /readyz) with its reasons, and the schema version it runs.\n"
       "--archive (with --db) also checks every archive file in the directory archive\n"
       "beside the file: SQLite's integrity check, and that every state decodes (exit 1\n"
       "when one fails).\n"},
  };
  return table;
}

const CommandSpec* find_command(std::string_view name) {
  for (const auto& spec : command_table()) {
    if (spec.name == name) return &spec;
  }
  return nullptr;
}

std::optional<std::string> Invocation::option(std::string_view name) const {
  auto found = options.find(name);
  if (found == options.end()) return std::nullopt;
  return found->second;
}

std::variant<Invocation, UsageError> parse_args(const std::vector<std::string>& args) {
  Invocation inv;
  std::set<std::string> seen_globals;
  bool options_done = false;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (options_done || arg.size() < 2 || arg[0] != '-') {
      if (inv.command.empty()) {
        inv.command = arg;
      } else {
        inv.positionals.push_back(arg);
      }
      continue;
    }
    if (arg == "--") {
      options_done = true;
      continue;
    }
    if (arg == "-h" || arg == "--help") {
      inv.help = true;
      continue;
    }
    if (arg == "--version") {
      inv.version = true;
      continue;
    }
    std::string name = arg;
    std::optional<std::string> value;
    if (auto eq = arg.find('='); eq != std::string::npos && arg.starts_with("--")) {
      name = arg.substr(0, eq);
      value = arg.substr(eq + 1);
    }
    auto take_value = [&]() -> std::optional<std::string> {
      if (value) return value;
      if (i + 1 < args.size()) return args[++i];
      return std::nullopt;
    };
    static const std::set<std::string, std::less<>> kGlobalWithValue = {
        "--db", "--url", "--token", "--token-file", "--color"};
    static const std::set<std::string, std::less<>> kGlobalFlags = {"--utc", "--local",
                                                                    "--no-color"};
    if (kGlobalFlags.count(name)) {
      if (value) return UsageError{name + " takes no value"};
      if (name == "--no-color") inv.color = "never";
      else inv.utc = name == "--utc";
      continue;
    }
    if (kGlobalWithValue.count(name)) {
      auto v = take_value();
      if (!v) return UsageError{name + " needs a value"};
      if (!seen_globals.insert(name).second) return UsageError{name + " is given more than once"};
      if (name == "--db") inv.db = *v;
      else if (name == "--url") inv.url = *v;
      else if (name == "--token") inv.token = *v;
      else if (name == "--token-file") inv.token_file = *v;
      else inv.color = *v;
      continue;
    }
    const CommandSpec* spec = find_command(inv.command);
    if (!spec) {
      return UsageError{inv.command.empty() ? "unknown option " + name + " (before any command)"
                                            : "unknown command " + json_quoted(inv.command)};
    }
    auto option = std::find_if(spec->options.begin(), spec->options.end(),
                               [&](const OptionSpec& o) { return o.name == name; });
    if (option == spec->options.end()) {
      return UsageError{"unknown option " + name + " for " + inv.command};
    }
    if (!option->takes_value) {  // a flag: present or not, and it may repeat
      if (value) return UsageError{name + " takes no value"};
      inv.options[name] = "";
      continue;
    }
    auto v = take_value();
    if (!v) return UsageError{name + " needs a value"};
    if (!inv.options.emplace(name, *v).second) {
      return UsageError{name + " is given more than once"};
    }
  }
  if (inv.color != "auto" && inv.color != "always" && inv.color != "never") {
    return UsageError{"--color must be auto, always or never, not " + json_quoted(inv.color)};
  }
  if (inv.db && inv.url) return UsageError{"--db and --url exclude each other"};
  if (inv.token && inv.token_file) return UsageError{"--token and --token-file exclude each other"};
  return inv;
}

}  // namespace deltatap::cli
