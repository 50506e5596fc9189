// HttpApi: the daemon's HTTP API (design.md, "HTTP API"), served with Beast on
// the daemon's io_context, the thread that owns the store, so handlers call the
// store directly. Nothing in a handler blocks: answers are built from bounded
// queries, and the export is streamed page by page (chunked transfer), the next
// page read only once the previous one has been written.
//
// Two layers:
//  - ApiHandler decides what a request means (routing, authorisation, parameter
//    validation, the store queries, the JSON) with no socket involved. The
//    offline CLI drives the same handler over a snapshot file, so the CLI and the
//    API cannot disagree.
//  - HttpApi is the listener: connection limits, header/body size limits (413),
//    a deadline for each request to arrive (slow clients are dropped), keep-alive,
//    chunked streaming.
//
// Rules every endpoint follows: errors are JSON {"error":..., "detail":...}
// (with "parameter" when one parameter is at fault); unknown paths 404; a known
// path with the wrong method 405 with Allow; every query parameter is checked
// and unknown or repeated ones are refused (400), so a typo is never silently
// ignored; no SQL is ever built from request text. With a token configured every
// request needs "Authorization: Bearer TOKEN" (compared in constant time, 401
// otherwise); without one, POST endpoints answer only on a loopback listener (403).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "service/config.h"
#include "api/delta_json.h"
#include "api/metrics.h"
#include "base/result.h"
#include "storage/store.h"
#include "base/timestamp.h"

namespace boost::asio {
class io_context;
}

namespace deltatap {

// What the API needs from the running daemon; the service implements it.
// All calls come from the io_context thread.
class ApiBackend {
 public:
  virtual ~ApiBackend() = default;
  virtual Store& store() = 0;
  virtual StatsExtra stats_extra() = 0;
  // Why the daemon is not ready (stream down, snapshots failing); empty: ready.
  virtual std::vector<std::string> not_ready_reasons() = 0;
  // Takes a snapshot now. `done` runs once, on the io thread, possibly before
  // snapshot_now returns; `bytes` is the file size and `seconds` the duration.
  virtual void snapshot_now(std::function<void(Status, std::uint64_t bytes, double seconds)> done) = 0;
  virtual Metrics& metrics() = 0;
  // Deletes deltas stored before `older_than` (POST /api/cleanup). The default
  // deletes and, when anything went, compacts; the handler counts the deletions
  // in the metrics, so an override must not count them again.
  virtual Result<std::int64_t> cleanup(TimePoint older_than);
};

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

struct ApiRequest {
  std::string method;         // as sent: "GET", "POST", ...
  std::string target;         // origin form, e.g. "/api/deltas?limit=5"
  std::string authorization;  // the Authorization header, "" when absent
};

struct ApiReply {
  int status = 200;
  std::string content_type = "application/json";
  std::vector<std::pair<std::string, std::string>> headers;  // Allow, WWW-Authenticate, ...
  std::string body;
  // Set for a streamed answer (the export): each call returns the next piece,
  // doing a bounded amount of work, and nullopt after the last; an error ends
  // the stream early (the client sees a truncated body).
  std::function<Result<std::optional<std::string>>()> next_chunk;
};

class ApiHandler {
 public:
  struct Options {
    std::string token;             // "" : no authorisation required
    bool loopback_listener = true; // POST allowed without a token only then
    int export_page_rows = kMaxQueryLimit;
  };
  ApiHandler(ApiBackend& backend, Options options);

  // `reply` is called exactly once: before handle returns, or later for
  // POST /api/snapshot (from within the backend's done callback).
  void handle(const ApiRequest& request, std::function<void(ApiReply)> reply);

 private:
  ApiBackend& backend_;
  Options options_;
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
  Status start();
  // Stops accepting and closes every connection; idempotent.
  void stop();
  // "IP:PORT" actually bound (the real port when 0 was asked), "" before start.
  std::string bound_address() const;

 private:
  std::shared_ptr<HttpServerState> state_;
};

}  // namespace deltatap
