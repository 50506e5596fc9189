// The metrics registry: what the service counts shows up on the Prometheus page
// with the right names, labels and histogram arithmetic, and the page passes
// promtool's own checker.
#define BOOST_TEST_MODULE metrics
#include <boost/test/unit_test.hpp>

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
  // 64 series at most: 63 values as they came, the rest together as "other".
  std::size_t series = 0;
  std::istringstream in(page);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("deltatap_messages_rejected_total{", 0) == 0) ++series;
  }
  BOOST_TEST(series == 64u);
  BOOST_TEST(sample(page, "deltatap_messages_rejected_total{reason=\"other\"}") == "138");
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
