// A history that stays true (design.md, "Fidelity"; issue 14): the real
// deltatapd against the real deltatap-sim behaving as the real backend does
// (restarts that re-announce every session, loss while the tap is away), the
// schema's migrations and rollback, and reconciliation's failures.
#define BOOST_TEST_MODULE fidelity
#include <boost/test/unit_test.hpp>

#include <signal.h>

#include <map>
#include <set>
#include <string>
#include <vector>

#include "ingest/reconcile_answer.h"
#include "ingest/state_compare.h"
#include "storage/schema_versions.h"
#include "storage/store.h"
#include "test_support.h"

using namespace deltatap;
using namespace deltatap::testing;

namespace {

// The simulator's own list of live sessions, by id, states in the parser's form.
std::map<std::string, std::string> backend_sessions(int port, const std::string& token) {
  auto answer = http_request(port, "GET", "/api/sessions", {"Authorization: Bearer " + token});
  BOOST_REQUIRE_EQUAL(answer.status, 200);
  auto parsed = parse_reconcile_answer(answer.body);
  BOOST_REQUIRE_MESSAGE(parsed.ok(), (parsed.ok() ? std::string() : parsed.error()));
  std::map<std::string, std::string> sessions;
  for (auto& s : parsed->sessions) sessions[s.session_id] = s.state;
  return sessions;
}

// The ledger's live sessions in the file, with the state their last delta left.
std::map<std::string, std::string> ledger_live_sessions(const fs::path& db) {
  std::map<std::string, std::string> sessions;
  for (auto& row : query_db(db,
                            "SELECT s.session_id, d.after_state FROM sessions s "
                            "JOIN session_deltas d ON d.id = s.last_id WHERE s.live")) {
    sessions[row[0]] = row[1];
  }
  return sessions;
}

bool same_sessions(const std::map<std::string, std::string>& a,
                   const std::map<std::string, std::string>& b) {
  if (a.size() != b.size()) return false;
  for (const auto& [id, state] : a) {
    auto found = b.find(id);
    if (found == b.end() || !same_state(state, found->second)) return false;
  }
  return true;
}

std::string describe(const std::map<std::string, std::string>& sessions) {
  std::string out;
  for (const auto& [id, state] : sessions) out += id + " " + state.substr(0, 120) + "\n";
  return out;
}

// One labelled sample of a daemon's /metrics page; -1 when absent.
double labelled_metric(int port, const std::string& sample) {
  auto page = http_request(port, "GET", "/metrics");
  auto at = page.body.find("\n" + sample + " ");
  if (at == std::string::npos) return -1;
  return std::stod(page.body.substr(at + sample.size() + 2));
}

}  // namespace

// The issue's end-to-end test: a backend that restarts every 1.5 s and loses
// what it broadcasts while a client is away, a tap stopped for a while mid-stream.
BOOST_AUTO_TEST_CASE(the_history_stays_true_across_backend_restarts_and_outages) {
  TempDir dir;
  const std::string token = "fidelity-token";
  Sim sim(dir, "sim", {"--token", token, "--format", "mixed", "--count", "2500", "--rate", "300",
                       "--sessions", "15", "--seed", "21", "--restart-every", "1500ms", "--lossy"});
  auto env = daemon_env(sim.url(), token);
  env["DELTATAP_RECONCILE"] = "on";
  env["SNAPSHOT_INTERVAL"] = "500";
  auto db = dir / "data/sessions.sqlite";
  {
    Process daemon({deltatapd_argv(), env, dir.path()});
    BOOST_REQUIRE_MESSAGE(wait_until([&] { return daemon.stderr_contains("Reconciled with the backend"); }, 30s),
                          daemon.stderr_text());
    daemon.signal(SIGTERM);
    BOOST_REQUIRE_EQUAL(daemon.wait().value_or(-1), 0);
  }
  // The tap is away while the backend's sessions change (--lossy: gone for it).
  auto at_stop = backend_sessions(sim.port(), token);
  BOOST_REQUIRE(wait_until([&] { return !same_sessions(backend_sessions(sim.port(), token), at_stop); }, 20s));

  Process daemon({deltatapd_argv(), env, dir.path()});
  BOOST_REQUIRE_MESSAGE(sim.wait_sent(90s), sim.process().stderr_text());
  // The backend no longer changes: the ledger must come to its list.
  auto truth = backend_sessions(sim.port(), token);
  bool matched = wait_until(
      [&] {
        daemon.signal(SIGUSR1);
        return fs::exists(db) && same_sessions(ledger_live_sessions(db), truth);
      },
      30s);
  BOOST_TEST(matched, "ledger:\n" << (fs::exists(db) ? describe(ledger_live_sessions(db)) : "")
                                  << "backend:\n" << describe(truth) << daemon.stderr_text());
  daemon.signal(SIGTERM);
  BOOST_REQUIRE_EQUAL(daemon.wait().value_or(-1), 0);

  auto summary = sim.process().stdout_text();
  BOOST_TEST(json_integer(summary, "restarts").value_or(0) >= 1, summary);
  BOOST_TEST(json_integer(summary, "unseen_deltas").value_or(0) >= 1, summary);

  // Every session's history alternates created ... deleted, and every step
  // starts from the state the one before it left, unless it is marked a gap.
  auto rows = query_db(db,
                       "SELECT session_id, delta_type, COALESCE(before_state, ''), "
                       "COALESCE(after_state, ''), origin, gap, id FROM session_deltas ORDER BY id");
  std::map<std::string, std::pair<bool, std::string>> last;  // id -> (live, state)
  std::size_t inferred = 0, gaps = 0;
  for (const auto& r : rows) {
    const auto& session = r[0];
    const auto& type = r[1];
    bool gap = r[5] == "1";
    gaps += gap;
    inferred += r[4] != "stream";
    BOOST_TEST((r[4] == "stream" || r[4] == "resync" || r[4] == "reconcile"), r[4]);
    auto found = last.find(session);
    if (type == "created") {
      BOOST_TEST((found == last.end() || !found->second.first),
                 "a second created without a deleted between, for " << session << " at id " << r[6]);
      BOOST_TEST(!gap);
    } else if (found == last.end() || !found->second.first) {
      BOOST_TEST(gap, type << " of a session not live, at id " << r[6] << ", is not marked a gap");
    } else if (!same_state(found->second.second, r[2])) {
      BOOST_TEST(gap, "id " << r[6] << " does not start from " << session
                            << "'s last state and is not marked a gap");
    }
    last[session] = {type != "deleted", type == "deleted" ? r[2] : r[3]};
  }
  BOOST_TEST(inferred + gaps > 0u, "an outage with loss left no mark in the history");
  // What the stream sent is stored as sent (origin stream); nothing else is.
  auto recorded = recorded_keys(sim.records());
  auto stream_rows = std::stoul(count_of(db, "origin = 'stream'"));
  std::size_t stream_rows_sent = 0;
  for (const auto& row : query_db(db,
                                  "SELECT delta_type, session_id, COALESCE(before_state, 'null'), "
                                  "COALESCE(after_state, 'null'), timestamp FROM session_deltas "
                                  "WHERE origin = 'stream'")) {
    std::string base = row[0] + "|" + row[1] + "|" + row[2] + "|" + row[3] + "|";
    stream_rows_sent += recorded.count(base + row[4]) || recorded.count(base + "*");
  }
  BOOST_TEST(stream_rows_sent == stream_rows, "rows of origin stream the simulator never sent");
  BOOST_TEST(std::stol(query_db(db, "SELECT COUNT(*) FROM stream_events WHERE event = 'resync'")[0][0]) >= 1);
  BOOST_TEST(std::stol(query_db(db, "SELECT COUNT(*) FROM stream_events WHERE event = 'reconciled'")[0][0]) >= 1);
}

namespace {

std::vector<std::vector<std::string>> history(const fs::path& db) {
  return query_db(db,
                  "SELECT id, session_id, delta_type, before_state, after_state, timestamp, "
                  "created_at FROM session_deltas ORDER BY id");
}

std::string ledger_text(const fs::path& db) {
  auto store = Store::open_readonly(db.string());
  BOOST_REQUIRE(store.ok());
  auto rows = (*store)->sessions();
  BOOST_REQUIRE(rows.ok());
  std::string out;
  for (const auto& r : *rows) {
    out += r.session_id + " " + std::to_string(r.created) + "/" + std::to_string(r.updated) + "/" +
           std::to_string(r.deleted) + " " + r.first_seen + ".." + r.last_seen + " " + r.last_type +
           (r.live ? " live " : " ended ") + r.last_state.value_or("null") + "\n";
  }
  return out;
}

}  // namespace

// Versions 0 and 1 migrate keeping every row; `deltatap migrate --to 1` rolls
// back for an older deltatap and `--to 2` goes forward again: the same history.
BOOST_AUTO_TEST_CASE(migrations_and_rollback_keep_the_history) {
  TempDir dir;
  auto v0 = dir / "v0.sqlite";
  // The domain document's own schema and INSERT, times as the document writes them.
  auto made = run_command({"/usr/bin/sqlite3", v0.string(),
                           "CREATE TABLE session_deltas (id INTEGER PRIMARY KEY AUTOINCREMENT, "
                           "session_id TEXT NOT NULL, delta_type TEXT NOT NULL CHECK(delta_type IN "
                           "('created','updated','deleted')), before_state TEXT, after_state TEXT, "
                           "timestamp TEXT NOT NULL, created_at TEXT DEFAULT (datetime('now')));"
                           "INSERT INTO session_deltas (session_id, delta_type, before_state, after_state, timestamp, created_at) VALUES "
                           "('s1','created',NULL,'{\"p\":\"pending\",\"n\":9007199254740993}','2025-11-10T12:00:00Z','2025-11-10 12:00:01'),"
                           "('s1','updated','{\"p\":\"pending\",\"n\":9007199254740993}','{\"p\":\"done\",\"n\":9007199254740993}','2025-11-10T12:00:05.5Z','2025-11-10 12:00:06'),"
                           "('s2','created',NULL,'{\"p\":\"x\"}','2025-11-10T12:01:00+02:00','2025-11-10 12:01:01'),"
                           "('s2','deleted','{\"p\":\"x\"}',NULL,'2025-11-10T12:02:00Z','2025-11-10 12:02:01');"});
  BOOST_REQUIRE_MESSAGE(made.exit_code == 0, made.err);
  auto cli = (bin_dir() / "deltatap").string();

  // 0 -> 2: every row, times normalised, the ledger built from the history.
  const std::string current = std::to_string(kSchemaVersion);
  auto forward = run_command({cli, "migrate", "--to", current, "--db", v0.string()});
  BOOST_REQUIRE_MESSAGE(forward.exit_code == 0, forward.err);
  BOOST_TEST(forward.out.find("schema version 0 -> " + current + ", 4 deltas kept") !=
                 std::string::npos,
             forward.out);
  BOOST_TEST(query_db(v0, "PRAGMA user_version")[0][0] == std::to_string(kSchemaVersion));
  auto v2_history = history(v0);
  BOOST_REQUIRE_EQUAL(v2_history.size(), 4u);
  BOOST_TEST(v2_history[2][5] == "2025-11-10T10:01:00.000Z");  // +02:00 normalised
  BOOST_TEST(v2_history[1][4] == R"({"p":"done","n":9007199254740993})");
  BOOST_TEST(count_of(v0, "origin = 'stream' AND gap = 0") == "4");
  auto v2_ledger = ledger_text(v0);
  BOOST_TEST(v2_ledger.find("s1 1/1/0") != std::string::npos, v2_ledger);
  BOOST_TEST(v2_ledger.find("s2 1/0/1") != std::string::npos, v2_ledger);
  BOOST_TEST(v2_ledger.find("deleted ended") != std::string::npos, v2_ledger);

  // 2 -> 1: the same rows, without origin, gap and the ledger.
  auto back = run_command({cli, "migrate", "--to", "1", "--db", v0.string()});
  BOOST_REQUIRE_MESSAGE(back.exit_code == 0, back.err);
  BOOST_TEST(query_db(v0, "PRAGMA user_version")[0][0] == "1");
  BOOST_TEST(history(v0) == v2_history);
  BOOST_TEST(query_db(v0, "SELECT COUNT(*) FROM pragma_table_info('session_deltas') "
                          "WHERE name IN ('origin', 'gap')")[0][0] == "0");
  BOOST_TEST(query_db(v0, "SELECT COUNT(*) FROM sqlite_master WHERE name = 'sessions'")[0][0] == "0");
  BOOST_TEST(query_db(v0, "PRAGMA integrity_check")[0][0] == "ok");
  // The document's own INSERT still works on what an older deltatap gets.
  auto insert = run_command({"/usr/bin/sqlite3", v0.string(),
                             "INSERT INTO session_deltas (session_id, delta_type, after_state, "
                             "timestamp) VALUES ('s3','created','{}','2025-11-10T12:03:00.000Z')"});
  BOOST_TEST(insert.exit_code == 0, insert.err);
  v2_history.push_back(history(v0).back());

  // Version 1 loads (read-only too) migrated, and 1 -> 2 gives the same history and ledger.
  BOOST_TEST(ledger_text(v0).find("s3 1/0/0") != std::string::npos);
  auto again = run_command({cli, "migrate", "--to", current, "--db", v0.string()});
  BOOST_REQUIRE_MESSAGE(again.exit_code == 0, again.err);
  BOOST_TEST(history(v0) == v2_history);
  BOOST_TEST(ledger_text(v0).find(v2_ledger.substr(0, v2_ledger.find('\n'))) != std::string::npos);
  auto same = run_command({cli, "migrate", "--to", current, "--db", v0.string()});
  BOOST_TEST(same.out.find("nothing to do") != std::string::npos, same.out);

  // The document's INSERT works on version 2 as well: origin and gap take their defaults.
  auto insert2 = run_command({"/usr/bin/sqlite3", v0.string(),
                              "INSERT INTO session_deltas (session_id, delta_type, after_state, "
                              "timestamp) VALUES ('s4','created','{}','2025-11-10T12:04:00.000Z')"});
  BOOST_TEST(insert2.exit_code == 0, insert2.err);
  BOOST_TEST(count_of(v0, "session_id = 's4' AND origin = 'stream' AND gap = 0") == "1");

  auto bad = run_command({cli, "migrate", "--to", "7", "--db", v0.string()});
  BOOST_TEST(bad.exit_code == 2);
  BOOST_TEST(bad.err.find("--to 1 or --to " + current) != std::string::npos, bad.err);
}

// Reconciliation that fails (401, 404, an answer that is not a list, an
// endpoint that never answers) is logged, counted, and the tap goes on.
BOOST_AUTO_TEST_CASE(reconciliation_failures_are_logged_counted_and_the_tap_goes_on) {
  struct Case {
    const char* mode;
    const char* sample;  // the counter that must move
    const char* log;     // what the log must say
  };
  for (const Case& c : {Case{"401", "deltatap_reconcile_failures_total{cause=\"http_status\"}", "failed (http_status 401)"},
                        Case{"404", "deltatap_reconcile_failures_total{cause=\"not_found\"}", "Reconciliation is off until the next start"},
                        Case{"bad_body", "deltatap_reconcile_failures_total{cause=\"bad_body\"}", "failed (bad_body)"},
                        Case{"hang", "deltatap_reconcile_failures_total{cause=\"timed_out\"}", "failed (timed_out)"}}) {
    BOOST_TEST_CONTEXT(c.mode) {
      TempDir dir;
      Process backend({{"/usr/bin/python3", (source_dir() / "tests/fixtures/reconcile_backend.py").string(), c.mode}, {}, dir.path()});
      int backend_port = read_printed_port(backend);
      BOOST_REQUIRE(backend_port > 0);
      Sim sim(dir, "sim", {"--count", "0", "--rate", "200", "--seed", "5"});
      int http_port = free_port();
      write_file(dir / "deltatap.conf",
                 "[stream]\nreconcile = on\nconnect_timeout = 1s\nreconcile_url = http://127.0.0.1:" +
                     std::to_string(backend_port) + "/api/sessions\n");
      auto env = daemon_env(sim.url(), "");
      env.erase("DELTATAP_RECONCILE");
      env["DELTATAP_HTTP"] = "127.0.0.1:" + std::to_string(http_port);
      Process daemon({deltatapd_argv({"--config", (dir / "deltatap.conf").string()}), env, dir.path()});
      BOOST_REQUIRE_MESSAGE(wait_until([&] { return labelled_metric(http_port, c.sample) >= 1; }, 30s),
                            daemon.stderr_text());
      BOOST_TEST(daemon.stderr_contains(c.log), daemon.stderr_text());
      // The tap goes on: deltas keep arriving after the failure.
      auto stored = [&] { return labelled_metric(http_port, "deltatap_deltas_stored_total{type=\"updated\"}"); };
      double before = stored();
      BOOST_TEST(wait_until([&] { return stored() > before; }, 20s));
      BOOST_TEST(daemon.running());
      if (std::string(c.mode) != "404") {
        // Retried with the stream's backoff, logged once per cause.
        BOOST_TEST(wait_until([&] { return labelled_metric(http_port, c.sample) >= 2; }, 30s));
        auto log = daemon.stderr_text();
        std::size_t lines = 0;
        for (auto at = log.find(c.log); at != std::string::npos; at = log.find(c.log, at + 1)) ++lines;
        BOOST_TEST(lines == 1u, log);
      }
      daemon.signal(SIGTERM);
      BOOST_TEST(daemon.wait().value_or(-1) == 0);
    }
  }
}

// The journal keeps the backend's list as it arrived, so a kill -9 after a
// reconciliation loses none of what it inferred: the restart, with no backend
// to ask, decides the same from the journal.
BOOST_AUTO_TEST_CASE(what_reconciliation_inferred_survives_a_kill_9) {
  TempDir dir;
  auto db = dir / "data/sessions.sqlite";
  {
    // A first backend whose sessions the tap comes to know.
    Sim first(dir, "first", {"--count", "300", "--sessions", "10", "--seed", "41"});
    Process daemon({deltatapd_argv(), daemon_env(first.url(), ""), dir.path()});
    BOOST_REQUIRE(first.wait_sent());
    BOOST_REQUIRE(wait_for_rows(daemon, db, 300));
    daemon.signal(SIGTERM);
    BOOST_REQUIRE_EQUAL(daemon.wait().value_or(-1), 0);
  }
  BOOST_REQUIRE(std::stol(count_of(dir / "data/sessions.sqlite", "1")) == 300);
  auto live_before = ledger_live_sessions(db).size();
  BOOST_REQUIRE(live_before > 0u);
  // Another backend, which has none of them: reconciliation ends them all.
  Sim second(dir, "second", {"--count", "0", "--rate", "50", "--sessions", "5", "--seed", "42"});
  auto env = daemon_env(second.url(), "");
  env["DELTATAP_RECONCILE"] = "on";
  env["SNAPSHOT_INTERVAL"] = "600000";  // nothing but the journal holds what follows
  Process daemon({deltatapd_argv(), env, dir.path()});
  BOOST_REQUIRE_MESSAGE(wait_until([&] { return daemon.stderr_contains("Reconciled with the backend"); }, 30s),
                        daemon.stderr_text());
  auto line = daemon.stderr_text().substr(daemon.stderr_text().find("Reconciled with the backend"));
  BOOST_TEST(line.find(std::to_string(live_before) + " deleted") != std::string::npos, line);
  // Past the group-commit interval, then gone without a word.
  auto journaled = std::chrono::steady_clock::now() + 500ms;
  wait_until([&] { return std::chrono::steady_clock::now() >= journaled; }, 2s);
  daemon.signal(SIGKILL);
  BOOST_REQUIRE(daemon.wait().has_value());

  env["DELTATAP_URL"] = "ws://127.0.0.1:" + std::to_string(free_port()) + "/ws";
  env["DELTATAP_RECONCILE"] = "off";
  Process again({deltatapd_argv(), env, dir.path()});
  BOOST_REQUIRE(wait_until([&] { return again.stderr_contains("Journal replayed"); }, 60s));
  again.signal(SIGTERM);
  BOOST_REQUIRE_EQUAL(again.wait().value_or(-1), 0);
  BOOST_TEST(count_of(db, "origin = 'reconcile' AND delta_type = 'deleted'") == std::to_string(live_before));
  // Replay decided quietly: the reconciliation was logged once, when it happened.
  BOOST_TEST(!again.stderr_contains("Reconciled with the backend"));
}
