#define BOOST_TEST_MODULE retention
#include <boost/test/unit_test.hpp>

#include "storage/retention.h"
#include "storage/store.h"

using namespace deltatap;

namespace {
TimePoint at(const char* text) { return parse_timestamp(text).value(); }
}

BOOST_AUTO_TEST_CASE(next_run_is_the_coming_midnight_utc) {
  BOOST_TEST(format_timestamp(next_midnight_utc(at("2025-11-10T12:34:56.789Z"))) ==
             "2025-11-11T00:00:00.000Z");
  BOOST_TEST(format_timestamp(next_midnight_utc(at("2025-11-10T00:00:00.000Z"))) ==
             "2025-11-11T00:00:00.000Z");
  BOOST_TEST(format_timestamp(next_midnight_utc(at("2024-02-28T23:59:59.999Z"))) ==
             "2024-02-29T00:00:00.000Z");
  BOOST_TEST(format_timestamp(next_midnight_utc(at("2025-12-31T23:00:00.000Z"))) ==
             "2026-01-01T00:00:00.000Z");
}

BOOST_AUTO_TEST_CASE(applies_the_retention_period_by_created_at) {
  auto store = std::move(Store::open_empty().value());
  auto now = at("2025-11-10T12:00:00.000Z");
  std::vector<StoredDelta> rows;
  for (int age_days : {0, 10, 29, 31, 45, 400}) {
    StoredDelta row;
    row.delta.session_id = "s";
    row.delta.type = DeltaType::created;
    row.delta.after = "{}";
    // Delta timestamps say nothing about storage age: keep them recent.
    row.delta.timestamp = "2025-11-10T11:00:00.000Z";
    row.created_at = format_timestamp(now - std::chrono::days(age_days));
    rows.push_back(row);
  }
  BOOST_REQUIRE(store->save_with_created_at(rows).ok());
  auto deleted = apply_retention(*store, now, 30);
  BOOST_REQUIRE(deleted.ok());
  BOOST_TEST(*deleted == 3);
  BOOST_TEST(store->counts().deltas == 3);
  BOOST_TEST(*apply_retention(*store, now, 0) == 0);  // 0 keeps everything
  BOOST_TEST(store->counts().deltas == 3);
}
