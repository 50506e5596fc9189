#include "api/http_api.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/url/parse.hpp>
#include <boost/url/pct_string_view.hpp>
#include <boost/url/url_view.hpp>

#include <algorithm>
#include <charconv>
#include <map>
#include <utility>

#include "base/address.h"
#include "base/duration.h"
#include "base/json_text.h"
#include "base/logging.h"

namespace deltatap {

namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
namespace urls = boost::urls;
using tcp = net::ip::tcp;
using SteadyClock = std::chrono::steady_clock;

// ---------------------------------------------------------------------------
// Replies

ApiReply json_reply(int status, std::string body) {
  ApiReply reply;
  reply.status = status;
  reply.body = std::move(body);
  return reply;
}

ApiReply error_reply(int status, std::string_view error, std::string_view detail,
                     std::optional<std::string_view> parameter = std::nullopt) {
  std::string body = "{\"error\":";
  append_json_string(body, error);
  if (parameter) {
    body += ",\"parameter\":";
    append_json_string(body, *parameter);
  }
  body += ",\"detail\":";
  append_json_string(body, detail);
  body += '}';
  return json_reply(status, std::move(body));
}

ApiReply parameter_error(std::string_view parameter, std::string_view detail) {
  return error_reply(400, "invalid parameter", detail, parameter);
}

// Quoted for an error message; long or odd values are cut so the detail stays readable.
std::string quoted(std::string_view value) {
  constexpr std::size_t kMax = 80;
  std::string out = "\"";
  out += value.substr(0, kMax);
  if (value.size() > kMax) out += "...";
  out += '"';
  return out;
}

// ---------------------------------------------------------------------------
// Authorisation

// SHA-256 of both sides compared with CRYPTO_memcmp: the time taken depends
// neither on where the first difference is nor on the token's length.
bool same_secret(std::string_view given, std::string_view expected) {
  unsigned char a[EVP_MAX_MD_SIZE], b[EVP_MAX_MD_SIZE];
  unsigned int a_len = 0, b_len = 0;
  if (EVP_Digest(given.data(), given.size(), a, &a_len, EVP_sha256(), nullptr) != 1) return false;
  if (EVP_Digest(expected.data(), expected.size(), b, &b_len, EVP_sha256(), nullptr) != 1) {
    return false;
  }
  return a_len == b_len && CRYPTO_memcmp(a, b, a_len) == 0;
}

bool authorised(std::string_view header, std::string_view token) {
  constexpr std::string_view kScheme = "bearer";
  if (header.size() <= kScheme.size()) return false;
  for (std::size_t i = 0; i < kScheme.size(); ++i) {
    char c = header[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c != kScheme[i]) return false;
  }
  auto rest = header.substr(kScheme.size());
  if (rest.front() != ' ' && rest.front() != '\t') return false;
  auto begin = rest.find_first_not_of(" \t");
  auto end = rest.find_last_not_of(" \t");
  if (begin == std::string_view::npos) return false;
  return same_secret(rest.substr(begin, end - begin + 1), token);
}

// ---------------------------------------------------------------------------
// Routes and parameters

enum class Route {
  healthz, readyz, metrics, stats, deltas, session_deltas, sessions, export_all, snapshot, cleanup
};

struct RouteSpec {
  std::string_view path;
  Route route;
  bool post;
  std::vector<std::string_view> params;
};

constexpr std::string_view kDeltasPrefix = "/api/deltas/";

const std::vector<RouteSpec>& routes() {
  static const std::vector<RouteSpec> table = {
      {"/healthz", Route::healthz, false, {}},
      {"/readyz", Route::readyz, false, {}},
      {"/metrics", Route::metrics, false, {}},
      {"/api/stats", Route::stats, false, {}},
      {"/api/deltas", Route::deltas, false,
       {"sessionId", "type", "since", "until", "limit", "before"}},
      {kDeltasPrefix, Route::session_deltas, false, {"type", "since", "until", "limit", "before"}},
      {"/api/sessions", Route::sessions, false, {}},
      {"/api/export", Route::export_all, false, {"format"}},
      {"/api/snapshot", Route::snapshot, true, {}},
      {"/api/cleanup", Route::cleanup, true, {"olderThan"}},
  };
  return table;
}

std::string join(const std::vector<std::string_view>& names) {
  std::string out;
  for (auto name : names) {
    if (!out.empty()) out += ", ";
    out += name;
  }
  return out;
}

using Params = std::map<std::string, std::string, std::less<>>;

// Decoded query parameters; unknown and repeated names are errors.
std::variant<Params, ApiReply> read_params(const urls::url_view& url, const RouteSpec& spec) {
  Params params;
  if (!url.has_query()) return params;
  for (auto param : url.params()) {
    if (param.key.empty() && !param.has_value) continue;  // "?" or "a=1&&b=2"
    if (std::find(spec.params.begin(), spec.params.end(), param.key) == spec.params.end()) {
      std::string allowed = spec.params.empty()
                                ? std::string("this endpoint takes no parameters")
                                : "allowed: " + join(spec.params);
      return error_reply(400, "unknown parameter",
                         "unknown parameter " + quoted(param.key) + " (" + allowed + ")",
                         param.key);
    }
    if (!params.emplace(param.key, param.value).second) {
      return error_reply(400, "invalid parameter", param.key + " is given more than once",
                         param.key);
    }
  }
  return params;
}

std::optional<std::string_view> get(const Params& params, std::string_view name) {
  auto found = params.find(name);
  if (found == params.end()) return std::nullopt;
  return found->second;
}

bool all_digits(std::string_view text) {
  return !text.empty() && std::all_of(text.begin(), text.end(), [](char c) {
    return c >= '0' && c <= '9';
  });
}

// The query of /api/deltas and /api/deltas/{id}, or the 400 that explains why not.
std::variant<DeltaQuery, ApiReply> read_delta_query(const Params& params) {
  DeltaQuery query;
  if (auto value = get(params, "sessionId")) {
    if (value->empty()) return parameter_error("sessionId", "sessionId must not be empty");
    query.session_id = std::string(*value);
  }
  if (auto value = get(params, "type")) {
    auto type = parse_delta_type(*value);
    if (!type) {
      return parameter_error("type", "type must be created, updated or deleted, got " +
                                         quoted(*value));
    }
    query.type = type;
  }
  for (auto name : {"since", "until"}) {
    auto value = get(params, name);
    if (!value) continue;
    auto normalised = normalise_timestamp(*value);
    if (!normalised.ok()) {
      // A "+02:00" offset sent unencoded arrives as " 02:00": say so.
      std::string hint = value->find(' ') != std::string_view::npos
                             ? " (a '+' in a URL query means a space: write it as %2B)"
                             : "";
      return parameter_error(name, std::string(name) +
                                       " must be an ISO 8601 date-time such as "
                                       "2025-11-10T12:00:00Z, got " +
                                       quoted(*value) + ": " + normalised.error() + hint);
    }
    (std::string_view(name) == "since" ? query.since : query.until) = std::move(normalised.value());
  }
  if (auto value = get(params, "limit")) {
    int limit = 0;
    bool number = all_digits(*value) && value->size() <= 9;
    if (number) std::from_chars(value->data(), value->data() + value->size(), limit);
    if (!number || limit < 1 || limit > kMaxQueryLimit) {
      return parameter_error("limit", "limit must be an integer from 1 to " +
                                          std::to_string(kMaxQueryLimit) + " (default " +
                                          std::to_string(kDefaultQueryLimit) + "), got " +
                                          quoted(*value));
    }
    query.limit = limit;
  }
  if (auto value = get(params, "before")) {
    if (!parse_cursor(*value)) {
      return parameter_error("before", "before must be the \"next\" value of a previous answer "
                                       "(TIMESTAMP_ID), got " + quoted(*value));
    }
    query.before = std::string(*value);
  }
  return query;
}

// A duration before now (base/duration.h: "30d", "12h", "2w", ...), or an ISO
// 8601 date-time. The duration needs its unit here: a bare "30" would be 30
// seconds, which is rarely what a cleanup means.
std::variant<TimePoint, ApiReply> read_older_than(const Params& params) {
  static const std::string kAllowed =
      "olderThan must be a positive duration with a unit " + std::string(kDurationUnits) +
      " (e.g. 30d) or an ISO 8601 date-time such as 2025-10-01T00:00:00Z";
  constexpr DurationRules kRules{.max = std::chrono::days(100 * 366), .require_unit = true};
  auto value = get(params, "olderThan");
  if (!value) return parameter_error("olderThan", kAllowed + "; it is required");
  if (auto age = parse_duration(*value, kRules); age.ok()) return now_millis() - *age;
  auto time = parse_timestamp(*value);
  if (time.ok()) return *time;
  return parameter_error("olderThan", kAllowed + ", got " + quoted(*value));
}

template <typename Body>
auto timed(Metrics& metrics, QueryKind kind, Body body) {
  auto start = SteadyClock::now();
  auto result = body();
  metrics.query_duration(kind).observe(
      std::chrono::duration<double>(SteadyClock::now() - start).count());
  return result;
}

std::string reasons_json(const std::vector<std::string>& reasons) {
  std::string out = "[";
  for (std::size_t i = 0; i < reasons.size(); ++i) {
    if (i) out += ',';
    append_json_string(out, reasons[i]);
  }
  return out + "]";
}

// One export in progress: pages through the store newest first with the keyset
// cursor, so each call is one bounded query and deltas arriving meanwhile
// neither repeat nor shift what is still to come.
struct ExportState {
  Store* store;
  Metrics* metrics;
  ExportWriter writer;
  int page_rows;
  std::optional<std::string> cursor;
  bool started = false;
  bool finished = false;
};

Result<std::optional<std::string>> next_export_chunk(ExportState& state) {
  if (state.finished) return std::optional<std::string>();
  std::string chunk;
  if (!state.started) {
    state.writer.begin(chunk);
    state.started = true;
  }
  DeltaQuery query;
  query.limit = state.page_rows;
  query.before = state.cursor;
  auto page = timed(*state.metrics, QueryKind::export_page,
                    [&] { return state.store->get_deltas(query); });
  if (!page.ok()) return Error{page.error()};
  for (const auto& row : page->deltas) state.writer.row(chunk, row);
  state.cursor = page->next;
  if (!state.cursor) {
    state.writer.end(chunk);
    state.finished = true;
  }
  return std::optional<std::string>(std::move(chunk));
}

}  // namespace

Result<std::int64_t> ApiBackend::cleanup(TimePoint older_than) {
  auto deleted = store().cleanup(older_than);
  if (deleted.ok() && *deleted > 0) {
    if (auto s = store().compact(); !s.ok()) {
      log_warning("compacting after cleanup failed", {{"ERROR", s.error()}});
    }
  }
  return deleted;
}

// ---------------------------------------------------------------------------
// ApiHandler

ApiHandler::ApiHandler(ApiBackend& backend, Options options)
    : backend_(backend), options_(std::move(options)) {
  if (options_.export_page_rows < 1 || options_.export_page_rows > kMaxQueryLimit) {
    options_.export_page_rows = kMaxQueryLimit;
  }
}

void ApiHandler::handle(const ApiRequest& request, std::function<void(ApiReply)> reply) {
  if (!options_.token.empty() && !authorised(request.authorization, options_.token)) {
    auto answer = error_reply(401, "unauthorized",
                              request.authorization.empty()
                                  ? "this API needs an Authorization: Bearer token"
                                  : "the bearer token is not the one configured");
    answer.headers.emplace_back("WWW-Authenticate", "Bearer realm=\"deltatap\"");
    return reply(std::move(answer));
  }

  auto parsed = urls::parse_origin_form(request.target);
  if (!parsed) {
    return reply(error_reply(400, "bad request",
                             "the request target is not a valid origin-form URL: " +
                                 quoted(request.target)));
  }
  const urls::url_view& url = *parsed;
  std::string_view path = url.encoded_path();

  const RouteSpec* spec = nullptr;
  for (const auto& candidate : routes()) {
    bool match = candidate.route == Route::session_deltas ? path.starts_with(candidate.path)
                                                           : path == candidate.path;
    if (match) {
      spec = &candidate;
      break;
    }
  }
  if (!spec) {
    return reply(error_reply(404, "not found", "no endpoint at " + quoted(path)));
  }
  std::string_view allowed = spec->post ? "POST" : "GET";
  if (request.method != allowed) {
    auto answer = error_reply(405, "method not allowed",
                              std::string(spec->path) + " answers " + std::string(allowed) +
                                  " only, not " + quoted(request.method));
    answer.headers.emplace_back("Allow", std::string(allowed));
    return reply(std::move(answer));
  }
  if (spec->post && options_.token.empty() && !options_.loopback_listener) {
    return reply(error_reply(403, "forbidden",
                             "POST endpoints need [http] token when the listener is not "
                             "loopback"));
  }

  auto params_or_error = read_params(url, *spec);
  if (auto* error = std::get_if<ApiReply>(&params_or_error)) return reply(std::move(*error));
  const Params& params = std::get<Params>(params_or_error);
  Metrics& metrics = backend_.metrics();

  switch (spec->route) {
    case Route::healthz:
      return reply(json_reply(200, "{\"status\":\"ok\"}"));

    case Route::readyz: {
      auto reasons = backend_.not_ready_reasons();
      if (reasons.empty()) return reply(json_reply(200, "{\"status\":\"ready\",\"reasons\":[]}"));
      return reply(json_reply(503, "{\"status\":\"not ready\",\"reasons\":" +
                                       reasons_json(reasons) + "}"));
    }

    case Route::metrics: {
      // Gauges that mirror the store and the files are read at scrape time, so
      // they are never stale and the service need not keep them current. Only
      // what costs no scan: a scrape must not stall the stream (counts() took
      // 33 ms at 1,000,000 deltas, on the io thread, for a count of sessions
      // that no metric shows).
      auto [deltas, memory_bytes] = timed(metrics, QueryKind::stats, [&] {
        auto& store = backend_.store();
        return std::pair(store.delta_count(), store.memory_bytes());
      });
      auto extra = backend_.stats_extra();
      metrics.delta_count().set(static_cast<double>(deltas));
      metrics.database_memory_bytes().set(static_cast<double>(memory_bytes));
      metrics.database_file_bytes().set(static_cast<double>(extra.file_size));
      if (extra.journal_bytes) metrics.journal_bytes().set(static_cast<double>(*extra.journal_bytes));
      if (extra.connected) metrics.websocket_connected().set(*extra.connected ? 1 : 0);
      ApiReply answer;
      answer.content_type = "text/plain; version=0.0.4; charset=utf-8";
      answer.body = metrics.render();
      return reply(std::move(answer));
    }

    case Route::stats: {
      auto counts = timed(metrics, QueryKind::stats, [&] { return backend_.store().counts(); });
      return reply(json_reply(200, stats_json(counts, backend_.stats_extra())));
    }

    case Route::deltas:
    case Route::session_deltas: {
      auto query_or_error = read_delta_query(params);
      if (auto* error = std::get_if<ApiReply>(&query_or_error)) return reply(std::move(*error));
      auto& query = std::get<DeltaQuery>(query_or_error);
      if (spec->route == Route::session_deltas) {
        auto encoded = path.substr(kDeltasPrefix.size());
        auto checked = urls::make_pct_string_view(encoded);
        if (!checked) {
          return reply(parameter_error("sessionId", "the session id in the path has an invalid "
                                                    "percent-encoding: " + quoted(encoded)));
        }
        std::string id = checked->decode();
        if (id.empty()) {
          return reply(parameter_error("sessionId", "the session id after /api/deltas/ is empty"));
        }
        query.session_id = std::move(id);
      }
      auto page = timed(metrics, QueryKind::deltas,
                        [&] { return backend_.store().get_deltas(query); });
      if (!page.ok()) return reply(error_reply(500, "query failed", page.error()));
      return reply(json_reply(200, delta_page_json(*page)));
    }

    case Route::sessions: {
      auto rows = timed(metrics, QueryKind::sessions, [&] { return backend_.store().sessions(); });
      if (!rows.ok()) return reply(error_reply(500, "query failed", rows.error()));
      return reply(json_reply(200, sessions_json(*rows)));
    }

    case Route::export_all: {
      auto format = ExportFormat::json;
      if (auto value = get(params, "format")) {
        auto parsed_format = parse_export_format(*value);
        if (!parsed_format) {
          return reply(parameter_error("format", "format must be json, ndjson or csv, got " +
                                                     quoted(*value)));
        }
        format = *parsed_format;
      }
      auto state = std::make_shared<ExportState>(ExportState{
          &backend_.store(), &metrics, ExportWriter(format), options_.export_page_rows});
      ApiReply answer;
      answer.content_type = std::string(content_type(format));
      std::string extension = format == ExportFormat::csv      ? "csv"
                              : format == ExportFormat::ndjson ? "ndjson"
                                                               : "json";
      answer.headers.emplace_back("Content-Disposition",
                                  "attachment; filename=\"deltatap-export." + extension + "\"");
      answer.next_chunk = [state] { return next_export_chunk(*state); };
      return reply(std::move(answer));
    }

    case Route::snapshot: {
      auto extra = backend_.stats_extra();
      if (!extra.enabled) {
        return reply(error_reply(409, "storage disabled",
                                 "storage is off ([storage] enabled / PERSIST=1), so there is "
                                 "no file to snapshot to"));
      }
      backend_.snapshot_now([reply, path = extra.db_path](Status status, std::uint64_t bytes,
                                                          double seconds) {
        if (!status.ok()) return reply(error_reply(500, "snapshot failed", status.error()));
        std::string body = "{\"path\":";
        append_json_string(body, path);
        body += ",\"bytes\":" + std::to_string(bytes) + ",\"seconds\":";
        char buffer[32];
        auto [end, ec] = std::to_chars(buffer, buffer + sizeof buffer, seconds);
        body.append(buffer, ec == std::errc() ? end : buffer);
        if (ec != std::errc()) body += '0';
        body += '}';
        reply(json_reply(200, std::move(body)));
      });
      return;
    }

    case Route::cleanup: {
      auto cutoff_or_error = read_older_than(params);
      if (auto* error = std::get_if<ApiReply>(&cutoff_or_error)) return reply(std::move(*error));
      auto cutoff = std::get<TimePoint>(cutoff_or_error);
      auto deleted =
          timed(metrics, QueryKind::cleanup, [&] { return backend_.cleanup(cutoff); });
      if (!deleted.ok()) return reply(error_reply(500, "cleanup failed", deleted.error()));
      metrics.cleanup_deleted().inc(static_cast<std::uint64_t>(*deleted));
      log_info("cleanup requested over the API",
               {{"DELETED", std::to_string(*deleted)}, {"OLDER_THAN", format_timestamp(cutoff)}});
      std::string body = "{\"deleted\":" + std::to_string(*deleted) + ",\"olderThan\":";
      append_json_string(body, format_timestamp(cutoff));
      body += '}';
      return reply(json_reply(200, std::move(body)));
    }
  }
  reply(error_reply(500, "internal error", "unhandled route"));
}

// ---------------------------------------------------------------------------
// HttpApi: the listener and one Session per connection.

class Session;

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
  std::optional<ApiHandler> handler;
  std::string bound;
  bool stopped = false;
  int connections = 0;
  std::uint64_t next_session = 0;
  std::map<std::uint64_t, std::weak_ptr<Session>> sessions;
};

namespace {

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

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(std::shared_ptr<HttpServerState> state, tcp::socket socket, bool overloaded)
      : state_(std::move(state)), stream_(std::move(socket)), overloaded_(overloaded) {
    ++state_->connections;
    id_ = state_->next_session++;
  }

  ~Session() {
    --state_->connections;
    state_->sessions.erase(id_);
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
                     beast::bind_front_handler(&Session::on_read, shared_from_this()));
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
                      beast::bind_front_handler(&Session::on_written, shared_from_this()));
  }

  void on_written(beast::error_code ec, std::size_t) {
    if (ec || state_->stopped) return close();
    if (!keep_alive_) return shutdown_send();
    read_request();
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
                             beast::bind_front_handler(&Session::on_chunk_written,
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
                       beast::bind_front_handler(&Session::on_written, shared_from_this()));
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
    auto done = beast::bind_front_handler(&Session::on_chunk_written, shared_from_this());
    if (chunked_) {
      net::async_write(stream_, http::make_chunk(net::buffer(chunk_)), std::move(done));
    } else {
      net::async_write(stream_, net::buffer(chunk_), std::move(done));
    }
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

void accept_next(const std::shared_ptr<HttpServerState>& state);

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
    bool overloaded = state->connections >= max;
    if (overloaded) {
      log_warning("HTTP connection limit reached", {{"LIMIT", std::to_string(max)}});
    }
    auto session = std::make_shared<Session>(state, std::move(socket), overloaded);
    state->sessions.emplace(session->id(), session);
    session->start();
  }
  accept_next(state);
}

void accept_next(const std::shared_ptr<HttpServerState>& state) {
  state->acceptor.async_accept([state](beast::error_code ec, tcp::socket socket) {
    on_accept(state, ec, std::move(socket));
  });
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
  // Closing may destroy sessions, which erase themselves: copy first.
  std::vector<std::shared_ptr<Session>> live;
  for (auto& [id, weak] : state_->sessions) {
    if (auto session = weak.lock()) live.push_back(std::move(session));
  }
  for (auto& session : live) session->close();
}

std::string HttpApi::bound_address() const { return state_->bound; }

}  // namespace deltatap
