// TimeColumns: how a store's session_deltas keeps its two times, `timestamp`
// and `created_at` (design.md, "Capacity"; docs/capacity.md, "Times").
//
//   text:    the document's normalised ISO text ("2026-12-03T07:23:49.123Z",
//            24 bytes, and again in each index on the column). Every store
//            with compression off.
//   integer: the same two columns hold milliseconds since the epoch (6 bytes)
//            as INTEGER. A store with compression = zstd. The view
//            session_deltas_json gives them as text (time_text_sql), with
//            SQLite's own strftime: no extension needed for them.
//
// Normalised times sort as text exactly as their milliseconds sort as
// numbers, so the SQL of a query is the same in both layouts: what differs is
// what it binds (bind()) and how a value it reads becomes text (read(), or
// time_text_sql() inside SQL). Not generated columns giving the text back in
// the table itself: PRAGMA quick_check computes every generated column of
// every row, which made loading 10,000,000 deltas take 14 s instead of 3.
//
// A plain value; any thread may use a copy.
#pragma once

#include <sqlite3.h>

#include <string>
#include <string_view>

#include "base/result.h"

namespace deltatap {

struct TimeColumns {
  bool integer = false;

  // Binds the normalised time `text` as the columns hold it. A text that is
  // no time (never the case for what the store wrote or the API normalised)
  // is bound as text, and then matches nothing a range over integers asks for.
  void bind(sqlite3_stmt* stmt, int index, const std::string& text) const;
  // Binds a named parameter, when the statement has it.
  void bind(sqlite3_stmt* stmt, const char* name, const std::string& text) const;

  // A time column's value as normalised text, whichever form it has.
  static std::string read(sqlite3_stmt* stmt, int column);

  // Which layout `db`'s `table` has (text when there is no such table):
  // the declared type of its `timestamp` column.
  static Result<TimeColumns> of(sqlite3* db, const char* table = "session_deltas");

  // SQL function deltatap_ms(text): a normalised time's milliseconds since
  // the epoch; NULL stays NULL, and a text that is no time (a file of the
  // document's schema may hold one: the version-0 migration keeps it) is
  // returned as it is, which the INTEGER column keeps as TEXT and read()
  // gives back. What converting a store to integer times copies with
  // (time_conversion.cc).
  static Status register_sql_function(sqlite3* db);
};

// SQL giving the time `column` (an expression naming a time column) as
// normalised text in either layout, with built-in functions only.
// Milliseconds divided by 1000.0 come back exactly: SQLite rounds the
// 'unixepoch' value to whole milliseconds (tests check years 0001 and 9999).
std::string time_text_sql(std::string_view column);

}  // namespace deltatap
