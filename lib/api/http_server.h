// HttpApi: the listener of the daemon's HTTP API, Beast on the daemon's
// io_context, the thread that owns the store. It holds the sockets and none of
// the meaning: each request is handed to an ApiHandler (api/api_handler.h) and
// its reply written back.
//
// What the listener guarantees, whatever the handler does:
//  - connections are bounded: past max_connections a request gets 503, and past
//    twice that a connection is closed at once;
//  - each request is bounded in header and body bytes (413) and in time
//    (request_timeout: slow clients are dropped, and so are idle keep-alive
//    connections);
//  - each write must drain within write_timeout;
//  - a streamed reply is written piece by piece, the next piece asked for only
//    once the previous one is written: chunked for HTTP/1.1, ended by closing
//    the connection for HTTP/1.0;
//  - every response, its own 413s, 400s and 503s included, is counted once in
//    Metrics::http_requests.
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
  std::size_t max_header_bytes = 8 * 1024;
  std::size_t max_body_bytes = 16 * 1024;     // no endpoint takes a body
  // A request (headers and body) must arrive within this, counted from the
  // first byte read; an idle keep-alive connection is closed after it too.
  std::chrono::milliseconds request_timeout{10'000};
  // Each write, including each export chunk, must drain within this.
  std::chrono::milliseconds write_timeout{30'000};
  int max_connections = 64;                   // past it: 503, and twice it: closed at once
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
