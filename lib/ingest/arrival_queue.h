// ArrivalQueue: the hand-off between the stream lane and the store lane,
// bounded by bytes (design.md, "Threads: three lanes").
//
// The stream lane push()es what each frame or connection event became, in
// arrival order; the store lane take()s it in the same order. The bound is
// soft: a push is never refused (what was read is never dropped), but once the
// queue holds `capacity_bytes` or more, push() says so and the stream lane stops
// reading. take() says when the stream lane may read again: once the queue is
// back under half the capacity, so that reading does not start and stop at
// every frame.
//
// Wake-ups: push() returns wake_store_lane = true when the store lane has no
// take() pending (the queue was idle); the pusher then schedules one. take()
// keeps that "pending" state while items remain (the store lane schedules
// itself again) and clears it when it empties the queue.
//
// Threads: one producer (the stream lane) and one consumer (the store lane);
// every method is safe to call from either.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>
#include <vector>

#include "base/counters.h"
#include "base/delta.h"
#include "base/timestamp.h"
#include "ingest/parser.h"
#include "storage/store.h"

namespace deltatap {

// What one frame or connection event became on the stream lane.
struct Arrival {
  TimePoint received{};
  std::vector<StoredDelta> deltas;        // ids and created_at assigned, journaled
  std::vector<Rejection> rejections;      // for quarantine
  std::optional<StreamEvent> event;       // connected, disconnected, oversized...
  std::optional<LiveSessionList> reconcile;  // the backend's live sessions, journaled
  std::string disconnect_reason;          // with a disconnected event: for /readyz
  std::size_t bytes() const;              // what it holds, roughly, for the bound
};

class ArrivalQueue {
 public:
  // `queue_bytes` is kept equal to bytes() for the metrics page.
  ArrivalQueue(std::uint64_t capacity_bytes, Gauge& queue_bytes);

  struct Pushed {
    bool wake_store_lane = false;  // schedule a take() on the store lane
    bool full = false;             // stop reading; take() will say when to resume
  };
  Pushed push(Arrival arrival);

  struct Taken {
    std::vector<Arrival> arrivals;  // oldest first
    bool more = false;              // items remain: schedule another take()
    bool resume_reading = false;    // the stream lane was stopped and may read again
  };
  // At most `max_deltas` deltas' worth of arrivals, but always at least one
  // arrival when any is queued.
  Taken take(std::size_t max_deltas);

  std::uint64_t bytes() const;
  void set_capacity(std::uint64_t capacity_bytes);

 private:
  mutable std::mutex mutex_;
  std::deque<Arrival> items_;
  std::uint64_t bytes_ = 0;
  std::uint64_t capacity_;
  bool take_pending_ = false;
  bool reading_stopped_ = false;
  Gauge& queue_bytes_;
};

}  // namespace deltatap
