// deltatapd as systemd sees it: started with NOTIFY_SOCKET and WATCHDOG_USEC, it
// says READY=1 without waiting for a backend that is down, keeps STATUS= current,
// pings the watchdog at half the interval, reports RELOADING=1/READY=1 around
// SIGHUP and STOPPING=1 on SIGTERM. Under JOURNAL_STREAM every stderr line carries
// its priority.
#define BOOST_TEST_MODULE daemon_notify
#include <boost/test/unit_test.hpp>

#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <map>
#include <optional>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "test_support.h"

namespace {

using namespace deltatap::testing;
using Clock = std::chrono::steady_clock;

// The service manager's end of the notification socket.
class NotifySocket {
 public:
  NotifySocket() {
    path_ = dir_ / "notify";
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    BOOST_REQUIRE(fd_ >= 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    BOOST_REQUIRE(path_.string().size() < sizeof addr.sun_path);
    std::strcpy(addr.sun_path, path_.c_str());
    BOOST_REQUIRE(::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  }
  ~NotifySocket() { ::close(fd_); }
  const fs::path& path() const { return path_; }

  std::optional<std::string> receive(std::chrono::milliseconds timeout) {
    if (timeout.count() <= 0) return std::nullopt;
    timeval tv{};
    tv.tv_sec = static_cast<time_t>(timeout.count() / 1000);
    tv.tv_usec = static_cast<suseconds_t>((timeout.count() % 1000) * 1000);
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    char buf[4096];
    ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    if (n < 0) return std::nullopt;
    return std::string(buf, static_cast<std::size_t>(n));
  }

 private:
  TempDir dir_;
  fs::path path_;
  int fd_ = -1;
};

// Every datagram, each with when it arrived, as the test goes.
struct Received {
  std::string text;
  Clock::time_point at;
};

class Recorder {
 public:
  explicit Recorder(NotifySocket& socket) : socket_(socket) {}

  // Reads until a datagram satisfies `match` or `timeout` passes; returns it.
  template <typename Match>
  std::optional<Received> until(Match match, std::chrono::milliseconds timeout) {
    auto deadline = Clock::now() + timeout;
    while (Clock::now() < deadline) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
      auto text = socket_.receive(std::max(left, std::chrono::milliseconds(1)));
      if (!text) break;
      all_.push_back({*text, Clock::now()});
      if (match(*text)) return all_.back();
    }
    return std::nullopt;
  }
  std::optional<Received> until_exactly(const std::string& text, std::chrono::milliseconds timeout) {
    return until([&](const std::string& t) { return t == text; }, timeout);
  }
  const std::vector<Received>& all() const { return all_; }
  std::string transcript() const {
    std::string out;
    for (const auto& r : all_) out += "[" + r.text + "] ";
    return out;
  }

 private:
  NotifySocket& socket_;
  std::vector<Received> all_;
};

bool has_prefix(const std::string& text, const std::string& prefix) {
  return text.rfind(prefix, 0) == 0;
}

// deltatapd with storage and HTTP off, aimed at a loopback port nobody listens on.
std::map<std::string, std::string> daemon_env(const fs::path& notify_socket) {
  int closed_port = free_port();
  return {
      {"NOTIFY_SOCKET", notify_socket.string()},
      {"WATCHDOG_USEC", "1000000"},
      {"WATCHDOG_PID", "\x01unset"},
      {"PERSIST", "0"},
      {"DELTATAP_HTTP", ""},
      {"DELTATAP_URL", "ws://127.0.0.1:" + std::to_string(closed_port) + "/ws"},
      {"DELTATAP_TOKEN", "\x01unset"},
      {"CREDENTIALS_DIRECTORY", "\x01unset"},
      {"INVOCATION_ID", "\x01unset"},
      {"JOURNAL_STREAM", "\x01unset"},
  };
}

fs::path deltatapd() { return bin_dir() / "deltatapd"; }

}  // namespace

BOOST_AUTO_TEST_CASE(ready_status_watchdog_reload_and_stopping) {
  BOOST_TEST_REQUIRE(fs::exists(deltatapd()), "deltatapd is not built");
  NotifySocket socket;
  TempDir work;
  Process daemon({{deltatapd().string(), "--log-format", "text"}, daemon_env(socket.path()),
                  work.path()});
  Recorder recorder(socket);

  // READY=1 although the backend is down: the unit must not fail for that.
  auto ready = recorder.until_exactly("READY=1", 10s);
  BOOST_TEST_REQUIRE(ready.has_value(),
                     "no READY=1; got " << recorder.transcript() << daemon.stderr_text());
  BOOST_TEST(daemon.running());

  // Watchdog pings after READY=1 (two: the watchdog keeps going, not one ping
  // at start), and a STATUS= line. How often it pings is notify_test's
  // (watchdog_pings_at_half_the_interval_until_stopped); here no clock.
  int pings = 0;
  bool status_seen = false;
  for (const auto& r : recorder.all()) status_seen |= has_prefix(r.text, "STATUS=");
  recorder.until(
      [&](const std::string& text) {
        if (text == "WATCHDOG=1") ++pings;
        status_seen |= has_prefix(text, "STATUS=");
        return pings >= 2 && status_seen;
      },
      20s);
  BOOST_TEST(pings >= 2, recorder.transcript());
  if (!status_seen) {
    recorder.until([](const std::string& text) { return has_prefix(text, "STATUS="); }, 5s);
    for (const auto& r : recorder.all()) status_seen |= has_prefix(r.text, "STATUS=");
  }
  BOOST_TEST(status_seen, recorder.transcript());

  // SIGHUP: RELOADING=1, then READY=1 again.
  daemon.signal(SIGHUP);
  auto reloading = recorder.until(
      [](const std::string& text) { return has_prefix(text, "RELOADING=1"); }, 10s);
  BOOST_TEST_REQUIRE(reloading.has_value(), recorder.transcript());
  BOOST_TEST(recorder.until_exactly("READY=1", 10s).has_value(), recorder.transcript());

  // SIGTERM: STOPPING=1, then a clean exit.
  daemon.signal(SIGTERM);
  BOOST_TEST(recorder.until_exactly("STOPPING=1", 10s).has_value(), recorder.transcript());
  auto code = daemon.wait(20s);
  BOOST_TEST_REQUIRE(code.has_value());
  BOOST_TEST(*code == 0, daemon.stderr_text());
}

BOOST_AUTO_TEST_CASE(every_stderr_line_has_a_priority_under_journal_stream) {
  BOOST_TEST_REQUIRE(fs::exists(deltatapd()), "deltatapd is not built");
  NotifySocket socket;
  TempDir work;
  // JOURNAL_STREAM must name the stderr the daemon really has: the shell looks
  // it up on itself, then becomes deltatapd.
  std::string command = "JOURNAL_STREAM=$(stat -L -c %d:%i /proc/self/fd/2) exec \"$0\" "
                        "--log-format text";
  Process daemon({{"/bin/sh", "-c", command, deltatapd().string()}, daemon_env(socket.path()),
                  work.path()});
  Recorder recorder(socket);
  BOOST_TEST_REQUIRE(recorder.until_exactly("READY=1", 10s).has_value(),
                     recorder.transcript() << daemon.stderr_text());
  // Some lines: start-up, and the refused connections to the closed port.
  BOOST_TEST(wait_until([&] {
    auto text = daemon.stderr_text();
    return std::count(text.begin(), text.end(), '\n') >= 2;
  }));
  daemon.signal(SIGTERM);
  auto code = daemon.wait(20s);
  BOOST_TEST_REQUIRE(code.has_value());
  BOOST_TEST(*code == 0);

  std::istringstream lines(daemon.stderr_text());
  std::regex prefixed(R"(^<[0-7]>\S.*$)");
  int count = 0;
  for (std::string line; std::getline(lines, line); ++count) {
    BOOST_TEST(std::regex_match(line, prefixed), line);
  }
  BOOST_TEST(count >= 2);
}
