// Metrics: the daemon's counters, gauges and histograms, rendered in the
// Prometheus text exposition format (version 0.0.4), every name prefixed
// "deltatap_".
//
// The service owns one Metrics object; nothing here is global. Each metric the
// design names has an accessor returning a stable reference, so a hot path can
// keep the handle (or call the accessor: for a fixed label set such as the delta
// type it is an array index, never a map lookup). Updating a value is one
// relaxed atomic operation, so a worker thread may update too; only labels that
// are not known in advance (rejection reasons, HTTP status codes) take a lock,
// and their number is capped so a flood of odd values cannot grow the page
// without bound (past the cap they count under "other").
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "base/delta.h"

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

// What a query-duration observation measured (the "query" label).
enum class QueryKind { deltas, sessions, stats, export_page, cleanup, check };
inline constexpr std::size_t kQueryKinds = 6;
std::string_view to_string(QueryKind kind);

class Metrics {
 public:
  Metrics();
  ~Metrics();
  Metrics(const Metrics&) = delete;
  Metrics& operator=(const Metrics&) = delete;

  // Deltas that came off the stream and parsed, and those the store accepted.
  Counter& deltas_received(DeltaType type) { return received_[index(type)]; }
  Counter& deltas_stored(DeltaType type) { return stored_[index(type)]; }
  // Frames or batch entries sent to quarantine, by the parser's short reason.
  Counter& messages_rejected(std::string_view reason);

  Gauge& websocket_connected() { return connected_; }           // 1 while connected
  Counter& websocket_reconnects() { return reconnects_; }

  Histogram& snapshot_duration() { return snapshot_duration_; }  // seconds, successes
  // How long the event loop stood still to start a snapshot (the fork).
  Histogram& snapshot_pause() { return snapshot_pause_; }  // seconds
  Counter& snapshot_failures() { return snapshot_failures_; }
  Gauge& snapshot_last_success() { return snapshot_last_success_; }  // Unix seconds

  Gauge& database_memory_bytes() { return memory_bytes_; }
  Gauge& database_file_bytes() { return file_bytes_; }
  Gauge& delta_count() { return delta_count_; }
  Counter& cleanup_deleted() { return cleanup_deleted_; }
  Gauge& journal_bytes() { return journal_bytes_; }

  Histogram& query_duration(QueryKind kind) { return *query_duration_[static_cast<std::size_t>(kind)]; }
  Counter& http_requests(int status);

  // The whole page in the text exposition format.
  std::string render() const;

 private:
  static std::size_t index(DeltaType type) { return static_cast<std::size_t>(type); }

  // Counters keyed by a label value learnt at run time.
  struct LabelledCounters {
    mutable std::mutex mutex;
    std::vector<std::pair<std::string, std::unique_ptr<Counter>>> entries;
    Counter& get(std::string_view label);
  };

  std::array<Counter, 3> received_, stored_;
  LabelledCounters rejected_;
  Gauge connected_;
  Counter reconnects_;
  Histogram snapshot_duration_;
  Histogram snapshot_pause_;
  Counter snapshot_failures_;
  Gauge snapshot_last_success_;
  Gauge memory_bytes_, file_bytes_, delta_count_, journal_bytes_;
  Counter cleanup_deleted_;
  std::array<std::unique_ptr<Histogram>, kQueryKinds> query_duration_;
  LabelledCounters http_requests_;
  Gauge start_time_;
};

}  // namespace deltatap
