// The web console (design.md, "Web console"; docs/console.md): its files as the
// daemon serves them, and the pages in a real headless browser.
//
// The browser part runs tests/console/console_check.py (python3-selenium
// driving Debian's chromium through chromium-driver) against a real deltatapd
// fed by the simulator, with [http] token set so the page has to ask for it.
// The simulator cannot send a hostile session id, so the daemon starts from a
// data file written through the library that holds one (text with <script>
// and an <img onerror> in it), with a gap; reconciliation against the
// simulator's live sessions then ends it with an inferred step. The script
// prints one line per check; screenshots of every page are left under the
// build tree in console-screenshots/ (docs/console-*.png are copies of them).
#define BOOST_TEST_MODULE console
#include <boost/test/unit_test.hpp>

#include <cctype>
#include <chrono>
#include <csignal>
#include <fstream>
#include <iterator>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "base/delta.h"
#include "base/timestamp.h"
#include "skip.h"
#include "storage/store.h"
#include "test_support.h"

using namespace deltatap;
using namespace deltatap::testing;

namespace {

const std::string kToken = "console-test-token";
const std::string kHostileId =
    "<script>window.__xss=1</script><img src=x onerror=\"window.__xss=2\">";
const std::string kChartJs = "/usr/share/javascript/chart.js/chart.min.js";

std::string header_value(const HttpResponse& response, const std::string& name) {
  std::istringstream lines(response.headers);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.size() <= name.size() + 1 || line[name.size()] != ':') continue;
    bool same = true;
    for (std::size_t i = 0; i < name.size() && same; ++i) {
      same = std::tolower(static_cast<unsigned char>(line[i])) ==
             std::tolower(static_cast<unsigned char>(name[i]));
    }
    if (!same) continue;
    auto value = line.substr(name.size() + 1);
    auto begin = value.find_first_not_of(' ');
    auto end = value.find_last_not_of("\r ");
    return begin == std::string::npos ? "" : value.substr(begin, end - begin + 1);
  }
  return "";
}

std::string file_bytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// data/sessions.sqlite holding the hostile session: created two days ago, then
// an update whose before state is not the one stored (a gap, as the ledger's
// rule would have decided), both as the stream would have delivered them.
void write_hostile_store(const fs::path& db) {
  auto store = Store::open_empty();
  if (!store.ok()) throw std::runtime_error("open_empty: " + store.error());
  auto at = [](int hours_ago) {
    return format_timestamp(now_millis() - std::chrono::hours(hours_ago));
  };
  std::string quoted_id = "\"<script>window.__xss=1</script><img src=x onerror=\\\"window.__xss=2\\\">\"";
  auto state = [&](const std::string& plan, const std::string& approval) {
    return "{\"id\":" + quoted_id + ",\"repo\":\"<b>evil/repo</b>\",\"planStatus\":" + plan +
           ",\"approval\":" + approval + ",\"traceId\":9007199254740993}";
  };
  std::vector<StoredDelta> rows(2);
  rows[0].delta = {kHostileId, DeltaType::created, std::nullopt,
                   state("\"<i>pending</i>\"", "\"pending\""), at(50)};
  rows[0].created_at = rows[0].delta.timestamp;
  rows[1].delta = {kHostileId, DeltaType::updated, state("\"in_progress\"", "\"pending\""),
                   state("\"failed\"", "{\"state\":\"rejected\"}"), at(48)};
  rows[1].created_at = rows[1].delta.timestamp;
  rows[1].gap = true;
  if (auto s = (*store)->save_with_created_at(rows); !s.ok()) {
    throw std::runtime_error("save_with_created_at: " + s.error());
  }
  fs::create_directories(db.parent_path());
  fs::permissions(db.parent_path(), fs::perms::owner_all);
  if (auto s = (*store)->write_copy(db.string()); !s.ok()) {
    throw std::runtime_error("write_copy: " + s.error());
  }
}

std::string probe_browser() {
  for (const char* path : {"/usr/bin/chromium", "/usr/bin/chromedriver"}) {
    if (!fs::exists(path)) return std::string(path) + " is missing (chromium, chromium-driver)";
  }
  if (!fs::exists(kChartJs)) return kChartJs + " is missing (libjs-chart.js)";
  auto selenium = run_command({"/usr/bin/python3", "-c", "import selenium"});
  if (selenium.exit_code != 0) return "python3-selenium is missing: " + selenium.err;
  return "";
}

}  // namespace

// No browser: what the listener answers for the console's files, with a token set.
BOOST_AUTO_TEST_CASE(the_console_files_load_without_the_token_and_nothing_else_does) {
  TempDir dir;
  write_file(dir / "deltatap.conf", "[http]\ntoken = " + kToken + "\n");
  int http_port = free_port();
  // The stream URL is dead: the files do not need a connection.
  auto env = daemon_env("ws://127.0.0.1:" + std::to_string(free_port()) + "/ws", "");
  env["DELTATAP_HTTP"] = "127.0.0.1:" + std::to_string(http_port);
  Process daemon({deltatapd_argv({"--config", (dir / "deltatap.conf").string()}), env, dir.path()});
  BOOST_REQUIRE_MESSAGE(wait_until([&] { return http_request(http_port, "GET", "/healthz").status != 0; }),
                        "deltatapd did not answer: " << daemon.stderr_text());

  auto page = http_request(http_port, "GET", "/ui/");
  BOOST_TEST(page.status == 200);
  BOOST_TEST(header_value(page, "Content-Type") == "text/html; charset=utf-8");
  BOOST_TEST(page.body.find("src=\"console.js\"") != std::string::npos);
  auto csp = header_value(page, "Content-Security-Policy");
  BOOST_TEST(csp.find("script-src 'self'") != std::string::npos, csp);
  BOOST_TEST(csp.find("unsafe-inline") == std::string::npos, csp);
  BOOST_TEST(header_value(page, "X-Content-Type-Options") == "nosniff");
  auto etag = header_value(page, "ETag");
  BOOST_TEST(etag.size() > 2);
  auto again = http_request(http_port, "GET", "/ui/", {"If-None-Match: " + etag});
  BOOST_TEST(again.status == 304);
  BOOST_TEST(again.body.empty());

  // The files are the ones in the tree and Debian's Chart.js, byte for byte,
  // each with its type; all of them together (the first load fetches every
  // one) are at most 300 KB.
  std::size_t total = 0;
  std::vector<std::pair<std::string, fs::path>> files = {{"chart.min.js", kChartJs}};
  for (const auto& entry : fs::directory_iterator(source_dir() / "lib/api/console")) {
    files.emplace_back(entry.path().filename().string(), entry.path());
  }
  for (const auto& [name, path] : files) {
    auto answer = http_request(http_port, "GET", "/ui/" + name);
    BOOST_TEST(answer.status == 200, name);
    BOOST_TEST((answer.body == file_bytes(path)), name << " differs from " << path);
    auto type = header_value(answer, "Content-Type");
    auto ext = path.extension().string();
    BOOST_TEST(type == (ext == ".js"     ? "text/javascript; charset=utf-8"
                        : ext == ".css"  ? "text/css; charset=utf-8"
                                         : "text/html; charset=utf-8"),
               name << ": " << type);
    total += answer.body.size();
  }
  BOOST_TEST(total <= 300u * 1024, "the console's files are " << total << " bytes");

  auto bare = http_request(http_port, "GET", "/ui");
  BOOST_TEST(bare.status == 308);
  BOOST_TEST(header_value(bare, "Location") == "/ui/");
  BOOST_TEST(http_request(http_port, "GET", "/ui/missing.js").status == 404);
  BOOST_TEST(http_request(http_port, "POST", "/ui/").status == 405);
  // A path that only starts like the console's is the API's, and needs the token;
  // one under /ui/ never reaches an API route.
  BOOST_TEST(http_request(http_port, "GET", "/uix").status == 401);
  auto escape = http_request(http_port, "GET", "/ui/../api/stats");
  BOOST_TEST(escape.status == 404);
  BOOST_TEST(escape.body.find("deltaCount") == std::string::npos);
  BOOST_TEST(http_request(http_port, "GET", "/api/stats").status == 401);
  BOOST_TEST(http_request(http_port, "GET", "/api/stats", {"Authorization: Bearer " + kToken}).status ==
             200);

  daemon.signal(SIGTERM);
  BOOST_TEST(daemon.wait(30s).value_or(-1) == 0, daemon.stderr_text());
}

BOOST_AUTO_TEST_CASE(every_page_works_in_headless_chromium, *needs(probe_browser)) {
  TempDir dir;
  write_hostile_store(dir / "data/sessions.sqlite");
  write_file(dir / "deltatap.conf", "[http]\ntoken = " + kToken + "\n");

  // Seeded and fast, so the history is all there before the browser looks:
  // the heatmap's total is then the same for the page and for the check.
  Sim sim(dir, "sim", {"--count", "600", "--rate", "400", "--sessions", "12", "--seed", "7"});
  int http_port = free_port();
  auto env = daemon_env(sim.url(), "");
  env["DELTATAP_HTTP"] = "127.0.0.1:" + std::to_string(http_port);
  env["DELTATAP_RECONCILE"] = "on";  // ends the hostile session: an inferred step
  Process daemon({deltatapd_argv({"--config", (dir / "deltatap.conf").string()}), env, dir.path()});

  BOOST_REQUIRE_MESSAGE(sim.wait_sent(), "the simulator did not finish: " << sim.process().stderr_text());
  const long sent = sim.sent().value_or(-1);
  const std::vector<std::string> auth = {"Authorization: Bearer " + kToken};
  auto delta_count = [&] {
    return json_integer(http_request(http_port, "GET", "/api/stats", auth).body, "deltaCount")
        .value_or(-1);
  };
  // Everything sent is stored (beside the two seeded deltas), reconciliation
  // has run, and the daemon is ready: nothing more arrives while the browser looks.
  BOOST_REQUIRE_MESSAGE(
      wait_until(
          [&] {
            return delta_count() >= sent + 2 &&
                   daemon.stderr_contains("Reconciled with the backend's live sessions") &&
                   http_request(http_port, "GET", "/readyz", auth).status == 200;
          },
          60s),
      "the daemon did not settle: " << delta_count() << " deltas of " << sent + 2 << "\n"
                                    << daemon.stderr_text().substr(0, 4000));

  fs::path shots = bin_dir() / "console-screenshots";
  fs::create_directories(shots);
  Process check({{"/usr/bin/python3", (source_dir() / "tests/console/console_check.py").string(),
                  "--url", "http://127.0.0.1:" + std::to_string(http_port), "--screenshots",
                  shots.string(), "--token", kToken, "--hostile-id", kHostileId},
                 {},
                 dir.path()});
  auto code = check.wait(240s);
  if (!code) check.signal(SIGKILL);
  BOOST_TEST_MESSAGE(check.stdout_text());
  std::istringstream lines(check.stdout_text());
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind("FAIL: ", 0) == 0) BOOST_ERROR(line);
  }
  BOOST_TEST(code.value_or(-1) == 0, "console_check.py exited " << code.value_or(-1) << ":\n"
                                                                << check.stdout_text() << "\n"
                                                                << check.stderr_text());
  BOOST_TEST(daemon.running());
  daemon.signal(SIGTERM);
  BOOST_TEST(daemon.wait(30s).value_or(-1) == 0, daemon.stderr_text());
}
