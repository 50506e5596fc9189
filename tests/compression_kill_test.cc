// [storage] compression = zstd through a kill -9 of the real daemon while a
// dictionary is being trained (issue 16): the stream goes on, the daemon is
// started again, and at the end the file holds every delta the simulator sent
// except at most those of the journal's last fsync interval, none twice, each
// state exactly as sent, every row encoded and `deltatap check` content.
#define BOOST_TEST_MODULE compression_kill
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <csignal>
#include <iterator>
#include <map>
#include <memory>
#include <set>
#include <string>

#include "test_support.h"

using namespace deltatap::testing;

namespace {

struct Daemon {
  int http = free_port();
  std::map<std::string, std::string> env;
  std::vector<std::string> argv;
  fs::path dir;
  std::unique_ptr<Process> process;

  Daemon(const fs::path& working_dir, const std::string& url, const fs::path& conf)
      : env(daemon_env(url, "")), argv(deltatapd_argv({"--config", conf.string()})), dir(working_dir) {
    env["DELTATAP_HTTP"] = "127.0.0.1:" + std::to_string(http);
    start();
  }
  void start() { process = std::make_unique<Process>(ProcessOptions{argv, env, dir}); }
  std::string stats() { return http_request(http, "GET", "/api/stats").body; }
};

// A sanitizer build stores several times slower: at the full rate the
// simulator would cut it off for backpressure, which loses deltas of its own.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr int kRate = 1'000;
#else
constexpr int kRate = 3'000;
#endif
// The journal's fsync interval (100 ms) at kRate, plus 100 for what was
// between the socket and the journal.
constexpr std::size_t kLossBound = kRate / 10 + 100;

}  // namespace

BOOST_AUTO_TEST_CASE(a_kill_9_during_a_training_loses_only_the_last_interval_and_nothing_twice) {
  TempDir dir;
  // The first dictionary is trained once 2,000 states are written, within
  // the first seconds.
  Sim sim(dir, "sim", {"--format", "mixed", "--count", "15000", "--rate", std::to_string(kRate),
                       "--seed", "61"});
  auto conf = dir / "deltatap.conf";
  write_file(conf, "[storage]\ncompression = zstd\n[retention]\ndays = 0\n");
  Daemon daemon(dir.path(), sim.url(), conf);

  // The training runs on a thread of its own for a few tens of ms; /api/stats
  // says so while it does. Asked as often as the store lane answers.
  std::string seen;
  bool training = wait_until(
      [&] {
        seen = daemon.stats();
        return seen.find("\"training\":true") != std::string::npos;
      },
      30s);
  BOOST_REQUIRE_MESSAGE(training, seen + "\n" + daemon.process->stderr_text());
  daemon.process->signal(SIGKILL);
  BOOST_REQUIRE(daemon.process->wait(10s));

  daemon.start();
  BOOST_REQUIRE(sim.wait_sent(120s));
  auto db = dir / "data/sessions.sqlite";
  auto recorded = recorded_keys(sim.records());
  BOOST_REQUIRE_EQUAL(recorded.size(), 15000u);
  // Everything the restarted daemon received is stored; what the killed one
  // had not journaled yet is gone, and only that.
  bool settled = wait_until(
      [&] {
        auto stats = daemon.stats();
        return stats.find("\"converted\":true") != std::string::npos &&
               json_integer(stats, "deltaCount").value_or(0) >= static_cast<long long>(15000 - kLossBound);
      },
      120s);
  BOOST_REQUIRE_MESSAGE(settled, daemon.stats() + "\n" + daemon.process->stderr_text());
  daemon.process->signal(SIGTERM);
  BOOST_REQUIRE_EQUAL(daemon.process->wait(60s).value_or(-1), 0);

  auto stored = stored_keys(db, recorded);
  // Nothing twice and nothing that was not sent: the stored deltas are a
  // part of the sent ones, states byte for byte.
  std::multiset<std::string> missing;
  std::set_difference(recorded.begin(), recorded.end(), stored.begin(), stored.end(),
                      std::inserter(missing, missing.begin()));
  std::multiset<std::string> extra;
  std::set_difference(stored.begin(), stored.end(), recorded.begin(), recorded.end(),
                      std::inserter(extra, extra.begin()));
  BOOST_TEST(extra.empty(), extra.size() << " stored deltas were never sent (or stored twice)");
  BOOST_TEST(missing.size() <= kLossBound, missing.size() << " sent deltas are missing");
  BOOST_TEST(count_of(db, "typeof(after_state) = 'text' OR typeof(before_state) = 'text'") == "0");
  BOOST_TEST(count_of(db, "1") != "0");
  auto check = run_command({(bin_dir() / "deltatap").string(), "--db", db.string(), "check"});
  BOOST_TEST(check.exit_code == 0, check.out + check.err);
}
