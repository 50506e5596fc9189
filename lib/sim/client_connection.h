// client_connection: one upgraded WebSocket client of the simulator (class
// WsSession): its queue of broadcast frames, its pings and its close, as the
// real backend treats a consumer.
//
// Pings: every --ping-interval; a client that has not answered the previous
// ping by the next one is terminated. What the client sends is read and
// ignored. Backpressure is the server's call (it reads backlog() and calls
// close() with 4002); this side keeps the kernel's share of a backlog small
// (TCP_NOTSENT_LOWAT) so that what a stalled client owes shows in the app
// queue, where the server can see it.
//
// Ownership: held by std::shared_ptr, by the server's lists and by its own
// pending operations, so it lives until the last of those completes. It
// keeps a reference to the Server, which must outlive it, and calls back into
// it (on_open, on_closing, on_write_done, on_finished), sometimes before one
// of its own methods returns: see each method.
//
// Threads: the server's io thread only, like the server.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <string_view>

#include <boost/asio/steady_timer.hpp>

#include "sim/frames.h"
#include "sim/net.h"

namespace deltatap::sim {

class Server;

// Bytes owed to one client: still in the app, and in the kernel's send queue
// (sent but not acknowledged, or not sent yet).
struct Backlog {
  std::uint64_t app = 0;
  std::uint64_t kernel = 0;
  std::uint64_t kernel_unsent = 0;  // part of `kernel`
  std::uint64_t total() const { return app + kernel; }
};

// One WebSocket client: its queue of frames, its pings, its close.
class WsSession : public std::enable_shared_from_this<WsSession> {
 public:
  // `protocol` is the subprotocol to echo in the answer ("" for none);
  // `remote` names the client in the logs.
  WsSession(Server& server, tcp::socket socket, std::string remote, std::string protocol);

  // Answers the upgrade `request` (already read, already authenticated) and
  // starts reading, which only drains what the client says, and pinging. On
  // success calls server.on_open(); if the handshake fails, or close() came
  // first, server.on_finished(). Call once.
  void start(http::request<http::string_body> request);
  // Queues a frame; the server settles it through on_write_done(), exactly
  // once per send(): ok when the write completed, not ok when it failed or
  // the frame was dropped by a close. Never from inside send() itself.
  void send(std::shared_ptr<Frame> frame);
  // A close handshake; the socket is closed for good after `kill_after`.
  // Queued frames are dropped (reported before close() returns); the one
  // being written is reported when its write ends. No-op once closing; before
  // the handshake has finished it just closes the socket.
  void close(websocket::close_reason reason, std::chrono::milliseconds kill_after);
  // Drops the connection without a close frame, as the backend terminates.
  // Queued frames are dropped as with close().
  void terminate(std::string_view why);

  // Nothing queued and nothing being written.
  bool idle() const { return !writing_ && queue_.empty(); }
  bool is_open() const { return open_ && !closing_; }
  // What the client has yet to take. The kernel figures come from ioctls
  // and are 0 when those fail. The unsent part costs one more system call:
  // only when `with_unsent`.
  Backlog backlog(bool with_unsent = false);
  // "ADDR:PORT" of the client, for the logs.
  const std::string& remote() const { return remote_; }

 private:
  void on_accept(beast::error_code ec);
  void read();
  void on_read(beast::error_code ec);
  void write_next();
  void on_write(beast::error_code ec);
  void arm_ping();
  void on_ping_timer(beast::error_code ec);
  void drop_queue();
  void force_close();
  void finish();

  Server& server_;
  websocket::stream<beast::tcp_stream> ws_;
  beast::flat_buffer buffer_;
  http::request<http::string_body> request_;
  asio::steady_timer ping_timer_;
  asio::steady_timer kill_timer_;
  std::string remote_;
  std::string protocol_;
  std::deque<std::shared_ptr<Frame>> queue_;
  std::uint64_t queued_bytes_ = 0;
  std::shared_ptr<Frame> writing_;
  std::uint64_t pings_ = 0;
  bool ping_outstanding_ = false;
  bool open_ = false;
  bool closing_ = false;
  bool we_closed_ = false;
  bool finished_ = false;
};

}  // namespace deltatap::sim
