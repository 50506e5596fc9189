#include "stream/websocket_client.h"

#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <random>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <boost/url/parse.hpp>

#include "base/json_text.h"
#include "base/logging.h"
#include "stream/tls_context.h"

namespace deltatap {

namespace {

namespace net = boost::asio;
namespace ssl = boost::asio::ssl;
namespace beast = boost::beast;
namespace http = boost::beast::http;
namespace websocket = boost::beast::websocket;
using tcp = boost::asio::ip::tcp;
using boost::system::error_code;
using SteadyClock = std::chrono::steady_clock;

using PlainWs = websocket::stream<beast::tcp_stream>;
using TlsWs = websocket::stream<beast::ssl_stream<beast::tcp_stream>>;

template <class Ws>
constexpr bool kIsTls = std::is_same_v<std::remove_cvref_t<Ws>, TlsWs>;

// A read buffer that grew for one big message gives the memory back afterwards,
// so a single 16 MiB frame does not stay resident for the life of the connection.
constexpr std::size_t kKeptBufferBytes = 1u << 20;

using HeaderList = std::vector<StreamHeader>;

// The configuration refused any header that parse_stream_header() refuses, so
// a failure here means the options were built some other way (a test): skip it.
// Header values can hold credentials, so only names are ever logged.
HeaderList parse_headers(const std::vector<std::string>& lines) {
  HeaderList headers;
  for (const auto& line : lines) {
    auto header = parse_stream_header(line);
    if (!header.ok()) {
      log_warning("Stream header ignored: " + header.error());
      continue;
    }
    headers.push_back(std::move(header.value()));
  }
  return headers;
}

std::string millis_text(std::chrono::milliseconds d) { return std::to_string(d.count()); }

}  // namespace

BackoffRange backoff_range(const StreamOptions& options, int failures) {
  auto floor = std::max(options.backoff_initial, std::chrono::milliseconds(1));
  auto cap = refused_backoff(options);
  // Full jitter over [initial, min(max, initial * 2^(failures-1))].
  auto ceiling = floor;
  for (int i = 1; i < failures && ceiling < cap; ++i) ceiling *= 2;
  return {floor, std::min(ceiling, cap)};
}

std::chrono::milliseconds refused_backoff(const StreamOptions& options) {
  return std::max({options.backoff_max, options.backoff_initial, std::chrono::milliseconds(1)});
}

bool backoff_restarts(const StreamOptions& options, std::chrono::milliseconds uptime) {
  return uptime >= 2 * options.backoff_max;
}


namespace {

// One connection attempt: its stream and what the steps fill in. Every handler
// holds its link, so a link given up (by a newer attempt, by stop, by a drop)
// stays alive until its last handler has run and found it is no longer current.
struct Link {
  explicit Link(const net::any_io_executor& executor) : resolve_timer(executor) {}

  template <class F>
  void with_ws(F&& f) {
    if (auto* plain = std::get_if<PlainWs>(&ws)) {
      f(*plain);
    } else if (auto* tls = std::get_if<TlsWs>(&ws)) {
      f(*tls);
    }
  }

  // Declared before the stream, which refers to it.
  std::shared_ptr<ssl::context> tls_context;
  std::variant<std::monostate, PlainWs, TlsWs> ws;
  net::steady_timer resolve_timer;
  SteadyClock::time_point deadline;  // for resolve + connect + TLS + upgrade
  websocket::response_type response;
  beast::flat_buffer buffer;
  bool open = false;
  bool read_held = false;  // a frame was handled while paused; no read pending
  SteadyClock::time_point opened_at;
};

}  // namespace

class WebSocketClient::Impl : public std::enable_shared_from_this<Impl> {
 public:
  Impl(net::io_context& io, StreamOptions options, StreamEvents events)
      : io_(io),
        options_(std::move(options)),
        events_(std::move(events)),
        url_(parse_stream_url(options_.url)),
        headers_(parse_headers(options_.headers)),
        resolver_(io),
        retry_timer_(io),
        random_(std::random_device{}()) {}

  void start() {
    if (started_ && !stopped_) return;
    started_ = true;
    stopped_ = false;
    connect();
  }

  void stop(std::function<void()> done) {
    stopped_ = true;
    cancel_retry();
    resolver_.cancel();
    std::shared_ptr<Link> link = std::move(link_);
    if (link && link->open) {
      connected_ = false;
      auto self = shared_from_this();
      link->with_ws([&](auto& ws) {
        ws.async_close(websocket::close_reason(websocket::close_code::normal, "stopping"),
                       [self, link, done = std::move(done)](error_code ec) mutable {
                         self->finish_stop(link, ec, std::move(done));
                       });
      });
      return;
    }
    if (link) abort(*link);
    net::post(io_, [done = std::move(done)] {
      if (done) done();
    });
  }

  void reconfigure(const StreamOptions& options) {
    if (options == options_) return;
    options_ = options;
    url_ = parse_stream_url(options_.url);
    headers_ = parse_headers(options_.headers);
    failures_ = 0;
    auth_status_logged_ = 0;
    if (!started_ || stopped_) return;
    log_info("stream options changed: reconnecting",
             {{"URL", url_ ? url_->display : std::string("(invalid)")}});

    cancel_retry();
    resolver_.cancel();
    std::shared_ptr<Link> link = std::move(link_);
    bool was_open = link && link->open;
    if (was_open) {
      connected_ = false;
      auto self = shared_from_this();
      link->with_ws([&](auto& ws) {
        ws.async_close(websocket::close_reason(websocket::close_code::normal, "reconfiguring"),
                       [self, link](error_code) { self->abort(*link); });
      });
      if (events_.on_disconnected) {
        events_.on_disconnected(Disconnect{.close_code = 1000, .reason = "reconfiguring"});
      }
      if (stopped_ || link_) return;  // the callback stopped or restarted us
    } else if (link) {
      abort(*link);
    }
    connect();
  }

  // The owner is gone: no more callbacks; whatever is in flight drains.
  void shutdown() {
    stopped_ = true;
    events_ = {};
    cancel_retry();
    resolver_.cancel();
    if (link_) abort(*link_);
    link_.reset();
    connected_ = false;
  }

  bool connected() const { return connected_; }
  std::uint64_t reconnects() const { return reconnects_; }

  void pause_reading() { paused_ = true; }

  void resume_reading() {
    paused_ = false;
    if (link_ && link_->read_held) {
      link_->read_held = false;
      read(link_);
    }
  }

 private:
  bool current(const std::shared_ptr<Link>& link) const { return !stopped_ && link == link_; }

  // --- the steps of one attempt, in order --------------------------------

  void connect() {
    if (stopped_) return;
    if (attempted_) ++reconnects_;
    attempted_ = true;
    if (!url_) {
      fail(Disconnect{.error = "url: " + url_.error()});
      return;
    }
    const StreamUrl& url = *url_;

    auto link = std::make_shared<Link>(io_.get_executor());
    link->deadline = SteadyClock::now() + options_.connect_timeout;
    if (url.tls) {
      Status prepared = prepare_tls(*link, url);
      if (!prepared) {
        fail(Disconnect{.error = "tls: " + prepared.error()});
        return;
      }
    } else {
      link->ws.emplace<PlainWs>(io_.get_executor());
    }
    link_ = link;

    // The resolver has no timeout of its own; the attempt's deadline cancels it.
    auto self = shared_from_this();
    link->resolve_timer.expires_at(link->deadline);
    link->resolve_timer.async_wait([self, link](error_code ec) {
      if (!ec && self->current(link)) self->resolver_.cancel();
    });
    resolver_.async_resolve(url.host, url.port, tcp::resolver::numeric_service,
                            [self, link](error_code ec, tcp::resolver::results_type results) {
                              self->on_resolve(link, ec, std::move(results));
                            });
  }

  void on_resolve(const std::shared_ptr<Link>& link, error_code ec,
                  tcp::resolver::results_type results) {
    if (!current(link)) return;
    link->resolve_timer.cancel();
    if (ec) return fail(step_failure(*link, "resolve", ec));
    auto self = shared_from_this();
    link->with_ws([&](auto& ws) {
      auto& socket = beast::get_lowest_layer(ws);
      socket.expires_at(link->deadline);
      socket.async_connect(results, [self, link](error_code ec, const tcp::endpoint&) {
        self->on_connect(link, ec);
      });
    });
  }

  void on_connect(const std::shared_ptr<Link>& link, error_code ec) {
    if (!current(link)) return;
    if (ec) return fail(step_failure(*link, "connect", ec));
    auto self = shared_from_this();
    link->with_ws([&](auto& ws) {
      if constexpr (kIsTls<decltype(ws)>) {
        if (options_.insecure_skip_verify) {
          log_warning("TLS certificate verification is off (insecure_skip_verify): "
                      "the server is not authenticated",
                      {{"URL", url_->display}});
        }
        ws.next_layer().async_handshake(ssl::stream_base::client, [self, link](error_code ec) {
          self->on_tls_handshake(link, ec);
        });
      } else {
        upgrade(link);
      }
    });
  }

  void on_tls_handshake(const std::shared_ptr<Link>& link, error_code ec) {
    if (!current(link)) return;
    if (ec) return fail(step_failure(*link, "tls handshake", ec));
    upgrade(link);
  }

  void upgrade(const std::shared_ptr<Link>& link) {
    auto self = shared_from_this();
    std::string protocol = options_.token.empty() ? "" : "bearer." + options_.token;
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(link->deadline -
                                                                     SteadyClock::now());
    link->with_ws([&](auto& ws) {
      // From here on the websocket layer keeps the time (handshake, then idle).
      beast::get_lowest_layer(ws).expires_never();
      ws.set_option(stream_timeouts(std::max(left, std::chrono::milliseconds(1))));
      ws.read_message_max(options_.max_message_bytes);
      ws.set_option(websocket::stream_base::decorator(
          [protocol, headers = headers_](websocket::request_type& request) {
            request.set(http::field::user_agent, "deltatap/" DELTATAP_VERSION);
            if (!protocol.empty()) request.set(http::field::sec_websocket_protocol, protocol);
            for (const auto& [name, value] : headers) request.set(name, value);
          }));
      ws.async_handshake(link->response, url_->host_header, url_->target,
                         [self, link](error_code ec) { self->on_upgrade(link, ec); });
    });
  }

  void on_upgrade(const std::shared_ptr<Link>& link, error_code ec) {
    if (!current(link)) return;
    if (ec == websocket::error::upgrade_declined) {
      int status = link->response.result_int();
      return fail(Disconnect{
          .error = "websocket handshake: upgrade refused with HTTP " + std::to_string(status) +
                   " " + std::string(link->response.reason()),
          .http_status = status});
    }
    if (ec) return fail(step_failure(*link, "websocket handshake", ec));

    // RFC 6455: a subprotocol the client did not offer fails the connection.
    // Its text is not logged: it could echo a token.
    std::string offered = options_.token.empty() ? "" : "bearer." + options_.token;
    auto chosen = link->response[http::field::sec_websocket_protocol];
    if (!chosen.empty() && chosen != offered) {
      return fail(Disconnect{.error = "websocket handshake: the server chose a subprotocol "
                                      "that was not offered"});
    }

    link->open = true;
    link->opened_at = SteadyClock::now();
    link->response = {};
    connected_ = true;
    // From now on the handshake timeout bounds our close handshake.
    link->with_ws([&](auto& ws) { ws.set_option(stream_timeouts(options_.connect_timeout)); });
    if (auth_status_logged_ != 0) {
      log_info("stream authentication accepted", {{"URL", url_->display}});
      auth_status_logged_ = 0;
    }
    log_info("Connected to the stream",
             {message_id(message_ids::kStreamConnected), {"URL", url_->display}});
    if (events_.on_connected) events_.on_connected(url_->display);
    if (!current(link)) return;
    if (paused_) {
      link->read_held = true;
      return;
    }
    read(link);
  }

  void read(const std::shared_ptr<Link>& link) {
    auto self = shared_from_this();
    link->with_ws([&](auto& ws) {
      ws.async_read(link->buffer, [self, link](error_code ec, std::size_t) {
        self->on_read(link, ec);
      });
    });
  }

  void on_read(const std::shared_ptr<Link>& link, error_code ec) {
    if (!current(link)) return;
    if (ec) return drop(link, ec);
    TimePoint received = now_millis();
    auto bytes = link->buffer.cdata();
    std::string_view data(static_cast<const char*>(bytes.data()), bytes.size());
    bool text = false;
    link->with_ws([&](auto& ws) { text = ws.got_text(); });
    if (text) {
      if (events_.on_text) events_.on_text(data, received);
    } else if (events_.on_binary) {
      events_.on_binary(data, received);
    }
    link->buffer.consume(link->buffer.size());
    if (link->buffer.capacity() > kKeptBufferBytes) link->buffer.shrink_to_fit();
    if (!current(link)) return;
    if (paused_) {
      link->read_held = true;  // resume_reading() starts the read
      return;
    }
    read(link);
  }

  // --- endings -------------------------------------------------------------

  void drop(const std::shared_ptr<Link>& link, error_code ec) {
    Disconnect why;
    if (ec == websocket::error::closed) {
      link->with_ws([&](auto& ws) {
        why.close_code = ws.reason().code;
        const auto& text = ws.reason().reason;
        why.reason.assign(text.data(), text.size());
      });
      why.error = "closed by the server";
    } else if (ec == websocket::error::message_too_big) {
      why.close_code = static_cast<int>(websocket::close_code::too_big);
      why.error = "read: a message exceeded max_message_bytes (" +
                  std::to_string(options_.max_message_bytes) + ")";
      if (events_.on_oversized) events_.on_oversized(options_.max_message_bytes + 1);
      if (!current(link)) return;
    } else if (ec == websocket::condition::protocol_violation) {
      // Beast failed the connection with the close code RFC 6455 names.
      bool payload = ec == websocket::error::bad_frame_payload ||
                     ec == websocket::error::bad_close_payload;
      why.close_code = static_cast<int>(payload ? websocket::close_code::bad_payload
                                                : websocket::close_code::protocol_error);
      why.error = "read: the server broke the protocol (" + ec.message() + ")";
    } else if (ec == beast::error::timeout) {
      why.error = "read: nothing received (no frame, ping or pong) within idle_timeout (" +
                  millis_text(options_.idle_timeout) + " ms)";
    } else {
      why.error = "read: " + ec.message();
    }
    fail(std::move(why));
  }

  // The one way out of a failed attempt or a lost connection: report it and
  // schedule the next attempt.
  void fail(Disconnect why) {
    std::shared_ptr<Link> link = std::move(link_);
    bool was_open = link && link->open;
    auto uptime = std::chrono::milliseconds(0);
    if (link) {
      if (was_open) {
        uptime = std::chrono::duration_cast<std::chrono::milliseconds>(SteadyClock::now() -
                                                                       link->opened_at);
      }
      abort(*link);
    }
    connected_ = false;
    if (was_open && backoff_restarts(options_, uptime)) failures_ = 0;
    ++failures_;

    bool refused = why.http_status == 401 || why.http_status == 403;
    std::chrono::milliseconds delay = refused ? refused_backoff(options_) : backoff_delay(failures_);
    std::string display = url_ ? url_->display : std::string("(invalid)");
    // Each line is one event, once, with the reason in its message (the journal
    // shows MESSAGE first) and again in the fields for machines.
    std::string retry = "; retrying in " + millis_text(delay) + " ms";

    if (refused) {
      // An attempt that failed, too; logged as an error once per refusal, the
      // attempts after it at debug level.
      std::string status = std::to_string(why.http_status);
      if (why.http_status != auth_status_logged_) {
        log_error("Stream authentication failed: the server refused the token (HTTP " + status +
                      ")" + retry,
                  {message_id(message_ids::kStreamAttemptFailed),
                   {"URL", display},
                   {"HTTP_STATUS", status},
                   {"RETRY_IN_MS", millis_text(delay)}});
        auth_status_logged_ = why.http_status;
      } else {
        log_debug("Stream authentication still refused (HTTP " + status + ")" + retry,
                  {message_id(message_ids::kStreamAttemptFailed),
                   {"HTTP_STATUS", status},
                   {"RETRY_IN_MS", millis_text(delay)}});
      }
    } else if (was_open) {
      // The close reason is the server's text: quoted, so it stays one line
      // and its control characters are escaped.
      std::string reason = why.error.empty() ? std::string("closed") : why.error;
      if (why.close_code != 0) {
        reason += " (close code " + std::to_string(why.close_code) +
                  (why.reason.empty() ? "" : ", reason " + json_quoted(why.reason)) + ")";
      }
      log_warning("Disconnected from the stream: " + reason + retry,
                  {message_id(message_ids::kStreamDisconnected),
                   {"URL", display},
                   {"CLOSE_CODE", std::to_string(why.close_code)},
                   {"CLOSE_REASON", why.reason},
                   {"ERROR", why.error},
                   {"UPTIME_MS", millis_text(uptime)},
                   {"RETRY_IN_MS", millis_text(delay)}});
    } else {
      log_warning("Stream connection attempt failed: " + why.error + retry,
                  {message_id(message_ids::kStreamAttemptFailed),
                   {"URL", display},
                   {"ERROR", why.error},
                   {"HTTP_STATUS", std::to_string(why.http_status)},
                   {"ATTEMPT", std::to_string(failures_)},
                   {"RETRY_IN_MS", millis_text(delay)}});
    }

    schedule_retry(delay);
    if (events_.on_disconnected) events_.on_disconnected(why);
  }

  void finish_stop(const std::shared_ptr<Link>& link, error_code ec, std::function<void()> done) {
    abort(*link);
    log_info("stream closed", {{"CLOSE_CODE", "1000"}});
    if (events_.on_disconnected) {
      Disconnect why{.close_code = 1000, .reason = "stopping"};
      if (ec) why.error = "close: " + ec.message();
      events_.on_disconnected(why);
    }
    if (done) done();
  }

  // Closes the socket under whatever is pending; those handlers then find the
  // link no longer current.
  void abort(Link& link) {
    link.resolve_timer.cancel();
    link.with_ws([](auto& ws) { beast::get_lowest_layer(ws).close(); });
  }

  // --- helpers -------------------------------------------------------------

  websocket::stream_base::timeout stream_timeouts(std::chrono::milliseconds handshake) const {
    websocket::stream_base::timeout timeouts;
    timeouts.handshake_timeout = handshake;
    if (options_.idle_timeout.count() > 0) {
      timeouts.idle_timeout = options_.idle_timeout;
      // Pings at half the idle time keep a quiet but healthy link up (the server
      // answers them) and expose one that went silent.
      timeouts.keep_alive_pings = true;
    } else {
      timeouts.idle_timeout = websocket::stream_base::none();
      timeouts.keep_alive_pings = false;
    }
    return timeouts;
  }

  // The context and the peer checks are the ones every TLS connection of
  // deltatap makes (stream/tls_context.h).
  Status prepare_tls(Link& link, const StreamUrl& url) {
    auto context = make_tls_client_context(options_.ca_file, options_.insecure_skip_verify);
    if (!context) return Error{context.error()};
    link.tls_context = std::move(context.value());
    auto& ws = link.ws.emplace<TlsWs>(io_.get_executor(), *link.tls_context);
    return set_tls_peer(ws.next_layer().native_handle(), url.host, options_.insecure_skip_verify);
  }

  Disconnect step_failure(Link& link, std::string_view step, error_code ec) {
    Disconnect why;
    bool late = SteadyClock::now() >= link.deadline;
    if (ec == beast::error::timeout || (late && ec == net::error::operation_aborted)) {
      why.error = std::string(step) + ": timed out (connect_timeout " +
                  millis_text(options_.connect_timeout) + " ms)";
      return why;
    }
    why.error = std::string(step) + ": " + ec.message();
    if (auto* tls = std::get_if<TlsWs>(&link.ws); tls && step == "tls handshake") {
      long verify = SSL_get_verify_result(tls->next_layer().native_handle());
      if (verify != X509_V_OK) why.error += std::string(" (") + X509_verify_cert_error_string(verify) + ")";
    }
    return why;
  }

  // A uniform draw from backoff_range.
  std::chrono::milliseconds backoff_delay(int failures) {
    auto range = backoff_range(options_, failures);
    std::uniform_int_distribution<std::int64_t> pick(range.low.count(), range.high.count());
    return std::chrono::milliseconds(pick(random_));
  }

  void schedule_retry(std::chrono::milliseconds delay) {
    auto self = shared_from_this();
    std::uint64_t epoch = ++retry_epoch_;
    retry_timer_.expires_after(delay);
    retry_timer_.async_wait([self, epoch](error_code ec) {
      if (ec || self->stopped_ || epoch != self->retry_epoch_) return;
      self->connect();
    });
  }

  void cancel_retry() {
    ++retry_epoch_;
    retry_timer_.cancel();
  }

  net::io_context& io_;
  StreamOptions options_;
  StreamEvents events_;
  Result<StreamUrl> url_;
  HeaderList headers_;
  tcp::resolver resolver_;
  net::steady_timer retry_timer_;
  std::shared_ptr<Link> link_;  // the attempt or connection in progress, if any
  bool started_ = false;
  bool stopped_ = false;
  bool attempted_ = false;
  std::uint64_t retry_epoch_ = 0;  // a retry timer that fired late checks it
  int failures_ = 0;               // since the last connection that stayed up
  int auth_status_logged_ = 0;     // the refusal already logged, 0 when none
  bool paused_ = false;            // the owner asked for no further reads
  std::atomic<bool> connected_{false};
  std::atomic<std::uint64_t> reconnects_{0};
  std::mt19937_64 random_;
};

WebSocketClient::WebSocketClient(boost::asio::io_context& io, StreamOptions options,
                                 StreamEvents events)
    : impl_(std::make_shared<Impl>(io, std::move(options), std::move(events))) {}

WebSocketClient::~WebSocketClient() { impl_->shutdown(); }

void WebSocketClient::start() { impl_->start(); }
void WebSocketClient::stop(std::function<void()> done) { impl_->stop(std::move(done)); }
void WebSocketClient::reconfigure(const StreamOptions& options) { impl_->reconfigure(options); }
void WebSocketClient::pause_reading() { impl_->pause_reading(); }
void WebSocketClient::resume_reading() { impl_->resume_reading(); }
bool WebSocketClient::connected() const { return impl_->connected(); }
std::uint64_t WebSocketClient::reconnects() const { return impl_->reconnects(); }

}  // namespace deltatap
