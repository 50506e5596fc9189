#include "ingest/arrival_queue.h"

namespace deltatap {

namespace {

// A vector's element costs its size even when its strings are short.
std::size_t delta_bytes(const StoredDelta& row) {
  const auto& d = row.delta;
  return sizeof(StoredDelta) + d.session_id.size() + d.timestamp.size() + row.created_at.size() +
         (d.before ? d.before->size() : 0) + (d.after ? d.after->size() : 0);
}

}  // namespace

std::size_t Arrival::bytes() const {
  std::size_t total = sizeof(Arrival) + disconnect_reason.size();
  for (const auto& row : deltas) total += delta_bytes(row);
  for (const auto& r : rejections) total += sizeof(Rejection) + r.raw.size() + r.detail.size();
  if (event) total += event->url.size() + event->reason.size();
  if (reconcile) {
    for (const auto& session : reconcile->sessions) {
      total += sizeof(LiveSession) + session.session_id.size() + session.state.size();
    }
    for (const auto& id : reconcile->keep) total += sizeof(std::string) + id.size();
  }
  return total;
}

ArrivalQueue::ArrivalQueue(std::uint64_t capacity_bytes, Gauge& queue_bytes)
    : capacity_(capacity_bytes), queue_bytes_(queue_bytes) {}

ArrivalQueue::Pushed ArrivalQueue::push(Arrival arrival) {
  std::lock_guard lock(mutex_);
  Pushed pushed;
  bytes_ += arrival.bytes();
  items_.push_back(std::move(arrival));
  queue_bytes_.set(static_cast<double>(bytes_));
  if (!take_pending_) {
    take_pending_ = true;
    pushed.wake_store_lane = true;
  }
  if (bytes_ >= capacity_ && !reading_stopped_) {
    reading_stopped_ = true;
    pushed.full = true;
  }
  return pushed;
}

ArrivalQueue::Taken ArrivalQueue::take(std::size_t max_deltas) {
  std::lock_guard lock(mutex_);
  Taken taken;
  std::size_t deltas = 0;
  while (!items_.empty()) {
    auto& next = items_.front();
    if (!taken.arrivals.empty() && deltas + next.deltas.size() > max_deltas) break;
    deltas += next.deltas.size();
    bytes_ -= next.bytes();
    taken.arrivals.push_back(std::move(next));
    items_.pop_front();
  }
  queue_bytes_.set(static_cast<double>(bytes_));
  taken.more = !items_.empty();
  take_pending_ = taken.more;
  if (reading_stopped_ && bytes_ < capacity_ / 2) {
    reading_stopped_ = false;
    taken.resume_reading = true;
  }
  return taken;
}

std::uint64_t ArrivalQueue::bytes() const {
  std::lock_guard lock(mutex_);
  return bytes_;
}

void ArrivalQueue::set_capacity(std::uint64_t capacity_bytes) {
  std::lock_guard lock(mutex_);
  capacity_ = capacity_bytes;
}

}  // namespace deltatap
