// The snapshot child among the signals systemd sends to the whole unit (issue
// 13, item 7). `systemctl kill -s USR1 deltatap`, what docs/service.md says to
// run, signals every process of the unit's cgroup: the daemon and a snapshot
// child that may be running. Here the real deltatapd runs in a process group of
// its own (the test's stand-in for the cgroup) with a store large enough that a
// snapshot takes a while; the child gets USR1, HUP and USR2 while it copies, and
// every snapshot must still succeed. SIGTERM to the group (systemctl stop) ends
// the child, and the daemon still writes a complete final snapshot.
#define BOOST_TEST_MODULE hardening_child
#include <boost/test/unit_test.hpp>

#include <signal.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "skip.h"
#include "storage/store.h"
#include "test_support.h"

using namespace deltatap;
using namespace deltatap::testing;

namespace {

using Clock = std::chrono::steady_clock;

// Enough that a snapshot takes a tenth of a second or more (a ~120 MB copy and
// its fsync) where finding its child takes a millisecond or two.
constexpr int kDeltas = 100'000;
constexpr int kRounds = 10;

// Sanitizer builds write snapshots in-process (storage/snapshot.cc says why):
// there is no child to signal.
boost::test_tools::assertion_result forks_a_child([[maybe_unused]] boost::unit_test::test_unit_id id) {
#if defined(__SANITIZE_ADDRESS__)
  return excluded_by_build(id, "AddressSanitizer build: snapshots are written without a child");
#else
  return true;
#endif
}

// Running or sleeping, as opposed to exited (a zombie) or gone.
bool alive(pid_t pid) {
  auto stat = read_file("/proc/" + std::to_string(pid) + "/stat");
  auto paren = stat.rfind(')');
  return paren != std::string::npos && paren + 2 < stat.size() && stat[paren + 2] != 'Z' &&
         stat[paren + 2] != 'X';
}

// The daemon's snapshot child, as soon as it exists. Polled every millisecond:
// the test must reach the child while it copies.
std::optional<pid_t> wait_for_child(pid_t daemon, std::chrono::milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    auto children = children_of(daemon);
    if (!children.empty()) return *children.begin();
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return std::nullopt;
}

struct Daemon {
  TempDir dir;
  int http_port = free_port();
  std::optional<Process> process;

  Daemon() {
    write_realistic_store(dir / "data/sessions.sqlite", kDeltas);
    // No backend: the daemon keeps trying to connect, which does not matter here.
    auto env = daemon_env("ws://127.0.0.1:" + std::to_string(free_port()) + "/ws", "");
    env["DELTATAP_HTTP"] = "127.0.0.1:" + std::to_string(http_port);
    // Process puts the daemon in a process group of its own: kill(-pid) then
    // reaches it and its children, as systemd reaches a unit's cgroup.
    process.emplace(ProcessOptions{deltatapd_argv(), env, dir.path()});
    // Loading the store comes before the HTTP API: once it answers, the store is in.
    BOOST_REQUIRE_MESSAGE(
        wait_until([&] { return http_request(http_port, "GET", "/metrics").status == 200; },
                   std::chrono::seconds(60)),
        process->stderr_text());
  }

  pid_t pid() { return process->pid(); }
  double successes() {
    return metric_sample(http_port, "deltatap_snapshot_duration_seconds_count").value_or(-1);
  }
  double failures() { return metric_sample(http_port, "deltatap_snapshot_failures_total").value_or(-1); }
};

}  // namespace

BOOST_AUTO_TEST_CASE(snapshots_survive_signals_sent_to_the_whole_unit,
                     *boost::unit_test::precondition(forks_a_child)) {
  Daemon daemon;
  BOOST_REQUIRE(daemon.failures() == 0);
  for (int round = 0; round < kRounds; ++round) {
    double before = daemon.successes();
    BOOST_REQUIRE(before >= 0);
    // `systemctl kill -s USR1`: the daemon starts a snapshot.
    BOOST_REQUIRE(::kill(-daemon.pid(), SIGUSR1) == 0);
    auto child = wait_for_child(daemon.pid(), std::chrono::seconds(10));
    BOOST_REQUIRE_MESSAGE(child.has_value(), "round " << round << ": no snapshot child appeared");
    // The signals must reach the child while it runs, or the round proves nothing.
    BOOST_REQUIRE_MESSAGE(alive(*child), "round " << round << ": the child finished before it "
                                                     "could be signalled; make the store larger");
    // What a cgroup-wide USR1, HUP or USR2 does to the child. The group also
    // gets USR1 (the daemon queues another snapshot) and HUP (it reloads).
    BOOST_TEST(::kill(*child, SIGUSR1) == 0);
    BOOST_TEST(::kill(*child, SIGHUP) == 0);
    BOOST_TEST(::kill(*child, SIGUSR2) == 0);
    BOOST_TEST(::kill(-daemon.pid(), SIGHUP) == 0);
    BOOST_TEST(::kill(-daemon.pid(), SIGUSR1) == 0);
    // This snapshot and the one queued behind it both finish, and no child is
    // left for the next round to find.
    bool settled = wait_until(
        [&] {
          return daemon.failures() != 0 ||
                 (daemon.successes() >= before + 2 && children_of(daemon.pid()).empty());
        },
        std::chrono::seconds(30));
    BOOST_REQUIRE_MESSAGE(settled, "round " << round << ": snapshots did not finish; "
                                            << daemon.process->stderr_text());
    BOOST_REQUIRE_MESSAGE(daemon.failures() == 0,
                          "round " << round << ": " << daemon.process->stderr_text());
  }
  double snapshots = daemon.successes();
  BOOST_TEST(snapshots >= 2 * kRounds);
  double seconds = metric_sample(daemon.http_port, "deltatap_snapshot_duration_seconds_sum").value_or(0);
  BOOST_TEST_MESSAGE(snapshots << " snapshots, " << seconds / snapshots << " s each");
  BOOST_TEST(!daemon.process->stderr_contains("Snapshot failed"), daemon.process->stderr_text());
  BOOST_TEST(daemon.process->running());

  daemon.process->signal(SIGTERM);
  auto exit_code = daemon.process->wait(std::chrono::seconds(30));
  BOOST_TEST(exit_code.value_or(-1) == 0, daemon.process->stderr_text());
  BOOST_TEST(count_of(daemon.dir / "data/sessions.sqlite") == std::to_string(kDeltas));
}

// `systemctl stop` sends SIGTERM to every process of the unit. The child dies
// of it (snapshot.cc says why: the daemon's final snapshot supersedes it)
// instead of making the stop wait for its copy, and the final snapshot is
// complete.
BOOST_AUTO_TEST_CASE(a_stop_sent_to_the_whole_unit_ends_the_child_and_keeps_everything,
                     *boost::unit_test::precondition(forks_a_child)) {
  Daemon daemon;
  BOOST_REQUIRE(::kill(-daemon.pid(), SIGUSR1) == 0);
  auto child = wait_for_child(daemon.pid(), std::chrono::seconds(10));
  BOOST_REQUIRE(child.has_value());
  BOOST_REQUIRE(alive(*child));
  BOOST_REQUIRE(::kill(-daemon.pid(), SIGTERM) == 0);
  auto exit_code = daemon.process->wait(std::chrono::seconds(30));
  BOOST_TEST(exit_code.value_or(-1) == 0, daemon.process->stderr_text());
  // The daemon reaped its child before it exited; the child died of the signal
  // rather than finish its copy (the scheduler notes it, not as a failure: the
  // final snapshot replaces it).
  BOOST_TEST(!alive(*child));
  std::string log = daemon.process->stderr_text();
  BOOST_TEST(log.find(std::string("killed by signal ") + ::strsignal(SIGTERM)) != std::string::npos,
             log);
  BOOST_TEST(log.find("Final snapshot saved") != std::string::npos, log);
  BOOST_TEST(log.find("Snapshot failed") == std::string::npos, log);
  BOOST_TEST(count_of(daemon.dir / "data/sessions.sqlite") == std::to_string(kDeltas));
}
