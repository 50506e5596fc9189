// http_upgrade: a new TCP connection of the simulator up to its WebSocket
// upgrade (class HttpSession). Authentication happens here, as the backend
// does it: with --token, the client must offer the subprotocol
// "bearer.TOKEN". The answers:
//   - a bad or incomplete request, or none within 10 s: the socket is closed
//     without an answer;
//   - not a WebSocket upgrade: 426;
//   - a token is required and no subprotocol is offered at all: 426;
//   - subprotocols offered, none of them the right bearer: 401;
//   - otherwise the upgrade goes on in a new WsSession (client_connection.h),
//     announced through server.on_handshake_start(), echoing the matching
//     bearer subprotocol; without a token, the first "bearer.*" offered, else
//     the first offered, else none.
// Any path is accepted, as the backend does; one other than --path is logged.
//
// Ownership: held by std::shared_ptr, by its own pending operations; the
// server keeps only a std::weak_ptr so that it can abort() it on stop. It
// owns the socket until it hands it to the WsSession. The Server must outlive
// it.
//
// Threads: the server's io thread only.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "sim/net.h"

namespace deltatap::sim {

class Server;

// The HTTP request before the upgrade: authentication happens here.
class HttpSession : public std::enable_shared_from_this<HttpSession> {
 public:
  HttpSession(Server& server, tcp::socket socket);
  // Reads one request, allowing 10 s, and answers it as described above.
  // Call once.
  void start();
  // Closes the socket; whatever is pending fails and the object goes away.
  // Safe to call more than once.
  void abort();

 private:
  void on_read(beast::error_code ec);
  void reject(http::status status, std::string_view why);

  Server& server_;
  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  http::request<http::string_body> request_;
  std::string remote_;
};

}  // namespace deltatap::sim
