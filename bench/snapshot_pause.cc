// bench_snapshot_pause: how long a snapshot stalls a running deltatapd, seen
// from outside.
//
//   bench_snapshot_pause --port P [--snapshots N] [--interval-us U] [--settle-ms M]
//
// The daemon's one io thread reads the stream, stores deltas and answers HTTP,
// so while it is blocked (serializing the database) it answers nothing. A
// probe thread asks GET /healthz every U microseconds on its own connection;
// the main thread waits M ms (the baseline), then asks POST /api/snapshot N
// times, M ms apart. A probe that overlaps a snapshot and takes long is the
// pause; probes before the first snapshot are the baseline of the same run.
// Prints one JSON line.
#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "bench.h"

namespace {

using namespace deltatap::bench;

[[noreturn]] void fail(const std::string& what) {
  std::fprintf(stderr, "bench_snapshot_pause: %s\n", what.c_str());
  std::exit(1);
}

struct Interval {
  SteadyClock::time_point start, end;
  double micros() const { return micros_between(start, end); }
  bool overlaps(const Interval& other) const { return start < other.end && other.start < end; }
};

double number_after(const std::string& body, const std::string& key) {
  auto at = body.find("\"" + key + "\":");
  if (at == std::string::npos) return 0;
  return std::strtod(body.c_str() + at + key.size() + 3, nullptr);
}

}  // namespace

int main(int argc, char** argv) {
  std::int64_t port = 0, snapshots = 0, interval_us = 0, settle_ms = 0;
  {
    Args args(argc, argv);
    port = args.number("port", 0);
    snapshots = args.number("snapshots", 3);
    interval_us = args.number("interval-us", 1000);
    settle_ms = args.number("settle-ms", 2000);
  }
  if (port <= 0 || snapshots <= 0) fail("usage: --port P [--snapshots N] [--interval-us U] [--settle-ms M]");

  std::vector<Interval> probes;
  std::atomic<bool> stop{false};
  std::string probe_error;
  std::thread prober([&] {
    HttpClient client(static_cast<int>(port));
    auto next = SteadyClock::now();
    while (!stop.load()) {
      Interval probe{SteadyClock::now(), {}};
      auto response = client.get("/healthz");
      probe.end = SteadyClock::now();
      if (response.status != 200) {
        probe_error = "healthz: " + std::to_string(response.status) + " " + response.error;
        return;
      }
      probes.push_back(probe);
      next += std::chrono::microseconds(interval_us);
      if (next < probe.end) next = probe.end;  // a late probe does not cause a burst
      std::this_thread::sleep_until(next);
    }
  });

  const auto settle = std::chrono::milliseconds(settle_ms);
  std::this_thread::sleep_for(settle);
  HttpClient client(static_cast<int>(port));
  std::vector<Interval> windows;
  std::vector<double> reported_seconds;
  double bytes = 0;
  for (std::int64_t i = 0; i < snapshots; ++i) {
    Interval window{SteadyClock::now(), {}};
    auto response = client.request("POST", "/api/snapshot");
    window.end = SteadyClock::now();
    if (response.status != 200) {
      stop = true;
      prober.join();
      fail("snapshot: " + std::to_string(response.status) + " " + response.error + response.body);
    }
    windows.push_back(window);
    reported_seconds.push_back(number_after(response.body, "seconds"));
    bytes = number_after(response.body, "bytes");
    std::this_thread::sleep_for(settle);
  }
  stop = true;
  prober.join();
  if (!probe_error.empty()) fail(probe_error);

  std::vector<double> baseline, during;
  // Where in its snapshot the longest probe began (ms after the request):
  // near 0 is the fork, near the snapshot's length its end.
  double longest = 0, longest_at_ms = 0, longest_window_ms = 0;
  for (const auto& probe : probes) {
    if (probe.end <= windows.front().start) {
      baseline.push_back(probe.micros());
      continue;
    }
    for (const auto& window : windows) {
      if (!probe.overlaps(window)) continue;
      during.push_back(probe.micros());
      if (probe.micros() > longest) {
        longest = probe.micros();
        longest_at_ms = micros_between(window.start, probe.start) / 1000;
        longest_window_ms = window.micros() / 1000;
      }
      break;
    }
  }
  std::vector<double> durations;
  for (const auto& window : windows) durations.push_back(window.micros());
  JsonLine()
      .add("snapshots", snapshots)
      .add("bytes", bytes)
      .add("snapshot", summarize(durations))
      .add("reported_seconds_max", *std::max_element(reported_seconds.begin(), reported_seconds.end()))
      .add("probe_baseline", summarize(baseline))
      .add("probe_during", summarize(during))
      .add("longest_probe_at_ms", longest_at_ms)
      .add("longest_probe_window_ms", longest_window_ms)
      .print();
}
