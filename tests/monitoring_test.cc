// Monitoring that ships (issue 18): the Prometheus alerting rules pass
// promtool's checks and their own unit tests, the Grafana dashboard is valid
// JSON whose queries parse, and every metric either of them names is one the
// real daemon exposes (but those documented as future). A fresh daemon shows
// every labelled counter with all its known labels at 0, its build and the
// process_* figures, plausible.
//
// promtool is required, not optional: scripts/setup installs it (Debian's
// prometheus package), and a missing one fails these tests rather than
// skipping them.
#define BOOST_TEST_MODULE monitoring
#include <boost/test/unit_test.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <rapidjson/document.h>
#include <rapidjson/error/en.h>

#include <cctype>
#include <chrono>
#include <set>
#include <sstream>

#include "api/metrics.h"
#include "test_support.h"

using namespace deltatap;
using namespace deltatap::testing;

namespace {

fs::path rules_file() { return source_dir() / "packaging/prometheus/deltatap.rules.yml"; }
fs::path rules_test_file() { return source_dir() / "packaging/prometheus/deltatap.rules.test.yml"; }
fs::path dashboard_file() { return source_dir() / "packaging/grafana/deltatap-dashboard.json"; }

// Metrics the rules use before the daemon has them; each is marked
// "future: NAME" in the rules file, where its absence is explained.
const std::set<std::string> kFutureMetrics = {};

void require_promtool() {
  BOOST_REQUIRE_MESSAGE(run_command({"/bin/sh", "-c", "command -v promtool"}).exit_code == 0,
                        "promtool is not installed; scripts/setup installs it (Debian package "
                        "prometheus)");
}

// promtool from the PATH (run_command takes a path, as execve does).
CommandResult promtool(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {"/bin/sh", "-c", "exec promtool \"$@\"", "promtool"};
  argv.insert(argv.end(), args.begin(), args.end());
  return run_command(argv);
}

bool name_char(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == ':'; }

// The metric names a text mentions: words starting "deltatap_" or "process_".
// (Alert names are CamelCase, label names and Grafana variables differ.)
std::set<std::string> metric_names_in(std::string_view text) {
  std::set<std::string> names;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (i > 0 && (name_char(text[i - 1]) || text[i - 1] == '$')) continue;
    auto rest = text.substr(i);
    if (rest.rfind("deltatap_", 0) != 0 && rest.rfind("process_", 0) != 0) continue;
    std::size_t end = i;
    while (end < text.size() && name_char(text[end])) ++end;
    names.emplace(text.substr(i, end - i));
    i = end;
  }
  return names;
}

// The rules file without its comments: what Prometheus reads.
std::string without_comments(const std::string& yaml) {
  std::istringstream in(yaml);
  std::string out;
  for (std::string line; std::getline(in, line);) {
    auto start = line.find_first_not_of(' ');
    if (start != std::string::npos && line[start] == '#') continue;
    if (auto hash = line.find(" #"); hash != std::string::npos) line.erase(hash);
    out += line;
    out += '\n';
  }
  return out;
}

// Every sample name on a page ("name{...} value" or "name value").
std::set<std::string> names_on_page(const std::string& page) {
  std::set<std::string> names;
  std::istringstream in(page);
  for (std::string line; std::getline(in, line);) {
    if (line.empty() || line[0] == '#') continue;
    names.insert(line.substr(0, line.find_first_of("{ ")));
  }
  return names;
}

// The sample line's value for `series` (name plus labels), or "" when absent.
std::string sample(const std::string& page, const std::string& series) {
  std::istringstream in(page);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(series + " ", 0) == 0) return line.substr(series.size() + 1);
  }
  return "";
}

double number(const std::string& page, const std::string& series) {
  auto text = sample(page, series);
  BOOST_TEST_REQUIRE(!text.empty(), series << " is not on the page");
  return std::stod(text);
}

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// Whether something accepts TCP connections on 127.0.0.1:port. Connecting and
// closing without a request is no HTTP request: nothing is counted.
bool accepts_connections(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<std::uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0;
  ::close(fd);
  return ok;
}

// The first /metrics page of a daemon that has done nothing yet: its stream
// URL leads nowhere and no request came before this one. Its configuration
// sets the limits the alerts compare against to values other than their
// defaults.
struct FreshScrape {
  int status = 0;
  std::string page;
  double started = 0;  // just before the process was started
  double scraped = 0;  // just after the page arrived
  std::string log;
  std::string promtool_says;
  int promtool_exit = -1;
};

const FreshScrape& fresh_scrape() {
  static const FreshScrape scrape = [] {
    FreshScrape s;
    TempDir dir;
    write_file(dir / "deltatap.conf",
               "[stream]\nbuffer = 1MiB\n\n[storage]\nmax_deltas = 5000\n");
    int http_port = free_port();
    auto env = daemon_env("ws://127.0.0.1:" + std::to_string(free_port()) + "/ws", "");
    env["DELTATAP_HTTP"] = "127.0.0.1:" + std::to_string(http_port);
    s.started = now_seconds();
    Process daemon({deltatapd_argv({"--config", (dir / "deltatap.conf").string()}), env, dir.path()});
    if (wait_until([&] { return accepts_connections(http_port) || !daemon.running(); }, 60s) &&
        daemon.running()) {
      auto reply = http_request(http_port, "GET", "/metrics");
      s.scraped = now_seconds();
      s.status = reply.status;
      s.page = reply.body;
      write_file(dir / "metrics.txt", s.page);
      auto check = run_command(
          {"/bin/sh", "-c", "promtool check metrics < '" + (dir / "metrics.txt").string() + "'"});
      s.promtool_exit = check.exit_code;
      s.promtool_says = check.out + check.err;
      daemon.signal(SIGTERM);
      daemon.wait(30s);
    }
    s.log = daemon.stderr_text();
    return s;
  }();
  BOOST_TEST_REQUIRE(scrape.status == 200, "no /metrics page from deltatapd:\n" << scrape.log);
  return scrape;
}

rapidjson::Document dashboard() {
  rapidjson::Document doc;
  auto text = read_file(dashboard_file());
  BOOST_TEST_REQUIRE(!text.empty(), dashboard_file() << " is missing or empty");
  doc.Parse(text.c_str(), text.size());
  BOOST_TEST_REQUIRE(!doc.HasParseError(), dashboard_file()
                                                << ": " << rapidjson::GetParseError_En(doc.GetParseError())
                                                << " at byte " << doc.GetErrorOffset());
  BOOST_TEST_REQUIRE(doc.IsObject());
  return doc;
}

// Every query of the dashboard: its panels' targets (rows nest panels) and
// its variables' queries, with where each is.
struct Query {
  std::string where;
  std::string expr;
};

void collect_panel_queries(const rapidjson::Value& panels, std::vector<Query>& queries,
                           std::set<int>& ids) {
  BOOST_TEST_REQUIRE(panels.IsArray());
  for (const auto& panel : panels.GetArray()) {
    BOOST_TEST_REQUIRE(panel.IsObject());
    BOOST_TEST_REQUIRE((panel.HasMember("title") && panel["title"].IsString()));
    std::string title = panel["title"].GetString();
    BOOST_TEST_CONTEXT("panel " << title) {
      BOOST_TEST(!title.empty());
      BOOST_TEST_REQUIRE((panel.HasMember("type") && panel["type"].IsString()));
      BOOST_TEST_REQUIRE((panel.HasMember("id") && panel["id"].IsInt()));
      BOOST_TEST(ids.insert(panel["id"].GetInt()).second, "panel id " << panel["id"].GetInt() << " twice");
      BOOST_TEST_REQUIRE((panel.HasMember("gridPos") && panel["gridPos"].IsObject()));
      const auto& grid = panel["gridPos"];
      for (const char* key : {"h", "w", "x", "y"}) {
        BOOST_TEST_REQUIRE((grid.HasMember(key) && grid[key].IsInt() && grid[key].GetInt() >= 0), key);
      }
      BOOST_TEST(grid["x"].GetInt() + grid["w"].GetInt() <= 24);
      std::string type = panel["type"].GetString();
      if (type != "row") {
        BOOST_TEST_REQUIRE((panel.HasMember("targets") && panel["targets"].IsArray()));
        BOOST_TEST(!panel["targets"].Empty());
        std::set<std::string> ref_ids;
        for (const auto& target : panel["targets"].GetArray()) {
          BOOST_TEST_REQUIRE((target.HasMember("expr") && target["expr"].IsString()));
          BOOST_TEST_REQUIRE((target.HasMember("refId") && target["refId"].IsString()));
          BOOST_TEST(ref_ids.insert(target["refId"].GetString()).second);
          std::string expr = target["expr"].GetString();
          BOOST_TEST(!expr.empty());
          queries.push_back({"panel \"" + title + "\" " + target["refId"].GetString(), expr});
        }
      }
      if (panel.HasMember("panels")) collect_panel_queries(panel["panels"], queries, ids);
    }
  }
}

std::vector<Query> dashboard_queries(const rapidjson::Document& doc) {
  std::vector<Query> queries;
  std::set<int> ids;
  BOOST_TEST_REQUIRE((doc.HasMember("panels") && doc["panels"].IsArray() && !doc["panels"].Empty()));
  collect_panel_queries(doc["panels"], queries, ids);
  if (doc.HasMember("templating") && doc["templating"].HasMember("list")) {
    for (const auto& variable : doc["templating"]["list"].GetArray()) {
      if (!variable.HasMember("definition") || !variable["definition"].IsString()) continue;
      queries.push_back({std::string("variable ") + variable["name"].GetString(),
                         variable["definition"].GetString()});
    }
  }
  return queries;
}

// Grafana's variables as a query would see them, so that promtool can parse it.
std::string as_promql(std::string expr) {
  auto replace_all = [&](const std::string& from, const std::string& to) {
    for (auto at = expr.find(from); at != std::string::npos; at = expr.find(from, at + to.size())) {
      expr.replace(at, from.size(), to);
    }
  };
  replace_all("$__rate_interval", "5m");
  replace_all("$__interval", "1m");
  replace_all("$job", ".+");
  replace_all("$instance", ".+");
  return expr;
}

}  // namespace

// --- the rules -----------------------------------------------------------------

BOOST_AUTO_TEST_CASE(promtool_checks_the_rules) {
  require_promtool();
  auto result = promtool({"check", "rules", rules_file().string()});
  BOOST_TEST(result.exit_code == 0, "promtool check rules:\n" << result.out << result.err);
  BOOST_TEST(result.out.find("SUCCESS") != std::string::npos, result.out << result.err);
}

BOOST_AUTO_TEST_CASE(the_rules_pass_their_unit_tests) {
  require_promtool();
  auto result = promtool({"test", "rules", rules_test_file().string()});
  BOOST_TEST(result.exit_code == 0, "promtool test rules:\n" << result.out << result.err);
  BOOST_TEST(result.out.find("SUCCESS") != std::string::npos, result.out << result.err);
}

// Issue 18's list: stream down, no snapshot for 2 intervals, snapshot
// failures, rejected-frame rate, gaps, memory near the guard; and the queue.
BOOST_AUTO_TEST_CASE(the_rules_cover_what_the_issue_asks) {
  auto rules = read_file(rules_file());
  for (const std::string alert :
       {"DeltatapStreamDown", "DeltatapSnapshotOverdue", "DeltatapSnapshotFailing",
        "DeltatapFramesRejected", "DeltatapGaps", "DeltatapMemoryGuardNear",
        "DeltatapStreamQueueNearFull", "DeltatapStreamReadingPaused"}) {
    BOOST_TEST(rules.find("- alert: " + alert + "\n") != std::string::npos, alert);
    // Each is exercised by the unit tests, not merely parsed.
    BOOST_TEST(read_file(rules_test_file()).find("alertname: " + alert + "\n") != std::string::npos,
               alert << " has no unit test");
  }
}

// --- the dashboard -----------------------------------------------------------------

BOOST_AUTO_TEST_CASE(the_dashboard_is_valid_and_its_queries_parse) {
  require_promtool();
  auto doc = dashboard();
  BOOST_TEST_REQUIRE((doc.HasMember("title") && doc["title"].IsString()));
  BOOST_TEST_REQUIRE((doc.HasMember("uid") && doc["uid"].IsString()));
  BOOST_TEST_REQUIRE((doc.HasMember("schemaVersion") && doc["schemaVersion"].IsInt()));
  auto queries = dashboard_queries(doc);
  BOOST_TEST(queries.size() >= 10u);

  // promtool has no query parser of its own; a rules file of one recording
  // rule per query is parsed in full.
  std::string rules = "groups:\n  - name: dashboard\n    rules:\n";
  int n = 0;
  for (const auto& query : queries) {
    if (query.where.rfind("variable ", 0) == 0) continue;  // label_values() is Grafana's
    rules += "      - record: dashboard:query_" + std::to_string(n++) + "\n        expr: |\n";
    std::istringstream lines(as_promql(query.expr));
    for (std::string line; std::getline(lines, line);) rules += "          " + line + "\n";
  }
  TempDir dir;
  write_file(dir / "dashboard.rules.yml", rules);
  auto result = promtool({"check", "rules", (dir / "dashboard.rules.yml").string()});
  BOOST_TEST(result.exit_code == 0, "a dashboard query does not parse:\n"
                                        << result.out << result.err << "\n" << rules);
}

// The panels the issue asks for, by what they query.
BOOST_AUTO_TEST_CASE(the_dashboard_shows_each_part_of_the_daemon) {
  std::set<std::string> used;
  for (const auto& query : dashboard_queries(dashboard())) used.merge(metric_names_in(query.expr));
  for (const std::string name :
       {"deltatap_deltas_received_total", "deltatap_deltas_stored_total",
        "deltatap_stream_queue_bytes", "deltatap_snapshot_last_success_timestamp_seconds",
        "deltatap_snapshot_duration_seconds_bucket", "deltatap_snapshot_failures_total",
        "deltatap_messages_rejected_total", "deltatap_http_requests_total",
        "deltatap_query_duration_seconds_bucket", "process_resident_memory_bytes",
        "process_cpu_seconds_total", "deltatap_websocket_connected", "deltatap_build_info"}) {
    BOOST_TEST(used.count(name) == 1u, name << " is on no panel");
  }
}

// --- against the real daemon ----------------------------------------------------------

BOOST_AUTO_TEST_CASE(every_metric_the_dashboard_queries_is_exposed) {
  auto exposed = names_on_page(fresh_scrape().page);
  for (const auto& query : dashboard_queries(dashboard())) {
    for (const auto& name : metric_names_in(query.expr)) {
      BOOST_TEST(exposed.count(name) == 1u, query.where << " queries " << name
                                                        << ", which deltatapd does not expose");
    }
  }
}

BOOST_AUTO_TEST_CASE(every_metric_the_rules_use_is_exposed_or_documented_as_future) {
  auto exposed = names_on_page(fresh_scrape().page);
  auto text = read_file(rules_file());
  auto used = metric_names_in(without_comments(text));
  BOOST_TEST(used.size() >= 10u);
  for (const auto& name : used) {
    if (kFutureMetrics.count(name)) continue;
    BOOST_TEST(exposed.count(name) == 1u, "the rules use " << name << ", which deltatapd does not expose");
  }
  for (const auto& name : kFutureMetrics) {
    BOOST_TEST(text.find("future: " + name) != std::string::npos,
               name << " is used before it exists but not marked \"future: " << name << "\"");
    BOOST_TEST(exposed.count(name) == 0u,
               "deltatapd exposes " << name << " now: it is no longer future (kFutureMetrics, the rules' note)");
  }
}

BOOST_AUTO_TEST_CASE(a_fresh_daemon_shows_every_known_label_at_zero) {
  const auto& page = fresh_scrape().page;
  for (auto reason : known_rejection_reasons()) {
    BOOST_TEST(sample(page, "deltatap_messages_rejected_total{reason=\"" + std::string(reason) + "\"}") == "0",
               reason);
  }
  // No request came before the first scrape, and a page is counted once it is sent.
  for (int code : kHttpStatusCodes) {
    BOOST_TEST(sample(page, "deltatap_http_requests_total{code=\"" + std::to_string(code) + "\"}") == "0",
               code);
  }
  for (const std::string type : {"created", "updated", "deleted"}) {
    BOOST_TEST(sample(page, "deltatap_deltas_received_total{type=\"" + type + "\"}") == "0", type);
    BOOST_TEST(sample(page, "deltatap_deltas_stored_total{type=\"" + type + "\"}") == "0", type);
  }
  for (std::size_t i = 0; i < kQueryKinds; ++i) {
    std::string kind(to_string(static_cast<QueryKind>(i)));
    BOOST_TEST(!sample(page, "deltatap_query_duration_seconds_count{query=\"" + kind + "\"}").empty(), kind);
  }
  BOOST_TEST(sample(page, "deltatap_snapshot_failures_total") == "0");
  BOOST_TEST(sample(page, "deltatap_stream_queue_full_total") == "0");
}

BOOST_AUTO_TEST_CASE(a_fresh_daemon_shows_its_build_and_plausible_process_figures) {
  const auto& scrape = fresh_scrape();
  const auto& page = scrape.page;
  BOOST_TEST(sample(page, "deltatap_build_info{version=\"" DELTATAP_VERSION "\"}") == "1");
  BOOST_TEST(page.find("# TYPE deltatap_build_info gauge\n") != std::string::npos);

  // Started between the test's clock reading and the scrape (clock ticks and
  // the two clocks allow for a little slack).
  double start = number(page, "process_start_time_seconds");
  BOOST_TEST(start >= scrape.started - 2);
  BOOST_TEST(start <= scrape.scraped + 2);
  double resident = number(page, "process_resident_memory_bytes");
  BOOST_TEST(resident > 1024.0 * 1024);
  BOOST_TEST(resident < 16.0 * 1024 * 1024 * 1024);
  BOOST_TEST(number(page, "process_virtual_memory_bytes") >= resident);
  double open_fds = number(page, "process_open_fds");
  double max_fds = number(page, "process_max_fds");
  BOOST_TEST(open_fds >= 3);  // stdin, stdout, stderr at least; the listener, SQLite, ...
  BOOST_TEST(max_fds >= 64);
  BOOST_TEST(open_fds < max_fds);
  double cpu = number(page, "process_cpu_seconds_total");
  BOOST_TEST(cpu >= 0);
  BOOST_TEST(cpu < 600);
  for (const std::string family :
       {"process_cpu_seconds_total counter", "process_resident_memory_bytes gauge",
        "process_open_fds gauge", "process_max_fds gauge", "process_start_time_seconds gauge"}) {
    BOOST_TEST(page.find("# TYPE " + family + "\n") != std::string::npos, family);
  }
}

// What the alerts compare against follows the configuration: the service sets
// Metrics::snapshot_interval(), store_max_deltas() and stream_queue_capacity().
BOOST_AUTO_TEST_CASE(the_limits_the_alerts_compare_against_follow_the_configuration) {
  const auto& page = fresh_scrape().page;
  BOOST_TEST(number(page, "deltatap_snapshot_interval_seconds") == 600);  // SNAPSHOT_INTERVAL=600000
  BOOST_TEST(number(page, "deltatap_store_max_deltas") == 5000);
  BOOST_TEST(number(page, "deltatap_stream_queue_capacity_bytes") == 1024 * 1024);
}

BOOST_AUTO_TEST_CASE(promtool_accepts_the_daemons_page) {
  require_promtool();
  const auto& scrape = fresh_scrape();
  BOOST_TEST(scrape.promtool_exit == 0, "promtool check metrics: " << scrape.promtool_says);
}
