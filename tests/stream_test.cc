// End to end: the real deltatapd tapping the real deltatap-sim over loopback.
// Counts and contents are compared with what the simulator recorded it sent.
#define BOOST_TEST_MODULE stream
#include <boost/test/unit_test.hpp>

#include <signal.h>

#include <map>
#include <set>
#include <regex>
#include <sstream>

#include "delta_json.h"
#include "test_support.h"
#include "timestamp.h"

using namespace deltatap;
using namespace deltatap::testing;

namespace {

// A running deltatap-sim; its port is read from its log.
class Sim {
 public:
  Sim(const TempDir& dir, const std::string& name, std::vector<std::string> args, int port = 0)
      : record_(dir / (name + ".ndjson")) {
    std::vector<std::string> argv = {(bin_dir() / "deltatap-sim").string(), "--listen",
                                     "127.0.0.1:" + std::to_string(port), "--record",
                                     record_.string()};
    argv.insert(argv.end(), args.begin(), args.end());
    process_.emplace(ProcessOptions{argv, {}, dir.path()});
    static const std::regex listening("listening on 127\\.0\\.0\\.1:([0-9]+)");
    std::smatch match;
    BOOST_REQUIRE_MESSAGE(wait_until([&] {
                            auto log = process_->stderr_text();
                            if (!std::regex_search(log, match, listening)) return false;
                            port_ = std::stoi(match[1]);
                            return true;
                          }),
                          "deltatap-sim did not start: " << process_->stderr_text());
  }
  int port() const { return port_; }
  std::string url() const { return "ws://127.0.0.1:" + std::to_string(port_) + "/ws"; }
  Process& process() { return *process_; }
  // The summary line's "sent" once printed.
  std::optional<long> sent() const {
    static const std::regex sent_re("\"sent\":([0-9]+)");
    std::smatch match;
    auto out = process_->stdout_text();
    if (!std::regex_search(out, match, sent_re)) return std::nullopt;
    return std::stol(match[1]);
  }
  bool wait_sent(std::chrono::milliseconds timeout = 60s) {
    return wait_until([&] { return sent().has_value(); }, timeout);
  }
  std::vector<std::string> records() const {
    std::vector<std::string> lines;
    std::istringstream in(read_file(record_));
    for (std::string line; std::getline(in, line);) {
      if (!line.empty()) lines.push_back(line);
    }
    return lines;
  }

 private:
  fs::path record_;
  std::optional<Process> process_;
  int port_ = 0;
};

std::map<std::string, std::string> daemon_env(const std::string& url, const std::string& token) {
  return {{"PERSIST", "1"},
          {"DELTATAP_URL", url},
          {"DELTATAP_TOKEN", token},
          {"DELTATAP_HTTP", ""},
          {"DELTATAP_LOG_FORMAT", "text"},
          {"SNAPSHOT_INTERVAL", "600000"},
          {"NOTIFY_SOCKET", "\x01unset"},
          {"JOURNAL_STREAM", "\x01unset"},
          {"INVOCATION_ID", "\x01unset"}};
}

std::vector<std::string> deltatapd(std::vector<std::string> args = {}) {
  args.insert(args.begin(), (bin_dir() / "deltatapd").string());
  return args;
}

std::string member(const std::vector<RawMember>& members, const std::string& key) {
  for (auto& m : members) {
    if (m.key == key) return std::string(m.value);
  }
  return "null";
}

// One delta as "type|session|before|after|timestamp-or-*" where states are exact
// JSON text and a timestamp the frame did not carry matches anything.
using Key = std::string;

std::multiset<Key> recorded_keys(const std::vector<std::string>& lines) {
  std::multiset<Key> keys;
  for (const auto& line : lines) {
    auto members = raw_object_members(line);
    BOOST_REQUIRE_MESSAGE(members.ok(), members.error() << " in " << line);
    auto type = decode_json_string(member(*members, "type")).value();
    auto session = decode_json_string(member(*members, "sessionId")).value();
    auto ts = member(*members, "timestamp");
    std::string normalised = "*";
    if (ts != "null") {
      auto n = normalise_timestamp(decode_json_string(ts).value());
      BOOST_REQUIRE_MESSAGE(n.ok(), "simulator sent an invalid timestamp " << ts);
      normalised = *n;
    }
    keys.insert(type + "|" + session + "|" + member(*members, "before") + "|" +
                member(*members, "after") + "|" + normalised);
  }
  return keys;
}

// The stored rows in the same form; `stamped` tells which had their own timestamp.
std::multiset<Key> stored_keys(const fs::path& db, const std::multiset<Key>& recorded) {
  std::multiset<Key> keys;
  auto rows = query_db(db,
                       "SELECT delta_type, session_id, COALESCE(before_state, 'null'), "
                       "COALESCE(after_state, 'null'), timestamp FROM session_deltas ORDER BY id");
  for (auto& r : rows) {
    std::string base = r[0] + "|" + r[1] + "|" + r[2] + "|" + r[3] + "|";
    // A delta sent without a timestamp was stamped with its receive time.
    keys.insert(recorded.count(base + r[4]) ? base + r[4] : base + "*");
  }
  return keys;
}

std::string count_of(const fs::path& db, const std::string& where = "1") {
  return query_db(db, "SELECT COUNT(*) FROM session_deltas WHERE " + where)[0][0];
}

// Asks for snapshots until the file holds `expected` deltas.
bool wait_for_rows(Process& daemon, const fs::path& db, long expected,
                   std::chrono::milliseconds timeout = 60s) {
  auto last_signal = std::chrono::steady_clock::time_point{};
  return wait_until(
      [&] {
        // A snapshot takes a moment to land: ask again only every quarter second.
        if (std::chrono::steady_clock::now() - last_signal > 250ms) {
          daemon.signal(SIGUSR1);
          last_signal = std::chrono::steady_clock::now();
        }
        return fs::exists(db) && count_of(db) == std::to_string(expected);
      },
      timeout);
}

}  // namespace

BOOST_AUTO_TEST_CASE(twenty_thousand_mixed_deltas_with_a_token_arrive_whole) {
  TempDir dir;
  Sim sim(dir, "sim", {"--token", "t0ken", "--format", "mixed", "--count", "20000", "--sessions",
                       "50", "--seed", "3"});
  Process daemon({deltatapd(), daemon_env(sim.url(), "t0ken"), dir.path()});
  BOOST_REQUIRE_MESSAGE(sim.wait_sent(), sim.process().stderr_text());
  BOOST_TEST(*sim.sent() == 20000);
  auto db = dir / "data/sessions.sqlite";
  BOOST_REQUIRE_MESSAGE(wait_for_rows(daemon, db, 20000), "stored " << count_of(db) << "\n"
                                                                     << daemon.stderr_text());
  for (auto type : {"created", "updated", "deleted"}) {
    BOOST_TEST(std::stol(count_of(db, std::string("delta_type = '") + type + "'")) > 0, type);
  }
  auto recorded = recorded_keys(sim.records());
  BOOST_REQUIRE_EQUAL(recorded.size(), 20000u);
  auto stored = stored_keys(db, recorded);
  BOOST_TEST((stored == recorded), "stored and sent deltas differ");
  // Timestamps are all normalised.
  BOOST_TEST(count_of(db, "timestamp NOT GLOB "
                          "'[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9].[0-9][0-9][0-9]Z'") == "0");
  BOOST_TEST(query_db(db, "SELECT COUNT(*) FROM rejected_messages")[0][0] == "0");
  daemon.signal(SIGTERM);
  BOOST_TEST(daemon.wait().value_or(-1) == 0, daemon.stderr_text());
  BOOST_TEST(query_db(db, "SELECT COUNT(*) FROM stream_events WHERE event = 'connected'")[0][0] == "1");
}

BOOST_AUTO_TEST_CASE(a_wrong_token_stores_nothing_and_keeps_retrying) {
  TempDir dir;
  Sim sim(dir, "sim", {"--token", "right", "--count", "100"});
  auto env = daemon_env(sim.url(), "wrong");
  Process daemon({deltatapd({"--log-level", "info"}), env, dir.path()});
  BOOST_REQUIRE_MESSAGE(wait_until([&] { return daemon.stderr_contains("uthenticat"); }),
                        daemon.stderr_text());
  BOOST_TEST(daemon.running());
  BOOST_TEST(!daemon.stderr_contains("wrong"), "the token must never be logged");
  daemon.signal(SIGTERM);
  BOOST_TEST(daemon.wait().value_or(-1) == 0);
  auto db = dir / "data/sessions.sqlite";
  BOOST_TEST(count_of(db) == "0");
  BOOST_TEST(std::stol(query_db(db, "SELECT COUNT(*) FROM stream_events WHERE event = 'auth_failed'")[0][0]) >= 1);
  BOOST_TEST(sim.records().empty());
}

BOOST_AUTO_TEST_CASE(a_backend_restarted_mid_stream_is_rejoined_without_duplicates) {
  TempDir dir;
  int port = free_port();
  std::vector<std::string> first_records;
  auto env = daemon_env("ws://127.0.0.1:" + std::to_string(port) + "/ws", "tk");
  env["DELTATAP_LOG_LEVEL"] = "info";
  std::optional<Process> daemon;
  {
    Sim first(dir, "first", {"--token", "tk", "--format", "mixed", "--count", "100000", "--rate",
                             "2000", "--seed", "1"},
              port);
    daemon.emplace(ProcessOptions{deltatapd(), env, dir.path()});
    BOOST_REQUIRE(wait_until([&] { return first.records().size() >= 1000; }, 30s));
    first.process().signal(SIGTERM);
    BOOST_REQUIRE(first.process().wait().has_value());
    first_records = first.records();
  }
  Sim second(dir, "second", {"--token", "tk", "--format", "session_update", "--count", "1500",
                             "--seed", "2"},
             port);
  BOOST_REQUIRE_MESSAGE(second.wait_sent(), daemon->stderr_text());
  auto all = first_records;
  for (auto& line : second.records()) all.push_back(line);
  auto db = dir / "data/sessions.sqlite";
  BOOST_REQUIRE_MESSAGE(wait_for_rows(*daemon, db, static_cast<long>(all.size())),
                        "stored " << count_of(db) << " of " << all.size());
  auto recorded = recorded_keys(all);
  BOOST_TEST((stored_keys(db, recorded) == recorded));
  daemon->signal(SIGTERM);
  BOOST_TEST(daemon->wait().value_or(-1) == 0);
  auto events = query_db(db, "SELECT event FROM stream_events ORDER BY id");
  int connected = 0, disconnected = 0;
  for (auto& e : events) {
    connected += e[0] == "connected";
    disconnected += e[0] == "disconnected";
  }
  BOOST_TEST(connected == 2);
  BOOST_TEST(disconnected >= 2);  // the backend's stop, then our own at shutdown
}

BOOST_AUTO_TEST_CASE(sighup_with_a_changed_url_moves_to_the_new_backend) {
  TempDir dir;
  Sim a(dir, "a", {"--count", "0", "--rate", "50", "--seed", "4"});
  Sim b(dir, "b", {"--count", "0", "--rate", "50", "--seed", "5"});
  auto conf = dir / "deltatap.conf";
  auto write_conf = [&](const std::string& url) {
    write_file(conf, "[stream]\nurl = " + url + "\n[storage]\nenabled = on\n[http]\nlisten =\n");
  };
  write_conf(a.url());
  auto env = daemon_env("", "");
  env.erase("DELTATAP_URL");
  env.erase("DELTATAP_TOKEN");
  env.erase("DELTATAP_HTTP");
  env["DELTATAP_URL"] = "\x01unset";
  env["DELTATAP_TOKEN"] = "\x01unset";
  env["DELTATAP_HTTP"] = "\x01unset";
  env["PERSIST"] = "\x01unset";
  Process daemon({deltatapd({"--config", conf.string()}), env, dir.path()});
  auto port_b = ":" + std::to_string(b.port());
  BOOST_REQUIRE(wait_until([&] { return !a.records().empty(); }));
  BOOST_TEST(b.records().empty());
  write_conf(b.url());
  daemon.signal(SIGHUP);
  BOOST_REQUIRE_MESSAGE(wait_until([&] { return !b.records().empty(); }), daemon.stderr_text());
  BOOST_TEST(daemon.stderr_contains("Configuration reloaded"));
  daemon.signal(SIGTERM);
  BOOST_TEST(daemon.wait().value_or(-1) == 0);
  auto urls = query_db(dir / "data/sessions.sqlite",
                       "SELECT url FROM stream_events WHERE event = 'connected' ORDER BY id");
  BOOST_REQUIRE_EQUAL(urls.size(), 2u);
  BOOST_TEST(urls[1][0].find(port_b) != std::string::npos);
}
