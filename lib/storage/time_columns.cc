#include "storage/time_columns.h"

#include <chrono>
#include <string_view>

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

Result<TimeColumns> TimeColumns::of(sqlite3* db, const char* table) {
  sqlite3_stmt* raw = nullptr;
  if (sqlite3_prepare_v2(db,
                         "SELECT COUNT(*) FROM pragma_table_info(?1) "
                         "WHERE name = 'timestamp' AND upper(type) = 'INTEGER'",
                         -1, &raw, nullptr) != SQLITE_OK) {
    return Error{sqlite_error(db, "read the time columns")};
  }
  Statement stmt(raw);
  sqlite3_bind_text(raw, 1, table, -1, SQLITE_STATIC);
  if (sqlite3_step(raw) != SQLITE_ROW) return Error{sqlite_error(db, "read the time columns")};
  return TimeColumns{sqlite3_column_int(raw, 0) > 0};
}

std::string time_text_sql(std::string_view column) {
  const std::string c(column);
  return "CASE WHEN typeof(" + c + ") = 'integer' THEN strftime('%Y-%m-%dT%H:%M:%fZ', " + c +
         " / 1000.0, 'unixepoch') ELSE " + c + " END";
}

namespace {

void milliseconds_sql_function(sqlite3_context* context, int, sqlite3_value** args) {
  auto raw = sqlite3_value_text(args[0]);
  if (!raw) {
    sqlite3_result_null(context);
    return;
  }
  auto time = parse_timestamp(std::string_view(reinterpret_cast<const char*>(raw),
                                               static_cast<std::size_t>(sqlite3_value_bytes(args[0]))));
  if (!time.ok()) {
    sqlite3_result_value(context, args[0]);  // kept as it is, never dropped
    return;
  }
  sqlite3_result_int64(context, time->time_since_epoch().count());
}

}  // namespace

Status TimeColumns::register_sql_function(sqlite3* db) {
  if (sqlite3_create_function(db, "deltatap_ms", 1,
                              SQLITE_UTF8 | SQLITE_DETERMINISTIC | SQLITE_DIRECTONLY, nullptr,
                              milliseconds_sql_function, nullptr, nullptr) != SQLITE_OK) {
    return Error{sqlite_error(db, "register function")};
  }
  return ok_status();
}

}  // namespace deltatap
