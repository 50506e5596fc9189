// Metrics: the daemon's counters, gauges and histograms, rendered in the
// Prometheus text exposition format (version 0.0.4). Every name of deltatap's
// own is prefixed "deltatap_"; the process's figures keep the names every
// Prometheus client library gives them (process_resident_memory_bytes,
// process_cpu_seconds_total, process_open_fds, process_max_fds,
// process_start_time_seconds, process_virtual_memory_bytes), unprefixed, so
// the usual process dashboards and alerts work on deltatap unchanged. They are
// read from /proc/self at scrape time; the start time once, at construction.
//
// Every labelled counter shows each label value it is known to take from the
// start, at 0 (design.md, "Metrics"): the rejection reasons of
// known_rejection_reasons() and the statuses of kHttpStatusCodes. A rate() or
// an increase() over a series that appears only with its first event misses
// that event, and an alert on it cannot tell "none" from "not scraped".
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

// The quarantine reason of a journal record that may not be replayed (the
// start-up replay of service/service.cc counts it under this label).
inline constexpr std::string_view kJournalRecordRejection = "invalid_journal_record";
// Every reason deltatap_messages_rejected_total is known to take: the
// parser's kRejectionReasons (binary_frame and too_large among them), then
// kJournalRecordRejection.
std::vector<std::string_view> known_rejection_reasons();

// Every status the HTTP API answers with: 200; 400 bad parameter or malformed
// request; 401 without the token; 403 a POST refused; 404 no endpoint; 405
// wrong method; 409 storage disabled; 413 request too large; 500 a failed
// query, snapshot or cleanup; 503 not ready or too many connections. A slow
// client is disconnected, never answered (no 408).
inline constexpr std::array<int, 10> kHttpStatusCodes = {200, 400, 401, 403, 404,
                                                         405, 409, 413, 500, 503};

// What a query-duration observation measured (the "query" label).
enum class QueryKind { deltas, sessions, stats, export_page, cleanup, check, analytics };
inline constexpr std::size_t kQueryKinds = 7;
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

  // What the configuration allows, for alerts to compare against; whoever
  // applies the configuration sets them (the service: at start and at each
  // reload). Until set they show 0, which the shipped alerts read as "off".
  // Seconds between timed snapshots; 0 when storage (and so snapshots) is off.
  Gauge& snapshot_interval() { return snapshot_interval_; }
  // The memory guard, [storage] max_deltas; 0: no limit.
  Gauge& store_max_deltas() { return store_max_deltas_; }
  // Bytes the queue between the lanes holds before reading stops, [stream] buffer.
  Gauge& stream_queue_capacity() { return stream_queue_capacity_; }

  Gauge& database_memory_bytes() { return memory_bytes_; }
  Gauge& database_file_bytes() { return file_bytes_; }
  Gauge& delta_count() { return delta_count_; }
  Counter& cleanup_deleted() { return cleanup_deleted_; }
  // Deltas moved into archive files by retention (storage/archive.h).
  Counter& archive_deltas() { return archive_deltas_; }
  // Sessions the ledger holds as live (set at scrape time from the store).
  Gauge& sessions_live() { return sessions_live_; }
  Gauge& journal_bytes() { return journal_bytes_; }
  // The PostgreSQL sink (sinks/postgres_sink.h): deltas not yet sent, failed attempts.
  Gauge& postgres_lag_deltas() { return postgres_lag_deltas_; }
  // [storage] compression: encoded / JSON bytes of the states encoded since
  // start (0 before any, and with compression off).
  Gauge& compression_ratio() { return compression_ratio_; }
  Counter& postgres_errors() { return postgres_errors_; }

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
  Gauge snapshot_interval_, store_max_deltas_, stream_queue_capacity_;
  Gauge memory_bytes_, file_bytes_, delta_count_, journal_bytes_;
  Gauge sessions_live_;
  Counter cleanup_deleted_;
  Counter archive_deltas_;
  std::array<std::unique_ptr<Histogram>, kQueryKinds> query_duration_;
  LabelledCounters http_requests_;
  Gauge start_time_;
  // process_start_time_seconds: from /proc/self/stat and CLOCK_BOOTTIME, read
  // once (it cannot change); start_time_ when /proc cannot tell.
  double process_start_time_ = 0;
  Gauge postgres_lag_deltas_;
  Gauge compression_ratio_;
  Counter postgres_errors_;
};

}  // namespace deltatap
