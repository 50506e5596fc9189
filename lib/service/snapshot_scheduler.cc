#include "service/snapshot_scheduler.h"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>

#include "base/logging.h"
#include "base/timestamp.h"
#include "storage/snapshot.h"

namespace deltatap {

namespace asio = boost::asio;
using SteadyClock = std::chrono::steady_clock;

namespace {

// A child still running after this is killed and the snapshot retried: a
// 1,000,000-delta copy takes seconds.
constexpr auto kMaxSnapshotTime = std::chrono::minutes(10);

double seconds_since(SteadyClock::time_point start) {
  return std::chrono::duration<double>(SteadyClock::now() - start).count();
}

void answer(std::vector<SnapshotScheduler::Done>& waiters, const Status& status,
            std::uint64_t bytes, double seconds) {
  for (auto& done : waiters) {
    if (done) done(status, bytes, seconds);
  }
}

}  // namespace

SnapshotScheduler::SnapshotScheduler(asio::io_context& store_lane, const StorageOptions& options,
                                     Store& store, Journal* journal, Metrics& metrics,
                                     std::function<void()> settle)
    : io_(store_lane),
      options_(options),
      store_(store),
      journal_(journal),
      metrics_(metrics),
      settle_(std::move(settle)) {}

SnapshotScheduler::~SnapshotScheduler() { worker_.join(); }

void SnapshotScheduler::request(const char* why, Done done) {
  if (!options_.enabled) {
    log_warning("Snapshot requested but storage is off");
    if (done) done(Error{"storage is off (PERSIST=0): nothing is written"}, 0, 0);
    return;
  }
  wanted_ = true;
  why_ = why;
  if (done) waiting_.push_back(std::move(done));
  maybe_start();
}

void SnapshotScheduler::when_idle(std::function<void()> then) {
  wanted_ = false;  // stopping: the final snapshot is written in-process
  if (!running_) {
    then();
    return;
  }
  on_idle_ = std::move(then);
}

void SnapshotScheduler::maybe_start() {
  if (!options_.enabled || running_ || !wanted_ || on_idle_) return;
  wanted_ = false;
  auto waiters = std::exchange(waiting_, {});
  if (settle_) settle_();
  auto started = SteadyClock::now();
  std::int64_t covers_id = store_.last_delta_id();
  auto child = SnapshotChild::start(options_.path,
                                    [this](const std::string& temp) { return store_.write_copy(temp); });
  if (!child.ok()) {
    failed(child.error());
    answer(waiters, Error{child.error()}, 0, 0);
    return;
  }
  metrics_.snapshot_pause().observe(seconds_since(started));
  running_ = true;
  // The child's copy holds every id up to covers_id; the segment rotated now
  // may hold later ones too, and is dropped only once a snapshot holds them.
  if (journal_) journal_->rotate();
  std::shared_ptr<SnapshotChild> running = std::move(child.value());
  const char* why = why_;
  // The guard keeps the store lane's loop running while only the worker has work.
  asio::post(worker_, [this, running, started, covers_id, why, waiters = std::move(waiters),
                       work = asio::make_work_guard(io_)]() mutable {
    auto status = running->wait(kMaxSnapshotTime);
    bool stop_signal = running->ended_by_stop_signal();
    asio::post(io_, [this, status, stop_signal, started, covers_id, why,
                     waiters = std::move(waiters)]() mutable {
      log_debug("Database snapshot finished", {{"TRIGGER", why}});
      on_child_done(status, stop_signal, started, covers_id, std::move(waiters));
    });
  });
}

void SnapshotScheduler::on_child_done(const Status& status, bool stop_signal,
                                      SteadyClock::time_point started,
                                      std::int64_t covers_id, std::vector<Done> waiters) {
  running_ = false;
  auto size = status.ok() ? file_size(options_.path) : 0;
  double seconds = seconds_since(started);
  if (status.ok()) {
    if (journal_) journal_->drop_covered(covers_id);
    succeeded(seconds);
  } else if (on_idle_ || stop_signal) {
    // A stop sent to the whole unit (SIGTERM) ends the child too, possibly
    // before this process has seen its own SIGTERM; the final snapshot, written
    // next, replaces the child's copy. Not a failure.
    log_info("The snapshot in progress ended with the stop; the final snapshot replaces it",
             {{"DETAIL", status.error()}});
  } else {
    failed(status.error());
  }
  answer(waiters, status, size, seconds);
  if (on_idle_) {
    std::exchange(on_idle_, nullptr)();
    return;
  }
  maybe_start();
}

Status SnapshotScheduler::write_now() {
  std::int64_t covers_id = store_.last_delta_id();
  if (journal_) journal_->rotate();
  auto status = write_snapshot_file(options_.path,
                                    [this](const std::string& temp) { return store_.write_copy(temp); });
  if (status.ok() && journal_) journal_->drop_covered(covers_id);
  return status;
}

void SnapshotScheduler::succeeded(double seconds) {
  if (last_error_) log_info("Snapshots succeed again", {{"DB_PATH", options_.path}});
  last_error_.reset();
  last_success_at_ = format_timestamp(now_millis());
  metrics_.snapshot_duration().observe(seconds);
  metrics_.snapshot_last_success().set(
      std::chrono::duration<double>(Clock::now().time_since_epoch()).count());
}

void SnapshotScheduler::failed(const std::string& error) {
  metrics_.snapshot_failures().inc();
  log_error("Snapshot failed: " + error + "; the previous file is kept and the snapshot retried",
            {message_id(message_ids::kSnapshotFailed), {"DB_PATH", options_.path}, {"ERROR", error}});
  last_error_ = error;
}

}  // namespace deltatap
