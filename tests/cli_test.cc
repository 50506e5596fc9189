// The deltatap CLI as a user runs it: the real executable on a real snapshot
// file, its answers checked against plain SQL on the same file and against the
// live HTTP API serving the same data, plus its exit codes and output rules.
#define BOOST_TEST_MODULE cli
#include <boost/test/unit_test.hpp>

#include <signal.h>
#include <sqlite3.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <rapidjson/document.h>

#include <algorithm>
#include <cstring>
#include <future>
#include <set>
#include <sstream>
#include <thread>

#include "api/http_api.h"
#include "base/logging.h"
#include "skip.h"
#include "storage/snapshot.h"
#include "storage/store.h"
#include "test_support.h"

using namespace deltatap;
using namespace deltatap::testing;
namespace net = boost::asio;

namespace {

struct QuietLogs {
  QuietLogs() { init_logging({LogLevel::warning, LogFormat::text}); }
};
BOOST_TEST_GLOBAL_FIXTURE(QuietLogs);

const std::string kCreated =
    R"({"id":"sess_a","planStatus":"pending","approval":"pending",)"
    R"("metadata":{"attempt":3,"big":123456789012345678901234567890}})";
const std::string kUpdated =
    R"({"id":"sess_a","planStatus":"in_progress","summary":"Fix the flaky test",)"
    R"("metadata":{"attempt":4,"big":123456789012345678901234567890}})";
const std::string kOddSession = "odd/id \"q\", ü";

std::string ts(int second_offset) {
  return format_timestamp(TimePoint(std::chrono::seconds(1'762'776'000 + second_offset)));
}

StoredDelta stored(std::string session, DeltaType type, std::string timestamp,
                   std::optional<std::string> before, std::optional<std::string> after,
                   std::string created_at) {
  StoredDelta row;
  row.delta.session_id = std::move(session);
  row.delta.type = type;
  row.delta.before = std::move(before);
  row.delta.after = std::move(after);
  row.delta.timestamp = std::move(timestamp);
  row.created_at = std::move(created_at);
  return row;
}

// sess_a's three deltas, 240 more over five sessions (of which 40 stored 40
// days ago), and a session whose id has a slash, quotes, a comma and unicode.
std::unique_ptr<Store> sample_store() {
  auto opened = Store::open_empty();
  BOOST_REQUIRE(opened.ok());
  auto store = std::move(opened.value());
  auto recent = format_timestamp(now_millis() - std::chrono::hours(1));
  auto old = format_timestamp(now_millis() - std::chrono::hours(40 * 24));
  std::vector<StoredDelta> rows;
  rows.push_back(stored("sess_a", DeltaType::created, ts(0), {}, kCreated, recent));
  rows.push_back(stored("sess_a", DeltaType::updated, ts(300), kCreated, kUpdated, recent));
  rows.push_back(stored("sess_a", DeltaType::deleted, ts(600), kUpdated, {}, recent));
  for (int i = 0; i < 240; ++i) {
    std::string state = R"({"planStatus":")" + std::string(i % 2 ? "pending" : "succeeded") +
                        R"(","n":)" + std::to_string(i) + R"(,"note":"a,b \"c\"\nd"})";
    auto type = i < 5 ? DeltaType::created : DeltaType::updated;
    rows.push_back(stored("s" + std::to_string(i % 5), type, ts(i / 3),
                          type == DeltaType::created ? std::nullopt : std::optional(state), state,
                          i < 40 ? old : recent));
  }
  rows.push_back(stored(kOddSession, DeltaType::created, ts(1000), {}, R"({"x":1})", recent));
  BOOST_REQUIRE(store->save_with_created_at(rows).ok());
  return store;
}

fs::path write_store(Store& store, const fs::path& path) {
  auto image = store.serialize();
  BOOST_REQUIRE(image.ok());
  BOOST_REQUIRE(write_snapshot_file(path.string(), image->view()).ok());
  return path;
}

CommandResult cli(const std::vector<std::string>& args,
                  const std::map<std::string, std::string>& env = {}) {
  std::vector<std::string> argv = {(bin_dir() / "deltatap").string()};
  argv.insert(argv.end(), args.begin(), args.end());
  auto full_env = env;
  full_env.emplace("TZ", "UTC");
  return run_command(argv, full_env);
}

rapidjson::Document parse(const std::string& text) {
  rapidjson::Document doc;
  doc.Parse(text.c_str(), text.size());
  BOOST_REQUIRE_MESSAGE(!doc.HasParseError(), "not JSON: " << text.substr(0, 300));
  return doc;
}

std::vector<std::string> lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

std::vector<std::string> column(const std::vector<std::vector<std::string>>& rows, std::size_t c) {
  std::vector<std::string> out;
  for (const auto& row : rows) out.push_back(row.at(c));
  return out;
}

// A fake daemon serving a store loaded from a file, on its own io thread.
class LiveDaemon : public ApiBackend {
 public:
  LiveDaemon(const fs::path& file, std::string token = "")
      : work_(net::make_work_guard(io_)) {
    auto loaded = Store::load(read_file(file));
    BOOST_REQUIRE(loaded.ok());
    store_ = std::move(loaded.value());
    api_ = std::make_unique<HttpApi>(io_, HttpOptions{"127.0.0.1:0", std::move(token)}, *this);
    BOOST_REQUIRE(api_->start().ok());
    url = "http://" + api_->bound_address();
    thread_ = std::thread([this] { io_.run(); });
  }
  ~LiveDaemon() {
    std::promise<void> stopped;
    net::post(io_, [&] {
      api_->stop();
      stopped.set_value();
    });
    stopped.get_future().wait();
    work_.reset();
    io_.stop();
    thread_.join();
  }
  template <typename F>
  auto on_io(F f) {
    std::packaged_task<decltype(f())()> task(std::move(f));
    auto result = task.get_future();
    net::post(io_, [&task] { task(); });
    return result.get();
  }

  Store& store() override { return *store_; }
  StatsExtra stats_extra() override {
    StatsExtra extra;
    extra.enabled = true;
    extra.db_path = "data/sessions.sqlite";
    extra.connected = reasons.empty();
    return extra;
  }
  std::vector<std::string> not_ready_reasons() override { return reasons; }
  void snapshot_now(std::function<void(Status, std::uint64_t, double)> done) override {
    done(ok_status(), 65536, 0.125);
  }
  Metrics& metrics() override { return metrics_; }

  std::string url;
  std::vector<std::string> reasons;

 private:
  net::io_context io_;
  net::executor_work_guard<net::io_context::executor_type> work_;
  std::unique_ptr<Store> store_;
  Metrics metrics_;
  std::unique_ptr<HttpApi> api_;
  std::thread thread_;
};

struct Fixture {
  Fixture() : store(sample_store()), file(write_store(*store, dir / "sessions.sqlite")) {}
  TempDir dir;
  std::unique_ptr<Store> store;
  fs::path file;
};

}  // namespace

BOOST_FIXTURE_TEST_CASE(query_on_a_file_equals_sql, Fixture) {
  auto result = cli({"--db", file.string(), "query", "--format", "json", "--limit", "1000"});
  BOOST_REQUIRE_MESSAGE(result.exit_code == 0, result.err);
  auto doc = parse(result.out);
  auto expected = query_db(file, "SELECT id, before_state, after_state FROM session_deltas "
                                 "ORDER BY timestamp DESC, id DESC");
  BOOST_REQUIRE(doc["deltas"].Size() == expected.size());
  for (std::size_t i = 0; i < expected.size(); ++i) {
    BOOST_TEST(std::to_string(doc["deltas"][i]["id"].GetInt64()) == expected[i][0]);
    // States are the stored text, every digit included.
    if (expected[i][2] != "NULL") {
      BOOST_TEST(result.out.find("\"after\":" + expected[i][2]) != std::string::npos);
    }
  }
  BOOST_TEST(doc["next"].IsNull());

  auto filtered = cli({"--db", file.string(), "query", "--session", "s1", "--type", "updated",
                       "--since", ts(10), "--until", "2025-11-10T13:00:50+01:00", "--format",
                       "json"});
  BOOST_REQUIRE_MESSAGE(filtered.exit_code == 0, filtered.err);
  auto sql = query_db(file, "SELECT id FROM session_deltas WHERE session_id = 's1' AND "
                            "delta_type = 'updated' AND timestamp >= '" + ts(10) +
                            "' AND timestamp < '" + ts(50) + "' ORDER BY timestamp DESC, id DESC");
  auto got = parse(filtered.out);
  BOOST_REQUIRE(got["deltas"].Size() == sql.size());
  BOOST_TEST(!sql.empty());
  for (std::size_t i = 0; i < sql.size(); ++i) {
    BOOST_TEST(std::to_string(got["deltas"][i]["id"].GetInt64()) == sql[i][0]);
  }
}

BOOST_FIXTURE_TEST_CASE(query_pages_with_the_cursor, Fixture) {
  std::vector<std::string> ids;
  std::optional<std::string> cursor;
  do {
    std::vector<std::string> args = {"--db", file.string(), "query", "--limit", "50",
                                     "--format", "json"};
    if (cursor) args.insert(args.end(), {"--before", *cursor});
    auto result = cli(args);
    BOOST_REQUIRE(result.exit_code == 0);
    auto doc = parse(result.out);
    for (const auto& d : doc["deltas"].GetArray()) ids.push_back(std::to_string(d["id"].GetInt64()));
    cursor = doc["next"].IsNull() ? std::nullopt : std::optional<std::string>(doc["next"].GetString());
  } while (cursor);
  auto sql = column(query_db(file, "SELECT id FROM session_deltas ORDER BY timestamp DESC, id DESC"), 0);
  BOOST_TEST(ids == sql, boost::test_tools::per_element());

  // The table says where the next page starts.
  auto table = cli({"--db", file.string(), "query", "--limit", "5"});
  BOOST_TEST(table.exit_code == 0);
  BOOST_TEST(lines(table.out).size() == 6u);
  BOOST_TEST(table.err.find("(more: --before ") != std::string::npos);
}

BOOST_FIXTURE_TEST_CASE(csv_and_ndjson_read_back_equal_the_file, Fixture) {
  auto csv = cli({"--db", file.string(), "query", "--limit", "1000", "--format", "csv"});
  auto ndjson = cli({"--db", file.string(), "query", "--limit", "1000", "--format", "ndjson"});
  BOOST_REQUIRE(csv.exit_code == 0);
  BOOST_REQUIRE(ndjson.exit_code == 0);
  write_file(dir / "q.csv", csv.out);
  write_file(dir / "q.ndjson", ndjson.out);
  auto read = run_command({"/usr/bin/python3",
                           (source_dir() / "tests/fixtures/csv_roundtrip.py").string(),
                           (dir / "q.csv").string(), (dir / "q.ndjson").string()});
  BOOST_REQUIRE_MESSAGE(read.exit_code == 0, read.err);
  auto records = parse(read.out);
  auto sql = query_db(file, "SELECT id, delta_type, session_id, timestamp, created_at, "
                            "COALESCE(before_state, ''), COALESCE(after_state, ''), origin, gap "
                            "FROM session_deltas ORDER BY timestamp DESC, id DESC");
  BOOST_REQUIRE(records.Size() == sql.size());
  for (std::size_t i = 0; i < sql.size(); ++i) {
    for (std::size_t c = 0; c < 9; ++c) BOOST_TEST(records[i][c].GetString() == sql[i][c]);
  }
}

BOOST_FIXTURE_TEST_CASE(export_writes_the_whole_history_atomically, Fixture) {
  auto out = dir / "export.csv";
  auto result = cli({"--db", file.string(), "export", "--format", "csv", "--out", out.string()});
  BOOST_REQUIRE_MESSAGE(result.exit_code == 0, result.err);
  BOOST_TEST(result.out.empty());
  auto read = run_command({"/usr/bin/python3",
                           (source_dir() / "tests/fixtures/csv_roundtrip.py").string(),
                           out.string()});
  BOOST_REQUIRE_MESSAGE(read.exit_code == 0, read.err);
  auto records = parse(read.out);
  auto count = query_db(file, "SELECT COUNT(*) FROM session_deltas")[0][0];
  BOOST_TEST(std::to_string(records.Size()) == count);
  // No temporary file is left beside it: the directory holds the database,
  // the digest its snapshot left, and the export (which has no digest).
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(dir.path())) {
    names.push_back(entry.path().filename().string());
  }
  std::sort(names.begin(), names.end());
  BOOST_TEST(names == (std::vector<std::string>{"export.csv", "sessions.sqlite", "sessions.sqlite.digest"}),
             boost::test_tools::per_element());

  auto ndjson = cli({"--db", file.string(), "export", "--format", "ndjson"});
  BOOST_TEST(std::to_string(lines(ndjson.out).size()) == count);
  auto json = cli({"--db", file.string(), "export"});
  BOOST_TEST(std::to_string(parse(json.out).Size()) == count);

  // A failed export leaves no file behind.
  auto missing_dir = cli({"--db", file.string(), "export", "--out", (dir / "no/such/x.csv").string()});
  BOOST_TEST(missing_dir.exit_code == 1);
}

BOOST_FIXTURE_TEST_CASE(stats_and_sessions_equal_sql, Fixture) {
  auto stats = cli({"--db", file.string(), "stats", "--format", "json"});
  BOOST_REQUIRE(stats.exit_code == 0);
  auto doc = parse(stats.out);
  BOOST_TEST(std::to_string(doc["deltaCount"].GetInt64()) ==
             query_db(file, "SELECT COUNT(*) FROM session_deltas")[0][0]);
  BOOST_TEST(doc["fileSize"].GetUint64() == fs::file_size(file));
  BOOST_TEST(doc["dbPath"].GetString() == file.string());
  auto table = cli({"--db", file.string(), "stats"});
  BOOST_TEST(table.out.find("Deltas             244") != std::string::npos, table.out);

  auto sessions = cli({"--db", file.string(), "sessions", "--format", "json"});
  BOOST_REQUIRE(sessions.exit_code == 0);
  auto rows = parse(sessions.out);
  auto sql = query_db(file, "SELECT session_id, SUM(delta_type='created'), "
                            "SUM(delta_type='updated'), SUM(delta_type='deleted') "
                            "FROM session_deltas GROUP BY session_id");
  BOOST_REQUIRE(rows["sessions"].Size() == sql.size());
  for (const auto& expected : sql) {
    bool found = false;
    for (const auto& row : rows["sessions"].GetArray()) {
      if (row["sessionId"].GetString() != expected[0]) continue;
      found = true;
      BOOST_TEST(std::to_string(row["created"].GetInt64()) == expected[1]);
      BOOST_TEST(std::to_string(row["updated"].GetInt64()) == expected[2]);
      BOOST_TEST(std::to_string(row["deleted"].GetInt64()) == expected[3]);
    }
    BOOST_TEST(found, expected[0]);
  }
  auto human = cli({"--db", file.string(), "sessions"});
  BOOST_TEST(human.out.find("SESSION") == 0u);
  BOOST_TEST(human.out.find(kOddSession) != std::string::npos);
  auto csv = cli({"--db", file.string(), "sessions", "--format", "csv"});
  BOOST_TEST(csv.out.find("\"odd/id \"\"q\"\", ü\",1,0,0,") != std::string::npos, csv.out);
}

BOOST_FIXTURE_TEST_CASE(timeline_shows_field_level_changes, Fixture) {
  auto result = cli({"--db", file.string(), "--utc", "timeline", "sess_a"});
  BOOST_REQUIRE_MESSAGE(result.exit_code == 0, result.err);
  const auto& out = result.out;
  for (const std::string expected :
       {"Session sess_a: 3 deltas", "2025-11-10T12:00:00.000Z  created", "    + planStatus: pending",
        "    + metadata.big: 123456789012345678901234567890", "2025-11-10T12:05:00.000Z  updated",
        "    planStatus: pending → in_progress", "    metadata.attempt: 3 → 4",
        "    + summary: Fix the flaky test", "    - approval: pending", "(session deleted)"}) {
    BOOST_TEST(out.find(expected) != std::string::npos, "missing: " << expected << "\n" << out);
  }
  // Oldest first.
  BOOST_TEST(out.find("created") < out.find("updated"));
  BOOST_TEST(out.find("updated") < out.find("deleted"));

  auto json = cli({"--db", file.string(), "timeline", "sess_a", "--format", "json"});
  BOOST_REQUIRE(json.exit_code == 0);
  auto doc = parse(json.out);
  const auto& update = doc["deltas"][1];
  BOOST_TEST(update["type"].GetString() == std::string("updated"));
  std::map<std::string, std::string> ops;
  for (const auto& change : update["changes"].GetArray()) {
    ops[change["path"].GetString()] = change["op"].GetString();
  }
  BOOST_TEST(ops["planStatus"] == "changed");
  BOOST_TEST(ops["metadata.attempt"] == "changed");
  BOOST_TEST(ops["summary"] == "added");
  BOOST_TEST(ops["approval"] == "removed");
  BOOST_TEST(ops.count("metadata.big") == 0u);  // unchanged

  auto odd = cli({"--db", file.string(), "timeline", "--", kOddSession});
  BOOST_TEST(odd.exit_code == 0, odd.err);
  BOOST_TEST(odd.out.find("+ x: 1") != std::string::npos);
  auto unknown = cli({"--db", file.string(), "timeline", "nobody"});
  BOOST_TEST(unknown.exit_code == 1);
  BOOST_TEST(unknown.err.find("no deltas stored for session") != std::string::npos);
}

namespace {

// A session across a backend restart, as the ledger stores it (design.md,
// "Fidelity"), ids in arrival order: a created at 12:00:00.500 (format B's
// receive time) then an update stamped 12:00:00 (format A's whole second), one
// more update; the tap away, so the next update starts from a state never seen
// (gap); the restarted backend re-announces the session with a changed state
// (resync); reconciliation finds it gone (reconcile). Then a session first seen
// mid-way (a gap on its first delta), and one whose id talks to terminals.
const std::string kFidelityCreatedAt = "2025-11-10T12:10:00.000Z";
const std::string kHostileGapSession = "evil\x1b]0;x\x07";

std::unique_ptr<Store> fidelity_store() {
  auto opened = Store::open_empty();
  BOOST_REQUIRE(opened.ok());
  auto store = std::move(opened.value());
  auto row = [](std::int64_t id, std::string session, DeltaType type,
                std::optional<std::string> before, std::optional<std::string> after,
                std::string timestamp, DeltaOrigin origin, bool gap) {
    StoredDelta r = stored(std::move(session), type, std::move(timestamp), std::move(before),
                           std::move(after), kFidelityCreatedAt);
    r.id = id;
    r.origin = origin;
    r.gap = gap;
    return r;
  };
  const std::string pending = R"({"planStatus":"pending"})";
  const std::string running = R"({"planStatus":"in_progress"})";
  const std::string waiting = R"({"planStatus":"awaiting_approval"})";
  const std::string approved = R"({"planStatus":"approved"})";
  const std::string done = R"({"planStatus":"succeeded"})";
  const std::string summed = R"({"planStatus":"succeeded","summary":"Fix the flaky test"})";
  std::vector<StoredDelta> rows = {
      row(1, "sess_r", DeltaType::created, {}, pending, "2025-11-10T12:00:00.500Z",
          DeltaOrigin::stream, false),
      row(2, "sess_r", DeltaType::updated, pending, running, "2025-11-10T12:00:00.000Z",
          DeltaOrigin::stream, false),
      row(3, "sess_r", DeltaType::updated, running, waiting, "2025-11-10T12:00:05.000Z",
          DeltaOrigin::stream, false),
      row(4, "sess_r", DeltaType::updated, approved, done, "2025-11-10T12:07:40.000Z",
          DeltaOrigin::stream, true),
      row(5, "sess_r", DeltaType::updated, done, summed, "2025-11-10T12:07:41.000Z",
          DeltaOrigin::resync, false),
      row(6, "sess_r", DeltaType::deleted, summed, {}, "2025-11-10T12:07:42.000Z",
          DeltaOrigin::reconcile, false),
      row(7, "sess_u", DeltaType::updated, approved, done, "2025-11-10T12:07:40.000Z",
          DeltaOrigin::stream, true),
      row(8, kHostileGapSession, DeltaType::updated, approved, done, "2025-11-10T12:07:43.000Z",
          DeltaOrigin::stream, true),
  };
  BOOST_REQUIRE(store->save_with_created_at(rows).ok());
  return store;
}

struct FidelityFixture {
  FidelityFixture()
      : store(fidelity_store()), file(write_store(*store, dir / "fidelity.sqlite")) {}
  TempDir dir;
  std::unique_ptr<Store> store;
  fs::path file;
};

// The line of `table` whose first cell is `id`.
std::string table_row(const std::string& table, const std::string& id) {
  for (const auto& line : lines(table)) {
    if (line.rfind(id + " ", 0) == 0) return line;
  }
  BOOST_TEST_FAIL("no row " << id << " in:\n" << table);
  return "";
}

}  // namespace

BOOST_FIXTURE_TEST_CASE(timeline_tells_gaps_inferred_steps_and_arrival_order, FidelityFixture) {
  auto result = cli({"--db", file.string(), "--utc", "timeline", "sess_r"});
  BOOST_REQUIRE_MESSAGE(result.exit_code == 0, result.err);
  // In id order although #2's time is before #1's: it is marked, not moved.
  // The gap is said between the last step seen and the first one after it;
  // each inferred step says what it is.
  const std::string expected =
      "Session sess_r: 6 deltas, 2025-11-10T12:00:00.500Z to 2025-11-10T12:07:42.000Z; "
      "1 gap, 2 inferred\n"
      "2025-11-10T12:00:00.500Z  created #1\n"
      "    + planStatus: pending\n"
      "2025-11-10T12:00:00.000Z  updated #2  (timestamp earlier than the previous step)\n"
      "    planStatus: pending → in_progress\n"
      "2025-11-10T12:00:05.000Z  updated #3\n"
      "    planStatus: in_progress → awaiting_approval\n"
      "-- changes between 2025-11-10T12:00:05.000Z and 2025-11-10T12:07:40.000Z were not "
      "observed\n"
      "2025-11-10T12:07:40.000Z  updated #4\n"
      "    planStatus: approved → succeeded\n"
      "2025-11-10T12:07:41.000Z  updated #5  inferred: re-announced after a backend restart\n"
      "    + summary: Fix the flaky test\n"
      "2025-11-10T12:07:42.000Z  deleted #6  inferred: reconciled with the backend's live "
      "sessions\n"
      "    (session deleted)\n";
  BOOST_TEST(result.out == expected);

  // A session first seen mid-way: what came before its first delta is unknown.
  auto unknown = cli({"--db", file.string(), "--utc", "timeline", "sess_u"});
  BOOST_REQUIRE_MESSAGE(unknown.exit_code == 0, unknown.err);
  BOOST_TEST(unknown.out ==
             "Session sess_u: 1 delta, 2025-11-10T12:07:40.000Z to 2025-11-10T12:07:40.000Z; "
             "1 gap\n"
             "-- changes before 2025-11-10T12:07:40.000Z were not observed\n"
             "2025-11-10T12:07:40.000Z  updated #7\n"
             "    planStatus: approved → succeeded\n");

  // The same steps in the same order as JSON, each with its origin and gap.
  auto json = cli({"--db", file.string(), "timeline", "sess_r", "--format", "json"});
  BOOST_REQUIRE_MESSAGE(json.exit_code == 0, json.err);
  auto doc = parse(json.out);
  const std::vector<std::pair<std::string, bool>> want = {
      {"stream", false}, {"stream", false}, {"stream", false},
      {"stream", true},  {"resync", false}, {"reconcile", false}};
  BOOST_REQUIRE(doc["deltas"].Size() == want.size());
  for (std::size_t i = 0; i < want.size(); ++i) {
    const auto& d = doc["deltas"][static_cast<rapidjson::SizeType>(i)];
    BOOST_TEST(d["id"].GetInt64() == static_cast<std::int64_t>(i + 1));
    BOOST_TEST(d["origin"].GetString() == want[i].first, "step " << i + 1);
    BOOST_TEST(d["gap"].GetBool() == want[i].second, "step " << i + 1);
  }

  // Stream text stays escaped in the new lines too; with colour, the marks
  // are painted with the CLI's own SGR codes only.
  auto hostile = cli({"--db", file.string(), "--utc", "timeline", "--", kHostileGapSession});
  BOOST_REQUIRE_MESSAGE(hostile.exit_code == 0, hostile.err);
  BOOST_TEST(hostile.out.find('\x1b') == std::string::npos, hostile.out);
  BOOST_TEST(hostile.out.find('\x07') == std::string::npos, hostile.out);
  BOOST_TEST(hostile.out.find("Session evil\\x1b]0;x\\x07: 1 delta") == 0u, hostile.out);
  BOOST_TEST(hostile.out.find("\n-- changes before 2025-11-10T12:07:43.000Z were not observed\n") !=
             std::string::npos, hostile.out);
  auto coloured = cli({"--db", file.string(), "--utc", "--color", "always", "timeline", "sess_r"});
  BOOST_TEST(coloured.out.find("\x1b[35minferred: reconciled with the backend's live sessions\x1b[0m") !=
             std::string::npos, coloured.out);
  BOOST_TEST(coloured.out.find("\x1b[1;31m-- changes between ") != std::string::npos, coloured.out);
}

BOOST_FIXTURE_TEST_CASE(query_and_exports_show_origin_and_gap, FidelityFixture) {
  // The table: ORIGIN empty for the stream's deltas, named for inferred ones;
  // GAP says gap. Rows are newest first by time, as ever.
  auto table = cli({"--db", file.string(), "--utc", "query", "--session", "sess_r"});
  BOOST_REQUIRE_MESSAGE(table.exit_code == 0, table.err);
  auto header = lines(table.out).at(0);
  BOOST_TEST(header.find("ID  TIME") == 0u, header);
  auto origin_at = header.find("ORIGIN");
  auto gap_at = header.find("GAP");
  BOOST_TEST_REQUIRE(origin_at != std::string::npos, header);
  BOOST_TEST_REQUIRE(gap_at != std::string::npos, header);
  BOOST_TEST(table_row(table.out, "6").substr(origin_at, 9) == "reconcile");
  BOOST_TEST(table_row(table.out, "5").substr(origin_at, 9) == "resync   ");
  BOOST_TEST(table_row(table.out, "4").substr(origin_at, 9) == "         ");
  BOOST_TEST(table_row(table.out, "4").substr(gap_at, 3) == "gap");
  for (const std::string id : {"1", "2", "3", "5", "6"}) {
    BOOST_TEST(table_row(table.out, id).substr(gap_at, 3) == "   ", "row " << id);
  }
  for (const std::string id : {"1", "2", "3"}) {
    BOOST_TEST(table_row(table.out, id).substr(origin_at, 9) == "         ", "row " << id);
  }

  // json (the API's answer) and ndjson: both fields on every delta.
  auto json = cli({"--db", file.string(), "query", "--format", "json"});
  BOOST_REQUIRE_MESSAGE(json.exit_code == 0, json.err);
  auto doc = parse(json.out);
  BOOST_REQUIRE(doc["deltas"].Size() == 8u);
  const std::map<std::int64_t, std::pair<std::string, bool>> want = {
      {1, {"stream", false}}, {2, {"stream", false}},    {3, {"stream", false}},
      {4, {"stream", true}},  {5, {"resync", false}},    {6, {"reconcile", false}},
      {7, {"stream", true}},  {8, {"stream", true}}};
  for (const auto& d : doc["deltas"].GetArray()) {
    auto id = d["id"].GetInt64();
    BOOST_TEST(d["origin"].GetString() == want.at(id).first, "id " << id);
    BOOST_TEST(d["gap"].GetBool() == want.at(id).second, "id " << id);
  }
  auto ndjson = cli({"--db", file.string(), "query", "--format", "ndjson"});
  for (const auto& line : lines(ndjson.out)) {
    auto d = parse(line);
    auto id = d["id"].GetInt64();
    BOOST_TEST(d["origin"].GetString() == want.at(id).first, "id " << id);
    BOOST_TEST(d["gap"].GetBool() == want.at(id).second, "id " << id);
  }

  // CSV, from query and from export: two columns appended, byte for byte.
  const std::string header_line = "id,type,sessionId,timestamp,createdAt,before,after,origin,gap\r\n";
  const std::string gap_row = "4,updated,sess_r,2025-11-10T12:07:40.000Z," + kFidelityCreatedAt +
                              ",\"{\"\"planStatus\"\":\"\"approved\"\"}\","
                              "\"{\"\"planStatus\"\":\"\"succeeded\"\"}\",stream,1\r\n";
  const std::string reconcile_row =
      "6,deleted,sess_r,2025-11-10T12:07:42.000Z," + kFidelityCreatedAt +
      ",\"{\"\"planStatus\"\":\"\"succeeded\"\",\"\"summary\"\":\"\"Fix the flaky test\"\"}\","
      ",reconcile,0\r\n";
  auto csv = cli({"--db", file.string(), "query", "--session", "sess_r", "--format", "csv"});
  auto exported = cli({"--db", file.string(), "export", "--format", "csv"});
  for (const auto* out : {&csv.out, &exported.out}) {
    BOOST_TEST(out->rfind(header_line, 0) == 0u, *out);
    BOOST_TEST(out->find("\r\n" + gap_row) != std::string::npos, *out);
    BOOST_TEST(out->find("\r\n" + reconcile_row) != std::string::npos, *out);
  }

  // The daemon says the same as the file.
  LiveDaemon daemon(file);
  for (const auto& command : std::vector<std::vector<std::string>>{
           {"--utc", "query"}, {"query", "--format", "json"}, {"--utc", "timeline", "sess_r"},
           {"timeline", "sess_r", "--format", "json"}, {"export", "--format", "csv"}}) {
    std::vector<std::string> offline = {"--db", file.string()};
    std::vector<std::string> live = {"--url", daemon.url};
    offline.insert(offline.end(), command.begin(), command.end());
    live.insert(live.end(), command.begin(), command.end());
    auto a = cli(offline);
    auto b = cli(live);
    BOOST_TEST_CONTEXT(command.at(0) << " " << command.at(1)) {
      BOOST_TEST(a.exit_code == 0, a.err);
      BOOST_TEST(b.exit_code == 0, b.err);
      BOOST_TEST(a.out == b.out);
    }
  }
}

BOOST_FIXTURE_TEST_CASE(live_answers_equal_the_file, Fixture) {
  LiveDaemon daemon(file);
  const std::vector<std::vector<std::string>> commands = {
      {"query", "--format", "json", "--limit", "1000"},
      {"query", "--session", "s1", "--format", "csv"},
      {"query", "--type", "created", "--format", "ndjson"},
      {"--utc", "query", "--limit", "20"},
      {"sessions", "--format", "json"},
      {"sessions"},
      {"--utc", "timeline", "sess_a"},
      {"timeline", "sess_a", "--format", "json"},
      {"timeline", kOddSession},
      {"export", "--format", "csv"},
      {"export", "--format", "ndjson"},
      {"export"},
  };
  for (const auto& command : commands) {
    std::vector<std::string> offline = {"--db", file.string()};
    std::vector<std::string> live = {"--url", daemon.url};
    offline.insert(offline.end(), command.begin(), command.end());
    live.insert(live.end(), command.begin(), command.end());
    auto a = cli(offline);
    auto b = cli(live);
    BOOST_TEST_CONTEXT(command[0] << " " << (command.size() > 1 ? command[1] : "")) {
      BOOST_TEST(a.exit_code == 0, a.err);
      BOOST_TEST(b.exit_code == 0, b.err);
      BOOST_TEST(!a.out.empty());
      BOOST_TEST(a.out == b.out);
    }
  }
  auto stats = parse(cli({"--url", daemon.url, "stats", "--format", "json"}).out);
  BOOST_TEST(stats["deltaCount"].GetInt64() == 244);
  BOOST_TEST(stats["connected"].GetBool());
}

BOOST_FIXTURE_TEST_CASE(live_snapshot_check_and_cleanup, Fixture) {
  LiveDaemon daemon(file);
  auto snapshot = cli({"--url", daemon.url, "snapshot"});
  BOOST_TEST(snapshot.exit_code == 0, snapshot.err);
  BOOST_TEST(snapshot.out == "snapshot written: data/sessions.sqlite, 64.0 KiB in 0.125 s\n");

  auto ready = cli({"--url", daemon.url, "check"});
  BOOST_TEST(ready.exit_code == 0, ready.err);
  BOOST_TEST(ready.out.find("ready:          yes") != std::string::npos);
  daemon.on_io([&] {
    daemon.reasons = {"stream disconnected"};
    return 0;
  });
  auto not_ready = cli({"--url", daemon.url, "check"});
  BOOST_TEST(not_ready.exit_code == 1);
  BOOST_TEST(not_ready.out.find("reason:       stream disconnected") != std::string::npos);

  auto cleanup = cli({"--url", daemon.url, "cleanup", "--older-than", "30d"});
  BOOST_TEST(cleanup.exit_code == 0, cleanup.err);
  BOOST_TEST(cleanup.out.find("deleted 40 deltas stored before ") == 0u, cleanup.out);
  BOOST_TEST(daemon.on_io([&] { return daemon.store().counts().deltas; }) == 204);
  // The file is not the daemon's business here: untouched.
  BOOST_TEST(query_db(file, "SELECT COUNT(*) FROM session_deltas")[0][0] == "244");
}

BOOST_FIXTURE_TEST_CASE(offline_cleanup_rewrites_the_file, Fixture) {
  auto result = cli({"--db", file.string(), "cleanup", "--older-than", "30d"});
  BOOST_REQUIRE_MESSAGE(result.exit_code == 0, result.err);
  BOOST_TEST(result.out.find("deleted 40 deltas") == 0u, result.out);
  BOOST_TEST(query_db(file, "SELECT COUNT(*) FROM session_deltas")[0][0] == "204");
  BOOST_TEST(query_db(file, "PRAGMA integrity_check")[0][0] == "ok");
  auto mode = fs::status(file).permissions() & fs::perms::all;
  BOOST_TEST((mode == (fs::perms::owner_read | fs::perms::owner_write)));
  auto again = cli({"--db", file.string(), "cleanup", "--older-than", "2025-01-01T00:00:00Z"});
  BOOST_TEST(again.exit_code == 0);
  BOOST_TEST(again.out.find("deleted 0 deltas") == 0u);
  BOOST_TEST(cli({"--db", file.string(), "check"}).exit_code == 0);
}

BOOST_FIXTURE_TEST_CASE(check_reports_integrity_and_schema_version, Fixture) {
  auto good = cli({"--db", file.string(), "check"});
  BOOST_TEST(good.exit_code == 0, good.err);
  BOOST_TEST(good.out.find("integrity:      ok") != std::string::npos);
  BOOST_TEST(good.out.find("schema version: " + std::to_string(kSchemaVersion) + " (current)") !=
             std::string::npos, good.out);

  // The domain document's own schema: readable, reported as version 0.
  auto v0 = dir / "v0.sqlite";
  sqlite3* db = nullptr;
  BOOST_REQUIRE(sqlite3_open(v0.c_str(), &db) == SQLITE_OK);
  BOOST_REQUIRE(sqlite3_exec(db,
                             "CREATE TABLE session_deltas (id INTEGER PRIMARY KEY AUTOINCREMENT, "
                             "session_id TEXT NOT NULL, delta_type TEXT NOT NULL, before_state "
                             "TEXT, after_state TEXT, timestamp TEXT NOT NULL, created_at TEXT NOT "
                             "NULL DEFAULT (datetime('now')));"
                             "INSERT INTO session_deltas (session_id, delta_type, after_state, "
                             "timestamp) VALUES ('old', 'created', '{\"a\":1}', "
                             "'2025-11-10T12:00:00Z');",
                             nullptr, nullptr, nullptr) == SQLITE_OK);
  sqlite3_close(db);
  auto old = cli({"--db", v0.string(), "check"});
  BOOST_TEST(old.exit_code == 0, old.err);
  BOOST_TEST(old.out.find("schema version: 0") != std::string::npos);
  auto old_query = cli({"--db", v0.string(), "query", "--format", "json"});
  BOOST_TEST(parse(old_query.out)["deltas"][0]["timestamp"].GetString() ==
             std::string("2025-11-10T12:00:00.000Z"));

  auto garbage = dir / "garbage.sqlite";
  write_file(garbage, std::string(8192, 'x'));
  BOOST_TEST(cli({"--db", garbage.string(), "check"}).exit_code == 1);
  BOOST_TEST(cli({"--db", garbage.string(), "query"}).exit_code == 1);
}

BOOST_FIXTURE_TEST_CASE(a_token_is_sent_when_given, Fixture) {
  LiveDaemon daemon(file, "cli-token");
  auto without = cli({"--url", daemon.url, "stats"});
  BOOST_TEST(without.exit_code == 1);
  BOOST_TEST(without.err.find("unauthorized") != std::string::npos, without.err);
  BOOST_TEST(cli({"--url", daemon.url, "--token", "cli-token", "stats"}).exit_code == 0);
  // The token file is read as the daemon reads its own (base/secrets.h): one
  // that group or others may read is refused, so the file is made private.
  auto token_file = dir / "token";
  write_file(token_file, "cli-token\n");
  fs::permissions(token_file,
                  fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read);
  auto shared = cli({"--url", daemon.url, "--token-file", token_file.string(), "stats"});
  BOOST_TEST(shared.exit_code == 1);
  BOOST_TEST(shared.err.find("chmod 600") != std::string::npos, shared.err);
  fs::permissions(token_file, fs::perms::owner_read | fs::perms::owner_write);
  BOOST_TEST(cli({"--url", daemon.url, "--token-file", token_file.string(), "stats"}).exit_code == 0);
}

BOOST_FIXTURE_TEST_CASE(exit_codes_for_usage_and_failures, Fixture) {
  const std::string db = file.string();
  const std::vector<std::vector<std::string>> usage = {
      {},
      {"frobnicate"},
      {"--db", db, "query", "--bogus", "1"},
      {"--db", db, "query", "--limit", "abc"},
      {"--db", db, "query", "--limit", "100000"},
      {"--db", db, "query", "--since", "yesterday"},
      {"--db", db, "query", "--type", "exploded"},
      {"--db", db, "query", "--format", "xml"},
      {"--db", db, "query", "--limit"},
      {"--db", db, "--url", "http://127.0.0.1:1", "stats"},
      {"--db", db, "timeline"},
      {"--db", db, "timeline", "a", "b"},
      {"--db", db, "stats", "extra"},
      {"--db", db, "snapshot"},
      {"--db", db, "cleanup"},
      {"--db", db, "cleanup", "--older-than", "soon"},
      {"--db", db, "export", "--format", "xml"},
      {"--color", "sometimes", "stats"},
      {"--url", "https://example.invalid", "stats"},
  };
  for (const auto& args : usage) {
    auto result = cli(args);
    std::string joined;
    for (const auto& a : args) joined += a + " ";
    BOOST_TEST_CONTEXT(joined) {
      BOOST_TEST(result.exit_code == 2, result.err);
      BOOST_TEST(!result.err.empty());
    }
  }
  auto missing = cli({"--db", (dir / "missing.sqlite").string(), "stats"});
  BOOST_TEST(missing.exit_code == 1);
  BOOST_TEST(missing.err.find("missing.sqlite") != std::string::npos);
  auto unreachable = cli({"--url", "http://127.0.0.1:" + std::to_string(free_port()), "stats"});
  BOOST_TEST(unreachable.exit_code == 1);
  BOOST_TEST(unreachable.err.find("cannot reach deltatapd") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(help_for_every_command) {
  auto top = cli({"--help"});
  BOOST_TEST(top.exit_code == 0);
  for (const std::string command :
       {"stats", "query", "sessions", "timeline", "export", "cleanup", "snapshot", "check"}) {
    BOOST_TEST(top.out.find("  " + command + " ") != std::string::npos, command);
    auto help = cli({command, "--help"});
    BOOST_TEST(help.exit_code == 0, command);
    BOOST_TEST(help.out.find("usage: deltatap " + command) == 0u, command);
    BOOST_TEST(cli({"help", command}).out == help.out);
  }
  auto version = cli({"--version"});
  BOOST_TEST(version.exit_code == 0);
  BOOST_TEST(version.out.find("deltatap ") == 0u);
}

BOOST_FIXTURE_TEST_CASE(times_local_or_utc_and_colour_only_on_request, Fixture) {
  // Not a terminal: no escape codes, times in the local zone.
  auto local = cli({"--db", file.string(), "timeline", "sess_a"}, {{"TZ", "XYZ-2"}});
  BOOST_TEST(local.out.find("2025-11-10T14:05:00.000+02:00  updated") != std::string::npos,
             local.out);
  BOOST_TEST(local.out.find('\x1b') == std::string::npos);
  auto utc = cli({"--db", file.string(), "--utc", "timeline", "sess_a"}, {{"TZ", "XYZ-2"}});
  BOOST_TEST(utc.out.find("2025-11-10T12:05:00.000Z  updated") != std::string::npos);
  auto coloured = cli({"--db", file.string(), "--color", "always", "query", "--limit", "3"});
  BOOST_TEST(coloured.out.find("\x1b[") != std::string::npos);
  auto plain = cli({"--db", file.string(), "query", "--limit", "3"});
  BOOST_TEST(plain.out.find('\x1b') == std::string::npos);
  // Columns line up: every row's TYPE starts where the header's does.
  auto rows = lines(plain.out);
  auto at = rows[0].find("TYPE");
  for (std::size_t i = 1; i < rows.size(); ++i) {
    auto type = rows[i].substr(at, 7);
    BOOST_TEST((type == "created" || type == "updated" || type == "deleted"), rows[i]);
  }
}

// The issue's yardstick: 3,000 deltas, and every view of them agrees with the file.
BOOST_AUTO_TEST_CASE(three_thousand_deltas_agree_everywhere) {
  TempDir dir;
  auto opened = Store::open_empty();
  BOOST_REQUIRE(opened.ok());
  auto& store = *opened.value();
  std::vector<Delta> batch;
  for (int i = 0; i < 3000; ++i) {
    Delta d;
    d.session_id = "sess_" + std::to_string(i % 40);
    d.type = i < 40 ? DeltaType::created : DeltaType::updated;
    if (d.type == DeltaType::updated) d.before = R"({"planStatus":"pending","n":)" + std::to_string(i - 1) + "}";
    d.after = R"({"planStatus":"in_progress","n":)" + std::to_string(i) + "}";
    d.timestamp = ts(i / 7);  // ties within a session's pages
    batch.push_back(std::move(d));
  }
  BOOST_REQUIRE(store.save_batch(batch).ok());
  auto file = write_store(store, dir / "sessions.sqlite");
  LiveDaemon daemon(file);

  auto stats = parse(cli({"--url", daemon.url, "stats", "--format", "json"}).out);
  BOOST_TEST(stats["deltaCount"].GetInt64() == 3000);
  BOOST_TEST(parse(cli({"--db", file.string(), "stats", "--format", "json"}).out)["deltaCount"]
                 .GetInt64() == 3000);

  // One session's history, newest first, as the file has it.
  auto session = cli({"--url", daemon.url, "query", "--session", "sess_7", "--limit", "1000",
                      "--format", "json"});
  auto sql = column(query_db(file, "SELECT id FROM session_deltas WHERE session_id = 'sess_7' "
                                   "ORDER BY timestamp DESC, id DESC"), 0);
  std::vector<std::string> got;
  auto session_doc = parse(session.out);
  for (const auto& d : session_doc["deltas"].GetArray()) {
    got.push_back(std::to_string(d["id"].GetInt64()));
  }
  BOOST_TEST(got == sql, boost::test_tools::per_element());

  // A cursor walk through the CLI sees 3,000 distinct ids.
  std::set<std::string> seen;
  std::optional<std::string> cursor;
  do {
    std::vector<std::string> args = {"--url", daemon.url, "query", "--limit", "1000", "--format", "json"};
    if (cursor) args.insert(args.end(), {"--before", *cursor});
    auto doc = parse(cli(args).out);
    for (const auto& d : doc["deltas"].GetArray()) seen.insert(std::to_string(d["id"].GetInt64()));
    cursor = doc["next"].IsNull() ? std::nullopt : std::optional<std::string>(doc["next"].GetString());
  } while (cursor);
  BOOST_TEST(seen.size() == 3000u);

  // CSV export: 3,000 records, from the file and from the daemon alike.
  for (const auto& source : {std::vector<std::string>{"--db", file.string()},
                             std::vector<std::string>{"--url", daemon.url}}) {
    auto out = dir / "export.csv";
    auto args = source;
    args.insert(args.end(), {"export", "--format", "csv", "--out", out.string()});
    BOOST_REQUIRE(cli(args).exit_code == 0);
    auto read = run_command({"/usr/bin/python3",
                             (source_dir() / "tests/fixtures/csv_roundtrip.py").string(),
                             out.string()});
    BOOST_REQUIRE_MESSAGE(read.exit_code == 0, read.err);
    BOOST_TEST(parse(read.out).Size() == 3000u);
  }
  auto timeline = cli({"--db", file.string(), "--utc", "timeline", "sess_7"});
  BOOST_TEST(timeline.out.find("Session sess_7: 75 deltas") == 0u, timeline.out.substr(0, 200));
  BOOST_TEST(timeline.out.find("    n: 46 → 47") != std::string::npos);
}

namespace {

struct DaemonAndSimulatorBuilt {
  boost::test_tools::assertion_result operator()(boost::unit_test::test_unit_id) const {
    bool built = fs::exists(bin_dir() / "deltatapd") && fs::exists(bin_dir() / "deltatap-sim");
    boost::test_tools::assertion_result result(built);
    result.message() << "deltatapd or deltatap-sim is not built in " << bin_dir();
    return result;
  }
};

}  // namespace

// The issue's "done when", end to end: the simulator streams 3,000 deltas to a
// real deltatapd; its API, its metrics and the CLI on its file all agree.
BOOST_AUTO_TEST_CASE(simulator_to_daemon_to_answers,
                     *boost::unit_test::precondition(DaemonAndSimulatorBuilt())) {
  TempDir dir;
  Sim sim(dir, "sim", {"--count", "3000", "--format", "mixed", "--sessions", "25", "--seed", "5"});
  int port = free_port();
  auto env = daemon_env(sim.url(), "");
  env["DELTATAP_HTTP"] = "127.0.0.1:" + std::to_string(port);
  Process daemon({deltatapd_argv(), env, dir.path()});
  auto db = dir / "data/sessions.sqlite";
  BOOST_REQUIRE_MESSAGE(sim.wait_sent(), "simulator: " << sim.process().stderr_text());
  BOOST_REQUIRE_MESSAGE(wait_for_rows(daemon, db, 3000), "daemon: " << daemon.stderr_text());

  auto api = [&](const std::string& target) {
    auto reply = http_request(port, "GET", target);
    BOOST_TEST_REQUIRE(reply.status != 0, target);
    return reply;
  };
  BOOST_TEST(parse(api("/api/stats").body)["deltaCount"].GetInt64() == 3000);

  // One session's deltas, newest first, equal the file's.
  auto session = query_db(db, "SELECT session_id FROM session_deltas GROUP BY session_id "
                              "ORDER BY COUNT(*) DESC LIMIT 1")[0][0];
  auto expected = column(query_db(db, "SELECT id FROM session_deltas WHERE session_id = '" +
                                          session + "' ORDER BY timestamp DESC, id DESC"), 0);
  std::vector<std::string> got;
  auto by_path = parse(api("/api/deltas/" + session + "?limit=1000").body);
  for (const auto& d : by_path["deltas"].GetArray()) {
    got.push_back(std::to_string(d["id"].GetInt64()));
  }
  BOOST_TEST(got == expected, boost::test_tools::per_element());

  // A cursor walk over the API sees 3,000 distinct ids.
  std::set<std::int64_t> seen;
  std::string target = "/api/deltas?limit=1000";
  while (true) {
    auto doc = parse(api(target).body);
    for (const auto& d : doc["deltas"].GetArray()) seen.insert(d["id"].GetInt64());
    if (doc["next"].IsNull()) break;
    target = std::string("/api/deltas?limit=1000&before=") + doc["next"].GetString();
  }
  BOOST_TEST(seen.size() == 3000u);

  for (const std::string bad : {"limit=abc", "limit=-1", "limit=100000", "since=yesterday",
                                "type=exploded"}) {
    auto reply = api("/api/deltas?" + bad);
    BOOST_TEST(reply.status == 400, bad);
    BOOST_TEST(parse(reply.body).HasMember("error"), bad);
  }

  auto metrics = api("/metrics");
  BOOST_TEST(metrics.body.find("deltatap_store_deltas 3000\n") != std::string::npos);
  // The file above was written by forked snapshots: each one's pause was timed.
  auto forks_at = metrics.body.find("deltatap_snapshot_pause_seconds_count ");
  BOOST_REQUIRE(forks_at != std::string::npos);
  BOOST_TEST(std::stol(metrics.body.substr(forks_at + std::strlen("deltatap_snapshot_pause_seconds_count "))) >= 1);
  if (run_command({"/bin/sh", "-c", "command -v promtool"}).exit_code == 0) {
    write_file(dir / "metrics.txt", metrics.body);
    auto check = run_command(
        {"/bin/sh", "-c", "promtool check metrics < '" + (dir / "metrics.txt").string() + "'"});
    BOOST_TEST(check.exit_code == 0, check.out << check.err);
  } else {
    skip("promtool check: promtool not installed (Debian package prometheus)");
  }

  // The CLI on the file agrees with the file.
  auto stats = parse(cli({"--db", db.string(), "stats", "--format", "json"}).out);
  BOOST_TEST(stats["deltaCount"].GetInt64() == 3000);
  auto query = cli({"--db", db.string(), "query", "--session", session, "--limit", "1000",
                    "--format", "json"});
  std::vector<std::string> from_cli;
  auto query_doc = parse(query.out);
  for (const auto& d : query_doc["deltas"].GetArray()) {
    from_cli.push_back(std::to_string(d["id"].GetInt64()));
  }
  BOOST_TEST(from_cli == expected, boost::test_tools::per_element());
  auto timeline = cli({"--db", db.string(), "timeline", session});
  BOOST_TEST(timeline.exit_code == 0, timeline.err);
  BOOST_TEST(timeline.out.find(": " + std::to_string(expected.size()) + " deltas") !=
             std::string::npos);
  auto out = dir / "export.csv";
  BOOST_REQUIRE(cli({"--db", db.string(), "export", "--format", "csv", "--out", out.string()})
                    .exit_code == 0);
  auto read = run_command({"/usr/bin/python3",
                           (source_dir() / "tests/fixtures/csv_roundtrip.py").string(),
                           out.string()});
  BOOST_REQUIRE_MESSAGE(read.exit_code == 0, read.err);
  BOOST_TEST(parse(read.out).Size() == 3000u);

  daemon.signal(SIGTERM);
  BOOST_TEST(daemon.wait().value_or(-1) == 0);
}
