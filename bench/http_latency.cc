// bench_http_latency: the same three questions as bench_store_query, asked of a
// running deltatapd over HTTP on one keep-alive connection.
//
//   bench_http_latency --port P --sessions S [--iterations K]
//
// GET /api/deltas/s-NNNNNN?limit=100 (random typical session),
// GET /api/deltas/hot?limit=100 and GET /api/deltas?limit=100, K times each
// after a warm-up; the time is from writing the request to having read the
// whole answer. Prints one JSON line.
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
  std::int64_t port = 0, sessions = 0, iterations = 0;
  {
    Args args(argc, argv);
    port = args.number("port", 0);
    sessions = args.number("sessions", 0);
    iterations = args.number("iterations", 2'000);
  }
  if (port <= 0 || sessions <= 0) fail("usage: --port P --sessions S [--iterations K]");
  HttpClient client(static_cast<int>(port));
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
