// One object per request, its steps in the order they happen, each handler
// right below the call that starts it, every failure through fail(). The
// request's deadline is set once: on a timer for the resolver (which has no
// timeout of its own) and on the stream for everything after it, so connect,
// TLS, write and read share what is left of `timeout`.
#include "stream/reconcile_fetch.h"

#include <type_traits>
#include <utility>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include "stream/tls_context.h"

namespace deltatap {

namespace {

namespace net = boost::asio;
namespace ssl = boost::asio::ssl;
namespace beast = boost::beast;
namespace http = boost::beast::http;
using tcp = boost::asio::ip::tcp;
using boost::system::error_code;
using SteadyClock = std::chrono::steady_clock;
using DoneCallback = std::function<void(ReconcileFetchOutcome)>;

using PlainStream = beast::tcp_stream;
using TlsStream = beast::ssl_stream<beast::tcp_stream>;

ReconcileFetchOutcome failure(ReconcileFailureKind kind, std::string detail, int status = 0) {
  return ReconcileFetchOutcome{ReconcileFetchFailure{kind, status, std::move(detail)}, {}};
}

std::string status_text(unsigned status) {
  std::string text = "HTTP " + std::to_string(status);
  // The standard reason phrase, not the server's: its text is not ours to log.
  if (http::int_to_status(status) != http::status::unknown) {
    text += " " + std::string(http::obsolete_reason(http::int_to_status(status)));
  }
  return text;
}

template <class Stream>
class Fetch final : public ReconcileFetch, public std::enable_shared_from_this<Fetch<Stream>> {
 public:
  static constexpr bool kTls = std::is_same_v<Stream, TlsStream>;

  Fetch(net::io_context& io, const ReconcileFetchOptions& options, StreamUrl url,
        std::shared_ptr<ssl::context> tls_context, DoneCallback done)
      : url_(std::move(url)),
        timeout_(options.timeout),
        max_body_bytes_(options.max_body_bytes),
        insecure_skip_verify_(options.insecure_skip_verify),
        done_(std::move(done)),
        resolver_(io),
        resolve_timer_(io),
        tls_context_(std::move(tls_context)),
        stream_(make_stream(io)) {
    request_.method(http::verb::get);
    request_.target(url_.target);
    request_.version(11);
    request_.set(http::field::host, url_.host_header);
    request_.set(http::field::user_agent, "deltatap/" DELTATAP_VERSION);
    request_.set(http::field::accept, "application/json");
    request_.keep_alive(false);  // one request per connection
    if (!options.token.empty()) request_.set(http::field::authorization, "Bearer " + options.token);
    for (const auto& line : options.headers) {
      // The configuration refused any line this refuses; skipped as the stream skips it.
      auto header = parse_stream_header(line);
      if (header) request_.set(header->first, header->second);
    }
  }

  void cancel() override {
    if (!done_) return;
    done_ = nullptr;
    stop();
  }

  // --- the steps of the request, in order -----------------------------------

  void start() {
    deadline_ = SteadyClock::now() + timeout_;
    if constexpr (kTls) {
      Status peer = set_tls_peer(stream_.native_handle(), url_.host, insecure_skip_verify_);
      if (!peer) return post_failure(ReconcileFailureKind::tls, "TLS setup for " + url_.display +
                                                                    " failed: " + peer.error());
    }
    auto self = this->shared_from_this();
    // A name server that does not answer would hold the resolver past the
    // deadline: the timer ends the request without waiting for it.
    resolve_timer_.expires_at(deadline_);
    resolve_timer_.async_wait([self](error_code ec) {
      if (!ec && !self->resolved_) self->fail("resolve", beast::error::timeout);
    });
    resolver_.async_resolve(url_.host, url_.port, tcp::resolver::numeric_service,
                            [self](error_code ec, tcp::resolver::results_type results) {
                              self->on_resolve(ec, std::move(results));
                            });
  }

  void on_resolve(error_code ec, const tcp::resolver::results_type& results) {
    if (!done_) return;
    resolved_ = true;
    resolve_timer_.cancel();
    if (ec) return fail("resolve", ec);
    // From here to the last byte, the stream keeps the same deadline.
    beast::get_lowest_layer(stream_).expires_at(deadline_);
    auto self = this->shared_from_this();
    beast::get_lowest_layer(stream_).async_connect(
        results, [self](error_code ec, const tcp::endpoint&) { self->on_connect(ec); });
  }

  void on_connect(error_code ec) {
    if (!done_) return;
    if (ec) return fail("connect", ec);
    if constexpr (kTls) {
      auto self = this->shared_from_this();
      stream_.async_handshake(ssl::stream_base::client,
                              [self](error_code ec) { self->on_handshake(ec); });
    } else {
      write();
    }
  }

  void on_handshake(error_code ec) {
    if (!done_) return;
    if (ec) return fail("tls handshake", ec);
    write();
  }

  void write() {
    auto self = this->shared_from_this();
    http::async_write(stream_, request_,
                      [self](error_code ec, std::size_t) { self->on_write(ec); });
  }

  void on_write(error_code ec) {
    if (!done_) return;
    if (ec) return fail("write", ec);
    parser_.header_limit(kMaxReconcileHeaderBytes);
    // No body limit yet: the parser would judge an error page's Content-Length
    // against it and hide the status, which is what matters then.
    parser_.body_limit({});
    auto self = this->shared_from_this();
    http::async_read_header(stream_, buffer_, parser_,
                            [self](error_code ec, std::size_t) { self->on_read_header(ec); });
  }

  void on_read_header(error_code ec) {
    if (!done_) return;
    if (ec) return fail("read", ec);
    unsigned status = parser_.get().result_int();
    // Anything but 200 is answered from its status alone: an error page's
    // body is neither needed nor worth its bytes.
    if (status != 200) {
      return finish(failure(ReconcileFailureKind::http_status,
                            "GET " + url_.display + " answered " + status_text(status) +
                                (status / 100 == 3 ? " (redirects are not followed)" : ""),
                            static_cast<int>(status)));
    }
    // A declared length is judged here; a chunked or until-close body as it comes.
    if (auto length = parser_.content_length(); length && *length > max_body_bytes_) {
      return fail("read", http::error::body_limit);
    }
    parser_.body_limit(max_body_bytes_);
    auto self = this->shared_from_this();
    http::async_read(stream_, buffer_, parser_,
                     [self](error_code ec, std::size_t) { self->on_read(ec); });
  }

  void on_read(error_code ec) {
    if (!done_) return;
    if (ec) return fail("read", ec);
    finish(ReconcileFetchOutcome{std::nullopt, std::move(parser_.get().body())});
  }

  // --- endings --------------------------------------------------------------

 private:
  // The one way out of a failed step: what went wrong, said once.
  void fail(std::string_view step, error_code ec) {
    if (!done_) return;
    const std::string at = " (at " + std::string(step) + ")";
    if (ec == beast::error::timeout ||
        (ec == net::error::operation_aborted && SteadyClock::now() >= deadline_)) {
      return finish(failure(ReconcileFailureKind::timed_out,
                            "GET " + url_.display + " did not complete within " +
                                std::to_string(timeout_.count()) + " ms" + at));
    }
    if (ec == http::error::body_limit) {
      return finish(failure(ReconcileFailureKind::too_large,
                            "the answer of " + url_.display + " is longer than max_body_bytes (" +
                                std::to_string(max_body_bytes_) + " bytes)"));
    }
    if (ec == http::error::header_limit) {
      return finish(failure(ReconcileFailureKind::too_large,
                            "the answer of " + url_.display + " has a header longer than " +
                                std::to_string(kMaxReconcileHeaderBytes) + " bytes"));
    }
    if constexpr (kTls) {
      if (step == "tls handshake" || ec.category() == net::error::get_ssl_category() ||
          ec == ssl::error::stream_truncated) {
        return finish(failure(ReconcileFailureKind::tls,
                              "TLS with " + url_.display + " failed: " + ec.message() +
                                  tls_verify_failure(stream_.native_handle()) + at));
      }
    }
    finish(failure(ReconcileFailureKind::unreachable,
                   "GET " + url_.display + " failed: " + ec.message() + at));
  }

  // Before any step started (TLS setup): reported from the io_context, never
  // from inside start_reconcile_fetch().
  void post_failure(ReconcileFailureKind kind, std::string detail) {
    auto self = this->shared_from_this();
    net::post(resolver_.get_executor(), [self, kind, detail = std::move(detail)]() mutable {
      self->finish(failure(kind, std::move(detail)));
    });
  }

  void finish(ReconcileFetchOutcome outcome) {
    if (!done_) return;
    DoneCallback done = std::move(done_);
    done_ = nullptr;
    stop();
    done(std::move(outcome));
  }

  // Closes what is open; pending handlers then run with an error and find
  // `done_` gone. No TLS close_notify: the answer is complete by its own
  // framing, and a peer that never answers one would only hold us up.
  void stop() {
    resolve_timer_.cancel();
    resolver_.cancel();
    beast::get_lowest_layer(stream_).close();
  }

  Stream make_stream(net::io_context& io) {
    if constexpr (kTls) {
      return Stream(io, *tls_context_);
    } else {
      return Stream(io);
    }
  }

  StreamUrl url_;
  std::chrono::milliseconds timeout_;
  std::uint64_t max_body_bytes_;
  bool insecure_skip_verify_;
  DoneCallback done_;  // empty once called or cancelled
  SteadyClock::time_point deadline_;
  bool resolved_ = false;  // a resolve timer that fired just after it finds this set
  tcp::resolver resolver_;
  net::steady_timer resolve_timer_;
  std::shared_ptr<ssl::context> tls_context_;  // declared before the stream that refers to it
  Stream stream_;
  http::request<http::empty_body> request_;
  beast::flat_buffer buffer_;
  http::response_parser<http::string_body> parser_;
};

// A request that cannot even start (its URL or TLS context is unusable):
// still reported through `done` from the io_context, still cancellable.
class Refused final : public ReconcileFetch, public std::enable_shared_from_this<Refused> {
 public:
  explicit Refused(DoneCallback done) : done_(std::move(done)) {}

  void report(net::io_context& io, ReconcileFetchOutcome outcome) {
    net::post(io, [self = shared_from_this(), outcome = std::move(outcome)]() mutable {
      if (!self->done_) return;
      DoneCallback done = std::move(self->done_);
      self->done_ = nullptr;
      done(std::move(outcome));
    });
  }

  void cancel() override { done_ = nullptr; }

 private:
  DoneCallback done_;
};

}  // namespace

std::string_view to_string(ReconcileFailureKind kind) {
  switch (kind) {
    case ReconcileFailureKind::unreachable: return "unreachable";
    case ReconcileFailureKind::timed_out: return "timed_out";
    case ReconcileFailureKind::http_status: return "http_status";
    case ReconcileFailureKind::too_large: return "too_large";
    case ReconcileFailureKind::tls: return "tls";
  }
  return "unreachable";
}

Result<ReconcileFetchOptions> reconcile_fetch_options(const StreamOptions& stream) {
  ReconcileFetchOptions options;
  if (stream.reconcile_url.empty()) {
    auto derived = reconcile_url_for(stream.url);
    if (!derived) return Error{"no reconcile URL can be derived from the stream URL: " + derived.error()};
    options.url = std::move(derived.value());
  } else {
    options.url = stream.reconcile_url;
  }
  options.token = stream.token;
  options.headers = stream.headers;
  options.ca_file = stream.ca_file;
  options.insecure_skip_verify = stream.insecure_skip_verify;
  return options;
}

std::shared_ptr<ReconcileFetch> start_reconcile_fetch(net::io_context& io,
                                                      ReconcileFetchOptions options, DoneCallback done) {
  auto refuse = [&](ReconcileFailureKind kind, std::string detail) {
    auto refused = std::make_shared<Refused>(std::move(done));
    refused->report(io, failure(kind, std::move(detail)));
    return refused;
  };
  // The parser's message says what is wrong without quoting the URL.
  auto url = parse_reconcile_url(options.url);
  if (!url) return refuse(ReconcileFailureKind::unreachable, "the reconcile URL is not usable: " + url.error());

  if (!url->tls) {
    auto fetch = std::make_shared<Fetch<PlainStream>>(io, options, std::move(url.value()), nullptr,
                                                      std::move(done));
    fetch->start();
    return fetch;
  }
  auto context = make_tls_client_context(options.ca_file, options.insecure_skip_verify);
  if (!context) {
    return refuse(ReconcileFailureKind::tls,
                  "TLS setup for " + url->display + " failed: " + context.error());
  }
  auto fetch = std::make_shared<Fetch<TlsStream>>(io, options, std::move(url.value()),
                                                  std::move(context.value()), std::move(done));
  fetch->start();
  return fetch;
}

}  // namespace deltatap
