#include "ingest/recorder.h"

#include "base/logging.h"

namespace deltatap {

using SteadyClock = std::chrono::steady_clock;

Recorder::Recorder(Store& store, IngestMetrics& metrics, RecorderOptions options)
    : store_(store), metrics_(metrics), options_(options), rules_(store) {}

Status Recorder::record(std::vector<Arrival>& arrivals) {
  decision_ = LedgerDecision{};
  Status result = ok_status();
  for (auto& arrival : arrivals) {
    for (auto& rejection : arrival.rejections) quarantine(rejection, arrival.received);
    if (arrival.event) record_event(*arrival.event);
    Status judged = ok_status();
    if (arrival.reconcile) {
      // Judged against the ledger as stored: what came before it goes first.
      if (auto s = store(decision_); !s.ok()) result = s;
      judged = rules_.judge_list(*arrival.reconcile, decision_);
    } else if (!arrival.deltas.empty()) {
      judged = rules_.judge_frame(arrival.deltas, decision_);
    }
    if (!judged.ok()) {
      // Only a broken in-memory database gets here; the journal keeps the arrival.
      log_error("Judging arrivals against the ledger failed; the journal keeps them",
                {{"ERROR", judged.error()}});
      result = judged;
    }
  }
  if (auto s = store(decision_); !s.ok()) result = s;
  if (result.ok()) apply_memory_guard();
  return result;
}

// Stores what `decision` holds in one transaction and empties it.
Status Recorder::store(LedgerDecision& decision) {
  if (decision.empty()) return ok_status();
  auto stored = store_.save_with_created_at(decision.rows, decision.ids_through);
  if (!stored.ok()) {
    rules_.forget();
    if (!last_error_) {
      log_error("Storing a batch failed; the journal keeps it for the next start",
                {{"ERROR", stored.error()}, {"COUNT", std::to_string(decision.rows.size())}});
    }
    last_error_ = stored.error();
    decision = LedgerDecision{};
    return stored;
  }
  rules_.stored();
  if (last_error_) log_info("Storing deltas works again");
  last_error_.reset();
  for (const auto& row : decision.rows) metrics_.stored[IngestMetrics::index(row.delta.type)].inc();
  for (const auto& event : decision.events) record_event(event);
  metrics_.gaps.inc(static_cast<std::uint64_t>(decision.gaps));
  metrics_.resync_echoes.inc(static_cast<std::uint64_t>(decision.echoes));
  for (int k = 0; k < 3; ++k) {
    metrics_.reconciled.get(to_string(static_cast<DeltaType>(k)))
        .inc(static_cast<std::uint64_t>(decision.reconciled[k]));
  }
  decision = LedgerDecision{};
  return ok_status();
}

void Recorder::quarantine(const Rejection& rejection, TimePoint received) {
  // A summarised rejection stands for `count` bad elements of one frame.
  metrics_.rejected.get(rejection.reason).inc(rejection.count);
  auto& last = last_reject_log_[rejection.reason];
  auto now = SteadyClock::now();
  // One line per kind per minute keeps a flood of bad frames out of the journal;
  // the counter and the quarantine table keep every one.
  if (last == SteadyClock::time_point{} || now - last > std::chrono::minutes(1)) {
    last = now;
    log_warning("Frame rejected and quarantined",
                {{"REASON", rejection.reason}, {"DETAIL", rejection.detail}});
  }
  auto s = store_.quarantine(
      {format_timestamp(received), rejection.reason, rejection.detail, rejection.raw});
  if (!s.ok()) log_error("Quarantine insert failed", {{"ERROR", s.error()}});
}

void Recorder::record_event(const StreamEvent& event) {
  if (event.event == "oversized") {
    metrics_.rejected.get("too_large").inc();
    log_warning("Oversized frame refused; reconnecting", {{"DETAIL", event.reason}});
  }
  if (auto s = store_.record_event(event); !s.ok()) {
    log_error("Recording a stream event failed", {{"ERROR", s.error()}});
  }
}

void Recorder::apply_memory_guard() {
  if (options_.max_deltas == 0) return;
  auto evicted = store_.evict_beyond(static_cast<std::int64_t>(options_.max_deltas));
  if (evicted.ok() && *evicted > 0) {
    log_warning("Memory guard evicted the oldest deltas",
                {{"EVICTED", std::to_string(*evicted)},
                 {"MAX_DELTAS", std::to_string(options_.max_deltas)}});
  }
}

}  // namespace deltatap
