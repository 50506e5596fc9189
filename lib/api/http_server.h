// HttpApi: the listener of the daemon's HTTP API, Beast on the daemon's
// io_context, the thread that owns the store. It holds the sockets and none of
// the meaning: each request is handed to an ApiHandler (api/api_handler.h) and
// its reply written back.
//
// What the listener guarantees, whatever the handler does:
//  - connections are bounded: past max_connections a request gets 503, and past
//    twice that a connection is closed at once;
//  - connections are bounded per client address (an IPv6 client by its /64):
//    past max_connections_per_address a new connection is answered 503 at once,
//    without reading it, and closed. Such refusals do not take the slots of
//    max_connections, so idle sockets from one address cannot lock others out
//    (they are bounded on their own: past twice max_connections of them, a
//    connection is closed at once);
//  - each request is bounded in bytes: headers by max_header_bytes, the body by
//    max_body_bytes, and what is read but not yet parsed (a chunk-size line with
//    its extensions, the trailers) by a read buffer of max_header_bytes; past
//    any of them the answer is 413 and the connection is closed, so what one
//    connection can make the server hold is bounded whatever it sends;
//  - each request is bounded in time: its headers must arrive within
//    header_timeout and the whole of it within request_timeout (slow clients
//    are dropped, and idle keep-alive connections after header_timeout);
//  - with a token configured, the token is checked as soon as the headers are
//    in: a request without it is answered 401 before its body is read;
//  - each write must drain within write_timeout;
//  - a streamed reply is written piece by piece, the next piece asked for only
//    once the previous one is written: chunked for HTTP/1.1, ended by closing
//    the connection for HTTP/1.0;
//  - every response, its own 413s, 400s, 401s and 503s included, is counted
//    once in Metrics::http_requests.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "api/api_handler.h"
#include "api/http_options.h"
#include "base/result.h"
#include "storage/store.h"

namespace boost::asio {
class io_context;
}

namespace deltatap {

struct HttpLimits {
  // Request line and headers; also the most the connection's read buffer holds
  // unparsed, which bounds a chunk-size line with its extensions and the trailers.
  std::size_t max_header_bytes = 8 * 1024;
  std::size_t max_body_bytes = 16 * 1024;     // no endpoint takes a body
  // The request line and headers must arrive within this, counted from the
  // first read (the accept, or the end of the previous answer): an idle
  // keep-alive connection is closed after it too.
  std::chrono::milliseconds header_timeout{5'000};
  // The whole request (headers and body) must arrive within this, counted from
  // the same instant.
  std::chrono::milliseconds request_timeout{10'000};
  // Each write, including each export chunk, must drain within this.
  std::chrono::milliseconds write_timeout{30'000};
  int max_connections = 64;                   // past it: 503, and twice it: closed at once
  int max_connections_per_address = 16;       // past it: 503 at once and closed
  int export_page_rows = kMaxQueryLimit;      // rows per export chunk
};

struct HttpServerState;  // the listener's state, shared with its connections

class HttpApi {
 public:
  // `backend` must outlive both this object and the io_context's pending work.
  HttpApi(boost::asio::io_context& io, HttpOptions options, ApiBackend& backend,
          HttpLimits limits = {});
  ~HttpApi();  // stops
  HttpApi(const HttpApi&) = delete;
  HttpApi& operator=(const HttpApi&) = delete;

  // Binds and starts accepting; call from the io thread (or before it runs).
  // options.listen is "IP:PORT" or "[IPv6]:PORT"; port 0 picks a free one.
  // On a listener beyond loopback without options.token, POST endpoints are
  // refused (ApiHandler::Options::loopback_listener).
  Status start();
  // Stops accepting and closes every connection; idempotent.
  void stop();
  // "IP:PORT" actually bound (the real port when 0 was asked), "" before start.
  std::string bound_address() const;

 private:
  std::shared_ptr<HttpServerState> state_;
};

}  // namespace deltatap
