#include "storage/retention.h"

#include "base/logging.h"
#include "storage/store.h"

namespace deltatap {

TimePoint next_midnight_utc(TimePoint now) {
  auto today = std::chrono::floor<std::chrono::days>(now);
  return std::chrono::time_point_cast<std::chrono::milliseconds>(today + std::chrono::days(1));
}

TimePoint retention_cutoff(TimePoint now, int days) {
  if (days <= 0) return TimePoint{};
  return now - std::chrono::days(days);
}

Result<Pruned> prune_expired(Store& store, TimePoint now, int days) {
  if (days <= 0) return Pruned{};
  auto cutoff = retention_cutoff(now, days);
  auto deleted = store.cleanup(cutoff);
  if (!deleted.ok()) return Error{deleted.error()};
  // The deltas are gone whatever happens to the events: a failure here is
  // reported, not allowed to hide that (it would skip the compaction and the
  // count of what went).
  auto events = store.cleanup_events(cutoff);
  if (!events.ok()) log_warning("Cleaning up old stream events failed", {{"ERROR", events.error()}});
  std::int64_t events_deleted = events.value_or(0);
  // Events are a few rows a reconnect: their pages are reused by the next
  // ones, not worth a VACUUM of the whole database. Deltas are the bulk.
  if (*deleted > 0) {
    if (auto s = store.compact(); !s.ok()) {
      log_warning("Compacting after cleanup failed", {{"ERROR", s.error()}});
    }
  }
  log_info("Cleaned up old deltas",
           {{"DELETED", std::to_string(*deleted)},
            {"STREAM_EVENTS_DELETED", std::to_string(events_deleted)},
            {"OLDER_THAN", format_timestamp(cutoff)}});
  return Pruned{*deleted, events_deleted};
}

Result<std::int64_t> apply_retention(Store& store, TimePoint now, int days) {
  auto pruned = prune_expired(store, now, days);
  if (!pruned.ok()) return Error{pruned.error()};
  return pruned->deltas;
}

}  // namespace deltatap
