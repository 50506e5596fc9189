// analytics_window: what a request for the analytics asks (design.md,
// "Analytics"): the window, the repo, the time zone and the format, read from
// the query parameters of GET /api/analytics/{durations,approvals,heatmap}.
//
//   since, until  an ISO 8601 date-time, or a duration back from now in
//                 base/duration.h's syntax with its unit ("30d", "12h", "2w");
//                 since is included, until excluded. Defaults: until now,
//                 since 30 days before until. since must be before until and
//                 the window at most 366 days (so that each answer is a
//                 bounded read).
//   repo          a repo name as the sessions' states carry it; non-empty.
//   tz            an IANA time zone name (default UTC), for the answers that
//                 have local days and hours (approvals, heatmap).
//   format        json (default) or csv.
//
// Pure apart from the time zone database's lookup; any thread.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <variant>

#include "api/time_zone.h"
#include "base/timestamp.h"

namespace deltatap {

// The query parameters by name, decoded (api_handler.cc's Params).
using AnalyticsParams = std::map<std::string, std::string, std::less<>>;

inline constexpr std::chrono::days kDefaultAnalyticsWindow{30};
inline constexpr std::chrono::days kMaxAnalyticsWindow{366};

struct AnalyticsRequest {
  TimePoint since, until;
  std::string since_text, until_text;  // the same, normalised (base/timestamp.h)
  std::optional<std::string> repo;
  std::optional<TimeZone> tz;  // always set once read; UTC by default
  bool csv = false;
};

// A refused parameter: its name and a sentence saying what is allowed.
struct ParameterProblem {
  std::string parameter;
  std::string detail;
};

// Reads `params` (names already checked by the caller) against `now`.
// Returns the request, or the first parameter at fault, in the order since,
// until, repo, tz, format.
std::variant<AnalyticsRequest, ParameterProblem> read_analytics_request(
    const AnalyticsParams& params, TimePoint now);

}  // namespace deltatap
