// analytics: the answers of GET /api/analytics/{durations,approvals,heatmap}
// (design.md, "Analytics"; docs/analytics.md says what each figure counts),
// computed from the ledger's facts and the activity counts
// (storage/analytics_reads.h), never from a scan of the history.
//
// Window semantics, in short (docs/analytics.md has the reasons):
//  - durations: the sessions whose current life was created in [since,
//    until); an end (terminal planStatus, deletion) counts when it happened
//    before `until`, else the session is open.
//  - approvals: the decisions (approval became approved or rejected) made in
//    the window, by decided_at; pending: live sessions seen in the window
//    whose approval is neither; per day by the local date of the decision.
//  - heatmap: the deltas whose timestamp is in the window, by local weekday
//    and hour and by local day.
// Percentiles are nearest-rank: the p-th percentile of n sorted values is the
// value at rank ceil(p/100 * n) (1-based), always one of the values measured.
//
// The store lane only (the Store's thread).
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "api/analytics_answers.h"
#include "api/analytics_window.h"
#include "api/api_handler.h"
#include "base/result.h"
#include "storage/store.h"

namespace deltatap {

enum class AnalyticsKind { durations, approvals, heatmap };

// The nearest-rank p-th percentile (0 < p <= 100) of `sorted` (ascending);
// nullopt when it is empty.
std::optional<std::int64_t> nearest_rank(const std::vector<std::int64_t>& sorted, int percent);

Result<DurationsAnswer> compute_durations(Store& store, const AnalyticsRequest& request);
Result<ApprovalsAnswer> compute_approvals(Store& store, const AnalyticsRequest& request);
Result<HeatmapAnswer> compute_heatmap(Store& store, const AnalyticsRequest& request);

// The whole reply for GET /api/analytics/<kind> with `params` (their names
// already checked by the handler), `now` being the time "30d" counts back
// from: 200 with JSON or CSV, 400 naming the parameter at fault, 500 when the
// store fails (e.g. a database without the ledger's fact columns).
ApiReply analytics_reply(Store& store, AnalyticsKind kind, const AnalyticsParams& params,
                         TimePoint now);

}  // namespace deltatap
