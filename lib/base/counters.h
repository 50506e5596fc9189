// Counters, gauges and histograms: the values a metric page shows, safe to
// update from any thread. Updating is one relaxed atomic operation, so a lane
// keeps the handles of what it decides and updates them on its hot path; only
// labels that are not known in advance take a lock, and their number is capped
// (past kMaxLabelValues they count under "other") so a flood of odd values
// cannot grow a page without bound.
//
// These know nothing of names or formats: api/metrics.h renders them.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace deltatap {

class Counter {
 public:
  void inc(std::uint64_t n = 1) { value_.fetch_add(n, std::memory_order_relaxed); }
  std::uint64_t value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<std::uint64_t> value_{0};
};

class Gauge {
 public:
  void set(double v) { value_.store(v, std::memory_order_relaxed); }
  void add(double v) { value_.fetch_add(v, std::memory_order_relaxed); }
  double value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0};
};

// Cumulative buckets with fixed upper bounds (seconds for the durations here).
class Histogram {
 public:
  explicit Histogram(std::vector<double> upper_bounds);
  void observe(double value);

  struct Snapshot {
    std::vector<double> upper_bounds;
    std::vector<std::uint64_t> cumulative;  // one per bound, then +Inf
    double sum = 0;
    std::uint64_t count = 0;
  };
  Snapshot snapshot() const;

 private:
  std::vector<double> bounds_;
  std::unique_ptr<std::atomic<std::uint64_t>[]> buckets_;  // per bound, then +Inf
  std::atomic<double> sum_{0};
  std::atomic<std::uint64_t> count_{0};
};

// Counters keyed by a label value learnt at run time (a rejection reason, an
// HTTP status). get() returns a handle that stays valid for the object's life.
class LabelledCounters {
 public:
  static constexpr std::size_t kMaxLabelValues = 64;
  Counter& get(std::string_view label);
  // Visits every (label, value) in the order the labels were first seen.
  void for_each(const std::function<void(const std::string&, std::uint64_t)>& visit) const;

 private:
  mutable std::mutex mutex_;
  std::vector<std::pair<std::string, std::unique_ptr<Counter>>> entries_;
};

}  // namespace deltatap
