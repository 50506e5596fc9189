// Timestamps: the store keeps every time as UTC "YYYY-MM-DDTHH:MM:SS.sssZ" so that
// string order is time order. Input is ISO 8601 / RFC 3339 date-time: "T" (or "t"
// or a space) between date and time, seconds required, any number of fractional
// digits (truncated to milliseconds), and "Z" or a "+HH:MM"/"-HH:MM" offset.
// "+HHMM"/"-HHMM" offsets are accepted too; "-00:00" is UTC; second 60 (a leap
// second) is refused; the UTC result must fall in years 0001-9999.
#pragma once

#include <chrono>
#include <string>
#include <string_view>

#include "base/result.h"

namespace deltatap {

using Clock = std::chrono::system_clock;
using TimePoint = std::chrono::time_point<Clock, std::chrono::milliseconds>;

// Parses an ISO 8601 date-time; the error names what is wrong with it.
Result<TimePoint> parse_timestamp(std::string_view text);

// The normalised form of a time point.
std::string format_timestamp(TimePoint time);

// parse_timestamp then format_timestamp.
Result<std::string> normalise_timestamp(std::string_view text);

// The current time, normalised.
TimePoint now_millis();

// A test hook for retention's schedule (docs/architecture.md, "A test hook"):
// DELTATAP_TEST_CLOCK_OFFSET=MS (a whole number of milliseconds, may be
// negative), read once, at the first call. Zero when unset or not such a number.
std::chrono::milliseconds test_clock_offset();

// The time retention's runs and its 00:00 UTC timer go by: now_millis() plus
// test_clock_offset(), so exactly now_millis() when the hook is unset.
TimePoint retention_now();

}  // namespace deltatap
