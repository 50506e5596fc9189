// PostgreSQL schema and batch writer: what deltatap keeps in a shared
// PostgreSQL database and how a batch of stored deltas gets there. Both the
// daemon's sink (postgres_sink.h) and `deltatap export --to` use it, so a
// file's history and a live tap's land in the same table the same way.
//
// The schema (version kPgSchemaVersion, kept in deltatap_schema):
//   session_deltas(source, id, session_id, delta_type, before_state jsonb,
//                  after_state jsonb, "timestamp" timestamptz,
//                  created_at timestamptz, origin, gap boolean)
//     PRIMARY KEY (source, id, "timestamp"), PARTITION BY RANGE ("timestamp"),
//     one partition per UTC month (session_deltas_yYYYYmMM), created on demand;
//     the SQLite store's indexes (session_id; timestamp; created_at;
//     session_id, timestamp).
//   sessions: a view, one row per (source, session_id), as GET /api/sessions.
// A partitioned table's unique key must hold the partition key, hence
// "timestamp" in it; a delta's timestamp never changes, so (source, id) is
// unique in effect and a re-sent batch conflicts row for row.
//
// Migrations run in one transaction under an advisory lock, so several taps
// starting together agree; a database of a newer version is refused. A role
// without CREATE can use a database whose schema (and partitions) are in place.
//
// States: jsonb keeps numbers as numeric (every digit of 2^53+1 survives) and
// strings' unicode, but cannot hold the character U+0000: "\u0000" escapes
// are stored as "\ufffd" (docs/postgres.md). Text columns likewise.
//
// Thread safety: a writer belongs to the thread that uses its connection.
#pragma once

#include <cstdint>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>

#include "base/delta.h"
#include "base/result.h"
#include "sinks/pg_binary_copy.h"
#include "sinks/pg_connection.h"

namespace deltatap {

inline constexpr int kPgSchemaVersion = 1;

// Brings the database to kPgSchemaVersion. Errors: libpq's message (e.g.
// "permission denied for schema public"), or a database of a newer version.
Status ensure_pg_schema(PgConnection& connection);

// `json` with every "\u0000" escape replaced by "\ufffd" (see above).
std::string jsonb_safe(std::string_view json);

class PgDeltaWriter {
 public:
  explicit PgDeltaWriter(std::string source) : source_(std::move(source)) {}

  // Writes `rows` in one transaction, creating the months' partitions first:
  // when every id is above the highest PostgreSQL holds for this source
  // (read once per connection, then kept), one COPY straight into the table;
  // otherwise COPY into a temporary staging table, then INSERT … ON CONFLICT
  // DO NOTHING. Returns how many rows were new; 0 for a batch sent before. On error
  // nothing of the batch is kept; the caller retries it, on a new connection
  // when connection.broken().
  Result<std::int64_t> write(PgConnection& connection, std::span<const StoredDelta> rows);

  // Call when the connection is replaced: the staging table and the
  // partitions seen belong to the old one.
  void reset();

  const std::string& source() const { return source_; }

 private:
  Status ensure_partitions(PgConnection& connection, std::span<const StoredDelta> rows);
  // copy_ = the rows in COPY's binary format, led by the source column when
  // `with_source` (the direct COPY; the staging table has none). Fails only
  // for a row whose time does not parse.
  Status build_copy(std::span<const StoredDelta> rows, bool with_source);

  std::string source_;
  bool staging_ready_ = false;
  std::set<std::string> months_;  // "YYYY-MM" known to have a partition
  PgBinaryCopy copy_;             // the COPY data, its buffer reused between batches
  // The highest id of this source in PostgreSQL, as far as this connection
  // knows; unknown after reset() or a failed batch.
  std::optional<std::int64_t> highest_;
};

}  // namespace deltatap
