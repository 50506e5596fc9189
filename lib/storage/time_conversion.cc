// Converting a store's times to the other layout (time_columns.h) in bounded
// steps, while the store goes on taking batches and answering queries:
//
//   1. aim_times(): session_deltas_next is made in the new layout, with its
//      own indexes, and two triggers keep the rows already moved in step
//      with session_deltas: a delete deletes there too, a changed state
//      (conversion of the states, a before state materialised for a delete)
//      changes there too. Both live in the file, so any writer of a snapshot
//      taken meanwhile keeps them in step as well.
//   2. convert_times_step(): the next `max_rows` rows by id are copied, their
//      times converted (deltatap_ms one way, time_text_sql the other).
//      How far it got is the highest id in session_deltas_next.
//   3. The step that finds nothing left swaps the tables: the old one goes,
//      session_deltas_next takes its name, the sequence and the view come
//      back, and the store reads the new layout from then on.
//
// Rows inserted meanwhile have ids above every moved one (ids only grow), so
// the steps reach them. The swap still counts both tables and copies any row
// missing (one a journal replay inserted below the mark) before the old one
// goes: nothing is lost to the conversion, nothing is doubled (ids are keys).
// Memory: until the swap, both copies of the moved rows.
#include <sqlite3.h>

#include <string>

#include "storage/sqlite_statement.h"
#include "storage/store_impl.h"

namespace deltatap {

namespace {

constexpr const char* kNext = "session_deltas_next";

// The columns both layouts store, besides the times.
constexpr const char* kSharedColumns =
    "id, session_id, delta_type, before_state, after_state, origin, gap, before_ref";

std::string create_triggers_sql() {
  return std::string(
             "CREATE TRIGGER IF NOT EXISTS session_deltas_next_delete AFTER DELETE ON "
             "session_deltas BEGIN DELETE FROM ") +
         kNext +
         " WHERE id = OLD.id; END;\n"
         "CREATE TRIGGER IF NOT EXISTS session_deltas_next_update AFTER UPDATE OF before_state, "
         "after_state, before_ref ON session_deltas BEGIN UPDATE " +
         kNext +
         " SET before_state = NEW.before_state, after_state = NEW.after_state, "
         "before_ref = NEW.before_ref WHERE id = NEW.id; END;\n";
}

constexpr const char* kDropNext =
    "DROP TRIGGER IF EXISTS session_deltas_next_delete; "
    "DROP TRIGGER IF EXISTS session_deltas_next_update; "
    "DROP TABLE IF EXISTS session_deltas_next";

// INSERT ... SELECT of session_deltas' rows into the next table, in `to`'s
// layout, for the rows `where` picks (with its own ORDER BY / LIMIT).
std::string copy_sql(TimeColumns to, const std::string& where) {
  std::string times_from = to.integer ? "deltatap_ms(timestamp), deltatap_ms(created_at)"
                                      : time_text_sql("timestamp") + ", " + time_text_sql("created_at");
  return std::string("INSERT OR IGNORE INTO ") + kNext + " (" + kSharedColumns +
         ", timestamp, created_at) SELECT " + kSharedColumns + ", " + times_from +
         " FROM session_deltas WHERE " + where;
}

}  // namespace

Status Store::Impl::aim_times(TimeColumns layout) {
  auto next = scalar(std::string("SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = '") +
                     kNext + "'");
  if (!next.ok()) return Error{next.error()};
  if (*next) {
    auto under_way = TimeColumns::of(db, kNext);
    if (!under_way.ok()) return Error{under_way.error()};
    if (under_way->integer == layout.integer && layout.integer != times.integer) {
      times_target = layout;  // a conversion a snapshot carried over: it goes on
      return exec(create_triggers_sql().c_str());
    }
    statements.clear();
    if (auto s = exec(kDropNext); !s.ok()) return Error{"drop " + std::string(kNext) + ": " + s.error()};
  }
  times_target.reset();
  if (layout.integer == times.integer) return ok_status();
  for (const std::string& sql : {create_deltas_sql(layout, kNext), create_delta_indexes_sql(layout, kNext),
                                 create_triggers_sql()}) {
    if (auto s = exec(sql.c_str()); !s.ok()) {
      (void)exec(kDropNext);
      return Error{"start converting the times: " + s.error()};
    }
  }
  times_target = layout;
  return ok_status();
}

Result<std::int64_t> Store::Impl::convert_times_step(std::size_t max_rows) {
  if (!times_target || max_rows == 0) return std::int64_t{0};
  const TimeColumns to = *times_target;
  auto moved_through = scalar(std::string("SELECT COALESCE(MAX(id), 0) FROM ") + kNext);
  if (!moved_through.ok()) return Error{moved_through.error()};
  auto copy = statement(copy_sql(to, "id > ?1 ORDER BY id LIMIT ?2"));
  if (!copy.ok()) return Error{copy.error()};
  std::int64_t moved = 0;
  {
    Use use(*copy);
    sqlite3_bind_int64(*use, 1, *moved_through);
    sqlite3_bind_int64(*use, 2, static_cast<std::int64_t>(max_rows));
    if (sqlite3_step(*use) != SQLITE_DONE) return Error{sqlite_error(db, "convert the times")};
    moved = sqlite3_changes64(db);
  }
  if (moved > 0) return moved;

  // Every row is there: the swap. A row below the mark that the steps never
  // saw is copied first (a full pass, only when the counts differ).
  auto in_next = scalar(std::string("SELECT COUNT(*) FROM ") + kNext);
  if (!in_next.ok()) return Error{in_next.error()};
  if (*in_next != delta_count) {
    if (auto s = exec(copy_sql(to, std::string("id NOT IN (SELECT id FROM ") + kNext + ")").c_str());
        !s.ok()) {
      return Error{"convert the times: " + s.error()};
    }
  }
  auto sequence = scalar(
      "SELECT COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'session_deltas'), 0)");
  if (!sequence.ok()) return Error{sequence.error()};
  statements.clear();  // the cached inserts name the old columns
  // No rollback journal (finish_open): each statement stands on its own. Up
  // to the DROP TABLE a failure leaves the old table whole (and the next
  // step tries again); after it, the rename is what remains to be done.
  const std::string seq = std::to_string(*sequence);
  for (const std::string& sql :
       {std::string("DROP TRIGGER IF EXISTS session_deltas_next_delete"),
        std::string("DROP TRIGGER IF EXISTS session_deltas_next_update"),
        std::string("DROP VIEW IF EXISTS session_deltas_json"), std::string("DROP TABLE session_deltas"),
        std::string("ALTER TABLE ") + kNext + " RENAME TO session_deltas",
        std::string("DELETE FROM sqlite_sequence WHERE name IN ('session_deltas', '") + kNext + "')",
        "INSERT INTO sqlite_sequence (name, seq) SELECT 'session_deltas', " + seq + " WHERE " + seq + " > 0",
        create_json_view_sql()}) {
    if (auto s = exec(sql.c_str()); !s.ok()) return Error{"swap the converted times: " + s.error()};
  }
  times = to;
  times_target.reset();
  return std::int64_t{0};
}

}  // namespace deltatap
