// SessionLedger: the `sessions` table, one row per session id (design.md, "The
// store"): counts by type, how many of its deltas were inferred (origin resync
// or reconcile) and how many follow a gap, the times of its first and last
// delta, the id and type of its last delta (arrival order: ids, never
// timestamps), whether it is live (its last delta is not a deletion) and the
// digest of its last state (base/digest.h; the after state, or the before
// state of a deletion). And the facts the analytics read (design.md,
// "Analytics"; docs/analytics.md): the session's repo, when its current life
// began (the latest `created`), its first terminal planStatus and when, when
// it was deleted, its approval and when that was last decided, and how many
// gaps this life has; each time with the origin of the delta that set it.
// Beside it, `activity`: deltas per UTC quarter hour and repo, for heatmaps.
//
// GET /api/sessions, the session count and the analytics read it instead of
// the history, so they cost the number of sessions, not of deltas; the
// ledger's rules (ingest/ledger_rules.h) read one row per delta they judge.
// A session whose deltas are all gone (retention, the memory guard) leaves the
// ledger with them: what is not in the history is not known. Pruning a part
// of a session's deltas refreshes its counts and ends but keeps its facts:
// they say what was observed of its life, and pruning does not unsay that.
//
// Writing is deferred: add() keeps the rows a batch touches in memory, and
// flush() writes every changed row once, however many batches changed it
// (one write per session per flush instead of one per session per batch:
// bench_ingest_budget measured the per-batch upsert at about 4 µs a delta).
// Whoever reads the tables (Store, for every reader, a snapshot, a delete)
// flushes first; row() answers from memory without a flush.
//
// The tables are derived: a file without them (versions 0 and 1), with an
// older set of columns, or whose counts do not add up to its history gets them
// rebuilt from the history on load, through the same code as add().
//
// Internal to storage/: Store calls it with its own connection, inside or
// outside its transactions (flush() opens one when none is open). Not
// thread-safe; the store lane only.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "base/delta.h"
#include "base/result.h"
#include "storage/sqlite_statement.h"

namespace deltatap {

// The SQL that creates the tables (also used by the migration).
extern const char* const kCreateSessionsTable;

// One session's row.
struct LedgerRow {
  std::int64_t counts[3] = {0, 0, 0};  // by DeltaType
  std::int64_t gaps = 0;
  std::int64_t inferred = 0;
  std::string first_seen, last_seen;
  std::int64_t last_id = 0;
  DeltaType last_type = DeltaType::created;
  bool live = false;
  std::optional<std::uint64_t> state_digest;
  // The analytics' facts (see above); times are normalised timestamps, each
  // *_origin the origin of the delta that set the time before it.
  std::optional<std::string> repo;
  std::optional<std::string> created_at, created_origin;
  std::optional<std::string> outcome, outcome_at, outcome_origin;
  std::optional<std::string> ended_at, ended_origin;
  std::optional<std::string> approval, decided_at, decided_origin;
  std::int64_t life_gaps = 0;
};

class SessionLedger {
 public:
  SessionLedger();
  ~SessionLedger();
  SessionLedger(SessionLedger&&) noexcept;
  SessionLedger& operator=(SessionLedger&&) noexcept;

  // Whether the database has the tables with every column this build writes
  // (a read-only file may not).
  static bool present(sqlite3* db);
  // Registers deltatap_digest(text) on `db`.
  static Status register_functions(sqlite3* db);
  // Creates the tables when missing; rebuilds them from the history when they
  // are new, of an older shape, or their counts do not add up to `delta_count`.
  Status ensure(sqlite3* db, std::int64_t delta_count);
  // The rows were inserted (every one of them: no duplicates ignored), in id
  // order. Only memory changes until flush(); an error is a failed read of a
  // session's row.
  Status add(sqlite3* db, std::span<const StoredDelta> rows);
  // Writes what add() changed. Cheap when nothing did.
  Status flush(sqlite3* db);
  // A session's row as it stands (flushed or not), or nullopt when the ledger
  // does not know it.
  Result<std::optional<LedgerRow>> row(sqlite3* db, const std::string& session_id);
  // Before deleting the deltas matching `where` (SQL over session_deltas, with
  // parameters bound by `bind`): notes what they count per session and per
  // quarter hour. Flushes first.
  Status before_delete(sqlite3* db, const std::string& where,
                       const std::function<void(sqlite3_stmt*)>& bind);
  // After that delete: subtracts it, drops sessions left without deltas and
  // brings the ends of the touched sessions up to date.
  Status after_delete(sqlite3* db);
  // Recomputes both tables from the history (what add() would have made of
  // it, in id order); drops whatever was not flushed.
  Status rebuild(sqlite3* db);

 private:
  struct Cache;
  std::unique_ptr<Cache> cache_;
};

}  // namespace deltatap
