#include "storage/time_columns.h"

#include <chrono>

#include "base/timestamp.h"
#include "storage/sqlite_statement.h"

namespace deltatap {

void TimeColumns::bind(sqlite3_stmt* stmt, int index, const std::string& text) const {
  if (integer) {
    if (auto time = parse_timestamp(text); time.ok()) {
      sqlite3_bind_int64(stmt, index, time->time_since_epoch().count());
      return;
    }
  }
  sqlite3_bind_text64(stmt, index, text.data(), text.size(), SQLITE_TRANSIENT, SQLITE_UTF8);
}

void TimeColumns::bind(sqlite3_stmt* stmt, const char* name, const std::string& text) const {
  if (int index = sqlite3_bind_parameter_index(stmt, name); index > 0) bind(stmt, index, text);
}

std::string TimeColumns::read(sqlite3_stmt* stmt, int column) {
  if (sqlite3_column_type(stmt, column) == SQLITE_INTEGER) {
    return format_timestamp(TimePoint(std::chrono::milliseconds(sqlite3_column_int64(stmt, column))));
  }
  return column_text(stmt, column);
}

Result<TimeColumns> TimeColumns::of(sqlite3* db) {
  sqlite3_stmt* raw = nullptr;
  if (sqlite3_prepare_v2(db,
                         "SELECT COUNT(*) FROM pragma_table_info('session_deltas') "
                         "WHERE name = 'timestamp_ms'",
                         -1, &raw, nullptr) != SQLITE_OK) {
    return Error{sqlite_error(db, "read the time columns")};
  }
  Statement stmt(raw);
  if (sqlite3_step(raw) != SQLITE_ROW) return Error{sqlite_error(db, "read the time columns")};
  return TimeColumns{sqlite3_column_int(raw, 0) > 0};
}

}  // namespace deltatap
