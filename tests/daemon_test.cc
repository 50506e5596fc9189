// deltatapd as a process: start-up, storage on and off, configuration refusals,
// corrupt and old database files, graceful stop on SIGTERM.
#define BOOST_TEST_MODULE daemon
#include <boost/test/unit_test.hpp>

#include <signal.h>
#include <sqlite3.h>
#include <sys/stat.h>

#include <set>

#include "test_support.h"
#include "storage/state_codec.h"
#include "storage/store.h"

using namespace deltatap::testing;

namespace {

// A loopback port with nothing listening: the backend is down.
std::string dead_url() { return "ws://127.0.0.1:" + std::to_string(free_port()) + "/ws"; }

std::map<std::string, std::string> base_env(const std::string& persist) {
  return {{"PERSIST", persist},
          {"DELTATAP_URL", dead_url()},
          {"DELTATAP_HTTP", ""},
          {"DELTATAP_LOG_FORMAT", "text"},
          {"NOTIFY_SOCKET", "\x01unset"},
          {"JOURNAL_STREAM", "\x01unset"},
          {"INVOCATION_ID", "\x01unset"}};
}

std::vector<std::string> deltatapd(std::vector<std::string> args = {}) {
  args.insert(args.begin(), (bin_dir() / "deltatapd").string());
  return args;
}

mode_t mode_of(const fs::path& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return 0;
  return st.st_mode & 07777;
}

}  // namespace

BOOST_AUTO_TEST_CASE(persist_on_creates_the_database_and_stops_cleanly) {
  TempDir dir;
  Process daemon({deltatapd(), base_env("1"), dir.path()});
  auto db = dir / "data/sessions.sqlite";
  BOOST_REQUIRE_MESSAGE(wait_until([&] { return fs::exists(db); }), daemon.stderr_text());
  BOOST_TEST(mode_of(db) == 0600u);
  BOOST_TEST(mode_of(db.parent_path()) == 0700u);
  auto tables = query_db(db, "SELECT name FROM sqlite_master WHERE type='table' ORDER BY name");
  std::set<std::string> names;
  for (auto& row : tables) names.insert(row[0]);
  BOOST_TEST(names.count("session_deltas") == 1u);
  BOOST_TEST(names.count("rejected_messages") == 1u);
  BOOST_TEST(names.count("stream_events") == 1u);
  daemon.signal(SIGTERM);
  auto code = daemon.wait();
  // Once seen under TSan beside the PostgreSQL test (no exit within 20 s, not
  // reproduced since): what the daemon said, should it happen again.
  BOOST_REQUIRE_MESSAGE(code.has_value(), daemon.stderr_text());
  BOOST_TEST(*code == 0, daemon.stderr_text());
  BOOST_TEST(query_db(db, "PRAGMA integrity_check")[0][0] == "ok");
  BOOST_TEST(daemon.stderr_contains("Final snapshot saved"));
}

BOOST_AUTO_TEST_CASE(persist_off_or_unset_writes_nothing) {
  for (std::string persist : {"0", "\x01unset"}) {
    TempDir dir;
    Process daemon({deltatapd(), base_env(persist), dir.path()});
    BOOST_REQUIRE(wait_until([&] { return daemon.stderr_contains("nothing is written"); }));
    daemon.signal(SIGTERM);
    BOOST_TEST(daemon.wait().value_or(-1) == 0);
    BOOST_TEST(!fs::exists(dir / "data"), "persist=" << persist);
  }
}

BOOST_AUTO_TEST_CASE(sigint_also_stops_cleanly) {
  TempDir dir;
  Process daemon({deltatapd(), base_env("1"), dir.path()});
  BOOST_REQUIRE(wait_until([&] { return fs::exists(dir / "data/sessions.sqlite"); }));
  daemon.signal(SIGINT);
  BOOST_TEST(daemon.wait().value_or(-1) == 0);
}

BOOST_AUTO_TEST_CASE(bad_configuration_exits_2_naming_the_culprit) {
  TempDir dir;
  auto env = base_env("1");
  env["SNAPSHOT_INTERVAL"] = "abc";
  auto bad_interval = run_command(deltatapd(), env, dir.path());
  BOOST_TEST(bad_interval.exit_code == 2);
  BOOST_TEST(bad_interval.err.find("SNAPSHOT_INTERVAL") != std::string::npos, bad_interval.err);
  BOOST_TEST(bad_interval.err.find("abc") != std::string::npos, bad_interval.err);

  auto missing = run_command(deltatapd({"--config", "/missing"}), base_env("1"), dir.path());
  BOOST_TEST(missing.exit_code == 2);
  BOOST_TEST(missing.err.find("/missing") != std::string::npos, missing.err);

  auto persist = base_env("yes");
  auto bad_persist = run_command(deltatapd(), persist, dir.path());
  BOOST_TEST(bad_persist.exit_code == 2);
  BOOST_TEST(bad_persist.err.find("PERSIST") != std::string::npos, bad_persist.err);

  auto flag = run_command(deltatapd({"--no-such-flag"}), base_env("1"), dir.path());
  BOOST_TEST(flag.exit_code == 2);
  BOOST_TEST(flag.err.find("--no-such-flag") != std::string::npos, flag.err);
  BOOST_TEST(!fs::exists(dir / "data"));
}

// The configuration applies the client's own rules (stream/stream_options.h):
// what the client would drop or refuse at connect is refused at start.
BOOST_AUTO_TEST_CASE(a_stream_header_or_url_the_client_would_refuse_exits_2) {
  TempDir dir;
  struct Case {
    std::string conf, culprit;
  };
  std::vector<Case> cases = {
      {"[stream]\nheader = Transfer-Encoding: chunked\n", "Transfer-Encoding"},
      {"[stream]\nheader = Sec-WebSocket-Protocol: bearer.x\n", "Sec-WebSocket-Protocol"},
      {"[stream]\nheader = X-Ok: a\x01b\n", "X-Ok"},
      {"[stream]\nurl = ws://alice:s3cret@127.0.0.1:1/ws\n", "[stream] url"},
      {"[stream]\nurl = ws://127.0.0.1:1/ws#frag\n", "[stream] url"},
  };
  for (const auto& c : cases) {
    auto conf = dir / "deltatap.conf";
    write_file(conf, c.conf);
    auto env = base_env("0");
    env["DELTATAP_URL"] = "\x01unset";
    auto result = run_command(deltatapd({"--config", conf.string()}), env, dir.path());
    BOOST_TEST(result.exit_code == 2, c.conf);
    BOOST_TEST(result.err.find(c.culprit) != std::string::npos, result.err);
    BOOST_TEST(result.err.find("chunked") == std::string::npos, result.err);  // values stay out
  }
}

BOOST_AUTO_TEST_CASE(check_config_prints_the_effective_configuration_without_the_token) {
  auto env = base_env("1");
  env["DELTATAP_TOKEN"] = "s3cret-token-value";
  auto result = run_command(deltatapd({"--check-config", "--db", "elsewhere/x.sqlite"}), env);
  BOOST_TEST(result.exit_code == 0, result.err);
  BOOST_TEST(result.out.find("elsewhere/x.sqlite") != std::string::npos, result.out);
  BOOST_TEST(result.out.find("s3cret-token-value") == std::string::npos);
}

BOOST_AUTO_TEST_CASE(corrupt_database_is_moved_aside_and_kept) {
  TempDir dir;
  fs::create_directories(dir / "data");
  const std::string garbage = "this was never a SQLite database\n";
  write_file(dir / "data/sessions.sqlite", garbage);
  Process daemon({deltatapd(), base_env("1"), dir.path()});
  BOOST_REQUIRE(wait_until([&] { return daemon.stderr_contains("moved aside"); }));
  daemon.signal(SIGTERM);
  BOOST_TEST(daemon.wait().value_or(-1) == 0, daemon.stderr_text());
  int kept = 0;
  for (auto& entry : fs::directory_iterator(dir / "data")) {
    if (entry.path().filename().string().find("sessions.sqlite.corrupt-") == 0) {
      BOOST_TEST(read_file(entry.path()) == garbage);
      ++kept;
    }
  }
  BOOST_TEST(kept == 1);
  BOOST_TEST(query_db(dir / "data/sessions.sqlite", "SELECT COUNT(*) FROM session_deltas")[0][0] == "0");
  BOOST_TEST(daemon.stderr_contains("error"));
}

BOOST_AUTO_TEST_CASE(a_version_0_database_comes_back_migrated_with_every_row) {
  TempDir dir;
  fs::create_directories(dir / "data");
  auto db_path = dir / "data/sessions.sqlite";
  sqlite3* db = nullptr;
  BOOST_REQUIRE(sqlite3_open(db_path.c_str(), &db) == SQLITE_OK);
  std::string sql = R"(CREATE TABLE session_deltas (
    id INTEGER PRIMARY KEY AUTOINCREMENT, session_id TEXT NOT NULL,
    delta_type TEXT NOT NULL CHECK(delta_type IN ('created', 'updated', 'deleted')),
    before_state TEXT, after_state TEXT, timestamp TEXT NOT NULL,
    created_at TEXT NOT NULL DEFAULT (datetime('now')));
    CREATE INDEX idx_session_deltas_session_id ON session_deltas(session_id);
    CREATE INDEX idx_session_deltas_timestamp ON session_deltas(timestamp);
    CREATE INDEX idx_session_deltas_created_at ON session_deltas(created_at);)";
  for (int i = 0; i < 200; ++i) {
    sql += "INSERT INTO session_deltas (session_id, delta_type, after_state, timestamp) VALUES ('s" +
           std::to_string(i % 9) + "', 'created', '{\"n\":" + std::to_string(i) +
           "}', '2025-11-10T12:00:" + (i % 2 ? "00Z" : "00.25+01:00") + "');";
  }
  BOOST_REQUIRE(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr) == SQLITE_OK);
  sqlite3_close(db);

  Process daemon({deltatapd(), base_env("1"), dir.path()});
  BOOST_REQUIRE(wait_until([&] { return daemon.stderr_contains("Database loaded"); }));
  // Written by another program: no digest, so every page is checked.
  BOOST_TEST(daemon.stderr_contains("checkedBy=quick_check"), daemon.stderr_text());
  daemon.signal(SIGTERM);
  BOOST_TEST(daemon.wait().value_or(-1) == 0, daemon.stderr_text());
  BOOST_TEST(query_db(db_path, "PRAGMA user_version")[0][0] == std::to_string(deltatap::kSchemaVersion));
  // The stop's snapshot left its digest: the next start trusts the file it wrote.
  BOOST_TEST(fs::exists(dir / "data/sessions.sqlite.digest"));
  {
    Process again({deltatapd(), base_env("1"), dir.path()});
    BOOST_REQUIRE(wait_until([&] { return again.stderr_contains("Database loaded"); }));
    BOOST_TEST(again.stderr_contains("checkedBy=digest"), again.stderr_text());
    again.signal(SIGTERM);
    BOOST_TEST(again.wait().value_or(-1) == 0, again.stderr_text());
  }
  BOOST_TEST(query_db(db_path, "SELECT COUNT(*) FROM session_deltas")[0][0] == "200");
  auto odd = query_db(db_path, "SELECT DISTINCT timestamp FROM session_deltas ORDER BY 1");
  BOOST_REQUIRE_EQUAL(odd.size(), 2u);
  BOOST_TEST(odd[0][0] == "2025-11-10T11:00:00.250Z");
  BOOST_TEST(odd[1][0] == "2025-11-10T12:00:00.000Z");
  BOOST_TEST(query_db(db_path, "SELECT COUNT(*) FROM session_deltas WHERE length(created_at) = 24")[0][0] == "200");
}

// [storage] compression = zstd on a store written plain: the daemon trains a
// dictionary on the stored states and converts every row in the background,
// between batches; the file it writes decodes, passes `deltatap check` and
// reads back the JSON it held before.
BOOST_AUTO_TEST_CASE(compression_zstd_converts_a_plain_store_in_the_background) {
  TempDir dir;
  auto db_path = dir / "data/sessions.sqlite";
  write_realistic_store(db_path, 5'000);
  auto plain = query_db(db_path, "SELECT id, before_state, after_state FROM session_deltas ORDER BY id");
  write_file(dir / "deltatap.conf", "[storage]\ncompression = zstd\n[retention]\ndays = 0\n");
  int port = free_port();
  auto env = base_env("1");
  env["DELTATAP_HTTP"] = "127.0.0.1:" + std::to_string(port);
  Process daemon({deltatapd({"--config", (dir / "deltatap.conf").string()}), env, dir.path()});
  std::string stats;
  bool converted = wait_until(
      [&] {
        stats = http_request(port, "GET", "/api/stats").body;
        return stats.find("\"mode\":\"zstd\"") != std::string::npos &&
               stats.find("\"dictionaries\":1") != std::string::npos &&
               stats.find("\"converted\":true") != std::string::npos;
      },
      60s);
  BOOST_REQUIRE_MESSAGE(converted, stats + "\n" + daemon.stderr_text());
  auto metrics = http_request(port, "GET", "/metrics").body;
  BOOST_TEST(metrics.find("deltatap_compression_ratio ") != std::string::npos);
  daemon.signal(SIGTERM);
  BOOST_TEST(daemon.wait().value_or(-1) == 0, daemon.stderr_text());
  BOOST_TEST(query_db(db_path, "SELECT COUNT(*) FROM session_deltas WHERE typeof(after_state) = 'text' "
                               "OR typeof(before_state) = 'text'")[0][0] == "0");
  auto check = run_command({(bin_dir() / "deltatap").string(), "--db", db_path.string(), "check"});
  BOOST_TEST(check.exit_code == 0, check.out + check.err);
  // The same JSON, through the view with the function registered here.
  sqlite3* db = nullptr;
  BOOST_REQUIRE(sqlite3_open_v2(db_path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK);
  BOOST_REQUIRE(deltatap::StateCodec::register_sql_function(db).ok());
  sqlite3_stmt* stmt = nullptr;
  BOOST_REQUIRE(sqlite3_prepare_v2(db,
                                   "SELECT id, before_state, after_state FROM session_deltas_json "
                                   "ORDER BY id",
                                   -1, &stmt, nullptr) == SQLITE_OK);
  std::size_t row = 0;
  auto text = [&](int column) {
    auto p = sqlite3_column_text(stmt, column);
    // query_db writes SQL NULL as "NULL" (a state is never that text).
    return p ? std::string(reinterpret_cast<const char*>(p),
                           static_cast<std::size_t>(sqlite3_column_bytes(stmt, column)))
             : std::string("NULL");
  };
  while (sqlite3_step(stmt) == SQLITE_ROW && row < plain.size()) {
    BOOST_TEST_REQUIRE(text(0) == plain[row][0]);
    BOOST_TEST_REQUIRE(text(1) == plain[row][1], "before of " << plain[row][0]);
    BOOST_TEST_REQUIRE(text(2) == plain[row][2], "after of " << plain[row][0]);
    ++row;
  }
  sqlite3_finalize(stmt);
  sqlite3_close(db);
  BOOST_TEST(row == plain.size());
}
