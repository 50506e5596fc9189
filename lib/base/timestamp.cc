// Timestamps, parsed by hand rather than with strptime/timegm: those depend on the
// locale and the TZ variable and silently normalise impossible dates (Feb 30 becomes
// Mar 2), and a stored time that differs from the one sent is worse than a rejection.
//
// Accepted: YYYY-MM-DD, then "T", "t" or one space, then HH:MM:SS, then optionally "."
// and one or more fraction digits (any count; truncated, not rounded, to milliseconds),
// then "Z"/"z" or an offset "+HH:MM", "-HH:MM", "+HHMM" or "-HHMM" (hours 00-23, minutes
// 00-59; "-00:00" is read as UTC).
// Rejected, each with its own message: empty text, a date without a time, a time
// without seconds ("12:05Z" is legal ISO 8601 but rare on the wire and ambiguous next
// to the fraction rules, so seconds are required as RFC 3339 requires them), a missing
// offset (a local time names no instant), month 00 or 13+, a day the month does not have
// (Feb 29 only in leap years), hour 24, minute 60, second 60 (leap seconds: the wire
// never carries them and UTC arithmetic here has no place for them), trailing characters,
// and a result outside years 0001-9999 after converting to UTC (the normalised form has
// exactly four year digits).
#include "base/timestamp.h"

#include <charconv>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <system_error>

namespace deltatap {
namespace {

// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
constexpr std::int64_t days_from_civil(std::int64_t year, unsigned month, unsigned day) {
  year -= month <= 2;
  const std::int64_t era = (year >= 0 ? year : year - 399) / 400;
  const auto year_of_era = static_cast<unsigned>(year - era * 400);
  const unsigned day_of_year = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1;
  const unsigned day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
  return era * 146097 + static_cast<std::int64_t>(day_of_era) - 719468;
}

struct CivilDate {
  std::int64_t year;
  unsigned month;
  unsigned day;
};

CivilDate civil_from_days(std::int64_t days) {
  days += 719468;
  const std::int64_t era = (days >= 0 ? days : days - 146096) / 146097;
  const auto day_of_era = static_cast<unsigned>(days - era * 146097);
  const unsigned year_of_era =
      (day_of_era - day_of_era / 1460 + day_of_era / 36524 - day_of_era / 146096) / 365;
  const unsigned day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
  const unsigned mp = (5 * day_of_year + 2) / 153;
  const unsigned day = day_of_year - (153 * mp + 2) / 5 + 1;
  const unsigned month = mp < 10 ? mp + 3 : mp - 9;
  const std::int64_t year = static_cast<std::int64_t>(year_of_era) + era * 400 + (month <= 2);
  return {year, month, day};
}

bool is_leap_year(int year) {
  return year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
}

unsigned days_in_month(int year, unsigned month) {
  static constexpr unsigned kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return month == 2 && is_leap_year(year) ? 29 : kDays[month - 1];
}

bool is_digit(char c) { return c >= '0' && c <= '9'; }

// A cursor over the text; every read checks bounds.
class Scanner {
 public:
  explicit Scanner(std::string_view text) : text_(text) {}

  bool at_end() const { return pos_ >= text_.size(); }
  char peek() const { return at_end() ? '\0' : text_[pos_]; }
  std::size_t pos() const { return pos_; }
  void skip() { ++pos_; }

  // Exactly `count` digits, or nothing consumed.
  bool digits(int count, int& out) {
    if (text_.size() - pos_ < static_cast<std::size_t>(count)) return false;
    int value = 0;
    for (int i = 0; i < count; ++i) {
      char c = text_[pos_ + i];
      if (!is_digit(c)) return false;
      value = value * 10 + (c - '0');
    }
    pos_ += count;
    out = value;
    return true;
  }

  bool literal(char c) {
    if (at_end() || text_[pos_] != c) return false;
    ++pos_;
    return true;
  }

 private:
  std::string_view text_;
  std::size_t pos_ = 0;
};

Error fail(std::string_view text, const std::string& why) {
  std::string shown(text.substr(0, 64));
  if (text.size() > 64) shown += "...";
  return Error{"invalid timestamp \"" + shown + "\": " + why};
}

}  // namespace

Result<TimePoint> parse_timestamp(std::string_view text) {
  if (text.empty()) return fail(text, "empty");
  Scanner in(text);
  int year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0;

  if (!in.digits(4, year) || !in.literal('-') || !in.digits(2, month) || !in.literal('-') ||
      !in.digits(2, day)) {
    return fail(text, "expected a date YYYY-MM-DD");
  }
  if (in.at_end()) return fail(text, "date only, the time is missing");
  if (in.peek() == 'T' || in.peek() == 't' || in.peek() == ' ') {
    in.skip();
  } else {
    return fail(text, "expected 'T' or a space between date and time");
  }
  if (!in.digits(2, hour) || !in.literal(':') || !in.digits(2, minute)) {
    return fail(text, "expected a time HH:MM:SS");
  }
  if (!in.literal(':')) return fail(text, "seconds are missing (HH:MM:SS required)");
  if (!in.digits(2, second)) return fail(text, "expected two digits of seconds");

  int millis = 0;
  if (in.literal('.')) {
    int count = 0;
    while (is_digit(in.peek())) {
      if (count < 3) millis = millis * 10 + (in.peek() - '0');
      ++count;
      in.skip();
    }
    if (count == 0) return fail(text, "a '.' must be followed by fraction digits");
    for (; count < 3; ++count) millis *= 10;
  }

  int offset_minutes = 0;
  if (in.at_end()) return fail(text, "missing UTC offset ('Z' or +HH:MM)");
  char zone = in.peek();
  if (zone == 'Z' || zone == 'z') {
    in.skip();
  } else if (zone == '+' || zone == '-') {
    in.skip();
    int offset_hours = 0, offset_mins = 0;
    if (!in.digits(2, offset_hours)) return fail(text, "offset needs HH:MM or HHMM");
    in.literal(':');
    if (!in.digits(2, offset_mins)) return fail(text, "offset needs HH:MM or HHMM");
    if (offset_hours > 23) return fail(text, "offset hours must be 00-23");
    if (offset_mins > 59) return fail(text, "offset minutes must be 00-59");
    offset_minutes = (offset_hours * 60 + offset_mins) * (zone == '-' ? -1 : 1);
  } else {
    return fail(text, std::string("unexpected '") + zone + "' where 'Z' or an offset belongs");
  }
  if (!in.at_end()) return fail(text, "trailing characters after the offset");

  if (month < 1 || month > 12) return fail(text, "month " + std::to_string(month) + " does not exist");
  if (day < 1 || static_cast<unsigned>(day) > days_in_month(year, static_cast<unsigned>(month))) {
    return fail(text, "day " + std::to_string(day) + " does not exist in month " +
                          std::to_string(month) + " of " + std::to_string(year));
  }
  if (hour > 23) return fail(text, "hour " + std::to_string(hour) + " is out of range 00-23");
  if (minute > 59) return fail(text, "minute " + std::to_string(minute) + " is out of range 00-59");
  if (second == 60) return fail(text, "leap second 60 is not accepted");
  if (second > 59) return fail(text, "second " + std::to_string(second) + " is out of range 00-59");

  std::int64_t days =
      days_from_civil(year, static_cast<unsigned>(month), static_cast<unsigned>(day));
  std::int64_t ms = ((days * 24 + hour) * 60 + minute - offset_minutes) * 60'000 +
                    static_cast<std::int64_t>(second) * 1000 + millis;

  // The UTC result must still print with four year digits.
  constexpr std::int64_t kMin = days_from_civil(1, 1, 1) * 86'400'000;
  constexpr std::int64_t kMax = days_from_civil(10000, 1, 1) * 86'400'000;
  if (ms < kMin || ms >= kMax) return fail(text, "year out of range 0001-9999 in UTC");
  return TimePoint(std::chrono::milliseconds(ms));
}

std::string format_timestamp(TimePoint time) {
  const std::int64_t ms = time.time_since_epoch().count();
  constexpr std::int64_t kMsPerDay = 86'400'000;
  std::int64_t days = ms / kMsPerDay;
  std::int64_t rest = ms % kMsPerDay;
  if (rest < 0) {
    rest += kMsPerDay;
    --days;
  }
  CivilDate date = civil_from_days(days);
  if (date.year < 0 || date.year > 9999) {
    // Outside what the store holds; printed plainly rather than clipped.
    char buffer[64];
    const auto ms_of_day = static_cast<unsigned>(rest);
    std::snprintf(buffer, sizeof buffer, "%04lld-%02u-%02uT%02u:%02u:%02u.%03uZ",
                  static_cast<long long>(date.year), date.month, date.day, ms_of_day / 3'600'000,
                  ms_of_day / 60'000 % 60, ms_of_day / 1000 % 60, ms_of_day % 1000);
    return buffer;
  }
  // Written digit by digit: this runs for every stored delta, and snprintf costs more
  // than the rest of the parse of a small frame.
  std::string out = "0000-00-00T00:00:00.000Z";
  auto put = [&out](std::size_t at, unsigned value, int width) {
    for (int i = width - 1; i >= 0; --i) {
      out[at + static_cast<std::size_t>(i)] = static_cast<char>('0' + value % 10);
      value /= 10;
    }
  };
  const auto ms_of_day = static_cast<unsigned>(rest);
  put(0, static_cast<unsigned>(date.year), 4);
  put(5, date.month, 2);
  put(8, date.day, 2);
  put(11, ms_of_day / 3'600'000, 2);
  put(14, ms_of_day / 60'000 % 60, 2);
  put(17, ms_of_day / 1000 % 60, 2);
  put(20, ms_of_day % 1000, 3);
  return out;
}

Result<std::string> normalise_timestamp(std::string_view text) {
  auto parsed = parse_timestamp(text);
  if (!parsed.ok()) return Error{parsed.error()};
  return format_timestamp(*parsed);
}

TimePoint now_millis() {
  return std::chrono::time_point_cast<std::chrono::milliseconds>(Clock::now());
}

std::chrono::milliseconds test_clock_offset() {
  static const std::chrono::milliseconds offset = [] {
    const char* text = std::getenv("DELTATAP_TEST_CLOCK_OFFSET");
    if (!text) return std::chrono::milliseconds(0);
    const char* end = text + std::strlen(text);
    std::int64_t value = 0;
    auto [stop, error] = std::from_chars(text, end, value);
    if (error != std::errc() || stop != end || stop == text) return std::chrono::milliseconds(0);
    return std::chrono::milliseconds(value);
  }();
  return offset;
}

TimePoint retention_now() { return now_millis() + test_clock_offset(); }

}  // namespace deltatap
