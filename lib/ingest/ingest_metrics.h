// IngestMetrics: the figures the two ingest lanes decide, each in one place.
// The stream lane counts what was received, reconnects and the queue between
// the lanes (whether it is connected, /metrics asks it at scrape time); the store lane (the Recorder) counts what was stored and
// what was quarantined. api/metrics.h renders them; it never writes them.
// Every member is safe to update and read from any thread (base/counters.h).
#pragma once

#include <array>

#include "base/counters.h"
#include "base/delta.h"

namespace deltatap {

struct IngestMetrics {
  static std::size_t index(DeltaType type) { return static_cast<std::size_t>(type); }

  std::array<Counter, 3> received;  // by DeltaType: parsed off the stream (stream lane)
  std::array<Counter, 3> stored;    // by DeltaType: in the store (store lane)
  LabelledCounters rejected;        // quarantined, by the parser's reason (store lane)
  Counter reconnects;               // attempts after the first (stream lane)
  Gauge queue_bytes;                // waiting between the lanes (the queue itself)
  Counter queue_full;               // times reading stopped on a full queue (stream lane)
  // The ledger's rules (store lane): deltas stored with gap = 1, re-announced
  // `created`/repeated `deleted` that stored nothing, and deltas inferred by
  // reconciliation, by change (created, updated, deleted).
  Counter gaps;
  Counter resync_echoes;
  LabelledCounters reconciled;
  // Fetches of the backend's live sessions that failed, by cause (stream lane).
  LabelledCounters reconcile_failures;
};

}  // namespace deltatap
