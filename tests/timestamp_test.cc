// Timestamps: the store's time order is string order of the normalised form, so every
// accepted input must land on exactly one normalised string and every impossible one
// must be refused with a reason an operator can act on.
#define BOOST_TEST_MODULE timestamp
#include <boost/test/unit_test.hpp>

#include <string>
#include <vector>

#include "base/timestamp.h"

using namespace deltatap;

namespace {

struct Valid {
  const char* input;
  const char* normalised;
};

struct Invalid {
  const char* input;
  const char* reason_fragment;
};

}  // namespace

BOOST_AUTO_TEST_CASE(valid_forms_normalise_to_utc_milliseconds) {
  const std::vector<Valid> table = {
      {"2025-11-10T12:05:00Z", "2025-11-10T12:05:00.000Z"},
      {"2025-11-10T12:05:00.1Z", "2025-11-10T12:05:00.100Z"},
      {"2025-11-10T12:05:00.12Z", "2025-11-10T12:05:00.120Z"},
      {"2025-11-10T12:05:00.123Z", "2025-11-10T12:05:00.123Z"},
      {"2025-11-10T12:05:00.123456789Z", "2025-11-10T12:05:00.123Z"},
      {"2025-11-10T12:05:00.9999999999999999999999Z", "2025-11-10T12:05:00.999Z"},
      {"2025-11-10t12:05:00z", "2025-11-10T12:05:00.000Z"},
      {"2025-11-10 12:05:00Z", "2025-11-10T12:05:00.000Z"},
      {"2025-11-10T12:05:00+02:00", "2025-11-10T10:05:00.000Z"},
      {"2025-11-10T12:05:00-05:30", "2025-11-10T17:35:00.000Z"},
      {"2025-11-10T12:05:00+0200", "2025-11-10T10:05:00.000Z"},
      {"2025-11-10T12:05:00.5-0530", "2025-11-10T17:35:00.500Z"},
      {"2025-11-10T12:05:00+00:00", "2025-11-10T12:05:00.000Z"},
      {"2025-11-10T12:05:00-00:00", "2025-11-10T12:05:00.000Z"},
      // Offsets that cross a day, month and year boundary.
      {"2025-11-10T01:00:00+02:00", "2025-11-09T23:00:00.000Z"},
      {"2025-03-01T00:30:00+01:00", "2025-02-28T23:30:00.000Z"},
      {"2024-03-01T00:30:00+01:00", "2024-02-29T23:30:00.000Z"},
      {"2025-12-31T23:00:00-02:00", "2026-01-01T01:00:00.000Z"},
      {"2024-02-29T00:00:00Z", "2024-02-29T00:00:00.000Z"},
      {"2000-02-29T00:00:00Z", "2000-02-29T00:00:00.000Z"},
      {"1970-01-01T00:00:00Z", "1970-01-01T00:00:00.000Z"},
      {"1969-12-31T23:59:59.999Z", "1969-12-31T23:59:59.999Z"},
      {"0001-01-01T00:00:00Z", "0001-01-01T00:00:00.000Z"},
      {"9999-12-31T23:59:59.999Z", "9999-12-31T23:59:59.999Z"},
      // Year 0000 local time is fine when UTC lands in year 0001.
      {"0000-12-31T23:00:00-02:00", "0001-01-01T01:00:00.000Z"},
      {"2025-11-10T23:59:59+23:59", "2025-11-10T00:00:59.000Z"},
  };
  for (const auto& row : table) {
    BOOST_TEST_CONTEXT(row.input) {
      auto normalised = normalise_timestamp(row.input);
      BOOST_TEST_REQUIRE(normalised.ok(), (normalised.ok() ? "" : normalised.error()));
      BOOST_TEST(*normalised == row.normalised);
      // The normalised form is itself accepted and is a fixed point.
      auto again = normalise_timestamp(*normalised);
      BOOST_TEST_REQUIRE(again.ok());
      BOOST_TEST(*again == *normalised);
    }
  }
}

BOOST_AUTO_TEST_CASE(invalid_forms_are_refused_with_a_reason) {
  const std::vector<Invalid> table = {
      {"", "empty"},
      {"2025-11-10", "date only"},
      {"2025-11-10T", "expected a time"},
      {"2025-11-10T12:05Z", "seconds are missing"},
      {"2025-11-10T12:05", "seconds are missing"},
      {"2025-11-10T12:05:00", "missing UTC offset"},
      {"2025-11-10T12:05:00.Z", "fraction digits"},
      {"2025-02-30T12:00:00Z", "day 30 does not exist in month 2"},
      {"2025-02-29T12:00:00Z", "day 29 does not exist in month 2 of 2025"},
      {"1900-02-29T12:00:00Z", "day 29 does not exist"},
      {"2025-04-31T12:00:00Z", "day 31 does not exist"},
      {"2025-11-00T12:00:00Z", "day 0 does not exist"},
      {"2025-13-01T12:00:00Z", "month 13 does not exist"},
      {"2025-00-01T12:00:00Z", "month 0 does not exist"},
      {"2025-11-10T24:00:00Z", "hour 24"},
      {"2025-11-10T12:60:00Z", "minute 60"},
      {"2016-12-31T23:59:60Z", "leap second"},
      {"2025-11-10T12:05:61Z", "second 61"},
      {"2025-11-10T12:05:00Zjunk", "trailing characters"},
      {"2025-11-10T12:05:00Z ", "trailing characters"},
      {"2025-11-10T12:05:00+02:00x", "trailing characters"},
      {"2025-11-10T12:05:00+24:00", "offset hours"},
      {"2025-11-10T12:05:00+02:60", "offset minutes"},
      {"2025-11-10T12:05:00+2", "offset needs"},
      {"2025-11-10T12:05:00+02:0", "offset needs"},
      {"2025-11-10T12:05:00 UTC", "where 'Z' or an offset belongs"},
      {"2025-11-10X12:05:00Z", "between date and time"},
      {"25-11-10T12:05:00Z", "expected a date"},
      {"2025/11/10T12:05:00Z", "expected a date"},
      {"+2025-11-10T12:05:00Z", "expected a date"},
      {" 2025-11-10T12:05:00Z", "expected a date"},
      {"2025-11-10T1:05:00Z", "expected a time"},
      {"2025-11-10T12:05:0Z", "two digits of seconds"},
      {"0001-01-01T00:30:00+01:00", "year out of range"},
      {"9999-12-31T23:30:00-01:00", "year out of range"},
      {"0000-06-01T00:00:00Z", "year out of range"},
      {"yesterday", "expected a date"},
      {"1731240300", "expected a date"},
  };
  for (const auto& row : table) {
    BOOST_TEST_CONTEXT(row.input) {
      auto parsed = parse_timestamp(row.input);
      BOOST_TEST_REQUIRE(!parsed.ok());
      BOOST_TEST(parsed.error().find(row.reason_fragment) != std::string::npos, parsed.error());
    }
  }
}

BOOST_AUTO_TEST_CASE(embedded_nul_is_trailing_garbage) {
  std::string text("2025-11-10T12:05:00Z\0extra", 26);
  auto parsed = parse_timestamp(text);
  BOOST_TEST(!parsed.ok());
}

BOOST_AUTO_TEST_CASE(string_order_is_time_order) {
  // Across an offset, the later instant must sort later as a string.
  auto early = normalise_timestamp("2025-11-10T12:00:00+05:00");  // 07:00Z
  auto late = normalise_timestamp("2025-11-10T08:00:00Z");
  BOOST_TEST_REQUIRE(early.ok());
  BOOST_TEST_REQUIRE(late.ok());
  BOOST_TEST(*early < *late);
  BOOST_TEST((*parse_timestamp("2025-11-10T12:00:00+05:00") < *parse_timestamp("2025-11-10T08:00:00Z")));
}

BOOST_AUTO_TEST_CASE(format_handles_every_day_of_four_centuries) {
  // Walks day by day through 1900-2300 and checks the calendar never skips or repeats,
  // which a civil-date off-by-one at a leap or century boundary would do.
  TimePoint at = *parse_timestamp("1900-01-01T00:00:00Z");
  int year = 1900, month = 1, day = 1;
  auto days_in = [](int y, int m) {
    static const int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
    return m == 2 && leap ? 29 : kDays[m - 1];
  };
  while (year < 2300) {
    char expected[64];
    std::snprintf(expected, sizeof expected, "%04d-%02d-%02dT00:00:00.000Z", year, month, day);
    std::string formatted = format_timestamp(at);
    if (formatted != expected) {
      BOOST_TEST(formatted == expected);
      break;
    }
    auto back = parse_timestamp(formatted);
    if (!back.ok() || *back != at) {
      BOOST_TEST(false, "round trip failed at " << formatted);
      break;
    }
    at += std::chrono::days(1);
    if (++day > days_in(year, month)) {
      day = 1;
      if (++month > 12) {
        month = 1;
        ++year;
      }
    }
  }
}

BOOST_AUTO_TEST_CASE(format_of_times_before_the_epoch_floors) {
  TimePoint before_epoch{std::chrono::milliseconds(-1)};
  BOOST_TEST(format_timestamp(before_epoch) == "1969-12-31T23:59:59.999Z");
  TimePoint epoch{std::chrono::milliseconds(0)};
  BOOST_TEST(format_timestamp(epoch) == "1970-01-01T00:00:00.000Z");
}

BOOST_AUTO_TEST_CASE(format_beyond_the_stored_range_is_plain) {
  TimePoint last = *parse_timestamp("9999-12-31T23:59:59.999Z");
  BOOST_TEST(format_timestamp(last) == "9999-12-31T23:59:59.999Z");
  BOOST_TEST(format_timestamp(last + std::chrono::milliseconds(1)) == "10000-01-01T00:00:00.000Z");
  TimePoint first = *parse_timestamp("0001-01-01T00:00:00Z");
  BOOST_TEST(format_timestamp(first - std::chrono::milliseconds(1)) == "0000-12-31T23:59:59.999Z");
}

BOOST_AUTO_TEST_CASE(now_is_normalised_and_current) {
  TimePoint a = now_millis();
  std::string text = format_timestamp(a);
  BOOST_TEST(text.size() == 24u);
  BOOST_TEST(text.back() == 'Z');
  auto back = parse_timestamp(text);
  BOOST_TEST_REQUIRE(back.ok());
  BOOST_TEST((*back == a));
  auto system = std::chrono::system_clock::now();
  BOOST_TEST(std::chrono::abs(system - a) < std::chrono::seconds(5));
}
