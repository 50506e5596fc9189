// The metrics registry: what the service counts shows up on the Prometheus page
// with the right names, labels and histogram arithmetic, and the page passes
// promtool's own checker.
#define BOOST_TEST_MODULE metrics
#include <boost/test/unit_test.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <set>
#include <sstream>
#include <thread>

#include "api/metrics.h"
#include "test_support.h"

using namespace deltatap;
using namespace deltatap::testing;

namespace {

// The sample line for `series` (name plus labels), or "" when absent.
std::string sample(const std::string& page, const std::string& series) {
  std::istringstream in(page);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(series + " ", 0) == 0) return line.substr(series.size() + 1);
  }
  return "";
}

bool has_promtool() { return run_command({"/bin/sh", "-c", "command -v promtool"}).exit_code == 0; }

struct PromtoolAvailable {
  boost::test_tools::assertion_result operator()(boost::unit_test::test_unit_id) const {
    boost::test_tools::assertion_result result(has_promtool());
    result.message() << "promtool not installed (Debian package prometheus; scripts/setup installs it)";
    return result;
  }
};

}  // namespace

BOOST_AUTO_TEST_CASE(counters_by_delta_type_reach_the_page) {
  Metrics metrics;
  metrics.deltas_received(DeltaType::created).inc(3);
  metrics.deltas_received(DeltaType::updated).inc();
  metrics.deltas_stored(DeltaType::deleted).inc(2);
  auto page = metrics.render();
  BOOST_TEST(sample(page, "deltatap_deltas_received_total{type=\"created\"}") == "3");
  BOOST_TEST(sample(page, "deltatap_deltas_received_total{type=\"updated\"}") == "1");
  BOOST_TEST(sample(page, "deltatap_deltas_received_total{type=\"deleted\"}") == "0");
  BOOST_TEST(sample(page, "deltatap_deltas_stored_total{type=\"deleted\"}") == "2");
  BOOST_TEST(page.find("# TYPE deltatap_deltas_received_total counter") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(a_handle_is_stable_and_cheap_to_keep) {
  Metrics metrics;
  Counter& created = metrics.deltas_stored(DeltaType::created);
  BOOST_TEST(&created == &metrics.deltas_stored(DeltaType::created));
  Counter& reason = metrics.messages_rejected("not_json");
  for (int i = 0; i < 70; ++i) metrics.messages_rejected("other_" + std::to_string(i));
  BOOST_TEST(&reason == &metrics.messages_rejected("not_json"));
  reason.inc(5);
  BOOST_TEST(sample(metrics.render(), "deltatap_messages_rejected_total{reason=\"not_json\"}") == "5");
}

BOOST_AUTO_TEST_CASE(label_values_are_escaped_and_capped) {
  Metrics metrics;
  metrics.messages_rejected("bad \"quote\" \\ and\nnewline").inc();
  for (int i = 0; i < 200; ++i) metrics.messages_rejected("reason_" + std::to_string(i)).inc();
  auto page = metrics.render();
  BOOST_TEST(sample(page, R"(deltatap_messages_rejected_total{reason="bad \"quote\" \\ and\nnewline"})") == "1");
  // 64 series at most: the known reasons (present from the start), then 63
  // values in all as they came, the rest together as "other".
  std::size_t series = 0;
  std::istringstream in(page);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("deltatap_messages_rejected_total{", 0) == 0) ++series;
  }
  BOOST_TEST(series == 64u);
  const std::size_t own = LabelledCounters::kMaxLabelValues - 1 - known_rejection_reasons().size() - 1;
  BOOST_TEST(sample(page, "deltatap_messages_rejected_total{reason=\"other\"}") ==
             std::to_string(200 - own));
}

BOOST_AUTO_TEST_CASE(histograms_are_cumulative_with_sum_and_count) {
  Metrics metrics;
  auto& h = metrics.snapshot_duration();
  h.observe(0.004);   // <= 0.005
  h.observe(0.005);   // le is inclusive
  h.observe(0.3);     // <= 0.5
  h.observe(1000);    // only +Inf
  auto page = metrics.render();
  BOOST_TEST(sample(page, "deltatap_snapshot_duration_seconds_bucket{le=\"0.005\"}") == "2");
  BOOST_TEST(sample(page, "deltatap_snapshot_duration_seconds_bucket{le=\"0.25\"}") == "2");
  BOOST_TEST(sample(page, "deltatap_snapshot_duration_seconds_bucket{le=\"0.5\"}") == "3");
  BOOST_TEST(sample(page, "deltatap_snapshot_duration_seconds_bucket{le=\"60\"}") == "3");
  BOOST_TEST(sample(page, "deltatap_snapshot_duration_seconds_bucket{le=\"+Inf\"}") == "4");
  BOOST_TEST(sample(page, "deltatap_snapshot_duration_seconds_count") == "4");
  BOOST_TEST(std::stod(sample(page, "deltatap_snapshot_duration_seconds_sum")) ==
             1000.309, boost::test_tools::tolerance(1e-9));

  metrics.query_duration(QueryKind::deltas).observe(0.0002);
  page = metrics.render();
  BOOST_TEST(sample(page, "deltatap_query_duration_seconds_bucket{query=\"deltas\",le=\"0.00025\"}") == "1");
  BOOST_TEST(sample(page, "deltatap_query_duration_seconds_count{query=\"deltas\"}") == "1");
  BOOST_TEST(sample(page, "deltatap_query_duration_seconds_count{query=\"export_page\"}") == "0");
}

BOOST_AUTO_TEST_CASE(gauges_show_what_was_set) {
  Metrics metrics;
  metrics.websocket_connected().set(1);
  metrics.websocket_reconnects().inc(2);
  metrics.database_memory_bytes().set(36864);
  metrics.database_file_bytes().set(12288);
  metrics.delta_count().set(3000);
  metrics.journal_bytes().set(1.5e9);
  metrics.snapshot_last_success().set(1762776000.25);
  metrics.snapshot_failures().inc();
  metrics.cleanup_deleted().inc(42);
  BOOST_TEST(sample(metrics.render(), "deltatap_archive_deltas_total") == "0");  // there from the start
  metrics.archive_deltas().inc(40);
  auto page = metrics.render();
  BOOST_TEST(sample(page, "deltatap_websocket_connected") == "1");
  BOOST_TEST(sample(page, "deltatap_websocket_reconnects_total") == "2");
  BOOST_TEST(sample(page, "deltatap_database_memory_bytes") == "36864");
  BOOST_TEST(sample(page, "deltatap_database_file_bytes") == "12288");
  BOOST_TEST(sample(page, "deltatap_store_deltas") == "3000");
  BOOST_TEST(std::stod(sample(page, "deltatap_journal_bytes")) == 1.5e9);
  BOOST_TEST(sample(page, "deltatap_snapshot_last_success_timestamp_seconds") == "1762776000.25");
  BOOST_TEST(sample(page, "deltatap_snapshot_failures_total") == "1");
  BOOST_TEST(sample(page, "deltatap_cleanup_deleted_total") == "42");
  BOOST_TEST(sample(page, "deltatap_archive_deltas_total") == "40");
}

BOOST_AUTO_TEST_CASE(updates_from_another_thread_are_all_counted) {
  Metrics metrics;
  constexpr int kPerThread = 100'000;
  auto work = [&] {
    for (int i = 0; i < kPerThread; ++i) {
      metrics.deltas_stored(DeltaType::updated).inc();
      metrics.query_duration(QueryKind::sessions).observe(0.001);
      if (i % 1000 == 0) metrics.http_requests(200 + i % 3).inc();
    }
  };
  std::thread a(work), b(work);
  for (int i = 0; i < 20; ++i) (void)metrics.render();  // reading meanwhile is safe
  a.join();
  b.join();
  auto page = metrics.render();
  BOOST_TEST(sample(page, "deltatap_deltas_stored_total{type=\"updated\"}") ==
             std::to_string(2 * kPerThread));
  BOOST_TEST(sample(page, "deltatap_query_duration_seconds_count{query=\"sessions\"}") ==
             std::to_string(2 * kPerThread));
}

BOOST_AUTO_TEST_CASE(promtool_accepts_the_page,
                     *boost::unit_test::precondition(PromtoolAvailable())) {
  Metrics metrics;
  metrics.deltas_received(DeltaType::created).inc(7);
  metrics.messages_rejected("duplicate_key").inc();
  metrics.messages_rejected("needs \"escaping\"\n").inc();
  metrics.snapshot_duration().observe(0.02);
  metrics.query_duration(QueryKind::export_page).observe(0.003);
  metrics.http_requests(404).inc();
  TempDir dir;
  write_file(dir / "metrics.txt", metrics.render());
  auto result = run_command(
      {"/bin/sh", "-c", "promtool check metrics < '" + (dir / "metrics.txt").string() + "'"});
  BOOST_TEST(result.exit_code == 0, "promtool: " << result.out << result.err);
}

namespace {

// The three-digit numbers that follow `call` ("error_reply(", ...) in a text.
std::set<int> statuses_after(const std::string& text, const std::string& call) {
  std::set<int> statuses;
  for (auto at = text.find(call); at != std::string::npos; at = text.find(call, at + 1)) {
    auto digits = text.substr(at + call.size(), 4);
    if (digits.size() == 4 && std::isdigit(static_cast<unsigned char>(digits[0])) &&
        std::isdigit(static_cast<unsigned char>(digits[1])) &&
        std::isdigit(static_cast<unsigned char>(digits[2])) && !std::isdigit(static_cast<unsigned char>(digits[3]))) {
      statuses.insert(std::stoi(digits.substr(0, 3)));
    }
  }
  return statuses;
}

// The string literals passed to `call` (e.g. `rejected.get("`) in a text.
std::set<std::string> literals_after(const std::string& text, const std::string& call) {
  std::set<std::string> literals;
  for (auto at = text.find(call); at != std::string::npos; at = text.find(call, at + 1)) {
    auto start = at + call.size();
    auto end = text.find('"', start);
    if (end != std::string::npos) literals.insert(text.substr(start, end - start));
  }
  return literals;
}

}  // namespace

// design.md ("Metrics"): every labelled counter exposes all its known label
// values from the start, at 0, in a fixed order.
BOOST_AUTO_TEST_CASE(every_known_label_is_on_the_page_at_zero_from_the_start) {
  Metrics metrics;
  auto page = metrics.render();
  for (auto reason : known_rejection_reasons()) {
    BOOST_TEST(sample(page, "deltatap_messages_rejected_total{reason=\"" + std::string(reason) + "\"}") == "0",
               reason);
  }
  for (std::string_view reason : {"too_large", "binary_frame", "invalid_journal_record"}) {
    BOOST_TEST(sample(page, "deltatap_messages_rejected_total{reason=\"" + std::string(reason) + "\"}") == "0",
               reason);
  }
  for (int code : kHttpStatusCodes) {
    BOOST_TEST(sample(page, "deltatap_http_requests_total{code=\"" + std::to_string(code) + "\"}") == "0", code);
  }
  for (int code : {200, 400, 401, 403, 404, 405, 413, 503}) {
    BOOST_TEST(sample(page, "deltatap_http_requests_total{code=\"" + std::to_string(code) + "\"}") == "0", code);
  }
  // A known label counts where it stands; an unknown one is added after them.
  metrics.messages_rejected("invalid_json").inc(2);
  metrics.http_requests(404).inc();
  metrics.http_requests(418).inc();
  page = metrics.render();
  BOOST_TEST(sample(page, "deltatap_messages_rejected_total{reason=\"invalid_json\"}") == "2");
  BOOST_TEST(sample(page, "deltatap_http_requests_total{code=\"404\"}") == "1");
  BOOST_TEST(sample(page, "deltatap_http_requests_total{code=\"418\"}") == "1");
  BOOST_TEST(page.find("{code=\"503\"}") < page.find("{code=\"418\"}"));
  BOOST_TEST(page.find("{reason=\"empty_frame\"}") < page.find("{reason=\"invalid_journal_record\"}"));
}

// The known statuses are every one the API's code answers with: a new
// error_reply(4xx) must be added to kHttpStatusCodes.
BOOST_AUTO_TEST_CASE(the_known_statuses_are_those_the_api_answers_with) {
  std::set<int> answered;
  for (const auto& entry : fs::directory_iterator(source_dir() / "lib/api")) {
    if (entry.path().extension() != ".cc") continue;
    auto text = read_file(entry.path());
    for (const std::string call : {"error_reply(", "json_reply(", "error_with(", " ? 200 : "}) {
      answered.merge(statuses_after(text, call));
    }
  }
  BOOST_TEST(answered.size() >= 8u);
  std::set<int> known(kHttpStatusCodes.begin(), kHttpStatusCodes.end());
  for (int status : answered) BOOST_TEST(known.count(status) == 1u, status << " is answered but not known");
}

// Likewise every reason the code counts by name (the parser's own are
// kRejectionReasons, checked by the parser's tests).
BOOST_AUTO_TEST_CASE(the_known_reasons_include_those_counted_by_name) {
  std::set<std::string> counted;
  for (const char* room : {"lib/ingest", "lib/service", "lib/stream", "lib/storage"}) {
    for (const auto& entry : fs::directory_iterator(source_dir() / room)) {
      if (entry.path().extension() != ".cc") continue;
      auto text = read_file(entry.path());
      counted.merge(literals_after(text, "rejected.get(\""));
      counted.merge(literals_after(text, "messages_rejected(\""));
      // The replay's reason is a named constant.
      counted.merge(literals_after(text, "kInvalidJournalRecord = \""));
    }
  }
  BOOST_TEST(counted.count("too_large") == 1u);
  BOOST_TEST(counted.count("invalid_journal_record") == 1u);
  auto known = known_rejection_reasons();
  for (const auto& reason : counted) {
    BOOST_TEST((std::find(known.begin(), known.end(), reason) != known.end()),
               reason << " is counted but not known");
  }
}

BOOST_AUTO_TEST_CASE(the_build_and_the_process_are_on_the_page) {
  Metrics metrics;
  auto before = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  auto page = metrics.render();
  BOOST_TEST(sample(page, "deltatap_build_info{version=\"" DELTATAP_VERSION "\"}") == "1");
  // Unprefixed, as every Prometheus client library names them.
  for (const std::string name : {"process_cpu_seconds_total", "process_resident_memory_bytes",
                                 "process_virtual_memory_bytes", "process_open_fds",
                                 "process_max_fds", "process_start_time_seconds"}) {
    BOOST_TEST(!sample(page, name).empty(), name);
    BOOST_TEST(page.find("# HELP " + name + " ") != std::string::npos, name);
    BOOST_TEST(page.find("deltatap_" + name) == std::string::npos, name);
  }
  // This test process started before `before` and not long before (the
  // suite runs for seconds; allow minutes for a loaded machine).
  double start = std::stod(sample(page, "process_start_time_seconds"));
  BOOST_TEST(start <= before + 1);
  BOOST_TEST(start > before - 600);
  BOOST_TEST(std::stod(sample(page, "process_resident_memory_bytes")) > 0);
  BOOST_TEST(std::stod(sample(page, "process_open_fds")) >= 3);
  BOOST_TEST(std::stod(sample(page, "process_open_fds")) < std::stod(sample(page, "process_max_fds")));
  BOOST_TEST(std::stod(sample(page, "process_cpu_seconds_total")) >= 0);
  // The scrape reads /proc: a descriptor opened meanwhile is counted.
  double fds = std::stod(sample(page, "process_open_fds"));
  TempDir dir;
  int fd = ::open((dir / "held").c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
  BOOST_TEST_REQUIRE(fd >= 0);
  BOOST_TEST(std::stod(sample(metrics.render(), "process_open_fds")) == fds + 1);
  ::close(fd);
}

BOOST_AUTO_TEST_CASE(the_limits_show_what_was_set_and_0_until_then) {
  Metrics metrics;
  auto page = metrics.render();
  BOOST_TEST(sample(page, "deltatap_snapshot_interval_seconds") == "0");
  BOOST_TEST(sample(page, "deltatap_store_max_deltas") == "0");
  BOOST_TEST(sample(page, "deltatap_stream_queue_capacity_bytes") == "0");
  metrics.snapshot_interval().set(60);
  metrics.store_max_deltas().set(1'000'000);
  metrics.stream_queue_capacity().set(256.0 * 1024 * 1024);
  page = metrics.render();
  BOOST_TEST(sample(page, "deltatap_snapshot_interval_seconds") == "60");
  BOOST_TEST(std::stod(sample(page, "deltatap_store_max_deltas")) == 1e6);
  BOOST_TEST(std::stod(sample(page, "deltatap_stream_queue_capacity_bytes")) == 268435456.0);
  BOOST_TEST(page.find("# TYPE deltatap_snapshot_interval_seconds gauge\n") != std::string::npos);
}
