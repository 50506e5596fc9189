// analytics_answers: the three analytics answers as values, and as the text
// the API serves (JSON, CSV) and the CLI reads back (JSON), so the daemon,
// the offline CLI and the web console see one shape (docs/analytics.md).
//
// JSON (times normalised UTC text, durations whole milliseconds, a percentile
// or max null when its count is 0, the rate null without decisions):
//   durations {"since","until","repo":null|"…","sessions":N,
//              "to_terminal":{"count","p50_ms","p90_ms","p99_ms","max_ms","open",
//                             "spanning_gaps","inferred","ended_without_outcome",
//                             "by_outcome":{"succeeded":{count,p50_ms,p90_ms,p99_ms,max_ms},
//                                           "failed":{…}},
//                             "histogram":[{"le_ms":N|null,"count":N},…]},
//              "to_deleted":{the same without by_outcome and ended_without_outcome}}
//   approvals {"since","until","repo","tz","approved","rejected","pending","rate",
//              "inferred","time_to_decision":{"count","p50_ms","p90_ms"},
//              "per_day":[{"date":"YYYY-MM-DD","approved":N,"rejected":N},…]}
//   heatmap   {"since","until","repo","tz","total","inferred",
//              "weekly":[[24 counts] x 7, row 0 Monday, column the local hour],
//              "days":[{"date":"YYYY-MM-DD","deltas":N},…]}
// The histogram's buckets are not cumulative: each counts the durations above
// the previous bucket's le_ms up to its own; the last (le_ms null) the longer.
//
// CSV (RFC 4180, CRLF, a header line; cells neutralised as the export's are,
// api/delta_json.h): durations one row per measure and outcome; approvals one
// row per local day; heatmap one row per weekday, a column per local hour.
//
// Pure functions: any thread.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace deltatap {

// Upper bounds of the duration histogram's buckets, in ms: 1m 5m 15m 30m 1h
// 2h 4h 8h 1d 3d 7d, then one bucket for longer.
inline constexpr std::array<std::int64_t, 11> kDurationBucketsMs = {
    60'000,     300'000,    900'000,     1'800'000,   3'600'000,  7'200'000,
    14'400'000, 28'800'000, 86'400'000, 259'200'000, 604'800'000};

struct AnswerWindow {
  std::string since, until;         // normalised UTC
  std::optional<std::string> repo;  // nullopt: every repo
  std::string tz;                   // approvals and heatmap only
};

struct DurationStats {
  std::int64_t count = 0;
  std::optional<std::int64_t> p50_ms, p90_ms, p99_ms, max_ms;  // nullopt when count is 0
};

struct HistogramBucket {
  std::optional<std::int64_t> le_ms;  // nullopt: longer than every bound
  std::int64_t count = 0;
};

struct DurationMeasure {
  DurationStats all;
  std::int64_t open = 0;           // created in the window, not (yet) at the end by `until`
  std::int64_t spanning_gaps = 0;  // measured, but their life has a gap
  std::int64_t inferred = 0;       // measured, an endpoint inferred (resync, reconcile)
  std::int64_t ended_without_outcome = 0;  // to_terminal only: deleted before any outcome
  DurationStats succeeded, failed;         // to_terminal only
  std::vector<HistogramBucket> histogram;  // kDurationBucketsMs.size() + 1 buckets
};

struct DurationsAnswer {
  AnswerWindow window;
  std::int64_t sessions = 0;  // whose current life was created in the window
  DurationMeasure to_terminal, to_deleted;
};

struct DayDecisions {
  std::string date;  // local YYYY-MM-DD
  std::int64_t approved = 0, rejected = 0;
};

struct ApprovalsAnswer {
  AnswerWindow window;
  std::int64_t approved = 0, rejected = 0, pending = 0, inferred = 0;
  std::optional<double> rate;  // approved / (approved + rejected)
  std::int64_t decision_count = 0;
  std::optional<std::int64_t> decision_p50_ms, decision_p90_ms;
  std::vector<DayDecisions> per_day;  // every local day of the window
};

struct DayDeltas {
  std::string date;  // local YYYY-MM-DD
  std::int64_t deltas = 0;
};

struct HeatmapAnswer {
  AnswerWindow window;
  std::int64_t total = 0, inferred = 0;
  std::array<std::array<std::int64_t, 24>, 7> weekly{};  // [Monday..Sunday][local hour]
  std::vector<DayDeltas> days;  // every local day of the window
};

std::string durations_json(const DurationsAnswer& answer);
std::string approvals_json(const ApprovalsAnswer& answer);
std::string heatmap_json(const HeatmapAnswer& answer);

inline constexpr std::string_view kDurationsCsvHeader =
    "measure,outcome,count,p50_ms,p90_ms,p99_ms,max_ms,open,spanning_gaps,inferred\r\n";
inline constexpr std::string_view kApprovalsCsvHeader = "date,approved,rejected\r\n";
// "weekday,h00,h01,...,h23"
std::string heatmap_csv_header();

std::string durations_csv(const DurationsAnswer& answer);
std::string approvals_csv(const ApprovalsAnswer& answer);
std::string heatmap_csv(const HeatmapAnswer& answer);

// The JSON above read back (the CLI on either source). An error names what is
// missing or malformed.
Result<DurationsAnswer> parse_durations_json(std::string_view text);
Result<ApprovalsAnswer> parse_approvals_json(std::string_view text);
Result<HeatmapAnswer> parse_heatmap_json(std::string_view text);

// Monday..Sunday, as the CSV and the CLI name the rows.
inline constexpr std::array<std::string_view, 7> kWeekdayNames = {
    "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"};

}  // namespace deltatap
