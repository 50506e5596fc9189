// Retention: deltas older than [retention] days (by created_at, the time they
// were stored) are deleted once at start and then every day at 00:00 UTC, as the
// domain document's cleanup flow says; the freed memory is then given back.
// Stream events older than the same days (by `at`) go with them: a backend that
// flaps adds a few rows at every reconnect, and nothing else ever removes them.
// (rejected_messages needs no such rule: the store keeps its newest
// kMaxRejectedRows only.)
// With [retention] archive = on the deltas due are moved into the monthly
// archive files (storage/archive.h) rather than only deleted: a delta leaves
// the store only once its archive file has it on disk.
#pragma once

#include <cstdint>

#include <string>

#include "base/result.h"
#include "base/timestamp.h"
#include "storage/archive.h"
#include "storage/storage_options.h"

namespace deltatap {

class Store;

// The first 00:00 UTC strictly after `now`.
TimePoint next_midnight_utc(TimePoint now);

// Rows stored before this are due for deletion; days <= 0 means keep everything.
TimePoint retention_cutoff(TimePoint now, int days);

struct Pruned {
  std::int64_t deltas = 0;           // gone from the store (archived ones included)
  std::int64_t archived = 0;         // of those, moved into archive files
  std::int64_t archive_files_removed = 0;  // archive_days
  std::int64_t stream_events = 0;
  bool any() const { return deltas > 0 || stream_events > 0; }
};

// Deletes the deltas and stream events that are due, compacts when deltas
// went, logs the counts.
Result<Pruned> prune_expired(Store& store, TimePoint now, int days);

// As above with `retention`'s days; with retention.archive the deltas due are
// archived into `archive`'s directory first (retention.archive_days, which
// replaces archive.keep_days, bounds its files).
// An archive that fails stops the run before any delta that is not in a file
// is deleted: the error says why, and the deltas stay for the next run.
Result<Pruned> prune_expired(Store& store, TimePoint now, const RetentionOptions& retention,
                             ArchiveOptions archive);

// As prune_expired; returns the deltas deleted (what /metrics counts).
Result<std::int64_t> apply_retention(Store& store, TimePoint now, int days);

}  // namespace deltatap
