// deltatap-sim as a process on a real loopback socket, read by a real WebSocket
// client (tests/fixtures/ws_client.py, Python's websockets package): what the
// summary line says, what --record wrote and what the client got must agree;
// auth, reconnects, pings, determinism and backpressure behave like the backend.
#define BOOST_TEST_MODULE simulator
#include <boost/test/unit_test.hpp>

#include <signal.h>

#include <chrono>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "rapidjson/document.h"
#include "test_support.h"

namespace {

using namespace deltatap::testing;
using namespace std::chrono_literals;

const char kPython[] = "/usr/bin/python3";

fs::path client_script() { return source_dir() / "tests" / "fixtures" / "ws_client.py"; }

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

rapidjson::Document parse_json(const std::string& text) {
  rapidjson::Document doc;
  doc.Parse(text.c_str());
  BOOST_TEST_REQUIRE(!doc.HasParseError(), "not JSON: " << text);
  BOOST_TEST_REQUIRE(doc.IsObject(), "not a JSON object: " << text);
  return doc;
}

std::int64_t int_field(const rapidjson::Value& object, const char* name) {
  auto it = object.FindMember(name);
  BOOST_TEST_REQUIRE((it != object.MemberEnd() && it->value.IsInt64()), "no integer " << name);
  return it->value.GetInt64();
}

std::string string_field(const rapidjson::Value& object, const char* name) {
  auto it = object.FindMember(name);
  if (it == object.MemberEnd() || !it->value.IsString()) return "<none>";
  return it->value.GetString();
}

// One deltatap-sim, started on a free port; SIGKILLed if a test forgets it.
class SimProcess {
 public:
  explicit SimProcess(std::vector<std::string> flags) {
    std::vector<std::string> argv{(bin_dir() / "deltatap-sim").string(), "--listen",
                                  "127.0.0.1:0"};
    argv.insert(argv.end(), flags.begin(), flags.end());
    process_.emplace(ProcessOptions{argv});
    std::string marker = "listening on 127.0.0.1:";
    BOOST_TEST_REQUIRE(wait_until([&] { return process_->stderr_contains(marker); }),
                       "no listening line; stderr: " << process_->stderr_text());
    std::string err = process_->stderr_text();
    port_ = std::stoi(err.substr(err.find(marker) + marker.size()));
  }

  Process& process() { return *process_; }
  std::string url(const std::string& path = "/ws") const {
    return "ws://127.0.0.1:" + std::to_string(port_) + path;
  }
  std::vector<std::string> stdout_lines() const { return lines_of(process_->stdout_text()); }

  // The summary line, once it is there.
  rapidjson::Document summary() {
    BOOST_TEST_REQUIRE(wait_until([&] { return !stdout_lines().empty(); }, 20s),
                       "no summary; stderr: " << process_->stderr_text());
    return parse_json(stdout_lines().front());
  }

  int stop() {
    process_->signal(SIGTERM);
    auto code = process_->wait(15s);
    BOOST_TEST_REQUIRE(code.has_value(), "deltatap-sim did not stop on SIGTERM");
    return *code;
  }

 private:
  std::optional<Process> process_;
  int port_ = 0;
};

// Runs the client to its end and returns its result object.
rapidjson::Document run_client(std::vector<std::string> flags) {
  std::vector<std::string> argv{kPython, client_script().string()};
  argv.insert(argv.end(), flags.begin(), flags.end());
  auto result = run_command(argv);
  BOOST_TEST_REQUIRE(result.exit_code == 0, "client failed: " << result.err);
  return parse_json(result.out);
}

// A client running beside the test; its result lands in `result_file`.
std::unique_ptr<Process> start_client(std::vector<std::string> flags) {
  std::vector<std::string> argv{kPython, client_script().string()};
  argv.insert(argv.end(), flags.begin(), flags.end());
  return std::make_unique<Process>(ProcessOptions{argv});
}

rapidjson::Document wait_result(Process& client, const fs::path& result_file,
                                std::chrono::milliseconds timeout = 30s) {
  BOOST_TEST_REQUIRE(wait_until([&] { return fs::exists(result_file); }, timeout),
                     "client wrote no result; stderr: " << client.stderr_text());
  client.wait(10s);
  return parse_json(read_file(result_file));
}

std::vector<std::string> canonical_record(const fs::path& record) {
  auto result = run_command({kPython, client_script().string(), "--canonical", record.string()});
  BOOST_TEST_REQUIRE(result.exit_code == 0, result.err);
  return lines_of(result.out);
}

rapidjson::Document check_record(const fs::path& record) {
  auto result =
      run_command({kPython, client_script().string(), "--check-record", record.string()});
  BOOST_TEST_REQUIRE(result.exit_code == 0, result.err);
  return parse_json(result.out);
}

std::int64_t sum_by_type(const rapidjson::Value& object) {
  const auto& by_type = object["by_type"];
  return int_field(by_type, "created") + int_field(by_type, "updated") +
         int_field(by_type, "deleted");
}

}  // namespace

BOOST_AUTO_TEST_CASE(summary_record_and_client_agree_exactly) {
  TempDir dir;
  SimProcess sim({"--token", "s3cret", "--count", "2000", "--format", "mixed", "--seed", "5",
           "--record", (dir / "record.jsonl").string()});
  auto got = run_client({"--url", sim.url(), "--token", "s3cret", "--expect", "2000",
                         "--deltas", (dir / "deltas.txt").string(), "--frames",
                         (dir / "frames.txt").string()});
  BOOST_TEST(string_field(got, "status") == "ok");
  BOOST_TEST(string_field(got, "subprotocol") == "bearer.s3cret");
  BOOST_TEST(int_field(got, "deltas") == 2000);

  auto summary = sim.summary();
  BOOST_TEST(int_field(summary, "sent") == 2000);
  BOOST_TEST(sum_by_type(summary) == 2000);
  BOOST_TEST(int_field(summary, "frames") == int_field(got, "frames"));
  BOOST_TEST(int_field(summary, "connections") == 1);

  // What the client parsed out of the frames is what --record says was sent.
  auto received = lines_of(read_file(dir / "deltas.txt"));
  auto recorded = canonical_record(dir / "record.jsonl");
  BOOST_TEST(recorded.size() == 2000u);
  BOOST_TEST((received == recorded));

  auto stats = check_record(dir / "record.jsonl");
  BOOST_TEST(stats["violations"].Size() == 0u, "e.g. " << (stats["violations"].Empty()
                                                               ? std::string()
                                                               : stats["violations"][0].GetString()));
  BOOST_TEST(int_field(stats["by_type"], "created") == int_field(summary["by_type"], "created"));
  BOOST_TEST(int_field(stats["by_type"], "deleted") == int_field(summary["by_type"], "deleted"));
  BOOST_TEST(int_field(stats["by_type"], "deleted") > 0);
  // The variety a tap has to survive.
  BOOST_TEST(int_field(stats, "approval_string") > 0);
  BOOST_TEST(int_field(stats, "approval_object") > 0);
  BOOST_TEST(int_field(stats, "big_ints") > 0);
  BOOST_TEST(int_field(stats, "non_ascii_summaries") > 0);
  BOOST_TEST(int_field(stats, "timestamp_null") > 0);
  BOOST_TEST(int_field(stats, "timestamp_offset") > 0);
  BOOST_TEST(int_field(stats, "timestamp_no_fraction") > 0);
  BOOST_TEST(int_field(stats, "timestamp_fraction") > 0);
  BOOST_TEST(int_field(stats, "max_attempt") > 1);
  // Integers above 2^53 go out with all their digits.
  BOOST_TEST(read_file(dir / "frames.txt").find("\"traceId\":90072") != std::string::npos);

  // A client reading as fast as it can is never cut off at --rate 0.
  BOOST_TEST(!sim.process().stderr_contains("backpressure"));
  BOOST_TEST(sim.stop() == 0);
  BOOST_TEST(sim.stdout_lines().size() == 1u, "stdout: " << sim.process().stdout_text());
}

BOOST_AUTO_TEST_CASE(bearer_subprotocol_auth) {
  SimProcess sim({"--token", "right", "--count", "5"});
  auto wrong = run_client({"--url", sim.url(), "--token", "wrong", "--timeout", "5"});
  BOOST_TEST(string_field(wrong, "status") == "rejected");
  BOOST_TEST(int_field(wrong, "handshake_status") == 401);

  auto other = run_client({"--url", sim.url(), "--subprotocol", "chat", "--timeout", "5"});
  BOOST_TEST(int_field(other, "handshake_status") == 401);

  auto none = run_client({"--url", sim.url(), "--timeout", "5"});
  BOOST_TEST(string_field(none, "status") == "rejected");
  BOOST_TEST(int_field(none, "handshake_status") == 426);

  // Any path upgrades, as on the real backend; the chosen protocol is echoed.
  auto right = run_client({"--url", sim.url("/elsewhere"), "--subprotocol", "chat",
                           "--subprotocol", "bearer.right", "--expect", "5"});
  BOOST_TEST(string_field(right, "status") == "ok");
  BOOST_TEST(string_field(right, "subprotocol") == "bearer.right");
  BOOST_TEST(int_field(right, "deltas") == 5);
  BOOST_TEST(sim.process().stderr_contains("path=/elsewhere"));
  // Refused clients are not connections and got no deltas.
  auto summary = sim.summary();
  BOOST_TEST(int_field(summary, "connections") == 1);
  BOOST_TEST(int_field(summary, "sent") == 5);
  BOOST_TEST(sim.stop() == 0);
}

BOOST_AUTO_TEST_CASE(reconnecting_client_gets_the_rest_not_a_repeat) {
  TempDir dir;
  SimProcess sim({"--count", "300", "--rate", "1000", "--format", "session_update", "--seed", "9",
           "--record", (dir / "record.jsonl").string()});
  auto first = run_client({"--url", sim.url(), "--expect", "100", "--deltas",
                           (dir / "first.txt").string()});
  BOOST_TEST(int_field(first, "deltas") >= 100);
  BOOST_TEST(int_field(first, "deltas") < 300);
  BOOST_TEST(sim.stdout_lines().empty(), "summary before the count was reached");

  auto rest_count = std::to_string(300 - int_field(first, "deltas"));
  auto second = run_client({"--url", sim.url(), "--expect", rest_count, "--timeout", "20",
                            "--deltas", (dir / "second.txt").string()});
  auto summary = sim.summary();
  BOOST_TEST(int_field(summary, "sent") == 300);
  BOOST_TEST(int_field(summary, "connections") == 2);
  BOOST_TEST(int_field(first, "deltas") + int_field(second, "deltas") == 300);

  // Together, in order, the two connections got exactly what was sent.
  auto together = lines_of(read_file(dir / "first.txt"));
  auto rest = lines_of(read_file(dir / "second.txt"));
  together.insert(together.end(), rest.begin(), rest.end());
  BOOST_TEST((together == canonical_record(dir / "record.jsonl")));

  // The second connection's first poll reported the live sessions as created,
  // with the states last sent; nothing else was said twice.
  auto stats = check_record(dir / "record.jsonl");
  BOOST_TEST(stats["violations"].Size() == 0u, "e.g. " << (stats["violations"].Empty()
                                                               ? std::string()
                                                               : stats["violations"][0].GetString()));
  BOOST_TEST(int_field(stats, "reannounced") > 0);
  BOOST_TEST(sim.stop() == 0);
}

BOOST_AUTO_TEST_CASE(pings_at_the_interval_and_silent_clients_are_dropped) {
  TempDir dir;
  SimProcess sim({"--ping-interval", "0.2", "--rate", "20"});
  auto listening = run_client({"--url", sim.url(), "--timeout", "1.5"});
  BOOST_TEST(int_field(listening, "pings") >= 4);
  BOOST_TEST(int_field(listening, "close_code") == 1000);  // it answered and left on its own

  auto silent = run_client({"--url", sim.url(), "--no-pong", "--timeout", "10"});
  BOOST_TEST(int_field(silent, "pings") >= 1);
  BOOST_TEST(int_field(silent, "close_code") == 1006);  // terminated, no close frame
  BOOST_TEST(sim.process().stderr_contains("did not answer the previous ping"));

  // SIGTERM closes a connected client with a normal close and exits 0.
  auto staying = start_client({"--url", sim.url(), "--timeout", "20", "--result",
                               (dir / "staying.json").string()});
  BOOST_TEST_REQUIRE(wait_until([&] { return sim.process().stderr_contains("connections=3"); }));
  BOOST_TEST(sim.stop() == 0);
  auto stayed = wait_result(*staying, dir / "staying.json");
  BOOST_TEST(int_field(stayed, "close_code") == 1000);
  BOOST_TEST(string_field(stayed, "close_reason") == "server shutting down");
  // Unlimited --count: the one summary line comes at exit.
  BOOST_TEST(sim.stdout_lines().size() == 1u);
  BOOST_TEST(int_field(sim.summary(), "connections") == 3);
}

BOOST_AUTO_TEST_CASE(same_seed_same_deltas) {
  TempDir dir;
  auto run = [&](const std::string& name, const std::string& seed) {
    SimProcess sim({"--count", "400", "--format", "mixed", "--seed", seed, "--start-time",
             "2025-11-10T12:00:00Z", "--record", (dir / (name + ".jsonl")).string()});
    auto got = run_client({"--url", sim.url(), "--expect", "400"});
    BOOST_TEST(int_field(got, "deltas") == 400);
    BOOST_TEST(int_field(sim.summary(), "sent") == 400);
    BOOST_TEST(sim.stop() == 0);
    return read_file(dir / (name + ".jsonl"));
  };
  auto a = run("a", "42");
  auto b = run("b", "42");
  auto c = run("c", "43");
  BOOST_TEST(a.size() > 100000u);
  BOOST_TEST((a == b), "same seed and start time, different deltas");
  BOOST_TEST((a != c), "another seed gave the same deltas");
}

BOOST_AUTO_TEST_CASE(rate_paces_the_stream) {
  SimProcess sim({"--count", "60", "--rate", "100", "--format", "delta"});
  auto start = std::chrono::steady_clock::now();
  auto got = run_client({"--url", sim.url(), "--expect", "60"});
  auto took = std::chrono::steady_clock::now() - start;
  BOOST_TEST(int_field(got, "deltas") == 60);
  BOOST_TEST(int_field(got, "frames") == 60);  // format A: one delta per frame
  BOOST_TEST(took >= 550ms);
  BOOST_TEST(sim.stop() == 0);
}

BOOST_AUTO_TEST_CASE(a_client_that_never_reads_is_closed_with_4002) {
  TempDir dir;
  SimProcess sim({"--rate", "4000"});
  auto go = dir / "go";
  auto stalled = start_client({"--url", sim.url(), "--stall-until", go.string(), "--timeout",
                               "30", "--result", (dir / "stalled.json").string()});
  BOOST_TEST_REQUIRE(wait_until([&] { return sim.process().stderr_contains("backpressure"); },
                                20s),
                     "never cut off; stderr: " << sim.process().stderr_text());
  BOOST_TEST(sim.process().stderr_contains("bufferedBytes=1"));  // just over the 1 MiB limit
  write_file(go, "");
  auto result = wait_result(*stalled, dir / "stalled.json");
  BOOST_TEST(int_field(result, "close_code") == 4002);
  BOOST_TEST(string_field(result, "close_reason") == "backpressure");

  // The simulator goes on serving the next client.
  auto next = run_client({"--url", sim.url(), "--expect", "20"});
  BOOST_TEST(int_field(next, "deltas") >= 20);
  BOOST_TEST(sim.stop() == 0);
}

BOOST_AUTO_TEST_CASE(bad_flags_exit_2_and_help_exits_0) {
  auto sim = (bin_dir() / "deltatap-sim").string();
  struct Case {
    std::vector<std::string> args;
    std::string mentions;
  };
  std::vector<Case> cases = {
      {{"--format", "xml"}, "--format"},
      {{"--count", "-1"}, "--count"},
      {{"--rate", "fast"}, "--rate"},
      {{"--listen", "localhost"}, "--listen"},
      {{"--listen", "127.0.0.1:70000"}, "--listen"},
      {{"--listen", "::1:3001"}, "[IPv6]:PORT"},  // base/address.h: IPv6 in brackets
      {{"--sessions", "0"}, "--sessions"},
      {{"--ping-interval", "-1"}, "--ping-interval"},
      {{"--token", "has space"}, "--token"},
      {{"--start-time", "2025-02-30T00:00:00Z"}, "--start-time"},
      {{"--count"}, "needs a value"},
      {{"--bogus"}, "unknown option --bogus"},
  };
  for (const auto& c : cases) {
    std::vector<std::string> argv{sim};
    argv.insert(argv.end(), c.args.begin(), c.args.end());
    auto result = run_command(argv);
    BOOST_TEST(result.exit_code == 2, c.args.front() << ": exit " << result.exit_code);
    BOOST_TEST(result.err.find(c.mentions) != std::string::npos, result.err);
    BOOST_TEST(result.out.empty());
  }
  auto help = run_command({sim, "--help"});
  BOOST_TEST(help.exit_code == 0);
  BOOST_TEST(help.out.find("--ping-interval") != std::string::npos);

  // A port that is taken is a runtime error, not a usage error.
  SimProcess holder({});
  std::string taken = holder.url().substr(5);  // "127.0.0.1:PORT/ws"
  taken.resize(taken.find('/'));
  auto busy = run_command({sim, "--listen", taken});
  BOOST_TEST(busy.exit_code == 1, busy.err);
  BOOST_TEST(busy.err.find("cannot listen") != std::string::npos, busy.err);
  BOOST_TEST(holder.stop() == 0);
}
