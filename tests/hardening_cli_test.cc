// Hardening of what people read: the CLI's tables and timeline, deltatapd's
// --check-config and refusals, and the daemon's log. Each case performs the
// steps of issue 13's item against the real executables:
//   9   a session id that would set the window title and clear the screen,
//       streamed to a real deltatapd, read back through the real CLI;
//   14  URLs with a password or a token in their query, given to the real
//       deltatapd --check-config (accepted, and refused);
//   16  states nested 300 levels deep (and as deep as the parser allows, and
//       deeper) read by the real CLI from a file;
//   17  DB_PATH=" " and [stream] ca_file = / given to the real deltatapd;
//   18  the real deltatapd's JSON log against a dead URL, then a live one.
#define BOOST_TEST_MODULE hardening_cli
#include <boost/test/unit_test.hpp>

#include <signal.h>
#include <sys/stat.h>

#include <rapidjson/document.h>

#include <algorithm>
#include <cctype>
#include <initializer_list>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "base/json_text.h"
#include "base/logging.h"
#include "base/redact.h"
#include "base/timestamp.h"
#include "cli/human_text.h"
#include "ingest/parser.h"
#include "storage/snapshot.h"
#include "storage/store.h"
#include "test_support.h"

using namespace deltatap;
using namespace deltatap::testing;
using deltatap::cli::escape_controls;

namespace {

struct QuietLogs {
  QuietLogs() { init_logging({LogLevel::warning, LogFormat::text}); }
};
BOOST_TEST_GLOBAL_FIXTURE(QuietLogs);

// Session ids a hostile backend could send. The first one is the issue's: OSC 0
// sets the window title (ended by BEL), CSI 2J clears the screen.
const std::string kHostileId = "sess_\x1b]0;PWNED\x07\x1b[2J";
const std::string kHostileShown = "sess_\\x1b]0;PWNED\\x07\\x1b[2J";
// C1 CSI (U+009B, a one-character CSI for some terminals), DEL, and RIGHT-TO-LEFT
// OVERRIDE (U+202E), which reverses what follows it on the line.
const std::string kC1Id = "sess_c1_\xc2\x9b" "31m\x7f\xe2\x80\xae";
const std::string kC1Shown = "sess_c1_\\u009b31m\\x7f\\u202e";
// Text that must come through as it is, and takes 14 columns (東 and 京 two each).
const std::string kWideId = "sess_caf\xc3\xa9_\xe6\x9d\xb1\xe4\xba\xac";
constexpr std::size_t kWideColumns = 14;

CommandResult run_cli(std::vector<std::string> args) {
  args.insert(args.begin(), (bin_dir() / "deltatap").string());
  return run_command(args, {{"TZ", "UTC"}});
}

// Fails the test at the first byte a terminal would act on rather than show:
// C0 controls other than the newline that ends each line, DEL, C1 controls (as
// UTF-8) and the bidirectional overrides.
void expect_terminal_safe(const std::string& what, const std::string& text) {
  for (std::size_t i = 0; i < text.size(); ++i) {
    auto c = static_cast<unsigned char>(text[i]);
    bool control = (c < 0x20 && c != '\n') || c == 0x7f;
    bool c1 = c == 0xC2 && i + 1 < text.size() &&
              static_cast<unsigned char>(text[i + 1]) >= 0x80 &&
              static_cast<unsigned char>(text[i + 1]) <= 0x9F;
    bool bidi = text.compare(i, 3, "\xe2\x80\xae") == 0;
    BOOST_TEST_REQUIRE(!(control || c1 || bidi),
                       what << ": byte " << static_cast<int>(c) << " at " << i << " in:\n"
                            << escape_controls(text));
  }
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

// A state nested `levels` objects deep: {"a":{"a":...{"v":leaf}...}}.
std::string nested(int levels, int leaf) {
  std::string out;
  for (int i = 1; i < levels; ++i) out += "{\"a\":";
  out += "{\"v\":" + std::to_string(leaf) + "}";
  out += std::string(static_cast<std::size_t>(levels - 1), '}');
  return out;
}

// The path of nested()'s leaf, as the CLI names it.
std::string nested_path(int levels) {
  std::string out;
  for (int i = 1; i < levels; ++i) out += "a.";
  return out + "v";
}

std::string frame(std::string_view type, const std::string& session,
                  const std::optional<std::string>& before, const std::optional<std::string>& after,
                  int second) {
  std::string out = "{\"type\":\"" + std::string(type) + "\",\"sessionId\":" + json_quoted(session);
  if (before) out += ",\"before\":" + *before;
  if (after) out += ",\"after\":" + *after;
  out += ",\"timestamp\":\"2025-11-10T12:00:" + std::string(second < 10 ? "0" : "") +
         std::to_string(second) + "Z\"}";
  return out;
}

// Every complete line of a JSON log, parsed; a line that is not JSON fails the
// test. A last line without its newline may still be being written: left out.
std::vector<rapidjson::Document> json_lines(const std::string& log) {
  std::vector<rapidjson::Document> out;
  for (const auto& line : lines_of(log.substr(0, log.rfind('\n') + 1))) {
    if (line.empty()) continue;
    rapidjson::Document doc;
    doc.Parse(line.c_str(), line.size());
    BOOST_TEST_REQUIRE((!doc.HasParseError() && doc.IsObject()), "not a JSON log line: " << line);
    out.push_back(std::move(doc));
  }
  return out;
}

std::string member(const rapidjson::Value& doc, const char* key) {
  return doc.HasMember(key) && doc[key].IsString() ? doc[key].GetString() : "";
}

// deltatapd's environment with every variable it reads unset, plus `more`.
std::map<std::string, std::string> clean_env(std::map<std::string, std::string> more = {}) {
  for (const char* name : {"DELTATAP_URL", "DELTATAP_TOKEN", "DB_PATH", "PERSIST", "SNAPSHOT_INTERVAL",
                           "RETENTION_DAYS", "DELTATAP_HTTP", "DELTATAP_LOG_LEVEL",
                           "DELTATAP_LOG_FORMAT", "CREDENTIALS_DIRECTORY", "NOTIFY_SOCKET",
                           "JOURNAL_STREAM", "INVOCATION_ID"}) {
    more.emplace(name, "\x01unset");
  }
  return more;
}

}  // namespace

// --- 9: control characters in everything the CLI prints for people ---------------

BOOST_AUTO_TEST_CASE(escaping_keeps_text_and_counts_columns) {
  BOOST_TEST(cli::escape_controls(kHostileId) == kHostileShown);
  BOOST_TEST(cli::escape_controls(kC1Id) == kC1Shown);
  BOOST_TEST(cli::escape_controls(kWideId) == kWideId);
  BOOST_TEST(cli::escape_controls("a\tb\nc\x01") == "a\\x09b\\x0ac\\x01");
  BOOST_TEST(cli::escape_controls("bad \xff byte") == "bad \\xff byte");  // stays valid UTF-8
  BOOST_TEST(cli::escape_controls(kHostileShown) == kHostileShown);      // idempotent
  BOOST_TEST(cli::display_width(kWideId) == kWideColumns);
  BOOST_TEST(cli::display_width("e\xcc\x81") == 1u);  // e + COMBINING ACUTE ACCENT
  // Clipped by columns, never inside a character: 東 does not fit in the last column.
  BOOST_TEST(cli::clip("\xe6\x9d\xb1\xe4\xba\xac\xe6\x9d\xb1", 4) == "\xe6\x9d\xb1\xe2\x80\xa6");
  BOOST_TEST(cli::display_width(cli::clip(kWideId, 12)) <= 12u);
}

BOOST_AUTO_TEST_CASE(stream_text_reaches_the_terminal_escaped) {
  TempDir dir;
  // The backend's frames, as its JSON would carry them; the parser decodes the
  // escapes, so the daemon stores the raw control characters.
  const std::string deep_before = nested(300, 1), deep_after = nested(300, 2);
  const std::vector<std::string> frames = {
      frame("created", kHostileId, {}, R"({"title":"\u001b]0;PWNED\u0007","planStatus":"x\u001b[2J"})", 1),
      frame("updated", kHostileId, R"({"title":"\u001b]0;PWNED\u0007","planStatus":"x\u001b[2J"})",
            R"({"title":"\u009b2J","planStatus":"x\u001b[2J","k\u001b[2J":"\u007f"})", 2),
      frame("created", kC1Id, {}, R"({"planStatus":"\u009b2J\u202e"})", 3),
      frame("created", kWideId, {}, R"({"planStatus":"caf\u00e9 \u6771\u4eac"})", 4),
      frame("created", "sess_deep", {}, deep_before, 5),
      frame("updated", "sess_deep", deep_before, deep_after, 6),
  };
  std::string script = "[";
  for (std::size_t i = 0; i < frames.size(); ++i) {
    script += (i ? "," : "") + std::string("{\"text\":") + json_quoted(frames[i]) + "}";
  }
  write_file(dir / "script.json", script + "]");

  Process server({{"/usr/bin/python3", (source_dir() / "tests/fixtures/frame_server.py").string(),
                   "--script", (dir / "script.json").string(), "--ping-interval", "1"},
                  {},
                  dir.path()});
  int ws_port = read_printed_port(server);
  BOOST_REQUIRE_MESSAGE(ws_port > 0, "frame_server.py did not start: " << server.stderr_text());
  int http_port = free_port();
  auto env = daemon_env("ws://127.0.0.1:" + std::to_string(ws_port) + "/ws", "");
  env["DELTATAP_HTTP"] = "127.0.0.1:" + std::to_string(http_port);
  Process daemon({deltatapd_argv(), env, dir.path()});
  const std::string count = "\"deltaCount\":" + std::to_string(frames.size());
  BOOST_REQUIRE_MESSAGE(wait_until([&] {
                          return http_request(http_port, "GET", "/api/stats").body.find(count) !=
                                 std::string::npos;
                        }),
                        "the daemon did not store the frames: " << daemon.stderr_text());
  const std::string url = "http://127.0.0.1:" + std::to_string(http_port);

  auto query = run_cli({"--url", url, "query", "--format", "table"});
  BOOST_TEST_REQUIRE(query.exit_code == 0, query.err);
  expect_terminal_safe("query", query.out);
  BOOST_TEST(query.out.find(kHostileShown) != std::string::npos, query.out);
  BOOST_TEST(query.out.find(kC1Shown) != std::string::npos, query.out);
  BOOST_TEST(query.out.find(kWideId) != std::string::npos, query.out);
  // The CHANGED column names the odd key JSON-quoted and the deep path clipped.
  BOOST_TEST(query.out.find("+[\"k\\u001b[2J\"]") != std::string::npos, query.out);
  BOOST_TEST(query.out.find("a.a.a.a.a") != std::string::npos, query.out);

  auto sessions = run_cli({"--url", url, "sessions", "--format", "table"});
  BOOST_TEST_REQUIRE(sessions.exit_code == 0, sessions.err);
  expect_terminal_safe("sessions", sessions.out);
  BOOST_TEST(sessions.out.find(kHostileShown) != std::string::npos, sessions.out);
  BOOST_TEST(sessions.out.find("\\u009b2J\\u202e") != std::string::npos, sessions.out);  // STATUS
  BOOST_TEST(sessions.out.find("caf\xc3\xa9 \xe6\x9d\xb1\xe4\xba\xac") != std::string::npos);
  // Columns line up on screen: every row's CREATED count starts in the column
  // where the header's does, the wide characters counted two columns each.
  auto rows = lines_of(sessions.out);
  BOOST_TEST_REQUIRE(rows.size() == 5u, sessions.out);
  std::size_t column = rows[0].find("CREATED");
  const std::vector<std::pair<std::string, std::size_t>> shown = {
      {kHostileShown, kHostileShown.size()}, {kC1Shown, kC1Shown.size()},
      {kWideId, kWideColumns}, {"sess_deep", 9}};
  for (const auto& [id, columns] : shown) {
    auto row = std::find_if(rows.begin() + 1, rows.end(),
                            [&](const std::string& r) { return r.rfind(id + " ", 0) == 0; });
    BOOST_TEST_REQUIRE((row != rows.end()), "no row for " << id << ":\n" << sessions.out);
    std::size_t spaces = row->find_first_not_of(' ', id.size()) - id.size();
    BOOST_TEST(columns + spaces == column, *row);
  }

  auto timeline = run_cli({"--url", url, "timeline", kHostileId});
  BOOST_TEST_REQUIRE(timeline.exit_code == 0, timeline.err);
  expect_terminal_safe("timeline", timeline.out);
  BOOST_TEST(timeline.out.find("Session " + kHostileShown + ": 2 deltas") == 0u, timeline.out);
  BOOST_TEST(timeline.out.find("title: \"\\u001b]0;PWNED\\u0007\" → \\u009b2J") != std::string::npos,
             timeline.out);

  auto c1 = run_cli({"--url", url, "timeline", kC1Id});
  BOOST_TEST_REQUIRE(c1.exit_code == 0, c1.err);
  expect_terminal_safe("timeline", c1.out);
  BOOST_TEST(c1.out.find("Session " + kC1Shown) == 0u, c1.out);

  // A state 300 levels deep came through the parser, so the CLI diffs it.
  auto deep = run_cli({"--url", url, "--utc", "timeline", "sess_deep"});
  BOOST_TEST_REQUIRE(deep.exit_code == 0, deep.err);
  BOOST_TEST(deep.out.find("    " + nested_path(300) + ": 1 → 2\n") != std::string::npos, deep.out);
  BOOST_TEST(deep.out.find("not valid JSON") == std::string::npos, deep.out);

  // An error message quotes the id as safely.
  auto unknown = run_cli({"--url", url, "timeline", "nobody\x1b[2J\xc2\x9b"});
  BOOST_TEST(unknown.exit_code == 1);
  expect_terminal_safe("error", unknown.err);
  BOOST_TEST(unknown.err.find("nobody\\u001b[2J\\u009b") != std::string::npos, unknown.err);

  // With colour on, the only escape sequences are the CLI's own SGR codes.
  auto coloured = run_cli({"--url", url, "--color", "always", "query", "--format", "table"});
  BOOST_TEST_REQUIRE(coloured.exit_code == 0, coloured.err);
  for (std::size_t at = coloured.out.find('\x1b'); at != std::string::npos;
       at = coloured.out.find('\x1b', at + 1)) {
    std::size_t end = coloured.out.find_first_not_of("0123456789;", at + 2);
    BOOST_TEST_REQUIRE((coloured.out.compare(at, 2, "\x1b[") == 0 && end != std::string::npos &&
                        coloured.out[end] == 'm'),
                       "not an SGR sequence at " << at << ": "
                                                 << escape_controls(coloured.out.substr(at, 20)));
  }
  BOOST_TEST(coloured.out.find('\x07') == std::string::npos);

  daemon.signal(SIGTERM);
  BOOST_TEST(daemon.wait(10s).value_or(-1) == 0, daemon.stderr_text());
  server.signal(SIGTERM);
}

// --- 16: one nesting limit for the parser and the CLI -------------------------------

BOOST_AUTO_TEST_CASE(states_as_deep_as_the_parser_allows_are_shown) {
  // The deepest state a frame can carry: the frame is a level of its own.
  const int deepest = kMaxDepth - 1;
  auto accepted = parse_frame(frame("created", "s", {}, nested(deepest, 1), 1), now_millis());
  BOOST_TEST_REQUIRE(accepted.deltas.size() == 1u);
  auto refused = parse_frame(frame("created", "s", {}, nested(deepest + 1, 1), 1), now_millis());
  BOOST_TEST_REQUIRE(refused.rejections.size() == 1u);
  BOOST_TEST(refused.rejections[0].reason == "too_deep");

  // A file holding what the parser accepts (300 levels, and the deepest), and a
  // state deeper than the parser would let through, written here directly.
  auto opened = Store::open_empty();
  BOOST_REQUIRE(opened.ok());
  auto& store = *opened.value();
  auto delta = [](const std::string& session, DeltaType type, std::optional<std::string> before,
                  std::optional<std::string> after, int second) {
    Delta d;
    d.session_id = session;
    d.type = type;
    d.before = std::move(before);
    d.after = std::move(after);
    d.timestamp = format_timestamp(TimePoint(std::chrono::seconds(1'762'776'000 + second)));
    return d;
  };
  const int too_deep = kMaxDepth + 88;
  std::vector<Delta> rows = {
      delta("d300", DeltaType::created, {}, nested(300, 1), 0),
      delta("d300", DeltaType::updated, nested(300, 1), nested(300, 2), 1),
      delta("deepest", DeltaType::updated, nested(deepest, 0), accepted.deltas[0].after, 2),
      delta("too_deep", DeltaType::updated, nested(too_deep, 1), nested(too_deep, 2), 3),
      delta("too_deep", DeltaType::deleted, nested(too_deep, 2), {}, 4),
      delta(kHostileId, DeltaType::created, {}, R"({"x":"\u001b[2J"})", 5),
  };
  BOOST_REQUIRE(store.save_batch(rows).ok());
  TempDir dir;
  auto file = dir / "sessions.sqlite";
  auto image = store.serialize();
  BOOST_REQUIRE(image.ok());
  BOOST_REQUIRE(write_snapshot_file(file.string(), image->view()).ok());

  auto d300 = run_cli({"--db", file.string(), "--utc", "timeline", "d300"});
  BOOST_TEST_REQUIRE(d300.exit_code == 0, d300.err);
  BOOST_TEST(d300.out.find("    + " + nested_path(300) + ": 1\n") != std::string::npos, d300.out);
  BOOST_TEST(d300.out.find("    " + nested_path(300) + ": 1 → 2\n") != std::string::npos, d300.out);
  BOOST_TEST(d300.out.find("not valid JSON") == std::string::npos, d300.out);

  auto at_limit = run_cli({"--db", file.string(), "timeline", "deepest"});
  BOOST_TEST_REQUIRE(at_limit.exit_code == 0, at_limit.err);
  BOOST_TEST(at_limit.out.find("    " + nested_path(deepest) + ": 0 → 1\n") != std::string::npos,
             at_limit.out.substr(0, 300));

  // Deeper than the parser allows: said so, not "not JSON", and nothing breaks.
  const std::string too_deep_text = "(a state is nested deeper than " + std::to_string(kMaxDepth) + " levels)";
  auto deeper = run_cli({"--db", file.string(), "timeline", "too_deep"});
  BOOST_TEST_REQUIRE(deeper.exit_code == 0, deeper.err);
  BOOST_TEST(deeper.out.find("    " + too_deep_text + "\n") != std::string::npos, deeper.out);
  BOOST_TEST(deeper.out.find("not valid JSON") == std::string::npos, deeper.out);
  auto deeper_json = run_cli({"--db", file.string(), "timeline", "too_deep", "--format", "json"});
  BOOST_TEST(deeper_json.exit_code == 0, deeper_json.err);
  rapidjson::Document doc;
  doc.Parse(deeper_json.out.c_str());
  BOOST_TEST(!doc.HasParseError(), deeper_json.out.substr(0, 300));

  auto table = run_cli({"--db", file.string(), "query", "--format", "table"});
  BOOST_TEST_REQUIRE(table.exit_code == 0, table.err);
  expect_terminal_safe("query", table.out);
  BOOST_TEST(table.out.find(too_deep_text) != std::string::npos, table.out);
  BOOST_TEST(table.out.find("not valid JSON") == std::string::npos, table.out);
  BOOST_TEST(table.out.find(kHostileShown) != std::string::npos, table.out);
  auto sessions = run_cli({"--db", file.string(), "sessions"});
  BOOST_TEST(sessions.exit_code == 0, sessions.err);
  expect_terminal_safe("sessions", sessions.out);
}

// --- 14: URLs with credentials in --check-config and in refusals --------------------

BOOST_AUTO_TEST_CASE(check_config_and_refusals_hide_url_credentials) {
  TempDir dir;
  auto daemon = [&](std::vector<std::string> args, std::map<std::string, std::string> env = {}) {
    return run_command(deltatapd_argv(std::move(args)), clean_env(std::move(env)), dir.path());
  };
  auto expect_hidden = [](const CommandResult& result, const std::string& context) {
    for (const char* secret : {"s3cret", "abc123", "r00m", "fr4g"}) {
      BOOST_TEST(result.out.find(secret) == std::string::npos, context << " leaked " << secret << ": " << result.out);
      BOOST_TEST(result.err.find(secret) == std::string::npos, context << " leaked " << secret << ": " << result.err);
    }
  };

  // Accepted: a token in the query is shown hidden, the key names kept.
  auto shown = daemon({"--check-config", "--url", "ws://h:1/ws?token=abc123&room=r00m&debug="});
  BOOST_TEST_REQUIRE(shown.exit_code == 0, shown.err);
  BOOST_TEST(shown.out.find("url = ws://h:1/ws?token=(hidden)&room=(hidden)&debug=\n") !=
                 std::string::npos,
             shown.out);
  expect_hidden(shown, "--check-config");

  // Refused (user info is not supported), from every layer, and the message
  // quotes the URL with the password and the query value hidden.
  write_file(dir / "user.conf", "[stream]\nurl = ws://user:s3cret@h/ws?token=abc123\n");
  const std::vector<std::pair<std::string, CommandResult>> refusals = {
      {"--url", daemon({"--check-config", "--url", "ws://user:s3cret@h/ws?token=abc123#fr4g"})},
      {"DELTATAP_URL", daemon({"--check-config"}, {{"DELTATAP_URL", "wss://user:s3cret@h/ws"}})},
      {"[stream] url", daemon({"--check-config", "--config", (dir / "user.conf").string()})},
      // A password with an unencoded '/' (the parser reads "s3c" as a port).
      {"--url", daemon({"--check-config", "--url", "ws://user:s3c/r3t@h/ws"})},
  };
  for (const auto& [name, result] : refusals) {
    BOOST_TEST_CONTEXT(name) {
      BOOST_TEST(result.exit_code == 2, result.err);
      BOOST_TEST(result.err.find(name) != std::string::npos, result.err);
      BOOST_TEST(result.err.find("(hidden)@h") != std::string::npos, result.err);
      BOOST_TEST(result.err.find("user info") != std::string::npos, result.err);
      BOOST_TEST(result.out.empty(), result.out);
      expect_hidden(result, name);
      BOOST_TEST(result.err.find("s3c") == std::string::npos, result.err);
    }
  }

  // A URL given without --url, or on a config line that lost its "=".
  auto stray = daemon({"ws://user:s3cret@h/ws?token=abc123"});
  BOOST_TEST(stray.exit_code == 2, stray.err);
  expect_hidden(stray, "argument");
  write_file(dir / "broken.conf", "[stream]\nurl ws://user:s3cret@h/ws\n");
  auto broken = daemon({"--check-config", "--config", (dir / "broken.conf").string()});
  BOOST_TEST(broken.exit_code == 2, broken.err);
  expect_hidden(broken, "config line");
}

// --- 17: blank paths and a CA file that is not a file -------------------------------

BOOST_AUTO_TEST_CASE(blank_paths_and_a_directory_as_ca_file_are_refused_at_start) {
  TempDir dir;
  // The daemon itself, not --check-config: it must stop at start, with exit 2,
  // having created nothing. A dead stream URL and no HTTP API, so that a
  // configuration accepted by mistake shows as a daemon still running.
  auto start = [&](std::vector<std::string> args, std::map<std::string, std::string> env) {
    env.emplace("DELTATAP_URL", "ws://127.0.0.1:" + std::to_string(free_port()) + "/ws");
    env.emplace("DELTATAP_HTTP", "");
    env.emplace("PERSIST", "1");
    Process daemon({deltatapd_argv(std::move(args)), clean_env(std::move(env)), dir.path()});
    auto code = daemon.wait(10s);
    return std::pair{code, daemon.stderr_text()};
  };
  auto expect_refused = [](const std::pair<std::optional<int>, std::string>& result,
                           std::initializer_list<std::string> needles) {
    BOOST_TEST_REQUIRE(result.first.has_value(), "still running: " << result.second);
    BOOST_TEST(*result.first == 2, result.second);
    for (const auto& needle : needles) {
      BOOST_TEST(result.second.find(needle) != std::string::npos,
                 "lacks \"" << needle << "\": " << result.second);
    }
  };

  expect_refused(start({}, {{"DB_PATH", " "}}), {"DB_PATH", "\" \"", "white space"});
  expect_refused(start({"--db", "\t "}, {}), {"--db", "white space"});
  BOOST_TEST(!fs::exists(dir / " "));
  BOOST_TEST(!fs::exists(dir / "\t "));
  BOOST_TEST(!fs::exists(dir / "data"));

  write_file(dir / "dir.conf", "[stream]\nca_file = /\n");
  expect_refused(start({"--config", (dir / "dir.conf").string()}, {}),
                 {"[stream] ca_file", "\"/\"", "directory", "regular file"});
  BOOST_REQUIRE(::mkfifo((dir / "fifo").c_str(), 0600) == 0);
  write_file(dir / "fifo.conf", "[stream]\nca_file = " + (dir / "fifo").string() + "\n");
  expect_refused(start({"--config", (dir / "fifo.conf").string()}, {}),
                 {"[stream] ca_file", "not a regular file"});
  write_file(dir / "blank.conf", "[stream]\nca_file = \" \"\n");
  expect_refused(start({"--config", (dir / "blank.conf").string()}, {}),
                 {"[stream] ca_file", "white space"});

  // What is allowed still is: a readable regular file.
  write_file(dir / "ca.pem", "-----BEGIN CERTIFICATE-----\n");
  write_file(dir / "good.conf", "[stream]\nca_file = " + (dir / "ca.pem").string() + "\n");
  auto good = run_command(deltatapd_argv({"--check-config", "--config", (dir / "good.conf").string()}),
                          clean_env(), dir.path());
  BOOST_TEST(good.exit_code == 0, good.err);
}

// --- 18: the stream's events in the log: once each, reason in MESSAGE, MESSAGE_ID --

BOOST_AUTO_TEST_CASE(stream_events_are_logged_once_with_reason_and_message_id) {
  TempDir dir;
  int port = free_port();  // nothing listens here yet
  write_file(dir / "deltatap.conf", "[stream]\nbackoff_initial = 0.1s\nbackoff_max = 0.3s\n");
  auto env = daemon_env("ws://127.0.0.1:" + std::to_string(port) + "/ws", "");
  env["DELTATAP_LOG_FORMAT"] = "json";
  Process daemon({deltatapd_argv({"--config", (dir / "deltatap.conf").string()}), env, dir.path()});

  auto with_id = [&](std::string_view id) {
    std::vector<rapidjson::Document> out;
    for (auto& line : json_lines(daemon.stderr_text())) {
      if (member(line, "messageId") == id) out.push_back(std::move(line));
    }
    return out;
  };
  BOOST_REQUIRE_MESSAGE(
      wait_until([&] { return with_id(message_ids::kStreamAttemptFailed).size() >= 3; }),
      daemon.stderr_text());
  auto attempts = with_id(message_ids::kStreamAttemptFailed);
  for (std::size_t i = 0; i < attempts.size(); ++i) {
    const auto& line = attempts[i];
    std::string error = member(line, "error");
    BOOST_TEST(error.find("Connection refused") != std::string::npos, error);
    // The journal shows MESSAGE: the reason is in it, not only in ERROR=.
    BOOST_TEST(member(line, "msg") == "Stream connection attempt failed: " + error + "; retrying in " +
                                          member(line, "retryInMs") + " ms");
    // One line per attempt: attempts 1, 2, 3, ...
    BOOST_TEST(member(line, "attempt") == std::to_string(i + 1));
  }

  // The stream comes up, then goes away.
  Sim sim(dir, "sim", {"--count", "1"}, port);
  BOOST_REQUIRE_MESSAGE(wait_until([&] { return !with_id(message_ids::kStreamConnected).empty(); }),
                        daemon.stderr_text());
  sim.process().signal(SIGTERM);
  BOOST_REQUIRE_MESSAGE(wait_until([&] { return !with_id(message_ids::kStreamDisconnected).empty(); }),
                        daemon.stderr_text());
  daemon.signal(SIGTERM);
  BOOST_TEST_REQUIRE(daemon.wait(10s).value_or(-1) == 0, daemon.stderr_text());

  auto all = json_lines(daemon.stderr_text());
  auto connected = with_id(message_ids::kStreamConnected);
  BOOST_TEST(connected.size() == 1u, daemon.stderr_text());
  BOOST_TEST(member(connected[0], "msg") == "Connected to the stream");
  // No other line says so in other words.
  int connect_lines = 0;
  for (const auto& line : all) {
    std::string msg = member(line, "msg");
    std::transform(msg.begin(), msg.end(), msg.begin(),
                   [](char c) { return static_cast<char>(std::tolower(static_cast<unsigned char>(c))); });
    connect_lines += msg.find("connected") != std::string::npos &&
                     msg.find("disconnected") == std::string::npos;
  }
  BOOST_TEST(connect_lines == 1, daemon.stderr_text());
  auto disconnected = with_id(message_ids::kStreamDisconnected);
  BOOST_TEST_REQUIRE(disconnected.size() == 1u, daemon.stderr_text());
  std::string msg = member(disconnected[0], "msg");
  BOOST_TEST(msg.rfind("Disconnected from the stream: " + member(disconnected[0], "error"), 0) == 0, msg);
  BOOST_TEST(msg.find("; retrying in ") != std::string::npos, msg);
  std::string close_code = member(disconnected[0], "closeCode");
  if (close_code != "0") {
    BOOST_TEST(msg.find("(close code " + close_code) != std::string::npos, msg);
  }
}

// The helper behind item 14, on the forms the daemon sees.
BOOST_AUTO_TEST_CASE(redaction_of_urls) {
  BOOST_TEST(redact_url("ws://user:s3cret@h:1/ws?token=abc&x=&flag#frag") ==
             "ws://(hidden)@h:1/ws?token=(hidden)&x=&(hidden)#(hidden)");
  BOOST_TEST(redact_url("ws://127.0.0.1:3001/ws") == "ws://127.0.0.1:3001/ws");
  BOOST_TEST(redact_url("ws://user:s3c/r3t@h/ws") == "ws://(hidden)@h/ws");
  BOOST_TEST(redact_url("user:pw@host") == "(hidden)@host");
  BOOST_TEST(redact_url("") == "");
  BOOST_TEST(has_url_user_info("wss://u@h/"));
  BOOST_TEST(!has_url_user_info("wss://h/ws?mail=a@b"));
  BOOST_TEST(redact_urls_in("got ws://u:p@h/ws?t=1 and http://x/?k=v.") ==
             "got ws://(hidden)@h/ws?t=(hidden) and http://x/?k=(hidden)");
}
