// Store, what the sinks (lib/sinks) read and keep: their marks in the table
// sink_progress, the deltas after a mark, the backlog's size and the hold
// that keeps unsent deltas from cleanup and eviction. Split from store.cc,
// which writes and reads rows in general.
#include "storage/store.h"

#include <sqlite3.h>

#include <algorithm>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "storage/sqlite_statement.h"
#include "storage/store_impl.h"

namespace deltatap {

// --- sinks ---------------------------------------------------------------------

namespace {

// Created on first use: files written before sinks existed lack it, and the
// table is additive (no schema version of its own).
constexpr const char* kCreateSinkProgress =
    "CREATE TABLE IF NOT EXISTS sink_progress (sink TEXT PRIMARY KEY, last_id INTEGER NOT NULL)";

}  // namespace

Result<std::int64_t> Store::sink_mark(const std::string& sink) {
  auto present = impl_->scalar(
      "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'sink_progress'");
  if (!present.ok()) return Error{present.error()};
  if (*present == 0) return std::int64_t{0};
  auto stmt = impl_->statement("SELECT last_id FROM sink_progress WHERE sink = ?1");
  if (!stmt.ok()) return Error{stmt.error()};
  Use use(*stmt);
  bind_text(*use, 1, sink);
  int rc = sqlite3_step(*use);
  if (rc == SQLITE_DONE) return std::int64_t{0};
  if (rc != SQLITE_ROW) return Error{sqlite_error(impl_->db, "sink mark")};
  return std::int64_t{sqlite3_column_int64(*use, 0)};
}

Status Store::set_sink_mark(const std::string& sink, std::int64_t last_id) {
  if (auto s = impl_->exec(kCreateSinkProgress); !s.ok()) return s;
  auto stmt = impl_->statement(
      "INSERT INTO sink_progress (sink, last_id) VALUES (?1, ?2) "
      "ON CONFLICT(sink) DO UPDATE SET last_id = excluded.last_id");
  if (!stmt.ok()) return Error{stmt.error()};
  Use use(*stmt);
  bind_text(*use, 1, sink);
  sqlite3_bind_int64(*use, 2, last_id);
  if (sqlite3_step(*use) != SQLITE_DONE) return Error{sqlite_error(impl_->db, "sink mark")};
  return ok_status();
}

Result<std::vector<StoredDelta>> Store::deltas_after(std::int64_t after_id, std::size_t limit) {
  auto stmt = impl_->statement("SELECT " + impl_->delta_columns() +
                               " FROM session_deltas WHERE id > ?1 ORDER BY id LIMIT ?2");
  if (!stmt.ok()) return Error{stmt.error()};
  Use use(*stmt);
  sqlite3_bind_int64(*use, 1, after_id);
  sqlite3_bind_int64(*use, 2, static_cast<std::int64_t>(limit));
  std::vector<StoredDelta> rows;
  rows.reserve(std::min<std::size_t>(limit, 4096));
  std::vector<Store::Impl::PendingReference> pending;
  int rc;
  while ((rc = sqlite3_step(*use)) == SQLITE_ROW) {
    if (auto s = impl_->read_delta_of(*use, rows, pending); !s.ok()) return Error{s.error()};
  }
  if (rc != SQLITE_DONE) return Error{sqlite_error(impl_->db, "deltas after")};
  if (auto s = impl_->resolve_references(rows, pending); !s.ok()) return Error{s.error()};
  return rows;
}

Result<std::int64_t> Store::count_deltas_after(std::int64_t after_id) {
  auto stmt = impl_->statement("SELECT COUNT(*) FROM session_deltas WHERE id > ?1");
  if (!stmt.ok()) return Error{stmt.error()};
  Use use(*stmt);
  sqlite3_bind_int64(*use, 1, after_id);
  if (sqlite3_step(*use) != SQLITE_ROW) return Error{sqlite_error(impl_->db, "count deltas")};
  return std::int64_t{sqlite3_column_int64(*use, 0)};
}

void Store::hold_deltas_after(std::optional<std::int64_t> id) { impl_->hold_after = id; }

std::optional<std::int64_t> Store::held_after() const { return impl_->hold_after; }

}  // namespace deltatap
