// Breaking things for real: kill -9 of deltatapd after and during a stream, a
// disk that fills up under it, and a backend that flaps. What must hold: no
// delta lost that the journal had, none stored twice, no torn file, no refused
// start, and a daemon that recovers by itself.
#define BOOST_TEST_MODULE durability
#include <boost/test/unit_test.hpp>

#include <signal.h>
#include <unistd.h>

#include <random>

#include "base/timestamp.h"
#include "storage/journal.h"
#include "test_support.h"

using namespace deltatap;
using namespace deltatap::testing;

namespace {

// Every stored delta was sent, and none is stored more often than it was sent.
void check_no_duplicates_and_nothing_invented(const fs::path& db,
                                              const std::multiset<std::string>& recorded) {
  auto stored = stored_keys(db, recorded);
  for (auto it = stored.begin(); it != stored.end(); it = stored.upper_bound(*it)) {
    auto times_stored = stored.count(*it);
    auto times_sent = recorded.count(*it);
    BOOST_TEST(times_stored <= times_sent, "stored " << times_stored << "x, sent " << times_sent
                                                     << "x: " << it->substr(0, 120));
  }
  // A reconnect's first poll re-announces sessions as `created`; one whose state
  // changed in frames a kill lost is stored as an `updated` of origin resync.
  BOOST_TEST(count_of(db, "origin <> 'stream' AND NOT (origin = 'resync' AND delta_type = 'updated')") == "0");
}

int open_fds(pid_t pid) {
  int n = 0;
  for ([[maybe_unused]] auto& e : fs::directory_iterator("/proc/" + std::to_string(pid) + "/fd")) ++n;
  return n;
}

}  // namespace

BOOST_AUTO_TEST_CASE(kill_9_after_a_30000_delta_stream_loses_nothing) {
  TempDir dir;
  Sim sim(dir, "sim", {"--format", "mixed", "--count", "30000", "--seed", "11"});
  auto env = daemon_env(sim.url(), "");
  Process daemon({deltatapd_argv(), env, dir.path()});
  BOOST_REQUIRE(sim.wait_sent());
  auto journal = (dir / "data/sessions.journal").string();
  // What the daemon has journaled is what a crash must keep: wait until all of it is.
  BOOST_REQUIRE_MESSAGE(wait_until([&] {
                          auto replay = read_journal(journal, 0);
                          return replay.ok() && replay->deltas.size() == 30000;
                        }, 30s),
                        daemon.stderr_text());
  daemon.signal(SIGKILL);
  BOOST_TEST(daemon.wait().value_or(0) == 128 + SIGKILL);

  // Restart against a backend that is gone: only the files speak now.
  env["DELTATAP_URL"] = "ws://127.0.0.1:" + std::to_string(free_port()) + "/ws";
  Process again({deltatapd_argv(), env, dir.path()});
  // 30,000 deltas go through the ledger's rules again: slow in a sanitizer build.
  BOOST_REQUIRE_MESSAGE(wait_until([&] { return again.stderr_contains("Journal replayed"); }, 120s),
                        again.stderr_text());
  again.signal(SIGTERM);
  BOOST_TEST(again.wait().value_or(-1) == 0, again.stderr_text());
  auto db = dir / "data/sessions.sqlite";
  BOOST_TEST(count_of(db) == "30000");
  BOOST_TEST(query_db(db, "SELECT COUNT(DISTINCT id) FROM session_deltas")[0][0] == "30000");
  auto recorded = recorded_keys(sim.records());
  BOOST_TEST((stored_keys(db, recorded) == recorded));
  BOOST_TEST(query_db(db, "PRAGMA integrity_check")[0][0] == "ok");
  // The final snapshot covers everything: the journal segments are gone.
  auto replay = read_journal(journal, 0);
  BOOST_REQUIRE(replay.ok());
  BOOST_TEST(replay->records == 0u);
}

BOOST_AUTO_TEST_CASE(kill_9_at_random_moments_never_duplicates_or_tears) {
  TempDir dir;
  Sim sim(dir, "sim", {"--format", "mixed", "--count", "0", "--rate", "4000", "--seed", "12"});
  auto env = daemon_env(sim.url(), "");
  env["SNAPSHOT_INTERVAL"] = "150";  // snapshots, rotations and kills overlap
  std::mt19937 random(2026);
  for (int round = 0; round < 6; ++round) {
    Process daemon({deltatapd_argv(), env, dir.path()});
    BOOST_REQUIRE_MESSAGE(wait_until([&] { return daemon.stderr_contains("Connected to the stream"); }),
                          "round " << round << " did not start:\n" << daemon.stderr_text());
    auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(100 + random() % 900);
    // Let it run for a random while: the deadline is the point, not a condition.
    wait_until([&] { return std::chrono::steady_clock::now() >= until; }, 2s);
    daemon.signal(SIGKILL);
    BOOST_REQUIRE(daemon.wait().has_value());
    BOOST_TEST(!daemon.stderr_contains("moved aside"), "round " << round);
  }
  Process last({deltatapd_argv(), env, dir.path()});
  BOOST_REQUIRE(wait_until([&] { return last.stderr_contains("Connected to the stream"); }));
  last.signal(SIGTERM);
  BOOST_TEST(last.wait().value_or(-1) == 0, last.stderr_text());
  sim.process().signal(SIGTERM);
  sim.process().wait();
  auto db = dir / "data/sessions.sqlite";
  BOOST_TEST(query_db(db, "PRAGMA integrity_check")[0][0] == "ok");
  auto stored = std::stol(count_of(db));
  BOOST_TEST_MESSAGE("stored " << stored << " of " << sim.records().size() << " sent");
  BOOST_TEST(stored > 0);
  check_no_duplicates_and_nothing_invented(db, recorded_keys(sim.records()));
  BOOST_TEST(query_db(db, "SELECT COUNT(*) FROM session_deltas WHERE after_state IS NULL AND before_state IS NULL")[0][0] == "0");
}

BOOST_AUTO_TEST_CASE(a_full_disk_is_survived_and_caught_up_after) {
  TempDir dir;
  // The disk fills without root: the daemon (and the snapshot children it
  // forks) may write no file past 900 KiB, room for the empty database file
  // (its 64 KiB pages) and a little more; writes past it fail (EFBIG) as on a
  // full disk (ENOSPC). The daemon's log is a file too: it stays far smaller.
  constexpr long long kRoom = 900 * 1024;
  Sim sim(dir, "sim", {"--format", "session_update", "--count", "0", "--rate", "3000", "--seed", "13"});
  auto env = daemon_env(sim.url(), "");
  env["SNAPSHOT_INTERVAL"] = "200";
  int http_port = free_port();
  env["DELTATAP_HTTP"] = "127.0.0.1:" + std::to_string(http_port);
  Process daemon({deltatapd_argv(), env, dir.path(), kRoom});
  auto db = dir / "data/sessions.sqlite";
  BOOST_REQUIRE_MESSAGE(wait_until([&] { return http_request(http_port, "GET", "/readyz").status == 200; }, 15s),
                        http_request(http_port, "GET", "/readyz").body + daemon.stderr_text());
  // The files outgrow the room: snapshots (and journal segments that grow
  // past it) fail; the daemon lives on.
  BOOST_REQUIRE_MESSAGE(wait_until([&] {
                          auto ready = http_request(http_port, "GET", "/readyz");
                          return ready.status == 503 &&
                                 ready.body.find("snapshot failed") != std::string::npos;
                        }, 60s),
                        daemon.stderr_text());
  BOOST_TEST(daemon.running());
  BOOST_TEST(query_db(db, "PRAGMA integrity_check")[0][0] == "ok");  // the last good file
  auto on_disk_while_full = std::stol(count_of(db));
  auto stats = http_request(http_port, "GET", "/api/stats");
  BOOST_TEST(stats.status == 200);
  // Space comes back: it catches up by itself.
  BOOST_REQUIRE(daemon.set_file_size_limit(0));
  BOOST_REQUIRE_MESSAGE(wait_until([&] { return http_request(http_port, "GET", "/readyz").status == 200; }, 30s),
                        http_request(http_port, "GET", "/readyz").body);
  BOOST_REQUIRE(wait_until([&] { return std::stol(count_of(db)) > on_disk_while_full; }, 10s));
  sim.process().signal(SIGTERM);
  sim.process().wait();
  daemon.signal(SIGTERM);
  BOOST_TEST(daemon.wait().value_or(-1) == 0, daemon.stderr_text());
  // Everything the simulator sent is in the file: nothing was dropped while the disk was full.
  auto recorded = recorded_keys(sim.records());
  BOOST_TEST(std::stoul(count_of(db)) == recorded.size());
  check_no_duplicates_and_nothing_invented(db, recorded);
  BOOST_TEST(daemon.stderr_contains("Snapshot failed"), daemon.stderr_text());
}

BOOST_AUTO_TEST_CASE(a_flapping_backend_is_rejoined_every_time_without_leaks_or_spinning) {
  TempDir dir;
  int port = free_port();
  auto conf = dir / "deltatap.conf";
  write_file(conf, "[stream]\nurl = ws://127.0.0.1:" + std::to_string(port) +
                       "/ws\nbackoff_initial = 50ms\nbackoff_max = 300ms\n[storage]\nenabled = on\n"
                       "[http]\nlisten =\n");
  auto env = daemon_env("", "");
  for (auto name : {"DELTATAP_URL", "PERSIST", "DELTATAP_HTTP"}) env[name] = "\x01unset";
  Process daemon({deltatapd_argv({"--config", conf.string()}), env, dir.path()});
  constexpr int kRestarts = 50;
  int fds_before = -1;
  for (int i = 0; i < kRestarts; ++i) {
    Sim sim(dir, "sim" + std::to_string(i), {"--count", "0", "--rate", "200", "--seed", std::to_string(i)}, port);
    // Reconnected: this incarnation of the backend got to send something.
    BOOST_REQUIRE_MESSAGE(wait_until([&] { return !sim.records().empty(); }, 10s),
                          "restart " << i << " was not rejoined");
    if (i == 4) fds_before = open_fds(daemon.pid());
    sim.process().signal(i % 2 ? SIGKILL : SIGTERM);
    sim.process().wait();
  }
  int fds_after = open_fds(daemon.pid());
  BOOST_TEST_MESSAGE("fds " << fds_before << " -> " << fds_after);
  BOOST_TEST(fds_after <= fds_before + 1);
  // Down for good now: a while of failed attempts. The deadline is the point.
  auto idle_until = std::chrono::steady_clock::now() + 2s;
  wait_until([&] { return std::chrono::steady_clock::now() >= idle_until; }, 3s);
  daemon.signal(SIGTERM);
  BOOST_TEST(daemon.wait().value_or(-1) == 0);
  auto db = dir / "data/sessions.sqlite";
  auto connected = query_db(db, "SELECT COUNT(*) FROM stream_events WHERE event = 'connected'")[0][0];
  BOOST_TEST(std::stoi(connected) == kRestarts);
  // Backoff, not a hot loop: every drop and failed attempt is an event, and
  // none follows a failed one sooner than backoff_initial (50 ms). A bound from
  // below, which a slow machine only makes easier to meet (timers never fire
  // early). 49: the stamps are whole milliseconds, each taken just after the
  // retry it precedes was scheduled. How much CPU the daemon uses meanwhile is
  // scripts/bench's "idle, backend down".
  auto events = query_db(db, "SELECT at, event FROM stream_events ORDER BY id");
  int spaced = 0;
  for (std::size_t i = 1; i < events.size(); ++i) {
    if (events[i - 1][1] != "disconnected" || events[i][1] != "disconnected") continue;
    auto before = parse_timestamp(events[i - 1][0]);
    auto after = parse_timestamp(events[i][0]);
    BOOST_REQUIRE(before.ok() && after.ok());
    auto gap = std::chrono::duration_cast<std::chrono::milliseconds>(*after - *before).count();
    BOOST_TEST(gap >= 49, "attempt " << i << " came " << gap << " ms after a failed one");
    ++spaced;
  }
  BOOST_TEST(spaced > 0, "no failed attempt followed another");
}

BOOST_AUTO_TEST_CASE(the_memory_guard_evicts_the_oldest_deltas_with_a_warning) {
  TempDir dir;
  Sim sim(dir, "sim", {"--format", "delta", "--count", "3000", "--seed", "14"});
  auto conf = dir / "deltatap.conf";
  write_file(conf, "[stream]\nurl = " + sim.url() + "\n[storage]\nenabled = on\nmax_deltas = 1000\n"
                   "[http]\nlisten =\n");
  auto env = daemon_env("", "");
  for (auto name : {"DELTATAP_URL", "PERSIST", "DELTATAP_HTTP"}) env[name] = "\x01unset";
  Process daemon({deltatapd_argv({"--config", conf.string()}), env, dir.path()});
  BOOST_REQUIRE(sim.wait_sent());
  auto records = sim.records();
  BOOST_REQUIRE_EQUAL(records.size(), 3000u);
  auto db = dir / "data/sessions.sqlite";
  // Everything arrived once the newest delta the simulator sent is stored.
  auto newest = recorded_keys({records.back()});
  BOOST_REQUIRE(wait_until([&] {
    daemon.signal(SIGUSR1);
    return fs::exists(db) && std::stol(count_of(db)) > 0 &&
           stored_keys(db, newest).count(*newest.begin()) == 1;
  }, 30s));
  daemon.signal(SIGTERM);
  BOOST_TEST(daemon.wait().value_or(-1) == 0);
  BOOST_TEST(count_of(db) == "1000");
  // The ones kept are the newest: the last 1000 sent.
  auto kept = recorded_keys(std::vector<std::string>(records.end() - 1000, records.end()));
  BOOST_TEST((stored_keys(db, kept) == kept));
  BOOST_TEST(daemon.stderr_contains("Memory guard evicted the oldest deltas"));
}
