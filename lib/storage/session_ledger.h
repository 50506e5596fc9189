// SessionLedger: the `sessions` table, one row per session id (design.md, "The
// store"), kept in the same transaction as the session's deltas: counts by
// type, how many of its deltas were inferred (origin resync or reconcile) and
// how many follow a gap, the times of its first and last delta, the id and
// type of its last delta (arrival order: ids, never timestamps), whether it is
// live (its last delta is not a deletion) and the digest of its last state
// (base/digest.h; the after state, or the before state of a deletion).
//
// GET /api/sessions and the session count read it instead of scanning the
// history, so they cost the number of sessions, not the number of deltas; the
// ledger's rules (ingest/ledger_rules.h) read one row per delta they judge.
// A session whose deltas are all gone (retention, the memory guard) leaves the
// ledger with them: what is not in the history is not known.
//
// The table is derived: a file without it (versions 0 and 1) or whose counts
// do not add up to its history gets it rebuilt from the history on load.
//
// Internal to storage/: Store calls it with its own connection, inside its own
// transactions. Not thread-safe; the store lane only.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <functional>
#include <span>
#include <string>

#include "base/delta.h"
#include "base/result.h"
#include "storage/sqlite_statement.h"

namespace deltatap {

// The SQL that creates the table (also used by the migration).
extern const char* const kCreateSessionsTable;

class SessionLedger {
 public:
  // Whether the database has the table (a read-only file may not).
  static bool present(sqlite3* db);
  // Registers deltatap_digest(text) on `db`, which the rebuild uses.
  static Status register_functions(sqlite3* db);
  // Creates the table when missing; rebuilds it from the history when it is
  // new or its counts do not add up to `delta_count`.
  Status ensure(sqlite3* db, std::int64_t delta_count);
  // The rows were inserted (every one of them: no duplicates ignored), in id order.
  Status add(sqlite3* db, std::span<const StoredDelta> rows);
  // Before deleting the deltas matching `where` (SQL over session_deltas, with
  // parameters bound by `bind`): notes what they count per session.
  Status before_delete(sqlite3* db, const std::string& where,
                       const std::function<void(sqlite3_stmt*)>& bind);
  // After that delete: subtracts it, drops sessions left without deltas and
  // brings the other columns of the touched sessions up to date.
  Status after_delete(sqlite3* db);
  // Recomputes every row from the history.
  Status rebuild(sqlite3* db);

 private:
  Statement upsert_;
};

}  // namespace deltatap
