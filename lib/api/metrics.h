// Metrics: the daemon's counters, gauges and histograms, rendered in the
// Prometheus text exposition format (version 0.0.4), every name prefixed
// "deltatap_".
//
// The service owns one Metrics object; nothing here is global. Each metric the
// design names has an accessor returning a stable reference, so a hot path can
// keep the handle (or call the accessor: for a fixed label set such as the delta
// type it is an array index, never a map lookup). The values are the thread-safe
// primitives of base/counters.h. What the ingest lanes decide lives in an
// IngestMetrics (ingest/ingest_metrics.h) that they are handed alone; this page
// only reads it.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "base/counters.h"
#include "base/delta.h"
#include "ingest/ingest_metrics.h"

namespace deltatap {

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
  Counter& deltas_received(DeltaType type) { return ingest_.received[index(type)]; }
  Counter& deltas_stored(DeltaType type) { return ingest_.stored[index(type)]; }
  // Frames or batch entries sent to quarantine, by the parser's short reason.
  Counter& messages_rejected(std::string_view reason);

  Gauge& websocket_connected() { return connected_; }          // 1 while connected
  Counter& websocket_reconnects() { return ingest_.reconnects; }
  // What the two ingest lanes decide (they see only this part, not the page).
  IngestMetrics& ingest() { return ingest_; }

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

  IngestMetrics ingest_;
  Gauge connected_;
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
