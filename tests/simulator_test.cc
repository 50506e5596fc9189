// deltatap-sim as a process on a real loopback socket, read by a real WebSocket
// client (tests/fixtures/ws_client.py, Python's websockets package): what the
// summary line says, what --record wrote and what the client got must agree;
// auth, reconnects, pings, determinism and backpressure behave like the backend,
// and so do its habits on demand: restarts that re-announce every live session,
// --lossy streams, and GET /api/sessions on the WebSocket's port.
#define BOOST_TEST_MODULE simulator
#include <boost/test/unit_test.hpp>

#include <signal.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <map>
#include <optional>
#include <set>
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
  int port() const { return port_; }
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

// Any JSON value (parse_json wants an object).
rapidjson::Document parse_any(const std::string& text) {
  rapidjson::Document doc;
  doc.Parse(text.c_str());
  BOOST_TEST_REQUIRE(!doc.HasParseError(), "not JSON: " << text);
  return doc;
}

const rapidjson::Value& member(const rapidjson::Value& object, const char* name) {
  BOOST_TEST_REQUIRE(object.IsObject());
  auto it = object.FindMember(name);
  BOOST_TEST_REQUIRE((it != object.MemberEnd()), "no " << name);
  return it->value;
}

bool json_content_type(const HttpResponse& response) {
  std::string headers = response.headers;
  for (auto& c : headers) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return headers.find("\r\ncontent-type: application/json") != std::string::npos;
}

// A JSON error answer: the status, the type, an "error" member.
void expect_json_error(const HttpResponse& response, int status, const std::string& what) {
  BOOST_TEST(response.status == status, what << ": " << response.status << " " << response.body);
  BOOST_TEST(json_content_type(response), what << ": " << response.headers);
  if (response.status == status) {
    BOOST_TEST(string_field(parse_json(response.body), "error") != "<none>", response.body);
  }
}

// Session states by id, compared as JSON values: key order and spacing do
// not matter, numbers keep their digits (rapidjson reads integers exactly).
class States {
 public:
  void set(const std::string& id, const rapidjson::Value& state) {
    values_.insert_or_assign(id, rapidjson::Value(state, allocator_));
  }
  void erase(const std::string& id) { values_.erase(id); }
  bool has(const std::string& id) const { return values_.count(id) > 0; }
  std::size_t size() const { return values_.size(); }

  // "" when `other` holds the same ids with equal states; else what differs.
  std::string difference(const States& other) const {
    for (const auto& [id, state] : values_) {
      auto it = other.values_.find(id);
      if (it == other.values_.end()) return id + " is only on the left";
      if (!(state == it->second)) return id + " has another state on the right";
    }
    for (const auto& entry : other.values_) {
      if (!has(entry.first)) return entry.first + " is only on the right";
    }
    return "";
  }

 private:
  rapidjson::MemoryPoolAllocator<> allocator_;
  std::map<std::string, rapidjson::Value> values_;
};

// The sessions of a GET /api/sessions body: {"sessions":[...]} or, with
// `bare_array`, [...]; each an object with its "id", each id once.
void read_sessions_answer(const std::string& body, bool bare_array, States& out) {
  auto doc = parse_any(body);
  const rapidjson::Value& list = bare_array ? static_cast<const rapidjson::Value&>(doc)
                                            : member(doc, "sessions");
  BOOST_TEST_REQUIRE(list.IsArray(), body);
  for (const auto& state : list.GetArray()) {
    BOOST_TEST_REQUIRE(state.IsObject());
    std::string id = string_field(state, "id");
    BOOST_TEST_REQUIRE(id != "<none>", "a session without an id");
    BOOST_TEST(!out.has(id), id << " listed twice");
    out.set(id, state);
  }
}

// What a --deltas line (the --record shape) does to the live sessions.
void apply(States& live, const rapidjson::Value& delta) {
  std::string type = string_field(delta, "type");
  if (type == "deleted") {
    live.erase(string_field(delta, "sessionId"));
  } else {
    live.set(string_field(delta, "sessionId"), member(delta, "after"));
  }
}

// Where in `history` the lines from `lines[from]` on stand as one unbroken
// stretch; nullopt when they are not one (or there are none).
std::optional<std::size_t> stretch_at(const std::vector<std::string>& history,
                                      const std::map<std::string, std::size_t>& position,
                                      const std::vector<std::string>& lines, std::size_t from) {
  if (from >= lines.size()) return std::nullopt;
  auto start = position.find(lines[from]);
  if (start == position.end()) return std::nullopt;
  if (start->second + (lines.size() - from) > history.size()) return std::nullopt;
  for (std::size_t i = from; i < lines.size(); ++i) {
    if (history[start->second + (i - from)] != lines[i]) return std::nullopt;
  }
  return start->second;
}

// The first frame a client gets from a simulator without --lossy, in the batch
// formats: its first poll, every live session as created. Equal to `expected`?
void expect_first_poll(SimProcess& sim, const fs::path& frames, std::vector<std::string> flags,
                       const States& expected) {
  std::vector<std::string> argv{"--url", sim.url(), "--expect", "1", "--frames", frames.string()};
  argv.insert(argv.end(), flags.begin(), flags.end());
  auto got = run_client(argv);
  BOOST_TEST_REQUIRE(int_field(got, "deltas") >= 1);
  auto frame = parse_json(lines_of(read_file(frames)).at(0));
  BOOST_TEST_REQUIRE(string_field(frame, "type") == "session_update");
  const auto& batch = member(frame, "delta");
  BOOST_TEST_REQUIRE(batch.IsArray());
  States polled;
  for (const auto& d : batch.GetArray()) {
    BOOST_TEST(string_field(d, "change") == "created");
    std::string id = string_field(d, "id");
    BOOST_TEST(!polled.has(id), id << " reported twice");
    polled.set(id, member(d, "current"));
  }
  auto differs = expected.difference(polled);
  BOOST_TEST(differs.empty(), "/api/sessions (left) and the first poll (right): " << differs);
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
      {{"--lossy"}, "--lossy needs --rate above 0"},
      {{"--rate", "0", "--lossy"}, "--lossy needs --rate above 0"},
      {{"--lossy=yes", "--rate", "5"}, "--lossy takes no value"},
      {{"--restart-every", "10x"}, "--restart-every"},
      {{"--restart-every", "50ms"}, "--restart-every"},
      {{"--sessions-shape", "tree"}, "--sessions-shape"},
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
  for (const std::string word : {"--restart-every", "--lossy", "--sessions-shape", "restarts",
                                 "restart_disconnects", "reannounced", "unseen_deltas",
                                 "live_sessions", "/api/sessions"}) {
    BOOST_TEST(help.out.find(word) != std::string::npos, word << " not in --help");
  }

  // A port that is taken is a runtime error, not a usage error.
  SimProcess holder({});
  std::string taken = holder.url().substr(5);  // "127.0.0.1:PORT/ws"
  taken.resize(taken.find('/'));
  auto busy = run_command({sim, "--listen", taken});
  BOOST_TEST(busy.exit_code == 1, busy.err);
  BOOST_TEST(busy.err.find("cannot listen") != std::string::npos, busy.err);
  BOOST_TEST(holder.stop() == 0);
}

// GET /api/sessions on the WebSocket's port, with the backend's auth: without
// the bearer token 401, with it every live session's current state, which is
// what the first poll of the next client reports (without --lossy nothing
// changes upstream while nobody listens).
BOOST_AUTO_TEST_CASE(api_sessions_needs_the_token_and_lists_the_live_sessions) {
  TempDir dir;
  SimProcess sim({"--token", "s3cret", "--format", "session_update", "--seed", "11"});
  auto first = run_client({"--url", sim.url(), "--token", "s3cret", "--expect", "200"});
  BOOST_TEST_REQUIRE(int_field(first, "deltas") >= 200);

  const std::string right = "Authorization: Bearer s3cret";
  expect_json_error(http_request(sim.port(), "GET", "/api/sessions"), 401, "no token");
  expect_json_error(http_request(sim.port(), "GET", "/api/sessions", {"Authorization: Bearer nope"}),
                    401, "wrong token");
  expect_json_error(http_request(sim.port(), "GET", "/api/sessions", {"Authorization: Basic czNjcmV0"}),
                    401, "another scheme");
  // The WebSocket's way of passing the token is not the HTTP API's.
  expect_json_error(
      http_request(sim.port(), "GET", "/api/sessions", {"Sec-WebSocket-Protocol: bearer.s3cret"}),
      401, "the token as a subprotocol");
  expect_json_error(http_request(sim.port(), "POST", "/api/sessions", {right}), 405, "POST");
  expect_json_error(http_request(sim.port(), "GET", "/api/deltas", {right}), 404, "another path");
  expect_json_error(http_request(sim.port(), "GET", "/ws", {right}), 404, "/ws without an upgrade");
  expect_json_error(
      http_request(sim.port(), "GET", "/api/sessions", {right, "X-Filler: " + std::string(10000, 'x')}),
      431, "headers over the limit");

  // The scheme in any case; a query string changes nothing.
  auto answer = http_request(sim.port(), "GET", "/api/sessions?limit=1", {"Authorization: bearer s3cret"});
  BOOST_TEST_REQUIRE(answer.status == 200, answer.body);
  BOOST_TEST(json_content_type(answer), answer.headers);
  States listed;
  read_sessions_answer(answer.body, false, listed);
  BOOST_TEST_REQUIRE(listed.size() > 0u);
  expect_first_poll(sim, dir / "frames.txt", {"--token", "s3cret"}, listed);

  // The summary's live_sessions is the model's count, as the API lists it.
  auto last = http_request(sim.port(), "GET", "/api/sessions", {right});
  BOOST_TEST_REQUIRE(last.status == 200, last.body);
  States final_listed;
  read_sessions_answer(last.body, false, final_listed);
  BOOST_TEST(sim.stop() == 0);
  BOOST_TEST(int_field(sim.summary(), "live_sessions") ==
             static_cast<std::int64_t>(final_listed.size()));
}

BOOST_AUTO_TEST_CASE(api_sessions_as_a_bare_array_and_open_without_a_token) {
  TempDir dir;
  SimProcess sim({"--sessions-shape", "array", "--format", "mixed", "--seed", "12"});
  auto first = run_client({"--url", sim.url(), "--expect", "200"});
  BOOST_TEST_REQUIRE(int_field(first, "deltas") >= 200);

  auto answer = http_request(sim.port(), "GET", "/api/sessions");
  BOOST_TEST_REQUIRE(answer.status == 200, answer.body);
  BOOST_TEST(json_content_type(answer), answer.headers);
  BOOST_TEST_REQUIRE(parse_any(answer.body).IsArray(), answer.body);
  States listed;
  read_sessions_answer(answer.body, true, listed);
  BOOST_TEST_REQUIRE(listed.size() > 0u);
  expect_first_poll(sim, dir / "frames.txt", {}, listed);
  expect_json_error(http_request(sim.port(), "GET", "/"), 404, "/");
  BOOST_TEST(sim.stop() == 0);
}

// --restart-every: every client is closed with 1012 "service restart" and,
// once a client is back, the first poll reports every live session as
// created, in the state it had: one batch in format B, a frame per session
// in format A. Without --lossy nothing changes upstream while nobody
// listens, so /api/sessions says beforehand what must come.
BOOST_AUTO_TEST_CASE(restart_closes_every_client_and_reannounces_every_live_session) {
  for (const std::string format : {"session_update", "delta"}) {
    BOOST_TEST_CONTEXT("--format " << format) {
      TempDir dir;
      SimProcess sim({"--restart-every", "2s", "--rate", "100", "--format", format, "--seed", "4"});
      // It reads until the server closes it: the restart. (A restart that
      // falls in its handshake leaves it without a connection: again.)
      auto first = run_client({"--url", sim.url(), "--timeout", "60"});
      for (int attempt = 1; attempt < 3 && string_field(first, "status") != "ok"; ++attempt) {
        first = run_client({"--url", sim.url(), "--timeout", "60"});
      }
      BOOST_TEST_REQUIRE(string_field(first, "status") == "ok");
      BOOST_TEST(int_field(first, "close_code") == 1012);
      BOOST_TEST(string_field(first, "close_reason") == "service restart");

      // The next restart may cut the next client off too: then again.
      bool complete = false;
      std::size_t expected = 0;
      for (int attempt = 0; attempt < 5 && !complete; ++attempt) {
        auto answer = http_request(sim.port(), "GET", "/api/sessions");
        if (answer.status != 200) continue;  // dropped by a restart
        States listed;
        read_sessions_answer(answer.body, false, listed);
        BOOST_TEST_REQUIRE(listed.size() > 0u);
        expected = listed.size();
        auto n = std::to_string(expected);
        auto frames = dir / ("frames" + std::to_string(attempt) + ".txt");
        auto deltas = dir / ("deltas" + std::to_string(attempt) + ".txt");
        auto next = run_client({"--url", sim.url(), "--expect", n, "--timeout", "30", "--frames",
                                frames.string(), "--deltas", deltas.string()});
        if (int_field(next, "deltas") < static_cast<std::int64_t>(expected)) continue;
        complete = true;

        auto got = lines_of(read_file(deltas));
        States announced;
        for (std::size_t i = 0; i < expected; ++i) {
          auto d = parse_json(got.at(i));
          BOOST_TEST(string_field(d, "type") == "created", got[i]);
          BOOST_TEST(member(d, "before").IsNull());
          std::string id = string_field(d, "sessionId");
          BOOST_TEST(!announced.has(id), id << " announced twice");
          announced.set(id, member(d, "after"));
        }
        auto differs = listed.difference(announced);
        BOOST_TEST(differs.empty(), "/api/sessions (left) and the re-announce (right): " << differs);

        auto frame_lines = lines_of(read_file(frames));
        if (format == "delta") {
          BOOST_TEST_REQUIRE(frame_lines.size() >= expected);
          for (std::size_t i = 0; i < expected; ++i) {
            auto frame = parse_json(frame_lines[i]);
            BOOST_TEST(string_field(frame, "type") == "created", frame_lines[i]);
            BOOST_TEST(member(frame, "timestamp").IsString(), frame_lines[i]);
          }
        } else {
          auto frame = parse_json(frame_lines.at(0));
          BOOST_TEST(string_field(frame, "type") == "session_update");
          BOOST_TEST(member(frame, "delta").Size() == expected);
        }
      }
      BOOST_TEST(complete, "every client after the restart was cut off by the next one");
      BOOST_TEST(sim.process().stderr_contains("simulated restart"));
      BOOST_TEST(sim.stop() == 0);
      auto summary = sim.summary();
      BOOST_TEST(int_field(summary, "restarts") >= 1);
      BOOST_TEST(int_field(summary, "restart_disconnects") >= 1);
      BOOST_TEST(int_field(summary, "reannounced") >= static_cast<std::int64_t>(expected));
    }
  }
}

// --lossy: the sessions change while nobody listens, and what happens then
// reaches nobody; a client gets what happens after it connects, after the
// first poll since the start. A seed and a start time name one history,
// however the clients come and go, so a run without --lossy that sends it all
// shows which stretch each client got.
BOOST_AUTO_TEST_CASE(lossy_a_client_that_was_away_misses_what_happened_meanwhile) {
  TempDir dir;
  const std::vector<std::string> history_flags{"--format", "delta", "--seed", "21",
                                               "--start-time", "2025-11-10T12:00:00Z"};
  std::vector<std::string> flags{"--lossy", "--rate", "200"};
  flags.insert(flags.end(), history_flags.begin(), history_flags.end());
  SimProcess sim(flags);
  auto first = run_client({"--url", sim.url(), "--expect", "40", "--deltas",
                           (dir / "first.txt").string()});
  BOOST_TEST_REQUIRE(int_field(first, "deltas") >= 40);
  // Nobody listens now, and the sessions change all the same.
  auto away = http_request(sim.port(), "GET", "/api/sessions");
  BOOST_TEST_REQUIRE(away.status == 200, away.body);
  BOOST_TEST_REQUIRE(wait_until([&] {
                       auto now = http_request(sim.port(), "GET", "/api/sessions");
                       return now.status == 200 && now.body != away.body;
                     }),
                     "the sessions did not change while no client was connected");
  auto second = run_client({"--url", sim.url(), "--expect", "40", "--deltas",
                            (dir / "second.txt").string()});
  BOOST_TEST_REQUIRE(int_field(second, "deltas") >= 40);
  BOOST_TEST(sim.stop() == 0);
  auto summary = sim.summary();
  auto sent = int_field(summary, "sent");
  auto reannounced = int_field(summary, "reannounced");
  auto unseen = int_field(summary, "unseen_deltas");
  BOOST_TEST(unseen > 0);
  BOOST_TEST(int_field(summary, "restarts") == 0);
  auto got1 = lines_of(read_file(dir / "first.txt"));
  auto got2 = lines_of(read_file(dir / "second.txt"));
  BOOST_TEST(sent == static_cast<std::int64_t>(got1.size() + got2.size()));

  // All that happened upstream, from a run that sends every delta of it.
  auto total = sent - reannounced + unseen;
  std::vector<std::string> all_flags{"--count", std::to_string(total), "--record",
                                     (dir / "all.jsonl").string()};
  all_flags.insert(all_flags.end(), history_flags.begin(), history_flags.end());
  SimProcess everything(all_flags);
  auto all = run_client({"--url", everything.url(), "--expect", std::to_string(total),
                         "--timeout", "60"});
  BOOST_TEST_REQUIRE(int_field(all, "deltas") == total);
  BOOST_TEST(everything.stop() == 0);
  auto history = canonical_record(dir / "all.jsonl");
  BOOST_TEST_REQUIRE(history.size() == static_cast<std::size_t>(total));
  std::map<std::string, std::size_t> position;
  for (std::size_t i = 0; i < history.size(); ++i) {
    BOOST_TEST_REQUIRE(position.emplace(history[i], i).second, "a delta twice: " << history[i]);
  }

  // The first client: the first poll since the start, the sessions live when it
  // connected in their states then; then the history from there, unbroken.
  auto polled = static_cast<std::size_t>(reannounced);
  BOOST_TEST_REQUIRE(polled < got1.size());
  auto from1 = stretch_at(history, position, got1, polled);
  BOOST_TEST_REQUIRE(from1.has_value(), "the first client's deltas after its first poll are "
                                        "not a stretch of the history");
  States live;
  for (std::size_t i = 0; i < *from1; ++i) apply(live, parse_json(history[i]));
  States announced;
  for (std::size_t i = 0; i < polled; ++i) {
    auto d = parse_json(got1[i]);
    BOOST_TEST(string_field(d, "type") == "created", got1[i]);
    std::string id = string_field(d, "sessionId");
    BOOST_TEST(!announced.has(id), id << " announced twice");
    announced.set(id, member(d, "after"));
  }
  auto differs = live.difference(announced);
  BOOST_TEST(differs.empty(), "live at the connect (left) and the first poll (right): " << differs);
  std::size_t end1 = *from1 + (got1.size() - polled);

  // The second client: only what happened once it was connected. No first
  // poll, no replay: what happened while it was away is gone for it.
  auto from2 = stretch_at(history, position, got2, 0);
  BOOST_TEST_REQUIRE(from2.has_value(), "the second client's deltas are not a stretch of the history");
  BOOST_TEST(*from2 > end1, "the second client got what happened while nobody listened");
  BOOST_TEST(unseen >= static_cast<std::int64_t>(*from2 - end1));
}

// With --lossy, --count is used up with nobody connected: the summary comes
// without a client, every delta unseen.
BOOST_AUTO_TEST_CASE(lossy_count_is_used_up_with_nobody_listening) {
  SimProcess sim({"--lossy", "--rate", "1000", "--count", "100"});
  auto summary = sim.summary();
  BOOST_TEST(int_field(summary, "sent") == 0);
  BOOST_TEST(int_field(summary, "unseen_deltas") == 100);
  BOOST_TEST(int_field(summary, "connections") == 0);
  auto live = int_field(summary, "live_sessions");
  BOOST_TEST(live > 0);
  // Nothing changes once --count is done: /api/sessions lists those sessions.
  auto answer = http_request(sim.port(), "GET", "/api/sessions");
  BOOST_TEST_REQUIRE(answer.status == 200, answer.body);
  States listed;
  read_sessions_answer(answer.body, false, listed);
  BOOST_TEST(static_cast<std::int64_t>(listed.size()) == live);
  BOOST_TEST(sim.stop() == 0);
  BOOST_TEST(sim.stdout_lines().size() == 1u, "stdout: " << sim.process().stdout_text());
}
