// sim_args: the command line of deltatap-sim. parse_simulator_args() and
// kSimulatorUsage are declared in simulator.h, the public interface. --listen
// is judged by base/address.h's parser, the one the daemon's listeners use too;
// Simulator::create() runs it again on a SimulatorOptions built in code.
//
// Pure functions without state: any thread.
#include "sim/simulator.h"

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <iterator>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/address.h"
#include "base/duration.h"
#include "base/json_text.h"
#include "base/logging.h"
#include "base/timestamp.h"

namespace deltatap {

namespace {

std::optional<std::uint64_t> parse_u64(std::string_view text) {
  std::uint64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

std::optional<double> parse_decimal(std::string_view text) {
  double value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size() ||
      !std::isfinite(value) || value < 0) {
    return std::nullopt;
  }
  return value;
}

// RFC 7230 token characters: what a subprotocol name may hold.
bool is_token(std::string_view text) {
  if (text.empty()) return false;
  for (unsigned char c : text) {
    if (c <= 0x20 || c >= 0x7f || std::strchr("()<>@,;:\\\"/[]?={}", c) != nullptr) return false;
  }
  return true;
}

}  // namespace

using namespace std::chrono_literals;

const char kSimulatorUsage[] =
    R"(Usage: deltatap-sim [OPTIONS]
A simulated Jules Control Room backend: a WebSocket server that broadcasts
realistic session deltas to every connected client, for demos, tests and
benchmarks. On the same port it answers GET /api/sessions, as the backend does,
with every live session's current state (each with its "id"), in the shape
--sessions-shape names; with --token the request needs "Authorization: Bearer
T" (else 401). Any other plain HTTP request gets 404, with a JSON error.

Logs go to stderr; stdout carries one JSON summary line, printed when --count
deltas are done (or at exit when that never happened), with these keys: sent
(deltas that reached at least one client), by_type (sent, by type), frames
(the frames that carried them), connections (WebSocket clients accepted),
restarts (simulated restarts, --restart-every), restart_disconnects (clients
those restarts closed), reannounced (created deltas of first polls, which
report live sessions again; part of sent), unseen_deltas (deltas made upstream
that reached no client: made while nobody was connected, with --lossy, or
broadcast only to clients that left before taking them; not part of sent) and
live_sessions (live sessions upstream when the line was printed).

  --listen IP:PORT        where to listen (default 127.0.0.1:3001; an IPv6 address
                          in brackets, [::1]:3001); port 0 picks a free port,
                          logged as "listening on IP:PORT"
  --path PATH             the path clients are expected to use (default /ws); any
                          path is accepted, as the backend does, and logged
  --token T               require the subprotocol "bearer.T": a wrong or missing
                          token gets 401, no subprotocol at all 426 (default: none)
  --format F              delta (format A, one delta per frame), session_update
                          (format B batches; the default) or mixed
  --count N               deltas to send in all, across every connection and
                          reconnection; 0 = no limit (default). With --lossy, the
                          deltas that reached nobody count too
  --rate N[/s]            deltas per second; 0 = as fast as the clients take them
                          (default)
  --sessions K            live sessions in the pool (default 10)
  --batch N               most deltas in one session_update frame (default 20)
  --seed S                seed of the session histories (default 1)
  --start-time ISO        run a simulated clock from this time (each delta a
                          seeded 0.02-1.5 s later); the same seed and start time
                          give byte-identical deltas. Default: the wall clock
                          (same sessions and changes, real times)
  --ping-interval SECS    ping every SECS seconds and drop a client that left the
                          previous ping unanswered (default 30; 0 = no pings)
  --backpressure-bytes N  close a client with 4002 "backpressure" when more than N
                          bytes are buffered for it (default 1048576)
  --record FILE           append every delta sent, one JSON line each:
                          {"type","sessionId","before","after","timestamp"}
  --restart-every D       restart, as the backend can, every D (a duration such as
                          500ms, 3s or 5m; 0 = never, the default): close every
                          client with 1012 "service restart"; the first poll once
                          a client is back reports every live session as created,
                          in its current state (format A: a frame each, else one
                          batch). The sessions keep their state: they live
                          upstream. No restarts once --count deltas are done
  --lossy                 lose what happens while no client listens, as the
                          backend does: the sessions keep changing at --rate
                          (which must be above 0) with nobody connected, and a
                          client gets only what happens after it connects (the
                          first client since the start or a restart also gets the
                          first poll, which re-announces the live sessions).
                          Without it the sessions wait for a client, and a client
                          that reconnects gets the rest, after a first poll of its
                          own in the batch formats
  --sessions-shape S      the body of GET /api/sessions: list, {"sessions":[...]}
                          (default), or array, a bare [...]
  --log-level L           debug, info, warning or error (default info)
  --help                  print this text

Exit status: 0 after SIGTERM or SIGINT, 1 on a runtime error, 2 on bad options.
)";

Status check_simulator_options(const SimulatorOptions& options) {
  if (options.lossy && !(options.rate > 0)) {
    return Error{"--lossy needs --rate above 0: with --rate 0 the clients set the pace, and "
                 "with no client there would be none"};
  }
  if (options.restart_every.count() < 0 ||
      (options.restart_every.count() > 0 && options.restart_every < kMinRestartEvery)) {
    return Error{"--restart-every: " + format_duration(options.restart_every) +
                 " is not valid; expected 0 (never) or at least " +
                 format_duration(kMinRestartEvery)};
  }
  return ok_status();
}

Result<SimulatorOptions> parse_simulator_args(const std::vector<std::string>& args) {
  SimulatorOptions options;
  for (std::size_t i = 0; i < args.size(); ++i) {
    std::string flag = args[i];
    std::optional<std::string> inline_value;
    if (auto eq = flag.find('='); flag.starts_with("--") && eq != std::string::npos) {
      inline_value = flag.substr(eq + 1);
      flag.resize(eq);
    }
    if (flag == "--help" || flag == "-h") {
      options.help = true;
      continue;
    }
    if (flag == "--lossy") {
      if (inline_value) return Error{"--lossy takes no value"};
      options.lossy = true;
      continue;
    }
    auto value_of = [&]() -> Result<std::string> {
      if (inline_value) return *inline_value;
      if (i + 1 >= args.size()) return Error{flag + " needs a value"};
      return args[++i];
    };
    auto bad = [&](const std::string& value, std::string_view allowed) {
      return Error{flag + ": " + json_quoted(value) + " is not valid; expected " +
                   std::string(allowed)};
    };
    if (!flag.starts_with("--")) return Error{"unexpected argument " + json_quoted(flag)};
    static constexpr std::string_view kKnown[] = {
        "--listen", "--path",           "--token",           "--format",   "--count",
        "--rate",   "--sessions",       "--batch",           "--seed",     "--start-time",
        "--ping-interval", "--backpressure-bytes", "--record", "--log-level",
        "--restart-every", "--sessions-shape",
    };
    if (std::find(std::begin(kKnown), std::end(kKnown), flag) == std::end(kKnown)) {
      return Error{"unknown option " + flag};
    }
    auto value_result = value_of();
    if (!value_result.ok()) return Error{value_result.error()};
    std::string value = std::move(value_result.value());

    if (flag == "--listen") {
      // base/address.h's message quotes the value and says what is expected.
      if (auto where = parse_listen_address(value); !where.ok()) {
        return Error{flag + ": " + where.error()};
      }
      options.listen = value;
    } else if (flag == "--path") {
      if (!value.starts_with("/")) return bad(value, "a path starting with /");
      options.path = value;
    } else if (flag == "--token") {
      if (!value.empty() && !is_token("bearer." + value)) {
        return bad(value, "a token without spaces, commas or other separators");
      }
      options.token = value;
    } else if (flag == "--format") {
      if (value == "delta") {
        options.format = SimFormat::delta;
      } else if (value == "session_update") {
        options.format = SimFormat::session_update;
      } else if (value == "mixed") {
        options.format = SimFormat::mixed;
      } else {
        return bad(value, "delta, session_update or mixed");
      }
    } else if (flag == "--count") {
      auto n = parse_u64(value);
      if (!n) return bad(value, "a whole number, 0 for no limit");
      options.count = *n;
    } else if (flag == "--rate") {
      std::string_view number = value;
      if (number.ends_with("/s")) number.remove_suffix(2);
      auto n = parse_decimal(number);
      if (!n) return bad(value, "deltas per second, a number >= 0 (0 = no limit)");
      options.rate = *n;
    } else if (flag == "--sessions") {
      auto n = parse_u64(value);
      if (!n || *n < 1 || *n > 100'000) return bad(value, "a number from 1 to 100000");
      options.sessions = static_cast<int>(*n);
    } else if (flag == "--batch") {
      auto n = parse_u64(value);
      if (!n || *n < 1 || *n > 100'000) return bad(value, "a number from 1 to 100000");
      options.batch = static_cast<int>(*n);
    } else if (flag == "--seed") {
      auto n = parse_u64(value);
      if (!n) return bad(value, "a whole number");
      options.seed = *n;
    } else if (flag == "--start-time") {
      auto parsed = parse_timestamp(value);
      if (!parsed.ok()) return bad(value, "an ISO 8601 date-time (" + parsed.error() + ")");
      options.start_time = value;
    } else if (flag == "--ping-interval") {
      auto seconds = parse_decimal(value);
      if (!seconds || *seconds > 86'400) return bad(value, "seconds from 0 to 86400 (0 = no pings)");
      options.ping_interval = std::chrono::milliseconds(std::llround(*seconds * 1000));
      if (*seconds > 0 && options.ping_interval.count() == 0) options.ping_interval = 1ms;
    } else if (flag == "--backpressure-bytes") {
      auto n = parse_u64(value);
      if (!n || *n < 1024) return bad(value, "a number of bytes, at least 1024");
      options.backpressure_bytes = *n;
    } else if (flag == "--record") {
      if (value.empty()) return bad(value, "a file name");
      options.record = value;
    } else if (flag == "--restart-every") {
      if (value == "0") {
        options.restart_every = std::chrono::milliseconds(0);
      } else {
        auto every = parse_duration(value);
        if (!every.ok()) return Error{flag + ": " + every.error() + "; 0 means never"};
        if (*every < kMinRestartEvery) {
          return bad(value, "0 (never) or at least " + format_duration(kMinRestartEvery));
        }
        options.restart_every = *every;
      }
    } else if (flag == "--sessions-shape") {
      if (value == "list") {
        options.sessions_shape = SimSessionsShape::list;
      } else if (value == "array") {
        options.sessions_shape = SimSessionsShape::array;
      } else {
        return bad(value, "list or array");
      }
    } else if (flag == "--log-level") {
      if (value == "debug") {
        options.log_level = LogLevel::debug;
      } else if (value == "info") {
        options.log_level = LogLevel::info;
      } else if (value == "warning") {
        options.log_level = LogLevel::warning;
      } else if (value == "error") {
        options.log_level = LogLevel::error;
      } else {
        return bad(value, "debug, info, warning or error");
      }
    }
  }
  // After every flag: these rules join two of them, in any order.
  if (auto checked = check_simulator_options(options); !checked.ok()) {
    return Error{checked.error()};
  }
  return options;
}

}  // namespace deltatap
