// The sd_notify protocol as the service manager sees it: the test binds the
// AF_UNIX datagram socket that NOTIFY_SOCKET names and reads what ServiceNotifier
// sends, in order, with the watchdog's cadence.
#define BOOST_TEST_MODULE notify
#include <boost/test/unit_test.hpp>

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <future>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "service/notify.h"
#include "test_support.h"

namespace {

using namespace deltatap;
using namespace deltatap::testing;
using Clock = std::chrono::steady_clock;

// A bound datagram socket standing in for PID 1's notification socket.
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

  // The next datagram, or nullopt when none arrives within `timeout`.
  std::optional<std::string> receive(std::chrono::milliseconds timeout = 5s) {
    timeval tv{};
    tv.tv_sec = static_cast<time_t>(timeout.count() / 1000);
    tv.tv_usec = static_cast<suseconds_t>((timeout.count() % 1000) * 1000);
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    char buf[4096];
    ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    if (n < 0) return std::nullopt;
    return std::string(buf, static_cast<std::size_t>(n));
  }

  // Datagrams until one that is not WATCHDOG=1; returns it, counting the pings.
  std::optional<std::string> receive_skipping_watchdog(int* pings = nullptr) {
    while (auto message = receive()) {
      if (*message != "WATCHDOG=1") return message;
      if (pings) ++*pings;
    }
    return std::nullopt;
  }

 private:
  TempDir dir_;
  fs::path path_;
  int fd_ = -1;
};

// Sets the sd_notify environment for this process and restores it afterwards.
class NotifyEnvironment {
 public:
  NotifyEnvironment(const fs::path& socket, std::optional<std::string> watchdog_usec,
                    std::optional<std::string> watchdog_pid) {
    ::setenv("NOTIFY_SOCKET", socket.c_str(), 1);
    set_or_unset("WATCHDOG_USEC", watchdog_usec);
    set_or_unset("WATCHDOG_PID", watchdog_pid);
  }
  ~NotifyEnvironment() {
    ::unsetenv("NOTIFY_SOCKET");
    ::unsetenv("WATCHDOG_USEC");
    ::unsetenv("WATCHDOG_PID");
  }

 private:
  static void set_or_unset(const char* name, const std::optional<std::string>& value) {
    if (value) ::setenv(name, value->c_str(), 1); else ::unsetenv(name);
  }
};

// An io_context running on its own thread, like deltatapd's io thread.
class IoThread {
 public:
  IoThread() : work_(io_.get_executor()), thread_([this] { io_.run(); }) {}
  ~IoThread() {
    work_.reset();
    io_.stop();
    thread_.join();
  }
  boost::asio::io_context& io() { return io_; }

  // Runs `fn` on the io thread and waits for it.
  template <typename Fn>
  void run(Fn fn) {
    std::promise<void> done;
    boost::asio::post(io_, [&] {
      fn();
      done.set_value();
    });
    done.get_future().wait();
  }

 private:
  boost::asio::io_context io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_;
  std::thread thread_;
};

std::string our_pid() { return std::to_string(::getpid()); }

}  // namespace

BOOST_AUTO_TEST_CASE(without_notify_socket_every_call_is_a_no_op) {
  ::unsetenv("NOTIFY_SOCKET");
  ::setenv("WATCHDOG_USEC", "1000000", 1);
  IoThread io;
  {
    ServiceNotifier notifier(io.io());
    BOOST_TEST(!notifier.enabled());
    BOOST_TEST(notifier.watchdog_interval().count() == 0);
    io.run([&] { notifier.start_watchdog(); });
    notifier.ready();
    notifier.status("idle");
    notifier.reloading();
    notifier.stopping();
    io.run([&] { notifier.stop_watchdog(); });
  }
  ::unsetenv("WATCHDOG_USEC");
}

BOOST_AUTO_TEST_CASE(lifecycle_messages_arrive_in_order) {
  NotifySocket socket;
  NotifyEnvironment env(socket.path(), std::nullopt, std::nullopt);
  IoThread io;
  ServiceNotifier notifier(io.io());
  BOOST_TEST(notifier.enabled());
  BOOST_TEST(notifier.watchdog_interval().count() == 0);

  notifier.status("Loading store");
  notifier.ready();
  notifier.status("Connected to ws://127.0.0.1:3001/ws, 12 deltas stored");
  notifier.reloading();
  notifier.ready();
  notifier.stopping();

  BOOST_TEST(socket.receive().value_or("") == "STATUS=Loading store");
  BOOST_TEST(socket.receive().value_or("") == "READY=1");
  BOOST_TEST(socket.receive().value_or("") ==
             "STATUS=Connected to ws://127.0.0.1:3001/ws, 12 deltas stored");
  auto reloading = socket.receive().value_or("");
  BOOST_TEST(reloading.rfind("RELOADING=1\nMONOTONIC_USEC=", 0) == 0, reloading);
  auto usec = std::strtoull(reloading.c_str() + reloading.find('=', 12) + 1, nullptr, 10);
  timespec now{};
  clock_gettime(CLOCK_MONOTONIC, &now);
  auto now_usec = static_cast<unsigned long long>(now.tv_sec) * 1000000ull;
  BOOST_TEST(usec > 0u);
  BOOST_TEST(usec <= now_usec + 1000000ull);
  BOOST_TEST(socket.receive().value_or("") == "READY=1");
  BOOST_TEST(socket.receive().value_or("") == "STOPPING=1");
  BOOST_TEST(!socket.receive(200ms).has_value());
}

BOOST_AUTO_TEST_CASE(status_is_one_line_and_not_repeated) {
  NotifySocket socket;
  NotifyEnvironment env(socket.path(), std::nullopt, std::nullopt);
  IoThread io;
  ServiceNotifier notifier(io.io());

  notifier.status("Retrying\nin 2 s");
  notifier.status("Retrying\nin 2 s");
  notifier.status("Connected");
  notifier.extend_timeout(std::chrono::seconds(30));

  BOOST_TEST(socket.receive().value_or("") == "STATUS=Retrying in 2 s");
  BOOST_TEST(socket.receive().value_or("") == "STATUS=Connected");
  BOOST_TEST(socket.receive().value_or("") == "EXTEND_TIMEOUT_USEC=30000000");
}

BOOST_AUTO_TEST_CASE(watchdog_pings_at_half_the_interval_until_stopped) {
  NotifySocket socket;
  NotifyEnvironment env(socket.path(), "1000000", our_pid());
  IoThread io;
  auto notifier = std::make_unique<ServiceNotifier>(io.io());
  BOOST_TEST(notifier->watchdog_interval().count() == 500000);

  auto started = Clock::now();
  io.run([&] {
    notifier->start_watchdog();
    // Sent after whatever start_watchdog() sent itself: the first ping comes
    // before this line only if it goes out at once, not on the first tick.
    notifier->status("watchdog started");
  });
  io.run([&] { notifier->start_watchdog(); });  // a second start must not double the rate
  BOOST_TEST(socket.receive(3s).value_or("") == "WATCHDOG=1");
  BOOST_TEST(socket.receive(3s).value_or("") == "STATUS=watchdog started");
  // Then one ping per interval (half of WATCHDOG_USEC, watchdog_interval()
  // above): the k-th tick cannot come before k intervals after the start, as
  // timers never fire early and each tick is set from the previous one. A
  // bound from below only: a busy machine may make a tick late, never early.
  using std::chrono::milliseconds;
  for (int tick = 1; tick <= 3; ++tick) {
    auto message = socket.receive(10s);
    BOOST_REQUIRE(message.has_value());
    BOOST_TEST(*message == "WATCHDOG=1");
    auto at = std::chrono::duration_cast<milliseconds>(Clock::now() - started);
    BOOST_TEST(at.count() >= 500 * tick, "tick " << tick << " at " << at.count() << " ms");
  }

  io.run([&] { notifier->stop_watchdog(); });
  BOOST_TEST(!socket.receive(1200ms).has_value());

  // Started again, it resumes; destroyed, it stops for good.
  io.run([&] { notifier->start_watchdog(); });
  BOOST_TEST(socket.receive(2s).value_or("") == "WATCHDOG=1");
  io.run([&] { notifier.reset(); });
  // A ping already in flight when it was destroyed may still arrive.
  while (socket.receive(100ms)) {
  }
  BOOST_TEST(!socket.receive(1200ms).has_value());
}

BOOST_AUTO_TEST_CASE(watchdog_stays_off_for_another_pid) {
  NotifySocket socket;
  NotifyEnvironment env(socket.path(), "1000000", std::to_string(::getpid() + 1));
  IoThread io;
  ServiceNotifier notifier(io.io());
  BOOST_TEST(notifier.enabled());
  BOOST_TEST(notifier.watchdog_interval().count() == 0);
  io.run([&] { notifier.start_watchdog(); });
  notifier.ready();
  BOOST_TEST(socket.receive().value_or("") == "READY=1");
  BOOST_TEST(!socket.receive(1200ms).has_value());
}

BOOST_AUTO_TEST_CASE(watchdog_without_pid_applies_to_us) {
  NotifySocket socket;
  NotifyEnvironment env(socket.path(), "400000", std::nullopt);
  IoThread io;
  ServiceNotifier notifier(io.io());
  BOOST_TEST(notifier.watchdog_interval().count() == 200000);
  io.run([&] { notifier.start_watchdog(); });
  for (int ping = 0; ping < 3; ++ping) {
    BOOST_TEST(socket.receive(10s).value_or("") == "WATCHDOG=1", "ping " << ping);
  }
  // Other messages interleave with the pings without being lost.
  notifier.stopping();
  BOOST_TEST(socket.receive_skipping_watchdog().value_or("") == "STOPPING=1");
  io.run([&] { notifier.stop_watchdog(); });
}
