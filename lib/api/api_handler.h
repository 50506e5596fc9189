// ApiHandler: what a request to the daemon's HTTP API (design.md, "HTTP API")
// means, decided with no socket involved: routing, authorisation, parameter
// checks, the store queries and the reply. The listener (api/http_server.h)
// hands it the requests that arrive over the network; the offline CLI
// (cli/source.h) drives the same handler over a snapshot file, so the CLI and
// the API cannot disagree.
//
// Everything runs on the io_context thread that owns the store, so endpoints
// call the store directly. Nothing blocks: answers are built from bounded
// queries, and the export is streamed page by page, the next page read only
// when the caller asks for the next chunk.
//
// Rules every endpoint follows: errors are JSON {"error":..., "detail":...}
// (with "parameter" when one parameter is at fault; api/replies.h builds every
// answer); unknown paths 404; a known path with the wrong method 405 with
// Allow; every query parameter is checked and unknown or repeated ones are
// refused (400), so a typo is never silently ignored; no SQL is ever built from
// request text. With a token configured every request needs
// "Authorization: Bearer TOKEN" (compared in constant time, 401 otherwise),
// except the web console's files under /ui/ (api/web_console.h: the page must
// load to ask for the token; the data it shows comes from the API, which needs
// it); without one, POST endpoints answer only on a loopback listener (403).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "api/metrics.h"
#include "base/result.h"
#include "base/timestamp.h"
#include "storage/store.h"

namespace deltatap {

// What the store cannot know about the daemon around it (GET /api/stats).
// The PostgreSQL sink as /api/stats shows it (sinks/postgres_sink.h's
// status, copied by the service: api/ does not reach sinks/).
struct PostgresStats {
  std::string target;  // the connection, without its password
  std::string source;
  bool connected = false;
  std::int64_t mark = 0;  // highest delta id sent
  std::int64_t lag = 0;   // deltas stored and not yet sent
  std::uint64_t errors = 0;
  std::optional<std::string> last_error;
};

// The archive files ([retention] archive; storage/archive.h) as /api/stats
// shows them.
struct ArchiveStats {
  std::string directory;
  std::uint64_t files = 0;  // deltas-YYYY-MM.sqlite files in it
  std::uint64_t bytes = 0;  // their size on disk
  std::uint64_t moved = 0;  // deltas moved into them since start (0 offline)
};

struct StatsExtra {
  bool enabled = false;                          // storage on (PERSIST)
  std::string db_path;
  std::uint64_t file_size = 0;                   // snapshot file, 0 when missing
  std::optional<std::string> last_snapshot_at;   // normalised time of the last success
  std::optional<std::string> last_snapshot_error;
  std::optional<bool> connected;                 // absent offline
  std::optional<std::string> stream_url;
  std::optional<std::uint64_t> journal_bytes;
  std::optional<std::string> started_at;
  std::optional<PostgresStats> postgres;         // absent without [postgres] url
  std::optional<ArchiveStats> archive;           // absent with [retention] archive off
};

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
  // The directory of the archive files (storage/archive_file.h) that
  // ?archive=1 reads beside the store; nullopt when there can be none
  // (storage off), and ?archive=1 is then refused (409).
  virtual std::optional<std::string> archive_directory() { return std::nullopt; }
};

struct ApiRequest {
  std::string method;         // as sent: "GET", "POST", ...
  std::string target;         // origin form, e.g. "/api/deltas?limit=5"
  std::string authorization;  // the Authorization header, "" when absent
  std::string if_none_match;  // the If-None-Match header, "" when absent (console files)
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
  // `backend` must outlive the handler and every streamed reply it made.
  ApiHandler(ApiBackend& backend, Options options);

  // `reply` is called exactly once: before handle returns, or later for
  // POST /api/snapshot (from within the backend's done callback).
  // Store queries are timed into Metrics::query_duration here. Replies are
  // not counted here: Metrics::http_requests counts HTTP responses, and only
  // the listener sees them all (its own 413s and 503s among them).
  void handle(const ApiRequest& request, std::function<void(ApiReply)> reply);

  // The 401 that handle() would answer for a request whose Authorization
  // header is `authorization`, or nullopt when it may go on. The listener asks
  // as soon as a request's headers are in, so that a client without the token
  // cannot make it read (and hold) a body.
  std::optional<ApiReply> refuse_unauthorised(std::string_view authorization) const;
  // As above for a request to `target` (origin form, as received): nullopt
  // also for the web console's files, which need no token.
  std::optional<ApiReply> refuse_unauthorised(std::string_view target,
                                              std::string_view authorization) const;

 private:
  ApiBackend& backend_;
  Options options_;
};

}  // namespace deltatap
