// time_zone: an IANA time zone (tz=Europe/Berlin) for the analytics, read from
// the system's zoneinfo (/usr/share/zoneinfo) through Debian's
// libhowardhinnant-date (built with USE_OS_TZDB: no download, no copy of the
// database of our own; the zones follow the tzdata package).
//
// local() maps a UTC instant to the local calendar day, weekday and hour. The
// analytics count deltas per UTC quarter hour and place each quarter hour at
// the local time of its start: exact for every zone whose offset from UTC is
// a multiple of 15 minutes at that instant (every zone in use today, e.g.
// Asia/Kathmandu +05:45, Australia/Lord_Howe's half-hour DST); for the odd
// historical offsets (local mean times before ~1900) a quarter hour may
// straddle two local hours and is counted in the first.
//
// A TimeZone is a handle to the library's shared, immutable zone plus a cache
// of the offset in force around the last instant asked (a heatmap asks for
// thousands of consecutive quarter hours): copy one per thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "base/result.h"
#include "base/timestamp.h"

namespace date {
class time_zone;
}

namespace deltatap {

// Where a UTC instant falls on the local calendar and clock.
struct LocalTime {
  std::int64_t day = 0;  // local days since the epoch
  int weekday = 0;       // 0 Monday ... 6 Sunday
  int hour = 0;          // 0..23, local
};

class TimeZone {
 public:
  // The zone called `name` (an IANA name such as "UTC", "Europe/Berlin",
  // "America/New_York"). On error, a message saying the name is unknown to
  // the system's time zone database, or not a zone name at all.
  static Result<TimeZone> locate(std::string_view name);

  const std::string& name() const { return name_; }
  LocalTime local(TimePoint time);

 private:
  TimeZone() = default;

  std::string name_;
  const date::time_zone* zone_ = nullptr;  // the library's, alive for the program
  // The offset in force in [valid_from, valid_until), from the last lookup.
  std::int64_t valid_from_ms_ = 0, valid_until_ms_ = 0, offset_ms_ = 0;
  bool cached_ = false;
};

// "YYYY-MM-DD" of a day counted as LocalTime::day.
std::string format_local_day(std::int64_t day);

}  // namespace deltatap
