#include "storage/session_summary.h"

#include <map>
#include <optional>
#include <string_view>

namespace deltatap {

namespace {

constexpr const char* kCreate = R"sql(
CREATE TABLE IF NOT EXISTS session_summary (
  session_id TEXT PRIMARY KEY,
  created INTEGER NOT NULL DEFAULT 0,
  updated INTEGER NOT NULL DEFAULT 0,
  deleted INTEGER NOT NULL DEFAULT 0,
  first_seen TEXT NOT NULL,
  last_seen TEXT NOT NULL,
  last_id INTEGER NOT NULL,
  last_type TEXT NOT NULL,
  last_state TEXT
) WITHOUT ROWID;)sql";

// The newest delta of the session named by the outer row, by (timestamp, id):
// one step down the (session_id, timestamp) index.
constexpr const char* kNewestOf =
    "(SELECT %s FROM session_deltas n WHERE n.session_id = session_summary.session_id "
    "ORDER BY n.timestamp DESC, n.id DESC LIMIT 1)";

std::string newest(const char* column) {
  std::string sql = kNewestOf;
  sql.replace(sql.find("%s"), 2, column);
  return sql;
}

// Sets the first/last columns of the rows chosen by `where` from the history.
std::string refresh_ends_sql(const std::string& where) {
  return "UPDATE session_summary SET "
         "first_seen = (SELECT MIN(timestamp) FROM session_deltas f "
         "WHERE f.session_id = session_summary.session_id), "
         "last_seen = " + newest("n.timestamp") + ", last_id = " + newest("n.id") +
         ", last_type = " + newest("n.delta_type") + ", last_state = " +
         newest("CASE WHEN n.delta_type = 'deleted' THEN n.before_state ELSE n.after_state END") +
         " WHERE " + where;
}

Status exec(sqlite3* db, const std::string& sql) {
  char* message = nullptr;
  if (sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &message) != SQLITE_OK) {
    std::string text = message ? message : "unknown error";
    sqlite3_free(message);
    return Error{"session summary: " + text};
  }
  return ok_status();
}

Result<std::int64_t> scalar(sqlite3* db, const char* sql) {
  sqlite3_stmt* raw = nullptr;
  if (sqlite3_prepare_v2(db, sql, -1, &raw, nullptr) != SQLITE_OK) {
    return Error{sqlite_error(db, "session summary")};
  }
  Statement stmt(raw);
  if (sqlite3_step(raw) != SQLITE_ROW) return Error{sqlite_error(db, "session summary")};
  return sqlite3_column_int64(raw, 0);
}

// One session's share of a batch.
struct BatchShare {
  std::int64_t counts[3] = {0, 0, 0};
  std::string_view first_seen;
  std::string_view last_seen;
  std::int64_t last_id = 0;
  const Delta* last = nullptr;
};

}  // namespace

bool SessionSummaries::present(sqlite3* db) {
  auto found = scalar(db,
                      "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' "
                      "AND name = 'session_summary'");
  return found.ok() && *found > 0;
}

Status SessionSummaries::ensure(sqlite3* db, std::int64_t delta_count) {
  bool existed = present(db);
  if (auto s = exec(db, kCreate); !s.ok()) return s;
  if (existed) {
    auto total = scalar(db, "SELECT COALESCE(SUM(created + updated + deleted), 0) FROM session_summary");
    if (total.ok() && *total == delta_count) return ok_status();
  }
  return rebuild(db);
}

Status SessionSummaries::rebuild(sqlite3* db) {
  if (auto s = exec(db, "DELETE FROM session_summary"); !s.ok()) return s;
  if (auto s = exec(db,
                    "INSERT INTO session_summary (session_id, created, updated, deleted, "
                    "first_seen, last_seen, last_id, last_type) "
                    "SELECT session_id, SUM(delta_type = 'created'), SUM(delta_type = 'updated'), "
                    "SUM(delta_type = 'deleted'), '', '', 0, '' "
                    "FROM session_deltas GROUP BY session_id");
      !s.ok()) {
    return s;
  }
  return exec(db, refresh_ends_sql("1"));
}

Status SessionSummaries::add(sqlite3* db, std::span<const Added> rows) {
  // A batch holds a few sessions many times over: one upsert per session.
  std::map<std::string_view, BatchShare> shares;
  for (const auto& row : rows) {
    const Delta& d = *row.delta;
    auto& share = shares[d.session_id];
    ++share.counts[static_cast<int>(d.type)];
    if (share.first_seen.empty() || d.timestamp < share.first_seen) share.first_seen = d.timestamp;
    if (!share.last || d.timestamp > share.last_seen ||
        (d.timestamp == share.last_seen && row.id > share.last_id)) {
      share.last_seen = d.timestamp;
      share.last_id = row.id;
      share.last = &d;
    }
  }
  if (!upsert_.get()) {
    // In an upsert's SET every right-hand side sees the old row, so the
    // order of the assignments does not matter.
    constexpr const char* kUpsert =
        "INSERT INTO session_summary (session_id, created, updated, deleted, first_seen, "
        "last_seen, last_id, last_type, last_state) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) "
        "ON CONFLICT(session_id) DO UPDATE SET "
        "created = created + excluded.created, updated = updated + excluded.updated, "
        "deleted = deleted + excluded.deleted, "
        "first_seen = MIN(first_seen, excluded.first_seen), "
        "last_type = CASE WHEN (excluded.last_seen, excluded.last_id) > (last_seen, last_id) "
        "THEN excluded.last_type ELSE last_type END, "
        "last_state = CASE WHEN (excluded.last_seen, excluded.last_id) > (last_seen, last_id) "
        "THEN excluded.last_state ELSE last_state END, "
        "last_id = CASE WHEN (excluded.last_seen, excluded.last_id) > (last_seen, last_id) "
        "THEN excluded.last_id ELSE last_id END, "
        "last_seen = MAX(last_seen, excluded.last_seen)";
    sqlite3_stmt* raw = nullptr;
    if (sqlite3_prepare_v3(db, kUpsert, -1, SQLITE_PREPARE_PERSISTENT, &raw, nullptr) != SQLITE_OK) {
      return Error{sqlite_error(db, "session summary")};
    }
    upsert_ = Statement(raw);
  }
  for (const auto& [session_id, share] : shares) {
    Use use(upsert_.get());
    bind_text(*use, 1, session_id);
    for (int k = 0; k < 3; ++k) sqlite3_bind_int64(*use, 2 + k, share.counts[k]);
    bind_text(*use, 5, share.first_seen);
    bind_text(*use, 6, share.last_seen);
    sqlite3_bind_int64(*use, 7, share.last_id);
    bind_text(*use, 8, to_string(share.last->type));
    bind_optional(*use, 9, share.last->type == DeltaType::deleted ? share.last->before
                                                                  : share.last->after);
    if (sqlite3_step(*use) != SQLITE_DONE) return Error{sqlite_error(db, "session summary")};
  }
  return ok_status();
}

Status SessionSummaries::before_delete(sqlite3* db, const std::string& where,
                                       const std::function<void(sqlite3_stmt*)>& bind) {
  if (auto s = exec(db,
                    "CREATE TEMP TABLE IF NOT EXISTS summary_doomed "
                    "(session_id TEXT PRIMARY KEY, created INTEGER, updated INTEGER, deleted INTEGER);"
                    "DELETE FROM temp.summary_doomed");
      !s.ok()) {
    return s;
  }
  std::string sql =
      "INSERT INTO temp.summary_doomed SELECT session_id, SUM(delta_type = 'created'), "
      "SUM(delta_type = 'updated'), SUM(delta_type = 'deleted') FROM session_deltas WHERE " +
      where + " GROUP BY session_id";
  sqlite3_stmt* raw = nullptr;
  if (sqlite3_prepare_v2(db, sql.c_str(), -1, &raw, nullptr) != SQLITE_OK) {
    return Error{sqlite_error(db, "session summary")};
  }
  Statement stmt(raw);
  bind(raw);
  if (sqlite3_step(raw) != SQLITE_DONE) return Error{sqlite_error(db, "session summary")};
  return ok_status();
}

Status SessionSummaries::after_delete(sqlite3* db) {
  constexpr const char* kTouched = "session_id IN (SELECT session_id FROM temp.summary_doomed)";
  if (auto s = exec(db,
                    "UPDATE session_summary SET created = session_summary.created - d.created, "
                    "updated = session_summary.updated - d.updated, "
                    "deleted = session_summary.deleted - d.deleted "
                    "FROM temp.summary_doomed d WHERE session_summary.session_id = d.session_id;"
                    "DELETE FROM session_summary WHERE " + std::string(kTouched) +
                        " AND created + updated + deleted <= 0");
      !s.ok()) {
    return s;
  }
  if (auto s = exec(db, refresh_ends_sql(kTouched)); !s.ok()) return s;
  return exec(db, "DELETE FROM temp.summary_doomed");
}

}  // namespace deltatap
