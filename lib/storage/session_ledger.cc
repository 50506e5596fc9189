#include "storage/session_ledger.h"

#include <bit>
#include <map>
#include <optional>
#include <string_view>

#include "base/digest.h"

namespace deltatap {

const char* const kCreateSessionsTable = R"sql(
CREATE TABLE IF NOT EXISTS sessions (
  session_id TEXT PRIMARY KEY,
  created INTEGER NOT NULL DEFAULT 0,
  updated INTEGER NOT NULL DEFAULT 0,
  deleted INTEGER NOT NULL DEFAULT 0,
  gaps INTEGER NOT NULL DEFAULT 0,
  inferred INTEGER NOT NULL DEFAULT 0,
  first_seen TEXT NOT NULL,
  last_seen TEXT NOT NULL,
  last_id INTEGER NOT NULL,
  last_type TEXT NOT NULL,
  live INTEGER NOT NULL,
  state_digest INTEGER
) WITHOUT ROWID;)sql";

namespace {

// The last delta (by id) of the session named by the outer row: one step down
// the session_id index, whose entries are in id order.
constexpr const char* kLastOf =
    "(SELECT %s FROM session_deltas n WHERE n.session_id = sessions.session_id "
    "ORDER BY n.id DESC LIMIT 1)";
constexpr const char* kFirstOf =
    "(SELECT %s FROM session_deltas n WHERE n.session_id = sessions.session_id "
    "ORDER BY n.id LIMIT 1)";

std::string of(const char* pattern, const char* column) {
  std::string sql = pattern;
  sql.replace(sql.find("%s"), 2, column);
  return sql;
}

// Sets the columns that follow from the first and last delta of the rows
// chosen by `where`.
std::string refresh_ends_sql(const std::string& where) {
  return "UPDATE sessions SET first_seen = " + of(kFirstOf, "n.timestamp") +
         ", last_seen = " + of(kLastOf, "n.timestamp") + ", last_id = " + of(kLastOf, "n.id") +
         ", last_type = " + of(kLastOf, "n.delta_type") + ", live = " +
         of(kLastOf, "n.delta_type <> 'deleted'") + ", state_digest = " +
         of(kLastOf,
            "deltatap_digest(CASE WHEN n.delta_type = 'deleted' THEN n.before_state "
            "ELSE n.after_state END)") +
         " WHERE " + where;
}

Status exec(sqlite3* db, const std::string& sql) {
  char* message = nullptr;
  if (sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &message) != SQLITE_OK) {
    std::string text = message ? message : "unknown error";
    sqlite3_free(message);
    return Error{"session ledger: " + text};
  }
  return ok_status();
}

Result<std::int64_t> scalar(sqlite3* db, const char* sql) {
  sqlite3_stmt* raw = nullptr;
  if (sqlite3_prepare_v2(db, sql, -1, &raw, nullptr) != SQLITE_OK) {
    return Error{sqlite_error(db, "session ledger")};
  }
  Statement stmt(raw);
  if (sqlite3_step(raw) != SQLITE_ROW) return Error{sqlite_error(db, "session ledger")};
  return sqlite3_column_int64(raw, 0);
}

// deltatap_digest(text): the ledger's digest of a state, NULL for NULL.
void digest_sql_function(sqlite3_context* context, int, sqlite3_value** args) {
  auto raw = sqlite3_value_text(args[0]);
  if (!raw) {
    sqlite3_result_null(context);
    return;
  }
  std::string_view text(reinterpret_cast<const char*>(raw), sqlite3_value_bytes(args[0]));
  sqlite3_result_int64(context, std::bit_cast<std::int64_t>(digest_of(text)));
}

// One session's share of a batch.
struct BatchShare {
  std::int64_t counts[3] = {0, 0, 0};
  std::int64_t gaps = 0;
  std::int64_t inferred = 0;
  const StoredDelta* first = nullptr;
  const StoredDelta* last = nullptr;
};

}  // namespace

bool SessionLedger::present(sqlite3* db) {
  auto found = scalar(db,
                      "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' "
                      "AND name = 'sessions'");
  return found.ok() && *found > 0;
}

Status SessionLedger::register_functions(sqlite3* db) {
  if (sqlite3_create_function(db, "deltatap_digest", 1,
                              SQLITE_UTF8 | SQLITE_DETERMINISTIC | SQLITE_DIRECTONLY, nullptr,
                              digest_sql_function, nullptr, nullptr) != SQLITE_OK) {
    return Error{sqlite_error(db, "register function")};
  }
  return ok_status();
}

Status SessionLedger::ensure(sqlite3* db, std::int64_t delta_count) {
  bool existed = present(db);
  if (auto s = exec(db, kCreateSessionsTable); !s.ok()) return s;
  if (existed) {
    auto total = scalar(db, "SELECT COALESCE(SUM(created + updated + deleted), 0) FROM sessions");
    if (total.ok() && *total == delta_count) return ok_status();
  }
  return rebuild(db);
}

Status SessionLedger::rebuild(sqlite3* db) {
  if (auto s = exec(db, "DELETE FROM sessions"); !s.ok()) return s;
  if (auto s = exec(db,
                    "INSERT INTO sessions (session_id, created, updated, deleted, gaps, inferred, "
                    "first_seen, last_seen, last_id, last_type, live) "
                    "SELECT session_id, SUM(delta_type = 'created'), SUM(delta_type = 'updated'), "
                    "SUM(delta_type = 'deleted'), SUM(gap), SUM(origin <> 'stream'), "
                    "'', '', 0, '', 0 FROM session_deltas GROUP BY session_id");
      !s.ok()) {
    return s;
  }
  return exec(db, refresh_ends_sql("1"));
}

Status SessionLedger::add(sqlite3* db, std::span<const StoredDelta> rows) {
  // A batch holds a few sessions many times over: one upsert per session.
  std::map<std::string_view, BatchShare> shares;
  for (const auto& row : rows) {
    auto& share = shares[row.delta.session_id];
    ++share.counts[static_cast<int>(row.delta.type)];
    share.gaps += row.gap ? 1 : 0;
    share.inferred += row.origin != DeltaOrigin::stream ? 1 : 0;
    if (!share.first || row.id < share.first->id) share.first = &row;
    if (!share.last || row.id > share.last->id) share.last = &row;
  }
  if (!upsert_.get()) {
    // In an upsert's SET every right-hand side sees the old row, so the order
    // of the assignments does not matter. A batch's rows normally come after
    // every row the ledger has seen; the comparisons keep it right otherwise.
    constexpr const char* kUpsert =
        "INSERT INTO sessions (session_id, created, updated, deleted, gaps, inferred, "
        "first_seen, last_seen, last_id, last_type, live, state_digest) "
        "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12) "
        "ON CONFLICT(session_id) DO UPDATE SET "
        "created = created + excluded.created, updated = updated + excluded.updated, "
        "deleted = deleted + excluded.deleted, gaps = gaps + excluded.gaps, "
        "inferred = inferred + excluded.inferred, "
        "first_seen = first_seen, "
        "last_seen = CASE WHEN excluded.last_id > last_id THEN excluded.last_seen ELSE last_seen END, "
        "last_type = CASE WHEN excluded.last_id > last_id THEN excluded.last_type ELSE last_type END, "
        "live = CASE WHEN excluded.last_id > last_id THEN excluded.live ELSE live END, "
        "state_digest = CASE WHEN excluded.last_id > last_id THEN excluded.state_digest "
        "ELSE state_digest END, "
        "last_id = MAX(last_id, excluded.last_id)";
    sqlite3_stmt* raw = nullptr;
    if (sqlite3_prepare_v3(db, kUpsert, -1, SQLITE_PREPARE_PERSISTENT, &raw, nullptr) != SQLITE_OK) {
      return Error{sqlite_error(db, "session ledger")};
    }
    upsert_ = Statement(raw);
  }
  for (const auto& [session_id, share] : shares) {
    const Delta& last = share.last->delta;
    const auto& state = last.type == DeltaType::deleted ? last.before : last.after;
    Use use(upsert_.get());
    bind_text(*use, 1, session_id);
    for (int k = 0; k < 3; ++k) sqlite3_bind_int64(*use, 2 + k, share.counts[k]);
    sqlite3_bind_int64(*use, 5, share.gaps);
    sqlite3_bind_int64(*use, 6, share.inferred);
    bind_text(*use, 7, share.first->delta.timestamp);
    bind_text(*use, 8, last.timestamp);
    sqlite3_bind_int64(*use, 9, share.last->id);
    bind_text(*use, 10, to_string(last.type));
    sqlite3_bind_int(*use, 11, last.type == DeltaType::deleted ? 0 : 1);
    if (state) {
      sqlite3_bind_int64(*use, 12, std::bit_cast<std::int64_t>(digest_of(*state)));
    } else {
      sqlite3_bind_null(*use, 12);
    }
    if (sqlite3_step(*use) != SQLITE_DONE) return Error{sqlite_error(db, "session ledger")};
  }
  return ok_status();
}

Status SessionLedger::before_delete(sqlite3* db, const std::string& where,
                                    const std::function<void(sqlite3_stmt*)>& bind) {
  if (auto s = exec(db,
                    "CREATE TEMP TABLE IF NOT EXISTS ledger_doomed (session_id TEXT PRIMARY KEY, "
                    "created INTEGER, updated INTEGER, deleted INTEGER, gaps INTEGER, "
                    "inferred INTEGER);"
                    "DELETE FROM temp.ledger_doomed");
      !s.ok()) {
    return s;
  }
  std::string sql =
      "INSERT INTO temp.ledger_doomed SELECT session_id, SUM(delta_type = 'created'), "
      "SUM(delta_type = 'updated'), SUM(delta_type = 'deleted'), SUM(gap), "
      "SUM(origin <> 'stream') FROM session_deltas WHERE " +
      where + " GROUP BY session_id";
  sqlite3_stmt* raw = nullptr;
  if (sqlite3_prepare_v2(db, sql.c_str(), -1, &raw, nullptr) != SQLITE_OK) {
    return Error{sqlite_error(db, "session ledger")};
  }
  Statement stmt(raw);
  bind(raw);
  if (sqlite3_step(raw) != SQLITE_DONE) return Error{sqlite_error(db, "session ledger")};
  return ok_status();
}

Status SessionLedger::after_delete(sqlite3* db) {
  constexpr const char* kTouched = "session_id IN (SELECT session_id FROM temp.ledger_doomed)";
  if (auto s = exec(db,
                    "UPDATE sessions SET created = sessions.created - d.created, "
                    "updated = sessions.updated - d.updated, "
                    "deleted = sessions.deleted - d.deleted, gaps = sessions.gaps - d.gaps, "
                    "inferred = sessions.inferred - d.inferred "
                    "FROM temp.ledger_doomed d WHERE sessions.session_id = d.session_id;"
                    "DELETE FROM sessions WHERE " + std::string(kTouched) +
                        " AND created + updated + deleted <= 0");
      !s.ok()) {
    return s;
  }
  if (auto s = exec(db, refresh_ends_sql(kTouched)); !s.ok()) return s;
  return exec(db, "DELETE FROM temp.ledger_doomed");
}

}  // namespace deltatap
