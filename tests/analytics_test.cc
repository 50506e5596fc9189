// Analytics (design.md, "Analytics"; docs/analytics.md) against an independent
// count. A history with known durations, approvals and times is written into a
// real Store through the library (and, for the routes, into a snapshot file a
// real deltatapd serves; and from the simulator on a simulated clock through a
// real deltatapd). Every figure is then computed again here with plain loops
// over the deltas themselves, in arrival order, following the definitions of
// the ledger's facts (the brief's `sessions` columns) — never the store's SQL —
// and with Europe/Berlin's offsets written out by hand (CEST +2 until
// 2026-10-25T01:00Z and from 2026-03-29T01:00Z, CET +1 otherwise), not
// through the time zone library. The answers must be equal, text for text.
#define BOOST_TEST_MODULE analytics
#include <boost/test/unit_test.hpp>

#include <rapidjson/document.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <csignal>
#include <map>
#include <sstream>

#include "api/analytics.h"
#include "api/delta_json.h"
#include "base/logging.h"
#include "base/timestamp.h"
#include "storage/snapshot.h"
#include "storage/store.h"
#include "test_support.h"
#include "analytics_history.h"

using namespace deltatap;
using namespace deltatap::testing;
using namespace deltatap::testing::analytics;
using std::chrono::milliseconds;
using std::chrono::minutes;
using std::chrono::hours;

namespace {

struct QuietLogs {
  QuietLogs() { init_logging({LogLevel::warning, LogFormat::text}); }
};
BOOST_TEST_GLOBAL_FIXTURE(QuietLogs);

// --- Asking the library -----------------------------------------------------

AnalyticsParams params_of(const Window& w, bool with_tz) {
  AnalyticsParams p{{"since", w.since}, {"until", w.until}};
  if (w.repo) p["repo"] = *w.repo;
  if (with_tz) p["tz"] = w.tz;
  return p;
}

std::string library_answer(Store& store, AnalyticsKind kind, const Window& w) {
  auto reply = analytics_reply(store, kind, params_of(w, kind != AnalyticsKind::durations),
                               now_millis());
  BOOST_TEST_REQUIRE(reply.status == 200, reply.body);
  return reply.body;
}

void check_all(Store& store, const std::vector<StoredDelta>& rows, const Window& w) {
  BOOST_TEST_CONTEXT("window " << w.since << " to " << w.until << " repo "
                               << w.repo.value_or("(all)") << " tz " << w.tz) {
    BOOST_TEST(library_answer(store, AnalyticsKind::durations, w) ==
               durations_json(durations_by_hand(rows, w)));
    BOOST_TEST(library_answer(store, AnalyticsKind::approvals, w) ==
               approvals_json(approvals_by_hand(rows, w)));
    BOOST_TEST(library_answer(store, AnalyticsKind::heatmap, w) ==
               heatmap_json(heatmap_by_hand(rows, w)));
  }
}

const Window kOddEdges{"2026-10-21T10:07:30.000Z", "2026-10-27T13:52:10.500Z", std::nullopt,
                       "Europe/Berlin"};

}  // namespace

// Nearest rank: the value at rank ceil(p/100 * n), 1-based; Wikipedia's
// worked example (15, 20, 35, 40, 50) among others.
BOOST_AUTO_TEST_CASE(percentiles_are_nearest_rank) {
  std::vector<std::int64_t> v = {15, 20, 35, 40, 50};
  BOOST_TEST(*nearest_rank(v, 30) == 20);
  BOOST_TEST(*nearest_rank(v, 40) == 20);
  BOOST_TEST(*nearest_rank(v, 50) == 35);
  BOOST_TEST(*nearest_rank(v, 100) == 50);
  BOOST_TEST(*nearest_rank({7}, 99) == 7);
  BOOST_TEST(!nearest_rank({}, 50).has_value());
  std::vector<std::int64_t> hundred;
  for (int i = 1; i <= 100; ++i) hundred.push_back(i * 10);
  BOOST_TEST(*nearest_rank(hundred, 90) == 900);
  BOOST_TEST(*nearest_rank(hundred, 99) == 990);
}

BOOST_AUTO_TEST_CASE(every_figure_matches_an_independent_count) {
  auto rows = history_deltas();
  auto store = store_with(rows);
  check_all(*store, rows, kOddEdges);
  check_all(*store, rows, {kOddEdges.since, kOddEdges.until, std::nullopt, "UTC"});
  check_all(*store, rows, {kOddEdges.since, kOddEdges.until, "acme/widgets", "Europe/Berlin"});
  check_all(*store, rows, {"2026-10-19T00:00:00.000Z", "2026-10-30T00:00:00.000Z",
                           "acme/payments-api", "UTC"});
  // Both edges inside one quarter hour, and a window with two part-quarters only.
  check_all(*store, rows, {"2026-10-21T10:08:00.000Z", "2026-10-21T10:14:59.999Z", std::nullopt, "UTC"});
  check_all(*store, rows, {"2026-10-21T10:07:30.000Z", "2026-10-21T10:22:00.000Z", std::nullopt, "UTC"});

  // The history was built to hold each case the answers single out.
  auto durations = durations_by_hand(rows, kOddEdges);
  BOOST_TEST(durations.to_terminal.open > 0);
  BOOST_TEST(durations.to_terminal.spanning_gaps > 0);
  BOOST_TEST(durations.to_terminal.inferred > 0);
  BOOST_TEST(durations.to_terminal.ended_without_outcome > 0);
  BOOST_TEST(durations.to_terminal.failed.count > 0);
  BOOST_TEST(durations.to_deleted.inferred > 0);
  auto approvals = approvals_by_hand(rows, kOddEdges);
  BOOST_TEST(approvals.approved > 0);
  BOOST_TEST(approvals.rejected > 0);
  BOOST_TEST(approvals.pending > 0);
  BOOST_TEST(approvals.inferred > 0);
  // The edge session: 10:08 and 10:14:59.999 in, 10:05 out; 13:45 and
  // 13:52:10.499 in, 13:52:10.500 (until) and 13:55 out.
  auto edge = heatmap_by_hand(rows, {kOddEdges.since, kOddEdges.until, "edge/cases", "UTC"});
  BOOST_TEST(edge.total == 4);
  check_all(*store, rows, {kOddEdges.since, kOddEdges.until, "edge/cases", "UTC"});
}

// Berlin's autumn change (2026-10-25, 03:00 CEST back to 02:00 CET): that
// Sunday has 25 hours, hour 2 twice. Its spring change (2026-03-29, 02:00 CET
// on to 03:00 CEST): 23 hours, no hour 2.
BOOST_AUTO_TEST_CASE(local_days_across_daylight_saving_changes) {
  auto rows = history_deltas();
  auto store = store_with(rows);
  auto heatmap = [&](const Window& w) {
    auto body = library_answer(*store, AnalyticsKind::heatmap, w);
    BOOST_TEST(body == heatmap_json(heatmap_by_hand(rows, w)));
    auto parsed = parse_heatmap_json(body);
    BOOST_TEST_REQUIRE(parsed.ok(), parsed.error());
    return parsed.value();
  };
  auto day = [](const HeatmapAnswer& a, const std::string& date) {
    for (const auto& d : a.days) {
      if (d.date == date) return d.deltas;
    }
    BOOST_FAIL("no day " << date);
    return std::int64_t{-1};
  };
  auto autumn = heatmap({"2026-10-24T00:00:00.000Z", "2026-10-27T00:00:00.000Z", "clock/autumn",
                         "Europe/Berlin"});
  BOOST_TEST(autumn.days.size() == 4u);  // 24th (from 02:00 CEST) to 27th (to 00:59 CET)
  BOOST_TEST(day(autumn, "2026-10-24") == 0);
  BOOST_TEST(day(autumn, "2026-10-25") == 25 + 2);  // 25 hours, and 02:30 twice
  BOOST_TEST(day(autumn, "2026-10-26") == 1);       // 23:00Z is 00:00 CET
  BOOST_TEST(autumn.weekly[6][2] == 4);             // Sunday 02:00 and 02:30, twice each
  BOOST_TEST(autumn.weekly[6][3] == 1);
  BOOST_TEST(autumn.weekly[0][0] == 1);             // Monday 00:00
  auto spring = heatmap({"2026-03-28T00:00:00.000Z", "2026-03-31T00:00:00.000Z", "clock/spring",
                         "Europe/Berlin"});
  BOOST_TEST(day(spring, "2026-03-29") == 23);
  BOOST_TEST(day(spring, "2026-03-30") == 1);
  BOOST_TEST(spring.weekly[6][2] == 0);
  BOOST_TEST(spring.weekly[6][1] == 1);
  BOOST_TEST(spring.weekly[6][3] == 1);
  // In UTC the same clock is 24 deltas on the 29th's... and the 28th's last hour.
  auto utc = heatmap({"2026-03-28T00:00:00.000Z", "2026-03-31T00:00:00.000Z", "clock/spring", "UTC"});
  BOOST_TEST(day(utc, "2026-03-28") == 1);
  BOOST_TEST(day(utc, "2026-03-29") == 23);
}

BOOST_AUTO_TEST_CASE(a_bad_parameter_is_named) {
  auto store = store_with({});
  struct Case {
    AnalyticsParams params;
    std::string parameter;
  };
  std::vector<Case> cases = {
      {{{"since", "yesterday"}}, "since"},
      {{{"since", "30"}}, "since"},  // a bare number: the unit is required
      {{{"until", "2026-13-01T00:00:00Z"}}, "until"},
      {{{"since", "2026-10-02T00:00:00Z"}, {"until", "2026-10-01T00:00:00Z"}}, "since"},
      {{{"since", "2024-01-01T00:00:00Z"}, {"until", "2026-01-01T00:00:00Z"}}, "since"},
      {{{"repo", ""}}, "repo"},
      {{{"tz", "Mars/Olympus_Mons"}}, "tz"},
      {{{"tz", "../../etc/passwd"}}, "tz"},
      {{{"tz", ""}}, "tz"},
      {{{"format", "xml"}}, "format"},
  };
  for (const auto& c : cases) {
    auto reply = analytics_reply(*store, AnalyticsKind::heatmap, c.params, now_millis());
    BOOST_TEST(reply.status == 400, reply.body);
    rapidjson::Document doc;
    doc.Parse(reply.body.c_str());
    BOOST_TEST_REQUIRE(doc.IsObject(), reply.body);
    BOOST_TEST(std::string(doc["parameter"].GetString()) == c.parameter, reply.body);
    BOOST_TEST(std::string(doc["detail"].GetString()).find(c.parameter) != std::string::npos,
               reply.body);
  }
  // The defaults: the last 30 days, UTC, every repo; an empty store answers zeros.
  auto reply = analytics_reply(*store, AnalyticsKind::approvals, {}, at("2026-11-01T00:00:00Z"));
  BOOST_TEST(reply.status == 200);
  auto parsed = parse_approvals_json(reply.body);
  BOOST_TEST_REQUIRE(parsed.ok(), parsed.error());
  BOOST_TEST(parsed->window.since == "2026-10-02T00:00:00.000Z");
  BOOST_TEST(parsed->window.until == "2026-11-01T00:00:00.000Z");
  BOOST_TEST(parsed->window.tz == "UTC");
  BOOST_TEST(parsed->per_day.size() == 30u);
  BOOST_TEST(!parsed->rate.has_value());
  auto durations = parse_durations_json(
      analytics_reply(*store, AnalyticsKind::durations, {{"since", "12h"}}, now_millis()).body);
  BOOST_TEST_REQUIRE(durations.ok(), durations.error());
  BOOST_TEST(!durations->to_terminal.all.p50_ms.has_value());
  BOOST_TEST(durations->to_terminal.histogram.size() == kDurationBucketsMs.size() + 1);
}
