#include "base/duration.h"

#include <cctype>
#include <cstdint>
#include <optional>

#include "base/json_text.h"

namespace deltatap {

namespace {

using Millis = std::chrono::milliseconds;

static_assert(kDurationExpected.find(kDurationUnits) != std::string_view::npos,
              "the expected form lists the units");

// Past this many digits the mantissa could overflow before the unit is applied.
constexpr std::size_t kMaxDigits = 15;

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

bool is_digit(char c) { return c >= '0' && c <= '9'; }

std::optional<std::int64_t> unit_millis(std::string_view unit) {
  std::string lower(unit);
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (lower.empty() || lower == "s") return 1000;
  if (lower == "ms") return 1;
  if (lower == "m") return 60'000;
  if (lower == "h") return 3'600'000;
  if (lower == "d") return 86'400'000;
  if (lower == "w") return 7 * 86'400'000LL;
  return std::nullopt;
}

Error refusal(std::string_view text, std::string_view what, std::string_view expected) {
  return Error{json_quoted(text) + " is not " + std::string(what) + " (expected " +
               std::string(expected) + ")"};
}

}  // namespace

Result<Millis> parse_duration(std::string_view text, const DurationRules& rules) {
  auto fail = [&] { return refusal(text, "a duration", kDurationExpected); };
  std::string_view s = trim(text);
  std::size_t number_end = 0;
  while (number_end < s.size() && (is_digit(s[number_end]) || s[number_end] == '.')) ++number_end;
  std::string_view number = s.substr(0, number_end);
  std::string_view unit = trim(s.substr(number_end));
  auto unit_ms = unit_millis(unit);
  if (!unit_ms) return fail();
  if (unit.empty() && rules.require_unit) {
    return refusal(text, "a duration with a unit",
                   "a positive number with a unit " + std::string(kDurationUnits) + ", e.g. 30d");
  }

  // Exact decimal arithmetic: "0.5s" is 500 ms, "0.0001s" is refused rather than rounded.
  auto dot = number.find('.');
  std::string_view whole = number.substr(0, dot);
  std::string_view fraction = dot == std::string_view::npos ? "" : number.substr(dot + 1);
  if (whole.empty() || (dot != std::string_view::npos && fraction.empty()) ||
      fraction.find('.') != std::string_view::npos || whole.size() + fraction.size() > kMaxDigits) {
    return fail();
  }
  std::int64_t mantissa = 0;
  std::int64_t scale = 1;
  for (char c : whole) mantissa = mantissa * 10 + (c - '0');
  for (char c : fraction) {
    mantissa = mantissa * 10 + (c - '0');
    scale *= 10;
  }
  std::int64_t scaled = 0;
  if (__builtin_mul_overflow(mantissa, *unit_ms, &scaled) || scaled / scale > rules.max.count()) {
    return refusal(text, "a duration", "at most " + format_duration(rules.max));
  }
  if (scaled % scale != 0) {
    return refusal(text, "a whole number of milliseconds",
                   "a duration no finer than 1ms, e.g. 250ms");
  }
  std::int64_t ms = scaled / scale;
  if (ms <= 0) return refusal(text, "a positive duration", kDurationExpected);
  return Millis{ms};
}

std::string format_duration(Millis duration) {
  std::int64_t ms = duration.count();
  struct Unit {
    std::int64_t ms;
    const char* suffix;
  };
  static constexpr Unit kUnits[] = {
      {86'400'000, "d"}, {3'600'000, "h"}, {60'000, "m"}, {1000, "s"}};
  for (const auto& unit : kUnits) {
    if (ms > 0 && ms % unit.ms == 0) return std::to_string(ms / unit.ms) + unit.suffix;
  }
  return std::to_string(ms) + "ms";
}

}  // namespace deltatap
