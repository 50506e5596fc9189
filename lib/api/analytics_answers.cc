#include "api/analytics_answers.h"

#include <rapidjson/document.h>

#include <charconv>
#include <cstdio>

#include "api/delta_json.h"
#include "base/json_text.h"

namespace deltatap {

namespace {

// ---------------------------------------------------------------------------
// Writing

void number(std::string& out, std::int64_t value) { out += std::to_string(value); }

void optional_number(std::string& out, const std::optional<std::int64_t>& value) {
  if (value) number(out, *value); else out += "null";
}

void key(std::string& out, std::string_view name) {
  if (out.back() != '{') out += ',';
  append_json_string(out, name);
  out += ':';
}

void field(std::string& out, std::string_view name, std::int64_t value) {
  key(out, name);
  number(out, value);
}

void field(std::string& out, std::string_view name, const std::optional<std::int64_t>& value) {
  key(out, name);
  optional_number(out, value);
}

void window_fields(std::string& out, const AnswerWindow& window, bool with_tz) {
  key(out, "since");
  append_json_string(out, window.since);
  key(out, "until");
  append_json_string(out, window.until);
  key(out, "repo");
  append_json_optional(out, window.repo);
  if (with_tz) {
    key(out, "tz");
    append_json_string(out, window.tz);
  }
}

void stats_fields(std::string& out, const DurationStats& stats) {
  field(out, "count", stats.count);
  field(out, "p50_ms", stats.p50_ms);
  field(out, "p90_ms", stats.p90_ms);
  field(out, "p99_ms", stats.p99_ms);
  field(out, "max_ms", stats.max_ms);
}

void measure_json(std::string& out, const DurationMeasure& measure, bool terminal) {
  out += '{';
  stats_fields(out, measure.all);
  field(out, "open", measure.open);
  field(out, "spanning_gaps", measure.spanning_gaps);
  field(out, "inferred", measure.inferred);
  if (terminal) {
    field(out, "ended_without_outcome", measure.ended_without_outcome);
    key(out, "by_outcome");
    out += "{";
    key(out, "succeeded");
    out += '{';
    stats_fields(out, measure.succeeded);
    out += '}';
    key(out, "failed");
    out += '{';
    stats_fields(out, measure.failed);
    out += "}}";
  }
  key(out, "histogram");
  out += '[';
  for (std::size_t i = 0; i < measure.histogram.size(); ++i) {
    if (i) out += ',';
    out += '{';
    field(out, "le_ms", measure.histogram[i].le_ms);
    field(out, "count", measure.histogram[i].count);
    out += '}';
  }
  out += "]}";
}

void csv_number(std::string& out, const std::optional<std::int64_t>& value) {
  if (value) append_csv_field(out, std::to_string(*value));
}

void csv_stats_row(std::string& out, std::string_view measure, std::string_view outcome,
                   const DurationStats& stats, const DurationMeasure* totals) {
  append_csv_field(out, measure);
  out += ',';
  append_csv_field(out, outcome);
  for (const auto& value : {std::optional<std::int64_t>(stats.count), stats.p50_ms, stats.p90_ms,
                            stats.p99_ms, stats.max_ms}) {
    out += ',';
    csv_number(out, value);
  }
  for (auto value : {totals ? std::optional<std::int64_t>(totals->open) : std::nullopt,
                     totals ? std::optional<std::int64_t>(totals->spanning_gaps) : std::nullopt,
                     totals ? std::optional<std::int64_t>(totals->inferred) : std::nullopt}) {
    out += ',';
    csv_number(out, value);
  }
  out += "\r\n";
}

// ---------------------------------------------------------------------------
// Reading back

using Value = rapidjson::Value;

struct Reader {
  std::string problem;

  const Value* member(const Value& object, const char* name) {
    if (!object.IsObject()) return fail(std::string("expected an object around \"") + name + "\"");
    auto found = object.FindMember(name);
    if (found == object.MemberEnd()) return fail(std::string("missing \"") + name + "\"");
    return &found->value;
  }
  const Value* fail(std::string text) {
    if (problem.empty()) problem = std::move(text);
    return nullptr;
  }
  std::int64_t integer(const Value& object, const char* name) {
    auto value = member(object, name);
    if (!value) return 0;
    if (!value->IsInt64()) {
      fail(std::string("\"") + name + "\" is not an integer");
      return 0;
    }
    return value->GetInt64();
  }
  std::optional<std::int64_t> optional_integer(const Value& object, const char* name) {
    auto value = member(object, name);
    if (!value || value->IsNull()) return std::nullopt;
    if (!value->IsInt64()) {
      fail(std::string("\"") + name + "\" is not an integer");
      return std::nullopt;
    }
    return value->GetInt64();
  }
  std::string text(const Value& object, const char* name) {
    auto value = member(object, name);
    if (!value) return {};
    if (!value->IsString()) {
      fail(std::string("\"") + name + "\" is not a string");
      return {};
    }
    return {value->GetString(), value->GetStringLength()};
  }
  std::optional<std::string> optional_text(const Value& object, const char* name) {
    auto value = member(object, name);
    if (!value || value->IsNull()) return std::nullopt;
    return text(object, name);
  }
  const Value* array(const Value& object, const char* name) {
    auto value = member(object, name);
    if (value && !value->IsArray()) return fail(std::string("\"") + name + "\" is not an array");
    return value;
  }
  AnswerWindow window(const Value& root, bool with_tz) {
    AnswerWindow window{text(root, "since"), text(root, "until"), optional_text(root, "repo"), ""};
    if (with_tz) window.tz = text(root, "tz");
    return window;
  }
  DurationStats stats(const Value& object) {
    return {integer(object, "count"), optional_integer(object, "p50_ms"),
            optional_integer(object, "p90_ms"), optional_integer(object, "p99_ms"),
            optional_integer(object, "max_ms")};
  }
  DurationMeasure measure(const Value& object, bool terminal) {
    DurationMeasure measure;
    measure.all = stats(object);
    measure.open = integer(object, "open");
    measure.spanning_gaps = integer(object, "spanning_gaps");
    measure.inferred = integer(object, "inferred");
    if (terminal) {
      measure.ended_without_outcome = integer(object, "ended_without_outcome");
      if (auto by = member(object, "by_outcome")) {
        if (auto s = member(*by, "succeeded")) measure.succeeded = stats(*s);
        if (auto f = member(*by, "failed")) measure.failed = stats(*f);
      }
    }
    if (auto buckets = array(object, "histogram")) {
      for (const auto& bucket : buckets->GetArray()) {
        measure.histogram.push_back({optional_integer(bucket, "le_ms"), integer(bucket, "count")});
      }
    }
    return measure;
  }
};

Result<rapidjson::Document> parse_root(std::string_view text) {
  rapidjson::Document doc;
  doc.Parse<rapidjson::kParseValidateEncodingFlag>(text.data(), text.size());
  if (doc.HasParseError()) return Error{"not JSON"};
  if (!doc.IsObject()) return Error{"not a JSON object"};
  return doc;
}

}  // namespace

std::string durations_json(const DurationsAnswer& answer) {
  std::string out = "{";
  window_fields(out, answer.window, false);
  field(out, "sessions", answer.sessions);
  key(out, "to_terminal");
  measure_json(out, answer.to_terminal, true);
  key(out, "to_deleted");
  measure_json(out, answer.to_deleted, false);
  out += '}';
  return out;
}

std::string approvals_json(const ApprovalsAnswer& answer) {
  std::string out = "{";
  window_fields(out, answer.window, true);
  field(out, "approved", answer.approved);
  field(out, "rejected", answer.rejected);
  field(out, "pending", answer.pending);
  key(out, "rate");
  if (answer.rate) {
    char buffer[32];
    auto [end, ec] = std::to_chars(buffer, buffer + sizeof buffer, *answer.rate);
    out.append(buffer, ec == std::errc() ? end : buffer);
  } else {
    out += "null";
  }
  field(out, "inferred", answer.inferred);
  key(out, "time_to_decision");
  out += '{';
  field(out, "count", answer.decision_count);
  field(out, "p50_ms", answer.decision_p50_ms);
  field(out, "p90_ms", answer.decision_p90_ms);
  out += '}';
  key(out, "per_day");
  out += '[';
  for (std::size_t i = 0; i < answer.per_day.size(); ++i) {
    if (i) out += ',';
    out += '{';
    key(out, "date");
    append_json_string(out, answer.per_day[i].date);
    field(out, "approved", answer.per_day[i].approved);
    field(out, "rejected", answer.per_day[i].rejected);
    out += '}';
  }
  out += "]}";
  return out;
}

std::string heatmap_json(const HeatmapAnswer& answer) {
  std::string out = "{";
  window_fields(out, answer.window, true);
  field(out, "total", answer.total);
  field(out, "inferred", answer.inferred);
  key(out, "weekly");
  out += '[';
  for (std::size_t d = 0; d < answer.weekly.size(); ++d) {
    if (d) out += ',';
    out += '[';
    for (std::size_t h = 0; h < 24; ++h) {
      if (h) out += ',';
      number(out, answer.weekly[d][h]);
    }
    out += ']';
  }
  out += ']';
  key(out, "days");
  out += '[';
  for (std::size_t i = 0; i < answer.days.size(); ++i) {
    if (i) out += ',';
    out += '{';
    key(out, "date");
    append_json_string(out, answer.days[i].date);
    field(out, "deltas", answer.days[i].deltas);
    out += '}';
  }
  out += "]}";
  return out;
}

std::string heatmap_csv_header() {
  std::string out = "weekday";
  char cell[8];
  for (int h = 0; h < 24; ++h) {
    std::snprintf(cell, sizeof cell, ",h%02d", h);
    out += cell;
  }
  return out + "\r\n";
}

std::string durations_csv(const DurationsAnswer& answer) {
  std::string out(kDurationsCsvHeader);
  csv_stats_row(out, "to_terminal", "all", answer.to_terminal.all, &answer.to_terminal);
  csv_stats_row(out, "to_terminal", "succeeded", answer.to_terminal.succeeded, nullptr);
  csv_stats_row(out, "to_terminal", "failed", answer.to_terminal.failed, nullptr);
  csv_stats_row(out, "to_deleted", "all", answer.to_deleted.all, &answer.to_deleted);
  return out;
}

std::string approvals_csv(const ApprovalsAnswer& answer) {
  std::string out(kApprovalsCsvHeader);
  for (const auto& day : answer.per_day) {
    append_csv_field(out, day.date);
    out += ',';
    append_csv_field(out, std::to_string(day.approved));
    out += ',';
    append_csv_field(out, std::to_string(day.rejected));
    out += "\r\n";
  }
  return out;
}

std::string heatmap_csv(const HeatmapAnswer& answer) {
  std::string out = heatmap_csv_header();
  for (std::size_t d = 0; d < answer.weekly.size(); ++d) {
    append_csv_field(out, kWeekdayNames[d]);
    for (auto count : answer.weekly[d]) {
      out += ',';
      append_csv_field(out, std::to_string(count));
    }
    out += "\r\n";
  }
  return out;
}

Result<DurationsAnswer> parse_durations_json(std::string_view text) {
  auto doc = parse_root(text);
  if (!doc.ok()) return Error{doc.error()};
  Reader read;
  DurationsAnswer answer;
  answer.window = read.window(*doc, false);
  answer.sessions = read.integer(*doc, "sessions");
  if (auto t = read.member(*doc, "to_terminal")) answer.to_terminal = read.measure(*t, true);
  if (auto d = read.member(*doc, "to_deleted")) answer.to_deleted = read.measure(*d, false);
  if (!read.problem.empty()) return Error{read.problem};
  return answer;
}

Result<ApprovalsAnswer> parse_approvals_json(std::string_view text) {
  auto doc = parse_root(text);
  if (!doc.ok()) return Error{doc.error()};
  Reader read;
  ApprovalsAnswer answer;
  answer.window = read.window(*doc, true);
  answer.approved = read.integer(*doc, "approved");
  answer.rejected = read.integer(*doc, "rejected");
  answer.pending = read.integer(*doc, "pending");
  answer.inferred = read.integer(*doc, "inferred");
  if (auto rate = read.member(*doc, "rate"); rate && rate->IsNumber()) {
    answer.rate = rate->GetDouble();
  }
  if (auto ttd = read.member(*doc, "time_to_decision")) {
    answer.decision_count = read.integer(*ttd, "count");
    answer.decision_p50_ms = read.optional_integer(*ttd, "p50_ms");
    answer.decision_p90_ms = read.optional_integer(*ttd, "p90_ms");
  }
  if (auto days = read.array(*doc, "per_day")) {
    for (const auto& day : days->GetArray()) {
      answer.per_day.push_back(
          {read.text(day, "date"), read.integer(day, "approved"), read.integer(day, "rejected")});
    }
  }
  if (!read.problem.empty()) return Error{read.problem};
  return answer;
}

Result<HeatmapAnswer> parse_heatmap_json(std::string_view text) {
  auto doc = parse_root(text);
  if (!doc.ok()) return Error{doc.error()};
  Reader read;
  HeatmapAnswer answer;
  answer.window = read.window(*doc, true);
  answer.total = read.integer(*doc, "total");
  answer.inferred = read.integer(*doc, "inferred");
  if (auto weekly = read.array(*doc, "weekly")) {
    if (weekly->Size() != 7) return Error{"\"weekly\" does not have 7 rows"};
    for (rapidjson::SizeType d = 0; d < 7; ++d) {
      const auto& row = (*weekly)[d];
      if (!row.IsArray() || row.Size() != 24) {
        return Error{"a \"weekly\" row does not have 24 hours"};
      }
      for (rapidjson::SizeType h = 0; h < 24; ++h) {
        if (!row[h].IsInt64()) return Error{"a \"weekly\" count is not an integer"};
        answer.weekly[d][h] = row[h].GetInt64();
      }
    }
  }
  if (auto days = read.array(*doc, "days")) {
    for (const auto& day : days->GetArray()) {
      answer.days.push_back({read.text(day, "date"), read.integer(day, "deltas")});
    }
  }
  if (!read.problem.empty()) return Error{read.problem};
  return answer;
}

}  // namespace deltatap
