#include "sinks/pg_writer.h"

#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "base/timestamp.h"

namespace deltatap {

namespace {

// Two advisory lock keys of deltatap's own (arbitrary constants): one for
// migrations, one for creating partitions.
constexpr const char* kSchemaLock = "SELECT pg_advisory_xact_lock(7402117001)";
constexpr const char* kPartitionLock = "SELECT pg_advisory_xact_lock(7402117002)";

// Version 1. The view counts as the ledger does (session_ledger.h): first and
// last seen are the times of the session's first and last delta by id.
constexpr const char* kVersion1 = R"sql(
CREATE TABLE session_deltas (
  source text NOT NULL,
  id bigint NOT NULL,
  session_id text NOT NULL,
  delta_type text NOT NULL CHECK (delta_type IN ('created', 'updated', 'deleted')),
  before_state jsonb,
  after_state jsonb,
  "timestamp" timestamptz NOT NULL,
  created_at timestamptz NOT NULL,
  origin text NOT NULL DEFAULT 'stream' CHECK (origin IN ('stream', 'resync', 'reconcile')),
  gap boolean NOT NULL DEFAULT false,
  PRIMARY KEY (source, id, "timestamp")
) PARTITION BY RANGE ("timestamp");
CREATE INDEX idx_session_deltas_session_id ON session_deltas (session_id);
CREATE INDEX idx_session_deltas_timestamp ON session_deltas ("timestamp");
CREATE INDEX idx_session_deltas_created_at ON session_deltas (created_at);
CREATE INDEX idx_session_deltas_session_ts ON session_deltas (session_id, "timestamp");
CREATE VIEW sessions AS
SELECT c.source, c.session_id, c.created, c.updated, c.deleted, c.gaps, c.inferred,
       f."timestamp" AS first_seen, l."timestamp" AS last_seen, c.last_id,
       l.delta_type AS last_type, l.delta_type <> 'deleted' AS live,
       CASE WHEN l.delta_type = 'deleted' THEN l.before_state ELSE l.after_state END AS last_state
FROM (SELECT source, session_id,
             count(*) FILTER (WHERE delta_type = 'created') AS created,
             count(*) FILTER (WHERE delta_type = 'updated') AS updated,
             count(*) FILTER (WHERE delta_type = 'deleted') AS deleted,
             count(*) FILTER (WHERE gap) AS gaps,
             count(*) FILTER (WHERE origin <> 'stream') AS inferred,
             min(id) AS first_id, max(id) AS last_id
      FROM session_deltas GROUP BY source, session_id) c
JOIN session_deltas f ON f.source = c.source AND f.id = c.first_id
JOIN session_deltas l ON l.source = c.source AND l.id = c.last_id;
)sql";

// The staging table has the target's types, so COPY parses each value once
// and the INSERT below moves datums. Its name carries its layout's version:
// a server session kept by a pooler may still hold an older deltatap's
// staging table (text columns), which the binary COPY must not write into.
constexpr const char* kStaging = R"sql(
CREATE TEMPORARY TABLE IF NOT EXISTS deltatap_staging_v2 (
  id bigint, session_id text, delta_type text, before_state jsonb, after_state jsonb,
  ts timestamptz, created_at timestamptz, origin text, gap boolean
) ON COMMIT DELETE ROWS)sql";

// Both COPYs in the binary format (sinks/pg_binary_copy.h says why).
constexpr const char* kCopy =
    "COPY deltatap_staging_v2 (id, session_id, delta_type, before_state, after_state, ts, "
    "created_at, origin, gap) FROM STDIN (FORMAT binary)";

// Rows known to be new go straight into the partitioned table, which routes
// each to its month: no staging copy, no second pass over the rows.
constexpr const char* kCopyDirect =
    "COPY session_deltas (source, id, session_id, delta_type, before_state, after_state, "
    "\"timestamp\", created_at, origin, gap) FROM STDIN (FORMAT binary)";

// The primary key's leading columns answer this from each partition's index.
constexpr const char* kHighestId = "SELECT max(id) FROM session_deltas WHERE source = $1";

constexpr const char* kInsert = R"sql(
INSERT INTO session_deltas (source, id, session_id, delta_type, before_state, after_state,
                            "timestamp", created_at, origin, gap)
SELECT $1, id, session_id, delta_type, before_state, after_state, ts, created_at, origin, gap
FROM deltatap_staging_v2
ON CONFLICT DO NOTHING)sql";

// "YYYY-MM" of a normalised timestamp, or "" when it does not start so.
std::string month_of(const std::string& timestamp) {
  if (timestamp.size() < 7 || timestamp[4] != '-') return {};
  for (int i : {0, 1, 2, 3, 5, 6}) {
    if (timestamp[i] < '0' || timestamp[i] > '9') return {};
  }
  return timestamp.substr(0, 7);
}

std::string next_month(const std::string& month) {
  int year = std::stoi(month.substr(0, 4));
  int m = std::stoi(month.substr(5, 2));
  if (++m > 12) {
    m = 1;
    ++year;
  }
  char text[32];
  std::snprintf(text, sizeof text, "%04d-%02d", year, m);
  return text;
}

Status run(PgConnection& connection, const std::string& sql) {
  auto result = connection.exec(sql);
  if (!result.ok()) return Error{result.error()};
  return ok_status();
}

// Runs `body` between BEGIN and COMMIT; ROLLBACK when it fails (on a live
// connection; a broken one has lost the transaction anyway).
template <typename Body>
Status in_transaction(PgConnection& connection, Body body) {
  if (auto s = run(connection, "BEGIN"); !s.ok()) return s;
  Status result = body();
  if (result.ok()) result = run(connection, "COMMIT");
  if (!result.ok() && !connection.broken()) (void)connection.exec("ROLLBACK");
  return result;
}

}  // namespace

Status ensure_pg_schema(PgConnection& connection) {
  // A role that may not create tables can still write to a schema in place:
  // look before taking the lock, which needs nothing but a connection.
  auto exists = connection.exec("SELECT to_regclass('deltatap_schema') IS NOT NULL");
  if (!exists.ok()) return Error{exists.error()};
  if (exists->text(0, 0) == "t") {
    auto current = connection.exec("SELECT COALESCE(max(version), 0) FROM deltatap_schema");
    if (!current.ok()) return Error{current.error()};
    if (std::stoi(current->text(0, 0)) == kPgSchemaVersion) return ok_status();
  }
  return in_transaction(connection, [&]() -> Status {
    if (auto s = run(connection, kSchemaLock); !s.ok()) return s;
    if (auto s = run(connection,
                     "CREATE TABLE IF NOT EXISTS deltatap_schema (version integer NOT NULL)");
        !s.ok()) {
      return s;
    }
    // Read again under the lock: another tap may have migrated meanwhile.
    auto locked = connection.exec("SELECT COALESCE(max(version), 0) FROM deltatap_schema");
    if (!locked.ok()) return Error{locked.error()};
    int found = std::stoi(locked->text(0, 0));
    if (found > kPgSchemaVersion) {
      return Error{"the PostgreSQL schema was written by a newer deltatap, version " +
                   std::to_string(found) + " (this one understands up to version " +
                   std::to_string(kPgSchemaVersion) + ")"};
    }
    if (found < 1) {
      if (auto s = run(connection, kVersion1); !s.ok()) return s;
    }
    if (auto s = run(connection, "DELETE FROM deltatap_schema"); !s.ok()) return s;
    return run(connection,
               "INSERT INTO deltatap_schema (version) VALUES (" + std::to_string(kPgSchemaVersion) + ")");
  });
}

std::string jsonb_safe(std::string_view json) {
  std::string out;
  out.reserve(json.size());
  for (std::size_t i = 0; i < json.size(); ++i) {
    if (json[i] != '\\' || i + 1 >= json.size()) {
      out += json[i];
      continue;
    }
    // A backslash only occurs in JSON inside a string, as an escape of the
    // next character: "\\u0000" is an escaped backslash, left alone.
    if (json.substr(i + 1, 5) == "u0000") {
      out += "\\ufffd";
      i += 5;
    } else {
      out += json[i];
      out += json[i + 1];
      ++i;
    }
  }
  return out;
}

void PgDeltaWriter::reset() {
  staging_ready_ = false;
  months_.clear();
  highest_.reset();
}

Status PgDeltaWriter::ensure_partitions(PgConnection& connection,
                                        std::span<const StoredDelta> rows) {
  std::set<std::string> wanted;
  for (const auto& row : rows) {
    auto month = month_of(row.delta.timestamp);
    if (month.empty()) return Error{"delta " + std::to_string(row.id) + " has no usable timestamp"};
    if (!months_.count(month)) wanted.insert(month);
  }
  if (wanted.empty()) return ok_status();
  // Its own short transaction: creating a partition locks the whole table,
  // which should not wait on a batch's COPY.
  auto status = in_transaction(connection, [&]() -> Status {
    if (auto s = run(connection, kPartitionLock); !s.ok()) return s;
    for (const auto& month : wanted) {
      std::string name = "session_deltas_y" + month.substr(0, 4) + "m" + month.substr(5, 2);
      std::string sql = "CREATE TABLE IF NOT EXISTS " + name +
                        " PARTITION OF session_deltas FOR VALUES FROM ('" + month +
                        "-01 00:00:00+00') TO ('" + next_month(month) + "-01 00:00:00+00')";
      if (auto s = run(connection, sql); !s.ok()) return s;
    }
    return ok_status();
  });
  if (status.ok()) months_.insert(wanted.begin(), wanted.end());
  return status;
}

Status PgDeltaWriter::build_copy(std::span<const StoredDelta> rows, bool with_source) {
  auto state = [&](const std::optional<std::string>& json) {
    if (!json) {
      copy_.null();
    } else if (json->find("\\u0000") == std::string::npos) {
      copy_.jsonb(*json);  // the usual case: no copy
    } else {
      copy_.jsonb(jsonb_safe(*json));
    }
  };
  copy_.start();
  for (const auto& row : rows) {
    // Stored times are normalised, so they parse; a row that does not is refused whole.
    auto timestamp = parse_timestamp(row.delta.timestamp);
    auto created_at = parse_timestamp(row.created_at);
    if (!timestamp.ok() || !created_at.ok()) {
      return Error{"delta " + std::to_string(row.id) + " has an unreadable time: " +
                   (timestamp.ok() ? created_at.error() : timestamp.error())};
    }
    copy_.row(with_source ? 10 : 9);
    if (with_source) copy_.text(source_);
    copy_.bigint(row.id);
    copy_.text(row.delta.session_id);
    copy_.text(to_string(row.delta.type));
    state(row.delta.before);
    state(row.delta.after);
    copy_.timestamptz(*timestamp);
    copy_.timestamptz(*created_at);
    copy_.text(to_string(row.origin));
    copy_.boolean(row.gap);
  }
  copy_.finish();
  return ok_status();
}

Result<std::int64_t> PgDeltaWriter::write(PgConnection& connection,
                                          std::span<const StoredDelta> rows) {
  if (rows.empty()) return std::int64_t{0};
  if (!staging_ready_) {
    if (auto s = run(connection, kStaging); !s.ok()) return Error{s.error()};
    staging_ready_ = true;
  }
  if (auto s = ensure_partitions(connection, rows); !s.ok()) return Error{s.error()};
  if (!highest_) {
    auto highest = connection.exec(kHighestId, {source_});
    if (!highest.ok()) return Error{highest.error()};
    auto text = highest->text(0, 0);
    highest_ = text.empty() ? 0 : std::stoll(text);
  }
  // Sent before in part or whole (a resend after a restart, an export run
  // again): through the staging table and ON CONFLICT. Otherwise every row is
  // new, since PostgreSQL holds no id of this source above *highest_.
  std::int64_t lowest = rows.front().id, last = rows.front().id;
  for (const auto& row : rows) {
    lowest = std::min(lowest, row.id);
    last = std::max(last, row.id);
  }
  const bool direct = lowest > *highest_;
  if (auto s = build_copy(rows, direct); !s.ok()) return Error{s.error()};
  std::int64_t inserted = 0;
  auto status = in_transaction(connection, [&]() -> Status {
    if (direct) {
      inserted = static_cast<std::int64_t>(rows.size());
      return connection.copy_in(kCopyDirect, copy_.data());
    }
    if (auto s = connection.copy_in(kCopy, copy_.data()); !s.ok()) return s;
    auto result = connection.exec(kInsert, {source_});
    if (!result.ok()) return Error{result.error()};
    inserted = result->affected();
    return ok_status();
  });
  // After a failure PostgreSQL's highest id is read again: another tap
  // writing under the same source name (a mistake, but not a reason to fail
  // for ever) shows as a conflict, and the retry takes the staging path.
  if (status.ok()) {
    highest_ = std::max(*highest_, last);
  } else {
    highest_.reset();
  }
  copy_.shrink_past(64u << 20);
  if (!status.ok()) return Error{status.error()};
  return inserted;
}

}  // namespace deltatap
