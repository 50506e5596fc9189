// PostgresOptions: where the PostgreSQL sink replicates to and how hard it
// tries, with the defaults beside them (design.md, "PostgreSQL").
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>

namespace deltatap {

struct PostgresOptions {
  // A libpq connection string ("host=db dbname=deltatap") or URI
  // ("postgresql://deltatap@db/deltatap"); empty: no sink.
  std::string url;
  // This tap's name in the shared table; empty: the host name.
  std::string source;
  // A file holding the password on one line (as [stream] token_file holds the
  // token); empty: libpq's own ways (the URL, PGPASSFILE, ~/.pgpass).
  std::string password_file;

  // Not configuration keys: the sink's working limits.
  std::size_t batch_rows = 5'000;               // deltas per COPY
  std::size_t connections = 2;  // a batch's halves go over two at once (pg_parallel_writer.h)
  std::chrono::milliseconds connect_timeout{10'000};
  std::chrono::milliseconds statement_timeout{60'000};  // one batch, end to end
  std::chrono::milliseconds backoff_initial{500};
  std::chrono::milliseconds backoff_max{30'000};
  // /readyz says "not ready" when more deltas than this wait to be sent.
  std::int64_t ready_backlog = 100'000;

  bool enabled() const { return !url.empty(); }
  bool operator==(const PostgresOptions&) const = default;
};

}  // namespace deltatap
