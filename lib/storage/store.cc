// Store, writing rows and keeping count: saving deltas, cleanup and eviction,
// the quarantine, stream events, counts and compression. Reading deltas is
// store_reads.cc; how a database comes into being and goes to a file,
// store_open.cc.
#include "storage/store.h"

#include <sqlite3.h>

#include "storage/session_ledger.h"
#include "storage/sqlite_statement.h"
#include "storage/state_columns.h"
#include "storage/store_impl.h"

#include <algorithm>
#include <functional>
#include <limits>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

namespace deltatap {

namespace {

// Rows per delta insert statement: a batch is stored in statements of these
// sizes, largest first, so at most seven statements are ever prepared for it.
constexpr std::size_t kInsertRowCounts[] = {64, 32, 16, 8, 4, 2, 1};

}  // namespace

// The delta insert for `rows` rows, one of kInsertRowCounts. Several rows in
// one statement share its start, its AUTOINCREMENT bookkeeping and its end:
// bench_raw_insert --rows-per-statement measures about 1.8x the rows/s of
// one row per statement.
Result<sqlite3_stmt*> Store::Impl::insert_statement(std::size_t rows) {
  std::string sql =
      "INSERT OR IGNORE INTO session_deltas (id, session_id, delta_type, before_state, "
      "after_state, timestamp, created_at, origin, gap, before_ref) VALUES ";
  for (std::size_t i = 0; i < rows; ++i) {
    sql += i ? ",(?,?,?,?,?,?,?,?,?,?)" : "(?,?,?,?,?,?,?,?,?,?)";
  }
  return statement(sql);
}

// Inserts rows [0, count) in statements of kInsertRowCounts rows, largest
// first. `row_at(i)` gives the i-th row as a StoredDelta (id 0: a new id),
// `plan` how its states are stored (StateColumns::plan).
// With `ids`, receives each row's id; rows with a given id may be ignored as
// duplicates, so `ids` is for new rows only.
template <typename RowAt>
Status Store::Impl::insert_rows(std::size_t count, RowAt row_at,
                                const StateColumns::Plan& plan,
                                std::vector<std::int64_t>* ids, std::int64_t* inserted) {
  std::size_t done = 0;
  for (std::size_t rows : kInsertRowCounts) {
    while (count - done >= rows) {
      auto stmt = insert_statement(rows);
      if (!stmt.ok()) return Error{stmt.error()};
      Use use(*stmt);
      for (std::size_t k = 0; k < rows; ++k) {
        const StoredDelta& row = row_at(done + k);
        const Delta& delta = row.delta;
        int first = static_cast<int>(10 * k);
        if (row.id > 0) {
          sqlite3_bind_int64(*use, first + 1, row.id);
        } else {
          sqlite3_bind_null(*use, first + 1);
        }
        bind_text(*use, first + 2, delta.session_id);
        bind_text(*use, first + 3, to_string(delta.type));
        columns.bind_before(*use, first + 4, first + 10, delta.before, plan.refs[done + k]);
        columns.bind_after(*use, first + 5, delta.after, delta.before, plan.depths[done + k]);
        times.bind(*use, first + 6, delta.timestamp);
        times.bind(*use, first + 7, row.created_at);
        bind_text(*use, first + 8, to_string(row.origin));
        sqlite3_bind_int(*use, first + 9, row.gap ? 1 : 0);
      }
      if (sqlite3_step(*use) != SQLITE_DONE) return Error{sqlite_error(db, "insert delta")};
      auto changes = sqlite3_changes64(db);
      delta_count += changes;
      *inserted += changes;
      if (ids) {
        // New rows of one statement take consecutive ids, in VALUES order.
        if (changes != static_cast<std::int64_t>(rows)) {
          return Error{"insert delta: " + std::to_string(changes) + " of " +
                       std::to_string(rows) + " rows stored"};
        }
        auto last = sqlite3_last_insert_rowid(db);
        for (std::size_t k = 0; k < rows; ++k) {
          ids->push_back(last - static_cast<std::int64_t>(rows - 1 - k));
        }
      }
      done += rows;
    }
  }
  return ok_status();
}

// Deletes the deltas matching `where` and keeps the ledger in step, in one
// transaction.
Result<std::int64_t> Store::Impl::delete_where(const std::string& where,
                                               const std::function<void(sqlite3_stmt*)>& bind,
                                               const char* what) {
  // Nothing to delete (a retention run with nothing due): asked through the
  // deletion's own index, since the ledger's and the references' bookkeeping
  // below walk far more (5.6 s of a 10,000,000-delta start, for nothing).
  {
    auto any = statement("SELECT EXISTS (SELECT 1 FROM session_deltas WHERE " + where + ")");
    if (!any.ok()) return Error{any.error()};
    Use use(*any);
    bind(*use);
    if (sqlite3_step(*use) != SQLITE_ROW) return Error{sqlite_error(db, what)};
    if (sqlite3_column_int(*use, 0) == 0) return std::int64_t{0};
  }
  if (auto s = settle_ledger(); !s.ok()) return Error{s.error()};
  if (auto s = exec("BEGIN"); !s.ok()) return Error{s.error()};
  auto result = [&]() -> Result<std::int64_t> {
    // Rows that stay keep their before states (every before_ref names a row).
    if (auto s = columns.materialize_before_delete(db, where, bind); !s.ok()) {
      return Error{s.error()};
    }
    if (has_ledger) {
      if (auto s = ledger.before_delete(db, where, bind); !s.ok()) return Error{s.error()};
    }
    auto stmt = statement("DELETE FROM session_deltas WHERE " + where);
    if (!stmt.ok()) return Error{stmt.error()};
    Use use(*stmt);
    bind(*use);
    if (sqlite3_step(*use) != SQLITE_DONE) return Error{sqlite_error(db, what)};
    std::int64_t deleted = sqlite3_changes64(db);
    delta_count -= deleted;
    if (has_ledger) {
      ++ledger_generation;
      if (auto s = ledger.after_delete(db); !s.ok()) return Error{s.error()};
    }
    return deleted;
  }();
  if (auto s = exec("COMMIT"); !s.ok() && result.ok()) return Error{s.error()};
  return result;
}

// Every id up to `id` has been decided: AUTOINCREMENT's sequence (which
// last_delta_id() reads) goes at least that far, even when the last of them
// stored no row.
Status Store::Impl::note_ids_through(std::int64_t id) {
  if (id <= 0) return ok_status();
  for (const char* sql :
       {"INSERT INTO sqlite_sequence (name, seq) SELECT 'session_deltas', 0 "
        "WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'session_deltas')",
        "UPDATE sqlite_sequence SET seq = MAX(seq, ?1) WHERE name = 'session_deltas'"}) {
    auto stmt = statement(sql);
    if (!stmt.ok()) return Error{stmt.error()};
    Use use(*stmt);
    if (sqlite3_bind_parameter_count(*use) > 0) sqlite3_bind_int64(*use, 1, id);
    if (sqlite3_step(*use) != SQLITE_DONE) return Error{sqlite_error(db, "note ids")};
  }
  return ok_status();
}

// A batch of inserts, all or nothing. With no rollback journal, ROLLBACK is
// not available: a failed batch is undone by deleting the rows it added
// (ids only grow, so they are the ones above the highest id before it).
template <typename Body>
Status Store::Impl::insert_batch(Body body) {
  auto highest = scalar("SELECT COALESCE(MAX(id), 0) FROM session_deltas");
  if (!highest.ok()) return Error{highest.error()};
  if (auto s = exec("BEGIN"); !s.ok()) return s;
  auto count_before = delta_count;
  Status result = body();
  if (!result.ok()) {
    (void)exec(("DELETE FROM session_deltas WHERE id > " + std::to_string(*highest)).c_str());
    columns.forget();  // a retry may give the same ids to other states
    delta_count = count_before;
    if (has_ledger) {
      ++ledger_generation;
      (void)ledger.rebuild(db);  // it may hold part of the batch
    }
  }
  if (auto s = exec("COMMIT"); !s.ok() && result.ok()) {
    delta_count = count_before;
    return s;
  }
  return result;
}

Status Store::save(const Delta& delta) { return save_batch({&delta, 1}); }

Status Store::save_batch(std::span<const Delta> deltas, std::optional<std::string> created_at,
                         std::vector<std::int64_t>* ids) {
  std::string at = created_at ? *created_at : format_timestamp(now_millis());
  std::vector<StoredDelta> rows;
  rows.reserve(deltas.size());
  for (const auto& delta : deltas) rows.push_back(StoredDelta{0, delta, at});
  std::vector<std::int64_t> own_ids;
  auto& assigned = ids ? *ids : own_ids;
  assigned.clear();
  auto status = impl_->save_rows(rows, 0, &assigned);
  if (!status.ok()) assigned.clear();
  return status;
}

Status Store::save_with_created_at(std::span<const StoredDelta> deltas, std::int64_t ids_through) {
  return impl_->save_rows(deltas, ids_through, nullptr);
}

// With `ids` (every row without an id of its own), receives the ids assigned.
Status Store::Impl::save_rows(std::span<const StoredDelta> deltas, std::int64_t ids_through,
                              std::vector<std::int64_t>* ids) {
  // A dictionary trained since the last batch is stored before this one.
  if (auto s = columns.between_batches(db); !s.ok()) return s;
  return insert_batch([&]() -> Status {
    std::int64_t inserted = 0;
    std::int64_t predicted = 0;
    auto plan = columns.plan(db, has_ledger ? &ledger : nullptr, deltas, ids != nullptr,
                             &predicted);
    if (!plan.ok()) return Error{plan.error()};
    auto s = insert_rows(
        deltas.size(), [&](std::size_t i) -> const StoredDelta& { return deltas[i]; }, *plan, ids,
        &inserted);
    if (!s.ok()) return s;
    // References within the batch named the ids foreseen: had they been
    // others, the batch is undone rather than kept pointing elsewhere.
    if (predicted && (ids->empty() || ids->front() != predicted ||
                      ids->back() != predicted + static_cast<std::int64_t>(ids->size()) - 1)) {
      return Error{"insert delta: ids other than foreseen for references"};
    }
    if (auto noted = note_ids_through(ids_through); !noted.ok()) return noted;
    if (!has_ledger || deltas.empty()) return ok_status();
    // Duplicates ignored (a replay of ids already held): which ones cannot be
    // told, so the ledger is recomputed.
    if (inserted != static_cast<std::int64_t>(deltas.size())) {
      columns.forget();  // the depths noted were planned for rows not stored
      ++ledger_generation;
      return ledger.rebuild(db);
    }
    if (!ids) return ledger.add(db, deltas);
    // The ledger needs every row's id.
    std::vector<StoredDelta> with_ids(deltas.begin(), deltas.end());
    for (std::size_t i = 0; i < with_ids.size(); ++i) with_ids[i].id = (*ids)[i];
    return ledger.add(db, with_ids);
  });
}

Result<std::int64_t> Store::cleanup(TimePoint older_than) {
  std::string bound = format_timestamp(older_than);
  // A hold (a sink's backlog) bounds the ids; without one ?2 is the largest id.
  std::int64_t hold = impl_->hold_after.value_or(std::numeric_limits<std::int64_t>::max());
  return impl_->delete_where("created_at < ?1 AND id <= ?2",
                             [&](sqlite3_stmt* stmt) {
                               impl_->times.bind(stmt, 1, bound);
                               sqlite3_bind_int64(stmt, 2, hold);
                             },
                             "cleanup");
}

Result<std::int64_t> Store::cleanup_events(TimePoint older_than) {
  // No index on `at`: the table is small next to the deltas, and this runs once a day.
  std::string bound = format_timestamp(older_than);  // bound without a copy: outlives the step
  auto stmt = impl_->statement("DELETE FROM stream_events WHERE at < ?1");
  if (!stmt.ok()) return Error{stmt.error()};
  Use use(*stmt);
  bind_text(*use, 1, bound);
  if (sqlite3_step(*use) != SQLITE_DONE) return Error{sqlite_error(impl_->db, "cleanup stream events")};
  return std::int64_t{sqlite3_changes64(impl_->db)};
}

Result<std::int64_t> Store::evict_beyond(std::int64_t max_rows) {
  std::int64_t excess = impl_->delta_count - max_rows;
  if (max_rows <= 0 || excess <= 0) return std::int64_t{0};
  std::int64_t hold = impl_->hold_after.value_or(std::numeric_limits<std::int64_t>::max());
  return impl_->delete_where(
      "id IN (SELECT id FROM session_deltas WHERE id <= ?2 ORDER BY id LIMIT ?1)",
      [&](sqlite3_stmt* stmt) {
        sqlite3_bind_int64(stmt, 1, excess);
        sqlite3_bind_int64(stmt, 2, hold);
      },
      "evict");
}

Status Store::compact() {
  if (auto s = impl_->settle_ledger(); !s.ok()) return s;
  impl_->statements.clear();
  return impl_->exec("VACUUM");
}

Status Store::quarantine(const Rejected& rejected) {
  auto stmt = impl_->statement(
      "INSERT INTO rejected_messages (received_at, reason, detail, raw) VALUES (?1, ?2, ?3, ?4)");
  if (!stmt.ok()) return Error{stmt.error()};
  {
    Use use(*stmt);
    bind_text(*use, 1, rejected.received_at);
    bind_text(*use, 2, rejected.reason);
    bind_text(*use, 3, rejected.detail);
    auto raw = std::string_view(rejected.raw).substr(0, kMaxRejectedRawBytes);
    sqlite3_bind_blob64(*use, 4, raw.data(), raw.size(), SQLITE_STATIC);
    if (sqlite3_step(*use) != SQLITE_DONE) return Error{sqlite_error(impl_->db, "quarantine")};
  }
  ++impl_->rejected_count;
  if (impl_->rejected_count > kMaxRejectedRows) {
    auto evict = impl_->statement(
        "DELETE FROM rejected_messages WHERE id IN "
        "(SELECT id FROM rejected_messages ORDER BY id LIMIT ?1)");
    if (!evict.ok()) return Error{evict.error()};
    Use use(*evict);
    sqlite3_bind_int64(*use, 1, impl_->rejected_count - kMaxRejectedRows);
    if (sqlite3_step(*use) != SQLITE_DONE) return Error{sqlite_error(impl_->db, "evict rejected")};
    auto gone = sqlite3_changes64(impl_->db);
    impl_->rejected_count -= gone;
    impl_->rejected_evicted += gone;
  }
  return ok_status();
}

Result<std::vector<Rejected>> Store::rejected(int limit) {
  auto stmt = impl_->statement(
      "SELECT received_at, reason, detail, raw FROM rejected_messages ORDER BY id DESC LIMIT ?1");
  if (!stmt.ok()) return Error{stmt.error()};
  Use use(*stmt);
  sqlite3_bind_int(*use, 1, limit);
  std::vector<Rejected> rows;
  while (sqlite3_step(*use) == SQLITE_ROW) {
    Rejected row;
    row.received_at = column_text(*use, 0);
    row.reason = column_text(*use, 1);
    row.detail = column_text(*use, 2);
    auto blob = static_cast<const char*>(sqlite3_column_blob(*use, 3));
    if (blob) row.raw.assign(blob, sqlite3_column_bytes(*use, 3));
    rows.push_back(std::move(row));
  }
  return rows;
}

Status Store::record_event(const StreamEvent& event) {
  auto stmt = impl_->statement(
      "INSERT INTO stream_events (at, event, url, close_code, reason) VALUES (?1, ?2, ?3, ?4, ?5)");
  if (!stmt.ok()) return Error{stmt.error()};
  Use use(*stmt);
  bind_text(*use, 1, event.at);
  bind_text(*use, 2, event.event);
  bind_text(*use, 3, event.url);
  sqlite3_bind_int(*use, 4, event.close_code);
  bind_text(*use, 5, event.reason);
  if (sqlite3_step(*use) != SQLITE_DONE) return Error{sqlite_error(impl_->db, "stream event")};
  return ok_status();
}

Result<std::vector<StreamEvent>> Store::events(int limit) {
  auto stmt = impl_->statement(
      "SELECT at, event, url, close_code, reason FROM stream_events ORDER BY id DESC LIMIT ?1");
  if (!stmt.ok()) return Error{stmt.error()};
  Use use(*stmt);
  sqlite3_bind_int(*use, 1, limit);
  std::vector<StreamEvent> rows;
  while (sqlite3_step(*use) == SQLITE_ROW) {
    rows.push_back({column_text(*use, 0), column_text(*use, 1), column_text(*use, 2),
                    sqlite3_column_int(*use, 3), column_text(*use, 4)});
  }
  return rows;
}

StoreCounts Store::counts() {
  StoreCounts counts;
  counts.deltas = impl_->delta_count;
  counts.rejected = impl_->rejected_count;
  counts.rejected_evicted = impl_->rejected_evicted;
  (void)impl_->settle_ledger();  // a failure shows as a count that lags; the next read retries
  counts.sessions = impl_->scalar("SELECT COUNT(*) FROM sessions").value_or(0);
  counts.stream_events = impl_->scalar("SELECT COUNT(*) FROM stream_events").value_or(0);
  counts.memory_bytes = memory_bytes();
  counts.oldest = impl_->scalar_time("SELECT MIN(timestamp) FROM session_deltas");
  counts.newest = impl_->scalar_time("SELECT MAX(timestamp) FROM session_deltas");
  counts.schema_version = static_cast<int>(impl_->scalar("PRAGMA user_version").value_or(0));
  counts.compression = compression_stats();
  return counts;
}

std::int64_t Store::delta_count() const { return impl_->delta_count; }

std::uint64_t Store::ledger_generation() const { return impl_->ledger_generation; }

std::int64_t Store::memory_bytes() {
  auto pages = impl_->scalar("PRAGMA page_count").value_or(0);
  auto page_size = impl_->scalar("PRAGMA page_size").value_or(0);
  return pages * page_size;
}

Result<sqlite3_stmt*> Store::prepared(const std::string& sql) {
  // Its readers (storage/analytics_reads) read the ledger's tables.
  if (auto s = impl_->settle_ledger(); !s.ok()) return Error{s.error()};
  return impl_->statement(sql);
}

std::int64_t Store::last_delta_id() {
  return impl_
      ->scalar("SELECT COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'session_deltas'), "
               "(SELECT MAX(id) FROM session_deltas), 0)")
      .value_or(0);
}

// --- compression (storage/state_columns.h) ----------------------------------------

Status Store::set_compression(Compression mode) {
  impl_->columns.set_mode(mode);
  TimeColumns layout{mode == Compression::zstd};
  if (impl_->delta_count > 0 || layout.integer == impl_->times.integer) {
    return impl_->aim_times(layout);
  }
  // Nothing to move: the table is made again at once.
  if (auto s = impl_->aim_times(impl_->times); !s.ok()) return s;
  return impl_->recreate_empty_deltas(layout);
}

// The states first: converting them rewrites rows, which the times'
// conversion would otherwise have to follow.
Result<std::int64_t> Store::convert_step(std::size_t max_rows) {
  if (auto s = impl_->columns.between_batches(impl_->db); !s.ok()) return Error{s.error()};
  auto states = impl_->columns.convert_step(impl_->db, max_rows);
  if (!states.ok() || *states > 0) return states;
  return impl_->convert_times_step(max_rows);
}

CompressionStats Store::compression_stats() {
  auto stats = impl_->columns.stats(impl_->db);
  return CompressionStats{stats.mode == Compression::zstd ? "zstd" : "off",
                          stats.dictionaries,
                          stats.newest_dictionary,
                          stats.json_bytes,
                          stats.encoded_bytes,
                          stats.references,
                          stats.prefixed,
                          stats.training,
                          stats.converted && !impl_->times_target,
                          stats.last_training_error,
                          impl_->times.integer ? "integer" : "text"};
}

// --- the storage room's writers ------------------------------------------------

sqlite3* Store::connection() { return impl_->db; }
TimeColumns Store::time_columns() const { return impl_->times; }

Result<std::int64_t> Store::delete_deltas_where(const std::string& where,
                                                const std::function<void(sqlite3_stmt*)>& bind,
                                                const char* what) {
  return impl_->delete_where(where, bind, what);
}

}  // namespace deltatap
