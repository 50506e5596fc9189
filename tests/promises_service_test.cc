// What the README promises about the running service, checked against the real
// deltatapd, deltatap-sim and deltatap (issue 19, items 2, 3 and 5), each on the
// files the daemon leaves on disk rather than on what it logs:
//  - retention at start and at 00:00 UTC: which rows go (the boundary to the
//    millisecond), the compaction, and the snapshot that follows;
//  - /readyz against a real stream and a data directory that really fails, and
//    POST /api/snapshot and /api/cleanup changing the file;
//  - token file modes, the quarantine's cap, SIGHUP's restart-only keys, SIGINT's
//    final snapshot, the stale temporary and the corrupt file at start, and a
//    byte-exact CSV export.
// Every wait is on a condition with a deadline.
#define BOOST_TEST_MODULE promises_service
#include <boost/test/unit_test.hpp>

#include <fcntl.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <span>
#include <string>
#include <vector>

#include "base/timestamp.h"
#include "storage/retention.h"
#include "storage/store.h"
#include "test_support.h"

using namespace deltatap;
using namespace deltatap::testing;
using std::chrono::days;
using std::chrono::milliseconds;

namespace {

// A loopback port with nothing listening: the backend is down.
std::string dead_url() { return "ws://127.0.0.1:" + std::to_string(free_port()) + "/ws"; }

std::string url_on(int port) { return "ws://127.0.0.1:" + std::to_string(port) + "/ws"; }

std::string stamp(TimePoint time) { return format_timestamp(time); }

// A delta as a fixture file holds it: stored (created_at) at `created_at`.
StoredDelta fixture_delta(std::int64_t id, TimePoint created_at) {
  StoredDelta row;
  row.id = id;
  row.delta.session_id = "sess_" + std::to_string(id % 7);
  row.delta.type = DeltaType::updated;
  row.delta.before = R"({"n":)" + std::to_string(id - 1) + "}";
  // Some bulk, so that the rows fill pages and a deletion frees whole ones.
  row.delta.after = R"({"n":)" + std::to_string(id) + R"(,"note":")" + std::string(160, 'x') + "\"}";
  row.delta.timestamp = stamp(created_at);
  row.created_at = stamp(created_at);
  return row;
}

// Writes a database file with the library, as the daemon writes one: an empty
// store, the rows with their own ids and created_at, the quarantine rows, then
// write_copy. The directory is made private (0700), as the daemon requires.
void write_store(const fs::path& path, const std::vector<StoredDelta>& rows,
                 const std::vector<Rejected>& rejected = {}) {
  fs::create_directories(path.parent_path());
  fs::permissions(path.parent_path(), fs::perms::owner_all, fs::perm_options::replace);
  auto store = Store::open_empty();
  BOOST_REQUIRE_MESSAGE(store.ok(), store.error());
  for (std::size_t i = 0; i < rows.size(); i += 5000) {
    auto chunk = std::span(rows).subspan(i, std::min<std::size_t>(5000, rows.size() - i));
    if (auto saved = (*store)->save_with_created_at(chunk); !saved.ok()) BOOST_FAIL(saved.error());
  }
  for (const auto& r : rejected) {
    if (auto kept = (*store)->quarantine(r); !kept.ok()) BOOST_FAIL(kept.error());
  }
  auto written = (*store)->write_copy(path.string());
  BOOST_REQUIRE_MESSAGE(written.ok(), written.error());
  fs::permissions(path, fs::perms::owner_read | fs::perms::owner_write, fs::perm_options::replace);
}

std::vector<std::int64_t> ids_on_disk(const fs::path& db, const std::string& table = "session_deltas") {
  std::vector<std::int64_t> ids;
  for (auto& row : query_db(db, "SELECT id FROM " + table + " ORDER BY id")) ids.push_back(std::stoll(row[0]));
  return ids;
}

long long pragma(const fs::path& db, const std::string& name) {
  return std::stoll(query_db(db, "PRAGMA " + name)[0][0]);
}

std::string http_env(int port) { return "127.0.0.1:" + std::to_string(port); }

// /readyz answers `status` and its body holds `needle`.
bool readyz_is(int port, int status, const std::string& needle) {
  auto reply = http_request(port, "GET", "/readyz");
  return reply.status == status && reply.body.find(needle) != std::string::npos;
}

std::string readyz_text(int port) {
  auto reply = http_request(port, "GET", "/readyz");
  return std::to_string(reply.status) + " " + reply.body;
}

std::optional<long long> stored_count(int port) {
  return json_integer(http_request(port, "GET", "/api/stats").body, "deltaCount");
}

mode_t mode_of(const fs::path& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 ? st.st_mode & 07777 : 0;
}

// The data directory stops taking writes, for real, while the daemon runs, and
// takes them again when this ends.
//  - As root (CI), permissions stop nothing: the directory is a tmpfs of its
//    own (mounted before the daemon starts) and a filler file takes every free
//    byte, so writes fail with ENOSPC, as on a full disk. A read-only bind
//    mount would not do: the kernel refuses to make a mount read-only while a
//    file on it is open for writing (EBUSY), and the daemon holds its lock file
//    and its journal open for its whole life.
//  - Otherwise the directory is made 0500: no file can be created or renamed
//    in it (EACCES), which is what a snapshot needs.
class DataDirTrouble {
 public:
  // Before the daemon starts.
  explicit DataDirTrouble(const fs::path& dir) : dir_(dir), as_root_(::geteuid() == 0) {
    fs::create_directories(dir);
    fs::permissions(dir, fs::perms::owner_all, fs::perm_options::replace);
    if (as_root_) {
      mounted_ = ::mount("tmpfs", dir.c_str(), "tmpfs", 0, "size=16m,mode=0700") == 0;
    }
  }
  ~DataDirTrouble() {
    end();
    if (mounted_) ::umount2(dir_.c_str(), MNT_DETACH);
  }
  bool usable() const { return !as_root_ || mounted_; }
  std::string how() const {
    return as_root_ ? "a full tmpfs (ENOSPC)" : "a data directory made 0500 (EACCES)";
  }

  // Returns false when the trouble could not be made.
  bool begin() {
    if (!as_root_) return ::chmod(dir_.c_str(), 0500) == 0;
    filler_ = dir_ / "filler";
    int fd = ::open(filler_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) return false;
    std::string block(1 << 16, 'f');
    int error = 0;
    for (;;) {
      ssize_t n = ::write(fd, block.data(), block.size());
      if (n < 0) {
        error = errno;
        break;
      }
      if (n == 0) break;
    }
    ::close(fd);
    return error == ENOSPC;
  }

  void end() {
    if (!as_root_) {
      ::chmod(dir_.c_str(), 0700);
    } else if (!filler_.empty()) {
      std::error_code ignored;
      fs::remove(filler_, ignored);
      filler_.clear();
    }
  }

 private:
  fs::path dir_;
  bool as_root_;
  bool mounted_ = false;
  fs::path filler_;
};

}  // namespace

// Item 2. Retention deletes the deltas stored (created_at) more than [retention]
// days ago: retention.cc compares `created_at < now - days` as text, both in the
// normalised millisecond form, so a delta stored exactly `days` ago is kept, one
// stored 1 ms before that goes, one 1 ms after stays. It runs at start and
// every day at 00:00 UTC; then compacts (VACUUM) and snapshots.
//
// "now" is the daemon's, at the moment it runs: unknown to the test to the
// millisecond. So the fixture holds a delta for every millisecond around both
// moments, the cutoff each run used is read from its log line (olderThan=),
// checked against the test's own clock, and the file on disk must hold exactly
// the rows at or after it. The daemon's clock is moved (the test-only
// DELTATAP_TEST_CLOCK_OFFSET) to 5 s before a midnight UTC so that the daily
// run happens during the test.
BOOST_AUTO_TEST_CASE(retention_runs_at_start_and_at_midnight_utc_then_compacts_and_snapshots) {
  TempDir dir;
  const TimePoint midnight = next_midnight_utc(now_millis());  // the daemon's coming 00:00 UTC
  const auto lead = std::chrono::seconds(5);                     // it starts this long before
  const TimePoint line = midnight - days(30);                    // the cutoff at 00:00 exactly
  const TimePoint window_start = line - std::chrono::seconds(7);
  const TimePoint window_end = line + std::chrono::seconds(10);

  std::vector<StoredDelta> rows;
  std::int64_t id = 0;
  for (int i = 0; i < 3; ++i) rows.push_back(fixture_delta(++id, midnight - lead - days(31) + milliseconds(i)));
  const std::int64_t first_window_id = id + 1;
  for (TimePoint t = window_start; t < window_end; t += milliseconds(1)) rows.push_back(fixture_delta(++id, t));
  const std::int64_t last_window_id = id;
  for (int i = 0; i < 3; ++i) rows.push_back(fixture_delta(++id, midnight - lead - std::chrono::hours(1)));
  auto id_at = [&](TimePoint t) { return first_window_id + (t - window_start).count(); };
  // The ids a run with cutoff `cut` leaves: everything stored at or after it.
  auto kept_after = [&](TimePoint cut) {
    std::vector<std::int64_t> kept;
    for (const auto& row : rows) {
      if (row.created_at >= stamp(cut)) kept.push_back(row.id);
    }
    return kept;
  };
  auto db = dir / "data/sessions.sqlite";
  write_store(db, rows);

  int http = free_port();
  auto env = daemon_env(dead_url(), "");
  env["DELTATAP_HTTP"] = http_env(http);
  env["RETENTION_DAYS"] = "30";
  // Last thing before the start: from now on the daemon's clock reads midnight - lead.
  const milliseconds offset = (midnight - lead) - now_millis();
  env["DELTATAP_TEST_CLOCK_OFFSET"] = std::to_string(offset.count());
  const TimePoint started = now_millis() + offset;  // in the daemon's time
  Process daemon({deltatapd_argv(), env, dir.path()});
  // The start run and its snapshot are done before the HTTP API listens.
  BOOST_REQUIRE_MESSAGE(wait_until([&] { return http_request(http, "GET", "/healthz").status == 200; }, 15s),
                        daemon.stderr_text());
  const TimePoint ready = now_millis() + offset;
  BOOST_TEST(daemon.stderr_contains("Test hook: retention's clock is moved"));

  // --- the run at start -----------------------------------------------------
  auto cuts = log_field_values(daemon.stderr_text(), "Cleaned up old deltas", "olderThan");
  BOOST_REQUIRE_MESSAGE(cuts.size() == 1u, daemon.stderr_text());
  const TimePoint start_cut = parse_timestamp(cuts[0]).value();
  BOOST_TEST((start_cut >= started - days(30)), cuts[0] << " vs start " << stamp(started));
  BOOST_TEST((start_cut <= ready - days(30)), cuts[0] << " vs ready " << stamp(ready));
  BOOST_REQUIRE_MESSAGE(start_cut - milliseconds(1) >= window_start && start_cut + milliseconds(1) < line,
                        "the daemon took more than " << lead.count() << " s to start: cutoff " << cuts[0]);
  auto on_disk = ids_on_disk(db);
  BOOST_TEST((on_disk == kept_after(start_cut)));
  auto present = [&](std::int64_t row_id) {
    return std::binary_search(on_disk.begin(), on_disk.end(), row_id);
  };
  BOOST_TEST(!present(1));  // 31 days old
  BOOST_TEST(!present(3));
  BOOST_TEST(!present(id_at(start_cut - milliseconds(1))));  // 30 days + 1 ms: gone
  BOOST_TEST(present(id_at(start_cut)));                      // exactly 30 days: kept (strict <)
  BOOST_TEST(present(id_at(start_cut + milliseconds(1))));   // 30 days - 1 ms: kept
  BOOST_TEST(present(id));                                   // an hour old
  BOOST_TEST(pragma(db, "freelist_count") == 0);            // compacted before it was written
  const long long pages_after_start = pragma(db, "page_count");
  const auto file_after_start = fs::last_write_time(db);

  // --- the run at 00:00 UTC ---------------------------------------------------
  BOOST_REQUIRE_MESSAGE(wait_until([&] {
                          return log_field_values(daemon.stderr_text(), "Cleaned up old deltas", "olderThan")
                                     .size() >= 2;
                        }, 20s),
                        "no retention run at the daemon's midnight:\n" << daemon.stderr_text());
  cuts = log_field_values(daemon.stderr_text(), "Cleaned up old deltas", "olderThan");
  const TimePoint midnight_cut = parse_timestamp(cuts[1]).value();
  BOOST_TEST((midnight_cut >= line), "ran before 00:00 UTC: cutoff " << cuts[1]);
  BOOST_REQUIRE_MESSAGE(midnight_cut + milliseconds(1) < window_end, "cutoff " << cuts[1]);
  const auto expected = kept_after(midnight_cut);
  const auto crossed = static_cast<long long>(kept_after(start_cut).size() - expected.size());
  BOOST_TEST(crossed > 1000);  // the rows stored in the seconds between the two runs
  auto deleted = log_field_values(daemon.stderr_text(), "Cleaned up old deltas", "deleted");
  BOOST_REQUIRE(deleted.size() >= 2u);
  BOOST_TEST(std::stoll(deleted[1]) == crossed);
  BOOST_TEST_MESSAGE("daemon's 00:00 UTC " << stamp(midnight) << "; cutoff at start " << stamp(start_cut)
                                           << ", at midnight " << stamp(midnight_cut) << "; " << crossed
                                           << " rows crossed the line");

  // A snapshot follows by itself (no SIGUSR1, the interval is 10 minutes).
  BOOST_REQUIRE_MESSAGE(wait_until([&] {
                          return fs::last_write_time(db) != file_after_start &&
                                 std::stoul(count_of(db)) == expected.size();
                        }, 15s),
                        "the file still holds " << count_of(db) << " rows, expected " << expected.size()
                                                << "\n" << daemon.stderr_text());
  on_disk = ids_on_disk(db);
  BOOST_TEST((on_disk == expected));
  BOOST_TEST(!present(id_at(midnight_cut - milliseconds(1))));
  BOOST_TEST(present(id_at(midnight_cut)));
  BOOST_TEST(present(id_at(midnight_cut + milliseconds(1))));
  BOOST_TEST(!present(id_at(start_cut)));  // kept at start, crossed the line at midnight
  BOOST_TEST(present(id));
  BOOST_TEST(present(last_window_id));
  // Compacted: the freed pages were given back, so the copy is smaller.
  BOOST_TEST(pragma(db, "freelist_count") == 0);
  BOOST_TEST(pragma(db, "page_count") < pages_after_start);
  BOOST_TEST_MESSAGE("pages on disk after the start run " << pages_after_start << ", after midnight's "
                                                          << pragma(db, "page_count"));
  BOOST_TEST(query_db(db, "PRAGMA integrity_check")[0][0] == "ok");

  daemon.signal(SIGTERM);
  BOOST_TEST(daemon.wait().value_or(-1) == 0, daemon.stderr_text());
}

// Item 3. /readyz of the real daemon follows the real stream and the real
// snapshots: 503 naming the stream while the backend is down, 200 once a
// simulator is up, 503 again when it is killed, 503 naming the snapshot when
// the data directory fails under it, 200 once it recovers.
BOOST_AUTO_TEST_CASE(readyz_follows_a_real_stream_and_real_snapshot_failures) {
  TempDir dir;
  DataDirTrouble trouble(dir / "data");
  BOOST_REQUIRE_MESSAGE(trouble.usable(), "cannot mount a tmpfs on the data directory");
  BOOST_TEST_MESSAGE("snapshot failure made with " << trouble.how());
  int ws_port = free_port();
  int http = free_port();
  auto conf = dir / "deltatap.conf";
  write_file(conf, "[stream]\nbackoff_initial = 50ms\nbackoff_max = 200ms\n");
  auto env = daemon_env(url_on(ws_port), "");
  env["DELTATAP_HTTP"] = http_env(http);
  Process daemon({deltatapd_argv({"--config", conf.string()}), env, dir.path()});

  // The backend is down.
  BOOST_REQUIRE_MESSAGE(wait_until([&] { return readyz_is(http, 503, "stream not connected"); }, 15s),
                        readyz_text(http) << "\n" << daemon.stderr_text());
  BOOST_TEST(http_request(http, "GET", "/readyz").body.find("snapshot") == std::string::npos);

  {
    Sim sim(dir, "sim1", {"--format", "delta", "--count", "0", "--rate", "50", "--seed", "31"}, ws_port);
    BOOST_REQUIRE_MESSAGE(wait_until([&] { return readyz_is(http, 200, R"({"status":"ready","reasons":[]})"); }, 15s),
                          readyz_text(http) << "\n" << daemon.stderr_text());
    sim.process().signal(SIGKILL);
    BOOST_REQUIRE(sim.process().wait().has_value());
    BOOST_REQUIRE_MESSAGE(wait_until([&] { return readyz_is(http, 503, "stream not connected"); }, 15s),
                          readyz_text(http));
  }

  Sim sim(dir, "sim2", {"--format", "delta", "--count", "0", "--rate", "50", "--seed", "32"}, ws_port);
  BOOST_REQUIRE_MESSAGE(wait_until([&] { return readyz_is(http, 200, "\"ready\""); }, 15s), readyz_text(http));

  // The data directory fails: the snapshot asked for fails, and /readyz says so.
  BOOST_REQUIRE_MESSAGE(trouble.begin(), "could not make " << trouble.how());
  auto failed = http_request(http, "POST", "/api/snapshot");
  BOOST_TEST(failed.status == 500, failed.body);
  BOOST_TEST(failed.body.find("snapshot failed") != std::string::npos, failed.body);
  BOOST_REQUIRE_MESSAGE(wait_until([&] { return readyz_is(http, 503, "last snapshot failed"); }, 10s),
                        readyz_text(http));
  auto not_ready = http_request(http, "GET", "/readyz").body;
  BOOST_TEST_MESSAGE("/readyz while snapshots fail: " << not_ready);
  BOOST_TEST(not_ready.find("stream not connected") == std::string::npos, not_ready);
  BOOST_TEST(daemon.running());

  // It recovers: the next snapshot succeeds and /readyz is 200 again.
  trouble.end();
  auto recovered = http_request(http, "POST", "/api/snapshot");
  BOOST_TEST(recovered.status == 200, recovered.body);
  BOOST_REQUIRE_MESSAGE(wait_until([&] { return readyz_is(http, 200, R"({"status":"ready","reasons":[]})"); }, 15s),
                        readyz_text(http) << "\n" << daemon.stderr_text());
  auto db = dir / "data/sessions.sqlite";
  BOOST_TEST(query_db(db, "PRAGMA integrity_check")[0][0] == "ok");
  BOOST_TEST(std::stol(count_of(db)) > 0);

  sim.process().signal(SIGTERM);
  sim.process().wait();
  daemon.signal(SIGTERM);
  BOOST_TEST(daemon.wait().value_or(-1) == 0, daemon.stderr_text());
}

// Item 3. POST /api/snapshot writes the file before it answers; POST
// /api/cleanup deletes from the store, and the file shows it once the next
// snapshot is written (the daemon does not write one for the cleanup itself).
BOOST_AUTO_TEST_CASE(post_snapshot_and_cleanup_change_the_file_on_disk) {
  TempDir dir;
  auto db = dir / "data/sessions.sqlite";
  const TimePoint now = now_millis();
  std::vector<StoredDelta> rows;
  for (int i = 1; i <= 5; ++i) rows.push_back(fixture_delta(i, now - days(10)));
  for (int i = 6; i <= 8; ++i) rows.push_back(fixture_delta(i, now - std::chrono::hours(2)));
  write_store(db, rows);

  Sim sim(dir, "sim", {"--format", "delta", "--count", "40", "--seed", "33"});
  int http = free_port();
  auto env = daemon_env(sim.url(), "");
  env["DELTATAP_HTTP"] = http_env(http);
  Process daemon({deltatapd_argv(), env, dir.path()});
  BOOST_REQUIRE(sim.wait_sent(30s));
  BOOST_REQUIRE_MESSAGE(wait_until([&] { return stored_count(http) == 48; }, 20s),
                        http_request(http, "GET", "/api/stats").body << "\n" << daemon.stderr_text());
  // Nothing was due at start and the interval is 10 minutes: the file is as written.
  BOOST_TEST(count_of(db) == "8");

  auto snapshot = http_request(http, "POST", "/api/snapshot");
  BOOST_TEST(snapshot.status == 200, snapshot.body);
  BOOST_TEST(json_integer(snapshot.body, "bytes").value_or(0) == static_cast<long long>(fs::file_size(db)));
  BOOST_TEST(count_of(db) == "48");  // on disk when the answer came
  auto recorded = recorded_keys(sim.records());
  BOOST_TEST(recorded.size() == 40u);
  BOOST_TEST(count_of(db, "id > 8") == "40");

  // olderThan as a duration: the five stored 10 days ago.
  auto cleanup = http_request(http, "POST", "/api/cleanup?olderThan=5d");
  BOOST_TEST(cleanup.status == 200, cleanup.body);
  BOOST_TEST(json_integer(cleanup.body, "deleted").value_or(-1) == 5);
  BOOST_TEST_MESSAGE("rows on disk right after the cleanup, before a snapshot: " << count_of(db));
  BOOST_TEST(http_request(http, "POST", "/api/snapshot").status == 200);
  BOOST_TEST(count_of(db) == "43");
  BOOST_TEST(count_of(db, "id <= 5") == "0");
  BOOST_TEST(count_of(db, "id BETWEEN 6 AND 8") == "3");

  // olderThan as a time: the three stored 2 hours ago, not the simulator's.
  auto iso = http_request(http, "POST", "/api/cleanup?olderThan=" + stamp(now - std::chrono::hours(1)));
  BOOST_TEST(iso.status == 200, iso.body);
  BOOST_TEST(json_integer(iso.body, "deleted").value_or(-1) == 3);
  BOOST_TEST(http_request(http, "POST", "/api/snapshot").status == 200);
  BOOST_TEST(count_of(db) == "40");
  BOOST_TEST((stored_keys(db, recorded) == recorded));

  daemon.signal(SIGTERM);
  BOOST_TEST(daemon.wait().value_or(-1) == 0, daemon.stderr_text());
}

// Item 5. A token file readable by group or others is refused at start (exit 2,
// naming the file and its mode); 0600 and 0400 are used: the simulator, which
// requires the token, sends to the daemon.
BOOST_AUTO_TEST_CASE(token_file_modes_refused_and_accepted) {
  struct Case {
    mode_t mode;
    bool accepted;
  };
  const std::vector<Case> table = {{0640, false}, {0604, false}, {0644, false},
                                   {0664, false}, {0600, true},  {0400, true}};
  const std::string token = "tok-3c1d9a";
  for (const auto& c : table) {
    char mode_text[8];
    std::snprintf(mode_text, sizeof mode_text, "%04o", static_cast<unsigned>(c.mode));
    BOOST_TEST_CONTEXT("mode " << mode_text) {
      TempDir dir;
      auto token_path = dir / "token";
      write_file(token_path, token + "\n");
      BOOST_REQUIRE(::chmod(token_path.c_str(), c.mode) == 0);
      BOOST_REQUIRE(mode_of(token_path) == c.mode);
      auto conf = dir / "deltatap.conf";
      write_file(conf, "[stream]\ntoken_file = " + token_path.string() + "\n");
      auto env = daemon_env(dead_url(), "");
      env["CREDENTIALS_DIRECTORY"] = "\x01unset";
      auto argv = deltatapd_argv({"--config", conf.string()});
      if (!c.accepted) {
        Process refused({argv, env, dir.path()});
        // A daemon that took the file would run on: it is killed when `refused` goes.
        auto code = refused.wait(10s);
        auto err = refused.stderr_text();
        BOOST_TEST(code.value_or(-1) == 2, "exit " << (code ? std::to_string(*code) : "none within 10 s")
                                                    << "\n" << err.substr(0, 2000));
        BOOST_TEST(err.find(token_path.string()) != std::string::npos);
        BOOST_TEST(err.find("readable by group or others") != std::string::npos);
        BOOST_TEST(err.find(std::string("mode ") + mode_text) != std::string::npos);
        BOOST_TEST(err.find(token) == std::string::npos);
        BOOST_TEST(!fs::exists(dir / "data"));
        continue;
      }
      Sim sim(dir, "sim", {"--token", token, "--format", "delta", "--count", "3", "--seed", "34"});
      env["DELTATAP_URL"] = sim.url();
      Process daemon({argv, env, dir.path()});
      BOOST_TEST_REQUIRE(sim.wait_sent(20s), daemon.stderr_text());
      BOOST_TEST(wait_for_rows(daemon, dir / "data/sessions.sqlite", 3, 20s));
      daemon.signal(SIGTERM);
      BOOST_TEST(daemon.wait().value_or(-1) == 0, daemon.stderr_text());
      BOOST_TEST(daemon.stderr_text().find(token) == std::string::npos);
    }
  }
}

// Item 5. rejected_messages keeps its newest kMaxRejectedRows (store.h: 10,000);
// past that, the oldest rows are evicted, by id. The store starts full (a
// fixture file), three bad frames arrive from a scripted server.
BOOST_AUTO_TEST_CASE(the_quarantine_evicts_its_oldest_rows) {
  TempDir dir;
  auto db = dir / "data/sessions.sqlite";
  std::vector<Rejected> full;
  const std::string received = stamp(now_millis() - std::chrono::hours(1));
  for (std::int64_t i = 0; i < kMaxRejectedRows; ++i) {
    char raw[32];
    std::snprintf(raw, sizeof raw, "pre-%05lld", static_cast<long long>(i));
    full.push_back({received, "invalid_json", "fixture", raw});
  }
  write_store(db, {}, full);
  BOOST_REQUIRE(query_db(db, "SELECT COUNT(*), MIN(id), MAX(id) FROM rejected_messages")[0] ==
                (std::vector<std::string>{"10000", "1", "10000"}));

  write_file(dir / "script.json",
             R"([{"text":"not json: bad-0"},{"text":"not json: bad-1"},{"text":"not json: bad-2"}])");
  Process server({{"/usr/bin/python3", (source_dir() / "tests/fixtures/frame_server.py").string(), "--script",
                   (dir / "script.json").string()},
                  {},
                  dir.path()});
  int ws_port = read_printed_port(server);
  BOOST_REQUIRE_MESSAGE(ws_port > 0, "frame_server.py did not start: " << server.stderr_text());
  Process daemon({deltatapd_argv(), daemon_env(url_on(ws_port), ""), dir.path()});
  BOOST_REQUIRE_MESSAGE(wait_until([&] { return server.stdout_text().find("\ndone\n") != std::string::npos; }, 20s),
                        server.stdout_text() << "\n" << daemon.stderr_text());
  // Snapshots (SIGUSR1) until the file holds the third bad frame.
  auto last_signal = std::chrono::steady_clock::time_point{};
  BOOST_REQUIRE_MESSAGE(wait_until([&] {
                          if (std::chrono::steady_clock::now() - last_signal > 250ms) {
                            daemon.signal(SIGUSR1);
                            last_signal = std::chrono::steady_clock::now();
                          }
                          return query_db(db, "SELECT MAX(id) FROM rejected_messages")[0][0] == "10003";
                        }, 20s),
                        daemon.stderr_text());
  auto ids = ids_on_disk(db, "rejected_messages");
  BOOST_TEST(ids.size() == 10000u);
  BOOST_TEST(ids.front() == 4);  // ids 1, 2 and 3, the oldest, went
  BOOST_TEST(ids.back() == 10003);
  auto rows = query_db(db, "SELECT id, raw, reason FROM rejected_messages WHERE id <= 4 OR id > 10000 ORDER BY id");
  BOOST_REQUIRE_EQUAL(rows.size(), 4u);
  BOOST_TEST((rows[0] == std::vector<std::string>{"4", "pre-00003", "invalid_json"}));
  for (int i = 0; i < 3; ++i) {
    BOOST_TEST(rows[1 + i][0] == std::to_string(10001 + i));
    BOOST_TEST(rows[1 + i][1] == "not json: bad-" + std::to_string(i));
  }
  daemon.signal(SIGTERM);
  BOOST_TEST(daemon.wait().value_or(-1) == 0, daemon.stderr_text());
  server.signal(SIGTERM);
  server.wait();
}

// Item 5. SIGHUP reloads the file but keeps the storage path, storage on/off,
// journal on/off and the HTTP listener, and says so; a reload that changes none
// of them does not say it.
BOOST_AUTO_TEST_CASE(sighup_keeps_restart_only_keys_and_says_so) {
  TempDir dir;
  int http = free_port(), other_http = free_port();
  auto conf = dir / "deltatap.conf";
  const std::string url = dead_url();
  auto write_conf = [&](const std::string& enabled, const std::string& path, const std::string& journal,
                        int port) {
    write_file(conf, "[stream]\nurl = " + url + "\n[storage]\nenabled = " + enabled + "\npath = " + path +
                         "\njournal = " + journal + "\n[http]\nlisten = 127.0.0.1:" + std::to_string(port) + "\n");
  };
  write_conf("on", "data/sessions.sqlite", "on", http);
  auto env = daemon_env("", "");
  for (auto name : {"DELTATAP_URL", "PERSIST", "DELTATAP_HTTP"}) env[name] = "\x01unset";
  Process daemon({deltatapd_argv({"--config", conf.string()}), env, dir.path()});
  BOOST_REQUIRE_MESSAGE(wait_until([&] { return http_request(http, "GET", "/healthz").status == 200; }, 15s),
                        daemon.stderr_text());
  const std::string kept = "change only at restart; keeping the running values";
  auto reloaded_count = [&] {
    auto log = daemon.stderr_text();
    std::size_t n = 0;
    for (auto at = log.find("Configuration reloaded"); at != std::string::npos;
         at = log.find("Configuration reloaded", at + 1)) {
      ++n;
    }
    return n;
  };

  // A reload with the same file: nothing to keep, nothing said about it.
  daemon.signal(SIGHUP);
  BOOST_REQUIRE(wait_until([&] { return reloaded_count() == 1; }));
  BOOST_TEST(!daemon.stderr_contains(kept));

  // Every restart-only key changed.
  write_conf("off", "elsewhere/sessions.sqlite", "off", other_http);
  daemon.signal(SIGHUP);
  BOOST_REQUIRE(wait_until([&] { return reloaded_count() == 2; }));
  BOOST_TEST(daemon.stderr_contains("Storage path, storage on/off, journal on/off, compression and the HTTP listener " + kept));
  // The listener stayed, and no other was opened.
  BOOST_TEST(http_request(http, "GET", "/healthz").status == 200);
  BOOST_TEST(http_request(other_http, "GET", "/healthz").status == 0);
  // Storage stayed on, at the old path, with its journal.
  auto stats = http_request(http, "GET", "/api/stats").body;
  BOOST_TEST(stats.find(R"("enabled":true)") != std::string::npos, stats);
  BOOST_TEST(stats.find(R"("dbPath":"data/sessions.sqlite")") != std::string::npos, stats);
  BOOST_TEST(stats.find(R"("journalBytes":null)") == std::string::npos, stats);
  auto before = fs::last_write_time(dir / "data/sessions.sqlite");
  BOOST_TEST(http_request(http, "POST", "/api/snapshot").status == 200);  // 409 if storage were off
  BOOST_TEST((fs::last_write_time(dir / "data/sessions.sqlite") != before));
  BOOST_TEST(!fs::exists(dir / "elsewhere"));
  // The journal is still kept: the snapshot rotated the active file into a
  // segment, and its worker opens the next active file on its own time.
  BOOST_TEST(wait_until([&] {
    for (const auto& entry : fs::directory_iterator(dir / "data")) {
      if (entry.path().filename().string().rfind("sessions.journal", 0) == 0) return true;
    }
    return false;
  }));

  daemon.signal(SIGTERM);
  BOOST_TEST(daemon.wait().value_or(-1) == 0, daemon.stderr_text());
  BOOST_TEST(!fs::exists(dir / "elsewhere"));
}

// Item 5. SIGINT stops like SIGTERM, with a final snapshot: what the daemon
// stored is in the file afterwards, and was not before.
BOOST_AUTO_TEST_CASE(sigint_writes_a_final_snapshot) {
  TempDir dir;
  Sim sim(dir, "sim", {"--format", "mixed", "--count", "120", "--seed", "35"});
  int http = free_port();
  auto env = daemon_env(sim.url(), "");
  env["DELTATAP_HTTP"] = http_env(http);
  Process daemon({deltatapd_argv(), env, dir.path()});
  BOOST_REQUIRE(sim.wait_sent(30s));
  BOOST_REQUIRE_MESSAGE(wait_until([&] { return stored_count(http) == 120; }, 20s),
                        http_request(http, "GET", "/api/stats").body);
  auto db = dir / "data/sessions.sqlite";
  BOOST_TEST(count_of(db) == "0");  // the empty file of the start; the interval is 10 minutes
  daemon.signal(SIGINT);
  BOOST_TEST(daemon.wait().value_or(-1) == 0, daemon.stderr_text());
  BOOST_TEST(count_of(db) == "120");
  auto recorded = recorded_keys(sim.records());
  BOOST_TEST((stored_keys(db, recorded) == recorded));
  BOOST_TEST(query_db(db, "PRAGMA integrity_check")[0][0] == "ok");
}

// Item 5. A temporary a killed snapshot left (sessions.sqlite.tmp-*) is removed
// by the next start; nothing else in the directory is touched.
BOOST_AUTO_TEST_CASE(a_real_start_removes_stale_snapshot_temporaries) {
  TempDir dir;
  auto db = dir / "data/sessions.sqlite";
  write_store(db, {fixture_delta(1, now_millis()), fixture_delta(2, now_millis())});
  const auto db_bytes = read_file(db);
  const std::vector<std::string> stale = {"sessions.sqlite.tmp-Ab12Cd", "sessions.sqlite.tmp-zzzzzz"};
  const std::vector<std::string> others = {"sessions.sqlite.tmpX", "other.sqlite.tmp-Ab12Cd", "notes.txt"};
  for (const auto& name : stale) write_file(dir / "data" / name, "half a snapshot");
  for (const auto& name : others) write_file(dir / "data" / name, "not ours to remove");
  int http = free_port();
  auto env = daemon_env(dead_url(), "");
  env["DELTATAP_HTTP"] = http_env(http);
  Process daemon({deltatapd_argv(), env, dir.path()});
  // The store is open (and the directory cleaned) before the API listens.
  BOOST_REQUIRE_MESSAGE(wait_until([&] { return http_request(http, "GET", "/healthz").status == 200; }, 15s),
                        daemon.stderr_text());
  for (const auto& name : stale) BOOST_TEST(!fs::exists(dir / "data" / name), name);
  for (const auto& name : others) BOOST_TEST(read_file(dir / "data" / name) == "not ours to remove", name);
  BOOST_TEST(read_file(db) == db_bytes);  // loaded, not rewritten
  daemon.signal(SIGTERM);
  BOOST_TEST(daemon.wait().value_or(-1) == 0, daemon.stderr_text());
  BOOST_TEST(count_of(db) == "2");
}

// Item 5. A file that is not a usable database is renamed to
// sessions.sqlite.corrupt-<time>, kept byte for byte, and the daemon starts
// empty; checked on disk, not in the log.
BOOST_AUTO_TEST_CASE(a_corrupt_file_is_renamed_aside_with_its_bytes) {
  // Not SQLite at all, and a real database with pages past the first overwritten.
  std::vector<std::pair<std::string, std::string>> variants;
  variants.emplace_back("text", "this was never a SQLite database\n");
  {
    TempDir scratch;
    std::vector<StoredDelta> rows;
    for (int i = 1; i <= 2000; ++i) rows.push_back(fixture_delta(i, now_millis()));
    write_store(scratch / "data/x.sqlite", rows);
    auto bytes = read_file(scratch / "data/x.sqlite");
    BOOST_REQUIRE(bytes.size() > 3 * 65536);
    for (std::size_t i = 65536; i < bytes.size(); i += 7) bytes[i] = static_cast<char>(i * 31);
    variants.emplace_back("damaged pages", bytes);
  }
  for (const auto& variant : variants) {
    const std::string& bytes = variant.second;
    BOOST_TEST_CONTEXT(variant.first) {
      TempDir dir;
      fs::create_directories(dir / "data");
      fs::permissions(dir / "data", fs::perms::owner_all, fs::perm_options::replace);
      auto db = dir / "data/sessions.sqlite";
      write_file(db, bytes);
      int http = free_port();
      auto env = daemon_env(dead_url(), "");
      env["DELTATAP_HTTP"] = http_env(http);
      const TimePoint before = now_millis();
      Process daemon({deltatapd_argv(), env, dir.path()});
      BOOST_REQUIRE_MESSAGE(wait_until([&] { return http_request(http, "GET", "/healthz").status == 200; }, 15s),
                            daemon.stderr_text());
      const TimePoint after = now_millis();
      std::vector<fs::path> aside;
      for (auto& entry : fs::directory_iterator(dir / "data")) {
        if (entry.path().filename().string().starts_with("sessions.sqlite.corrupt-")) aside.push_back(entry.path());
      }
      BOOST_REQUIRE_EQUAL(aside.size(), 1u);
      BOOST_TEST((read_file(aside[0]) == bytes));
      // Named by the time it was moved: corrupt-YYYY-MM-DDTHHMMSS.sssZ.
      auto when = aside[0].filename().string().substr(std::string("sessions.sqlite.corrupt-").size());
      BOOST_REQUIRE_EQUAL(when.size(), 22u);
      auto moved_at = parse_timestamp(when.substr(0, 13) + ":" + when.substr(13, 2) + ":" + when.substr(15));
      BOOST_REQUIRE_MESSAGE(moved_at.ok(), when);
      BOOST_TEST((*moved_at >= before - milliseconds(1) && *moved_at <= after), when);
      // In its place, a new empty database.
      BOOST_TEST(query_db(db, "PRAGMA integrity_check")[0][0] == "ok");
      BOOST_TEST(count_of(db) == "0");
      daemon.signal(SIGTERM);
      BOOST_TEST(daemon.wait().value_or(-1) == 0, daemon.stderr_text());
      BOOST_TEST((read_file(aside[0]) == bytes));
    }
  }
}

// Item 5. `deltatap export --format csv --db FILE --out OUT` writes RFC 4180:
// CRLF after every record, a field quoted when it holds a comma, a quote, CR or
// LF, quotes doubled; newest first (timestamp, then id); a cell a spreadsheet
// would run gets a leading ' (inside the quotes when quoted), unless --csv-raw.
// The expected bytes are written out by hand here.
BOOST_AUTO_TEST_CASE(csv_export_of_a_fixture_is_byte_exact) {
  TempDir dir;
  auto db = dir / "data/sessions.sqlite";
  auto row = [](std::int64_t id, std::string session, DeltaType type, std::optional<std::string> before,
                std::optional<std::string> after, std::string ts) {
    StoredDelta r;
    r.id = id;
    r.delta = {std::move(session), type, std::move(before), std::move(after), ts};
    r.created_at = "2025-11-10T12:00:09.000Z";
    return r;
  };
  write_store(db, {
      row(1, "sess_plain", DeltaType::created, std::nullopt, R"({"a":1})", "2025-11-10T12:00:01.000Z"),
      row(2, "sess_plain", DeltaType::updated, R"({"a":1})", R"({"title":"a, \"b\""})", "2025-11-10T12:00:02.000Z"),
      row(3, "=cmd|' /C calc'!A0", DeltaType::created, std::nullopt, R"({"x":"y"})", "2025-11-10T12:00:03.000Z"),
      row(4, "a,b", DeltaType::deleted, R"({"s":"q\"r"})", std::nullopt, "2025-11-10T12:00:03.000Z"),
      row(5, "@x\"y", DeltaType::updated, "{}", R"({"t":"line\nnext"})", "2025-11-10T12:00:04.500Z"),
      row(6, "multi\r\nline", DeltaType::created, std::nullopt, "{}", "2025-11-10T12:00:00.000Z"),
  });
  const std::string created = "2025-11-10T12:00:09.000Z";
  const std::string header = "id,type,sessionId,timestamp,createdAt,before,after,origin,gap\r\n";
  // Newest first; 3 and 4 share a timestamp, so the higher id comes first.
  const std::string neutralised =
      header +
      "5,updated,\"'@x\"\"y\",2025-11-10T12:00:04.500Z," + created + ",{},\"{\"\"t\"\":\"\"line\\nnext\"\"}\",stream,0\r\n" +
      "4,deleted,\"a,b\",2025-11-10T12:00:03.000Z," + created + ",\"{\"\"s\"\":\"\"q\\\"\"r\"\"}\",,stream,0\r\n" +
      "3,created,'=cmd|' /C calc'!A0,2025-11-10T12:00:03.000Z," + created + ",,\"{\"\"x\"\":\"\"y\"\"}\",stream,0\r\n" +
      "2,updated,sess_plain,2025-11-10T12:00:02.000Z," + created +
      ",\"{\"\"a\"\":1}\",\"{\"\"title\"\":\"\"a, \\\"\"b\\\"\"\"\"}\",stream,0\r\n" +
      "1,created,sess_plain,2025-11-10T12:00:01.000Z," + created + ",,\"{\"\"a\"\":1}\",stream,0\r\n" +
      "6,created,\"multi\r\nline\",2025-11-10T12:00:00.000Z," + created + ",,{},stream,0\r\n";
  const std::string raw =
      header +
      "5,updated,\"@x\"\"y\",2025-11-10T12:00:04.500Z," + created + ",{},\"{\"\"t\"\":\"\"line\\nnext\"\"}\",stream,0\r\n" +
      "4,deleted,\"a,b\",2025-11-10T12:00:03.000Z," + created + ",\"{\"\"s\"\":\"\"q\\\"\"r\"\"}\",,stream,0\r\n" +
      "3,created,=cmd|' /C calc'!A0,2025-11-10T12:00:03.000Z," + created + ",,\"{\"\"x\"\":\"\"y\"\"}\",stream,0\r\n" +
      "2,updated,sess_plain,2025-11-10T12:00:02.000Z," + created +
      ",\"{\"\"a\"\":1}\",\"{\"\"title\"\":\"\"a, \\\"\"b\\\"\"\"\"}\",stream,0\r\n" +
      "1,created,sess_plain,2025-11-10T12:00:01.000Z," + created + ",,\"{\"\"a\"\":1}\",stream,0\r\n" +
      "6,created,\"multi\r\nline\",2025-11-10T12:00:00.000Z," + created + ",,{},stream,0\r\n";

  auto cli = (bin_dir() / "deltatap").string();
  auto out = dir / "out.csv";
  auto result = run_command({cli, "export", "--format", "csv", "--db", db.string(), "--out", out.string()});
  BOOST_TEST(result.exit_code == 0, result.err);
  BOOST_TEST(read_file(out) == neutralised);
  auto out_raw = dir / "raw.csv";
  result = run_command({cli, "export", "--format", "csv", "--csv-raw", "--db", db.string(), "--out", out_raw.string()});
  BOOST_TEST(result.exit_code == 0, result.err);
  BOOST_TEST(read_file(out_raw) == raw);
}
