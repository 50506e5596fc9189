// Archive files once they take no more rows: sealing them (read-only) and,
// with [retention] archive_days, deleting the sealed ones past it
// (archive.h says when and why; the move itself is archive.cc).
#include "storage/archive.h"

#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <optional>
#include <string>

#include "base/files.h"
#include "storage/archive_file.h"
#include "storage/sqlite_statement.h"
#include "storage/store.h"

namespace deltatap {

namespace {

// Whether the store still holds deltas created in [from, to).
Result<bool> store_holds_month(sqlite3* db, TimeColumns times, const std::string& from,
                               const std::string& to) {
  sqlite3_stmt* raw = nullptr;
  if (sqlite3_prepare_v2(db, "SELECT EXISTS (SELECT 1 FROM session_deltas "
                             "WHERE created_at >= ?1 AND created_at < ?2)",
                         -1, &raw, nullptr) != SQLITE_OK) {
    return Error{sqlite_error(db, "month's deltas")};
  }
  Statement stmt(raw);
  times.bind(raw, 1, from);
  times.bind(raw, 2, to);
  if (sqlite3_step(raw) != SQLITE_ROW) return Error{sqlite_error(db, "month's deltas")};
  return sqlite3_column_int(raw, 0) != 0;
}

}  // namespace

Result<std::int64_t> seal_archives(Store& store, const ArchiveOptions& options,
                                   TimePoint older_than) {
  auto files = list_archive_files(options.directory);
  if (!files.ok()) return Error{files.error()};
  std::string bound = format_timestamp(older_than);
  std::int64_t sealed = 0;
  for (const auto& file : *files) {
    if (file.sealed) continue;
    auto to = next_month_start(file.month);
    // Rows of this month still come while the cutoff is inside it.
    if (to > bound) continue;
    auto holds = store_holds_month(store.connection(), store.time_columns(), month_start(file.month), to);
    if (!holds.ok()) return Error{holds.error()};
    if (*holds) continue;  // held for a sink: they come later
    if (::chmod(file.path.c_str(), kSealedArchiveMode) != 0) {
      return Error{errno_text("cannot make read-only", file.path)};
    }
    ++sealed;
  }
  return sealed;
}

Result<std::int64_t> remove_old_archives(const ArchiveOptions& options, TimePoint now) {
  if (options.keep_days <= 0) return std::int64_t{0};
  auto files = list_archive_files(options.directory);
  if (!files.ok()) return Error{files.error()};
  std::string limit = format_timestamp(now - std::chrono::days(options.keep_days));
  std::int64_t removed = 0;
  for (const auto& file : *files) {
    if (!file.sealed) continue;
    // Cheap test first: a month that ends after the limit has rows too new.
    if (month_start(file.month) >= limit) continue;
    std::optional<std::string> newest;
    {
      auto opened = ArchiveFile::open_readonly(file.path);
      if (!opened.ok()) return Error{opened.error()};
      auto read = opened->newest_created_at();
      if (!read.ok()) return Error{read.error()};
      newest = std::move(*read);
    }
    if (newest && *newest >= limit) continue;
    if (::unlink(file.path.c_str()) != 0) return Error{errno_text("cannot delete", file.path)};
    ++removed;
  }
  if (removed > 0) {
    if (auto s = fsync_path(options.directory, true); !s.ok()) return Error{s.error()};
  }
  return removed;
}

}  // namespace deltatap
