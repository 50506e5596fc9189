// WebSocketClient: the daemon's one connection to the backend's broadcast
// (spec/wire-formats.md, "Connecting"). It keeps a single connection up for as
// long as it runs: resolve, TCP connect, TLS handshake (wss://), WebSocket
// upgrade with the token as subprotocol "bearer.<token>", then a read loop that
// is always pending, so pings are answered even while frames are being handled.
//
// Every frame is handed to the events synchronously, on the io_context thread;
// the next read starts as soon as the callback returns, so a callback must not
// wait on anything (the backend cuts off a reader that falls ~1 MB behind).
//
// Every drop and every failed attempt is reported once through on_disconnected
// and followed by a reconnect after a delay:
//  - exponential backoff with full jitter: the n-th consecutive failure waits a
//    uniformly drawn time between backoff_initial and
//    min(backoff_max, backoff_initial * 2^(n-1));
//  - the count starts again after a connection that stayed up for at least
//    2 * backoff_max (the default 30 s maximum makes that one minute), so a
//    server that accepts and then drops at once is not hammered;
//  - an upgrade refused with 401 or 403 waits backoff_max: retrying a wrong
//    token sooner cannot help. It is logged as an authentication failure once
//    per change (a new status, or after a successful connection), not at every
//    attempt.
//
// Timeouts: resolve, connect, TLS and upgrade together get connect_timeout. Once
// open, a keep-alive ping goes out every idle_timeout / 2, and the connection is
// dropped when nothing at all (frame, ping or pong) arrived in the half period
// after a ping: a server that went silent is noticed between idle_timeout / 2 and
// idle_timeout after its last byte, although TCP still looks fine. A quiet server
// that answers the pings stays connected.
//
// A message longer than max_message_bytes is refused from its frame header
// (close 1009), reported through on_oversized, and the connection re-established.
//
// The token, header values and the URL's query never appear in logs; the URL
// handed to on_connected is the same redacted form.
//
// Threading: construct, call and destroy the client on the io_context thread (or
// while the io_context is not running). connected() and reconnects() may be read
// from any thread. Callbacks must not destroy the client: stop() it and destroy
// it from the done callback or later.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "stream/stream_options.h"
#include "base/result.h"
#include "base/timestamp.h"

namespace boost::asio {
class io_context;
}

namespace deltatap {

// Why a connection ended or an attempt failed. Fields that do not apply stay
// at their zero value.
struct Disconnect {
  int close_code = 0;      // from the close frame (ours or the server's)
  std::string reason;      // the close frame's reason
  std::string error;       // what went wrong, "<step>: <message>"
  int http_status = 0;     // the upgrade's response status when it was refused
};

struct StreamEvents {  // all called on the io_context thread
  std::function<void(const std::string& url)> on_connected;
  std::function<void(std::string_view text, TimePoint received)> on_text;   // one whole text frame
  std::function<void(std::string_view data, TimePoint received)> on_binary;
  std::function<void(const Disconnect&)> on_disconnected;   // every drop or failed attempt, with the reason
  // A message above max_message_bytes was refused. Beast refuses it from the
  // frame header without reading the payload, so `size` is a lower bound:
  // max_message_bytes + 1.
  std::function<void(std::uint64_t size)> on_oversized;
};

// The backoff's arithmetic (see the top of this file), apart from the clock
// and the random draw, so that it can be checked on its own:
//  - backoff_range: the interval the delay after the n-th consecutive failure
//    (n >= 1) is drawn from, uniformly; backoff_initial counts as at least
//    1 ms and backoff_max as at least that;
//  - refused_backoff: the delay after an upgrade refused with 401 or 403;
//  - backoff_restarts: whether a connection that stayed up `uptime` starts
//    the count of failures again.
struct BackoffRange {
  std::chrono::milliseconds low;
  std::chrono::milliseconds high;
};
BackoffRange backoff_range(const StreamOptions& options, int failures);
std::chrono::milliseconds refused_backoff(const StreamOptions& options);
bool backoff_restarts(const StreamOptions& options, std::chrono::milliseconds uptime);

class WebSocketClient {
 public:
  WebSocketClient(boost::asio::io_context& io, StreamOptions options, StreamEvents events);
  ~WebSocketClient();
  WebSocketClient(const WebSocketClient&) = delete;
  WebSocketClient& operator=(const WebSocketClient&) = delete;

  // Starts connecting; afterwards the client reconnects on its own until stop().
  void start();
  // Normal close (1000) if connected, cancels timers and attempts, then done()
  // runs on the io_context thread. An open connection's end is also reported
  // through on_disconnected (close_code 1000).
  void stop(std::function<void()> done);
  // Takes the new options; when they differ, closes the current connection
  // normally and connects again at once (backoff restarted).
  void reconfigure(const StreamOptions& options);
  // Flow control for a consumer that cannot keep up: after pause_reading(), the
  // frame being handled is the last one read until resume_reading(). Nothing
  // read is dropped; frames wait in the kernel and then at the server, which
  // may close a reader that stays behind (the backend does past ~1 MB). While
  // no read is pending, pings are not answered either. A new connection starts
  // reading only if not paused.
  void pause_reading();
  void resume_reading();
  bool connected() const;
  // Attempts started after the first one.
  std::uint64_t reconnects() const;

 private:
  class Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace deltatap
