#include "service/service.h"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>

#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <limits>
#include <memory>
#include <optional>
#include <span>
#include <thread>
#include <vector>

#include "api/http_api.h"
#include "api/metrics.h"
#include "base/files.h"
#include "base/logging.h"
#include "base/secrets.h"
#include "base/json_text.h"
#include "ingest/arrival_queue.h"
#include "ingest/parser.h"
#include "ingest/recorder.h"
#include "ingest/stream_lane.h"
#include "service/journal_replay.h"
#include "service/notify.h"
#include "service/snapshot_scheduler.h"
#include "service/state_conversion.h"
#include "service/test_hooks.h"
#include "sinks/postgres_sink.h"
#include "storage/archive_file.h"
#include "storage/journal.h"
#include "storage/retention.h"
#include "storage/snapshot.h"
#include "storage/store.h"

namespace deltatap {

namespace asio = boost::asio;
using SteadyClock = std::chrono::steady_clock;

namespace {

// At most this many deltas in one transaction, so that HTTP requests get the
// store lane between batches under a flood.
constexpr std::size_t kMaxBatch = 2'000;
// How often gauges and the systemd STATUS= line are brought up to date.
constexpr auto kStatusInterval = std::chrono::seconds(1);
// In the data directory: the lock a running daemon holds (design.md, Durability).
constexpr const char* kLockFileName = ".deltatap.lock";
// In the data directory: the highest delta id the PostgreSQL sink ever sent
// (sinks/postgres_sink.h says why ids continue above it).
constexpr const char* kPostgresSentIdFileName = "postgres-sent-id";

double seconds_since(SteadyClock::time_point start) {
  return std::chrono::duration<double>(SteadyClock::now() - start).count();
}

// The daemon: the store lane (this thread: the store, the timers, the HTTP API)
// and the stream lane (its own thread), joined by the arrival queue.
class Service final : public ApiBackend {
 public:
  Service(const CommandLine& command_line, Config config)
      : command_line_(command_line),
        config_(std::move(config)),
        signals_(io_, SIGTERM, SIGINT, SIGHUP),
        retention_timer_(io_),
        status_timer_(io_),
        notifier_(io_),
        queue_(config_.stream.buffer_bytes, metrics_.ingest().queue_bytes),
        stall_(StoreLaneStall::from_environment()) {}

  int run() {
    signals_.add(SIGUSR1);
    wait_for_signal();
    notifier_.status("Loading the store");
    publish_limits();
    if (!open_store()) return exit_code_ ? exit_code_ : 1;
    if (!start_http()) return 1;
    if (config_.storage.enabled) schedule_snapshot();
    if (replayed_ > 0) snapshots_->request("journal replay");
    schedule_retention();
    conversion_->start();
    if (postgres_) postgres_->start();
    start_stream();
    update_status();
    schedule_status();
    notifier_.start_watchdog();
    notifier_.ready();
    io_.run();
    lane_.reset();
    flush_logging();
    return exit_code_;
  }

  // The limits /metrics publishes for the alerts to compare against
  // (packaging/prometheus/deltatap.rules.yml): at start and at each reload.
  void publish_limits() {
    metrics_.snapshot_interval().set(
        config_.storage.enabled
            ? std::chrono::duration<double>(config_.storage.snapshot_interval).count()
            : 0.0);
    metrics_.store_max_deltas().set(static_cast<double>(config_.storage.max_deltas));
    metrics_.stream_queue_capacity().set(static_cast<double>(config_.stream.buffer_bytes));
  }

  // --- ApiBackend -----------------------------------------------------------

  Store& store() override { return *store_; }

  StatsExtra stats_extra() override {
    StatsExtra extra;
    extra.enabled = config_.storage.enabled;
    extra.db_path = config_.storage.path;
    extra.file_size = config_.storage.enabled ? file_size(config_.storage.path) : 0;
    extra.last_snapshot_at = snapshots_->last_success_at();
    extra.last_snapshot_error = snapshots_->last_error();
    extra.connected = lane_ && lane_->connected();
    extra.stream_url = display_url();
    if (journal_) extra.journal_bytes = journal_bytes_;
    extra.started_at = started_at_;
    if (postgres_) {
      auto status = postgres_->status();
      extra.postgres = PostgresStats{status.target, status.source,       status.connected, status.mark,
                                     status.lag,    status.errors,       status.last_error};
    }
    if (config_.retention.archive) {
      ArchiveStats archive;
      archive.directory = archive_directory_for(config_.storage.path);
      archive.moved = metrics_.archive_deltas().value();
      if (auto files = list_archive_files(archive.directory); files.ok()) {
        for (const auto& file : *files) {
          ++archive.files;
          archive.bytes += file.bytes;
        }
      }
      extra.archive = archive;
    }
    return extra;
  }

  // Archive files exist only beside a store with files; they may be there
  // from an earlier run with [retention] archive on, so they are read even
  // when it is off now.
  std::optional<std::string> archive_directory() override {
    if (!config_.storage.enabled) return std::nullopt;
    return archive_directory_for(config_.storage.path);
  }

  std::vector<std::string> not_ready_reasons() override {
    std::vector<std::string> reasons;
    if (!lane_ || !lane_->connected()) {
      reasons.push_back("stream not connected" +
                        (last_disconnect_.empty() ? "" : ": " + last_disconnect_));
    }
    if (auto& error = snapshots_->last_error()) reasons.push_back("last snapshot failed: " + *error);
    if (journal_error_) reasons.push_back("journal writes failing: " + *journal_error_);
    if (auto& error = recorder_->last_error()) reasons.push_back("storing deltas failing: " + *error);
    if (postgres_) {
      for (auto& reason : postgres_->not_ready_reasons()) reasons.push_back(std::move(reason));
    }
    return reasons;
  }

  void snapshot_now(std::function<void(Status, std::uint64_t, double)> done) override {
    snapshots_->request("api", std::move(done));
  }

  Metrics& metrics() override { return metrics_; }

 private:
  // --- start-up ---------------------------------------------------------------

  // Loads data/sessions.sqlite and replays the journal when storage is on;
  // starts empty otherwise.
  bool open_store() {
    const auto& path = config_.storage.path;
    bool write_now = false;
    if (config_.storage.enabled) {
      if (!claim_data_directory()) return false;
      // A FIFO or a device at the path is refused here (it is not opened for
      // reading, which could wait forever), before SQLite ever opens it.
      auto exists = snapshot_file_exists(path);
      if (!exists.ok()) {
        log_error("Cannot read the database file: " + exists.error(),
                  {{"DB_PATH", path}, {"ERROR", exists.error()}});
        return false;
      }
      if (*exists && !schema_is_known(path)) return false;
      remove_stale_temporaries(path);
      if (*exists) {
        auto loaded = Store::load_file(path);
        if (loaded.ok()) {
          store_ = std::move(loaded.value());
          // Which check the file passed: a start that did not find the digest
          // a snapshot left (or found the file changed since) read every page.
          bool by_digest = store_->load_check() == Store::LoadCheck::kDigest;
          log_info("Database loaded", {{"DB_PATH", path},
                                       {"DELTA_COUNT", std::to_string(store_->delta_count())},
                                       {"CHECKED_BY", by_digest ? "digest" : "quick_check"}});
        } else {
          auto aside = move_aside(path);
          log_error("Database file is unusable; moved aside and starting empty",
                    {{"DB_PATH", path},
                     {"ERROR", loaded.error()},
                     {"MOVED_TO", aside.ok() ? *aside : "(move failed: " + aside.error() + ")"}});
          if (!aside.ok()) return false;  // never overwrite what we could not keep
        }
      }
      write_now = !store_;
    } else {
      log_warning("Storage is off (PERSIST=0): deltas are counted and logged, nothing is written");
    }
    if (!store_) {
      auto empty = Store::open_empty();
      if (!empty.ok()) {
        log_error("Cannot create the in-memory database", {{"ERROR", empty.error()}});
        return false;
      }
      store_ = std::move(empty.value());
    }
    if (auto s = store_->set_compression(config_.storage.compression); !s.ok()) {
      log_error("Cannot set up the compression", {{"ERROR", s.error()}});
      return false;
    }
    conversion_.emplace(io_, *store_);
    // Before the replay and the first retention run: its hold keeps what it
    // has not sent.
    if (config_.postgres.enabled() && !create_postgres_sink()) return false;
    // Before the replay: it goes through the recorder, so that the ledger's
    // rules decide on replay what they decided when the deltas arrived.
    recorder_.emplace(*store_, metrics_.ingest(), RecorderOptions{config_.storage.max_deltas});
    if (config_.storage.enabled && config_.storage.journal && !open_journal()) return false;
    snapshots_.emplace(io_, config_.storage, *store_, journal_.get(), metrics_,
                       [this] { take_arrivals(std::numeric_limits<std::size_t>::max()); });
    if (auto offset = test_clock_offset(); offset.count() != 0) {
      log_warning("Test hook: retention's clock is moved",
                  {{"OFFSET_MS", std::to_string(offset.count())}});
    }
    auto pruned = prune();
    if (!pruned.ok()) log_error("Retention cleanup failed", {{"ERROR", pruned.error()}});
    if (pruned.ok() && pruned->any()) write_now = true;
    if (config_.storage.enabled && write_now) {
      auto started = SteadyClock::now();
      if (auto s = snapshots_->write_now(); !s.ok()) {
        log_error("Cannot write the database file", {{"DB_PATH", path}, {"ERROR", s.error()}});
        return false;
      }
      snapshots_->succeeded(seconds_since(started));
    }
    started_at_ = format_timestamp(now_millis());
    return true;
  }

  // Before anything in the data directory is read or written: refuse one that
  // other users can write to, make it when missing, and lock it for the life
  // of this process, so that a second deltatapd started on it stops here
  // instead of snapshotting its own (smaller) store over this one's file and
  // rotating and deleting this one's journal.
  bool claim_data_directory() {
    const std::string directory = directory_of(config_.storage.path);
    // Refused, not fixed: whatever another user planted while the directory
    // was open to them (a journal segment that would be replayed, a link at
    // the database path) would still be used after a chmod, so a person has
    // to look first; and the mode may be someone's deliberate choice (a group
    // meant to share it) that a daemon should not undo behind their back.
    // Group-readable (0750) is fine: reading cannot change the history.
    if (auto s = check_not_writable_by_others(directory); !s.ok()) {
      log_error("Refusing to use the data directory: " + s.error(),
                {{"DATA_DIR", directory}, {"ERROR", s.error()}});
      return false;
    }
    if (auto s = make_private_directories(directory); !s.ok()) {
      log_error("Cannot create the data directory: " + s.error(),
                {{"DATA_DIR", directory}, {"ERROR", s.error()}});
      return false;
    }
    // flock, not a PID file: the kernel drops it when this process ends, however
    // it ends, so a crash never leaves a stale lock that blocks a restart. The
    // file stays behind (its PID then stale): removing it on exit would let a
    // starting daemon lock a file that the next one no longer finds.
    const std::string lock_path = (std::filesystem::path(directory) / kLockFileName).string();
    auto attempt = try_lock_file(lock_path);
    if (!attempt.ok()) {
      log_error("Cannot lock the data directory: " + attempt.error(),
                {{"DATA_DIR", directory}, {"LOCK_PATH", lock_path}, {"ERROR", attempt.error()}});
      return false;
    }
    if (!attempt->lock) {
      std::string holder = attempt->holder ? "PID " + std::to_string(*attempt->holder)
                                           : "its PID not recorded";
      log_error("Another deltatapd (" + holder + ") is using the data directory " + directory +
                    " (it holds " + lock_path + "); this one stops without touching its files",
                {{"DATA_DIR", directory},
                 {"LOCK_PATH", lock_path},
                 {"HOLDER_PID", attempt->holder ? std::to_string(*attempt->holder) : ""}});
      return false;
    }
    data_lock_.emplace(std::move(*attempt->lock));
    return true;
  }

  // A file written by a newer deltatap is neither loaded nor moved aside as
  // corrupt (it is not: this binary is too old for it). Nothing in the data
  // directory is touched (no stale temporary removed, no journal rotated) and
  // the daemon refuses to start, so that the newer binary, put back, finds
  // everything as it left it.
  bool schema_is_known(const std::string& path) {
    auto version = snapshot_schema_version(path);
    if (!version.ok()) {
      log_error("Cannot read the database file: " + version.error(),
                {{"DB_PATH", path}, {"ERROR", version.error()}});
      return false;
    }
    if (!*version || **version <= kSchemaVersion) return true;
    log_error("The database file was written by a newer deltatap, version " +
                  std::to_string(**version) + " (this one understands up to version " +
                  std::to_string(kSchemaVersion) +
                  "); refusing to start, and leaving it and the journal as they are",
              {{"DB_PATH", path}, {"SCHEMA_VERSION", std::to_string(**version)}});
    return false;
  }

  // The PostgreSQL sink, not yet started. A password file that cannot be
  // read is a configuration error (exit 2), as a token file is.
  bool create_postgres_sink() {
    std::string password;
    if (!config_.postgres.password_file.empty()) {
      auto read = read_secret_file(config_.postgres.password_file);
      if (!read.ok()) {
        log_error("[postgres] password_file: " + read.error(), {{"ERROR", read.error()}});
        exit_code_ = 2;
        return false;
      }
      password = std::move(read.value());
    }
    auto sent_id_path =
        (std::filesystem::path(directory_of(config_.storage.path)) / kPostgresSentIdFileName).string();
    auto sink = PostgresSink::create(io_, *store_, config_.postgres, std::move(password), sent_id_path,
                                     {metrics_.postgres_lag_deltas(), metrics_.postgres_errors()});
    if (!sink.ok()) {
      log_error("Cannot start the PostgreSQL sink: " + sink.error(), {{"ERROR", sink.error()}});
      return false;
    }
    postgres_ = std::move(sink.value());
    return true;
  }

  // Replays what the last run journaled after its last snapshot
  // (journal_replay.h), then starts a new active journal file.
  bool open_journal() {
    auto path = journal_path_for(config_.storage.path);
    auto replayed = replay_journal(path, *store_, *recorder_, metrics_.ingest());
    if (!replayed.ok()) return false;  // logged
    // Quarantined records count too: the snapshot that replay asks for makes
    // the quarantine durable and lets the segments holding them be dropped.
    replayed_ = replayed->restored + replayed->quarantined + replayed->lists;
    auto journal = Journal::open(io_, path, [this](const JournalWrite& w) { on_journal_written(w); });
    if (!journal.ok()) {
      log_error("Cannot open the journal", {{"JOURNAL_PATH", path}, {"ERROR", journal.error()}});
      return false;
    }
    journal_ = std::move(journal.value());
    return true;
  }

  bool start_http() {
    if (config_.http.listen.empty()) return true;
    http_ = std::make_unique<HttpApi>(io_, config_.http, *this);
    if (auto s = http_->start(); !s.ok()) {
      log_error("Cannot start the HTTP API", {{"LISTEN", config_.http.listen}, {"ERROR", s.error()}});
      return false;
    }
    log_info("HTTP API listening", {{"LISTEN", http_->bound_address()}});
    return true;
  }

  void wait_for_signal() {
    signals_.async_wait([this](const boost::system::error_code& ec, int signo) {
      if (ec) return;
      switch (signo) {
        case SIGTERM:
        case SIGINT:
          stop();
          return;
        case SIGHUP: reload(); break;
        case SIGUSR1: snapshots_->request("signal"); break;
      }
      wait_for_signal();
    });
  }

  // --- the stream lane and what it hands over ---------------------------------

  // The URL as it may be shown and stored: a query can carry a secret.
  std::string display_url() const {
    auto url = parse_stream_url(config_.stream.url);
    return url.ok() ? url->display : std::string("(unparseable url)");
  }

  void start_stream() {
    auto live = store_->live_sessions();
    if (!live.ok()) log_error("Cannot read the ledger's live sessions", {{"ERROR", live.error()}});
    StreamLaneOptions options;
    options.stream = config_.stream;
    options.last_id = store_->last_delta_id();
    if (postgres_) {
      // Ids the sink sent may be missing here after a kill -9: never reuse them.
      auto sent = highest_sent_id(
          (std::filesystem::path(directory_of(config_.storage.path)) / kPostgresSentIdFileName).string());
      if (sent.ok()) options.last_id = std::max(options.last_id, *sent);
    }
    if (live.ok()) options.live_sessions = std::move(live.value());
    options.reconciler = reconciler_options_from_environment();
    options.journal_fsync_interval = config_.storage.journal_fsync_interval;
    options.log_each_delta = config_.log.level == LogLevel::debug;
    lane_ = std::make_unique<StreamLane>(std::move(options), queue_, journal_.get(),
                                         metrics_.ingest(), [this] {
                                           asio::post(io_, [this] { on_arrivals(); });
                                         });
    lane_->start();
  }

  // Woken by the stream lane: store a batch, then yield to whatever else the
  // store lane has to do (HTTP requests, timers) before the next one.
  void on_arrivals() {
    if (take_arrivals(kMaxBatch)) asio::post(io_, [this] { on_arrivals(); });
  }

  // Takes and records up to `max_deltas` deltas' worth; returns whether more wait.
  bool take_arrivals(std::size_t max_deltas) {
    bool more = false;
    do {
      auto taken = queue_.take(max_deltas);
      if (taken.resume_reading && lane_) lane_->resume_reading();
      for (const auto& arrival : taken.arrivals) {
        if (!arrival.event) continue;
        if (arrival.event->event == "connected") last_disconnect_.clear();
        if (!arrival.disconnect_reason.empty()) last_disconnect_ = arrival.disconnect_reason;
      }
      (void)recorder_->record(taken.arrivals);
      stall_.maybe_stall(store_->delta_count());
      more = taken.more;
      // A bounded call takes one batch; an unbounded one (before a snapshot,
      // at stop) takes everything queued.
    } while (more && max_deltas == std::numeric_limits<std::size_t>::max());
    return more;
  }

  // --- the journal -------------------------------------------------------------

  void on_journal_written(const JournalWrite& write) {
    journal_bytes_ = write.file_bytes;
    if (write.status.ok()) {
      if (journal_error_) log_info("Journal writes recovered");
      journal_error_.reset();
      return;
    }
    if (!journal_error_) {
      log_error("Journal write failed; deltas stay in memory and the write is retried",
                {{"ERROR", write.status.error()}});
    }
    journal_error_ = write.status.error();
  }

  // --- timers -------------------------------------------------------------------

  void schedule_snapshot() {
    snapshot_timer_.expires_after(config_.storage.snapshot_interval);
    snapshot_timer_.async_wait([this](const boost::system::error_code& ec) {
      if (ec || stopping_) return;
      snapshots_->request("timer");
      schedule_snapshot();
    });
  }

  // Retention's run (storage/retention.h), archiving first when [retention]
  // archive is on, and what it did counted in the metrics.
  Result<Pruned> prune() {
    ArchiveOptions archive;
    archive.directory = archive_directory_for(config_.storage.path);
    archive.after_write = archive_kill_hook();
    auto pruned = prune_expired(*store_, retention_now(), config_.retention, archive);
    if (!pruned.ok()) return pruned;
    metrics_.cleanup_deleted().inc(static_cast<std::uint64_t>(pruned->deltas));
    metrics_.archive_deltas().inc(static_cast<std::uint64_t>(pruned->archived));
    return pruned;
  }

  void schedule_retention() {
    // retention_now(): the wall clock, unless a test moved it (timestamp.h).
    auto now = retention_now();
    retention_timer_.expires_after(next_midnight_utc(now) - now);
    retention_timer_.async_wait([this](const boost::system::error_code& ec) {
      if (ec || stopping_) return;
      take_arrivals(std::numeric_limits<std::size_t>::max());
      auto pruned = prune();
      if (!pruned.ok()) log_error("Retention cleanup failed", {{"ERROR", pruned.error()}});
      if (pruned.ok() && pruned->any()) snapshots_->request("retention");
      schedule_retention();
    });
  }

  // Gauges and the STATUS= line, once a second.
  void update_status() {
    auto counts_deltas = store_->delta_count();
    std::string text = lane_ && lane_->connected()
                           ? "Connected"
                           : "Stream down, retrying" +
                                 (last_disconnect_.empty() ? "" : " (" + last_disconnect_ + ")");
    text += "; " + std::to_string(counts_deltas) + " deltas stored";
    if (!config_.storage.enabled) {
      text += "; storage off";
    } else if (snapshots_->last_error()) {
      text += "; snapshots failing";
    } else if (snapshots_->last_success_at()) {
      text += "; last snapshot " + *snapshots_->last_success_at();
    }
    notifier_.status(text);
  }

  void schedule_status() {
    status_timer_.expires_after(kStatusInterval);
    status_timer_.async_wait([this](const boost::system::error_code& ec) {
      if (ec || stopping_) return;
      update_status();
      schedule_status();
    });
  }

  // --- lifecycle ------------------------------------------------------------------

  void reload() {
    notifier_.reloading();
    auto fresh = load_config(command_line_, process_environment());
    if (!fresh.ok()) {
      log_error("Reload refused; keeping the running configuration", {{"ERROR", fresh.error()}});
    } else {
      bool stream_changed = !(fresh->stream == config_.stream);
      if (fresh->storage.path != config_.storage.path ||
          fresh->storage.enabled != config_.storage.enabled ||
          fresh->storage.journal != config_.storage.journal ||
          fresh->storage.compression != config_.storage.compression ||
          fresh->http.listen != config_.http.listen) {
        log_warning("Storage path, storage on/off, journal on/off, compression and the HTTP "
                    "listener change only at restart; keeping the running values");
        fresh->storage.path = config_.storage.path;
        fresh->storage.enabled = config_.storage.enabled;
        fresh->storage.journal = config_.storage.journal;
        fresh->storage.compression = config_.storage.compression;
        fresh->http.listen = config_.http.listen;
      }
      if (!(fresh->postgres == config_.postgres)) {
        log_warning("[postgres] settings change only at restart; keeping the running values");
        fresh->postgres = config_.postgres;
      }
      config_ = std::move(fresh.value());
      init_logging(config_.log);
      recorder_->set_options(RecorderOptions{config_.storage.max_deltas});
      queue_.set_capacity(config_.stream.buffer_bytes);
      publish_limits();
      lane_->set_log_each_delta(config_.log.level == LogLevel::debug);
      if (stream_changed) {
        log_info("Stream settings changed; reconnecting", {{"URL", display_url()}});
        lane_->reconfigure(config_.stream);
      }
      log_info("Configuration reloaded");
    }
    notifier_.ready();
  }

  void stop() {
    if (stopping_) return;
    stopping_ = true;
    notifier_.stopping();
    notifier_.status("Stopping: final snapshot");
    log_info("Stopping");
    snapshot_timer_.cancel();
    retention_timer_.cancel();
    status_timer_.cancel();
    if (conversion_) conversion_->stop();
    signals_.cancel();
    if (http_) http_->stop();
    // Its thread ends within a poll slice; a batch cut short is sent again
    // next time (the mark in the final snapshot says where to resume).
    if (postgres_) postgres_->stop();
    // What the stream lane read before it closed is stored before the final
    // snapshot. Until then the store lane may have nothing of its own to wait
    // for: the guard keeps its loop running.
    lane_->stop([this, guard = asio::make_work_guard(io_)] {
      asio::post(io_, [this] {
        take_arrivals(std::numeric_limits<std::size_t>::max());
        snapshots_->when_idle([this] { finish_stop(); });
      });
    });
  }

  void finish_stop() {
    notifier_.stop_watchdog();
    if (config_.storage.enabled) {
      auto started = SteadyClock::now();
      if (auto s = snapshots_->write_now(); !s.ok()) {
        log_error("Final snapshot failed; the journal keeps what it missed",
                  {{"DB_PATH", config_.storage.path}, {"ERROR", s.error()}});
        exit_code_ = 1;
      } else {
        log_info("Final snapshot saved",
                 {{"DB_PATH", config_.storage.path},
                  {"DELTA_COUNT", std::to_string(store_->delta_count())},
                  {"DURATION_MS", std::to_string(static_cast<int>(seconds_since(started) * 1000))}});
      }
    }
    io_.stop();
  }

  const CommandLine& command_line_;
  Config config_;
  asio::io_context io_;  // the store lane
  asio::signal_set signals_;
  asio::steady_timer snapshot_timer_{io_};
  asio::steady_timer retention_timer_;
  asio::steady_timer status_timer_;
  ServiceNotifier notifier_;
  Metrics metrics_;
  // Before everything that writes in the data directory, so destroyed after it
  // all: the lock is the last thing this process lets go of.
  std::optional<FileLock> data_lock_;
  std::unique_ptr<Store> store_;
  std::optional<StateConversion> conversion_;  // [storage] compression, in the background
  std::unique_ptr<Journal> journal_;  // after store_: destroyed first, flushing its buffer
  ArrivalQueue queue_;
  std::optional<Recorder> recorder_;
  std::optional<SnapshotScheduler> snapshots_;
  std::unique_ptr<PostgresSink> postgres_;  // after store_: stopped before it goes
  std::unique_ptr<StreamLane> lane_;  // last: stopped and joined before the rest go
  std::unique_ptr<HttpApi> http_;
  StoreLaneStall stall_;

  std::string last_disconnect_;
  std::size_t replayed_ = 0;
  std::uint64_t journal_bytes_ = 0;
  std::optional<std::string> journal_error_;

  std::string started_at_;
  bool stopping_ = false;
  int exit_code_ = 0;
};

}  // namespace

int run_service(const CommandLine& command_line, Config config) {
  Service service(command_line, std::move(config));
  return service.run();
}

}  // namespace deltatap
