// PgParallelWriter: writes a batch of stored deltas into PostgreSQL over
// several connections at once, so that the server parses and indexes the
// batch on as many cores (one backend per connection).
//
// Why: a PostgreSQL backend spends about 25 µs of CPU per delta here, most of
// it turning the two states into jsonb; one connection is one core, about
// 40,000 deltas/s on this project's 2-core reference machine, and the target
// is 50,000. Two connections COPYing the two halves of a batch measured 1.5 to
// 1.9 times one (bench_postgres, same run).
//
// A batch is cut into contiguous parts by id, one per connection (a batch of
// fewer than kSplitAtRows goes whole over the first); each part is one
// transaction of its own (pg_writer.h: a COPY straight into the table for ids
// PostgreSQL cannot hold yet, else staging and ON CONFLICT DO NOTHING). The
// batch succeeds when every part committed. When a part fails, those that
// committed stay: the caller sends the whole batch again, and the writers,
// reset after a failure, take the ON CONFLICT path for it, so nothing is
// stored twice. The caller's mark moves only after a whole success.
//
// Connections are opened on first use and after a failure, each with the
// schema ensured (ensure_pg_schema, safe to run concurrently). The calling
// thread writes the first part itself; one thread per further connection,
// owned here, writes the others.
//
// Thread safety: write() and connected() from one thread at a time (the
// sink's thread, or the CLI's main thread). `stop` may be set by any thread:
// a write in progress ends within about 100 ms with an error "stopped".
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "base/delta.h"
#include "base/result.h"
#include "sinks/pg_connection.h"
#include "sinks/pg_writer.h"

namespace deltatap {

struct PgParallelOptions {
  PgConnectOptions connect;
  std::string source;
  std::chrono::milliseconds statement_timeout{60'000};  // one part, end to end
  std::size_t connections = 2;  // at least 1
};

class PgParallelWriter {
 public:
  // Batches smaller than this go whole over the first connection: splitting
  // a trickle costs a second commit and buys nothing.
  static constexpr std::size_t kSplitAtRows = 1'000;

  PgParallelWriter(PgParallelOptions options, const std::atomic<bool>& stop);
  ~PgParallelWriter();  // ends the threads (after the part they write, if any)
  PgParallelWriter(const PgParallelWriter&) = delete;
  PgParallelWriter& operator=(const PgParallelWriter&) = delete;

  // Writes `rows` (in id order) as described above; returns how many rows
  // were new. An error is the first failed part's message (libpq's, or
  // "stopped"); the caller retries the whole batch.
  Result<std::int64_t> write(std::span<const StoredDelta> rows);

  // Whether the first connection is open (what the sink shows as connected).
  bool connected() const;

 private:
  // One connection and its writer. Lane 0 is used by the calling thread,
  // every other by its own thread.
  struct Lane {
    std::unique_ptr<PgConnection> connection;
    std::unique_ptr<PgDeltaWriter> writer;
    // Handed over under mutex_: the part to write and its outcome.
    std::span<const StoredDelta> part;
    bool has_work = false, done = false;
    Result<std::int64_t> outcome = std::int64_t{0};
    std::thread thread;
  };

  Result<std::int64_t> write_part(Lane& lane, std::span<const StoredDelta> part);
  void serve(Lane& lane);  // a lane thread's loop

  const PgParallelOptions options_;
  const std::atomic<bool>& stop_;
  std::vector<std::unique_ptr<Lane>> lanes_;
  std::mutex mutex_;
  std::condition_variable work_ready_, work_done_;
  bool closing_ = false;  // under mutex_
};

}  // namespace deltatap
