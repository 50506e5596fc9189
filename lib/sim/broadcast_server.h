// broadcast_server: the simulated backend itself (class Server). It owns the
// io_context and everything on it: the listener, the World it polls, the
// clients (http_upgrade.h before their upgrade, client_connection.h after),
// the --record file and the counts behind the summary line. It decides when
// the World is polled (the pace, simulator.h), what goes in each frame, who
// gets it and who is cut off for backpressure, and it settles every frame
// once all of its connections are done with it ("Counting" in simulator.h).
// It also plays the backend's restarts (--restart-every) and, with --lossy,
// polls the World with nobody listening (simulator.h).
//
// Threads: construct it, open() it and read port() on one thread before
// run(); run() serves on the thread that calls it, and everything else (stop()
// and the on_* callbacks the connections make) runs on that thread, inside
// its handlers. post_stop() is the one call that is safe from any thread.
//
// The on_* callbacks may in turn send to or close connections, including the
// one calling back, before they return.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>

#include "base/address.h"
#include "base/result.h"
#include "sim/frames.h"
#include "sim/net.h"
#include "sim/session_model.h"
#include "sim/simulator.h"

namespace deltatap::sim {

class HttpSession;
class WsSession;

using SteadyClock = std::chrono::steady_clock;

class Server {
 public:
  // Does not own `summary_out`, which must stay open until run() returns.
  // `start_ms` starts a simulated clock; none follows the wall clock.
  // Nothing is opened yet: see open().
  Server(SimulatorOptions options, std::FILE* summary_out, std::optional<std::int64_t> start_ms);
  // Closes the --record file.
  ~Server();

  // Opens the --record file for appending (when set), then binds and listens
  // on `where`, so port() is known at once. On error, says which of the two
  // failed and why; the Server is then only fit to be destroyed. Call once.
  Status open(const ListenAddress& where);

  // The port listened on; 0 before open() or after stop().
  int port() const;

  // Accepts and serves until SIGINT, SIGTERM or stop(), then until every
  // client is gone. Prints the summary line to `summary_out` unless --count
  // was reached (which printed it already). Returns the exit code: 0.
  int run();

  // stop(), from any thread: posted to the io thread.
  void post_stop();

  // Stops accepting, aborts the upgrades in progress and closes every client
  // with a normal close (the socket dropped 2 s later if the client does not
  // answer). run() returns once they are gone. Idempotent.
  void stop();

  const SimulatorOptions& options() const { return options_; }
  asio::io_context& io() { return io_; }
  // The sessions upstream, as they are now (for GET /api/sessions).
  const World& world() const { return world_; }

  // A connection past authentication, in its WebSocket handshake: kept alive
  // here until on_finished().
  void on_handshake_start(const std::shared_ptr<WsSession>& session);
  // Its handshake completed: it receives broadcasts from now on, starting
  // with the first poll in the batch formats.
  void on_open(const std::shared_ptr<WsSession>& session, std::string_view protocol);
  // No more broadcasts to it. May come more than once.
  void on_closing(const WsSession& session);
  // It has ended: the server lets go of it.
  void on_finished(const WsSession& session);
  // One connection is done with `frame`: written (`ok`) or not. Once every
  // connection it was handed to is, the frame is settled.
  void on_write_done(const std::shared_ptr<Frame>& frame, bool ok);

 private:
  enum class Kind { a, b };
  struct Plan {
    Kind kind = Kind::b;
    int size = 1;
  };

  std::string_view format_name() const;
  void accept();
  std::uint64_t budget() const;
  std::uint64_t counted() const;
  void send_first_poll(const std::shared_ptr<WsSession>& session);
  void reannounce();
  void broadcast(const std::shared_ptr<Frame>& frame);
  void arm_restart();
  void restart();
  Plan plan_frame();
  void maybe_generate();
  void schedule_pace(SteadyClock::time_point when);
  void emit(Kind kind, int n);
  void check_backpressure();
  void settle(Frame& frame);
  void check_count_done();
  void print_summary();

  SimulatorOptions options_;
  std::FILE* summary_out_;
  std::FILE* record_ = nullptr;
  asio::io_context io_;
  tcp::acceptor acceptor_;
  asio::steady_timer accept_retry_;
  asio::signal_set signals_;
  asio::steady_timer pace_timer_;
  asio::steady_timer restart_timer_;
  World world_;
  std::string listening_;

  std::vector<std::weak_ptr<HttpSession>> handshakes_;
  std::vector<std::shared_ptr<WsSession>> sessions_;  // upgrading or upgraded, alive
  std::vector<std::shared_ptr<WsSession>> open_;      // receiving broadcasts, oldest first

  std::optional<Plan> planned_;
  bool pace_scheduled_ = false;
  SteadyClock::time_point next_emit_{};
  bool stopping_ = false;
  bool summary_printed_ = false;
  std::uint64_t sent_ = 0;
  std::uint64_t reserved_ = 0;  // in frames not yet settled
  std::uint64_t by_type_[3] = {0, 0, 0};
  std::uint64_t frames_ = 0;
  std::uint64_t connections_ = 0;
  // The backend's diff cache is empty (it started or restarted): the next
  // poll with a client connected re-announces every live session.
  bool reannounce_pending_ = false;
  std::uint64_t restarts_ = 0;
  std::uint64_t restart_disconnects_ = 0;  // clients closed by restarts
  std::uint64_t reannounced_ = 0;          // first-poll deltas delivered, part of sent_
  std::uint64_t unseen_ = 0;               // changes upstream that reached no client
};

}  // namespace deltatap::sim
