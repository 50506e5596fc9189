#include "api/metrics.h"

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>

namespace deltatap {

namespace {

// Snapshots of an in-memory database take milliseconds to a few seconds.
std::vector<double> snapshot_buckets() {
  return {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};
}

// Queries on the in-memory store: tens of microseconds to a slow full scan.
std::vector<double> query_buckets() {
  return {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5};
}

void append_number(std::string& out, double value) {
  if (std::isnan(value)) {
    out += "NaN";
    return;
  }
  if (std::isinf(value)) {
    out += value > 0 ? "+Inf" : "-Inf";
    return;
  }
  char buffer[32];
  auto [end, ec] = std::to_chars(buffer, buffer + sizeof buffer, value);
  out.append(buffer, ec == std::errc() ? end : buffer);
}

void append_number(std::string& out, std::uint64_t value) { out += std::to_string(value); }

// Label values escape backslash, double quote and newline (exposition format).
void append_label_value(std::string& out, std::string_view value) {
  for (char c : value) {
    switch (c) {
      case '\\': out += "\\\\"; break;
      case '"': out += "\\\""; break;
      case '\n': out += "\\n"; break;
      default: out += c;
    }
  }
}

void append_header(std::string& out, std::string_view name, std::string_view type,
                   std::string_view help) {
  out += "# HELP deltatap_";
  out += name;
  out += ' ';
  out += help;
  out += "\n# TYPE deltatap_";
  out += name;
  out += ' ';
  out += type;
  out += '\n';
}

struct Label {
  std::string_view name;
  std::string_view value;
};

template <typename Number>
void append_sample(std::string& out, std::string_view name, std::initializer_list<Label> labels,
                   Number value) {
  out += "deltatap_";
  out += name;
  if (labels.size() > 0) {
    out += '{';
    bool first = true;
    for (const auto& label : labels) {
      if (!first) out += ',';
      first = false;
      out += label.name;
      out += "=\"";
      append_label_value(out, label.value);
      out += '"';
    }
    out += '}';
  }
  out += ' ';
  append_number(out, value);
  out += '\n';
}

void append_histogram(std::string& out, std::string_view name, std::string_view label_name,
                      std::string_view label_value, const Histogram& histogram) {
  auto snap = histogram.snapshot();
  std::string bucket = std::string(name) + "_bucket";
  std::string le;
  for (std::size_t i = 0; i <= snap.upper_bounds.size(); ++i) {
    le.clear();
    if (i < snap.upper_bounds.size()) append_number(le, snap.upper_bounds[i]); else le = "+Inf";
    if (label_name.empty()) {
      append_sample(out, bucket, {{"le", le}}, snap.cumulative[i]);
    } else {
      append_sample(out, bucket, {{label_name, label_value}, {"le", le}}, snap.cumulative[i]);
    }
  }
  std::string sum = std::string(name) + "_sum", count = std::string(name) + "_count";
  if (label_name.empty()) {
    append_sample(out, sum, {}, snap.sum);
    append_sample(out, count, {}, snap.count);
  } else {
    append_sample(out, sum, {{label_name, label_value}}, snap.sum);
    append_sample(out, count, {{label_name, label_value}}, snap.count);
  }
}

constexpr DeltaType kTypes[] = {DeltaType::created, DeltaType::updated, DeltaType::deleted};

}  // namespace

std::string_view to_string(QueryKind kind) {
  switch (kind) {
    case QueryKind::deltas: return "deltas";
    case QueryKind::sessions: return "sessions";
    case QueryKind::stats: return "stats";
    case QueryKind::export_page: return "export_page";
    case QueryKind::cleanup: return "cleanup";
    case QueryKind::check: return "check";
  }
  return "unknown";
}

Metrics::Metrics() : snapshot_duration_(snapshot_buckets()), snapshot_pause_(query_buckets()) {
  for (auto& histogram : query_duration_) histogram = std::make_unique<Histogram>(query_buckets());
  auto now = std::chrono::system_clock::now().time_since_epoch();
  start_time_.set(std::chrono::duration<double>(now).count());
}

Metrics::~Metrics() = default;

Counter& Metrics::messages_rejected(std::string_view reason) { return ingest_.rejected.get(reason); }

Counter& Metrics::http_requests(int status) { return http_requests_.get(std::to_string(status)); }

std::string Metrics::render() const {
  std::string out;
  out.reserve(8192);

  append_header(out, "deltas_received_total", "counter",
                "Deltas parsed from the stream, by type.");
  for (auto type : kTypes) {
    append_sample(out, "deltas_received_total", {{"type", to_string(type)}},
                  ingest_.received[index(type)].value());
  }
  append_header(out, "deltas_stored_total", "counter", "Deltas written to the store, by type.");
  for (auto type : kTypes) {
    append_sample(out, "deltas_stored_total", {{"type", to_string(type)}},
                  ingest_.stored[index(type)].value());
  }

  append_header(out, "messages_rejected_total", "counter",
                "Frames or batch entries sent to quarantine, by reason.");
  ingest_.rejected.for_each([&](const std::string& reason, std::uint64_t value) {
    append_sample(out, "messages_rejected_total", {{"reason", reason}}, value);
  });

  append_header(out, "websocket_connected", "gauge",
                "1 while the broadcast stream is connected, else 0.");
  append_sample(out, "websocket_connected", {}, connected_.value());
  append_header(out, "websocket_reconnects_total", "counter",
                "Connections to the stream after the first one.");
  append_sample(out, "websocket_reconnects_total", {}, ingest_.reconnects.value());
  append_header(out, "stream_queue_bytes", "gauge",
                "Bytes of received deltas waiting between the stream lane and the store lane.");
  append_sample(out, "stream_queue_bytes", {}, ingest_.queue_bytes.value());
  append_header(out, "stream_queue_full_total", "counter",
                "Times the queue between the lanes was full and the stream lane stopped reading.");
  append_sample(out, "stream_queue_full_total", {}, ingest_.queue_full.value());

  append_header(out, "snapshot_duration_seconds", "histogram",
                "Time to copy the database and durably write a snapshot file.");
  append_histogram(out, "snapshot_duration_seconds", {}, {}, snapshot_duration_);
  append_header(out, "snapshot_pause_seconds", "histogram",
                "Time frame handling stood still to start a snapshot (fork).");
  append_histogram(out, "snapshot_pause_seconds", {}, {}, snapshot_pause_);
  append_header(out, "snapshot_failures_total", "counter",
                "Snapshots that failed; the previous file was kept.");
  append_sample(out, "snapshot_failures_total", {}, snapshot_failures_.value());
  append_header(out, "snapshot_last_success_timestamp_seconds", "gauge",
                "Unix time of the last snapshot that reached the disk, 0 if none yet.");
  append_sample(out, "snapshot_last_success_timestamp_seconds", {}, snapshot_last_success_.value());

  append_header(out, "database_memory_bytes", "gauge", "Size of the in-memory database.");
  append_sample(out, "database_memory_bytes", {}, memory_bytes_.value());
  append_header(out, "database_file_bytes", "gauge", "Size of the snapshot file on disk.");
  append_sample(out, "database_file_bytes", {}, file_bytes_.value());
  append_header(out, "store_deltas", "gauge", "Deltas currently held in the store.");
  append_sample(out, "store_deltas", {}, delta_count_.value());
  append_header(out, "cleanup_deleted_total", "counter",
                "Deltas deleted by retention and cleanup requests.");
  append_sample(out, "cleanup_deleted_total", {}, cleanup_deleted_.value());
  append_header(out, "journal_bytes", "gauge", "Size of the write-ahead journal on disk.");
  append_sample(out, "journal_bytes", {}, journal_bytes_.value());

  append_header(out, "query_duration_seconds", "histogram",
                "Time the store took to answer a query, by kind.");
  for (std::size_t i = 0; i < kQueryKinds; ++i) {
    append_histogram(out, "query_duration_seconds", "query",
                     to_string(static_cast<QueryKind>(i)), *query_duration_[i]);
  }

  append_header(out, "http_requests_total", "counter", "HTTP API requests answered, by status.");
  http_requests_.for_each([&](const std::string& status, std::uint64_t value) {
    append_sample(out, "http_requests_total", {{"code", status}}, value);
  });

  append_header(out, "start_time_seconds", "gauge", "Unix time the daemon started.");
  append_sample(out, "start_time_seconds", {}, start_time_.value());
  return out;
}

}  // namespace deltatap
