#include "sinks/postgres_sink.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <fstream>

#include <boost/asio/post.hpp>

#include "base/files.h"
#include "base/logging.h"
#include "sinks/pg_connection.h"
#include "sinks/pg_parallel_writer.h"
#include "sinks/pg_writer.h"
#include "storage/store.h"

namespace deltatap {

namespace asio = boost::asio;

namespace {

// How often the store lane looks for new deltas when the sink is idle: the
// replication lag when deltas trickle in (a busy sink reads the next batch
// as soon as one is sent).
constexpr auto kTick = std::chrono::milliseconds(50);
// How often a backlog larger than a batch is counted (a scan of the backlog).
constexpr auto kLagCountInterval = std::chrono::seconds(1);
// The sent-id file: the number, zero-padded to a fixed width so that a
// rewrite in place never leaves digits of a longer one behind.
constexpr int kSentIdWidth = 20;

}  // namespace

Result<std::int64_t> highest_sent_id(const std::string& sent_id_path) {
  std::ifstream in(sent_id_path);
  if (!in) {
    if (errno == ENOENT) return std::int64_t{0};
    return Error{errno_text("read", sent_id_path, errno)};
  }
  std::string text;
  std::getline(in, text);
  std::int64_t id = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return Error{sent_id_path + ": not a delta id"};
    id = id * 10 + (c - '0');
  }
  return id;
}

std::string postgres_source_name(const std::string& configured) {
  if (!configured.empty()) return configured;
  char name[256] = {};
  if (::gethostname(name, sizeof name - 1) != 0 || !name[0]) return "deltatap";
  return name;
}

Result<std::unique_ptr<PostgresSink>> PostgresSink::create(boost::asio::io_context& store_lane,
                                                           Store& store, PostgresOptions options,
                                                           std::string password,
                                                           std::string sent_id_path,
                                                           PostgresSinkMetrics metrics) {
  auto target = display_conninfo(options.url);
  if (!target.ok()) return Error{target.error()};
  options.source = postgres_source_name(options.source);
  std::unique_ptr<PostgresSink> sink(new PostgresSink(store_lane, store, std::move(options),
                                                      std::move(password),
                                                      std::move(sent_id_path), metrics));
  sink->target_ = *target;
  auto mark = store.sink_mark(sink->mark_name_);
  if (!mark.ok()) return Error{"reading the PostgreSQL sink's mark: " + mark.error()};
  auto sent = highest_sent_id(sink->sent_id_path_);
  if (!sent.ok()) return Error{sent.error()};
  sink->mark_ = *mark;
  sink->handed_ = *mark;
  sink->durable_sent_ = *sent;
  store.hold_deltas_after(sink->mark_);
  return sink;
}

PostgresSink::PostgresSink(boost::asio::io_context& store_lane, Store& store,
                           PostgresOptions options, std::string password,
                           std::string sent_id_path, PostgresSinkMetrics metrics)
    : io_(store_lane),
      store_(store),
      options_(std::move(options)),
      password_(std::move(password)),
      sent_id_path_(std::move(sent_id_path)),
      // One row per source: a different source (or a second sink) has its own.
      mark_name_("postgres:" + options_.source),
      metrics_(metrics),
      tick_(store_lane) {}

PostgresSink::~PostgresSink() { stop(); }

void PostgresSink::start() {
  if (started_) return;
  started_ = true;
  log_info("Replicating to PostgreSQL from delta id " + std::to_string(mark_ + 1),
           {{"TARGET", target_}, {"SOURCE", options_.source}});
  thread_ = std::thread([this] { run(); });
  pump();
  schedule_tick();
}

void PostgresSink::stop() {
  tick_.cancel();
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
  if (sent_fd_ >= 0) ::close(std::exchange(sent_fd_, -1));
}

// --- the store lane -------------------------------------------------------------

// Two batches at most are out: the one being sent and the next, read while
// the first is on its way, so that reading and sending overlap.
void PostgresSink::pump() {
  if (in_flight_ >= kMaxInFlight || stop_) return;
  auto rows = store_.deltas_after(handed_, options_.batch_rows);
  if (!rows.ok()) {
    log_error("The PostgreSQL sink cannot read the store", {{"ERROR", rows.error()}});
    return;
  }
  if (in_flight_ == 0 && rows->size() < options_.batch_rows) {
    lag_ = static_cast<std::int64_t>(rows->size());  // exact: all there is
    metrics_.lag_deltas.set(static_cast<double>(lag_));
  }
  if (rows->empty()) return;
  handed_ = rows->back().id;
  ++in_flight_;
  {
    std::lock_guard lock(mutex_);
    batches_.push_back(std::move(rows.value()));
  }
  wake_.notify_all();
  // The next one, at once, when the first was full.
  if (in_flight_ < kMaxInFlight && handed_ > mark_) pump();
}

void PostgresSink::on_sent(std::int64_t last_id) {
  --in_flight_;
  mark_ = std::max(mark_, last_id);
  if (auto s = store_.set_sink_mark(mark_name_, mark_); !s.ok()) {
    // The rows are in PostgreSQL; only the resume point is older. Logged, as
    // a store that refuses a one-row write has bigger troubles.
    log_error("Cannot record the PostgreSQL sink's progress", {{"ERROR", s.error()}});
  }
  store_.hold_deltas_after(mark_);
  pump();
}

void PostgresSink::refresh_lag() {
  if (auto n = store_.count_deltas_after(mark_); n.ok()) {
    lag_ = *n;
    metrics_.lag_deltas.set(static_cast<double>(lag_));
  }
}

void PostgresSink::schedule_tick() {
  tick_.expires_after(kTick);
  tick_.async_wait([this](const boost::system::error_code& ec) {
    if (ec || stop_) return;
    pump();
    // A backlog larger than a batch is counted now and then, not at every tick.
    auto now = std::chrono::steady_clock::now();
    if (in_flight_ > 0 && now - lag_counted_at_ >= kLagCountInterval) {
      lag_counted_at_ = now;
      refresh_lag();
    }
    schedule_tick();
  });
}

PostgresSinkStatus PostgresSink::status() const {
  PostgresSinkStatus status;
  status.target = target_;
  status.source = options_.source;
  status.connected = connected_;
  status.mark = mark_;
  status.lag = lag_;
  status.errors = metrics_.errors_total.value();
  std::lock_guard lock(mutex_);
  status.last_error = last_error_;
  return status;
}

std::vector<std::string> PostgresSink::not_ready_reasons() const {
  auto now = status();
  std::vector<std::string> reasons;
  if (now.last_error && now.lag > 0) {
    reasons.push_back("PostgreSQL sink failing, " + std::to_string(now.lag) +
                      " deltas waiting (kept from retention and eviction): " + *now.last_error);
  } else if (now.lag > options_.ready_backlog) {
    reasons.push_back("PostgreSQL sink behind: " + std::to_string(now.lag) +
                      " deltas waiting (kept from retention and eviction)");
  }
  return reasons;
}

// --- the sink's thread -----------------------------------------------------------

bool PostgresSink::sleep_for(std::chrono::milliseconds delay) {
  std::unique_lock lock(mutex_);
  return !wake_.wait_for(lock, delay, [this] { return stop_.load(); });
}

// Before a batch goes out: no id up to `last_id` may ever be given to another
// delta (see the header), so the file says so, durably, first.
Status PostgresSink::note_sent(std::int64_t last_id) {
  if (last_id <= durable_sent_) return ok_status();
  if (sent_fd_ < 0) {
    sent_fd_ = ::open(sent_id_path_.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    if (sent_fd_ < 0) return Error{errno_text("open", sent_id_path_, errno)};
  }
  char text[64];
  int length = std::snprintf(text, sizeof text, "%0*lld\n", kSentIdWidth,
                             static_cast<long long>(last_id));
  if (length <= 0 || ::pwrite(sent_fd_, text, static_cast<std::size_t>(length), 0) != length ||
      ::fdatasync(sent_fd_) != 0) {
    return Error{errno_text("write", sent_id_path_, errno)};
  }
  durable_sent_ = last_id;
  return ok_status();
}

// Logs a change of state once: failing with a new message, or working again.
void PostgresSink::report(const Status& outcome) {
  std::optional<std::string> error;
  if (!outcome.ok()) error = outcome.error();
  bool changed;
  {
    std::lock_guard lock(mutex_);
    changed = error != last_error_ || !reported_;
    last_error_ = error;
    reported_ = true;
  }
  if (error) metrics_.errors_total.inc();
  if (!changed) return;
  if (error) {
    log_warning("PostgreSQL sink failing, retrying with backoff: " + *error,
                {{"TARGET", target_}, {"SOURCE", options_.source}, {"ERROR", *error}});
  } else {
    log_info("PostgreSQL sink connected and sending",
             {{"TARGET", target_}, {"SOURCE", options_.source}});
  }
}

void PostgresSink::run() {
  PgParallelOptions writer_options;
  writer_options.connect.url = options_.url;
  writer_options.connect.password = password_;
  writer_options.connect.connect_timeout = options_.connect_timeout;
  writer_options.source = options_.source;
  writer_options.statement_timeout = options_.statement_timeout;
  writer_options.connections = options_.connections;
  PgParallelWriter writer(writer_options, stop_);
  auto backoff = options_.backoff_initial;
  for (;;) {
    std::vector<StoredDelta> rows;
    {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [this] { return stop_.load() || !batches_.empty(); });
      if (stop_) return;
      rows = std::move(batches_.front());
      batches_.pop_front();
    }
    for (;;) {
      Status outcome = note_sent(rows.back().id);
      if (outcome.ok()) {
        // Connects (again) when needed; on failure the next attempt starts
        // clean: the staging table or a partition may be what went wrong.
        if (auto written = writer.write(rows); !written.ok()) outcome = Error{written.error()};
      }
      if (stop_) return;  // an attempt cut short by stop() is no failure
      connected_ = writer.connected();
      report(outcome);
      if (outcome.ok()) {
        backoff = options_.backoff_initial;
        asio::post(io_, [this, last = rows.back().id] { on_sent(last); });
        break;
      }
      if (!sleep_for(backoff)) return;
      backoff = std::min(backoff * 2, options_.backoff_max);
    }
  }
}

}  // namespace deltatap
