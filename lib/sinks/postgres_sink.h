// PostgresSink: replicates every stored delta into PostgreSQL (design.md,
// "PostgreSQL"; the schema is pg_writer.h's), at least once and
// idempotently, so exactly once in effect.
//
// Two threads. The store lane (the thread that owns the Store and runs
// `store_lane`) reads the next batch, rows with id > the mark, by id, at most
// PostgresOptions::batch_rows, and hands it over; the sink's own thread
// connects, COPYs it and reports back; the store lane then records the new
// mark in the store (Store::set_sink_mark), where snapshots make it durable,
// and reads the next batch. Two batches at most are out (one being sent, the
// next read meanwhile, so that reading and sending overlap): that is the
// hand-off's bound, and all the memory the sink holds whatever the server does.
//
// Why a plain thread with libpq's non-blocking calls (pg_connection.h)
// rather than libpq on an io_context: the sink does one thing at a time
// (connect, then batch after batch), which reads best as straight-line code,
// and polling in 100 ms slices lets stop() end it promptly even when the
// server never answers.
//
// Ids: after a kill -9 the mark may be older than PostgreSQL's content (the
// rows are sent again and ON CONFLICT drops them). The store may also lose,
// in a kill -9, deltas whose journal record was not yet written, though the
// sink had sent them; their ids must never be given to other deltas, or
// PostgreSQL would keep the old rows and drop the new ones. So before a batch
// goes out, the highest id sent is written and fdatasync'd to `sent_id_path`,
// and at start the daemon continues ids above it (highest_sent_id()).
//
// While the server is away the sink retries with backoff (backoff_initial,
// doubling, up to backoff_max), logs each change of state once (the error is
// libpq's message, never the password), counts every failure in `errors`, and
// keeps `lag` (deltas not yet sent). Meanwhile Store::hold_deltas_after keeps
// retention and the memory guard from dropping what it has not sent.
//
// Thread safety: every public member is for the store lane only.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include "base/counters.h"
#include "base/delta.h"
#include "base/result.h"
#include "sinks/postgres_options.h"

namespace deltatap {

class Store;

// What /api/stats and /readyz show of the sink.
struct PostgresSinkStatus {
  std::string target;                    // display_conninfo: no password
  std::string source;
  bool connected = false;
  std::int64_t mark = 0;                 // highest id sent
  std::int64_t lag = 0;                  // deltas stored and not yet sent
  std::uint64_t errors = 0;
  std::optional<std::string> last_error;  // while failing
};

struct PostgresSinkMetrics {
  Gauge& lag_deltas;
  Counter& errors_total;
};

// The highest id recorded in `sent_id_path` (0 when the file is absent), or
// an error when it cannot be read. The daemon's ids continue above it.
Result<std::int64_t> highest_sent_id(const std::string& sent_id_path);

// The source name to use: `configured`, or the host name when it is empty.
std::string postgres_source_name(const std::string& configured);

class PostgresSink {
 public:
  // Reads the mark from `store` and puts the hold on it at once (before any
  // retention or eviction runs). `password` may be empty. `sent_id_path`:
  // see above. Call start() to begin sending.
  static Result<std::unique_ptr<PostgresSink>> create(boost::asio::io_context& store_lane,
                                                      Store& store, PostgresOptions options,
                                                      std::string password,
                                                      std::string sent_id_path,
                                                      PostgresSinkMetrics metrics);
  ~PostgresSink();  // stops
  PostgresSink(const PostgresSink&) = delete;
  PostgresSink& operator=(const PostgresSink&) = delete;

  void start();
  // Ends the thread (within about 100 ms, whatever the server does). A batch
  // in flight is sent again by the next run.
  void stop();

  PostgresSinkStatus status() const;
  // Reasons for /readyz: the backlog beyond PostgresOptions::ready_backlog
  // while the sink is failing or behind. Empty when fine.
  std::vector<std::string> not_ready_reasons() const;

 private:
  PostgresSink(boost::asio::io_context& store_lane, Store& store, PostgresOptions options,
               std::string password, std::string sent_id_path, PostgresSinkMetrics metrics);

  // Store lane.
  void pump();
  void on_sent(std::int64_t last_id);
  void schedule_tick();
  void refresh_lag();

  // The sink's thread.
  void run();
  Status note_sent(std::int64_t last_id);
  void report(const Status& outcome);
  bool sleep_for(std::chrono::milliseconds delay);  // false when stopping

  boost::asio::io_context& io_;
  Store& store_;
  const PostgresOptions options_;
  const std::string password_;
  const std::string sent_id_path_;
  const std::string mark_name_;  // the row in sink_progress
  std::string target_;
  PostgresSinkMetrics metrics_;
  boost::asio::steady_timer tick_;

  // Store lane only.
  static constexpr int kMaxInFlight = 2;
  std::int64_t mark_ = 0;    // every id up to it is in PostgreSQL
  std::int64_t handed_ = 0;  // every id up to it is handed to the thread
  int in_flight_ = 0;        // batches handed and not yet reported sent
  bool started_ = false;
  std::int64_t lag_ = 0;
  std::chrono::steady_clock::time_point lag_counted_at_;

  // Shared with the thread, under mutex_.
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::vector<StoredDelta>> batches_;  // in id order; at most kMaxInFlight
  std::optional<std::string> last_error_;
  bool reported_ = false;  // whether any outcome was logged yet
  std::atomic<bool> stop_{false};
  std::atomic<bool> connected_{false};

  // The thread's own.
  std::int64_t durable_sent_ = 0;
  int sent_fd_ = -1;
  std::thread thread_;
};

}  // namespace deltatap
