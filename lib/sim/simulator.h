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
// The real backend's habits, on demand (issue 14):
//   - `restart_every`: at each interval the backend "restarts". Every client
//     is closed with 1012 "service restart" (upgrades and plain requests in
//     progress are dropped), and its diff cache starts empty: the first poll
//     after a client connects again reports every live session as `created`,
//     in its current state (format A: one frame per session, timestamped with
//     the clock; otherwise one batch), to every client connected by then. The
//     sessions live upstream, so they keep their state across the restart.
//     Restarts stop once --count is done, so the summary stays true.
//   - `lossy`: what happens upstream while nobody listens is gone. The
//     sessions keep changing at the rate (one is required) with no client
//     connected, and a delta that reached no client uses up --count like a
//     sent one (it is in the summary's unseen_deltas). A client that connects
//     gets only what happens from then on, except for the re-announce of the
//     first poll after a (re)start: the process starting counts as one. No
//     per-client first poll otherwise.
// Without them, behaviour is the above exactly: the sessions wait while
// nobody listens, and a delta that reached no client is given back to --count.
//
// Plain HTTP on the same port (http_api.h): GET /api/sessions answers every
// live session's current state, {"sessions":[...]} or a bare array
// (`sessions_shape`); with a token, "Authorization: Bearer TOKEN" is
// required (401 otherwise). Any other request that is not an upgrade: 404
// (405 for /api/sessions with another method than GET).
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

// The body of GET /api/sessions.
enum class SimSessionsShape {
  list,   // {"sessions":[...]}, the Jules API's list shape
  array,  // a bare [...]
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
  std::chrono::milliseconds restart_every{0};  // a simulated restart; 0 = never
  bool lossy = false;                     // sessions change while nobody listens
  SimSessionsShape sessions_shape = SimSessionsShape::list;
  LogLevel log_level = LogLevel::info;
  bool help = false;                      // --help: print the usage, exit 0
};

// Parses the flags (without argv[0]); the error names the flag, the value and
// what is allowed.
Result<SimulatorOptions> parse_simulator_args(const std::vector<std::string>& args);

// The rules across options that parse_simulator_args() applies after reading
// every flag, and Simulator::create() again for options built in code: --lossy
// needs a rate above 0, --restart-every is 0 or at least kMinRestartEvery.
// The error names the flags.
Status check_simulator_options(const SimulatorOptions& options);

// The shortest --restart-every: a client needs some time to reconnect.
inline constexpr std::chrono::milliseconds kMinRestartEvery{100};

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
  // never reached (or is 0); its keys are listed in kSimulatorUsage. Returns
  // the exit code.
  int run();

  // Safe from any thread.
  void stop();

 private:
  struct Impl;
  explicit Simulator(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace deltatap
