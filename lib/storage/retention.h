// Retention: deltas older than [retention] days (by created_at, the time they
// were stored) are deleted once at start and then every day at 00:00 UTC, as the
// domain document's cleanup flow says; the freed memory is then given back.
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

// Deletes what is due, compacts when anything went, logs the count.
Result<std::int64_t> apply_retention(Store& store, TimePoint now, int days);

}  // namespace deltatap
