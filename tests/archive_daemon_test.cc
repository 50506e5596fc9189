// Archives as the real daemon keeps them ([retention] archive = on): deltas
// past retention move into data/archive/ at start, the API and the CLI read
// them back with --archive / ?archive=1, and a deltatapd killed (SIGKILL) in
// the middle of a move loses nothing and duplicates nothing after a restart.
#define BOOST_TEST_MODULE archive_daemon
#include <boost/test/unit_test.hpp>

#include <cctype>
#include <csignal>
#include <map>
#include <sstream>

#include "storage/archive_file.h"
#include "storage/snapshot.h"
#include "storage/store.h"
#include "test_support.h"

using namespace deltatap;
using namespace deltatap::testing;

namespace {

struct Built {
  boost::test_tools::assertion_result operator()(boost::unit_test::test_unit_id) const {
    bool built = fs::exists(bin_dir() / "deltatapd") && fs::exists(bin_dir() / "deltatap");
    boost::test_tools::assertion_result result(built);
    result.message() << "deltatapd or deltatap is not built in " << bin_dir();
    return result;
  }
};

constexpr int kOld = 150;    // ids 1-150: stored 31 to 35 days ago
constexpr int kRecent = 50;  // ids 151-200: stored an hour ago
constexpr int kAll = kOld + kRecent;

std::string state_of(int id) {
  return R"({"id":")" + std::to_string(id) + R"(","n":9007199254740993,"title":"Ünïcødé ✓ 日本語"})";
}

// A store file as a daemon that ran for a while leaves it, the dates taken
// from the real clock (retention at start goes by it).
void write_store(const fs::path& path) {
  fs::create_directories(path.parent_path());
  fs::permissions(path.parent_path(), fs::perms::owner_all);
  auto store = Store::open_empty();
  BOOST_REQUIRE_MESSAGE(store.ok(), store.error());
  auto now = now_millis();
  std::vector<StoredDelta> rows;
  for (int id = 1; id <= kAll; ++id) {
    StoredDelta row;
    row.id = id;
    row.delta.session_id = "s" + std::to_string(id % 7);
    row.delta.type = DeltaType::updated;
    row.delta.before = state_of(id - 1);
    row.delta.after = state_of(id);
    auto created = id <= kOld ? now - std::chrono::days(31 + id % 5) - std::chrono::minutes(id)
                              : now - std::chrono::hours(1);
    row.created_at = format_timestamp(created);
    row.delta.timestamp = row.created_at;
    rows.push_back(row);
  }
  auto saved = (*store)->save_with_created_at(rows);
  BOOST_REQUIRE_MESSAGE(saved.ok(), saved.error());
  auto written = write_snapshot_file(path.string(), [&](const std::string& temp) {
    return (*store)->write_copy(temp);
  });
  BOOST_REQUIRE_MESSAGE(written.ok(), written.error());
}

struct Setup {
  TempDir dir;
  fs::path db = dir / "data/sessions.sqlite";
  fs::path archive = dir / "data/archive";
  fs::path conf = dir / "deltatap.conf";
  std::string dead_url = "ws://127.0.0.1:" + std::to_string(free_port()) + "/ws";
  int port = free_port();

  Setup() {
    write_store(db);
    write_file(conf, "[retention]\ndays = 30\narchive = on\n");
  }

  ProcessOptions daemon(bool kill_in_move) const {
    auto env = daemon_env(dead_url, "");
    env["DB_PATH"] = db.string();
    env["DELTATAP_HTTP"] = "127.0.0.1:" + std::to_string(port);
    if (kill_in_move) env["DELTATAP_TEST_ARCHIVE_KILL"] = "1";
    return ProcessOptions{deltatapd_argv({"--config", conf.string()}), env, dir.path()};
  }

  CommandResult cli(std::vector<std::string> args) const {
    args.insert(args.begin(), {(bin_dir() / "deltatap").string(), "--db", db.string()});
    return run_command(args);
  }

  // Every id in the archive files, with how often.
  std::map<long, int> archived_ids() const {
    std::map<long, int> ids;
    auto files = list_archive_files(archive.string());
    BOOST_REQUIRE_MESSAGE(files.ok(), files.error());
    for (const auto& file : *files) {
      for (const auto& row : query_db(file.path, "SELECT id FROM session_deltas")) {
        ++ids[std::stol(row.at(0))];
      }
    }
    return ids;
  }
};

std::map<long, int> ndjson_ids(const std::string& text) {
  std::map<long, int> ids;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line.empty()) continue;
    auto id = json_integer(line, "id");
    BOOST_REQUIRE_MESSAGE(id, line);
    ++ids[static_cast<long>(*id)];
  }
  return ids;
}

}  // namespace

BOOST_AUTO_TEST_CASE(a_daemon_killed_in_a_move_loses_nothing_and_duplicates_nothing,
                     *boost::unit_test::precondition(Built())) {
  Setup setup;

  // Killed once the first batch is in its file, before it leaves memory.
  {
    Process daemon(setup.daemon(true));
    auto code = daemon.wait(60s);
    BOOST_REQUIRE_MESSAGE(code, "deltatapd did not die: " << daemon.stderr_text());
    BOOST_TEST(*code == 128 + SIGKILL, daemon.stderr_text());
  }
  BOOST_TEST(count_of(setup.db) == std::to_string(kAll));  // no snapshot came after the move
  auto after_kill = setup.archived_ids();
  BOOST_TEST(!after_kill.empty());

  // Restarted: the move is redone; the snapshot at start holds the rest.
  Process daemon(setup.daemon(false));
  BOOST_REQUIRE_MESSAGE(wait_until([&] { return count_of(setup.db) == std::to_string(kRecent); },
                                   60s),
                        "deltatapd: " << daemon.stderr_text());
  BOOST_REQUIRE_MESSAGE(
      wait_until([&] { return http_request(setup.port, "GET", "/healthz").status == 200; }, 30s),
      "deltatapd: " << daemon.stderr_text());
  auto archived = setup.archived_ids();
  BOOST_TEST(archived.size() == static_cast<std::size_t>(kOld));
  for (const auto& [id, times] : archived) {
    BOOST_TEST(times == 1, "id " << id);
    BOOST_TEST(id <= kOld, "id " << id);
  }

  // The API reads across memory and files; its stats and metrics count the files.
  auto page = http_request(setup.port, "GET", "/api/export?format=ndjson&archive=1");
  BOOST_TEST_REQUIRE(page.status == 200, page.body);
  auto exported = ndjson_ids(page.body);
  BOOST_TEST(exported.size() == static_cast<std::size_t>(kAll));
  for (const auto& [id, times] : exported) BOOST_TEST(times == 1, "id " << id);
  BOOST_TEST(page.body.find(state_of(7)) != std::string::npos);  // exact digits, unicode
  auto memory_only = http_request(setup.port, "GET", "/api/export?format=ndjson");
  BOOST_TEST(ndjson_ids(memory_only.body).size() == static_cast<std::size_t>(kRecent));
  auto stats = http_request(setup.port, "GET", "/api/stats");
  BOOST_TEST(stats.body.find("\"archive\":{") != std::string::npos, stats.body);
  BOOST_TEST(json_integer(stats.body, "moved").value_or(-1) == kOld, stats.body);
  BOOST_TEST(metric_sample(setup.port, "deltatap_archive_deltas_total").value_or(-1) == kOld);

  daemon.signal(SIGTERM);
  auto code = daemon.wait(30s);
  BOOST_REQUIRE(code);
  BOOST_TEST(*code == 0, daemon.stderr_text());

  // The CLI on the files: every id once, newest first, through pages.
  std::map<long, int> queried;
  std::vector<std::string> args = {"query", "--archive", "--format", "json", "--limit", "60"};
  std::optional<std::string> cursor;
  for (int pages = 0; pages < 20; ++pages) {
    auto run_args = args;
    if (cursor) {
      run_args.push_back("--before");
      run_args.push_back(*cursor);
    }
    auto result = setup.cli(run_args);
    BOOST_TEST_REQUIRE(result.exit_code == 0, result.err);
    auto body = result.out;
    std::size_t at = 0;
    while ((at = body.find("{\"id\":", at)) != std::string::npos) {
      // A state may hold an "id" of its own (a string): only a delta's id is a number.
      if (std::isdigit(static_cast<unsigned char>(body[at + 6]))) ++queried[std::stol(body.substr(at + 6))];
      ++at;
    }
    auto next = body.find("\"next\":\"");
    if (next == std::string::npos) break;
    auto end = body.find('"', next + 8);
    cursor = body.substr(next + 8, end - next - 8);
  }
  BOOST_TEST(queried.size() == static_cast<std::size_t>(kAll));
  for (const auto& [id, times] : queried) BOOST_TEST(times == 1, "id " << id);

  auto without = setup.cli({"query", "--format", "ndjson", "--limit", "1000"});
  BOOST_TEST(ndjson_ids(without.out).size() == static_cast<std::size_t>(kRecent));

  auto timeline = setup.cli({"timeline", "s3", "--archive", "--format", "json"});
  BOOST_TEST(timeline.exit_code == 0, timeline.err);
  // Session s3: id 3 is in a file, id 157 in memory.
  BOOST_TEST(timeline.out.find("{\"id\":3,") != std::string::npos, timeline.out);
  BOOST_TEST(timeline.out.find("{\"id\":157,") != std::string::npos, timeline.out);

  auto check = setup.cli({"check", "--archive"});
  BOOST_TEST(check.exit_code == 0, check.out + check.err);
  BOOST_TEST(check.out.find("archive:") != std::string::npos, check.out);
}

BOOST_AUTO_TEST_CASE(archive_without_storage_is_refused_at_start,
                     *boost::unit_test::precondition(Built())) {
  TempDir dir;
  write_file(dir / "deltatap.conf", "[retention]\narchive = on\n");
  auto env = daemon_env("ws://127.0.0.1:9/ws", "");
  env["PERSIST"] = "0";
  auto result = run_command(deltatapd_argv({"--config", (dir / "deltatap.conf").string(),
                                            "--check-config"}),
                            env, dir.path());
  BOOST_TEST(result.exit_code == 2);
  BOOST_TEST(result.err.find("[retention] archive") != std::string::npos, result.err);

  write_file(dir / "deltatap.conf", "[retention]\narchive = sometimes\n");
  env["PERSIST"] = "1";
  result = run_command(deltatapd_argv({"--config", (dir / "deltatap.conf").string(),
                                       "--check-config"}),
                       env, dir.path());
  BOOST_TEST(result.exit_code == 2);
  BOOST_TEST(result.err.find("archive") != std::string::npos, result.err);
  BOOST_TEST(result.err.find("on or off") != std::string::npos, result.err);
}
