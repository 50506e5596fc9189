#include "ingest/stream_lane.h"

#include <pthread.h>

#include <boost/asio/post.hpp>

#include "base/logging.h"

namespace deltatap {

namespace asio = boost::asio;

StreamLane::StreamLane(StreamLaneOptions options, ArrivalQueue& queue, Journal* journal,
                       IngestMetrics& metrics, std::function<void()> wake_store_lane)
    : options_(std::move(options)),
      queue_(queue),
      journal_(journal),
      metrics_(metrics),
      wake_store_lane_(std::move(wake_store_lane)),
      log_each_delta_(options_.log_each_delta),
      work_(asio::make_work_guard(io_)),
      journal_timer_(io_),
      next_id_(options_.last_id + 1) {
  reconciler_ = std::make_unique<Reconciler>(
      io_, options_.stream, options_.reconciler, std::move(options_.live_sessions), metrics_,
      [this](std::int64_t count) {
        auto first = next_id_;
        next_id_ += count;
        return first;
      },
      [this](LiveSessionList list, std::vector<Rejection> rejections) {
        on_live_sessions(std::move(list), std::move(rejections));
      });
  StreamEvents events;
  events.on_connected = [this](const std::string& url) {
    Arrival arrival;
    arrival.received = now_millis();
    arrival.event = StreamEvent{format_timestamp(arrival.received), "connected", url, 0, ""};
    push(std::move(arrival));
    reconciler_->on_connected();
  };
  events.on_text = [this](std::string_view text, TimePoint received) { on_text(text, received); };
  events.on_binary = [this](std::string_view data, TimePoint received) {
    Arrival arrival;
    arrival.received = received;
    arrival.rejections.push_back(binary_frame_rejection(data));
    push(std::move(arrival));
  };
  events.on_disconnected = [this](const Disconnect& d) {
    reconciler_->on_disconnected();
    if (!stopping_) metrics_.reconnects.inc();
    std::string reason = d.reason.empty() ? d.error : d.reason;
    if (d.http_status) reason = "HTTP " + std::to_string(d.http_status) + " " + reason;
    bool auth = d.http_status == 401 || d.http_status == 403;
    Arrival arrival;
    arrival.received = now_millis();
    arrival.event = StreamEvent{format_timestamp(arrival.received),
                                auth ? "auth_failed" : "disconnected", display_url(),
                                d.close_code, reason};
    arrival.disconnect_reason = reason;
    push(std::move(arrival));
  };
  events.on_oversized = [this](std::uint64_t) {
    auto limit = std::to_string(options_.stream.max_message_bytes);
    Arrival arrival;
    arrival.received = now_millis();
    arrival.event = StreamEvent{format_timestamp(arrival.received), "oversized", display_url(), 1009,
                                "frame above " + limit + " bytes"};
    push(std::move(arrival));
  };
  client_ = std::make_unique<WebSocketClient>(io_, options_.stream, std::move(events));
}

StreamLane::~StreamLane() {
  asio::post(io_, [this] {
    reconciler_.reset();  // its fetch and timer belong to this thread too
    client_.reset();  // destroyed on its own thread, as the client requires
    journal_timer_.cancel();
    work_.reset();
  });
  if (thread_.joinable()) thread_.join();
}

void StreamLane::start() {
  thread_ = std::thread([this] {
    ::pthread_setname_np(::pthread_self(), "deltatap-stream");
    io_.run();
  });
  asio::post(io_, [this] {
    client_->start();
    if (journal_) schedule_journal_flush();
  });
}

void StreamLane::stop(std::function<void()> done) {
  asio::post(io_, [this, done = std::move(done)]() mutable {
    stopping_ = true;
    reconciler_->stop();
    client_->stop([this, done = std::move(done)] {
      journal_timer_.cancel();
      if (journal_) journal_->flush();
      done();
    });
  });
}

void StreamLane::reconfigure(const StreamOptions& options) {
  asio::post(io_, [this, options] {
    options_.stream = options;
    reconciler_->reconfigure(options);
    client_->reconfigure(options);
  });
}

void StreamLane::resume_reading() {
  asio::post(io_, [this] { client_->resume_reading(); });
}

std::string StreamLane::display_url() const {
  auto url = parse_stream_url(options_.stream.url);
  return url.ok() ? url->display : std::string("(unparseable url)");
}

bool StreamLane::connected() const { return client_ && client_->connected(); }

void StreamLane::on_text(std::string_view text, TimePoint received) {
  ParsedFrame parsed = parse_frame(text, received);
  Arrival arrival;
  arrival.received = received;
  arrival.rejections = std::move(parsed.rejections);
  if (!parsed.deltas.empty()) {
    std::string created_at = format_timestamp(received);
    bool debug = log_each_delta_.load(std::memory_order_relaxed);
    arrival.deltas.reserve(parsed.deltas.size());
    for (auto& delta : parsed.deltas) {
      metrics_.received[IngestMetrics::index(delta.type)].inc();
      if (debug) {
        log_debug("Delta received", {{"SESSION_ID", delta.session_id},
                                     {"DELTA_TYPE", std::string(to_string(delta.type))}});
      }
      arrival.deltas.push_back(StoredDelta{next_id_++, std::move(delta), created_at});
    }
    // Before the hand-off: whatever the store lane does next, the journal has it.
    if (journal_) journal_->append(arrival.deltas);
    reconciler_->on_deltas(arrival.deltas);
  }
  push(std::move(arrival));
}

void StreamLane::on_live_sessions(LiveSessionList list, std::vector<Rejection> rejections) {
  if (stopping_) return;
  Arrival arrival;
  arrival.received = now_millis();
  arrival.rejections = std::move(rejections);
  if (journal_) journal_->append(list);
  arrival.reconcile = std::move(list);
  push(std::move(arrival));
}

void StreamLane::push(Arrival arrival) {
  auto pushed = queue_.push(std::move(arrival));
  if (pushed.full) {
    // Reading stops after this frame; the store lane resumes it once the
    // queue is half empty. Nothing read is lost; the backend may cut us off.
    client_->pause_reading();
    metrics_.queue_full.inc();
    log_warning("The queue to the store is full; reading the stream pauses until it drains",
                {{"QUEUE_BYTES", std::to_string(queue_.bytes())},
                 {"BUFFER", std::to_string(options_.stream.buffer_bytes)}});
  }
  if (pushed.wake_store_lane) wake_store_lane_();
}

void StreamLane::schedule_journal_flush() {
  journal_timer_.expires_after(options_.journal_fsync_interval);
  journal_timer_.async_wait([this](const boost::system::error_code& ec) {
    if (ec || stopping_) return;
    journal_->flush();
    schedule_journal_flush();
  });
}

}  // namespace deltatap
