#include "storage/schema_versions.h"

#include <sqlite3.h>

#include <memory>
#include <utility>

#include "storage/snapshot.h"
#include "storage/sqlite_statement.h"
#include "storage/state_codec.h"
#include "storage/store.h"

namespace deltatap {

namespace {

// Version 1's schema, frozen: this is what an older deltatap expects to find.
// The times are copied as text (as time_text_sql gives integer times), a conversion of the times under way is dropped
// (session_deltas' triggers go with it). The states are copied as JSON text (version 1 knows no encoded value nor
// before_ref): deltatap_json and deltatap_after are registered on the
// connection first.
constexpr const char* kToVersion1 = R"sql(
BEGIN;
DROP VIEW IF EXISTS session_deltas_json;
DROP TABLE IF EXISTS session_deltas_next;
CREATE TABLE session_deltas_v1 (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  session_id TEXT NOT NULL,
  delta_type TEXT NOT NULL CHECK(delta_type IN ('created', 'updated', 'deleted')),
  before_state TEXT,
  after_state TEXT,
  timestamp TEXT NOT NULL,
  created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
INSERT INTO session_deltas_v1 (id, session_id, delta_type, before_state, after_state, timestamp,
                               created_at)
  SELECT d.id, d.session_id, d.delta_type,
         CASE WHEN d.before_ref IS NULL THEN deltatap_json(d.before_state) ELSE
           (SELECT deltatap_after(ref.after_state, ref.before_state, ref.before_ref)
            FROM session_deltas ref WHERE ref.id = d.before_ref) END,
         deltatap_after(d.after_state, d.before_state, d.before_ref),
         CASE WHEN typeof(d.timestamp) = 'integer'
           THEN strftime('%Y-%m-%dT%H:%M:%fZ', d.timestamp / 1000.0, 'unixepoch') ELSE d.timestamp END,
         CASE WHEN typeof(d.created_at) = 'integer'
           THEN strftime('%Y-%m-%dT%H:%M:%fZ', d.created_at / 1000.0, 'unixepoch') ELSE d.created_at END
  FROM session_deltas d ORDER BY d.id;
UPDATE sqlite_sequence SET seq = (SELECT seq FROM sqlite_sequence WHERE name = 'session_deltas')
  WHERE name = 'session_deltas_v1';
DROP TABLE session_deltas;
ALTER TABLE session_deltas_v1 RENAME TO session_deltas;
DROP TABLE IF EXISTS sessions;
DROP TABLE IF EXISTS activity;
DROP TABLE IF EXISTS state_dictionaries;
CREATE INDEX idx_session_deltas_session_id ON session_deltas(session_id);
CREATE INDEX idx_session_deltas_timestamp ON session_deltas(timestamp);
CREATE INDEX idx_session_deltas_created_at ON session_deltas(created_at);
CREATE INDEX idx_session_deltas_session_ts ON session_deltas(session_id, timestamp);
PRAGMA user_version = 1;
COMMIT;
)sql";

struct Connection {
  sqlite3* db = nullptr;
  ~Connection() { sqlite3_close(db); }
};

Result<int> file_version(const std::string& path) {
  Connection file;
  if (sqlite3_open_v2(path.c_str(), &file.db, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
    return Error{sqlite_error(file.db, "open " + path)};
  }
  sqlite3_stmt* raw = nullptr;
  if (sqlite3_prepare_v2(file.db, "PRAGMA user_version", -1, &raw, nullptr) != SQLITE_OK) {
    return Error{sqlite_error(file.db, path)};
  }
  Statement stmt(raw);
  if (sqlite3_step(raw) != SQLITE_ROW) return Error{sqlite_error(file.db, path)};
  return sqlite3_column_int(raw, 0);
}

// Turns the current-version copy at `temp_path` into version 1, in one transaction.
Status roll_back_to_version_1(const std::string& temp_path) {
  Connection file;
  if (sqlite3_open_v2(temp_path.c_str(), &file.db, SQLITE_OPEN_READWRITE, nullptr) != SQLITE_OK) {
    return Error{sqlite_error(file.db, "open " + temp_path)};
  }
  if (auto s = StateCodec::register_sql_function(file.db); !s.ok()) return s;
  char* message = nullptr;
  if (sqlite3_exec(file.db, kToVersion1, nullptr, nullptr, &message) != SQLITE_OK) {
    std::string text = message ? message : "unknown error";
    sqlite3_free(message);
    (void)sqlite3_exec(file.db, "ROLLBACK", nullptr, nullptr, nullptr);
    return Error{"roll back to version 1: " + text};
  }
  // The dropped columns' pages go back to the file system.
  if (sqlite3_exec(file.db, "VACUUM", nullptr, nullptr, &message) != SQLITE_OK) {
    std::string text = message ? message : "unknown error";
    sqlite3_free(message);
    return Error{"vacuum: " + text};
  }
  return ok_status();
}

}  // namespace

Result<MigrateOutcome> migrate_file(const std::string& path, int to) {
  if (to != 1 && to != kSchemaVersion) {
    return Error{"cannot migrate to version " + std::to_string(to) + ": versions 1 and " +
                 std::to_string(kSchemaVersion) + " can be written"};
  }
  auto from = file_version(path);
  if (!from.ok()) return Error{from.error()};
  MigrateOutcome outcome{*from, to};
  // load_file refuses a newer version with the one wording for it.
  auto store = Store::load_file(path);
  if (!store.ok()) return Error{path + ": " + store.error()};
  outcome.deltas = (*store)->delta_count();
  if (*from == to) return outcome;
  auto written = write_snapshot_file(path, [&](const std::string& temp_path) -> Status {
    if (auto s = (*store)->write_copy(temp_path); !s.ok()) return s;
    return to == 1 ? roll_back_to_version_1(temp_path) : ok_status();
  });
  if (!written.ok()) return Error{written.error()};
  outcome.changed = true;
  return outcome;
}

}  // namespace deltatap
