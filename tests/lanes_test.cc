// The stream on a lane of its own (design.md, "Threads: three lanes"), tried
// with the real daemon and the real simulator over loopback: whatever the store
// lane is doing (heavy queries, a stall), the stream lane answers pings, keeps
// reading, and hands over every delta; only a full queue stops the reading,
// and then nothing read is lost.
#define BOOST_TEST_MODULE lanes
#include <boost/test/unit_test.hpp>

#include <signal.h>
#include <sqlite3.h>

#include <atomic>
#include <thread>

#include "skip.h"
#include "storage/store.h"
#include "test_support.h"

using namespace deltatap;
using namespace deltatap::testing;

namespace {

#if defined(__SANITIZE_ADDRESS__)
constexpr bool kSanitized = true;
#else
constexpr bool kSanitized = false;
#endif

// A number from the simulator's summary line, e.g. "connections".
long summary_field(Sim& sim, const std::string& key) {
  auto out = sim.process().stdout_text();
  auto at = out.find("\"" + key + "\":");
  return at == std::string::npos ? -1 : std::atol(out.c_str() + at + key.size() + 3);
}

// A sample of the daemon's /metrics page, -1 when absent.
double metric(int http_port, const std::string& name) {
  return metric_sample(http_port, name).value_or(-1);
}

std::map<std::string, std::string> env_with_http(const Sim& sim, int http_port) {
  auto env = daemon_env(sim.url(), "");
  env["DELTATAP_HTTP"] = "127.0.0.1:" + std::to_string(http_port);
  return env;
}

// ThreadSanitizer makes the daemon several times slower than even the
// AddressSanitizer build: at the backend's pace under this load the heavy case
// would measure the sanitizer, not the lanes. The other cases hand deltas
// across the same lanes and run there.
boost::test_tools::assertion_result not_under_thread_sanitizer(
    [[maybe_unused]] boost::unit_test::test_unit_id id) {
#if defined(__SANITIZE_THREAD__)
  return excluded_by_build(id, "ThreadSanitizer build: too slow for the backend's pace under load");
#else
  return true;
#endif
}

// Every delta the simulator sent is in the file exactly once.
void check_each_sent_delta_stored_once(Sim& sim, const fs::path& db) {
  auto recorded = recorded_keys(sim.records());
  auto stored = stored_keys(db, recorded);
  BOOST_TEST(stored.size() == recorded.size());
  BOOST_TEST((stored == recorded), "the stored deltas differ from those sent");
}

}  // namespace

// The failure the lanes remove: a store in memory, a live stream at the real
// backend's pace and limit (1 MB buffered, then 4002 "backpressure"), and
// clients looping on the heaviest questions. The tap is never cut off.
//
// The sanitizer build (Debug, AddressSanitizer) runs about ten times slower and
// shares two cores with another test: there the pace is 500/s and the load
// three clients, so that what is measured is the lanes, not a starved CPU.
BOOST_AUTO_TEST_CASE(heavy_queries_never_cut_the_tap_off,
                     *boost::unit_test::precondition(not_under_thread_sanitizer)) {
  const int kInMemory = kSanitized ? 60'000 : 300'000;
  const int kStreamed = kSanitized ? 5'000 : 50'000;  // 10 s at 500/s; 25 s at 2,000/s
  const char* kRate = kSanitized ? "500" : "2000";
  const int kSessionClients = kSanitized ? 2 : 4;
  const int kExportClients = kSanitized ? 1 : 2;
  TempDir dir;
  write_realistic_store(dir / "data/sessions.sqlite", kInMemory);
  Sim sim(dir, "sim", {"--format", "delta", "--count", std::to_string(kStreamed), "--rate", kRate,
                       "--seed", "21", "--backpressure-bytes", "1048576", "--ping-interval", "2"});
  int http_port = free_port();
  Process daemon({deltatapd_argv(), env_with_http(sim, http_port), dir.path()});
  BOOST_REQUIRE_MESSAGE(wait_until([&] { return http_request(http_port, "GET", "/readyz").status == 200; }, 60s),
                        daemon.stderr_text());

  std::atomic<bool> done{false};
  std::atomic<long> sessions_answers{0}, exports{0}, failures{0};
  std::vector<std::thread> clients;
  for (int i = 0; i < kSessionClients; ++i) {
    clients.emplace_back([&] {
      while (!done) {
        auto reply = http_request(http_port, "GET", "/api/sessions");
        if (reply.status == 200) ++sessions_answers; else ++failures;
      }
    });
  }
  for (int i = 0; i < kExportClients; ++i) {
    clients.emplace_back([&] {
      while (!done) {
        auto reply = http_request(http_port, "GET", "/api/export?format=ndjson");
        if (reply.status == 200 && reply.body.size() > 100'000'000 / (kSanitized ? 10 : 1)) {
          ++exports;
        } else if (reply.status != 200) {
          ++failures;
        }
      }
    });
  }
  bool sent = sim.wait_sent(120s);
  done = true;
  for (auto& client : clients) client.join();
  BOOST_REQUIRE_MESSAGE(sent, sim.process().stderr_text());
  BOOST_TEST_MESSAGE("answered while streaming: " << sessions_answers << " /api/sessions, "
                                                  << exports << " whole exports");
  BOOST_TEST(sessions_answers > 0);
  BOOST_TEST(exports > 0);
  BOOST_TEST(failures == 0);

  BOOST_TEST(summary_field(sim, "connections") == 1, sim.process().stdout_text());
  BOOST_TEST(!sim.process().stderr_contains("backpressure"), sim.process().stderr_text());
  BOOST_TEST(metric(http_port, "deltatap_websocket_reconnects_total") == 0);
  auto db = dir / "data/sessions.sqlite";
  BOOST_REQUIRE(wait_for_rows(daemon, db, kInMemory + kStreamed, 60s));
  daemon.signal(SIGTERM);
  BOOST_TEST(daemon.wait(60s).value_or(-1) == 0, daemon.stderr_text());
  sim.process().signal(SIGTERM);
  sim.process().wait();
  // Compare only what the stream brought: a copy without the older history.
  auto streamed = dir / "streamed.sqlite";
  fs::copy_file(db, streamed);
  sqlite3* handle = nullptr;
  BOOST_REQUIRE(sqlite3_open(streamed.c_str(), &handle) == SQLITE_OK);
  BOOST_REQUIRE(sqlite3_exec(handle, "DELETE FROM session_deltas WHERE session_id LIKE 'sess_old_%'",
                             nullptr, nullptr, nullptr) == SQLITE_OK);
  sqlite3_close(handle);
  check_each_sent_delta_stored_once(sim, streamed);
}

// The store lane stands still for seconds (a test hook makes it sleep); the
// simulator drops a client that leaves a ping unanswered for a second. With
// the stream on its own lane, the pings are answered, the connection stays,
// and everything sent meanwhile is stored once the store lane is back.
BOOST_AUTO_TEST_CASE(pings_are_answered_while_the_store_lane_is_blocked) {
  TempDir dir;
  Sim sim(dir, "sim", {"--format", "session_update", "--count", "3000", "--rate", "400",
                       "--seed", "22", "--ping-interval", "1"});
  int http_port = free_port();
  auto env = env_with_http(sim, http_port);
  env["DELTATAP_TEST_STALL_STORE_LANE"] = "200:4000";
  Process daemon({deltatapd_argv(), env, dir.path()});
  BOOST_REQUIRE_MESSAGE(wait_until([&] { return daemon.stderr_contains("Test hook: the store lane stalls"); }, 30s),
                        daemon.stderr_text());
  // While it sleeps, the HTTP API (on the store lane) cannot answer; the stream lane reads on.
  BOOST_REQUIRE_MESSAGE(sim.wait_sent(60s), sim.process().stderr_text());
  BOOST_TEST(summary_field(sim, "connections") == 1, sim.process().stdout_text());
  BOOST_TEST(!sim.process().stderr_contains("unanswered"), sim.process().stderr_text());
  auto db = dir / "data/sessions.sqlite";
  BOOST_REQUIRE(wait_for_rows(daemon, db, 3000, 60s));
  BOOST_TEST(metric(http_port, "deltatap_websocket_reconnects_total") == 0);
  daemon.signal(SIGTERM);
  BOOST_TEST(daemon.wait(60s).value_or(-1) == 0, daemon.stderr_text());
  sim.process().signal(SIGTERM);
  sim.process().wait();
  check_each_sent_delta_stored_once(sim, db);
}

// A small queue and a store lane that stalls: the queue fills, reading stops
// (logged, counted), the simulator keeps what it could not send, and once the
// store lane is back reading resumes and every delta is stored.
BOOST_AUTO_TEST_CASE(a_full_queue_pauses_reading_and_loses_nothing) {
  TempDir dir;
  Sim sim(dir, "sim", {"--format", "delta", "--count", "4000", "--rate", "2000", "--seed", "23",
                       "--ping-interval", "0", "--backpressure-bytes", "67108864"});
  auto conf = dir / "deltatap.conf";
  write_file(conf, "[stream]\nbuffer = 64KiB\n");
  int http_port = free_port();
  auto env = env_with_http(sim, http_port);
  env["DELTATAP_TEST_STALL_STORE_LANE"] = "100:3000";
  Process daemon({deltatapd_argv({"--config", conf.string()}), env, dir.path()});
  BOOST_REQUIRE_MESSAGE(
      wait_until([&] { return daemon.stderr_contains("The queue to the store is full"); }, 30s),
      daemon.stderr_text());
  BOOST_REQUIRE_MESSAGE(sim.wait_sent(60s), sim.process().stderr_text());
  auto db = dir / "data/sessions.sqlite";
  BOOST_REQUIRE(wait_for_rows(daemon, db, 4000, 60s));
  BOOST_TEST(metric(http_port, "deltatap_stream_queue_full_total") >= 1);
  BOOST_TEST(metric(http_port, "deltatap_stream_queue_bytes") == 0);
  BOOST_TEST(metric(http_port, "deltatap_websocket_reconnects_total") == 0);
  BOOST_TEST(summary_field(sim, "connections") == 1, sim.process().stdout_text());
  daemon.signal(SIGTERM);
  BOOST_TEST(daemon.wait(60s).value_or(-1) == 0, daemon.stderr_text());
  sim.process().signal(SIGTERM);
  sim.process().wait();
  check_each_sent_delta_stored_once(sim, db);
}
