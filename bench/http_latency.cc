// bench_http_latency: the same three questions as bench_store_query, asked of a
// running deltatapd over HTTP on one keep-alive connection.
//
//   bench_http_latency --port P --sessions S [--iterations K]
//   bench_http_latency --port P --analytics 1 [--iterations K]
//
// GET /api/deltas/s-NNNNNN?limit=100 (random typical session),
// GET /api/deltas/hot?limit=100 and GET /api/deltas?limit=100, K times each
// after a warm-up; the time is from writing the request to having read the
// whole answer. Prints one JSON line.
// With --analytics 1, instead: the three analytics answers over the last 30
// days (GET /api/analytics/durations?since=30d, approvals and heatmap with
// tz=Europe/Berlin), K times each: "30d" counts back from each request's now,
// so the window's edges fall inside quarter hours, as a user's would.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "bench.h"

namespace {

using namespace deltatap::bench;

[[noreturn]] void fail(const std::string& what) {
  std::fprintf(stderr, "bench_http_latency: %s\n", what.c_str());
  std::exit(1);
}

std::vector<double> time_requests(HttpClient& client, std::int64_t iterations,
                                  const std::function<std::string()>& next_target) {
  std::vector<double> samples;
  samples.reserve(static_cast<std::size_t>(iterations));
  for (std::int64_t i = 0; i < iterations + 100; ++i) {
    std::string target = next_target();
    auto started = SteadyClock::now();
    auto response = client.get(target);
    auto finished = SteadyClock::now();
    if (response.status != 200) {
      fail(target + ": status " + std::to_string(response.status) + " " + response.error +
           response.body.substr(0, 200));
    }
    if (i >= 100) samples.push_back(micros_between(started, finished));
  }
  return samples;
}

}  // namespace

int main(int argc, char** argv) {
  std::int64_t port = 0, sessions = 0, iterations = 0, analytics = 0;
  {
    Args args(argc, argv);
    port = args.number("port", 0);
    sessions = args.number("sessions", 0);
    iterations = args.number("iterations", 2'000);
    analytics = args.number("analytics", 0);
  }
  if (port <= 0 || (sessions <= 0 && analytics == 0)) {
    fail("usage: --port P (--sessions S | --analytics 1) [--iterations K]");
  }
  HttpClient client(static_cast<int>(port));
  if (analytics != 0) {
    auto durations = time_requests(client, iterations,
                                   [] { return "/api/analytics/durations?since=30d"; });
    auto approvals = time_requests(client, iterations, [] {
      return "/api/analytics/approvals?since=30d&tz=Europe/Berlin";
    });
    auto heatmap = time_requests(client, iterations, [] {
      return "/api/analytics/heatmap?since=30d&tz=Europe/Berlin";
    });
    JsonLine()
        .add("durations", summarize(durations))
        .add("approvals", summarize(approvals))
        .add("heatmap", summarize(heatmap))
        .print();
    return 0;
  }
  std::mt19937_64 random(11);
  std::uniform_int_distribution<std::int64_t> pick(0, sessions - 1);
  auto typical = time_requests(client, iterations, [&] {
    char target[64];
    std::snprintf(target, sizeof target, "/api/deltas/s-%06lld?limit=100",
                  static_cast<long long>(pick(random)));
    return std::string(target);
  });
  auto hot = time_requests(client, iterations, [] { return "/api/deltas/hot?limit=100"; });
  auto global = time_requests(client, iterations, [] { return "/api/deltas?limit=100"; });
  JsonLine()
      .add("typical", summarize(typical))
      .add("hot", summarize(hot))
      .add("global", summarize(global))
      .print();
}
