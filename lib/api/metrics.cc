#include "api/metrics.h"

#include <dirent.h>
#include <time.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <limits>
#include <optional>

#include "ingest/parser.h"

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

// deltatap's own names; the process_* family goes without (see metrics.h).
constexpr std::string_view kPrefix = "deltatap_";

void append_header(std::string& out, std::string_view name, std::string_view type,
                   std::string_view help, std::string_view prefix = kPrefix) {
  out += "# HELP ";
  out += prefix;
  out += name;
  out += ' ';
  out += help;
  out += "\n# TYPE ";
  out += prefix;
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
                   Number value, std::string_view prefix = kPrefix) {
  out += prefix;
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

// --- The process, from /proc/self --------------------------------------------

// A small procfs file whole ("" when unreadable): one read() per call, no stream.
std::string read_proc_file(const char* path) {
  std::string text;
  int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return text;
  char buffer[1024];
  while (text.size() < 64 * 1024) {
    ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    text.append(buffer, static_cast<std::size_t>(n));
  }
  ::close(fd);
  return text;
}

// The fields of /proc/self/stat after the command name, which is in
// parentheses and may hold spaces and parentheses itself: fields()[0] is
// field 3 of proc(5) (state), so field N is fields()[N - 3]. They are views
// into `text`, which must outlive them (hence no temporaries).
std::vector<std::string_view> stat_fields(const std::string& text) {
  std::string_view stat = text;
  std::vector<std::string_view> fields;
  auto paren = stat.rfind(')');
  if (paren == std::string_view::npos) return fields;
  stat.remove_prefix(paren + 1);
  while (!stat.empty()) {
    auto start = stat.find_first_not_of(" \n");
    if (start == std::string_view::npos) break;
    stat.remove_prefix(start);
    auto end = stat.find_first_of(" \n");
    fields.push_back(stat.substr(0, end));
    if (end == std::string_view::npos) break;
    stat.remove_prefix(end);
  }
  return fields;
}

std::vector<std::string_view> stat_fields(std::string&&) = delete;

std::optional<double> stat_field(const std::vector<std::string_view>& fields, std::size_t field) {
  if (field < 3 || field - 3 >= fields.size()) return std::nullopt;
  auto text = fields[field - 3];
  std::uint64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return static_cast<double>(value);
}

// proc(5) fields of /proc/[pid]/stat.
constexpr std::size_t kUtime = 14, kStime = 15, kStarttime = 22, kVsize = 23, kRss = 24;

double clock_ticks() {
  long ticks = ::sysconf(_SC_CLK_TCK);
  return ticks > 0 ? static_cast<double>(ticks) : 100.0;
}

// Unix time the process started: its start in clock ticks since boot
// (/proc/self/stat) taken back from now by CLOCK_BOOTTIME, which counts from
// the same boot. Not /proc/stat's "btime" that the client libraries add it to:
// the unit's ProcSubset=pid hides /proc/stat.
std::optional<double> read_process_start_time() {
  auto stat = read_proc_file("/proc/self/stat");  // the fields are views into it
  auto start_ticks = stat_field(stat_fields(stat), kStarttime);
  timespec boot{};
  if (!start_ticks || ::clock_gettime(CLOCK_BOOTTIME, &boot) != 0) return std::nullopt;
  double since_boot = static_cast<double>(boot.tv_sec) + static_cast<double>(boot.tv_nsec) / 1e9;
  double now = std::chrono::duration<double>(
                   std::chrono::system_clock::now().time_since_epoch()).count();
  return now - (since_boot - *start_ticks / clock_ticks());
}

// The soft limit of open files, as /proc/self/limits has it (getrlimit() is
// prlimit64 to glibc, which the unit's system call filter may refuse).
std::optional<double> read_max_fds() {
  auto limits = read_proc_file("/proc/self/limits");
  constexpr std::string_view kLine = "Max open files";
  auto at = limits.find(kLine);
  if (at == std::string::npos) return std::nullopt;
  std::string_view rest = std::string_view(limits).substr(at + kLine.size());
  auto start = rest.find_first_not_of(' ');
  if (start == std::string_view::npos) return std::nullopt;
  rest.remove_prefix(start);
  rest = rest.substr(0, rest.find(' '));
  if (rest == "unlimited") return std::numeric_limits<double>::infinity();
  std::uint64_t value = 0;
  auto [end, ec] = std::from_chars(rest.data(), rest.data() + rest.size(), value);
  if (ec != std::errc() || end != rest.data() + rest.size()) return std::nullopt;
  return static_cast<double>(value);
}

// Open descriptors: the entries of /proc/self/fd but the one reading it.
std::optional<double> count_open_fds() {
  DIR* dir = ::opendir("/proc/self/fd");
  if (!dir) return std::nullopt;
  int own = ::dirfd(dir);
  double count = 0;
  while (const dirent* entry = ::readdir(dir)) {
    if (entry->d_name[0] == '.') continue;
    int fd = 0;
    auto [end, ec] = std::from_chars(entry->d_name, entry->d_name + std::strlen(entry->d_name), fd);
    if (ec == std::errc() && fd == own) continue;
    ++count;
  }
  ::closedir(dir);
  return count;
}

void append_process_metrics(std::string& out, double start_time) {
  constexpr std::string_view kNoPrefix;
  auto stat = read_proc_file("/proc/self/stat");  // the fields are views into it
  auto fields = stat_fields(stat);
  auto utime = stat_field(fields, kUtime), stime = stat_field(fields, kStime);
  if (utime && stime) {
    append_header(out, "process_cpu_seconds_total", "counter",
                  "Total user and system CPU time spent in seconds.", kNoPrefix);
    append_sample(out, "process_cpu_seconds_total", {}, (*utime + *stime) / clock_ticks(), kNoPrefix);
  }
  if (auto rss = stat_field(fields, kRss)) {
    append_header(out, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.",
                  kNoPrefix);
    append_sample(out, "process_resident_memory_bytes", {},
                  *rss * static_cast<double>(::sysconf(_SC_PAGESIZE)), kNoPrefix);
  }
  if (auto vsize = stat_field(fields, kVsize)) {
    append_header(out, "process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.",
                  kNoPrefix);
    append_sample(out, "process_virtual_memory_bytes", {}, *vsize, kNoPrefix);
  }
  if (auto open_fds = count_open_fds()) {
    append_header(out, "process_open_fds", "gauge", "Number of open file descriptors.", kNoPrefix);
    append_sample(out, "process_open_fds", {}, *open_fds, kNoPrefix);
  }
  if (auto max_fds = read_max_fds()) {
    append_header(out, "process_max_fds", "gauge", "Maximum number of open file descriptors.",
                  kNoPrefix);
    append_sample(out, "process_max_fds", {}, *max_fds, kNoPrefix);
  }
  append_header(out, "process_start_time_seconds", "gauge",
                "Start time of the process since unix epoch in seconds.", kNoPrefix);
  append_sample(out, "process_start_time_seconds", {}, start_time, kNoPrefix);
}

}  // namespace

std::vector<std::string_view> known_rejection_reasons() {
  std::vector<std::string_view> reasons(kRejectionReasons.begin(), kRejectionReasons.end());
  reasons.push_back(kJournalRecordRejection);
  return reasons;
}

std::string_view to_string(QueryKind kind) {
  switch (kind) {
    case QueryKind::deltas: return "deltas";
    case QueryKind::sessions: return "sessions";
    case QueryKind::stats: return "stats";
    case QueryKind::export_page: return "export_page";
    case QueryKind::cleanup: return "cleanup";
    case QueryKind::check: return "check";
    case QueryKind::analytics: return "analytics";
  }
  return "unknown";
}

Metrics::Metrics() : snapshot_duration_(snapshot_buckets()), snapshot_pause_(query_buckets()) {
  for (auto& histogram : query_duration_) histogram = std::make_unique<Histogram>(query_buckets());
  auto now = std::chrono::system_clock::now().time_since_epoch();
  start_time_.set(std::chrono::duration<double>(now).count());
  process_start_time_ = read_process_start_time().value_or(start_time_.value());
  // Each known label at 0, in this order, before any event can add its own.
  for (auto reason : known_rejection_reasons()) ingest_.rejected.get(reason);
  for (int status : kHttpStatusCodes) http_requests_.get(std::to_string(status));
  for (auto type : kTypes) ingest_.reconciled.get(to_string(type));
  for (auto cause : {"unreachable", "timed_out", "http_status", "too_large", "tls", "bad_body",
                     "not_found"}) {
    ingest_.reconcile_failures.get(cause);
  }
}

Metrics::~Metrics() = default;

Counter& Metrics::messages_rejected(std::string_view reason) { return ingest_.rejected.get(reason); }

Counter& Metrics::http_requests(int status) { return http_requests_.get(std::to_string(status)); }

std::string Metrics::render() const {
  std::string out;
  out.reserve(16384);

  append_header(out, "build_info", "gauge",
                "Always 1; the labels name the build of deltatap that is running.");
  append_sample(out, "build_info", {{"version", DELTATAP_VERSION}}, 1.0);

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

  append_header(out, "gaps_total", "counter",
                "Deltas stored with gap = 1: changes of their session before them were not observed.");
  append_sample(out, "gaps_total", {}, ingest_.gaps.value());
  append_header(out, "resync_echoes_total", "counter",
                "Re-announced sessions (a created for a live session with its last state, a deleted "
                "for an ended one) that stored nothing.");
  append_sample(out, "resync_echoes_total", {}, ingest_.resync_echoes.value());
  append_header(out, "reconciled_deltas_total", "counter",
                "Deltas inferred from the backend's list of live sessions, by change.");
  ingest_.reconciled.for_each([&](const std::string& change, std::uint64_t value) {
    append_sample(out, "reconciled_deltas_total", {{"change", change}}, value);
  });

  append_header(out, "reconcile_failures_total", "counter",
                "Fetches of the backend's live sessions that failed, by cause (not_found turns "
                "reconciliation off until the next start).");
  ingest_.reconcile_failures.for_each([&](const std::string& cause, std::uint64_t value) {
    append_sample(out, "reconcile_failures_total", {{"cause", cause}}, value);
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
  append_header(out, "stream_queue_capacity_bytes", "gauge",
                "Bytes the queue between the lanes holds before the stream lane stops reading "
                "([stream] buffer).");
  append_sample(out, "stream_queue_capacity_bytes", {}, stream_queue_capacity_.value());
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
  append_header(out, "snapshot_interval_seconds", "gauge",
                "Configured time between timed snapshots; 0 when storage is off.");
  append_sample(out, "snapshot_interval_seconds", {}, snapshot_interval_.value());

  append_header(out, "database_memory_bytes", "gauge", "Size of the in-memory database.");
  append_sample(out, "database_memory_bytes", {}, memory_bytes_.value());
  append_header(out, "database_file_bytes", "gauge", "Size of the snapshot file on disk.");
  append_sample(out, "database_file_bytes", {}, file_bytes_.value());
  append_header(out, "store_deltas", "gauge", "Deltas currently held in the store.");
  append_sample(out, "store_deltas", {}, delta_count_.value());
  append_header(out, "sessions_live", "gauge",
                "Sessions the ledger holds as live (their last delta is not a deletion).");
  append_sample(out, "sessions_live", {}, sessions_live_.value());
  append_header(out, "store_max_deltas", "gauge",
                "The memory guard: deltas kept before the oldest are evicted ([storage] "
                "max_deltas); 0 means no limit.");
  append_sample(out, "store_max_deltas", {}, store_max_deltas_.value());
  append_header(out, "compression_ratio", "gauge",
                "[storage] compression: encoded bytes / JSON bytes of the states encoded since "
                "start (0 before any; 0.2 is 5x smaller).");
  append_sample(out, "compression_ratio", {}, compression_ratio_.value());
  append_header(out, "cleanup_deleted_total", "counter",
                "Deltas removed from memory by retention (archived ones included) and cleanup requests.");
  append_sample(out, "cleanup_deleted_total", {}, cleanup_deleted_.value());
  append_header(out, "archive_deltas_total", "counter",
                "Deltas moved into archive files ([retention] archive) since start; retention "
                "counts them in cleanup_deleted_total too, as they left memory.");
  append_sample(out, "archive_deltas_total", {}, archive_deltas_.value());
  append_header(out, "journal_bytes", "gauge", "Size of the write-ahead journal on disk.");
  append_sample(out, "journal_bytes", {}, journal_bytes_.value());
  append_header(out, "postgres_lag_deltas", "gauge",
                "Stored deltas the PostgreSQL sink has not sent yet; 0 without a sink.");
  append_sample(out, "postgres_lag_deltas", {}, postgres_lag_deltas_.value());
  append_header(out, "postgres_errors_total", "counter",
                "Failed PostgreSQL sink attempts (connect, schema or batch), each retried.");
  append_sample(out, "postgres_errors_total", {}, postgres_errors_.value());

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

  append_process_metrics(out, process_start_time_);
  return out;
}

}  // namespace deltatap
