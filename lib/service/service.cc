#include "service/service.h"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>

#include <csignal>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include "api/http_api.h"
#include "storage/journal.h"
#include "base/logging.h"
#include "api/metrics.h"
#include "service/notify.h"
#include "ingest/parse_thread.h"
#include "ingest/parser.h"
#include "storage/retention.h"
#include "storage/snapshot.h"
#include "storage/store.h"
#include "stream/websocket_client.h"

namespace deltatap {

namespace asio = boost::asio;
using SteadyClock = std::chrono::steady_clock;

namespace {

// Deltas that arrive within this window are stored in one transaction.
constexpr auto kBatchWindow = std::chrono::milliseconds(5);
// At most this many in one transaction, so that the read loop gets back to the
// socket between batches under a flood.
constexpr std::size_t kMaxBatch = 250;
// A snapshot child still running after this is killed and the snapshot retried:
// a 1,000,000-delta copy takes seconds.
constexpr auto kMaxSnapshotTime = std::chrono::minutes(10);
// How often gauges and the systemd STATUS= line are brought up to date.
constexpr auto kStatusInterval = std::chrono::seconds(1);

double seconds_since(SteadyClock::time_point start) {
  return std::chrono::duration<double>(SteadyClock::now() - start).count();
}

class Service final : public ApiBackend {
 public:
  Service(const CommandLine& command_line, Config config)
      : command_line_(command_line),
        config_(std::move(config)),
        signals_(io_, SIGTERM, SIGINT, SIGHUP),
        snapshot_timer_(io_),
        retention_timer_(io_),
        batch_timer_(io_),
        journal_timer_(io_),
        status_timer_(io_),
        notifier_(io_),
        parse_thread_(io_, [this](ParsedFrame&& parsed, TimePoint received) {
          on_parsed(std::move(parsed), received);
        }) {}

  int run() {
    signals_.add(SIGUSR1);
    wait_for_signal();
    notifier_.status("Loading the store");
    if (!open_store()) return 1;
    if (!start_http()) return 1;
    if (config_.storage.enabled) schedule_snapshot();
    if (journal_) schedule_journal_flush();
    if (replayed_ > 0) start_snapshot("journal replay");
    schedule_retention();
    start_stream();
    update_status();
    schedule_status();
    notifier_.start_watchdog();
    notifier_.ready();
    io_.run();
    flush_logging();
    return exit_code_;
  }

  // --- ApiBackend -----------------------------------------------------------

  Store& store() override { return *store_; }

  StatsExtra stats_extra() override {
    StatsExtra extra;
    extra.enabled = config_.storage.enabled;
    extra.db_path = config_.storage.path;
    extra.file_size = config_.storage.enabled ? file_size(config_.storage.path) : 0;
    extra.last_snapshot_at = last_snapshot_at_;
    extra.last_snapshot_error = last_snapshot_error_;
    extra.connected = client_ && client_->connected();
    extra.stream_url = display_url();
    if (journal_) extra.journal_bytes = journal_bytes_;
    extra.started_at = started_at_;
    return extra;
  }

  std::vector<std::string> not_ready_reasons() override {
    std::vector<std::string> reasons;
    if (!client_ || !client_->connected()) {
      reasons.push_back("stream not connected" +
                        (last_disconnect_.empty() ? "" : ": " + last_disconnect_));
    }
    if (last_snapshot_error_) reasons.push_back("last snapshot failed: " + *last_snapshot_error_);
    if (journal_error_) reasons.push_back("journal writes failing: " + *journal_error_);
    if (store_error_) reasons.push_back("storing deltas failing: " + *store_error_);
    return reasons;
  }

  void snapshot_now(std::function<void(Status, std::uint64_t, double)> done) override {
    if (!config_.storage.enabled) {
      done(Error{"storage is off (PERSIST=0): nothing is written"}, 0, 0);
      return;
    }
    snapshot_waiters_.push_back(std::move(done));
    start_snapshot("api");
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
      remove_stale_temporaries(path);
      auto exists = snapshot_file_exists(path);
      if (!exists.ok()) {
        log_error("Cannot read the database file", {{"DB_PATH", path}, {"ERROR", exists.error()}});
        return false;
      }
      if (*exists) {
        auto loaded = Store::load_file(path);
        if (loaded.ok()) {
          store_ = std::move(loaded.value());
          log_info("Database loaded", {{"DB_PATH", path},
                                       {"DELTA_COUNT", std::to_string(store_->delta_count())}});
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
    if (config_.storage.enabled && config_.storage.journal && !open_journal()) return false;
    auto deleted = apply_retention(*store_, now_millis(), config_.retention.days);
    if (deleted.ok()) metrics_.cleanup_deleted().inc(static_cast<std::uint64_t>(*deleted));
    if (deleted.ok() && *deleted > 0) write_now = true;
    if (config_.storage.enabled && write_now) {
      auto started = SteadyClock::now();
      if (auto s = write_snapshot_now(); !s.ok()) {
        log_error("Cannot write the database file", {{"DB_PATH", path}, {"ERROR", s.error()}});
        return false;
      }
      snapshot_succeeded(seconds_since(started));
    }
    started_at_ = format_timestamp(now_millis());
    return true;
  }

  // Replays what the last run journaled after its last snapshot, then starts a
  // new active journal file.
  bool open_journal() {
    auto path = journal_path_for(config_.storage.path);
    auto replay = read_journal(path, store_->last_delta_id());
    if (!replay.ok()) {
      log_error("Cannot read the journal", {{"JOURNAL_PATH", path}, {"ERROR", replay.error()}});
      return false;
    }
    for (const auto& warning : replay->warnings) {
      log_warning("Journal tail ignored", {{"JOURNAL_PATH", path}, {"DETAIL", warning}});
    }
    constexpr std::size_t kChunk = 10'000;
    auto& rows = replay->deltas;
    for (std::size_t i = 0; i < rows.size(); i += kChunk) {
      auto chunk = std::span(rows).subspan(i, std::min(kChunk, rows.size() - i));
      if (auto s = store_->save_with_created_at(chunk); !s.ok()) {
        log_error("Journal replay failed", {{"ERROR", s.error()}});
        return false;
      }
    }
    replayed_ = rows.size();
    if (replay->records > 0) {
      log_info("Journal replayed", {{"JOURNAL_PATH", path},
                                    {"RECORDS", std::to_string(replay->records)},
                                    {"RESTORED", std::to_string(rows.size())}});
    }
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
        case SIGUSR1: start_snapshot("signal"); break;
      }
      wait_for_signal();
    });
  }

  // --- the stream -------------------------------------------------------------

  // The URL as it may be shown and stored: a query can carry a secret.
  std::string display_url() const {
    auto url = parse_stream_url(config_.stream.url);
    return url.ok() ? url->display : std::string("(unparseable url)");
  }

  void start_stream() {
    StreamEvents events;
    events.on_connected = [this](const std::string& url) {
      metrics_.websocket_connected().set(1);
      last_disconnect_.clear();
      record_event({format_timestamp(now_millis()), "connected", url, 0, ""});
      log_info("Connected to the stream", {{"URL", url}});
      update_status();
    };
    events.on_text = [this](std::string_view text, TimePoint received) {
      parse_thread_.submit(text, received);
    };
    events.on_binary = [this](std::string_view data, TimePoint received) {
      quarantine(binary_frame_rejection(data), received);
    };
    events.on_disconnected = [this](const Disconnect& d) {
      metrics_.websocket_connected().set(0);
      if (!stopping_) metrics_.websocket_reconnects().inc();
      std::string reason = d.reason.empty() ? d.error : d.reason;
      if (d.http_status) reason = "HTTP " + std::to_string(d.http_status) + " " + reason;
      last_disconnect_ = reason;
      bool auth = d.http_status == 401 || d.http_status == 403;
      record_event({format_timestamp(now_millis()), auth ? "auth_failed" : "disconnected",
                    display_url(), d.close_code, reason});
      update_status();
    };
    events.on_oversized = [this](std::uint64_t size) {
      metrics_.messages_rejected("too_large").inc();
      log_warning("Oversized frame refused; reconnecting",
                  {{"SIZE", std::to_string(size)},
                   {"MAX_MESSAGE_BYTES", std::to_string(config_.stream.max_message_bytes)}});
      record_event({format_timestamp(now_millis()), "oversized", display_url(), 1009,
                    "frame above " + std::to_string(config_.stream.max_message_bytes) + " bytes"});
    };
    client_ = std::make_unique<WebSocketClient>(io_, config_.stream, std::move(events));
    client_->start();
  }

  // A frame's deltas and rejections, back from the parse thread in arrival order.
  void on_parsed(ParsedFrame&& parsed, TimePoint received) {
    for (auto& rejection : parsed.rejections) quarantine(rejection, received);
    if (parsed.deltas.empty()) return;
    // Even a debug line that is filtered out builds its fields and a record:
    // at tens of thousands of deltas a second, ask first.
    bool debug = config_.log.level == LogLevel::debug;
    for (auto& delta : parsed.deltas) {
      metrics_.deltas_received(delta.type).inc();
      if (debug) {
        log_debug("Delta received", {{"SESSION_ID", delta.session_id},
                                     {"DELTA_TYPE", std::string(to_string(delta.type))}});
      }
      pending_.push_back(std::move(delta));
    }
    if (pending_.size() >= kMaxBatch) {
      flush_pending();
    } else if (!batch_scheduled_) {
      batch_scheduled_ = true;
      batch_timer_.expires_after(kBatchWindow);
      batch_timer_.async_wait([this](const boost::system::error_code&) {
        batch_scheduled_ = false;
        flush_pending();
      });
    }
  }

  // Stores what arrived in one transaction and hands it to the journal.
  void flush_pending() {
    if (pending_.empty()) return;
    std::string created_at = format_timestamp(now_millis());
    if (auto s = store_->save_batch(pending_, created_at, journal_ ? &ids_ : nullptr); !s.ok()) {
      // Only a broken in-memory database gets here; say loudly what was lost.
      log_error("Storing a batch failed", {{"ERROR", s.error()},
                                           {"COUNT", std::to_string(pending_.size())}});
      store_error_ = s.error();
    } else {
      store_error_.reset();
      for (std::size_t i = 0; i < pending_.size(); ++i) {
        metrics_.deltas_stored(pending_[i].type).inc();
        if (journal_) journal_->append(pending_[i], ids_[i], created_at);
      }
    }
    pending_.clear();
    if (config_.storage.max_deltas > 0) {
      auto evicted = store_->evict_beyond(static_cast<std::int64_t>(config_.storage.max_deltas));
      if (evicted.ok() && *evicted > 0) {
        log_warning("Memory guard evicted the oldest deltas",
                    {{"EVICTED", std::to_string(*evicted)},
                     {"MAX_DELTAS", std::to_string(config_.storage.max_deltas)}});
      }
    }
  }

  void quarantine(const Rejection& rejection, TimePoint received) {
    // A summarised rejection stands for `count` bad elements of one frame.
    metrics_.messages_rejected(rejection.reason).inc(rejection.count);
    auto& last = last_reject_log_[rejection.reason];
    auto now = SteadyClock::now();
    // One line per kind per minute keeps a flood of bad frames out of the journal;
    // the counter and the quarantine table keep every one.
    if (last == SteadyClock::time_point{} || now - last > std::chrono::minutes(1)) {
      last = now;
      log_warning("Frame rejected and quarantined",
                  {{"REASON", rejection.reason}, {"DETAIL", rejection.detail}});
    }
    auto s = store_->quarantine(
        {format_timestamp(received), rejection.reason, rejection.detail, rejection.raw});
    if (!s.ok()) log_error("Quarantine insert failed", {{"ERROR", s.error()}});
  }

  void record_event(const StreamEvent& event) {
    if (auto s = store_->record_event(event); !s.ok()) {
      log_error("Recording a stream event failed", {{"ERROR", s.error()}});
    }
  }

  // --- the journal -------------------------------------------------------------

  void schedule_journal_flush() {
    journal_timer_.expires_after(config_.storage.journal_fsync_interval);
    journal_timer_.async_wait([this](const boost::system::error_code& ec) {
      if (ec || stopping_) return;
      journal_->flush();
      schedule_journal_flush();
    });
  }

  void on_journal_written(const JournalWrite& write) {
    journal_bytes_ = write.file_bytes;
    metrics_.journal_bytes().set(static_cast<double>(write.file_bytes));
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

  // --- snapshots ----------------------------------------------------------------

  void schedule_snapshot() {
    snapshot_timer_.expires_after(config_.storage.snapshot_interval);
    snapshot_timer_.async_wait([this](const boost::system::error_code& ec) {
      if (ec || stopping_) return;
      start_snapshot("timer");
      schedule_snapshot();
    });
  }

  // A forked child writes the file from the database as it is at fork(); this
  // thread pauses only for the fork and goes on storing deltas. The worker
  // waits for the child.
  void start_snapshot(const char* why) {
    if (!config_.storage.enabled) {
      log_warning("Snapshot requested but storage is off");
      return;
    }
    if (snapshot_running_) {
      snapshot_again_ = true;  // waiters registered now are answered by that one
      return;
    }
    flush_pending();
    auto started = SteadyClock::now();
    auto child = SnapshotChild::start(config_.storage.path, [this](const std::string& temp) {
      return store_->write_copy(temp);
    });
    if (!child.ok()) {
      snapshot_failed(child.error());
      answer_waiters(std::exchange(snapshot_waiters_, {}), Error{child.error()}, 0, 0);
      return;
    }
    metrics_.snapshot_pause().observe(seconds_since(started));
    snapshot_running_ = true;
    waiters_in_flight_ = std::exchange(snapshot_waiters_, {});
    // The child's copy holds everything journaled so far: those records can go
    // once it is durable.
    std::uint64_t segment = journal_ ? journal_->rotate() : 0;
    std::shared_ptr<SnapshotChild> running = std::move(child.value());
    // The guard keeps io_.run() going while only the worker has something to do.
    asio::post(worker_, [this, running, started, why, segment, work = asio::make_work_guard(io_)] {
      auto status = running->wait(kMaxSnapshotTime);
      asio::post(io_, [this, status, started, why, segment] {
        on_snapshot_written(status, started, why, segment);
      });
    });
  }

  void answer_waiters(std::vector<std::function<void(Status, std::uint64_t, double)>> waiters,
                      const Status& status, std::uint64_t bytes, double seconds) {
    for (auto& done : waiters) done(status, bytes, seconds);
  }

  void on_snapshot_written(const Status& status, SteadyClock::time_point started, const char* why,
                           std::uint64_t segment) {
    snapshot_running_ = false;
    auto size = status.ok() ? file_size(config_.storage.path) : 0;
    double seconds = seconds_since(started);
    if (status.ok()) {
      if (journal_) journal_->drop_through(segment);
      snapshot_succeeded(seconds);
      log_debug("Database snapshot saved", {{"DB_PATH", config_.storage.path},
                                            {"SIZE", std::to_string(size)},
                                            {"DURATION_MS", std::to_string(seconds * 1000)},
                                            {"TRIGGER", why}});
    } else {
      snapshot_failed(status.error());
    }
    answer_waiters(std::exchange(waiters_in_flight_, {}), status, size, seconds);
    if (on_snapshot_idle_) {
      std::exchange(on_snapshot_idle_, nullptr)();
    } else if (snapshot_again_) {
      snapshot_again_ = false;
      start_snapshot("queued");
    }
  }

  void snapshot_succeeded(double seconds) {
    if (last_snapshot_error_) log_info("Snapshots succeed again", {{"DB_PATH", config_.storage.path}});
    last_snapshot_error_.reset();
    last_snapshot_at_ = format_timestamp(now_millis());
    metrics_.snapshot_duration().observe(seconds);
    metrics_.snapshot_last_success().set(
        std::chrono::duration<double>(Clock::now().time_since_epoch()).count());
    metrics_.database_file_bytes().set(static_cast<double>(file_size(config_.storage.path)));
  }

  void snapshot_failed(const std::string& error) {
    metrics_.snapshot_failures().inc();
    log_error("Snapshot failed; the previous file is kept and the snapshot retried",
              {{"DB_PATH", config_.storage.path}, {"ERROR", error}});
    last_snapshot_error_ = error;
  }

  // Blocks this thread: only for start-up and the final snapshot.
  Status write_snapshot_now() {
    std::uint64_t segment = journal_ ? journal_->rotate() : 0;
    auto status = write_snapshot_file(config_.storage.path, [this](const std::string& temp) {
      return store_->write_copy(temp);
    });
    if (status.ok() && journal_) journal_->drop_through(segment);
    return status;
  }

  // --- retention and status -----------------------------------------------------

  void schedule_retention() {
    retention_timer_.expires_after(next_midnight_utc(now_millis()) - now_millis());
    retention_timer_.async_wait([this](const boost::system::error_code& ec) {
      if (ec || stopping_) return;
      flush_pending();
      auto deleted = apply_retention(*store_, now_millis(), config_.retention.days);
      if (!deleted.ok()) log_error("Retention cleanup failed", {{"ERROR", deleted.error()}});
      if (deleted.ok()) metrics_.cleanup_deleted().inc(static_cast<std::uint64_t>(*deleted));
      if (deleted.ok() && *deleted > 0) start_snapshot("retention");
      schedule_retention();
    });
  }

  // Gauges and the STATUS= line, once a second.
  void update_status() {
    auto counts_deltas = store_->delta_count();
    metrics_.delta_count().set(static_cast<double>(counts_deltas));
    std::string text = client_ && client_->connected()
                           ? "Connected"
                           : "Stream down, retrying" +
                                 (last_disconnect_.empty() ? "" : " (" + last_disconnect_ + ")");
    text += "; " + std::to_string(counts_deltas) + " deltas stored";
    if (!config_.storage.enabled) {
      text += "; storage off";
    } else if (last_snapshot_error_) {
      text += "; snapshots failing";
    } else if (last_snapshot_at_) {
      text += "; last snapshot " + *last_snapshot_at_;
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
          fresh->http.listen != config_.http.listen) {
        log_warning("Storage path, storage on/off, journal on/off and the HTTP listener change "
                    "only at restart; keeping the running values");
        fresh->storage.path = config_.storage.path;
        fresh->storage.enabled = config_.storage.enabled;
        fresh->storage.journal = config_.storage.journal;
        fresh->http.listen = config_.http.listen;
      }
      config_ = std::move(fresh.value());
      init_logging(config_.log);
      if (stream_changed) {
        log_info("Stream settings changed; reconnecting", {{"URL", display_url()}});
        client_->reconfigure(config_.stream);
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
    journal_timer_.cancel();
    status_timer_.cancel();
    signals_.cancel();
    if (http_) http_->stop();
    // Frames still being parsed are stored before the final snapshot.
    client_->stop([this] {
      parse_thread_.drain([this] {
        batch_timer_.cancel();
        flush_pending();
        if (snapshot_running_) {
          on_snapshot_idle_ = [this] { finish_stop(); };
        } else {
          finish_stop();
        }
      });
    });
  }

  void finish_stop() {
    notifier_.stop_watchdog();
    if (config_.storage.enabled) {
      auto started = SteadyClock::now();
      if (auto s = write_snapshot_now(); !s.ok()) {
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
  asio::io_context io_;
  asio::thread_pool worker_{1};  // waits for snapshot children
  asio::signal_set signals_;
  asio::steady_timer snapshot_timer_;
  asio::steady_timer retention_timer_;
  asio::steady_timer batch_timer_;
  asio::steady_timer journal_timer_;
  asio::steady_timer status_timer_;
  ServiceNotifier notifier_;
  ParseThread parse_thread_;
  Metrics metrics_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<Journal> journal_;  // after store_: destroyed first, flushing its buffer
  std::unique_ptr<WebSocketClient> client_;
  std::unique_ptr<HttpApi> http_;

  std::vector<Delta> pending_;
  std::vector<std::int64_t> ids_;
  bool batch_scheduled_ = false;
  std::map<std::string, SteadyClock::time_point> last_reject_log_;
  std::string last_disconnect_;

  bool snapshot_running_ = false;
  bool snapshot_again_ = false;
  std::vector<std::function<void(Status, std::uint64_t, double)>> snapshot_waiters_;
  std::vector<std::function<void(Status, std::uint64_t, double)>> waiters_in_flight_;
  std::function<void()> on_snapshot_idle_;
  std::optional<std::string> last_snapshot_at_;
  std::optional<std::string> last_snapshot_error_;

  std::size_t replayed_ = 0;
  std::uint64_t journal_bytes_ = 0;
  std::optional<std::string> journal_error_;
  std::optional<std::string> store_error_;  // the last batch could not be stored

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
