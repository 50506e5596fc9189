// ServiceNotifier: tells the service manager how deltatapd is doing, through the
// sd_notify datagram protocol (libsystemd). READY=1 once the daemon can answer
// (store loaded, HTTP listener up), STATUS= for humans, RELOADING=1 around a
// configuration reload, STOPPING=1 at shutdown, and WATCHDOG=1 at half of
// WATCHDOG_USEC from the io thread, so a stuck event loop gets the unit restarted.
//
// Without NOTIFY_SOCKET (not started by systemd) every call is a no-op. The
// watchdog runs only when WATCHDOG_USEC is set and WATCHDOG_PID, if present,
// names this process. ready(), reloading(), stopping() and status() may be
// called from any thread; start_watchdog() and stop_watchdog() belong to the
// io thread, and the notifier must be destroyed before its io_context.
#pragma once

#include <chrono>
#include <memory>
#include <string_view>

namespace boost::asio {
class io_context;
}  // namespace boost::asio

namespace deltatap {

class ServiceNotifier {
 public:
  explicit ServiceNotifier(boost::asio::io_context& io);
  ~ServiceNotifier();
  ServiceNotifier(const ServiceNotifier&) = delete;
  ServiceNotifier& operator=(const ServiceNotifier&) = delete;

  // True when NOTIFY_SOCKET was set at construction.
  bool enabled() const;

  void ready();       // READY=1 (also ends a reload)
  void reloading();   // RELOADING=1 with MONOTONIC_USEC=, then call ready() when done
  void stopping();    // STOPPING=1
  // STATUS=<text>, one line; repeating the text last sent sends nothing.
  void status(std::string_view text);
  // EXTEND_TIMEOUT_USEC=: asks for more time while starting or stopping takes long
  // (loading a big store, a final snapshot on a slow disk).
  void extend_timeout(std::chrono::microseconds more);

  // Sends WATCHDOG=1 now and then every watchdog_interval() from a steady_timer.
  // Does nothing when the watchdog is off for this process.
  void start_watchdog();
  void stop_watchdog();
  // Half of WATCHDOG_USEC, or zero when the watchdog is off for this process.
  std::chrono::microseconds watchdog_interval() const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;  // shared with pending timer handlers
};

}  // namespace deltatap
