// SnapshotScheduler: when the database file is written, and what happens
// around it. One place decides when a snapshot starts (maybe_start(), as
// LevelDB's MaybeScheduleCompaction): storage is on, none is running, and one
// was asked for (by the timer, SIGUSR1, the API, retention or the start-up
// replay). Requests that arrive while one runs are answered by the next one,
// which starts as soon as the running one ends.
//
// A snapshot, as a checklist: let the store lane take what is queued
// (`settle`), note the store's highest id, rotate the journal, fork the child
// (storage/snapshot.h) that writes the file from the database as it was at the
// fork, wait for it on a worker thread, and once the file is durable drop the
// journal segments whose ids it holds. A failure keeps the old file and the
// journal, is logged and counted, and the next request retries.
//
// Threads: the store lane only. The worker thread only waits for the child.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/thread_pool.hpp>

#include "api/metrics.h"
#include "base/result.h"
#include "storage/journal.h"
#include "storage/storage_options.h"
#include "storage/store.h"

namespace deltatap {

class SnapshotScheduler {
 public:
  // Answers a request: the outcome, the file's bytes and the seconds it took.
  using Done = std::function<void(Status, std::uint64_t bytes, double seconds)>;

  // `journal` may be null. `settle` runs on the store lane just before a fork.
  SnapshotScheduler(boost::asio::io_context& store_lane, const StorageOptions& options,
                    Store& store, Journal* journal, Metrics& metrics,
                    std::function<void()> settle);
  ~SnapshotScheduler();

  // Asks for a snapshot; `done`, if given, is answered by the one that covers it.
  void request(const char* why, Done done = {});
  // Writes the file now, in this thread (start-up and the final snapshot).
  Status write_now();
  // `then` runs once no snapshot is running (at once when none is).
  void when_idle(std::function<void()> then);

  const std::optional<std::string>& last_success_at() const { return last_success_at_; }
  const std::optional<std::string>& last_error() const { return last_error_; }

  // Bookkeeping of a snapshot written by write_now() or by a child.
  void succeeded(double seconds);
  void failed(const std::string& error);

 private:
  void maybe_start();
  void on_child_done(const Status& status, bool stop_signal,
                     std::chrono::steady_clock::time_point started,
                     std::int64_t covers_id, std::vector<Done> waiters);

  boost::asio::io_context& io_;
  const StorageOptions& options_;
  Store& store_;
  Journal* journal_;
  Metrics& metrics_;
  std::function<void()> settle_;
  boost::asio::thread_pool worker_{1};  // waits for snapshot children

  bool running_ = false;
  bool wanted_ = false;
  const char* why_ = "";
  std::vector<Done> waiting_;  // answered by the next snapshot to start
  std::function<void()> on_idle_;
  std::optional<std::string> last_success_at_;
  std::optional<std::string> last_error_;
};

}  // namespace deltatap
