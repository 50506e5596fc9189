// Reconciler: the stream lane's half of reconciliation (design.md, "Fidelity").
// After every (re)connect it fetches the backend's live sessions
// (stream/reconcile_fetch.h), reads the answer (reconcile_answer.h) and hands
// the stream lane a LiveSessionList to journal and queue like a frame, so that
// what the store lane infers from it lands in order with the stream's deltas.
// What to infer is decided on the store lane (ledger_rules.h).
//
// Ids: the list needs one id for each delta it may lead to, taken from the
// stream lane's counter when the answer arrives. It may lead to a delta for
// each listed session and a deletion for each live session it lacks, so the
// reconciler keeps the set of sessions that may be live: the ledger's live
// sessions at start, then every session a delta names (created and updated add,
// deleted removes) and every list (which replaces it). It is never smaller
// than the ledger's set, so the ids set aside always suffice.
//
// The race: the fetch and the broadcast read the backend at different polls,
// and frames already on their way arrive after the answer. So the answer is
// held for a grace period (ReconcilerOptions::grace, longer than the backend's
// poll interval and any frame's time on the wire) before it becomes a list, and
// a session the stream names between the start of the fetch and the end of the
// grace goes into the list's `keep`: the stream, the fresher witness, speaks
// for it. (Should a frame still come later, the ledger's rules take an
// `updated` that repeats a change reconciliation already inferred for an
// echo.) Sessions the backend listed but that could not be read are kept too,
// and an answer with more pages ends no session.
//
// Failures (unreachable, timeout, TLS, an HTTP error, a body of another
// shape) are counted (IngestMetrics::reconcile_failures) and logged once per
// change of cause; the fetch is retried with the stream's backoff while the
// connection lasts. A 404 means the backend has no such endpoint:
// reconciliation is off until the next start, logged once. `reconcile = off`
// turns it off from the start.
//
// Threads: the stream lane only; every method runs on its io_context.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_set>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include "base/delta.h"
#include "ingest/ingest_metrics.h"
#include "ingest/parser.h"
#include "ingest/reconcile_answer.h"
#include "stream/reconcile_fetch.h"
#include "stream/stream_options.h"

namespace deltatap {

struct ReconcilerOptions {
  // How long an answer waits for the stream to speak for its sessions. The
  // real backend polls every 5 s and re-announces its sessions at the first
  // poll after a (re)start.
  std::chrono::milliseconds grace{10'000};
};

class Reconciler {
 public:
  // `allocate_ids(n)` returns the first of n consecutive ids from the lane's
  // counter. `deliver` gets each list (ids set aside) with the rejections of
  // its answer's elements, to journal and queue.
  using AllocateIds = std::function<std::int64_t(std::int64_t count)>;
  using Deliver = std::function<void(LiveSessionList list, std::vector<Rejection> rejections)>;

  Reconciler(boost::asio::io_context& io, const StreamOptions& stream, ReconcilerOptions options,
             std::vector<std::string> live_sessions, IngestMetrics& metrics,
             AllocateIds allocate_ids, Deliver deliver);
  ~Reconciler();
  Reconciler(const Reconciler&) = delete;
  Reconciler& operator=(const Reconciler&) = delete;

  void on_connected();
  void on_disconnected();  // cancels a fetch on its way and any retry
  // The deltas of one frame, as the stream lane numbered them.
  void on_deltas(const std::vector<StoredDelta>& deltas);
  void reconfigure(const StreamOptions& stream);
  void stop();

 private:
  void start_fetch();
  void on_fetched(ReconcileFetchOutcome outcome);
  void deliver_answer();
  void failed(const std::string& cause, const std::string& detail);
  void retry_later();

  boost::asio::io_context& io_;
  StreamOptions stream_;
  ReconcilerOptions options_;
  IngestMetrics& metrics_;
  AllocateIds allocate_ids_;
  Deliver deliver_;

  std::unordered_set<std::string> maybe_live_;
  // Named by the stream from the start of a fetch to the end of its grace.
  std::unordered_set<std::string> touched_;
  bool collecting_ = false;
  std::shared_ptr<ReconcileFetch> fetch_;
  std::optional<ReconcileAnswer> held_;  // an answer in its grace period
  boost::asio::steady_timer retry_timer_;
  boost::asio::steady_timer grace_timer_;
  std::chrono::milliseconds backoff_{0};
  bool connected_ = false;
  bool disabled_ = false;     // a 404, until the next start
  std::string last_failure_;  // the cause last logged; empty while working
};

}  // namespace deltatap
