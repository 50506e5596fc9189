#include "api/analytics.h"

#include <algorithm>
#include <chrono>
#include <string>
#include <utility>
#include <variant>

#include "api/replies.h"
#include "storage/analytics_reads.h"

namespace deltatap {

namespace {

using std::chrono::milliseconds;
using std::chrono::minutes;

constexpr milliseconds kQuarter = minutes(15);

std::optional<TimePoint> time_of(const std::optional<std::string>& text) {
  if (!text) return std::nullopt;
  auto parsed = parse_timestamp(*text);
  if (!parsed.ok()) return std::nullopt;
  return *parsed;
}

// What the backend sent, as opposed to what deltatap inferred. An origin the
// ledger did not record (NULL) is taken as the stream's: nothing says otherwise.
bool inferred(const std::optional<std::string>& origin) {
  return origin && *origin != "stream";
}

// Whole milliseconds from `from` to `to`; a timestamp that runs backwards
// (format A's whole seconds against format B's receive times, docs/fidelity.md)
// gives 0, never a negative duration.
std::int64_t ms_between(TimePoint from, TimePoint to) {
  return std::max<std::int64_t>(0, (to - from).count());
}

DurationStats stats_of(std::vector<std::int64_t>& values) {
  std::sort(values.begin(), values.end());
  DurationStats stats;
  stats.count = static_cast<std::int64_t>(values.size());
  stats.p50_ms = nearest_rank(values, 50);
  stats.p90_ms = nearest_rank(values, 90);
  stats.p99_ms = nearest_rank(values, 99);
  if (!values.empty()) stats.max_ms = values.back();
  return stats;
}

std::vector<HistogramBucket> histogram_of(const std::vector<std::int64_t>& values) {
  std::vector<HistogramBucket> buckets;
  for (auto bound : kDurationBucketsMs) buckets.push_back({bound, 0});
  buckets.push_back({std::nullopt, 0});
  for (auto value : values) {
    auto at = std::lower_bound(kDurationBucketsMs.begin(), kDurationBucketsMs.end(), value);
    ++buckets[static_cast<std::size_t>(at - kDurationBucketsMs.begin())].count;
  }
  return buckets;
}

AnswerWindow window_of(const AnalyticsRequest& request) {
  return {request.since_text, request.until_text, request.repo,
          request.tz ? request.tz->name() : std::string("UTC")};
}

FactsWindow facts_window(const AnalyticsRequest& request) {
  return {request.since_text, request.until_text, request.repo};
}

TimePoint floor_quarter(TimePoint time) {
  auto ms = time.time_since_epoch().count();
  auto q = kQuarter.count();
  auto floored = ms >= 0 ? ms - ms % q : ms - ((ms % q) + q) % q;
  return TimePoint(milliseconds(floored));
}

// "YYYY-MM-DDTHH:MM" of a quarter-hour start: the activity table's bucket.
std::string bucket_text(TimePoint quarter) { return format_timestamp(quarter).substr(0, 16); }

std::optional<TimePoint> bucket_time(const std::string& bucket) {
  auto parsed = parse_timestamp(bucket + ":00Z");
  if (!parsed.ok()) return std::nullopt;
  return *parsed;
}

// The local days of the window [since, until), first and last included.
std::pair<std::int64_t, std::int64_t> local_days(TimeZone& tz, TimePoint since, TimePoint until) {
  return {tz.local(since).day, tz.local(until - milliseconds(1)).day};
}

}  // namespace

std::optional<std::int64_t> nearest_rank(const std::vector<std::int64_t>& sorted, int percent) {
  if (sorted.empty()) return std::nullopt;
  // ceil(percent * n / 100) in integers, at least rank 1.
  std::size_t n = sorted.size();
  std::size_t rank = (static_cast<std::size_t>(percent) * n + 99) / 100;
  rank = std::clamp<std::size_t>(rank, 1, n);
  return sorted[rank - 1];
}

Result<DurationsAnswer> compute_durations(Store& store, const AnalyticsRequest& request) {
  auto rows = sessions_created_in(store, facts_window(request));
  if (!rows.ok()) return Error{rows.error()};
  DurationsAnswer answer;
  answer.window = window_of(request);
  std::vector<std::int64_t> terminal, succeeded, failed, deleted;
  for (const auto& row : *rows) {
    auto created = time_of(row.created_at);
    if (!created) continue;  // the SQL chose rows with a created_at; a bad one is not a start
    ++answer.sessions;
    bool gaps = row.life_gaps > 0;

    auto outcome_at = time_of(row.outcome_at);
    bool has_outcome = row.outcome && outcome_at && *outcome_at < request.until;
    auto ended = time_of(row.ended_at);
    bool has_end = ended && *ended < request.until;

    auto& to_terminal = answer.to_terminal;
    if (has_outcome && (*row.outcome == "succeeded" || *row.outcome == "failed")) {
      auto ms = ms_between(*created, *outcome_at);
      terminal.push_back(ms);
      (*row.outcome == "succeeded" ? succeeded : failed).push_back(ms);
      if (gaps) ++to_terminal.spanning_gaps;
      if (inferred(row.created_origin) || inferred(row.outcome_origin)) ++to_terminal.inferred;
    } else if (has_end) {
      ++to_terminal.ended_without_outcome;
    } else {
      ++to_terminal.open;
    }

    auto& to_deleted = answer.to_deleted;
    if (has_end) {
      deleted.push_back(ms_between(*created, *ended));
      if (gaps) ++to_deleted.spanning_gaps;
      if (inferred(row.created_origin) || inferred(row.ended_origin)) ++to_deleted.inferred;
    } else {
      ++to_deleted.open;
    }
  }
  answer.to_terminal.all = stats_of(terminal);
  answer.to_terminal.histogram = histogram_of(terminal);
  answer.to_terminal.succeeded = stats_of(succeeded);
  answer.to_terminal.failed = stats_of(failed);
  answer.to_deleted.all = stats_of(deleted);
  answer.to_deleted.histogram = histogram_of(deleted);
  return answer;
}

Result<ApprovalsAnswer> compute_approvals(Store& store, const AnalyticsRequest& request) {
  auto facts = approvals_in(store, facts_window(request));
  if (!facts.ok()) return Error{facts.error()};
  TimeZone tz = *request.tz;
  ApprovalsAnswer answer;
  answer.window = window_of(request);
  auto [first_day, last_day] = local_days(tz, request.since, request.until);
  for (auto day = first_day; day <= last_day; ++day) {
    answer.per_day.push_back({format_local_day(day)});
  }
  answer.pending = facts->pending;
  std::vector<std::int64_t> to_decision;
  for (const auto& decision : facts->decisions) {
    auto decided = parse_timestamp(decision.decided_at);
    if (!decided.ok() || *decided < request.since || *decided >= request.until) continue;
    ++(decision.approved ? answer.approved : answer.rejected);
    auto day = tz.local(*decided).day;
    if (day >= first_day && day <= last_day) {
      auto& per_day = answer.per_day[static_cast<std::size_t>(day - first_day)];
      ++(decision.approved ? per_day.approved : per_day.rejected);
    }
    if (decision.inferred) ++answer.inferred;
    if (auto created = time_of(decision.created_at); created && *created <= *decided) {
      to_decision.push_back(ms_between(*created, *decided));
    }
  }
  if (answer.approved + answer.rejected > 0) {
    answer.rate = static_cast<double>(answer.approved) /
                  static_cast<double>(answer.approved + answer.rejected);
  }
  std::sort(to_decision.begin(), to_decision.end());
  answer.decision_count = static_cast<std::int64_t>(to_decision.size());
  answer.decision_p50_ms = nearest_rank(to_decision, 50);
  answer.decision_p90_ms = nearest_rank(to_decision, 90);
  return answer;
}

Result<HeatmapAnswer> compute_heatmap(Store& store, const AnalyticsRequest& request) {
  TimeZone tz = *request.tz;
  HeatmapAnswer answer;
  answer.window = window_of(request);
  auto [first_day, last_day] = local_days(tz, request.since, request.until);
  for (auto day = first_day; day <= last_day; ++day) {
    answer.days.push_back({format_local_day(day)});
  }

  auto add = [&](TimePoint quarter, std::int64_t deltas, std::int64_t inferred_deltas) {
    if (deltas == 0) return;
    auto local = tz.local(quarter);
    answer.total += deltas;
    answer.inferred += inferred_deltas;
    answer.weekly[static_cast<std::size_t>(local.weekday)][static_cast<std::size_t>(local.hour)] +=
        deltas;
    if (local.day >= first_day && local.day <= last_day) {
      answer.days[static_cast<std::size_t>(local.day - first_day)].deltas += deltas;
    }
  };
  // A part of a quarter hour, counted from the deltas themselves: the part,
  // or, when it is most of the quarter hour, the quarter's total in
  // `activity` less the rest. The live quarter hour, which `until` = now cuts,
  // holds all the stream brought in the last minutes and next to nothing
  // after now: counting the part itself read every one of those deltas.
  auto count_between = [&](TimePoint from, TimePoint to) -> Result<QuarterCount> {
    if (from >= to) return QuarterCount{};
    return deltas_between(store, format_timestamp(from), format_timestamp(to), request.repo);
  };
  auto add_part = [&](TimePoint from, TimePoint to) -> Status {
    if (from >= to) return ok_status();
    TimePoint quarter = floor_quarter(from);
    if (to - from <= kQuarter / 2) {
      auto counted = count_between(from, to);
      if (!counted.ok()) return Error{counted.error()};
      add(quarter, counted->deltas, counted->inferred);
      return ok_status();
    }
    auto whole = activity_between(store, bucket_text(quarter), bucket_text(quarter + kQuarter),
                                  request.repo);
    if (!whole.ok()) return Error{whole.error()};
    auto before = count_between(quarter, from);
    if (!before.ok()) return Error{before.error()};
    auto after = count_between(to, quarter + kQuarter);
    if (!after.ok()) return Error{after.error()};
    std::int64_t deltas = 0, inferred_deltas = 0;
    for (const auto& row : *whole) deltas += row.deltas, inferred_deltas += row.inferred;
    add(quarter, std::max<std::int64_t>(0, deltas - before->deltas - after->deltas),
        std::max<std::int64_t>(0, inferred_deltas - before->inferred - after->inferred));
    return ok_status();
  };

  TimePoint since = request.since, until = request.until;
  if (floor_quarter(since) == floor_quarter(until)) {
    if (auto s = add_part(since, until); !s.ok()) return Error{s.error()};
    return answer;
  }
  TimePoint first_whole = floor_quarter(since) == since ? since : floor_quarter(since) + kQuarter;
  TimePoint end_whole = floor_quarter(until);
  if (auto s = add_part(since, first_whole); !s.ok()) return Error{s.error()};
  if (first_whole < end_whole) {
    auto rows = activity_between(store, bucket_text(first_whole), bucket_text(end_whole),
                                 request.repo);
    if (!rows.ok()) return Error{rows.error()};
    for (const auto& row : *rows) {
      auto quarter = bucket_time(row.bucket);
      if (quarter) add(*quarter, row.deltas, row.inferred);
    }
  }
  if (auto s = add_part(end_whole, until); !s.ok()) return Error{s.error()};
  return answer;
}

ApiReply analytics_reply(Store& store, AnalyticsKind kind, const AnalyticsParams& params,
                         TimePoint now) {
  auto read = read_analytics_request(params, now);
  if (auto* problem = std::get_if<ParameterProblem>(&read)) {
    return parameter_error(problem->parameter, problem->detail);
  }
  const auto& request = std::get<AnalyticsRequest>(read);
  std::string body;
  std::string failure;
  switch (kind) {
    case AnalyticsKind::durations: {
      auto answer = compute_durations(store, request);
      if (!answer.ok()) failure = answer.error();
      else body = request.csv ? durations_csv(*answer) : durations_json(*answer);
      break;
    }
    case AnalyticsKind::approvals: {
      auto answer = compute_approvals(store, request);
      if (!answer.ok()) failure = answer.error();
      else body = request.csv ? approvals_csv(*answer) : approvals_json(*answer);
      break;
    }
    case AnalyticsKind::heatmap: {
      auto answer = compute_heatmap(store, request);
      if (!answer.ok()) failure = answer.error();
      else body = request.csv ? heatmap_csv(*answer) : heatmap_json(*answer);
      break;
    }
  }
  if (!failure.empty()) return error_reply(500, "query failed", failure);
  ApiReply reply;
  reply.body = std::move(body);
  if (request.csv) reply.content_type = "text/csv; charset=utf-8; header=present";
  return reply;
}

}  // namespace deltatap
