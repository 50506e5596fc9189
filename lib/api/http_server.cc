#include "api/http_server.h"

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <algorithm>
#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "api/replies.h"
#include "base/address.h"
#include "base/json_text.h"
#include "base/logging.h"

namespace deltatap {

namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;

// How long, and how many bytes, a connection is drained after its last answer
// (HttpConnection::shutdown_send).
constexpr std::chrono::seconds kDrainTime{2};
constexpr std::size_t kDrainBytes = 1024 * 1024;

}  // namespace

class HttpConnection;

struct HttpServerState {
  HttpServerState(net::io_context& io, HttpOptions options, ApiBackend& backend, HttpLimits limits)
      : io(io),
        options(std::move(options)),
        backend(backend),
        limits(limits),
        acceptor(io),
        retry_timer(io) {}

  net::io_context& io;
  HttpOptions options;
  ApiBackend& backend;
  HttpLimits limits;
  tcp::acceptor acceptor;
  net::steady_timer retry_timer;
  std::optional<ApiHandler> handler;  // made by start(), once it knows the bound address
  std::string bound;
  bool stopped = false;
  int connections = 0;  // admitted: served or answered 503 for max_connections
  int refusing = 0;     // answered 503 for max_connections_per_address
  // Admitted connections by client address (address_key below); an entry goes
  // when its last connection does. `warned`: the limit was logged once already.
  struct PerAddress {
    int open = 0;
    bool warned = false;
  };
  std::map<std::string, PerAddress> per_address;
  std::uint64_t next_connection = 0;
  // Weak: a connection lives as long as its pending operations; stop() only
  // needs to reach the ones still alive.
  std::map<std::uint64_t, std::weak_ptr<HttpConnection>> live;
};

// One connection, as in Beast's advanced server: its asynchronous steps follow
// in order below, each completion handler right after the call that starts it.
// Deadlines live on the stream, set before each read or write. close() is the
// one way a connection ends early: any error, a timeout, or stop().
//
// A request is read in two steps: its headers (async_read_header, within
// header_timeout), which decide whether it is answered at once (503 when
// overloaded, 401 without the token), then its body (within request_timeout of
// the first read). The read buffer's maximum size bounds what is held unparsed:
// a chunk-size line with endless extensions, or endless trailers, overflow it
// and are answered 413 instead of growing it.
class HttpConnection : public std::enable_shared_from_this<HttpConnection> {
 public:
  enum class Admission {
    served,      // within the limits
    overloaded,  // past max_connections: the request is answered 503
    refused,     // past max_connections_per_address: 503 at once, nothing read
  };

  HttpConnection(std::shared_ptr<HttpServerState> state, tcp::socket socket, Admission admission,
                 std::string address)
      : state_(std::move(state)),
        stream_(std::move(socket)),
        admission_(admission),
        address_(std::move(address)),
        buffer_(state_->limits.max_header_bytes) {
    if (admission_ == Admission::refused) {
      ++state_->refusing;
    } else {
      ++state_->connections;
      ++state_->per_address[address_].open;
    }
    id_ = state_->next_connection++;
  }

  ~HttpConnection() {
    if (admission_ == Admission::refused) {
      --state_->refusing;
    } else {
      --state_->connections;
      auto entry = state_->per_address.find(address_);
      if (entry != state_->per_address.end() && --entry->second.open <= 0) {
        state_->per_address.erase(entry);
      }
    }
    state_->live.erase(id_);
  }

  std::uint64_t id() const { return id_; }

  void start() {
    if (admission_ != Admission::refused) return read_request();
    // Answered before the client says anything: it may hold only so many
    // connections, and this one would wait on the others.
    keep_alive_ = false;
    send(error_reply(503, "too many connections",
                     "the API serves at most " +
                         std::to_string(std::max(1, state_->limits.max_connections_per_address)) +
                         " connections from one client address at once; close idle ones or "
                         "retry later"));
  }

  void close() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream_.close();
  }

 private:
  void read_request() {
    const auto& limits = state_->limits;
    parser_.emplace();
    parser_->header_limit(static_cast<std::uint32_t>(limits.max_header_bytes));
    parser_->body_limit(limits.max_body_bytes);
    request_deadline_ = std::chrono::steady_clock::now() + limits.request_timeout;
    stream_.expires_after(std::min(limits.header_timeout, limits.request_timeout));
    http::async_read_header(stream_, buffer_, *parser_,
                            beast::bind_front_handler(&HttpConnection::on_header,
                                                      shared_from_this()));
  }

  void on_header(beast::error_code ec, std::size_t) {
    if (state_->stopped) return;
    if (ec) return read_failed(ec);
    auto& request = parser_->get();
    version_ = request.version();
    keep_alive_ = request.keep_alive();
    method_ = std::string(request.method_string());
    target_ = std::string(request.target());
    // Answered before the body, which is then never read: the connection
    // cannot carry another request.
    if (admission_ == Admission::overloaded) {
      keep_alive_ = false;
      return send(error_reply(503, "too many connections",
                              "the API serves at most " +
                                  std::to_string(state_->limits.max_connections) +
                                  " connections at once; retry later"));
    }
    if (auto refused = state_->handler->refuse_unauthorised(target_,
                                                              request[http::field::authorization])) {
      keep_alive_ = false;
      return send(std::move(*refused));
    }
    if (parser_->is_done()) return dispatch();
    stream_.expires_at(request_deadline_);
    http::async_read(stream_, buffer_, *parser_,
                     beast::bind_front_handler(&HttpConnection::on_body, shared_from_this()));
  }

  void on_body(beast::error_code ec, std::size_t) {
    if (state_->stopped) return;
    if (ec) return read_failed(ec);
    dispatch();
  }

  // A request that could not be read: too large (413), malformed (400), or
  // the client gone or too slow (closed without an answer: a timeout has
  // closed the socket already).
  void read_failed(beast::error_code ec) {
    const auto& limits = state_->limits;
    bool header_done = parser_->is_header_done();
    std::string too_large;
    if (ec == http::error::header_limit ||
        (ec == http::error::buffer_overflow && !header_done)) {
      too_large = "request headers exceed " + std::to_string(limits.max_header_bytes) + " bytes";
    } else if (ec == http::error::body_limit) {
      too_large = "request body exceeds " + std::to_string(limits.max_body_bytes) +
                  " bytes (no endpoint takes a body)";
    } else if (ec == http::error::buffer_overflow) {
      too_large = "a chunk-size line with its extensions, or the trailers, exceed " +
                  std::to_string(limits.max_header_bytes) + " bytes";
    }
    if (!header_done) version_ = 11;
    if (!too_large.empty()) {
      keep_alive_ = false;
      return send(error_reply(413, "payload too large", too_large));
    }
    if (ec == http::error::end_of_stream || ec == beast::error::timeout ||
        ec == net::error::operation_aborted || ec == net::error::connection_reset ||
        ec == net::error::eof) {
      return close();
    }
    // Anything else the parser objects to is the client's malformed request.
    if (ec.category() == http::make_error_code(http::error::bad_method).category()) {
      keep_alive_ = false;
      return send(error_reply(400, "bad request", "malformed HTTP request: " + ec.message()));
    }
    close();
  }

  void dispatch() {
    stream_.expires_never();
    ApiRequest api_request{method_, target_,
                           std::string(parser_->get()[http::field::authorization]),
                           std::string(parser_->get()[http::field::if_none_match])};
    // The reply may come at once or later (snapshot); posting keeps the order
    // of events the same either way and never re-enters this function.
    state_->handler->handle(api_request, [self = shared_from_this()](ApiReply reply) {
      net::post(self->stream_.get_executor(), [self, reply = std::move(reply)]() mutable {
        self->send(std::move(reply));
      });
    });
  }

  void send(ApiReply reply) {
    if (state_->stopped) return;
    count(reply.status);
    if (reply.next_chunk) return start_stream(std::move(reply));
    response_ = {};
    set_common_fields(response_, reply);
    response_.body() = std::move(reply.body);
    response_.keep_alive(keep_alive_);
    response_.prepare_payload();
    stream_.expires_after(state_->limits.write_timeout);
    http::async_write(stream_, response_,
                      beast::bind_front_handler(&HttpConnection::on_written, shared_from_this()));
  }

  void on_written(beast::error_code ec, std::size_t) {
    if (ec || state_->stopped) return close();
    if (!keep_alive_) return shutdown_send();
    read_request();
  }

  // Streaming: HTTP/1.1 gets chunked transfer; HTTP/1.0 gets the raw body
  // ended by closing the connection.
  void start_stream(ApiReply reply) {
    chunked_ = version_ >= 11;
    if (!chunked_) keep_alive_ = false;
    next_chunk_ = std::move(reply.next_chunk);
    stream_header_ = {};
    set_common_fields(stream_header_, reply);
    stream_header_.keep_alive(keep_alive_);
    if (chunked_) stream_header_.chunked(true);
    serializer_.emplace(stream_header_);
    stream_.expires_after(state_->limits.write_timeout);
    http::async_write_header(stream_, *serializer_,
                             beast::bind_front_handler(&HttpConnection::on_chunk_written,
                                                       shared_from_this()));
  }

  void on_chunk_written(beast::error_code ec, std::size_t) {
    if (ec || state_->stopped) return close();
    auto piece = next_chunk_();
    if (!piece.ok()) {
      log_error("export failed; closing the connection", {{"ERROR", piece.error()}});
      return close();
    }
    if (!*piece) {
      next_chunk_ = nullptr;
      serializer_.reset();
      if (!chunked_) return shutdown_send();
      stream_.expires_after(state_->limits.write_timeout);
      net::async_write(stream_, http::make_chunk_last(),
                       beast::bind_front_handler(&HttpConnection::on_written, shared_from_this()));
      return;
    }
    chunk_ = std::move(**piece);
    if (chunk_.empty()) {
      // A zero-length chunk would end the body; look at the next piece instead.
      net::post(stream_.get_executor(), [self = shared_from_this()] {
        self->on_chunk_written({}, 0);
      });
      return;
    }
    stream_.expires_after(state_->limits.write_timeout);
    auto done = beast::bind_front_handler(&HttpConnection::on_chunk_written, shared_from_this());
    if (chunked_) {
      net::async_write(stream_, http::make_chunk(net::buffer(chunk_)), std::move(done));
    } else {
      net::async_write(stream_, net::buffer(chunk_), std::move(done));
    }
  }

  // Half-closes, then reads and discards until the peer closes too, for at most
  // kDrainTime and kDrainBytes: closing with unread input would send a reset,
  // which can destroy the answer before the client has read it. Both bounds
  // are checked here, as the stream's deadline never fires while data keeps
  // coming (each read completes first), so a client that never stops sending
  // would otherwise keep the connection, and the CPU, forever.
  void shutdown_send() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    drain_deadline_ = std::chrono::steady_clock::now() + kDrainTime;
    drained_ = 0;
    stream_.expires_at(drain_deadline_);
    drain();
  }

  void drain() {
    stream_.async_read_some(net::buffer(drain_), [self = shared_from_this()](beast::error_code ec,
                                                                            std::size_t n) {
      if (ec || self->state_->stopped) return self->close();
      self->drained_ += n;
      if (self->drained_ >= kDrainBytes ||
          std::chrono::steady_clock::now() >= self->drain_deadline_) {
        return self->close();
      }
      self->drain();
    });
  }

  // Every response passes here once, whoever made it: the one place to count it.
  void count(int status) {
    state_->backend.metrics().http_requests(status).inc();
    log_debug("HTTP request", {{"METHOD", method_}, {"TARGET", target_},
                               {"STATUS", std::to_string(status)}});
  }

  template <typename Message>
  void set_common_fields(Message& message, const ApiReply& reply) {
    message.version(version_);
    message.result(static_cast<http::status>(reply.status));
    message.set(http::field::server, "deltatap/" DELTATAP_VERSION);
    message.set(http::field::content_type, reply.content_type);
    message.set(http::field::cache_control, "no-store");
    message.set("X-Content-Type-Options", "nosniff");
    for (const auto& [name, value] : reply.headers) message.set(name, value);
  }

  std::shared_ptr<HttpServerState> state_;
  beast::tcp_stream stream_;
  Admission admission_;
  std::string address_;  // address_key() of the client
  std::uint64_t id_ = 0;
  // Bounded: what a client sends ahead of the parser cannot grow it.
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::chrono::steady_clock::time_point request_deadline_;
  unsigned version_ = 11;
  bool keep_alive_ = false;
  std::string method_, target_;
  http::response<http::string_body> response_;
  http::response<http::empty_body> stream_header_;
  std::optional<http::response_serializer<http::empty_body>> serializer_;
  std::function<Result<std::optional<std::string>>()> next_chunk_;
  bool chunked_ = true;
  std::string chunk_;
  char drain_[512];
  std::size_t drained_ = 0;
  std::chrono::steady_clock::time_point drain_deadline_;
};

namespace {

// ---------------------------------------------------------------------------
// The listener

void on_accept(const std::shared_ptr<HttpServerState>& state, beast::error_code ec,
               tcp::socket socket);

void accept_next(const std::shared_ptr<HttpServerState>& state) {
  state->acceptor.async_accept([state](beast::error_code ec, tcp::socket socket) {
    on_accept(state, ec, std::move(socket));
  });
}

// The key connections are counted under per client: the address, an IPv6 one
// by its /64 (what one host or one customer is usually given whole), an
// IPv4-mapped IPv6 address as the IPv4 address it is.
std::string address_key(const net::ip::address& address) {
  if (!address.is_v6()) return address.to_string();
  auto v6 = address.to_v6();
  if (v6.is_v4_mapped()) return net::ip::make_address_v4(net::ip::v4_mapped, v6).to_string();
  auto bytes = v6.to_bytes();
  std::fill(bytes.begin() + 8, bytes.end(), static_cast<unsigned char>(0));
  return net::ip::address_v6(bytes).to_string() + "/64";
}

void on_accept(const std::shared_ptr<HttpServerState>& state, beast::error_code ec,
               tcp::socket socket) {
  if (state->stopped || ec == net::error::operation_aborted) return;
  if (ec) {
    // Usually descriptors running out: pause rather than spin on the error.
    log_warning("HTTP accept failed", {{"ERROR", ec.message()}});
    state->retry_timer.expires_after(std::chrono::milliseconds(100));
    state->retry_timer.async_wait([state](beast::error_code wait_error) {
      if (!wait_error) accept_next(state);
    });
    return;
  }
  using Admission = HttpConnection::Admission;
  int max = std::max(1, state->limits.max_connections);
  int max_per_address = std::max(1, state->limits.max_connections_per_address);
  beast::error_code peer_error;
  auto peer = socket.remote_endpoint(peer_error);
  std::optional<Admission> admission;
  std::string address;
  if (!peer_error) {  // else the client has gone already
    address = address_key(peer.address());
    auto from_there = state->per_address.find(address);
    if (from_there != state->per_address.end() && from_there->second.open >= max_per_address) {
      // Refusals hold no slot of max_connections; they are bounded on their own.
      if (state->refusing < 2 * max) admission = Admission::refused;
      if (!from_there->second.warned) {
        from_there->second.warned = true;
        log_warning("HTTP connection limit per client address reached; its further connections "
                    "are refused until some close",
                    {{"ADDRESS", address}, {"LIMIT", std::to_string(max_per_address)}});
      }
    } else if (state->connections < 2 * max) {
      // Accepted even when over the limit, so that the client reads a 503 with
      // the reason instead of waiting in the backlog.
      admission = state->connections >= max ? Admission::overloaded : Admission::served;
      if (*admission == Admission::overloaded) {
        log_warning("HTTP connection limit reached", {{"LIMIT", std::to_string(max)}});
      }
    }
  }
  if (admission) {
    auto connection =
        std::make_shared<HttpConnection>(state, std::move(socket), *admission, std::move(address));
    state->live.emplace(connection->id(), connection);
    connection->start();
  } else {
    beast::error_code ignored;
    socket.close(ignored);
  }
  accept_next(state);
}

std::string format_endpoint(const tcp::endpoint& endpoint) {
  auto address = endpoint.address();
  std::string host = address.to_string();
  if (address.is_v6()) host = "[" + host + "]";
  return host + ":" + std::to_string(endpoint.port());
}

// base/address.h's "IP:PORT" or "[IPv6]:PORT"; port 0 picks a free one.
Result<tcp::endpoint> listen_endpoint(const std::string& listen) {
  auto parsed = parse_listen_address(listen);
  if (!parsed.ok()) return Error{"HTTP API: " + parsed.error()};
  beast::error_code error;
  auto address = net::ip::make_address(parsed->host, error);
  if (error) return Error{"HTTP API: " + json_quoted(listen) + ": " + error.message()};
  return tcp::endpoint(address, parsed->port);
}

}  // namespace

HttpApi::HttpApi(net::io_context& io, HttpOptions options, ApiBackend& backend, HttpLimits limits)
    : state_(std::make_shared<HttpServerState>(io, std::move(options), backend, limits)) {}

HttpApi::~HttpApi() { stop(); }

Status HttpApi::start() {
  auto endpoint = listen_endpoint(state_->options.listen);
  if (!endpoint.ok()) return Error{endpoint.error()};
  auto& acceptor = state_->acceptor;
  beast::error_code ec;
  auto fail = [&](std::string_view what) -> Status {
    beast::error_code ignored;
    acceptor.close(ignored);
    return Error{"HTTP API: " + std::string(what) + " " + state_->options.listen + ": " +
                 ec.message()};
  };
  acceptor.open(endpoint->protocol(), ec);
  if (ec) return fail("cannot open a socket for");
  acceptor.set_option(net::socket_base::reuse_address(true), ec);
  if (ec) return fail("cannot set SO_REUSEADDR on");
  acceptor.bind(*endpoint, ec);
  if (ec) return fail("cannot bind");
  acceptor.listen(net::socket_base::max_listen_connections, ec);
  if (ec) return fail("cannot listen on");
  auto local = acceptor.local_endpoint(ec);
  if (ec) return fail("cannot read the address of");
  state_->bound = format_endpoint(local);
  bool loopback = local.address().is_loopback();
  state_->handler.emplace(state_->backend,
                          ApiHandler::Options{state_->options.token, loopback,
                                              state_->limits.export_page_rows});
  state_->stopped = false;
  if (!loopback && state_->options.token.empty()) {
    log_warning("HTTP API listens beyond loopback without a token; POST endpoints are refused",
                {{"ADDRESS", state_->bound}});
  }
  log_debug("HTTP API listening", {{"ADDRESS", state_->bound}});
  accept_next(state_);
  return ok_status();
}

void HttpApi::stop() {
  if (!state_ || state_->stopped) return;
  state_->stopped = true;
  beast::error_code ignored;
  state_->acceptor.close(ignored);
  state_->retry_timer.cancel();
  // Closing may destroy connections, which erase themselves: copy first.
  std::vector<std::shared_ptr<HttpConnection>> live;
  for (auto& [id, weak] : state_->live) {
    if (auto connection = weak.lock()) live.push_back(std::move(connection));
  }
  for (auto& connection : live) connection->close();
}

std::string HttpApi::bound_address() const { return state_->bound; }

}  // namespace deltatap
