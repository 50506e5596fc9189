// ReconcileFetch: one GET of the backend's list of live sessions, for
// reconciliation after a (re)connect (design.md, "Fidelity"; issue 14). It
// only fetches: what the body means is ingest/reconcile_answer.h's business,
// and when to fetch, what to log and when to retry are the stream lane's.
//
// The request: GET <target> HTTP/1.1 to the URL's host and port, with Host,
// "Accept: application/json", "Connection: close", the User-Agent the stream
// sends, "Authorization: Bearer <token>" when a token is set, then the extra
// header lines as the stream sends them (parse_stream_header(); a line it
// refuses is skipped, and a configured header of the same name, Authorization
// included, replaces ours: it is what the operator set). https:// verifies the
// peer exactly as the stream does (stream/tls_context.h). One request per
// connection; redirects are not followed.
//
// Outcomes, each reported once through `done`:
//   success      the answer's status was 200 and its whole body (at most
//                max_body_bytes) was read. Nothing else is a success: other
//                2xx and 3xx are http_status failures too.
//   unreachable  no usable HTTP answer: the URL is not usable, the name did
//                not resolve, the connection was refused or reset, or what
//                came back is not HTTP
//   timed_out    resolve, connect, TLS, request and answer together took
//                longer than `timeout` (one deadline for the whole request)
//   http_status  an answer other than 200, with its status; its body is not
//                read
//   too_large    the body is longer than max_body_bytes, or the header longer
//                than kMaxReconcileHeaderBytes
//   tls          the TLS setup or handshake failed (certificate refused, not
//                TLS, ca_file unreadable), or the server ended TLS in a way
//                that could have cut the answer short
// The detail is one sentence naming the URL in its display form (query shown
// as "?...", see StreamUrl) and the step; it never holds the token, a header
// value or the URL's query. Nothing is logged here: the caller logs outcomes.
//
// Threading and lifetime: call start_reconcile_fetch() and cancel() on the
// io_context's thread (or while it is not running). `done` runs on that
// thread, never inside start_reconcile_fetch() itself, exactly once, unless
// cancel() came first. The request keeps itself alive until it is over; the
// returned handle is only needed to cancel it.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "stream/stream_options.h"

namespace boost::asio {
class io_context;
}

namespace deltatap {

// Far above any real answer's header; a hostile server cannot make us keep more.
inline constexpr std::uint32_t kMaxReconcileHeaderBytes = 64 * 1024;

struct ReconcileFetchOptions {
  std::string url;                          // http:// or https:// (parse_reconcile_url)
  std::string token;                        // "Authorization: Bearer <token>" when not empty
  std::vector<std::string> headers;         // extra "Name: value" lines, as the stream's
  std::string ca_file;                      // extra CA for https://
  bool insecure_skip_verify = false;        // as the stream's; no warning is logged here
  std::chrono::milliseconds timeout{10'000};  // the whole request, first step to last byte
  std::uint64_t max_body_bytes = 64u << 20;
};

// The fetch options for a stream's settings: its reconcile_url, or the one
// derived from its url (reconcile_url_for), its token, headers and TLS
// settings; timeout and max_body_bytes keep their defaults. An error when
// neither URL is usable (the configuration refuses both at start).
Result<ReconcileFetchOptions> reconcile_fetch_options(const StreamOptions& stream);

enum class ReconcileFailureKind { unreachable, timed_out, http_status, too_large, tls };

// "unreachable", "timed_out", "http_status", "too_large", "tls": stable labels
// for logs and metrics.
std::string_view to_string(ReconcileFailureKind kind);

struct ReconcileFetchFailure {
  ReconcileFailureKind kind = ReconcileFailureKind::unreachable;
  int http_status = 0;  // the answer's status for http_status, else 0
  std::string detail;   // one sentence; no token, header value or URL query
};

struct ReconcileFetchOutcome {
  std::optional<ReconcileFetchFailure> failure;  // none: the backend answered 200
  std::string body;                              // the 200 answer's body; empty on failure

  bool ok() const { return !failure.has_value(); }
};

class ReconcileFetch {
 public:
  virtual ~ReconcileFetch() = default;

  // Ends the request now: the connection is closed and the timers cancelled.
  // After cancel() returns, `done` is never called, and it has been released
  // (so whatever it holds is freed). The request's pending handlers still run,
  // promptly, and find it cancelled; an io_context with nothing else to do
  // then returns from run(). A no-op once `done` has run.
  virtual void cancel() = 0;
};

// Starts the request. Whatever happens, `done` gets the outcome (see above).
std::shared_ptr<ReconcileFetch> start_reconcile_fetch(
    boost::asio::io_context& io, ReconcileFetchOptions options,
    std::function<void(ReconcileFetchOutcome)> done);

}  // namespace deltatap
