#include "api/analytics_window.h"

#include <string_view>
#include <utility>

#include "base/duration.h"
#include "base/json_text.h"

namespace deltatap {

namespace {

std::optional<std::string_view> get(const AnalyticsParams& params, std::string_view name) {
  auto found = params.find(name);
  if (found == params.end()) return std::nullopt;
  return found->second;
}

// Quoted and cut, so a long value cannot swell the error.
std::string quoted(std::string_view value) {
  constexpr std::size_t kMax = 80;
  std::string out = json_quoted(value.substr(0, kMax));
  if (value.size() > kMax) out.insert(out.size() - 1, "...");
  return out;
}

// A time bound: a duration back from `now` (its unit required: a bare "30"
// is more likely a mistake than 30 seconds) or an ISO 8601 date-time.
std::optional<TimePoint> read_bound(std::string_view text, TimePoint now) {
  constexpr DurationRules kRules{.max = std::chrono::days(100 * 366), .require_unit = true};
  if (auto age = parse_duration(text, kRules); age.ok()) return now - *age;
  if (auto time = parse_timestamp(text); time.ok()) return *time;
  return std::nullopt;
}

std::string bound_detail(std::string_view name, std::string_view value) {
  std::string detail = std::string(name) +
                       " must be an ISO 8601 date-time such as 2026-10-01T00:00:00Z or a "
                       "duration back from now with a unit " +
                       std::string(kDurationUnits) + " (e.g. 30d), got " + quoted(value);
  if (value.find(' ') != std::string_view::npos) {
    detail += " (a '+' in a URL query means a space: write it as %2B)";
  }
  return detail;
}

}  // namespace

std::variant<AnalyticsRequest, ParameterProblem> read_analytics_request(
    const AnalyticsParams& params, TimePoint now) {
  AnalyticsRequest request;
  request.until = now;
  if (auto value = get(params, "until")) {
    auto until = read_bound(*value, now);
    if (!until) return ParameterProblem{"until", bound_detail("until", *value)};
    request.until = *until;
  }
  request.since = request.until - kDefaultAnalyticsWindow;
  if (auto value = get(params, "since")) {
    auto since = read_bound(*value, now);
    if (!since) return ParameterProblem{"since", bound_detail("since", *value)};
    request.since = *since;
  }
  if (request.since >= request.until) {
    return ParameterProblem{"since", "since (" + format_timestamp(request.since) +
                                         ") must be before until (" +
                                         format_timestamp(request.until) + ")"};
  }
  if (request.until - request.since > kMaxAnalyticsWindow) {
    return ParameterProblem{"since", "the window from since to until may be at most " +
                                         std::to_string(kMaxAnalyticsWindow.count()) +
                                         " days, got " + format_timestamp(request.since) +
                                         " to " + format_timestamp(request.until)};
  }
  request.since_text = format_timestamp(request.since);
  request.until_text = format_timestamp(request.until);
  if (auto value = get(params, "repo")) {
    if (value->empty()) {
      return ParameterProblem{"repo", "repo must not be empty (leave it out for every repo)"};
    }
    request.repo = std::string(*value);
  }
  auto zone = TimeZone::locate(get(params, "tz").value_or("UTC"));
  if (!zone.ok()) return ParameterProblem{"tz", "tz: " + zone.error()};
  request.tz = std::move(zone.value());
  if (auto value = get(params, "format")) {
    if (*value != "json" && *value != "csv") {
      return ParameterProblem{"format", "format must be json or csv, got " + quoted(*value)};
    }
    request.csv = *value == "csv";
  }
  return request;
}

}  // namespace deltatap
