// Bench support: what every benchmark program needs and nothing more.
//
// Flags are "--name value" pairs (or a bare "--name" for a switch); a flag the
// program did not ask about is an error, so a typo never silently benchmarks
// the default. Results go to stdout as one JSON object per line, which
// scripts/bench reads; human-readable progress goes to stderr.
//
// Latencies are kept as raw samples in microseconds and summarised by nearest
// rank, so a p99 is a latency some request really had.
#pragma once

#include <chrono>
#include <ctime>
#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace deltatap::bench {

using SteadyClock = std::chrono::steady_clock;

inline double seconds_since(SteadyClock::time_point start) {
  return std::chrono::duration<double>(SteadyClock::now() - start).count();
}
// CPU time of the calling thread: what a part costs, untouched by whatever
// else the (noisy, 2-core) machine runs meanwhile.
inline double thread_cpu_seconds() {
  timespec now{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now);
  return static_cast<double>(now.tv_sec) + static_cast<double>(now.tv_nsec) * 1e-9;
}

inline double micros_between(SteadyClock::time_point a, SteadyClock::time_point b) {
  return std::chrono::duration<double, std::micro>(b - a).count();
}

class Args {
 public:
  // Exits with status 2 and a message on a malformed command line.
  Args(int argc, char** argv);
  ~Args();  // exits with status 2 if a flag was given that nobody read

  std::string text(const std::string& name, const std::string& fallback = "");
  std::int64_t number(const std::string& name, std::int64_t fallback);
  bool flag(const std::string& name);

 private:
  std::string program_;
  std::map<std::string, std::string> values_;
  std::set<std::string> read_;
};

struct Summary {
  std::size_t count = 0;
  double p50 = 0, p95 = 0, p99 = 0, max = 0, mean = 0;
};
Summary summarize(std::vector<double> samples);

// One JSON object built key by key: {"a":1,"b":"x"}.
class JsonLine {
 public:
  JsonLine& add(std::string_view key, double value);
  JsonLine& add(std::string_view key, std::int64_t value);
  JsonLine& add(std::string_view key, std::string_view value);
  // p50/p95/p99/max/mean (microseconds) under "<prefix>_p50_us" and so on.
  JsonLine& add(std::string_view prefix, const Summary& summary);
  std::string str() const { return "{" + body_ + "}"; }
  void print() const;  // to stdout, with a newline, flushed

 private:
  void key(std::string_view name);
  std::string body_;
};

// This process's peak resident set (VmHWM), in bytes.
std::int64_t peak_rss_bytes();

// A blocking HTTP/1.1 client on one keep-alive loopback connection, the way a
// dashboard polling the API would talk to it. Reconnects if the server closed.
class HttpClient {
 public:
  explicit HttpClient(int port);
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  struct Response {
    int status = 0;  // 0: no answer (the error says why)
    std::string body;
    std::string error;
  };
  Response request(std::string_view method, std::string_view target);
  Response get(std::string_view target) { return request("GET", target); }

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace deltatap::bench
