// SessionSummaries: one row per session (counts by type, first and last delta
// time, the newest delta's type and state), kept in the table session_summary
// as deltas land and go, in the same transaction. GET /api/sessions and the
// session count of /api/stats read it instead of scanning the history, so
// they cost the number of sessions, not the number of deltas.
//
// It is deliberately small: the session ledger (design.md, "The store") will
// replace it. A file without the table (older files) or whose counts disagree
// with its history (changed by an older deltatap) gets it rebuilt on load.
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

class SessionSummaries {
 public:
  struct Added {
    const Delta* delta;
    std::int64_t id;
  };

  // Whether the database has the table (a read-only file may not).
  static bool present(sqlite3* db);
  // Creates the table when missing; rebuilds it from the history when it is
  // new or its counts do not add up to `delta_count`.
  Status ensure(sqlite3* db, std::int64_t delta_count);
  // The rows were inserted (every one of them: no duplicates ignored).
  Status add(sqlite3* db, std::span<const Added> rows);
  // Before deleting the deltas matching `where` (SQL over session_deltas, with
  // parameters bound by `bind`): notes what they count per session.
  Status before_delete(sqlite3* db, const std::string& where,
                       const std::function<void(sqlite3_stmt*)>& bind);
  // After that delete: subtracts it, drops sessions left without deltas and
  // brings the first/last columns of the others up to date.
  Status after_delete(sqlite3* db);
  // Recomputes every row from the history.
  Status rebuild(sqlite3* db);

 private:
  Statement upsert_;
};

}  // namespace deltatap
