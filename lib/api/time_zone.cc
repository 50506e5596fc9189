// Debian's libdate-tz is built with USE_OS_TZDB=1 (its CMake target says so);
// every file that includes <date/tz.h> must agree, or the library's types are
// laid out differently on each side.
#ifndef USE_OS_TZDB
#define USE_OS_TZDB 1
#endif
#if !USE_OS_TZDB
#error "deltatap reads the system's zoneinfo: build with USE_OS_TZDB=1"
#endif
#include <date/tz.h>

#include "api/time_zone.h"

#include <cstdio>
#include <exception>

#include "base/json_text.h"

namespace deltatap {

namespace {

// IANA names are letters, digits and - _ + / (Etc/GMT+5, America/Port-au-Prince);
// refusing anything else keeps odd text out of the library's lookups.
bool plausible_zone_name(std::string_view name) {
  if (name.empty() || name.size() > 64 || name.front() == '/') return false;
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '+' || c == '/';
    if (!ok) return false;
  }
  return name.find("..") == std::string_view::npos;
}

}  // namespace

Result<TimeZone> TimeZone::locate(std::string_view name) {
  if (!plausible_zone_name(name)) {
    return Error{json_quoted(name) + " is not a time zone name (expected an IANA name such as "
                                     "UTC, Europe/Berlin or America/New_York)"};
  }
  TimeZone zone;
  try {
    zone.zone_ = date::locate_zone(std::string(name));
    // The library reads a zone's file at its first use and throws when it
    // cannot: make that happen here, where it is an answer, not on the store
    // lane in the middle of a heatmap.
    (void)zone.zone_->get_info(std::chrono::system_clock::now());
  } catch (const std::exception&) {
    return Error{json_quoted(name) + " is not in the system's time zone database "
                                     "(/usr/share/zoneinfo; expected an IANA name such as UTC, "
                                     "Europe/Berlin or America/New_York)"};
  }
  zone.name_ = std::string(name);
  return zone;
}

LocalTime TimeZone::local(TimePoint time) {
  using namespace std::chrono;
  std::int64_t ms = time.time_since_epoch().count();
  if (!cached_ || ms < valid_from_ms_ || ms >= valid_until_ms_) {
    auto info = zone_->get_info(date::sys_time<milliseconds>(time.time_since_epoch()));
    valid_from_ms_ = duration_cast<milliseconds>(info.begin.time_since_epoch()).count();
    valid_until_ms_ = duration_cast<milliseconds>(info.end.time_since_epoch()).count();
    offset_ms_ = duration_cast<milliseconds>(info.offset).count();
    cached_ = true;
  }
  constexpr std::int64_t kDayMs = 86'400'000;
  std::int64_t local_ms = ms + offset_ms_;
  std::int64_t day = local_ms >= 0 ? local_ms / kDayMs : -((-local_ms + kDayMs - 1) / kDayMs);
  LocalTime out;
  out.day = day;
  out.hour = static_cast<int>((local_ms - day * kDayMs) / 3'600'000);
  // 1970-01-01 was a Thursday (3, counting from Monday = 0).
  out.weekday = static_cast<int>(((day % 7) + 7 + 3) % 7);
  return out;
}

std::string format_local_day(std::int64_t day) {
  date::year_month_day ymd{date::sys_days{date::days{day}}};
  char text[16];
  std::snprintf(text, sizeof text, "%04d-%02u-%02u", static_cast<int>(ymd.year()),
                static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()));
  return text;
}

}  // namespace deltatap
