// End to end: the real deltatapd tapping the real deltatap-sim over loopback.
// Counts and contents are compared with what the simulator recorded it sent.
#define BOOST_TEST_MODULE stream
#include <boost/test/unit_test.hpp>

#include <signal.h>

#include <map>
#include <set>
#include <regex>
#include <sstream>

#include "test_support.h"

using namespace deltatap;
using namespace deltatap::testing;

BOOST_AUTO_TEST_CASE(twenty_thousand_mixed_deltas_with_a_token_arrive_whole) {
  TempDir dir;
  Sim sim(dir, "sim", {"--token", "t0ken", "--format", "mixed", "--count", "20000", "--sessions",
                       "50", "--seed", "3"});
  Process daemon({deltatapd_argv(), daemon_env(sim.url(), "t0ken"), dir.path()});
  BOOST_REQUIRE_MESSAGE(sim.wait_sent(), sim.process().stderr_text());
  BOOST_TEST(*sim.sent() == 20000);
  auto db = dir / "data/sessions.sqlite";
  BOOST_REQUIRE_MESSAGE(wait_for_rows(daemon, db, 20000), "stored " << count_of(db) << "\n"
                                                                     << daemon.stderr_text());
  for (auto type : {"created", "updated", "deleted"}) {
    BOOST_TEST(std::stol(count_of(db, std::string("delta_type = '") + type + "'")) > 0, type);
  }
  auto recorded = recorded_keys(sim.records());
  BOOST_REQUIRE_EQUAL(recorded.size(), 20000u);
  auto stored = stored_keys(db, recorded);
  BOOST_TEST((stored == recorded), "stored and sent deltas differ");
  // Timestamps are all normalised.
  BOOST_TEST(count_of(db, "timestamp NOT GLOB "
                          "'[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9].[0-9][0-9][0-9]Z'") == "0");
  BOOST_TEST(query_db(db, "SELECT COUNT(*) FROM rejected_messages")[0][0] == "0");
  daemon.signal(SIGTERM);
  BOOST_TEST(daemon.wait().value_or(-1) == 0, daemon.stderr_text());
  BOOST_TEST(query_db(db, "SELECT COUNT(*) FROM stream_events WHERE event = 'connected'")[0][0] == "1");
}

BOOST_AUTO_TEST_CASE(a_wrong_token_stores_nothing_and_keeps_retrying) {
  TempDir dir;
  Sim sim(dir, "sim", {"--token", "right", "--count", "100"});
  auto env = daemon_env(sim.url(), "wrong");
  Process daemon({deltatapd_argv({"--log-level", "info"}), env, dir.path()});
  BOOST_REQUIRE_MESSAGE(wait_until([&] { return daemon.stderr_contains("uthenticat"); }),
                        daemon.stderr_text());
  BOOST_TEST(daemon.running());
  BOOST_TEST(!daemon.stderr_contains("wrong"), "the token must never be logged");
  daemon.signal(SIGTERM);
  BOOST_TEST(daemon.wait().value_or(-1) == 0);
  auto db = dir / "data/sessions.sqlite";
  BOOST_TEST(count_of(db) == "0");
  BOOST_TEST(std::stol(query_db(db, "SELECT COUNT(*) FROM stream_events WHERE event = 'auth_failed'")[0][0]) >= 1);
  BOOST_TEST(sim.records().empty());
}

BOOST_AUTO_TEST_CASE(a_backend_restarted_mid_stream_is_rejoined_without_duplicates) {
  TempDir dir;
  int port = free_port();
  std::vector<std::string> first_records;
  auto env = daemon_env("ws://127.0.0.1:" + std::to_string(port) + "/ws", "tk");
  env["DELTATAP_LOG_LEVEL"] = "info";
  std::optional<Process> daemon;
  {
    Sim first(dir, "first", {"--token", "tk", "--format", "mixed", "--count", "100000", "--rate",
                             "2000", "--seed", "1"},
              port);
    daemon.emplace(ProcessOptions{deltatapd_argv(), env, dir.path()});
    BOOST_REQUIRE(wait_until([&] { return first.records().size() >= 1000; }, 30s));
    first.process().signal(SIGTERM);
    BOOST_REQUIRE(first.process().wait().has_value());
    first_records = first.records();
  }
  Sim second(dir, "second", {"--token", "tk", "--format", "session_update", "--count", "1500",
                             "--seed", "2"},
             port);
  BOOST_REQUIRE_MESSAGE(second.wait_sent(), daemon->stderr_text());
  auto all = first_records;
  for (auto& line : second.records()) all.push_back(line);
  auto db = dir / "data/sessions.sqlite";
  BOOST_REQUIRE_MESSAGE(wait_for_rows(*daemon, db, static_cast<long>(all.size())),
                        "stored " << count_of(db) << " of " << all.size());
  auto recorded = recorded_keys(all);
  BOOST_TEST((stored_keys(db, recorded) == recorded));
  daemon->signal(SIGTERM);
  BOOST_TEST(daemon->wait().value_or(-1) == 0);
  auto events = query_db(db, "SELECT event FROM stream_events ORDER BY id");
  int connected = 0, disconnected = 0;
  for (auto& e : events) {
    connected += e[0] == "connected";
    disconnected += e[0] == "disconnected";
  }
  // At least the two backends; a slow build may also be dropped and rejoined
  // (ping or backpressure) and that is fine as long as nothing is stored twice.
  BOOST_TEST(connected >= 2);
  BOOST_TEST(disconnected >= connected);  // each connection's end is recorded
}

BOOST_AUTO_TEST_CASE(sighup_with_a_changed_url_moves_to_the_new_backend) {
  TempDir dir;
  Sim a(dir, "a", {"--count", "0", "--rate", "50", "--seed", "4"});
  Sim b(dir, "b", {"--count", "0", "--rate", "50", "--seed", "5"});
  auto conf = dir / "deltatap.conf";
  auto write_conf = [&](const std::string& url) {
    write_file(conf, "[stream]\nurl = " + url + "\n[storage]\nenabled = on\n[http]\nlisten =\n");
  };
  write_conf(a.url());
  auto env = daemon_env("", "");
  env.erase("DELTATAP_URL");
  env.erase("DELTATAP_TOKEN");
  env.erase("DELTATAP_HTTP");
  env["DELTATAP_URL"] = "\x01unset";
  env["DELTATAP_TOKEN"] = "\x01unset";
  env["DELTATAP_HTTP"] = "\x01unset";
  env["PERSIST"] = "\x01unset";
  Process daemon({deltatapd_argv({"--config", conf.string()}), env, dir.path()});
  auto port_b = ":" + std::to_string(b.port());
  BOOST_REQUIRE(wait_until([&] { return !a.records().empty(); }));
  BOOST_TEST(b.records().empty());
  write_conf(b.url());
  daemon.signal(SIGHUP);
  BOOST_REQUIRE_MESSAGE(wait_until([&] { return !b.records().empty(); }), daemon.stderr_text());
  BOOST_TEST(daemon.stderr_contains("Configuration reloaded"));
  daemon.signal(SIGTERM);
  BOOST_TEST(daemon.wait().value_or(-1) == 0);
  auto urls = query_db(dir / "data/sessions.sqlite",
                       "SELECT url FROM stream_events WHERE event = 'connected' ORDER BY id");
  BOOST_REQUIRE_EQUAL(urls.size(), 2u);
  BOOST_TEST(urls[1][0].find(port_b) != std::string::npos);
}
