#include "service/notify.h"

#include <systemd/sd-daemon.h>
#include <time.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <cstdint>
#include <cstdlib>
#include <mutex>
#include <string>

#include "base/logging.h"

namespace deltatap {

namespace {

// CLOCK_MONOTONIC in microseconds, what systemd compares MONOTONIC_USEC= with.
std::uint64_t monotonic_usec() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000u +
         static_cast<std::uint64_t>(ts.tv_nsec) / 1'000u;
}

}  // namespace

struct ServiceNotifier::Impl : std::enable_shared_from_this<ServiceNotifier::Impl> {
  explicit Impl(boost::asio::io_context& io) : timer(io) {}

  void send(const std::string& state) {
    if (!enabled) return;
    int r = sd_notify(0, state.c_str());
    // A manager that went away is not a reason to stop tapping; say so once.
    if (r < 0 && !send_failure_logged) {
      send_failure_logged = true;
      log_warning("Cannot notify the service manager", {{"ERROR", std::to_string(-r)}});
    }
  }

  void schedule_watchdog() {
    timer.expires_after(interval);
    timer.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
      if (ec || !self->watchdog_running) return;
      self->send("WATCHDOG=1");
      self->schedule_watchdog();
    });
  }

  boost::asio::steady_timer timer;
  bool enabled = false;
  std::chrono::microseconds interval{0};
  bool watchdog_running = false;  // io thread only
  bool send_failure_logged = false;
  std::mutex status_mutex;
  std::string last_status;
};

ServiceNotifier::ServiceNotifier(boost::asio::io_context& io)
    : impl_(std::make_shared<Impl>(io)) {
  impl_->enabled = std::getenv("NOTIFY_SOCKET") != nullptr;
  std::uint64_t usec = 0;
  // sd_watchdog_enabled checks WATCHDOG_PID against getpid(), so a variable
  // inherited from a parent service does not make us ping on its behalf.
  if (impl_->enabled && sd_watchdog_enabled(0, &usec) > 0 && usec > 0) {
    impl_->interval = std::chrono::microseconds(usec / 2);
  }
}

ServiceNotifier::~ServiceNotifier() { stop_watchdog(); }

bool ServiceNotifier::enabled() const { return impl_->enabled; }

void ServiceNotifier::ready() { impl_->send("READY=1"); }

void ServiceNotifier::reloading() {
  impl_->send("RELOADING=1\nMONOTONIC_USEC=" + std::to_string(monotonic_usec()));
}

void ServiceNotifier::stopping() { impl_->send("STOPPING=1"); }

void ServiceNotifier::status(std::string_view text) {
  if (!impl_->enabled) return;
  std::string line(text);
  // The protocol is newline-separated assignments: a newline would start a new one.
  for (char& c : line) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  {
    std::lock_guard lock(impl_->status_mutex);
    if (line == impl_->last_status) return;
    impl_->last_status = line;
  }
  impl_->send("STATUS=" + line);
}

void ServiceNotifier::extend_timeout(std::chrono::microseconds more) {
  impl_->send("EXTEND_TIMEOUT_USEC=" + std::to_string(more.count()));
}

void ServiceNotifier::start_watchdog() {
  if (impl_->interval.count() <= 0 || impl_->watchdog_running) return;
  impl_->watchdog_running = true;
  impl_->send("WATCHDOG=1");
  impl_->schedule_watchdog();
}

void ServiceNotifier::stop_watchdog() {
  if (!impl_->watchdog_running) return;
  impl_->watchdog_running = false;
  impl_->timer.cancel();
}

std::chrono::microseconds ServiceNotifier::watchdog_interval() const { return impl_->interval; }

}  // namespace deltatap
