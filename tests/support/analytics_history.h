// analytics_history: what tests/analytics_test.cc and analytics_http_test.cc
// share: a history with known durations, approvals and times, and the
// independent count of every analytics figure over a list of deltas (plain
// loops in arrival order, following the ledger facts' definitions, with
// Europe/Berlin's 2026 offsets written out by hand). Include after
// <boost/test/unit_test.hpp>.
#pragma once

#include <rapidjson/document.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "api/analytics_answers.h"
#include "base/delta.h"
#include "base/json_text.h"
#include "base/timestamp.h"
#include "storage/store.h"

namespace deltatap::testing::analytics {

using std::chrono::hours;
using std::chrono::milliseconds;
using std::chrono::minutes;

inline TimePoint at(std::string_view iso) {
  auto parsed = parse_timestamp(iso);
  BOOST_REQUIRE_MESSAGE(parsed.ok(), iso << ": " << parsed.error());
  return *parsed;
}

// --- The history ------------------------------------------------------------

struct Step {
  TimePoint time;
  DeltaType type = DeltaType::updated;
  std::string plan, approval;  // the state after this step
  DeltaOrigin origin = DeltaOrigin::stream;
  bool gap = false;
};

struct SessionPlan {
  std::string id;
  std::optional<std::string> repo;
  bool approval_object = false;
  std::vector<Step> steps;  // in time order; the first is the created
};

inline std::string state_of(const SessionPlan& s, const Step& step) {
  std::string out = "{\"id\":";
  append_json_string(out, s.id);
  if (s.repo) {
    out += ",\"repo\":";
    append_json_string(out, *s.repo);
  }
  out += ",\"planStatus\":";
  append_json_string(out, step.plan);
  out += ",\"approval\":";
  if (s.approval_object) out += "{\"state\":";
  append_json_string(out, step.approval);
  if (s.approval_object) out += "}";
  return out + "}";
}

// 80 ordinary sessions over 2026-10-20..28 (durations from minutes to hours,
// approvals as strings and as objects, inferred and gap deltas among them),
// a session whose deltas sit on both sides of the window's odd edges, and two
// clocks ticking every hour through Berlin's autumn and spring DST changes.
inline std::vector<SessionPlan> history_plan() {
  std::vector<SessionPlan> plans;
  const char* repos[] = {"acme/widgets", "acme/payments-api"};
  for (int i = 0; i < 80; ++i) {
    SessionPlan s;
    s.id = "sess-" + std::to_string(i);
    if (i % 3 != 2) s.repo = repos[i % 3];
    s.approval_object = i % 2 == 0;
    TimePoint base = at("2026-10-20T06:00:00Z") + minutes(107 * i) + milliseconds(i * 7919 % 60000);
    s.steps.push_back({base, DeltaType::created, "pending", "pending",
                       i % 17 == 3 ? DeltaOrigin::reconcile : DeltaOrigin::stream});
    std::vector<Step> later;
    later.push_back({base + minutes(i * 37 % 300 + 1) + milliseconds(100), DeltaType::updated,
                     "in_progress", ""});
    if (i % 5 != 0) {
      later.push_back({base + minutes(i * 53 % 240 + 2) + milliseconds(200), DeltaType::updated, "",
                       i % 4 != 3 ? "approved" : "rejected",
                       i % 19 == 7 ? DeltaOrigin::resync : DeltaOrigin::stream});
    }
    TimePoint end_from = base + minutes(1000);
    if (i % 7 != 0) {
      Step outcome{base + minutes(i * 61 % 900 + 10) + milliseconds(250), DeltaType::updated,
                   i % 6 == 1 ? "failed" : "succeeded", ""};
      outcome.gap = i % 13 == 4;
      end_from = std::max(end_from, outcome.time);
      later.push_back(outcome);
    }
    if (i % 3 != 0) {
      later.push_back({end_from + minutes(30), DeltaType::deleted, "", "",
                       i % 11 == 5 ? DeltaOrigin::reconcile : DeltaOrigin::stream});
    }
    std::sort(later.begin(), later.end(), [](const Step& a, const Step& b) { return a.time < b.time; });
    // Each step changes one thing; the others carry over from the step before.
    for (auto& step : later) {
      const Step& before = s.steps.back();
      if (step.plan.empty()) step.plan = before.plan;
      if (step.approval.empty()) step.approval = before.approval;
      s.steps.push_back(step);
    }
    plans.push_back(std::move(s));
  }
  SessionPlan edge{"edge", "edge/cases", false, {}};
  for (const char* t : {"2026-10-21T10:05:00Z", "2026-10-21T10:08:00Z", "2026-10-21T10:14:59.999Z",
                        "2026-10-27T13:45:00Z", "2026-10-27T13:52:10.499Z",
                        "2026-10-27T13:52:10.500Z", "2026-10-27T13:55:00Z"}) {
    edge.steps.push_back({at(t), edge.steps.empty() ? DeltaType::created : DeltaType::updated,
                          "pending", "pending"});
  }
  plans.push_back(edge);
  SessionPlan autumn{"clock-autumn", "clock/autumn", false, {}};
  for (int h = 0; h <= 25; ++h) {
    autumn.steps.push_back({at("2026-10-24T22:00:00Z") + hours(h),
                            h == 0 ? DeltaType::created : DeltaType::updated, "pending", "pending"});
  }
  // 02:30 local twice: once in CEST (00:30Z), once in CET (01:30Z).
  for (const char* t : {"2026-10-25T00:30:00Z", "2026-10-25T01:30:00Z"}) {
    autumn.steps.push_back({at(t), DeltaType::updated, "pending", "pending"});
  }
  std::sort(autumn.steps.begin(), autumn.steps.end(),
            [](const Step& a, const Step& b) { return a.time < b.time; });
  plans.push_back(autumn);
  SessionPlan spring{"clock-spring", "clock/spring", false, {}};
  for (int h = 0; h < 24; ++h) {
    spring.steps.push_back({at("2026-03-28T23:00:00Z") + hours(h),
                            h == 0 ? DeltaType::created : DeltaType::updated, "pending", "pending"});
  }
  plans.push_back(spring);
  return plans;
}

// Every step as a stored delta, ids in time order (arrival order).
inline std::vector<StoredDelta> history_deltas() {
  std::vector<StoredDelta> rows;
  for (const auto& s : history_plan()) {
    std::optional<std::string> last;
    for (const auto& step : s.steps) {
      StoredDelta row;
      row.delta.session_id = s.id;
      row.delta.type = step.type;
      row.delta.timestamp = format_timestamp(step.time);
      row.created_at = row.delta.timestamp;
      row.origin = step.origin;
      row.gap = step.gap;
      if (step.type != DeltaType::created) row.delta.before = last;
      if (step.type != DeltaType::deleted) row.delta.after = state_of(s, step);
      last = row.delta.after;
      rows.push_back(std::move(row));
    }
  }
  std::stable_sort(rows.begin(), rows.end(), [](const StoredDelta& a, const StoredDelta& b) {
    return a.delta.timestamp < b.delta.timestamp;
  });
  for (std::size_t i = 0; i < rows.size(); ++i) rows[i].id = static_cast<std::int64_t>(i + 1);
  return rows;
}

inline std::unique_ptr<Store> store_with(const std::vector<StoredDelta>& rows) {
  auto opened = Store::open_empty();
  BOOST_REQUIRE_MESSAGE(opened.ok(), opened.error());
  auto store = std::move(opened.value());
  for (std::size_t i = 0; i < rows.size(); i += 50) {
    std::vector<StoredDelta> batch(rows.begin() + i, rows.begin() + std::min(rows.size(), i + 50));
    auto saved = store->save_with_created_at(batch);
    BOOST_REQUIRE_MESSAGE(saved.ok(), saved.error());
  }
  return store;
}

// --- The independent count --------------------------------------------------

// Offset from UTC of the zones the tests use, written out by hand.
inline milliseconds offset_of(const std::string& tz, TimePoint t) {
  if (tz == "UTC") return milliseconds(0);
  BOOST_REQUIRE(tz == "Europe/Berlin");
  bool summer = t >= at("2026-03-29T01:00:00Z") && t < at("2026-10-25T01:00:00Z");
  return summer ? hours(2) : hours(1);
}

struct Local {
  std::int64_t day;
  int weekday, hour;
};

inline Local local_of(const std::string& tz, TimePoint t) {
  auto local = (t + offset_of(tz, t)).time_since_epoch();
  auto day = std::chrono::floor<std::chrono::days>(local);
  std::int64_t d = day.count();
  return {d, static_cast<int>(((d + 3) % 7 + 7) % 7),
          static_cast<int>(std::chrono::duration_cast<hours>(local - day).count())};
}

inline std::string date_of(std::int64_t day) {
  std::chrono::year_month_day ymd{std::chrono::sys_days{std::chrono::days{day}}};
  char text[16];
  std::snprintf(text, sizeof text, "%04d-%02u-%02u", static_cast<int>(ymd.year()),
                static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()));
  return text;
}

// What a state says: its top-level repo, planStatus and approval (a string or
// an object's "state").
struct StateFacts {
  std::optional<std::string> repo, plan, approval;
};

inline StateFacts facts_of(const std::optional<std::string>& state) {
  StateFacts facts;
  if (!state) return facts;
  rapidjson::Document doc;
  doc.Parse(state->c_str());
  if (!doc.IsObject()) return facts;
  auto text = [&](const rapidjson::Value& v) -> std::optional<std::string> {
    if (!v.IsString()) return std::nullopt;
    return std::string(v.GetString(), v.GetStringLength());
  };
  if (doc.HasMember("repo")) facts.repo = text(doc["repo"]);
  if (doc.HasMember("planStatus")) facts.plan = text(doc["planStatus"]);
  if (doc.HasMember("approval")) {
    const auto& a = doc["approval"];
    if (a.IsObject() && a.HasMember("state")) facts.approval = text(a["state"]);
    else facts.approval = text(a);
  }
  return facts;
}

// One session as the ledger's facts describe it, from its deltas in id order.
struct Facts {
  std::optional<std::string> repo, outcome, approval;
  std::optional<TimePoint> created, outcome_at, ended, decided;
  bool created_inferred = false, outcome_inferred = false, ended_inferred = false,
       decided_inferred = false;
  int gaps = 0;
  bool live = false;
  TimePoint first_seen, last_seen;
};

inline std::map<std::string, Facts> facts_from(std::vector<StoredDelta> rows) {
  std::sort(rows.begin(), rows.end(),
            [](const StoredDelta& a, const StoredDelta& b) { return a.id < b.id; });
  std::map<std::string, Facts> sessions;
  for (const auto& row : rows) {
    TimePoint t = at(row.delta.timestamp);
    bool inferred = row.origin != DeltaOrigin::stream;
    bool known = sessions.count(row.delta.session_id) > 0;
    Facts& f = sessions[row.delta.session_id];
    if (!known) f.first_seen = t;
    f.last_seen = t;
    if (row.delta.type == DeltaType::created) {  // a new life
      f.created = t;
      f.created_inferred = inferred;
      f.outcome.reset();
      f.outcome_at.reset();
      f.ended.reset();
      f.gaps = 0;
    }
    if (row.gap) ++f.gaps;
    auto state = facts_of(row.delta.type == DeltaType::deleted ? row.delta.before : row.delta.after);
    f.repo = state.repo;
    if (!f.outcome && state.plan && (*state.plan == "succeeded" || *state.plan == "failed")) {
      f.outcome = state.plan;
      f.outcome_at = t;
      f.outcome_inferred = inferred;
    }
    bool verdict = state.approval && (*state.approval == "approved" || *state.approval == "rejected");
    if (verdict && state.approval != f.approval) {
      f.decided = t;
      f.decided_inferred = inferred;
    } else if (!verdict) {
      f.decided.reset();
    }
    f.approval = state.approval;
    f.live = row.delta.type != DeltaType::deleted;
    if (!f.live) {
      f.ended = t;
      f.ended_inferred = inferred;
    }
  }
  return sessions;
}

struct Window {
  std::string since, until;
  std::optional<std::string> repo;
  std::string tz = "UTC";
};

inline std::int64_t rank_of(std::vector<std::int64_t> v, double p) {
  std::sort(v.begin(), v.end());
  auto rank = static_cast<std::size_t>(std::ceil(p / 100.0 * static_cast<double>(v.size())));
  return v[std::max<std::size_t>(rank, 1) - 1];
}

inline DurationStats stats_by_hand(const std::vector<std::int64_t>& v) {
  DurationStats s;
  s.count = static_cast<std::int64_t>(v.size());
  if (v.empty()) return s;
  s.p50_ms = rank_of(v, 50);
  s.p90_ms = rank_of(v, 90);
  s.p99_ms = rank_of(v, 99);
  s.max_ms = *std::max_element(v.begin(), v.end());
  return s;
}

inline std::vector<HistogramBucket> histogram_by_hand(const std::vector<std::int64_t>& v) {
  const std::int64_t bounds[] = {60'000,     300'000,    900'000,    1'800'000,
                                 3'600'000,  7'200'000,  14'400'000, 28'800'000,
                                 86'400'000, 259'200'000, 604'800'000};
  std::vector<HistogramBucket> out;
  std::int64_t below = -1;
  for (auto bound : bounds) {
    out.push_back({bound, std::count_if(v.begin(), v.end(), [&](auto x) { return x > below && x <= bound; })});
    below = bound;
  }
  out.push_back({std::nullopt, std::count_if(v.begin(), v.end(), [&](auto x) { return x > below; })});
  return out;
}

inline AnswerWindow answer_window(const Window& w, bool with_tz) {
  return {w.since, w.until, w.repo, with_tz ? w.tz : ""};
}

inline bool in_window(const Window& w, TimePoint t) { return t >= at(w.since) && t < at(w.until); }

inline std::int64_t ms(TimePoint from, TimePoint to) {
  return std::max<std::int64_t>(0, (to - from).count());
}

inline DurationsAnswer durations_by_hand(const std::vector<StoredDelta>& rows, const Window& w) {
  DurationsAnswer a;
  a.window = answer_window(w, false);
  std::vector<std::int64_t> terminal, succeeded, failed, deleted;
  TimePoint until = at(w.until);
  for (const auto& [id, f] : facts_from(rows)) {
    if (w.repo && f.repo != w.repo) continue;
    if (!f.created || !in_window(w, *f.created)) continue;
    ++a.sessions;
    if (f.outcome_at && *f.outcome_at < until) {
      auto d = ms(*f.created, *f.outcome_at);
      terminal.push_back(d);
      (*f.outcome == "succeeded" ? succeeded : failed).push_back(d);
      if (f.gaps > 0) ++a.to_terminal.spanning_gaps;
      if (f.created_inferred || f.outcome_inferred) ++a.to_terminal.inferred;
    } else if (f.ended && *f.ended < until) {
      ++a.to_terminal.ended_without_outcome;
    } else {
      ++a.to_terminal.open;
    }
    if (f.ended && *f.ended < until) {
      deleted.push_back(ms(*f.created, *f.ended));
      if (f.gaps > 0) ++a.to_deleted.spanning_gaps;
      if (f.created_inferred || f.ended_inferred) ++a.to_deleted.inferred;
    } else {
      ++a.to_deleted.open;
    }
  }
  a.to_terminal.all = stats_by_hand(terminal);
  a.to_terminal.succeeded = stats_by_hand(succeeded);
  a.to_terminal.failed = stats_by_hand(failed);
  a.to_terminal.histogram = histogram_by_hand(terminal);
  a.to_deleted.all = stats_by_hand(deleted);
  a.to_deleted.histogram = histogram_by_hand(deleted);
  return a;
}

// Every local day of the window, first to last.
inline std::vector<std::int64_t> days_of(const Window& w) {
  std::vector<std::int64_t> days;
  for (auto d = local_of(w.tz, at(w.since)).day; d <= local_of(w.tz, at(w.until) - milliseconds(1)).day; ++d) {
    days.push_back(d);
  }
  return days;
}

inline ApprovalsAnswer approvals_by_hand(const std::vector<StoredDelta>& rows, const Window& w) {
  ApprovalsAnswer a;
  a.window = answer_window(w, true);
  auto days = days_of(w);
  for (auto d : days) a.per_day.push_back({date_of(d)});
  std::vector<std::int64_t> waits;
  for (const auto& [id, f] : facts_from(rows)) {
    if (w.repo && f.repo != w.repo) continue;
    bool verdict = f.approval && (*f.approval == "approved" || *f.approval == "rejected");
    if (verdict && f.decided && in_window(w, *f.decided)) {
      bool approved = *f.approval == "approved";
      ++(approved ? a.approved : a.rejected);
      auto& day = a.per_day[static_cast<std::size_t>(local_of(w.tz, *f.decided).day - days.front())];
      ++(approved ? day.approved : day.rejected);
      if (f.decided_inferred) ++a.inferred;
      if (f.created && *f.created <= *f.decided) waits.push_back(ms(*f.created, *f.decided));
    } else if (!verdict && f.approval && f.live && f.last_seen >= at(w.since) &&
               f.first_seen < at(w.until)) {
      ++a.pending;
    }
  }
  if (a.approved + a.rejected > 0) {
    a.rate = static_cast<double>(a.approved) / static_cast<double>(a.approved + a.rejected);
  }
  a.decision_count = static_cast<std::int64_t>(waits.size());
  if (!waits.empty()) {
    a.decision_p50_ms = rank_of(waits, 50);
    a.decision_p90_ms = rank_of(waits, 90);
  }
  return a;
}

inline HeatmapAnswer heatmap_by_hand(const std::vector<StoredDelta>& rows, const Window& w) {
  HeatmapAnswer a;
  a.window = answer_window(w, true);
  auto days = days_of(w);
  for (auto d : days) a.days.push_back({date_of(d)});
  auto facts = facts_from(rows);
  for (const auto& row : rows) {
    TimePoint t = at(row.delta.timestamp);
    if (!in_window(w, t)) continue;
    if (w.repo && facts[row.delta.session_id].repo != w.repo) continue;
    auto local = local_of(w.tz, t);
    ++a.total;
    if (row.origin != DeltaOrigin::stream) ++a.inferred;
    ++a.weekly[static_cast<std::size_t>(local.weekday)][static_cast<std::size_t>(local.hour)];
    ++a.days[static_cast<std::size_t>(local.day - days.front())].deltas;
  }
  return a;
}

}  // namespace deltatap::testing::analytics
