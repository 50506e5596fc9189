#include "ingest/reconciler.h"

#include <algorithm>
#include <utility>

#include "base/logging.h"
#include "ingest/reconcile_answer.h"

namespace deltatap {

Reconciler::Reconciler(boost::asio::io_context& io, const StreamOptions& stream,
                       ReconcilerOptions options, std::vector<std::string> live_sessions,
                       IngestMetrics& metrics, AllocateIds allocate_ids, Deliver deliver)
    : io_(io),
      stream_(stream),
      options_(options),
      metrics_(metrics),
      allocate_ids_(std::move(allocate_ids)),
      deliver_(std::move(deliver)),
      maybe_live_(std::make_move_iterator(live_sessions.begin()),
                  std::make_move_iterator(live_sessions.end())),
      retry_timer_(io),
      grace_timer_(io) {}

Reconciler::~Reconciler() { stop(); }

void Reconciler::stop() {
  on_disconnected();
}

void Reconciler::reconfigure(const StreamOptions& stream) { stream_ = stream; }

void Reconciler::on_connected() {
  connected_ = true;
  backoff_ = std::chrono::milliseconds(0);
  start_fetch();
}

// What the stream said while away is unknown: an answer held is dropped, and
// the next connect asks again.
void Reconciler::on_disconnected() {
  connected_ = false;
  collecting_ = false;
  if (fetch_) fetch_->cancel();
  fetch_.reset();
  held_.reset();
  retry_timer_.cancel();
  grace_timer_.cancel();
}

void Reconciler::on_deltas(const std::vector<StoredDelta>& deltas) {
  for (const auto& row : deltas) {
    if (row.delta.type == DeltaType::deleted) {
      maybe_live_.erase(row.delta.session_id);
    } else {
      maybe_live_.insert(row.delta.session_id);
    }
    if (collecting_) touched_.insert(row.delta.session_id);
  }
}

void Reconciler::start_fetch() {
  if (!stream_.reconcile || disabled_ || !connected_) return;
  auto options = reconcile_fetch_options(stream_);
  if (!options.ok()) {
    failed("configuration", options.error());
    return;
  }
  options->timeout = stream_.connect_timeout;
  touched_.clear();
  collecting_ = true;
  fetch_ = start_reconcile_fetch(io_, std::move(options.value()),
                                 [this](ReconcileFetchOutcome outcome) {
                                   fetch_.reset();
                                   on_fetched(std::move(outcome));
                                 });
}

void Reconciler::on_fetched(ReconcileFetchOutcome outcome) {
  if (!outcome.ok()) {
    const auto& failure = *outcome.failure;
    if (failure.kind == ReconcileFailureKind::http_status && failure.http_status == 404) {
      disabled_ = true;
      metrics_.reconcile_failures.get("not_found").inc();
      log_warning("Reconciliation is off until the next start: the backend has no list of live "
                  "sessions at the reconcile URL (404); set [stream] reconcile_url, or "
                  "reconcile = off",
                  {{"DETAIL", failure.detail}});
      return;
    }
    std::string cause(to_string(failure.kind));
    if (failure.http_status) cause += " " + std::to_string(failure.http_status);
    metrics_.reconcile_failures.get(to_string(failure.kind)).inc();
    failed(cause, failure.detail);
    return;
  }
  auto answer = parse_reconcile_answer(outcome.body);
  if (!answer.ok()) {
    metrics_.reconcile_failures.get("bad_body").inc();
    failed("bad_body", "the answer is not a list of sessions: " + answer.error());
    return;
  }
  if (!last_failure_.empty()) {
    log_info("Reconciliation works again", {{"AFTER", last_failure_}});
    last_failure_.clear();
  }
  held_ = std::move(answer.value());
  grace_timer_.expires_after(options_.grace);
  grace_timer_.async_wait([this](const boost::system::error_code& ec) {
    if (!ec && held_) deliver_answer();
  });
}

void Reconciler::deliver_answer() {
  auto answer = std::move(held_);
  held_.reset();
  collecting_ = false;
  LiveSessionList list;
  list.at = format_timestamp(now_millis());
  list.complete = answer->complete();
  list.keep.assign(touched_.begin(), touched_.end());
  for (auto& id : answer->unreadable_ids) list.keep.push_back(std::move(id));
  std::sort(list.keep.begin(), list.keep.end());
  list.keep.erase(std::unique(list.keep.begin(), list.keep.end()), list.keep.end());
  list.sessions = std::move(answer->sessions);

  // One id per listed session, and one per session that may be live and is
  // not listed (it may be ended).
  std::unordered_set<std::string> listed;
  for (const auto& session : list.sessions) listed.insert(session.session_id);
  std::int64_t missing = 0;
  for (const auto& id : maybe_live_) missing += listed.count(id) ? 0 : 1;
  list.id_count = static_cast<std::int64_t>(list.sessions.size()) + missing;
  list.first_id = allocate_ids_(list.id_count);

  // What the ledger holds as live after the store lane has judged the list.
  if (list.complete) {
    std::unordered_set<std::string> next = std::move(listed);
    for (const auto& id : list.keep) {
      if (maybe_live_.count(id)) next.insert(id);
    }
    maybe_live_ = std::move(next);
  } else {
    maybe_live_.insert(listed.begin(), listed.end());
  }
  touched_.clear();
  deliver_(std::move(list), std::move(answer->rejections));
}

void Reconciler::failed(const std::string& cause, const std::string& detail) {
  collecting_ = false;
  if (cause != last_failure_) {
    log_warning("Reconciliation with the backend's live sessions failed (" + cause + "): " +
                    detail + "; retrying while connected",
                {{"CAUSE", cause}});
    last_failure_ = cause;
  }
  retry_later();
}

void Reconciler::retry_later() {
  if (!connected_) return;
  backoff_ = backoff_.count() == 0 ? stream_.backoff_initial
                                   : std::min(backoff_ * 2, stream_.backoff_max);
  retry_timer_.expires_after(backoff_);
  retry_timer_.async_wait([this](const boost::system::error_code& ec) {
    if (!ec) start_fetch();
  });
}

}  // namespace deltatap
