// Durations: the one duration syntax of deltatap, for config keys and API
// parameters alike.
//
// A duration is a decimal number and a unit: ms, s, m (minutes), h, d or w
// (weeks), e.g. "500ms", "0.5s", "10s", "5m", "1h", "30d", "2w". A bare number
// means seconds. Units are case-insensitive; white space around the number and
// the unit is ignored. The value must be positive, a whole number of
// milliseconds ("0.0001s" is refused, never rounded) and no longer than a limit.
//
// Pure functions: safe to call from any thread.
#pragma once

#include <chrono>
#include <string>
#include <string_view>

#include "base/result.h"

namespace deltatap {

// The units, as error messages list them.
inline constexpr std::string_view kDurationUnits = "ms, s, m, h or d, or w for weeks";

// What a duration looks like, for "(expected ...)" in error messages.
inline constexpr std::string_view kDurationExpected =
    "a positive number with a unit ms, s, m, h or d, or w for weeks, e.g. 500ms, 10s, 0.5s, "
    "5m, 30d; a bare number means seconds";

struct DurationRules {
  // The longest duration accepted; ten years unless a caller needs more.
  std::chrono::milliseconds max = std::chrono::days(3650);
  // Refuse a bare number instead of reading it as seconds: for a value where a
  // forgotten unit would be costly (a cleanup cutoff of "30" meant as days).
  bool require_unit = false;
};

// On success, the duration `text` names. On error, a message that quotes
// `text` (JSON-escaped, so it stays on one line) and says what is expected,
// in the form `"10x" is not a duration (expected ...)`; callers put the name
// of what they were reading in front of it.
Result<std::chrono::milliseconds> parse_duration(std::string_view text,
                                                 const DurationRules& rules = {});

// The shortest text parse_duration reads back as `duration`, with the largest
// unit from d down to ms that divides it exactly: "90s", "1m", "500ms", "2d"
// (never weeks, so "14d" stays "14d"). Zero and negative durations are written
// in ms ("0ms").
std::string format_duration(std::chrono::milliseconds duration);

}  // namespace deltatap
