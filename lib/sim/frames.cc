#include "sim/frames.h"

#include <chrono>
#include <cstdlib>
#include <string_view>

#include "base/json_text.h"

namespace deltatap::sim {

namespace {

std::string_view plan_name(Plan plan) {
  switch (plan) {
    case Plan::pending: return "pending";
    case Plan::in_progress: return "in_progress";
    case Plan::succeeded: return "succeeded";
    case Plan::failed: return "failed";
  }
  return "pending";
}

std::string_view approval_name(Approval approval) {
  switch (approval) {
    case Approval::pending: return "pending";
    case Approval::approved: return "approved";
    case Approval::rejected: return "rejected";
  }
  return "pending";
}

void append_raw_or_null(std::string& out, const std::optional<std::string>& json) {
  out += json ? *json : std::string("null");
}

}  // namespace

std::string render_time(std::int64_t utc_ms, int offset_minutes, int fraction_digits,
                        int sub_millis) {
  using namespace std::chrono;
  sys_time<milliseconds> local{milliseconds{utc_ms + std::int64_t{offset_minutes} * 60'000}};
  auto day = floor<days>(local);
  year_month_day date{day};
  std::int64_t in_day = (local - day).count();
  std::string out;
  out.reserve(32);
  // Fixed-width decimal fields; a frame holds a dozen times, snprintf was a
  // tenth of the simulator's time.
  auto digits = [&out](std::int64_t value, int width) {
    char text[20];
    for (int i = width - 1; i >= 0; --i, value /= 10) text[i] = static_cast<char>('0' + value % 10);
    out.append(text, static_cast<std::size_t>(width));
  };
  digits(static_cast<int>(date.year()), 4);
  out += '-';
  digits(static_cast<unsigned>(date.month()), 2);
  out += '-';
  digits(static_cast<unsigned>(date.day()), 2);
  out += 'T';
  digits(in_day / 3'600'000, 2);
  out += ':';
  digits(in_day / 60'000 % 60, 2);
  out += ':';
  digits(in_day / 1000 % 60, 2);
  if (fraction_digits == 3 || fraction_digits == 6) {
    out += '.';
    digits(in_day % 1000, 3);
    if (fraction_digits == 6) digits(sub_millis, 3);
  }
  if (offset_minutes == 0) {
    out += 'Z';
  } else {
    int magnitude = std::abs(offset_minutes);
    out += offset_minutes < 0 ? '-' : '+';
    digits(magnitude / 60, 2);
    out += ':';
    digits(magnitude % 60, 2);
  }
  return out;
}

std::string iso_millis(std::int64_t utc_ms) { return render_time(utc_ms, 0, 3, 0); }

std::string render_session(const Session& s) {
  std::string out;
  out.reserve(640);
  out += "{\"id\":";
  append_json_string(out, s.id);
  out += ",\"createdAt\":";
  append_json_string(out, iso_millis(s.created_ms));
  out += ",\"updatedAt\":";
  append_json_string(out, iso_millis(s.updated_ms));
  out += ",\"repo\":";
  append_json_string(out, kRepos[s.repo]);
  out += ",\"branch\":";
  append_json_string(out, kBranches[s.branch]);
  out += ",\"planStatus\":";
  append_json_string(out, plan_name(s.plan));
  out += ",\"approval\":";
  if (s.approval_object) {
    out += "{\"state\":";
    append_json_string(out, approval_name(s.approval));
    if (s.approval != Approval::pending) {
      out += ",\"by\":";
      append_json_string(out, kPeople[s.approver]);
      out += ",\"at\":";
      append_json_string(out, iso_millis(s.decided_ms));
    }
    out += '}';
  } else {
    append_json_string(out, approval_name(s.approval));
  }
  out += ",\"summary\":";
  append_json_string(out, kSummaries[s.summary]);
  out += ",\"participants\":[";
  for (std::size_t i = 0; i < s.participants.size(); ++i) {
    if (i > 0) out += ',';
    append_json_string(out, kPeople[s.participants[i]]);
  }
  out += "],\"metadata\":{\"attempt\":";
  out += std::to_string(s.attempt);
  out += ",\"revision\":";
  out += std::to_string(s.revision);
  out += ",\"traceId\":";
  out += std::to_string(s.trace_id);
  out += ",\"progress\":{\"done\":";
  out += std::to_string(s.steps_done);
  out += ",\"total\":";
  out += std::to_string(s.steps_total);
  out += "},\"labels\":[";
  for (std::size_t i = 0; i < s.labels.size(); ++i) {
    if (i > 0) out += ',';
    append_json_string(out, kLabels[s.labels[i]]);
  }
  out += "],\"draft\":";
  out += s.draft ? "true" : "false";
  out += ",\"model\":{\"name\":\"jules\",\"temperature\":0.2},\"reviewer\":";
  if (s.approval != Approval::pending) {
    append_json_string(out, kPeople[s.approver]);
  } else {
    out += "null";
  }
  out += "}}";
  return out;
}

std::string render_format_a(const OutDelta& d) {
  std::string out = "{\"type\":";
  append_json_string(out, to_string(d.type));
  out += ",\"sessionId\":";
  append_json_string(out, d.session_id);
  if (d.before) out += ",\"before\":" + *d.before;
  if (d.after) out += ",\"after\":" + *d.after;
  if (d.timestamp) {
    out += ",\"timestamp\":";
    append_json_string(out, *d.timestamp);
  }
  out += '}';
  return out;
}

std::string render_format_b(const std::vector<OutDelta>& deltas) {
  std::string out = "{\"type\":\"session_update\",\"delta\":[";
  for (std::size_t i = 0; i < deltas.size(); ++i) {
    const auto& d = deltas[i];
    if (i > 0) out += ',';
    out += "{\"id\":";
    append_json_string(out, d.session_id);
    out += ",\"change\":";
    append_json_string(out, to_string(d.type));
    if (d.before) out += ",\"previous\":" + *d.before;
    if (d.after) out += ",\"current\":" + *d.after;
    if (d.timestamp) {
      out += ",\"timestamp\":";
      append_json_string(out, *d.timestamp);
    }
    out += '}';
  }
  out += "]}";
  return out;
}

std::string render_record(const OutDelta& d) {
  std::string out = "{\"type\":";
  append_json_string(out, to_string(d.type));
  out += ",\"sessionId\":";
  append_json_string(out, d.session_id);
  out += ",\"before\":";
  append_raw_or_null(out, d.before);
  out += ",\"after\":";
  append_raw_or_null(out, d.after);
  out += ",\"timestamp\":";
  if (d.timestamp) {
    append_json_string(out, *d.timestamp);
  } else {
    out += "null";
  }
  out += "}\n";
  return out;
}

}  // namespace deltatap::sim
