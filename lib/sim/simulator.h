// Simulator: a stand-in for the Jules Control Room backend's WebSocket broadcast,
// for demos, tests and benchmarks (spec/wire-formats.md). It speaks like the
// real backend: bearer subprotocol auth (401 / 426), pings that drop a client
// which left the previous one unanswered, close code 4002 "backpressure" for a
// consumer with more than about 1 MB buffered, and polling only while somebody
// listens.
//
// What it sends is a pure function of the seed (and of --start-time; without
// it, times come from the wall clock): a pool of sessions that are created,
// updated (before = the previous after, byte for byte) and sometimes deleted,
// as format A frames, format B batches or both.
//
// Counting: every delta counts once, however many clients a broadcast reached,
// so --count, the summary line and --record agree exactly. A client that
// connects while the stream runs first gets, in the formats with batches, one
// batch reporting every live session as `created` (the backend's first poll);
// those are deltas too and count like the others. A delta that reached no
// client (its only reader left) is not counted, so a client that reconnects
// gets the rest of --count, never a repeat of what was already sent.
//
// Pace: with --rate 0 a frame goes out when some client has taken the last
// one and its kernel queue has mostly drained, so nobody is cut off for
// reading at full speed; with a rate, frames go out on time and a client
// that falls more than --backpressure-bytes behind is closed with 4002. A
// client that reads nothing at --rate 0 stalls the stream until the ping
// check drops it.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/logging.h"
#include "base/result.h"

namespace deltatap {

enum class SimFormat {
  delta,           // format A: one delta per text frame
  session_update,  // format B: batches, what the backend's code sends
  mixed,           // either, chosen frame by frame
};

struct SimulatorOptions {
  // IP:PORT or [IPv6]:PORT, base/address.h's syntax; port 0 picks a free port.
  std::string listen = "127.0.0.1:3001";
  std::string path = "/ws";               // informational: any path is accepted
  std::string token;                      // "" accepts anybody
  SimFormat format = SimFormat::session_update;
  std::uint64_t count = 0;                // total deltas; 0 = unlimited
  double rate = 0;                        // deltas per second; 0 = as fast as taken
  int sessions = 10;                      // live session pool
  int batch = 20;                         // most deltas in one format B frame
  std::uint64_t seed = 1;
  // ISO 8601: run a simulated clock from here (byte-identical output per
  // seed); unset: timestamps follow the wall clock.
  std::optional<std::string> start_time;
  std::chrono::milliseconds ping_interval{30'000};  // 0 disables pings
  std::uint64_t backpressure_bytes = 1u << 20;
  std::chrono::milliseconds close_timeout{10'000};  // closing handshake limit
  std::string record;                     // "" records nothing
  LogLevel log_level = LogLevel::info;
  bool help = false;                      // --help: print the usage, exit 0
};

// Parses the flags (without argv[0]); the error names the flag, the value and
// what is allowed.
Result<SimulatorOptions> parse_simulator_args(const std::vector<std::string>& args);

extern const char kSimulatorUsage[];

class Simulator {
 public:
  // Opens the record file and binds the listener, so port() is known at once.
  // The summary line goes to `summary_out` (stdout in deltatap-sim).
  static Result<std::unique_ptr<Simulator>> create(SimulatorOptions options,
                                                   std::FILE* summary_out);
  ~Simulator();
  Simulator(const Simulator&) = delete;
  Simulator& operator=(const Simulator&) = delete;

  int port() const;

  // Serves on the calling thread until SIGTERM/SIGINT or stop(), then closes
  // every client with a normal close. Prints the summary line if --count was
  // never reached (or is 0). Returns the exit code.
  int run();

  // Safe from any thread.
  void stop();

 private:
  struct Impl;
  explicit Simulator(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace deltatap
