#include "storage/analytics_reads.h"

#include <sqlite3.h>

#include <string>
#include <utility>

#include "storage/sqlite_statement.h"

namespace deltatap {

namespace {

constexpr const char* kFactColumns =
    "session_id, created_at, created_origin, outcome, outcome_at, outcome_origin, ended_at, "
    "ended_origin, approval, decided_at, decided_origin, life_gaps, live, first_seen, last_seen";

SessionFacts read_facts(sqlite3_stmt* stmt) {
  SessionFacts row;
  row.session_id = column_text(stmt, 0);
  row.created_at = column_optional(stmt, 1);
  row.created_origin = column_optional(stmt, 2);
  row.outcome = column_optional(stmt, 3);
  row.outcome_at = column_optional(stmt, 4);
  row.outcome_origin = column_optional(stmt, 5);
  row.ended_at = column_optional(stmt, 6);
  row.ended_origin = column_optional(stmt, 7);
  row.approval = column_optional(stmt, 8);
  row.decided_at = column_optional(stmt, 9);
  row.decided_origin = column_optional(stmt, 10);
  row.life_gaps = sqlite3_column_int64(stmt, 11);
  row.live = sqlite3_column_int(stmt, 12) != 0;
  row.first_seen = column_text(stmt, 13);
  row.last_seen = column_text(stmt, 14);
  return row;
}

// The ledger rows matching `where` (parameters ?1 since, ?2 until, ?3 repo).
// The repo condition is a separate statement rather than "?3 IS NULL OR ...",
// so each cached statement has one plan.
Result<std::vector<SessionFacts>> facts_where(Store& store, const FactsWindow& window,
                                              const std::string& where, const char* what) {
  std::string sql = std::string("SELECT ") + kFactColumns + " FROM sessions WHERE (" + where + ")";
  if (window.repo) sql += " AND repo = ?3";
  auto stmt = store.prepared(sql);
  if (!stmt.ok()) return Error{stmt.error()};
  Use use(*stmt);
  bind_text(*use, 1, window.since);
  bind_text(*use, 2, window.until);
  if (window.repo) bind_text(*use, 3, *window.repo);
  std::vector<SessionFacts> rows;
  int rc;
  while ((rc = sqlite3_step(*use)) == SQLITE_ROW) rows.push_back(read_facts(*use));
  if (rc != SQLITE_DONE) return Error{sqlite_error(sqlite3_db_handle(*use), what)};
  return rows;
}

}  // namespace

Result<std::vector<SessionFacts>> sessions_created_in(Store& store, const FactsWindow& window) {
  return facts_where(store, window, "created_at >= ?1 AND created_at < ?2", "durations");
}

Result<ApprovalFacts> approvals_in(Store& store, const FactsWindow& window) {
  ApprovalFacts facts;
  auto bind_window = [&](sqlite3_stmt* stmt) {
    bind_text(stmt, 1, window.since);
    bind_text(stmt, 2, window.until);
    if (window.repo) bind_text(stmt, 3, *window.repo);
  };
  std::string repo = window.repo ? " AND repo = ?3" : "";
  auto decided = store.prepared(
      "SELECT approval = 'approved', decided_at, decided_origin <> 'stream', created_at FROM sessions "
      "WHERE decided_at >= ?1 AND decided_at < ?2 AND approval IN ('approved', 'rejected')" + repo);
  if (!decided.ok()) return Error{decided.error()};
  {
    Use use(*decided);
    bind_window(*use);
    int rc;
    while ((rc = sqlite3_step(*use)) == SQLITE_ROW) {
      facts.decisions.push_back({sqlite3_column_int(*use, 0) != 0, column_text(*use, 1),
                                 sqlite3_column_int(*use, 2) == 1, column_optional(*use, 3)});
    }
    if (rc != SQLITE_DONE) return Error{sqlite_error(sqlite3_db_handle(*use), "approvals")};
  }
  auto pending = store.prepared(
      "SELECT COUNT(*) FROM sessions WHERE live AND approval IS NOT NULL AND approval NOT IN "
      "('approved', 'rejected') AND last_seen >= ?1 AND first_seen < ?2" + repo);
  if (!pending.ok()) return Error{pending.error()};
  Use use(*pending);
  bind_window(*use);
  if (sqlite3_step(*use) != SQLITE_ROW) {
    return Error{sqlite_error(sqlite3_db_handle(*use), "pending approvals")};
  }
  facts.pending = sqlite3_column_int64(*use, 0);
  return facts;
}

Result<std::vector<QuarterCount>> activity_between(Store& store, const std::string& first_bucket,
                                                   const std::string& end_bucket,
                                                   const std::optional<std::string>& repo) {
  std::string sql = "SELECT bucket, SUM(deltas), SUM(inferred) FROM activity "
                    "WHERE bucket >= ?1 AND bucket < ?2";
  if (repo) sql += " AND repo = ?3";
  sql += " GROUP BY bucket ORDER BY bucket";
  auto stmt = store.prepared(sql);
  if (!stmt.ok()) return Error{stmt.error()};
  Use use(*stmt);
  bind_text(*use, 1, first_bucket);
  bind_text(*use, 2, end_bucket);
  if (repo) bind_text(*use, 3, *repo);
  std::vector<QuarterCount> rows;
  int rc;
  while ((rc = sqlite3_step(*use)) == SQLITE_ROW) {
    rows.push_back({column_text(*use, 0), sqlite3_column_int64(*use, 1),
                    sqlite3_column_int64(*use, 2)});
  }
  if (rc != SQLITE_DONE) return Error{sqlite_error(sqlite3_db_handle(*use), "activity")};
  return rows;
}

Result<QuarterCount> deltas_between(Store& store, const std::string& since,
                                    const std::string& until,
                                    const std::optional<std::string>& repo) {
  // The timestamp range leads, so SQLite walks the (timestamp) index over at
  // most a quarter hour of deltas; the repo is the session's, as in activity.
  const TimeColumns times = store.time_columns();
  std::string sql = "SELECT COUNT(*), COALESCE(SUM(origin <> 'stream'), 0) FROM session_deltas "
                    "WHERE timestamp >= ?1 AND timestamp < ?2";
  if (repo) sql += " AND session_id IN (SELECT session_id FROM sessions WHERE repo = ?3)";
  auto stmt = store.prepared(sql);
  if (!stmt.ok()) return Error{stmt.error()};
  Use use(*stmt);
  times.bind(*use, 1, since);
  times.bind(*use, 2, until);
  if (repo) bind_text(*use, 3, *repo);
  if (sqlite3_step(*use) != SQLITE_ROW) {
    return Error{sqlite_error(sqlite3_db_handle(*use), "activity edge")};
  }
  return QuarterCount{{}, sqlite3_column_int64(*use, 0), sqlite3_column_int64(*use, 1)};
}

Result<std::int64_t> live_session_count(Store& store) {
  auto stmt = store.prepared("SELECT COUNT(*) FROM sessions WHERE live");
  if (!stmt.ok()) return Error{stmt.error()};
  Use use(*stmt);
  if (sqlite3_step(*use) != SQLITE_ROW) {
    return Error{sqlite_error(sqlite3_db_handle(*use), "live sessions")};
  }
  return std::int64_t{sqlite3_column_int64(*use, 0)};
}

}  // namespace deltatap
