// The analytics as a user reaches them: GET /api/analytics/... of a real
// deltatapd (JSON and CSV, the token rule, a bad parameter named, the metrics)
// and `deltatap analytics` on the daemon and on its file (json, csv, the table
// and the shaded grid). The daemon serves a snapshot file holding the history
// of tests/support/analytics_history.h, or taps the simulator running on a
// simulated clock (--start-time) across Berlin's autumn DST change; either way
// every answer must equal the independent count over the deltas the daemon
// holds (read back through /api/export).
#define BOOST_TEST_MODULE analytics_http
#include <boost/test/unit_test.hpp>

#include <sys/stat.h>

#include <rapidjson/document.h>

#include <csignal>
#include <sstream>

#include "api/analytics.h"
#include "api/delta_json.h"
#include "base/logging.h"
#include "storage/snapshot.h"
#include "test_support.h"
#include "analytics_history.h"

using namespace deltatap;
using namespace deltatap::testing;
using namespace deltatap::testing::analytics;

namespace {

struct QuietLogs {
  QuietLogs() { init_logging({LogLevel::warning, LogFormat::text}); }
};
BOOST_TEST_GLOBAL_FIXTURE(QuietLogs);

struct ProgramsBuilt {
  boost::test_tools::assertion_result operator()(boost::unit_test::test_unit_id) const {
    bool built = fs::exists(bin_dir() / "deltatapd") && fs::exists(bin_dir() / "deltatap") &&
                 fs::exists(bin_dir() / "deltatap-sim");
    boost::test_tools::assertion_result result(built);
    result.message() << "deltatapd, deltatap or deltatap-sim is not built in " << bin_dir();
    return result;
  }
};

const std::string kToken = "analytics-token-0123456789";

std::string query_of(const Window& w, bool with_tz) {
  std::string q = "since=" + w.since + "&until=" + w.until;
  if (w.repo) q += "&repo=" + w.repo.value();  // the test's repos need no encoding
  if (with_tz) q += "&tz=" + w.tz;
  return q;
}

struct Daemon {
  int port = free_port();
  std::optional<Process> process;

  Daemon(const TempDir& dir, const std::string& stream_url) {
    write_file(dir / "deltatap.conf", "[http]\ntoken = " + kToken + "\n");
    auto env = daemon_env(stream_url, "");
    env["DELTATAP_HTTP"] = "127.0.0.1:" + std::to_string(port);
    // The histories are of October 2026 (created_at included): retention,
    // which runs at start, must keep them whatever the machine's date.
    env["RETENTION_DAYS"] = "0";
    process.emplace(ProcessOptions{
        deltatapd_argv({"--config", (dir / "deltatap.conf").string()}), env, dir.path()});
    BOOST_REQUIRE_MESSAGE(wait_until([&] { return get("/healthz").status == 200; }),
                          "deltatapd: " << process->stderr_text());
  }
  ~Daemon() {
    process->signal(SIGTERM);
    (void)process->wait(20s);
  }
  HttpResponse get(const std::string& target) const {
    return http_request(port, "GET", target, {"Authorization: Bearer " + kToken});
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port); }

  // Every delta the daemon holds, from its export.
  std::vector<StoredDelta> deltas() const {
    auto reply = get("/api/export?format=ndjson");
    BOOST_TEST_REQUIRE(reply.status == 200, reply.body);
    std::vector<StoredDelta> rows;
    std::istringstream in(reply.body);
    for (std::string line; std::getline(in, line);) {
      if (line.empty()) continue;
      auto row = parse_delta_json(line);
      BOOST_TEST_REQUIRE(row.ok(), row.error());
      rows.push_back(std::move(row.value()));
    }
    return rows;
  }

  // The three answers, JSON and CSV, against the independent count.
  void check(const std::vector<StoredDelta>& rows, const Window& w) const {
    BOOST_TEST_CONTEXT("window " << w.since << " to " << w.until << " tz " << w.tz) {
      auto durations = durations_by_hand(rows, w);
      auto approvals = approvals_by_hand(rows, w);
      auto heatmap = heatmap_by_hand(rows, w);
      BOOST_TEST(get("/api/analytics/durations?" + query_of(w, false)).body ==
                 durations_json(durations));
      BOOST_TEST(get("/api/analytics/approvals?" + query_of(w, true)).body ==
                 approvals_json(approvals));
      BOOST_TEST(get("/api/analytics/heatmap?" + query_of(w, true)).body == heatmap_json(heatmap));
      auto csv = get("/api/analytics/durations?" + query_of(w, false) + "&format=csv");
      BOOST_TEST(csv.status == 200);
      BOOST_TEST(csv.headers.find("text/csv") != std::string::npos, csv.headers);
      BOOST_TEST(csv.body == durations_csv(durations));
      BOOST_TEST(get("/api/analytics/approvals?" + query_of(w, true) + "&format=csv").body ==
                 approvals_csv(approvals));
      BOOST_TEST(get("/api/analytics/heatmap?" + query_of(w, true) + "&format=csv").body ==
                 heatmap_csv(heatmap));
    }
  }
};

CommandResult run_cli_program(std::vector<std::string> args,
                              std::map<std::string, std::string> env = {}) {
  args.insert(args.begin(), (bin_dir() / "deltatap").string());
  return run_command(args, env);
}

const Window kWindow{"2026-10-21T10:07:30.000Z", "2026-10-27T13:52:10.500Z", std::nullopt,
                     "Europe/Berlin"};

}  // namespace

BOOST_AUTO_TEST_CASE(the_routes_and_the_cli_answer_the_independent_count,
                     *boost::unit_test::precondition(ProgramsBuilt())) {
  TempDir dir;
  auto rows = history_deltas();
  {
    auto store = store_with(rows);
    auto image = store->serialize();
    BOOST_REQUIRE(image.ok());
    fs::create_directories(dir / "data");
    BOOST_REQUIRE(write_snapshot_file((dir / "data/sessions.sqlite").string(), image->view()).ok());
  }
  auto db = (dir / "data/sessions.sqlite").string();
  // No stream to tap: the daemon keeps retrying it and answers over HTTP meanwhile.
  Daemon daemon(dir, "ws://127.0.0.1:" + std::to_string(free_port()) + "/ws");
  daemon.check(rows, kWindow);
  daemon.check(rows, {kWindow.since, kWindow.until, "acme/widgets", "UTC"});

  // The token rule of every /api route.
  auto anonymous = http_request(daemon.port, "GET", "/api/analytics/heatmap");
  BOOST_TEST(anonymous.status == 401);
  // A bad parameter is named; a parameter an answer does not take is refused.
  for (const auto& [target, parameter] :
       std::vector<std::pair<std::string, std::string>>{
           {"/api/analytics/heatmap?tz=Nowhere/Atlantis", "tz"},
           {"/api/analytics/approvals?since=soon", "since"},
           {"/api/analytics/durations?format=xlsx", "format"},
           {"/api/analytics/durations?tz=UTC", "tz"},
           {"/api/analytics/heatmap?until=2026-10-01T00:00:00Z&since=2026-10-02T00:00:00Z", "since"}}) {
    auto reply = daemon.get(target);
    BOOST_TEST(reply.status == 400, target << ": " << reply.body);
    rapidjson::Document doc;
    doc.Parse(reply.body.c_str());
    BOOST_TEST_REQUIRE(doc.IsObject(), reply.body);
    BOOST_TEST(doc["parameter"].GetString() == parameter, target);
  }

  // deltatap_sessions_live: the ledger's live sessions; the answers were timed.
  std::int64_t live = 0;
  for (const auto& [id, f] : facts_from(rows)) live += f.live ? 1 : 0;
  auto metrics = daemon.get("/metrics").body;
  BOOST_TEST(metrics.find("\ndeltatap_sessions_live " + std::to_string(live) + "\n") !=
                 std::string::npos,
             metrics);
  BOOST_TEST(metrics.find("deltatap_query_duration_seconds_count{query=\"analytics\"} 0\n") ==
             std::string::npos);

  // The CLI, live and on the file, gives the API's answer as json and csv.
  auto heatmap = heatmap_by_hand(rows, kWindow);
  std::vector<std::string> window_args = {"--since", kWindow.since, "--until", kWindow.until,
                                          "--tz", "Europe/Berlin"};
  for (const std::vector<std::string>& source :
       {std::vector<std::string>{"--url", daemon.url(), "--token", kToken},
        std::vector<std::string>{"--db", db}}) {
    auto args = source;
    args.push_back("analytics");
    args.push_back("heatmap");
    args.insert(args.end(), window_args.begin(), window_args.end());
    auto json_args = args;
    json_args.insert(json_args.end(), {"--format", "json"});
    auto json = run_cli_program(json_args);
    BOOST_TEST(json.exit_code == 0, json.err);
    BOOST_TEST(json.out == heatmap_json(heatmap) + "\n");
    auto csv_args = args;
    csv_args.insert(csv_args.end(), {"--format", "csv"});
    BOOST_TEST(run_cli_program(csv_args).out == heatmap_csv(heatmap));
  }

  // The table: counts when stdout is not a terminal, shades with --color always.
  auto table = run_cli_program({"--db", db, "analytics", "heatmap", "--since", kWindow.since, "--until",
                         kWindow.until, "--tz", "Europe/Berlin"});
  BOOST_TEST_REQUIRE(table.exit_code == 0, table.err);
  std::string sunday = "Sun";
  for (auto count : heatmap.weekly[6]) sunday += "  " + std::to_string(count);
  auto squeeze = [](std::string text) {  // columns are padded: compare with single gaps
    std::string out;
    for (char c : text) {
      if (c == ' ' && !out.empty() && out.back() == ' ') continue;
      out += c;
    }
    return out;
  };
  BOOST_TEST(squeeze(table.out).find(squeeze(sunday) + "\n") != std::string::npos, table.out);
  BOOST_TEST(table.out.find("\xe2\x96\x88") == std::string::npos);  // no █
  auto shaded = run_cli_program({"--db", db, "--color", "always", "analytics", "heatmap", "--since",
                          kWindow.since, "--until", kWindow.until, "--tz", "Europe/Berlin"});
  BOOST_TEST(shaded.exit_code == 0, shaded.err);
  BOOST_TEST(shaded.out.find("\xe2\x96\x88") != std::string::npos, shaded.out);  // █ the busiest

  auto durations = run_cli_program({"--db", db, "analytics", "durations", "--since", kWindow.since,
                             "--until", kWindow.until});
  BOOST_TEST(durations.exit_code == 0, durations.err);
  BOOST_TEST(durations.out.find(std::to_string(durations_by_hand(rows, kWindow).sessions) +
                                " sessions created") != std::string::npos,
             durations.out);
  auto approvals = run_cli_program({"--db", db, "analytics", "approvals", "--since", kWindow.since,
                                   "--until", kWindow.until, "--tz", "Europe/Berlin", "--format",
                                   "csv"});
  BOOST_TEST(approvals.out == approvals_csv(approvals_by_hand(rows, kWindow)));

  // Usage errors: exit 2, the parameter named.
  auto bad_tz = run_cli_program({"--db", db, "analytics", "heatmap", "--tz", "Nowhere/Atlantis"});
  BOOST_TEST(bad_tz.exit_code == 2);
  BOOST_TEST(bad_tz.err.find("tz") != std::string::npos, bad_tz.err);
  BOOST_TEST(run_cli_program({"--db", db, "analytics", "durations", "--tz", "UTC"}).exit_code == 2);
  BOOST_TEST(run_cli_program({"--db", db, "analytics", "weather"}).exit_code == 2);
  BOOST_TEST(run_cli_program({"--db", db, "analytics"}).exit_code == 2);
}

// The simulator on a simulated clock from 2026-10-25T00:40Z (Berlin changes
// back from CEST to CET at 01:00Z) through a real daemon: the answers over
// windows with odd edges equal the independent count over what it stored.
BOOST_AUTO_TEST_CASE(a_simulated_history_across_the_autumn_change,
                     *boost::unit_test::precondition(ProgramsBuilt())) {
  TempDir dir;
  Sim sim(dir, "sim", {"--count", "3000", "--format", "mixed", "--sessions", "25", "--seed", "9",
                       "--start-time", "2026-10-25T00:40:00Z"});
  Daemon daemon(dir, sim.url());
  BOOST_REQUIRE_MESSAGE(sim.wait_sent(), "simulator: " << sim.process().stderr_text());
  BOOST_REQUIRE_MESSAGE(wait_until(
                            [&] {
                              auto stats = daemon.get("/api/stats").body;
                              return stats.find("\"deltaCount\":3000") != std::string::npos;
                            },
                            60s),
                        "daemon: " << daemon.process->stderr_text());
  auto rows = daemon.deltas();
  BOOST_TEST_REQUIRE(rows.size() == 3000u);
  daemon.check(rows, {"2026-10-25T00:47:13.250Z", "2026-10-25T01:13:07.000Z", std::nullopt,
                      "Europe/Berlin"});
  daemon.check(rows, {"2026-10-24T00:00:00.000Z", "2026-10-26T00:00:00.000Z", std::nullopt,
                      "Europe/Berlin"});
  daemon.check(rows, {"2026-10-24T00:00:00.000Z", "2026-10-26T00:00:00.000Z", "acme/widgets",
                      "UTC"});
  // The simulated hour lands on local hours 2 of Sunday, in CEST and then CET.
  auto heatmap = heatmap_by_hand(rows, {"2026-10-24T00:00:00.000Z", "2026-10-26T00:00:00.000Z",
                                        std::nullopt, "Europe/Berlin"});
  BOOST_TEST(heatmap.weekly[6][2] > 0);
}
