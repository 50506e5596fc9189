// Retention: deltas older than [retention] days (by created_at, the time they
// were stored) are deleted once at start and then every day at 00:00 UTC, as the
// domain document's cleanup flow says; the freed memory is then given back.
// Stream events older than the same days (by `at`) go with them: a backend that
// flaps adds a few rows at every reconnect, and nothing else ever removes them.
// (rejected_messages needs no such rule: the store keeps its newest
// kMaxRejectedRows only.)
#pragma once

#include <cstdint>

#include "base/result.h"
#include "base/timestamp.h"

namespace deltatap {

class Store;

// The first 00:00 UTC strictly after `now`.
TimePoint next_midnight_utc(TimePoint now);

// Rows stored before this are due for deletion; days <= 0 means keep everything.
TimePoint retention_cutoff(TimePoint now, int days);

struct Pruned {
  std::int64_t deltas = 0;
  std::int64_t stream_events = 0;
  bool any() const { return deltas > 0 || stream_events > 0; }
};

// Deletes the deltas and stream events that are due, compacts when deltas
// went, logs the counts.
Result<Pruned> prune_expired(Store& store, TimePoint now, int days);

// As prune_expired; returns the deltas deleted (what /metrics counts).
Result<std::int64_t> apply_retention(Store& store, TimePoint now, int days);

}  // namespace deltatap
