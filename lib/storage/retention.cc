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

Result<std::int64_t> apply_retention(Store& store, TimePoint now, int days) {
  if (days <= 0) return std::int64_t{0};
  auto cutoff = retention_cutoff(now, days);
  auto deleted = store.cleanup(cutoff);
  if (!deleted.ok()) return deleted;
  if (*deleted > 0) {
    if (auto s = store.compact(); !s.ok()) {
      log_warning("Compacting after cleanup failed", {{"ERROR", s.error()}});
    }
  }
  log_info("Cleaned up old deltas",
           {{"DELETED", std::to_string(*deleted)}, {"OLDER_THAN", format_timestamp(cutoff)}});
  return deleted;
}

}  // namespace deltatap
