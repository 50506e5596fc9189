#include "api/api_handler.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <boost/url/parse.hpp>
#include <boost/url/pct_string_view.hpp>
#include <boost/url/url_view.hpp>

#include <algorithm>
#include <chrono>
#include <charconv>
#include <map>
#include <memory>
#include <string_view>
#include <utility>
#include <variant>

#include "api/analytics.h"
#include "api/delta_json.h"
#include "api/replies.h"
#include "api/web_console.h"
#include "base/duration.h"
#include "base/logging.h"
#include "storage/analytics_reads.h"
#include "storage/archive_reader.h"

namespace deltatap {

namespace {

namespace urls = boost::urls;
using SteadyClock = std::chrono::steady_clock;
using Reply = std::function<void(ApiReply)>;

double seconds_since(SteadyClock::time_point start) {
  return std::chrono::duration<double>(SteadyClock::now() - start).count();
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

std::string join(const std::vector<std::string_view>& names) {
  std::string out;
  for (auto name : names) {
    if (!out.empty()) out += ", ";
    out += name;
  }
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
// Parameters

using Params = std::map<std::string, std::string, std::less<>>;

// Decoded query parameters; names not in `allowed`, and repeated ones, are errors.
std::variant<Params, ApiReply> read_params(const urls::url_view& url,
                                           const std::vector<std::string_view>& allowed) {
  Params params;
  if (!url.has_query()) return params;
  for (auto param : url.params()) {
    if (param.key.empty() && !param.has_value) continue;  // "?" or "a=1&&b=2"
    if (std::find(allowed.begin(), allowed.end(), param.key) == allowed.end()) {
      std::string takes = allowed.empty() ? std::string("this endpoint takes no parameters")
                                          : "allowed: " + join(allowed);
      return unknown_parameter(param.key,
                               "unknown parameter " + quoted(param.key) + " (" + takes + ")");
    }
    if (!params.emplace(param.key, param.value).second) {
      return parameter_error(param.key, param.key + " is given more than once");
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

// ?archive=1: the answer reads the archive files as well as memory
// (storage/archive_reader.h); 0 or absent: memory only.
std::variant<bool, ApiReply> read_archive_flag(const Params& params) {
  auto value = get(params, "archive");
  if (!value || *value == "0") return false;
  if (*value == "1") return true;
  return parameter_error("archive", "archive must be 1 (read the archive files too) or 0, got " +
                                        quoted(*value));
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

// ---------------------------------------------------------------------------
// The export

// One export in progress: pages through the store newest first with the keyset
// cursor, so each call is one bounded query and deltas arriving meanwhile
// neither repeat nor shift what is still to come. Each page is timed here, not
// by the dispatcher: the pages are read after the dispatcher has answered.
struct ExportState {
  Store* store;
  Metrics* metrics;
  ExportWriter writer;
  int page_rows;
  std::shared_ptr<ArchiveReader> archive;  // ?archive=1: the files too
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
  auto start = SteadyClock::now();
  auto page = state.archive ? state.archive->get_deltas(*state.store, query)
                            : state.store->get_deltas(query);
  state.metrics->query_duration(QueryKind::export_page).observe(seconds_since(start));
  if (!page.ok()) return Error{page.error()};
  for (const auto& row : page->deltas) state.writer.row(chunk, row);
  state.cursor = page->next;
  if (!state.cursor) {
    state.writer.end(chunk);
    state.finished = true;
  }
  return std::optional<std::string>(std::move(chunk));
}

// ---------------------------------------------------------------------------
// Endpoints: one function each. The dispatcher has already routed the request,
// checked its method, authorisation and parameter names, and times the call;
// an endpoint checks its parameters' values, asks the backend, and replies.

// What an endpoint is given. It lives for the endpoint's call only: an endpoint
// that answers later (snapshot) copies the reply.
struct Call {
  ApiBackend& backend;
  const ApiHandler::Options& options;
  std::string_view path;  // percent-encoded, as routed
  const Params& params;
  const Reply& reply;     // exactly once
};

void healthz(const Call& call) { call.reply(health_reply()); }

void readyz(const Call& call) { call.reply(readiness_reply(call.backend.not_ready_reasons())); }

// Gauges that mirror the store and the files are read at scrape time, here and
// nowhere else, so they are never stale and the service need not keep them
// current. The connection state among them: the stream lane knows it and
// stats_extra() reports it. Only what costs
// no scan: a scrape must not stall the stream (counts() took 33 ms at 1,000,000
// deltas, on the io thread, for a count of sessions that no metric shows).
void metrics_page(const Call& call) {
  auto& store = call.backend.store();
  auto stored = store.delta_count();
  auto memory_bytes = store.memory_bytes();
  auto extra = call.backend.stats_extra();
  Metrics& metrics = call.backend.metrics();
  metrics.delta_count().set(static_cast<double>(stored));
  metrics.database_memory_bytes().set(static_cast<double>(memory_bytes));
  metrics.database_file_bytes().set(static_cast<double>(extra.file_size));
  metrics.compression_ratio().set(store.compression_stats().ratio());
  if (extra.journal_bytes) metrics.journal_bytes().set(static_cast<double>(*extra.journal_bytes));
  if (extra.connected) metrics.websocket_connected().set(*extra.connected ? 1 : 0);
  // A count over the ledger's rows (one per session), not the history.
  if (auto live = live_session_count(store); live.ok()) {
    metrics.sessions_live().set(static_cast<double>(*live));
  }
  call.reply(metrics_reply(metrics.render()));
}

void stats(const Call& call) {
  auto counts = call.backend.store().counts();
  call.reply(stats_reply(counts, call.backend.stats_extra()));
}

// The archive files of ?archive=1, opened for this request, or the reply
// that says why not.
std::variant<std::shared_ptr<ArchiveReader>, ApiReply> open_archive(const Call& call) {
  auto directory = call.backend.archive_directory();
  if (!directory) {
    return error_reply(409, "no archive",
                       "storage is off ([storage] enabled / PERSIST=1), so there are no archive "
                       "files to read");
  }
  auto reader = ArchiveReader::open(*directory);
  if (!reader.ok()) return error_reply(500, "cannot read the archive", reader.error());
  return std::make_shared<ArchiveReader>(std::move(*reader));
}

void answer_deltas(const Call& call, const DeltaQuery& query) {
  auto archive = read_archive_flag(call.params);
  if (auto* refused = std::get_if<ApiReply>(&archive)) return call.reply(std::move(*refused));
  Result<DeltaPage> page = Error{""};
  if (std::get<bool>(archive)) {
    auto reader = open_archive(call);
    if (auto* refused = std::get_if<ApiReply>(&reader)) return call.reply(std::move(*refused));
    page = std::get<std::shared_ptr<ArchiveReader>>(reader)->get_deltas(call.backend.store(), query);
  } else {
    page = call.backend.store().get_deltas(query);
  }
  if (!page.ok()) return call.reply(error_reply(500, "query failed", page.error()));
  call.reply(delta_page_reply(*page));
}

void deltas(const Call& call) {
  auto query = read_delta_query(call.params);
  if (auto* refused = std::get_if<ApiReply>(&query)) return call.reply(std::move(*refused));
  answer_deltas(call, std::get<DeltaQuery>(query));
}

constexpr std::string_view kDeltasPrefix = "/api/deltas/";

// The session id is the rest of the path, percent-decoded, slashes and all.
void session_deltas(const Call& call) {
  auto query = read_delta_query(call.params);
  if (auto* refused = std::get_if<ApiReply>(&query)) return call.reply(std::move(*refused));
  auto encoded = call.path.substr(kDeltasPrefix.size());
  auto checked = urls::make_pct_string_view(encoded);
  if (!checked) {
    return call.reply(parameter_error("sessionId", "the session id in the path has an invalid "
                                                   "percent-encoding: " + quoted(encoded)));
  }
  std::string id = checked->decode();
  if (id.empty()) {
    return call.reply(parameter_error("sessionId", "the session id after /api/deltas/ is empty"));
  }
  std::get<DeltaQuery>(query).session_id = std::move(id);
  answer_deltas(call, std::get<DeltaQuery>(query));
}

void sessions(const Call& call) {
  auto rows = call.backend.store().sessions();
  if (!rows.ok()) return call.reply(error_reply(500, "query failed", rows.error()));
  call.reply(sessions_reply(*rows));
}

// ?csv=raw turns off the neutralisation of CSV cells that a spreadsheet would
// run as formulas (api/delta_json.h, CsvCells), for programs that read the CSV.
// It changes nothing in json or ndjson, which have no such cells.
void export_all(const Call& call) {
  auto format = ExportFormat::json;
  if (auto value = get(call.params, "format")) {
    auto parsed = parse_export_format(*value);
    if (!parsed) {
      return call.reply(parameter_error("format", "format must be json, ndjson or csv, got " +
                                                      quoted(*value)));
    }
    format = *parsed;
  }
  auto cells = CsvCells::neutralised;
  if (auto value = get(call.params, "csv")) {
    if (*value != "raw") {
      return call.reply(parameter_error(
          "csv", "csv must be raw (every CSV cell as stored), got " + quoted(*value) +
                     "; without it a cell starting with = + - @, tab or CR gets a leading '"));
    }
    cells = CsvCells::raw;
  }
  auto archive = read_archive_flag(call.params);
  if (auto* refused = std::get_if<ApiReply>(&archive)) return call.reply(std::move(*refused));
  std::shared_ptr<ArchiveReader> reader;
  if (std::get<bool>(archive)) {
    auto opened = open_archive(call);
    if (auto* refused = std::get_if<ApiReply>(&opened)) return call.reply(std::move(*refused));
    reader = std::get<std::shared_ptr<ArchiveReader>>(opened);
  }
  auto state = std::make_shared<ExportState>(ExportState{
      &call.backend.store(), &call.backend.metrics(), ExportWriter(format, cells),
      call.options.export_page_rows, std::move(reader)});
  call.reply(export_reply(format, [state] { return next_export_chunk(*state); }));
}

// Answers when the backend's snapshot is done, which may be after this returns.
void snapshot(const Call& call) {
  auto extra = call.backend.stats_extra();
  if (!extra.enabled) {
    return call.reply(error_reply(409, "storage disabled",
                                  "storage is off ([storage] enabled / PERSIST=1), so there is "
                                  "no file to snapshot to"));
  }
  call.backend.snapshot_now([reply = call.reply, path = extra.db_path](
                                Status status, std::uint64_t bytes, double seconds) {
    if (!status.ok()) return reply(error_reply(500, "snapshot failed", status.error()));
    reply(snapshot_reply(path, bytes, seconds));
  });
}

void cleanup(const Call& call) {
  auto cutoff_or_error = read_older_than(call.params);
  if (auto* refused = std::get_if<ApiReply>(&cutoff_or_error)) {
    return call.reply(std::move(*refused));
  }
  auto cutoff = std::get<TimePoint>(cutoff_or_error);
  auto deleted = call.backend.cleanup(cutoff);
  if (!deleted.ok()) return call.reply(error_reply(500, "cleanup failed", deleted.error()));
  call.backend.metrics().cleanup_deleted().inc(static_cast<std::uint64_t>(*deleted));
  log_info("cleanup requested over the API",
           {{"DELETED", std::to_string(*deleted)}, {"OLDER_THAN", format_timestamp(cutoff)}});
  call.reply(cleanup_reply(*deleted, cutoff));
}

// GET /api/analytics/{durations,approvals,heatmap}: api/analytics.h answers,
// from the ledger's facts and the activity counts (bounded reads).
void analytics_durations(const Call& call) {
  call.reply(analytics_reply(call.backend.store(), AnalyticsKind::durations, call.params,
                             now_millis()));
}
void analytics_approvals(const Call& call) {
  call.reply(analytics_reply(call.backend.store(), AnalyticsKind::approvals, call.params,
                             now_millis()));
}
void analytics_heatmap(const Call& call) {
  call.reply(analytics_reply(call.backend.store(), AnalyticsKind::heatmap, call.params,
                             now_millis()));
}

// ---------------------------------------------------------------------------
// Routes

struct Route {
  std::string_view path;
  bool prefix = false;  // `path` starts the path; the rest is the endpoint's argument
  std::vector<std::string_view> methods = {"GET"};
  std::vector<std::string_view> params;  // every query parameter the endpoint takes
  // Changes state: needs the token, or without one a loopback listener.
  bool changes_state = false;
  // What a call is timed as in Metrics::query_duration; unset: not timed.
  std::optional<QueryKind> timed;
  void (*endpoint)(const Call&) = nullptr;
};

// In order of matching: "/api/deltas" before the prefix "/api/deltas/".
const std::vector<Route>& routes() {
  static const std::vector<Route> table = {
      {.path = "/healthz", .endpoint = healthz},
      {.path = "/readyz", .endpoint = readyz},
      {.path = "/metrics", .timed = QueryKind::stats, .endpoint = metrics_page},
      {.path = "/api/stats", .timed = QueryKind::stats, .endpoint = stats},
      {.path = "/api/deltas",
       .params = {"sessionId", "type", "since", "until", "limit", "before", "archive"},
       .timed = QueryKind::deltas,
       .endpoint = deltas},
      {.path = kDeltasPrefix,
       .prefix = true,
       .params = {"type", "since", "until", "limit", "before", "archive"},
       .timed = QueryKind::deltas,
       .endpoint = session_deltas},
      {.path = "/api/sessions", .timed = QueryKind::sessions, .endpoint = sessions},
      {.path = "/api/export", .params = {"format", "csv", "archive"}, .endpoint = export_all},
      {.path = "/api/analytics/durations",
       .params = {"since", "until", "repo", "format"},
       .timed = QueryKind::analytics,
       .endpoint = analytics_durations},
      {.path = "/api/analytics/approvals",
       .params = {"since", "until", "repo", "tz", "format"},
       .timed = QueryKind::analytics,
       .endpoint = analytics_approvals},
      {.path = "/api/analytics/heatmap",
       .params = {"since", "until", "repo", "tz", "format"},
       .timed = QueryKind::analytics,
       .endpoint = analytics_heatmap},
      {.path = "/api/snapshot", .methods = {"POST"}, .changes_state = true, .endpoint = snapshot},
      {.path = "/api/cleanup",
       .methods = {"POST"},
       .params = {"olderThan"},
       .changes_state = true,
       .timed = QueryKind::cleanup,
       .endpoint = cleanup},
  };
  return table;
}

const Route* find_route(std::string_view path) {
  for (const auto& route : routes()) {
    if (route.prefix ? path.starts_with(route.path) : path == route.path) return &route;
  }
  return nullptr;
}

// `reply`, observing first how long the endpoint took, as a `kind` query. A
// request the endpoint refused (4xx: a parameter's value) never reached the
// store, so it is not a query and is not observed.
Reply timed_reply(Metrics& metrics, QueryKind kind, Reply reply) {
  return [&metrics, kind, reply = std::move(reply), start = SteadyClock::now()](ApiReply answer) {
    if (answer.status / 100 != 4) metrics.query_duration(kind).observe(seconds_since(start));
    reply(std::move(answer));
  };
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

std::optional<ApiReply> ApiHandler::refuse_unauthorised(std::string_view authorization) const {
  if (options_.token.empty() || authorised(authorization, options_.token)) return std::nullopt;
  return unauthorized(authorization.empty() ? "this API needs an Authorization: Bearer token"
                                            : "the bearer token is not the one configured");
}

std::optional<ApiReply> ApiHandler::refuse_unauthorised(std::string_view target,
                                                        std::string_view authorization) const {
  if (is_console_target(target)) return std::nullopt;
  return refuse_unauthorised(authorization);
}

// The checks come in this order so that a client without the token learns
// nothing of the routes, and a request is refused for the first thing wrong
// with it, the same one each time.
void ApiHandler::handle(const ApiRequest& request, std::function<void(ApiReply)> reply) {
  // The console's files, and nothing else, answer without the token; a target
  // under /ui/ never reaches an API route (web_console.h).
  if (is_console_target(request.target)) {
    return reply(console_reply(request.method, request.target, request.if_none_match));
  }
  if (auto refused = refuse_unauthorised(request.authorization)) return reply(std::move(*refused));
  auto url = urls::parse_origin_form(request.target);
  if (!url) {
    return reply(error_reply(400, "bad request",
                             "the request target is not a valid origin-form URL: " +
                                 quoted(request.target)));
  }
  std::string_view path = url->encoded_path();
  const Route* route = find_route(path);
  if (!route) return reply(error_reply(404, "not found", "no endpoint at " + quoted(path)));
  const auto& methods = route->methods;
  if (std::find(methods.begin(), methods.end(), request.method) == methods.end()) {
    std::string allowed = join(methods);
    return reply(method_not_allowed(allowed, std::string(route->path) + " answers " + allowed +
                                                 " only, not " + quoted(request.method)));
  }
  if (route->changes_state && options_.token.empty() && !options_.loopback_listener) {
    return reply(error_reply(403, "forbidden",
                             "POST endpoints need [http] token when the listener is not "
                             "loopback"));
  }
  auto params = read_params(*url, route->params);
  if (auto* refused = std::get_if<ApiReply>(&params)) return reply(std::move(*refused));
  if (route->timed) reply = timed_reply(backend_.metrics(), *route->timed, std::move(reply));
  route->endpoint(Call{backend_, options_, path, std::get<Params>(params), reply});
}

}  // namespace deltatap
