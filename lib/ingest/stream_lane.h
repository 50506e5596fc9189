// StreamLane: the thread that reads the backend's broadcast and never waits on
// anything else (design.md, "Threads: three lanes").
//
// It owns its own io_context and thread, the WebSocket client, and the id
// counter. For every frame, on this thread: parse it, give each delta the next
// id and its created_at (the receive time), append the deltas to the journal's
// buffer (memory only; the journal's worker writes and syncs), and push the
// result onto the ArrivalQueue for the store lane. Connection events travel the
// same queue, so the store lane records them in arrival order, and so do the
// backend's lists of live sessions, fetched after every connect (reconciler.h)
// and journaled like frames. Pings are
// answered and closes noticed here, whatever the store lane is doing.
//
// It never touches SQLite. It stops reading only when the queue is full (and
// says so: a warning and deltatap_stream_queue_full_total), and reads again
// when the store lane calls resume_reading().
//
// Threads: construct and destroy on the store lane's thread; every public
// method may be called from any thread (each posts to the lane). Callbacks
// given to the constructor run on the stream lane's thread.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include "ingest/arrival_queue.h"
#include "ingest/ingest_metrics.h"
#include "ingest/reconciler.h"
#include "storage/journal.h"
#include "stream/stream_options.h"
#include "stream/websocket_client.h"

namespace deltatap {

struct StreamLaneOptions {
  StreamOptions stream;
  std::int64_t last_id = 0;  // the store's highest id: the first delta gets last_id + 1
  std::vector<std::string> live_sessions;  // the ledger's, for the reconciler (reconciler.h)
  ReconcilerOptions reconciler;
  std::chrono::milliseconds journal_fsync_interval{100};
  bool log_each_delta = false;  // a debug line per delta (log level debug)
};

class StreamLane {
 public:
  // `journal` may be null (storage or the journal off); it must outlive the
  // lane. `wake_store_lane` is called (on this lane) when the queue, idle until
  // now, has something for the store lane: it should schedule a take().
  StreamLane(StreamLaneOptions options, ArrivalQueue& queue, Journal* journal,
             IngestMetrics& metrics, std::function<void()> wake_store_lane);
  // Stops the thread; call stop() first for a clean close.
  ~StreamLane();
  StreamLane(const StreamLane&) = delete;
  StreamLane& operator=(const StreamLane&) = delete;

  // Starts the thread and the connection.
  void start();
  // Closes the connection normally, hands the journal what it buffered, and
  // then runs `done` on the stream lane's thread. Nothing is pushed after it.
  void stop(std::function<void()> done);
  // New stream options (SIGHUP): reconnects when they differ.
  void reconfigure(const StreamOptions& options);
  void set_log_each_delta(bool on) { log_each_delta_ = on; }
  // The store lane made room in the queue.
  void resume_reading();
  bool connected() const;

 private:
  void on_text(std::string_view text, TimePoint received);
  void push(Arrival arrival);
  void on_live_sessions(LiveSessionList list, std::vector<Rejection> rejections);
  void schedule_journal_flush();
  std::string display_url() const;  // the URL as it may be logged and stored

  StreamLaneOptions options_;
  ArrivalQueue& queue_;
  Journal* journal_;
  IngestMetrics& metrics_;
  std::function<void()> wake_store_lane_;
  std::atomic<bool> log_each_delta_;

  boost::asio::io_context io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_;
  boost::asio::steady_timer journal_timer_;
  std::unique_ptr<WebSocketClient> client_;
  std::unique_ptr<Reconciler> reconciler_;
  std::int64_t next_id_;  // stream lane only
  bool stopping_ = false;  // stream lane only
  std::thread thread_;
};

}  // namespace deltatap
