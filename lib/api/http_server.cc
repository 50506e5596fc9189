#include "api/http_server.h"

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <algorithm>
#include <functional>
#include <map>
#include <optional>
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
  int connections = 0;
  std::uint64_t next_connection = 0;
  // Weak: a connection lives as long as its pending operations; stop() only
  // needs to reach the ones still alive.
  std::map<std::uint64_t, std::weak_ptr<HttpConnection>> live;
};

// One connection, as in Beast's advanced server: its asynchronous steps follow
// in order below, each completion handler right after the call that starts it.
// Deadlines live on the stream, set before each read or write. close() is the
// one way a connection ends early: any error, a timeout, or stop().
class HttpConnection : public std::enable_shared_from_this<HttpConnection> {
 public:
  HttpConnection(std::shared_ptr<HttpServerState> state, tcp::socket socket, bool overloaded)
      : state_(std::move(state)), stream_(std::move(socket)), overloaded_(overloaded) {
    ++state_->connections;
    id_ = state_->next_connection++;
  }

  ~HttpConnection() {
    --state_->connections;
    state_->live.erase(id_);
  }

  std::uint64_t id() const { return id_; }

  void start() { read_request(); }

  void close() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream_.close();
  }

 private:
  void read_request() {
    parser_.emplace();
    parser_->header_limit(static_cast<std::uint32_t>(state_->limits.max_header_bytes));
    parser_->body_limit(state_->limits.max_body_bytes);
    stream_.expires_after(state_->limits.request_timeout);
    http::async_read(stream_, buffer_, *parser_,
                     beast::bind_front_handler(&HttpConnection::on_read, shared_from_this()));
  }

  void on_read(beast::error_code ec, std::size_t) {
    if (state_->stopped) return;
    if (ec == http::error::header_limit || ec == http::error::body_limit) {
      version_ = 11;
      keep_alive_ = false;
      bool header = ec == http::error::header_limit;
      return send(error_reply(413, "payload too large",
                              header ? "request headers exceed " +
                                           std::to_string(state_->limits.max_header_bytes) +
                                           " bytes"
                                     : "request body exceeds " +
                                           std::to_string(state_->limits.max_body_bytes) +
                                           " bytes (no endpoint takes a body)"));
    }
    if (ec == http::error::end_of_stream || ec == beast::error::timeout ||
        ec == net::error::operation_aborted || ec == net::error::connection_reset ||
        ec == net::error::eof) {
      return close();
    }
    if (ec) {
      // Anything else the parser objects to is the client's malformed request.
      if (ec.category() == http::make_error_code(http::error::bad_method).category()) {
        version_ = 11;
        keep_alive_ = false;
        return send(error_reply(400, "bad request", "malformed HTTP request: " + ec.message()));
      }
      return close();
    }
    stream_.expires_never();
    auto& request = parser_->get();
    version_ = request.version();
    keep_alive_ = request.keep_alive();
    if (overloaded_) {
      keep_alive_ = false;
      return send(error_reply(503, "too many connections",
                              "the API serves at most " +
                                  std::to_string(state_->limits.max_connections) +
                                  " connections at once; retry later"));
    }
    ApiRequest api_request{std::string(request.method_string()), std::string(request.target()),
                           std::string(request[http::field::authorization])};
    method_ = api_request.method;
    target_ = api_request.target;
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

  // Half-closes, then reads and discards until the peer closes too (or a short
  // deadline passes): closing with unread input would send a reset, which can
  // destroy the answer before the client has read it.
  void shutdown_send() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    stream_.expires_after(std::chrono::seconds(2));
    drain();
  }

  void drain() {
    stream_.async_read_some(net::buffer(drain_),
                            [self = shared_from_this()](beast::error_code ec, std::size_t) {
                              if (ec || self->state_->stopped) return self->close();
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
  bool overloaded_;
  std::uint64_t id_ = 0;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
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
  int max = std::max(1, state->limits.max_connections);
  if (state->connections >= 2 * max) {
    beast::error_code ignored;
    socket.close(ignored);
  } else {
    // Accepted even when over the limit, so that the client reads a 503 with
    // the reason instead of waiting in the backlog.
    bool overloaded = state->connections >= max;
    if (overloaded) {
      log_warning("HTTP connection limit reached", {{"LIMIT", std::to_string(max)}});
    }
    auto connection = std::make_shared<HttpConnection>(state, std::move(socket), overloaded);
    state->live.emplace(connection->id(), connection);
    connection->start();
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
