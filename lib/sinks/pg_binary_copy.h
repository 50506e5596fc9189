// COPY's binary format, the rows a batch sends to PostgreSQL (pg_writer.h).
//
// Why binary: in the text format the server splits every line into fields,
// undoes the escapes in each (a state is a kilobyte of text scanned byte by
// byte) and parses both times as text; in binary a field arrives as its length
// and bytes, a time as its microseconds. Measured on the bench's batches it
// saves the server about a tenth of its work per row (docs/postgres.md). jsonb
// has no binary form of its own: its field is a version byte and the JSON
// text, parsed by the server as before.
//
// The format (PostgreSQL's documentation, "COPY", "Binary Format"): a
// signature and two 32-bit words, then per row a 16-bit field count and per
// field a 32-bit length (-1 for NULL) and the value, all integers big-endian,
// then a 16-bit -1. Columns must match the COPY statement's column list in
// number, order and type; the server rejects a mismatch, naming the column.
//
// Text values (text, jsonb) must be UTF-8, as the server's encoding is checked
// on every value; NUL bytes, which PostgreSQL's text cannot hold, are replaced
// by U+FFFD here, as the text format's writer does (append_copy_field).
//
// Thread safety: one object, one thread.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "base/timestamp.h"

namespace deltatap {

class PgBinaryCopy {
 public:
  // Empties the buffer (keeping its capacity) and writes the header.
  void start();
  // Begins a row of `fields` fields; then one call per field, in order.
  void row(std::int16_t fields);
  void null();
  void text(std::string_view value);
  void bigint(std::int64_t value);
  void boolean(bool value);
  void timestamptz(TimePoint value);
  // A jsonb field: version 1 and the JSON text (which must be valid JSON
  // without "\u0000", see jsonb_safe in pg_writer.h).
  void jsonb(std::string_view json);
  // Writes the trailer; data() is then the whole COPY stream.
  void finish();

  const std::string& data() const { return out_; }
  // Gives the memory back once a batch needed more than `limit` bytes.
  void shrink_past(std::size_t limit);

 private:
  void length(std::int32_t value);
  void append_text(std::string_view value);
  // A field of `prefix` then `value` (NULs replaced), its length in front.
  void counted(std::string_view prefix, std::string_view value);

  std::string out_;
};

}  // namespace deltatap
