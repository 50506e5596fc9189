// deltatap analytics durations|approvals|heatmap: GET /api/analytics/<answer>
// (api/analytics.h) shown as tables, or passed through as json or csv.
//
// The heatmap's table is the weekly grid (a row per weekday, a column per
// local hour). With colour on (a terminal without NO_COLOR, or --color
// always) each cell is a shade block scaled to the busiest cell: blank for
// none, then ░ ▒ ▓ █ for up to a quarter, a half, three quarters and all of
// the maximum. Otherwise (a pipe, a file, NO_COLOR, --color never) the cells
// are the counts themselves, which a script or a screen reader can use.
#include <algorithm>
#include <cstdio>
#include <optional>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "api/analytics_answers.h"
#include "cli/commands.h"
#include "cli/human_text.h"
#include "cli/source.h"
#include "cli/table.h"

namespace deltatap::cli {

namespace {

// "850ms", "42s", "3m 05s", "2h 03m", "3d 04h": two units at most, for a
// person; json and csv carry the milliseconds.
std::string human_duration(const std::optional<std::int64_t>& ms) {
  if (!ms) return "-";
  std::int64_t v = *ms;
  char text[48];
  if (v < 1000) {
    std::snprintf(text, sizeof text, "%lldms", static_cast<long long>(v));
  } else if (v < 60'000) {
    std::snprintf(text, sizeof text, "%.1fs", static_cast<double>(v) / 1000.0);
  } else if (v < 3'600'000) {
    std::snprintf(text, sizeof text, "%lldm %02llds", static_cast<long long>(v / 60'000),
                  static_cast<long long>(v / 1000 % 60));
  } else if (v < 86'400'000) {
    std::snprintf(text, sizeof text, "%lldh %02lldm", static_cast<long long>(v / 3'600'000),
                  static_cast<long long>(v / 60'000 % 60));
  } else {
    std::snprintf(text, sizeof text, "%lldd %02lldh", static_cast<long long>(v / 86'400'000),
                  static_cast<long long>(v / 3'600'000 % 24));
  }
  return text;
}

std::string window_line(const Context& ctx, const AnswerWindow& window, bool with_tz) {
  std::string line = "window " + show_time(window.since, ctx.style) + " to " +
                     show_time(window.until, ctx.style) + ", repo " +
                     (window.repo ? escape_controls(*window.repo) : std::string("(all)"));
  if (with_tz) line += ", time zone " + escape_controls(window.tz);
  return line;
}

void stats_row(Table& table, std::string measure, std::string outcome, const DurationStats& stats,
               const DurationMeasure* totals) {
  auto total = [&](std::int64_t value) { return totals ? std::to_string(value) : std::string(); };
  table.rows.push_back({std::move(measure), std::move(outcome), std::to_string(stats.count),
                        human_duration(stats.p50_ms), human_duration(stats.p90_ms),
                        human_duration(stats.p99_ms), human_duration(stats.max_ms),
                        total(totals ? totals->open : 0),
                        total(totals ? totals->spanning_gaps : 0),
                        total(totals ? totals->inferred : 0)});
}

int show_durations(const Context& ctx, const std::string& body) {
  auto answer = parse_durations_json(body);
  if (!answer.ok()) return fail(ctx, "unreadable answer: " + answer.error());
  ctx.io.out << window_line(ctx, answer->window, false) << ": " << answer->sessions
             << " sessions created\n\n";
  Table table;
  table.headers = {"MEASURE", "OUTCOME", "COUNT", "P50", "P90", "P99", "MAX",
                   "OPEN", "SPANNING GAPS", "INFERRED"};
  const auto& terminal = answer->to_terminal;
  stats_row(table, "to terminal", "all", terminal.all, &terminal);
  stats_row(table, "to terminal", "succeeded", terminal.succeeded, nullptr);
  stats_row(table, "to terminal", "failed", terminal.failed, nullptr);
  stats_row(table, "to deleted", "all", answer->to_deleted.all, &answer->to_deleted);
  table.print(ctx.io.out, ctx.style);
  if (terminal.ended_without_outcome > 0) {
    ctx.io.out << "\n" << terminal.ended_without_outcome
               << " sessions were deleted before reaching succeeded or failed.\n";
  }
  return kExitOk;
}

int show_approvals(const Context& ctx, const std::string& body) {
  auto answer = parse_approvals_json(body);
  if (!answer.ok()) return fail(ctx, "unreadable answer: " + answer.error());
  const auto& a = *answer;
  ctx.io.out << window_line(ctx, a.window, true) << "\n";
  char rate[32] = "-";
  if (a.rate) std::snprintf(rate, sizeof rate, "%.1f%%", *a.rate * 100.0);
  ctx.io.out << "approved " << a.approved << ", rejected " << a.rejected << " (approval rate "
             << rate << "), pending " << a.pending;
  if (a.inferred > 0) ctx.io.out << ", " << a.inferred << " decisions inferred";
  ctx.io.out << "\ntime to decision: " << a.decision_count << " decisions, p50 "
             << human_duration(a.decision_p50_ms) << ", p90 " << human_duration(a.decision_p90_ms)
             << "\n\n";
  Table table;
  table.headers = {"DATE", "APPROVED", "REJECTED"};
  for (const auto& day : a.per_day) {
    table.rows.push_back({day.date, std::to_string(day.approved), std::to_string(day.rejected)});
  }
  table.print(ctx.io.out, ctx.style);
  return kExitOk;
}

// The shade of a cell: blank for 0, else one of four blocks by its share of
// the busiest cell (rounded up, so any activity shows).
std::string_view shade(std::int64_t count, std::int64_t max) {
  static constexpr std::string_view kShades[] = {"  ", "░░", "▒▒", "▓▓", "██"};
  if (count <= 0 || max <= 0) return kShades[0];
  auto level = std::clamp<std::int64_t>((count * 4 + max - 1) / max, 1, 4);
  return kShades[level];
}

int show_heatmap(const Context& ctx, const std::string& body) {
  auto answer = parse_heatmap_json(body);
  if (!answer.ok()) return fail(ctx, "unreadable answer: " + answer.error());
  const auto& a = *answer;
  ctx.io.out << window_line(ctx, a.window, true) << ": " << a.total << " deltas";
  if (a.inferred > 0) ctx.io.out << " (" << a.inferred << " inferred)";
  ctx.io.out << "\n\n";
  if (ctx.style.colour) {
    std::int64_t max = 0;
    for (const auto& row : a.weekly) max = std::max(max, *std::max_element(row.begin(), row.end()));
    std::string out = "     ";
    char hour[8];
    for (int h = 0; h < 24; ++h) {
      std::snprintf(hour, sizeof hour, "%02d ", h);
      out += hour;
    }
    out.pop_back();
    out += '\n';
    for (std::size_t d = 0; d < 7; ++d) {
      out += std::string(kWeekdayNames[d].substr(0, 3)) + "  ";
      for (std::size_t h = 0; h < 24; ++h) {
        out += shade(a.weekly[d][h], max);
        if (h < 23) out += ' ';
      }
      out += '\n';
    }
    out += "\n" + std::string(shade(1, 4)) + " up to 1/4 of the busiest hour (" +
           std::to_string(max) + " deltas), " + std::string(shade(4, 4)) + " the busiest\n\n";
    ctx.io.out << out;
  } else {
    Table grid;
    grid.headers = {"DAY"};
    char hour[8];
    for (int h = 0; h < 24; ++h) {
      std::snprintf(hour, sizeof hour, "%02d", h);
      grid.headers.push_back(hour);
    }
    for (std::size_t d = 0; d < 7; ++d) {
      std::vector<std::string> row = {std::string(kWeekdayNames[d].substr(0, 3))};
      for (auto count : a.weekly[d]) row.push_back(std::to_string(count));
      grid.rows.push_back(std::move(row));
    }
    grid.print(ctx.io.out, ctx.style);
    ctx.io.out << '\n';
  }
  Table days;
  days.headers = {"DATE", "DELTAS"};
  for (const auto& day : a.days) days.rows.push_back({day.date, std::to_string(day.deltas)});
  days.print(ctx.io.out, ctx.style);
  return kExitOk;
}

}  // namespace

int cmd_analytics(Context& ctx) {
  int code = kExitOk;
  const std::string& answer_name = ctx.inv.positionals[0];
  if (answer_name != "durations" && answer_name != "approvals" && answer_name != "heatmap") {
    return usage(ctx.io, "analytics answers durations, approvals or heatmap, not " +
                             escape_controls(answer_name));
  }
  auto format = check_format(ctx, {"table", "json", "csv"}, "table", code);
  if (!format) return code;
  if (answer_name == "durations" && ctx.inv.option("--tz")) {
    return usage(ctx.io, "--tz is for approvals and heatmap (durations have no local times)");
  }
  std::vector<std::pair<std::string, std::string>> params;
  for (auto [option, param] : {std::pair{"--since", "since"}, std::pair{"--until", "until"},
                               std::pair{"--repo", "repo"}, std::pair{"--tz", "tz"}}) {
    if (auto value = ctx.inv.option(option)) params.emplace_back(param, *value);
  }
  if (*format == "csv") params.emplace_back("format", "csv");
  auto answer = get_ok(ctx, "GET", with_params("/api/analytics/" + answer_name, params), code);
  if (!answer) return code;
  if (*format == "csv") {
    ctx.io.out << answer->body;
    return kExitOk;
  }
  if (*format == "json") {
    ctx.io.out << answer->body << '\n';
    return kExitOk;
  }
  if (answer_name == "durations") return show_durations(ctx, answer->body);
  if (answer_name == "approvals") return show_approvals(ctx, answer->body);
  return show_heatmap(ctx, answer->body);
}

}  // namespace deltatap::cli
