#include "storage/session_ledger.h"

#include <algorithm>
#include <bit>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "base/digest.h"
#include "storage/state_columns.h"
#include "storage/state_facts.h"
#include "storage/time_columns.h"

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
  state_digest INTEGER,
  repo TEXT,
  created_at TEXT,
  created_origin TEXT,
  outcome TEXT,
  outcome_at TEXT,
  outcome_origin TEXT,
  ended_at TEXT,
  ended_origin TEXT,
  approval TEXT,
  decided_at TEXT,
  decided_origin TEXT,
  life_gaps INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS activity (
  bucket TEXT NOT NULL,
  repo TEXT NOT NULL DEFAULT '',
  deltas INTEGER NOT NULL DEFAULT 0,
  inferred INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (bucket, repo)
) WITHOUT ROWID;)sql";

namespace {

// Columns in the order the row statements bind and read them.
constexpr const char* kRowColumns =
    "session_id, created, updated, deleted, gaps, inferred, first_seen, last_seen, last_id, "
    "last_type, live, state_digest, repo, created_at, created_origin, outcome, outcome_at, "
    "outcome_origin, ended_at, ended_origin, approval, decided_at, decided_origin, life_gaps";
constexpr int kRowColumnCount = 24;

// More sessions than this in memory after a flush, and the clean ones go:
// they are only a cache of the table then.
constexpr std::size_t kMaxCachedSessions = 100'000;

// The last delta (by id) of the session named by the outer row: one step down
// the session_id index, whose entries are in id order.
constexpr const char* kLastOf =
    "(SELECT %s FROM session_deltas n WHERE n.session_id = sessions.session_id "
    "ORDER BY n.id DESC LIMIT 1)";
constexpr const char* kFirstOf =
    "(SELECT %s FROM session_deltas n WHERE n.session_id = sessions.session_id "
    "ORDER BY n.id LIMIT 1)";

// The quarter hour a normalised timestamp falls in, as `activity` names it
// ("YYYY-MM-DDTHH:MM", MM one of 00 15 30 45), in C++ and in SQL.
std::string_view quarter_of(std::string_view timestamp, char (&out)[16]) {
  if (timestamp.size() < 16) return timestamp;
  int minute = (timestamp[14] - '0') * 10 + (timestamp[15] - '0');
  static constexpr const char* kQuarters[] = {"00", "15", "30", "45"};
  const char* quarter = kQuarters[std::clamp(minute / 15, 0, 3)];
  std::copy_n(timestamp.data(), 14, out);
  out[14] = quarter[0];
  out[15] = quarter[1];
  return {out, 16};
}
// A key per quarter hour of a delta's time: with integer times
// (time_columns.h) the quarter's number since the epoch (the division rounds
// towards zero: one back below 0), named by kQuarterOfKeySql once per group
// rather than once per row; with text times the name itself.
constexpr const char* kQuarterKeySql =
    "CASE WHEN typeof(timestamp) = 'integer' THEN "
    "timestamp / 900000 - (timestamp % 900000 < 0) ELSE "
    "substr(timestamp, 1, 14) || CASE WHEN substr(timestamp, 15, 2) < '15' THEN '00' "
    "WHEN substr(timestamp, 15, 2) < '30' THEN '15' WHEN substr(timestamp, 15, 2) < '45' "
    "THEN '30' ELSE '45' END END";
constexpr const char* kQuarterOfKeySql =
    "CASE WHEN typeof(d.quarter) = 'integer' THEN "
    "strftime('%Y-%m-%dT%H:%M', d.quarter * 900, 'unixepoch') ELSE d.quarter END";

// The time of the delta `n`, as text in either layout.
std::string time_of_n() { return time_text_sql("n.timestamp"); }

std::string of(const char* pattern, const char* column) {
  std::string sql = pattern;
  sql.replace(sql.find("%s"), 2, column);
  return sql;
}

// Sets the columns that follow from the first and last delta of the rows
// chosen by `where`.
std::string refresh_ends_sql(const std::string& where) {
  return "UPDATE sessions SET first_seen = " + of(kFirstOf, time_of_n().c_str()) +
         ", last_seen = " + of(kLastOf, time_of_n().c_str()) + ", last_id = " + of(kLastOf, "n.id") +
         ", last_type = " + of(kLastOf, "n.delta_type") + ", live = " +
         of(kLastOf, "n.delta_type <> 'deleted'") + ", state_digest = " +
         of(kLastOf,
            ("deltatap_digest(CASE WHEN n.delta_type = 'deleted' THEN " + json_before_sql("n") +
             " ELSE " + json_after_sql("n") + " END)").c_str()) +
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

Result<sqlite3_stmt*> prepared(sqlite3* db, Statement& slot, const std::string& sql) {
  if (!slot.get()) {
    sqlite3_stmt* raw = nullptr;
    if (sqlite3_prepare_v3(db, sql.c_str(), -1, SQLITE_PREPARE_PERSISTENT, &raw, nullptr) !=
        SQLITE_OK) {
      return Error{sqlite_error(db, "session ledger")};
    }
    slot = Statement(raw);
  }
  return slot.get();
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

void bind_maybe(sqlite3_stmt* stmt, int index, const std::optional<std::string>& text) {
  bind_optional(stmt, index, text);
}

LedgerRow read_row(sqlite3_stmt* stmt) {
  LedgerRow row;
  for (int k = 0; k < 3; ++k) row.counts[k] = sqlite3_column_int64(stmt, 1 + k);
  row.gaps = sqlite3_column_int64(stmt, 4);
  row.inferred = sqlite3_column_int64(stmt, 5);
  row.first_seen = column_text(stmt, 6);
  row.last_seen = column_text(stmt, 7);
  row.last_id = sqlite3_column_int64(stmt, 8);
  row.last_type = parse_delta_type(column_text(stmt, 9)).value_or(DeltaType::updated);
  row.live = sqlite3_column_int(stmt, 10) != 0;
  if (sqlite3_column_type(stmt, 11) != SQLITE_NULL) {
    row.state_digest = static_cast<std::uint64_t>(sqlite3_column_int64(stmt, 11));
  }
  std::optional<std::string>* facts[] = {&row.repo,           &row.created_at, &row.created_origin,
                                         &row.outcome,        &row.outcome_at, &row.outcome_origin,
                                         &row.ended_at,       &row.ended_origin, &row.approval,
                                         &row.decided_at,     &row.decided_origin};
  for (int k = 0; k < 11; ++k) *facts[k] = column_optional(stmt, 12 + k);
  row.life_gaps = sqlite3_column_int64(stmt, 23);
  return row;
}

void bind_row(sqlite3_stmt* stmt, const std::string& session_id, const LedgerRow& row) {
  bind_text(stmt, 1, session_id);
  for (int k = 0; k < 3; ++k) sqlite3_bind_int64(stmt, 2 + k, row.counts[k]);
  sqlite3_bind_int64(stmt, 5, row.gaps);
  sqlite3_bind_int64(stmt, 6, row.inferred);
  bind_text(stmt, 7, row.first_seen);
  bind_text(stmt, 8, row.last_seen);
  sqlite3_bind_int64(stmt, 9, row.last_id);
  bind_text(stmt, 10, to_string(row.last_type));
  sqlite3_bind_int(stmt, 11, row.live ? 1 : 0);
  if (row.state_digest) {
    sqlite3_bind_int64(stmt, 12, std::bit_cast<std::int64_t>(*row.state_digest));
  } else {
    sqlite3_bind_null(stmt, 12);
  }
  const std::optional<std::string>* facts[] = {&row.repo,       &row.created_at, &row.created_origin,
                                               &row.outcome,    &row.outcome_at, &row.outcome_origin,
                                               &row.ended_at,   &row.ended_origin, &row.approval,
                                               &row.decided_at, &row.decided_origin};
  for (int k = 0; k < 11; ++k) bind_maybe(stmt, 13 + k, *facts[k]);
  sqlite3_bind_int64(stmt, 24, row.life_gaps);
}

// Sets `to` to `from`, reusing the string's buffer (no allocation per delta
// once a session's row holds a value).
void assign(std::optional<std::string>& to, std::optional<std::string_view> from) {
  if (!from) {
    to.reset();
  } else if (to) {
    to->assign(*from);
  } else {
    to.emplace(*from);
  }
}

// What one delta, next in id order, makes of its session's row. `fresh`: the
// ledger did not know the session before it.
void apply(LedgerRow& row, const StoredDelta& stored, bool fresh, StateFactsReader& facts_reader) {
  const Delta& delta = stored.delta;
  ++row.counts[static_cast<int>(delta.type)];
  row.gaps += stored.gap ? 1 : 0;
  row.inferred += stored.origin != DeltaOrigin::stream ? 1 : 0;
  if (fresh) row.first_seen = delta.timestamp;
  // Rows normally come after every row the ledger has seen; one that does not
  // (someone else's insert) counts, but says nothing of the session's end.
  if (!fresh && stored.id <= row.last_id) return;
  row.last_seen = delta.timestamp;
  row.last_id = stored.id;
  row.last_type = delta.type;
  row.live = delta.type != DeltaType::deleted;
  const auto& state = delta.type == DeltaType::deleted ? delta.before : delta.after;
  row.state_digest = state ? std::optional(digest_of(*state)) : std::nullopt;

  const std::string_view origin = to_string(stored.origin);
  if (delta.type == DeltaType::created) {
    // A new life: what the last one reached is no longer this one's.
    row.created_at = delta.timestamp;
    row.created_origin = origin;
    row.outcome.reset(), row.outcome_at.reset(), row.outcome_origin.reset();
    row.ended_at.reset(), row.ended_origin.reset();
    row.decided_at.reset(), row.decided_origin.reset();
    row.life_gaps = 0;
  }
  if (stored.gap) ++row.life_gaps;
  if (delta.type == DeltaType::deleted) {
    row.ended_at = delta.timestamp;
    row.ended_origin = origin;
    // What the deleted state says that was not seen before (a change missed
    // in a gap): its repo, and an outcome it reached.
    if ((!row.repo || !row.outcome) && delta.before) {
      StateFacts facts = facts_reader.read(*delta.before);
      if (!row.repo) assign(row.repo, facts.repo);
      if (!row.outcome && facts.plan_status && is_terminal_plan_status(*facts.plan_status)) {
        assign(row.outcome, facts.plan_status);
        row.outcome_at = delta.timestamp;
        row.outcome_origin = origin;
      }
    }
    return;
  }
  if (!delta.after) return;
  StateFacts facts = facts_reader.read(*delta.after);
  if (facts.repo) assign(row.repo, facts.repo);
  if (facts.plan_status && is_terminal_plan_status(*facts.plan_status) && !row.outcome) {
    assign(row.outcome, facts.plan_status);
    row.outcome_at = delta.timestamp;
    row.outcome_origin = origin;
  }
  bool decided = facts.approval && is_approval_decision(*facts.approval);
  if (!decided) {
    row.decided_at.reset(), row.decided_origin.reset();
  } else if (!row.approval || *row.approval != *facts.approval || !row.decided_at) {
    row.decided_at = delta.timestamp;
    row.decided_origin = origin;
  }
  assign(row.approval, facts.approval);
}

}  // namespace

struct SessionLedger::Cache {
  struct Entry {
    LedgerRow row;
    bool dirty = false;
  };
  std::unordered_map<std::string, Entry> rows;
  std::vector<std::pair<const std::string, Entry>*> dirty;  // nodes of `rows`
  // Deltas (and inferred ones) per (quarter hour, repo) not yet written. A
  // flush's worth holds a few quarter hours times the repos: a short list
  // searched from its end, where the current quarter hour is.
  struct Activity {
    std::string bucket, repo;
    std::int64_t deltas = 0, inferred = 0;
  };
  std::vector<Activity> activity;
  StateFactsReader facts_reader;
  Statement select_row, write_row, add_activity;

  void clear() {
    rows.clear();
    dirty.clear();
    activity.clear();
  }

  using Node = std::pair<const std::string, Entry>;

  // The session's entry (the map's node: its address stays put as the map
  // grows), read from the table when not in memory; `fresh` says the table
  // does not know it either.
  Result<Node*> find(sqlite3* db, const std::string& session_id, bool* fresh) {
    *fresh = false;
    if (auto found = rows.find(session_id); found != rows.end()) return &*found;
    auto stmt = prepared(db, select_row,
                         std::string("SELECT ") + kRowColumns + " FROM sessions WHERE session_id = ?1");
    if (!stmt.ok()) return Error{stmt.error()};
    Use use(*stmt);
    bind_text(*use, 1, session_id);
    int rc = sqlite3_step(*use);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) return Error{sqlite_error(db, "session ledger")};
    Entry entry;
    if (rc == SQLITE_ROW) entry.row = read_row(*use);
    *fresh = rc == SQLITE_DONE;
    return &*rows.emplace(session_id, std::move(entry)).first;
  }

  void add(const StoredDelta& stored, Node& node, bool fresh) {
    apply(node.second.row, stored, fresh, facts_reader);
    char bucket[16];
    std::string_view quarter = quarter_of(stored.delta.timestamp, bucket);
    std::string_view repo = node.second.row.repo ? std::string_view(*node.second.row.repo) : "";
    auto share = std::find_if(activity.rbegin(), activity.rend(), [&](const Activity& a) {
      return a.bucket == quarter && a.repo == repo;
    });
    Activity& counts = share != activity.rend()
                           ? *share
                           : activity.emplace_back(Activity{std::string(quarter), std::string(repo)});
    ++counts.deltas;
    counts.inferred += stored.origin != DeltaOrigin::stream ? 1 : 0;
    if (!node.second.dirty) {
      node.second.dirty = true;
      dirty.push_back(&node);
    }
  }
};

SessionLedger::SessionLedger() : cache_(std::make_unique<Cache>()) {}
SessionLedger::~SessionLedger() = default;
SessionLedger::SessionLedger(SessionLedger&&) noexcept = default;
SessionLedger& SessionLedger::operator=(SessionLedger&&) noexcept = default;

bool SessionLedger::present(sqlite3* db) {
  auto found = scalar(db,
                      "SELECT (SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' "
                      "AND name IN ('sessions', 'activity')) + (SELECT COUNT(*) FROM "
                      "pragma_table_info('sessions') WHERE name = 'life_gaps')");
  return found.ok() && *found == 3;
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
  if (present(db)) {
    auto total = scalar(db, "SELECT COALESCE(SUM(created + updated + deleted), 0) FROM sessions");
    if (total.ok() && *total == delta_count) return ok_status();
  }
  // Missing, of an older shape (the first v2 files had no facts), or not
  // adding up: made anew.
  if (auto s = exec(db, "DROP TABLE IF EXISTS sessions; DROP TABLE IF EXISTS activity"); !s.ok()) {
    return s;
  }
  if (auto s = exec(db, kCreateSessionsTable); !s.ok()) return s;
  return rebuild(db);
}

Status SessionLedger::add(sqlite3* db, std::span<const StoredDelta> rows) {
  Cache& cache = *cache_;
  for (const auto& stored : rows) {
    bool fresh = false;
    auto node = cache.find(db, stored.delta.session_id, &fresh);
    if (!node.ok()) return Error{node.error()};
    cache.add(stored, **node, fresh);
  }
  return ok_status();
}

Status SessionLedger::flush(sqlite3* db) {
  Cache& cache = *cache_;
  if (cache.dirty.empty() && cache.activity.empty()) return ok_status();
  bool own_transaction = sqlite3_get_autocommit(db) != 0;
  if (own_transaction) {
    if (auto s = exec(db, "BEGIN"); !s.ok()) return s;
  }
  auto body = [&]() -> Status {
    auto write = prepared(db, cache.write_row,
                          std::string("INSERT OR REPLACE INTO sessions (") + kRowColumns +
                              ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, "
                              "?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24)");
    if (!write.ok()) return Error{write.error()};
    static_assert(kRowColumnCount == 24);
    while (!cache.dirty.empty()) {
      auto* node = cache.dirty.back();
      Use use(*write);
      bind_row(*use, node->first, node->second.row);
      if (sqlite3_step(*use) != SQLITE_DONE) return Error{sqlite_error(db, "session ledger")};
      node->second.dirty = false;
      cache.dirty.pop_back();
    }
    auto add = prepared(db, cache.add_activity,
                        "INSERT INTO activity (bucket, repo, deltas, inferred) VALUES (?1, ?2, ?3, ?4) "
                        "ON CONFLICT (bucket, repo) DO UPDATE SET deltas = deltas + excluded.deltas, "
                        "inferred = inferred + excluded.inferred");
    if (!add.ok()) return Error{add.error()};
    // Each written share leaves the map at once: a retry after an error must
    // not count it twice.
    while (!cache.activity.empty()) {
      const auto& share = cache.activity.back();
      Use use(*add);
      bind_text(*use, 1, share.bucket);
      bind_text(*use, 2, share.repo);
      sqlite3_bind_int64(*use, 3, share.deltas);
      sqlite3_bind_int64(*use, 4, share.inferred);
      if (sqlite3_step(*use) != SQLITE_DONE) return Error{sqlite_error(db, "session ledger")};
      cache.activity.pop_back();
    }
    return ok_status();
  };
  Status result = body();
  if (own_transaction) {
    if (auto s = exec(db, "COMMIT"); !s.ok() && result.ok()) return s;
  }
  if (result.ok() && cache.rows.size() > kMaxCachedSessions) cache.rows.clear();
  return result;
}

Result<std::optional<LedgerRow>> SessionLedger::row(sqlite3* db, const std::string& session_id) {
  bool fresh = false;
  auto entry = cache_->find(db, session_id, &fresh);
  if (!entry.ok()) return Error{entry.error()};
  if (fresh) {
    cache_->rows.erase(session_id);  // not known: nothing to keep
    return std::optional<LedgerRow>();
  }
  return std::optional<LedgerRow>((*entry)->second.row);
}

Status SessionLedger::before_delete(sqlite3* db, const std::string& where,
                                    const std::function<void(sqlite3_stmt*)>& bind) {
  if (auto s = flush(db); !s.ok()) return s;
  if (auto s = exec(db,
                    "CREATE TEMP TABLE IF NOT EXISTS ledger_doomed (session_id TEXT PRIMARY KEY, "
                    "created INTEGER, updated INTEGER, deleted INTEGER, gaps INTEGER, "
                    "inferred INTEGER);"
                    "CREATE TEMP TABLE IF NOT EXISTS activity_doomed (bucket TEXT, repo TEXT, "
                    "deltas INTEGER, inferred INTEGER, PRIMARY KEY (bucket, repo));"
                    "CREATE TEMP TABLE IF NOT EXISTS doomed_groups (session_id TEXT, bucket TEXT, "
                    "created INTEGER, updated INTEGER, deleted INTEGER, gaps INTEGER, "
                    "inferred INTEGER, deltas INTEGER);"
                    "DELETE FROM temp.ledger_doomed; DELETE FROM temp.activity_doomed; "
                    "DELETE FROM temp.doomed_groups");
      !s.ok()) {
    return s;
  }
  // The doomed rows, chosen once by `where` (over session_deltas' own columns).
  // "GROUP BY +d.session_id": without the "+", SQLite groups by walking the
  // session_id index over the whole table, testing `where` on every row, so
  // each deletion cost a pass over the store (0.5 s a batch at 10,000,000
  // deltas); with it, `where` picks its own index (retention's and the
  // archive's by id) and the few doomed rows are grouped in a temporary tree.
  // One pass over them, by session and quarter hour; the ledger's and the
  // activity's sums come from those groups (a session's repo looked up once
  // per group, not per row).
  std::string doomed = std::string("(SELECT session_id, delta_type, gap, origin, ") + kQuarterKeySql +
                       " AS quarter FROM session_deltas WHERE " + where + ") d";
  for (const std::string& sql :
       {std::string("INSERT INTO temp.doomed_groups SELECT d.session_id, ") + kQuarterOfKeySql +
            ", SUM(d.delta_type = 'created'), SUM(d.delta_type = 'updated'), "
            "SUM(d.delta_type = 'deleted'), SUM(d.gap), SUM(d.origin <> 'stream'), COUNT(*) FROM " +
            doomed + " GROUP BY +d.session_id, d.quarter",
        std::string("INSERT INTO temp.ledger_doomed SELECT session_id, SUM(created), SUM(updated), "
                    "SUM(deleted), SUM(gaps), SUM(inferred) FROM temp.doomed_groups "
                    "GROUP BY session_id"),
        std::string("INSERT INTO temp.activity_doomed SELECT g.bucket, COALESCE(s.repo, ''), "
                    "SUM(g.deltas), SUM(g.inferred) FROM temp.doomed_groups g "
                    "LEFT JOIN sessions s ON s.session_id = g.session_id GROUP BY 1, 2")}) {
    sqlite3_stmt* raw = nullptr;
    if (sqlite3_prepare_v2(db, sql.c_str(), -1, &raw, nullptr) != SQLITE_OK) {
      return Error{sqlite_error(db, "session ledger")};
    }
    Statement stmt(raw);
    if (sqlite3_bind_parameter_count(raw) > 0) bind(raw);
    if (sqlite3_step(raw) != SQLITE_DONE) return Error{sqlite_error(db, "session ledger")};
  }
  return ok_status();
}

Status SessionLedger::after_delete(sqlite3* db) {
  cache_->clear();  // rows change in the table below
  constexpr const char* kTouched = "session_id IN (SELECT session_id FROM temp.ledger_doomed)";
  if (auto s = exec(db,
                    "UPDATE sessions SET created = sessions.created - d.created, "
                    "updated = sessions.updated - d.updated, "
                    "deleted = sessions.deleted - d.deleted, gaps = sessions.gaps - d.gaps, "
                    "inferred = sessions.inferred - d.inferred "
                    "FROM temp.ledger_doomed d WHERE sessions.session_id = d.session_id;"
                    "DELETE FROM sessions WHERE " + std::string(kTouched) +
                        " AND created + updated + deleted <= 0;"
                        "UPDATE activity SET deltas = activity.deltas - d.deltas, "
                        "inferred = activity.inferred - d.inferred FROM temp.activity_doomed d "
                        "WHERE activity.bucket = d.bucket AND activity.repo = d.repo;"
                        "DELETE FROM activity WHERE deltas <= 0");
      !s.ok()) {
    return s;
  }
  // Rows only go: a session whose last row stays keeps its last row (and the
  // state and digest that come with it, which with prefixed states cost a
  // chain to read); only its first may have changed.
  const std::string last_stays =
      "EXISTS (SELECT 1 FROM session_deltas n WHERE n.id = sessions.last_id)";
  if (auto s = exec(db, "UPDATE sessions SET first_seen = " + of(kFirstOf, time_of_n().c_str()) +
                            " WHERE " + kTouched + " AND " + last_stays);
      !s.ok()) {
    return s;
  }
  if (auto s = exec(db, refresh_ends_sql(std::string(kTouched) + " AND NOT " + last_stays));
      !s.ok()) {
    return s;
  }
  return exec(db, "DELETE FROM temp.ledger_doomed; DELETE FROM temp.activity_doomed; "
                  "DELETE FROM temp.doomed_groups");
}

Status SessionLedger::rebuild(sqlite3* db) {
  cache_->clear();
  if (auto s = exec(db, "DELETE FROM sessions; DELETE FROM activity"); !s.ok()) return s;
  sqlite3_stmt* raw = nullptr;
  // The states as JSON text, whatever their stored form (state_columns.h).
  std::string select = "SELECT id, session_id, delta_type, " + json_before_sql("session_deltas") +
                       ", " + json_after_sql("session_deltas") +
                       ", timestamp, origin, gap FROM session_deltas ORDER BY id";
  if (sqlite3_prepare_v2(db, select.c_str(), -1, &raw, nullptr) != SQLITE_OK) {
    return Error{sqlite_error(db, "session ledger")};
  }
  Statement stmt(raw);
  int rc;
  std::vector<StoredDelta> chunk;
  while ((rc = sqlite3_step(raw)) == SQLITE_ROW) {
    StoredDelta& row = chunk.emplace_back();
    row.id = sqlite3_column_int64(raw, 0);
    row.delta.session_id = column_text(raw, 1);
    row.delta.type = parse_delta_type(column_text(raw, 2)).value_or(DeltaType::updated);
    row.delta.before = column_optional(raw, 3);
    row.delta.after = column_optional(raw, 4);
    row.delta.timestamp = TimeColumns::read(raw, 5);
    row.origin = parse_delta_origin(column_text(raw, 6)).value_or(DeltaOrigin::stream);
    row.gap = sqlite3_column_int(raw, 7) != 0;
    if (chunk.size() == 10'000) {
      if (auto s = add(db, chunk); !s.ok()) return s;
      chunk.clear();
      // Written as it goes (the table is not the one being read), so memory
      // holds at most a chunk and the cache's bound.
      if (cache_->rows.size() > kMaxCachedSessions) {
        if (auto s = flush(db); !s.ok()) return s;
      }
    }
  }
  if (rc != SQLITE_DONE) return Error{sqlite_error(db, "session ledger")};
  if (auto s = add(db, chunk); !s.ok()) return s;
  return flush(db);
}

}  // namespace deltatap
