// Store::Impl: the connection behind a Store, its statement cache and the
// counts kept as rows come and go. Store is written in two halves that share
// it: store_open.cc (the schema, how a database comes into being and how it
// goes to a file), store.cc (writing rows) and store_reads.cc (reading them).
//
// Internal to storage/; nothing outside it includes this.
#pragma once

#include <sqlite3.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "storage/session_ledger.h"
#include "storage/sqlite_statement.h"
#include "storage/state_columns.h"
#include "storage/store.h"
#include "storage/time_columns.h"

namespace deltatap {

// The columns of version 1, which the migrations copy.
inline constexpr const char* kVersion1Columns =
    "id, session_id, delta_type, before_state, after_state, timestamp, created_at";

// The schema's pieces (store_open.cc), which converting the times
// (time_conversion.cc) builds with too.
std::string create_deltas_sql(TimeColumns layout, std::string_view table);
std::string create_delta_indexes_sql(TimeColumns layout, std::string_view table);
std::string create_json_view_sql();

struct Store::Impl {
  sqlite3* db = nullptr;
  std::map<std::string, Statement> statements;
  std::int64_t delta_count = 0;
  std::int64_t rejected_count = 0;
  std::int64_t rejected_evicted = 0;
  SessionLedger ledger;
  bool has_ledger = false;  // false only for a read-only file without a usable one
  // Bumped whenever ledger rows change other than by adding a batch's rows
  // (deletes, rebuilds): whoever caches ledger rows starts over.
  std::uint64_t ledger_generation = 0;
  // Deltas above this id are kept by cleanup and eviction (Store::hold_deltas_after).
  std::optional<std::int64_t> hold_after;
  // The state columns' forms: compression, references, conversion.
  StateColumns columns;
  // The time columns' form (text, or integer milliseconds).
  TimeColumns times;
  // The form the rows are being moved to, while it differs (time_conversion.cc).
  std::optional<TimeColumns> times_target;
  // How load_file checked the file (Store::load_check).
  Store::LoadCheck load_check = Store::LoadCheck::kNone;

  // The queries read these columns, in this order (read_delta in store_reads.cc; the
  // states as stored: StateColumns decodes them and resolves before_ref; the
  // times as stored: TimeColumns::read gives their text).
  std::string delta_columns() const {
    return "id, session_id, delta_type, before_state, after_state, timestamp, created_at, origin, "
           "gap, before_ref";
  }

  ~Impl() {
    // Every prepared statement goes first: sqlite3_close leaves the connection
    // open (and its memory held) while one remains.
    statements.clear();
    columns.close();
    ledger = SessionLedger();
    sqlite3_close(db);
  }

  // The ledger defers its writes (session_ledger.h): every reader of the
  // database as a whole (its tables, a copy of it, a delete) calls this first.
  Status settle_ledger() { return has_ledger ? ledger.flush(db) : ok_status(); }

  // Both halves use these.
  Status exec(const char* sql) {
    char* message = nullptr;
    if (sqlite3_exec(db, sql, nullptr, nullptr, &message) != SQLITE_OK) {
      std::string text = message ? message : "unknown error";
      sqlite3_free(message);
      return Error{text};
    }
    return ok_status();
  }

  Result<sqlite3_stmt*> statement(const std::string& sql) {
    auto found = statements.find(sql);
    if (found != statements.end()) return found->second.get();
    sqlite3_stmt* stmt = nullptr;
    if (sqlite3_prepare_v3(db, sql.c_str(), -1, SQLITE_PREPARE_PERSISTENT, &stmt, nullptr) !=
        SQLITE_OK) {
      return Error{sqlite_error(db, "prepare")};
    }
    statements.emplace(sql, Statement(stmt));
    return stmt;
  }

  Result<std::int64_t> scalar(const std::string& sql) {
    auto stmt = statement(sql);
    if (!stmt.ok()) return Error{stmt.error()};
    Use use(*stmt);
    if (sqlite3_step(*use) != SQLITE_ROW) return Error{sqlite_error(db, sql)};
    return sqlite3_column_int64(*use, 0);
  }

  // A time (TimeColumns::read: either stored form), or nullopt for NULL.
  std::optional<std::string> scalar_time(const std::string& sql) {
    auto stmt = statement(sql);
    if (!stmt.ok()) return std::nullopt;
    Use use(*stmt);
    if (sqlite3_step(*use) != SQLITE_ROW || sqlite3_column_type(*use, 0) == SQLITE_NULL) {
      return std::nullopt;
    }
    return TimeColumns::read(*use, 0);
  }

  std::optional<std::string> scalar_text(const std::string& sql) {
    auto stmt = statement(sql);
    if (!stmt.ok()) return std::nullopt;
    Use use(*stmt);
    if (sqlite3_step(*use) != SQLITE_ROW) return std::nullopt;
    return column_optional(*use, 0);
  }

  // How a database comes into being: store_open.cc.
  Status open_memory();
  Status copy_from(sqlite3* source);
  Status register_functions();
  Status migrate();
  Status migrate_version();
  Status write_checks_as_comparisons();
  Status create_schema(TimeColumns layout);
  // An empty session_deltas made again with `layout` (ids continue).
  Status recreate_empty_deltas(TimeColumns layout);

  // Converting the times (time_conversion.cc): aim_times() sets the layout
  // the rows go to (a conversion under way to another one is dropped, one
  // to the same one goes on); convert_times_step() moves up to `max_rows`
  // rows and returns how many, 0 when none is left to move.
  Status aim_times(TimeColumns layout);
  Result<std::int64_t> convert_times_step(std::size_t max_rows);
  Status migrate_from_version_0();
  Status migrate_from_version_1();
  Status migrate_from_version_2();
  Status finish_open(bool keep_ledger = true);
  Status refresh_counts();

  // Writing rows: store.cc.
  Result<sqlite3_stmt*> insert_statement(std::size_t rows);
  template <typename RowAt>
  Status insert_rows(std::size_t count, RowAt row_at, const StateColumns::Plan& plan,
                     std::vector<std::int64_t>* ids, std::int64_t* inserted);
  Result<std::int64_t> delete_where(const std::string& where,
                                    const std::function<void(sqlite3_stmt*)>& bind,
                                    const char* what);
  Status note_ids_through(std::int64_t id);
  Status save_rows(std::span<const StoredDelta> deltas, std::int64_t ids_through,
                   std::vector<std::int64_t>* ids);
  // One row of a query over delta_columns(), its states as JSON text.
  Result<StoredDelta> read_delta(sqlite3_stmt* stmt);
  Status read_delta_but_before(sqlite3_stmt* stmt, StoredDelta& row);
  // Reading many rows: a before state stored as a reference is usually
  // another row of the same read (a session's previous delta), already
  // decoded or about to be. read_delta_of(rows) appends the row to `rows`,
  // leaving such a before state unset and noting it; resolve_references
  // then copies it from the row it names when that is in `rows`, and looks
  // up the rest. Half the decoding of a session's page, and no lookup. A
  // prefixed after state waits too, for that before state: decoded in id
  // order, a page's rows find their before states in the page, so only its
  // oldest row of a chain looks rows up (not every row, newest first).
  struct PendingReference {
    std::size_t row;  // index in `rows`
    std::int64_t ref;
    std::string prefixed_after;  // the stored after state, when prefixed (else empty)
  };
  Status read_delta_of(sqlite3_stmt* stmt, std::vector<StoredDelta>& rows,
                       std::vector<PendingReference>& pending);
  Status resolve_references(std::vector<StoredDelta>& rows,
                            std::vector<PendingReference>& pending);
  template <typename Body>
  Status insert_batch(Body body);
};

}  // namespace deltatap
