#include "storage/retention.h"

#include "base/logging.h"
#include "storage/archive.h"
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
  return prune_expired(store, now, RetentionOptions{.days = days}, ArchiveOptions{});
}

Result<Pruned> prune_expired(Store& store, TimePoint now, const RetentionOptions& retention,
                             ArchiveOptions archive) {
  int days = retention.days;
  archive.keep_days = retention.archive_days;
  Pruned pruned;
  if (retention.archive && retention.archive_days > 0 && days <= 0) {
    // Nothing expires from the store, but old archive files still go.
    auto removed = remove_old_archives(archive, now);
    if (!removed.ok()) return Error{removed.error()};
    pruned.archive_files_removed = *removed;
  }
  if (days <= 0) return pruned;
  auto cutoff = retention_cutoff(now, days);
  if (retention.archive) {
    auto run = archive_expired(store, archive, cutoff, now);
    if (!run.ok()) return Error{"archiving old deltas failed: " + run.error()};
    pruned.archived = run->moved;
    pruned.archive_files_removed = run->removed;
    std::string months;
    for (const auto& month : run->months) months += (months.empty() ? "" : ",") + month;
    if (run->moved > 0 || run->removed > 0) {
      log_info("Archived old deltas",
               {{"ARCHIVED", std::to_string(run->moved)},
                {"MONTHS", months},
                {"FILES_SEALED", std::to_string(run->sealed)},
                {"FILES_REMOVED", std::to_string(run->removed)},
                {"ARCHIVE_DIR", archive.directory}});
    }
  }
  // With the archive on, what is left due is held for nothing: the archive
  // took everything not held for a sink, and cleanup keeps what is held.
  auto deleted = store.cleanup(cutoff);
  if (!deleted.ok()) return Error{deleted.error()};
  *deleted += pruned.archived;
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
  pruned.deltas = *deleted;
  pruned.stream_events = events_deleted;
  return pruned;
}

Result<std::int64_t> apply_retention(Store& store, TimePoint now, int days) {
  auto pruned = prune_expired(store, now, days);
  if (!pruned.ok()) return Error{pruned.error()};
  return pruned->deltas;
}

}  // namespace deltatap
