// TimeColumns: how a store's session_deltas keeps its two times (design.md,
// "Capacity"; docs/capacity.md, "Times").
//
//   text:    `timestamp` and `created_at` are the document's normalised ISO
//            text ("2026-12-03T07:23:49.123Z", 24 bytes each, and again in
//            each index on them). Every store with compression off.
//   integer: `timestamp_ms` and `created_at_ms` hold milliseconds since the
//            epoch (6 bytes), indexed; `timestamp` and `created_at` are
//            VIRTUAL generated columns giving back the same text with
//            SQLite's own strftime, so any reader, a plain sqlite3 shell
//            included, still reads the text. A store created with
//            compression = zstd (a store with rows keeps the layout it has).
//
// Normalised times sort as text exactly as their milliseconds sort as numbers,
// so queries differ only in the column they range over and sort by
// (timestamp() / created_at()) and in what they bind (bind()). Reading the
// text through the generated column costs a strftime per value; readers of
// many rows select the stored column and read it with read().
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

  // The stored columns, to range over, sort by and select.
  const char* timestamp() const { return integer ? "timestamp_ms" : "timestamp"; }
  const char* created_at() const { return integer ? "created_at_ms" : "created_at"; }

  // Binds the normalised time `text` as the stored column holds it. A text
  // that is no time (never the case for what the store wrote or the API
  // normalised) is bound as text, and then matches nothing a range asks for.
  void bind(sqlite3_stmt* stmt, int index, const std::string& text) const;
  // Binds a named parameter, when the statement has it.
  void bind(sqlite3_stmt* stmt, const char* name, const std::string& text) const;

  // A stored time column's value as normalised text, whichever form it has.
  static std::string read(sqlite3_stmt* stmt, int column);

  // Which layout `db`'s `table` has (text when there is no such table).
  static Result<TimeColumns> of(sqlite3* db, const char* table = "session_deltas");

  // SQL function deltatap_ms(text): a normalised time's milliseconds since
  // the epoch, NULL for NULL or a text that is no time. What converting a
  // store to integer times copies with (time_conversion.cc).
  static Status register_sql_function(sqlite3* db);
};

}  // namespace deltatap
