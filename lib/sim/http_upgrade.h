// http_upgrade: a new TCP connection of the simulator up to its WebSocket
// upgrade (class HttpSession), or through its one plain HTTP request.
// Authentication happens here, as the backend does it: with --token, the
// client must offer the subprotocol "bearer.TOKEN". The answers:
//   - a bad or incomplete request, or none within 10 s: the socket is closed
//     without an answer;
//   - a request line and headers over kMaxHeaderBytes: 431; a body over
//     kMaxBodyBytes: 413 (JSON errors);
//   - not a WebSocket upgrade: http_api.h answers (GET /api/sessions, else
//     404), then the socket is closed: one request per connection;
//   - a token is required and no subprotocol is offered at all: 426;
//   - subprotocols offered, none of them the right bearer: 401;
//   - otherwise the upgrade goes on in a new WsSession (client_connection.h),
//     announced through server.on_handshake_start(), echoing the matching
//     bearer subprotocol; without a token, the first "bearer.*" offered, else
//     the first offered, else none.
// Any path is accepted, as the backend does; one other than --path is logged.
// Every answer that is not an upgrade ends the connection: the socket is shut
// for sending, what the client still sends is read and dropped for a moment
// (linger()), then it is closed.
//
// Ownership: held by std::shared_ptr, by its own pending operations; the
// server keeps only a std::weak_ptr so that it can abort() it on stop or on
// a simulated restart. It owns the socket until it hands it to the WsSession.
// The Server must outlive it.
//
// Threads: the server's io thread only.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "sim/net.h"

namespace deltatap::sim {

class Server;

// What one request may hold. Beast's default for headers; an upgrade or a GET
// has no body, so a small one is plenty.
inline constexpr std::uint32_t kMaxHeaderBytes = 8 * 1024;
inline constexpr std::uint64_t kMaxBodyBytes = 16 * 1024;
// After an answer, what is still read (and dropped) before the socket is
// closed, so that the close does not reset the connection (linger()).
inline constexpr std::uint64_t kMaxLingerBytes = 64 * 1024;
inline constexpr std::chrono::milliseconds kLinger{2000};

// The HTTP request before the upgrade: authentication happens here.
class HttpSession : public std::enable_shared_from_this<HttpSession> {
 public:
  HttpSession(Server& server, tcp::socket socket);
  // Reads one request, allowing 10 s and the sizes above, and answers it as
  // described above.
  // Call once.
  void start();
  // Closes the socket; whatever is pending fails and the object goes away.
  // Safe to call more than once.
  void abort();

 private:
  void on_read(beast::error_code ec);
  void reject(http::status status, std::string_view why);
  // Writes `response`, then closes the connection (after linger()).
  void answer(http::response<http::string_body> response);
  void linger();

  Server& server_;
  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  // A parser reads one message; it is made in start().
  std::optional<http::request_parser<http::string_body>> parser_;
  http::request<http::string_body> request_;
  std::string remote_;
  std::array<char, 4096> discard_;  // what the client sends after its answer
  std::uint64_t lingered_ = 0;
};

}  // namespace deltatap::sim
