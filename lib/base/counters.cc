#include "base/counters.h"

#include <algorithm>

namespace deltatap {

Histogram::Histogram(std::vector<double> upper_bounds)
    : bounds_(std::move(upper_bounds)),
      buckets_(new std::atomic<std::uint64_t>[bounds_.size() + 1]) {
  std::sort(bounds_.begin(), bounds_.end());
  for (std::size_t i = 0; i <= bounds_.size(); ++i) buckets_[i].store(0);
}

void Histogram::observe(double value) {
  // Buckets are stored non-cumulatively so an observation touches one of them.
  auto at = std::lower_bound(bounds_.begin(), bounds_.end(), value) - bounds_.begin();
  buckets_[at].fetch_add(1, std::memory_order_relaxed);
  sum_.fetch_add(value, std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
}

Histogram::Snapshot Histogram::snapshot() const {
  Snapshot snap;
  snap.upper_bounds = bounds_;
  std::uint64_t running = 0;
  for (std::size_t i = 0; i <= bounds_.size(); ++i) {
    running += buckets_[i].load(std::memory_order_relaxed);
    snap.cumulative.push_back(running);
  }
  snap.sum = sum_.load(std::memory_order_relaxed);
  // The count is the +Inf bucket, so the page is self-consistent even while
  // another thread observes.
  snap.count = running;
  return snap;
}

Counter& LabelledCounters::get(std::string_view label) {
  std::lock_guard lock(mutex_);
  for (auto& [name, counter] : entries_) {
    if (name == label) return *counter;
  }
  // One slot stays free for "other", so the family never exceeds the cap:
  // reasons and status codes come from a small set, but a bug upstream must
  // not turn a page into an unbounded list.
  if (entries_.size() >= kMaxLabelValues - 1) label = "other";
  for (auto& [name, counter] : entries_) {
    if (name == label) return *counter;
  }
  entries_.emplace_back(std::string(label), std::make_unique<Counter>());
  return *entries_.back().second;
}

void LabelledCounters::for_each(
    const std::function<void(const std::string&, std::uint64_t)>& visit) const {
  std::lock_guard lock(mutex_);
  for (const auto& [name, counter] : entries_) visit(name, counter->value());
}

}  // namespace deltatap
