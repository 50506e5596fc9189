#include "sim/frames.h"

#include <chrono>
#include <cstdlib>
#include <string_view>

#include "base/json_text.h"
#include "base/timestamp.h"

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

// A time inside a state: UTC with milliseconds, the form the store keeps.
std::string state_time(std::int64_t utc_ms) {
  return format_timestamp(TimePoint(std::chrono::milliseconds(utc_ms)));
}

// `value` (>= 0) in exactly `width` decimal digits. By hand: a frame holds a
// dozen times, and snprintf was a tenth of the simulator's time.
void append_digits(std::string& out, int value, int width) {
  char text[10];
  for (int i = width - 1; i >= 0; --i, value /= 10) text[i] = static_cast<char>('0' + value % 10);
  out.append(text, static_cast<std::size_t>(width));
}

}  // namespace

std::string render_time(std::int64_t utc_ms, int offset_minutes, int fraction_digits,
                        int sub_millis) {
  // The local time is written as base/timestamp.h writes a UTC one; for years
  // 0000-9999 that is "YYYY-MM-DDTHH:MM:SS.sssZ", fixed width, so the fraction
  // and the zone are changed in place.
  std::string out = format_timestamp(
      TimePoint(std::chrono::milliseconds(utc_ms + std::int64_t{offset_minutes} * 60'000)));
  out.pop_back();  // the "Z"
  if (fraction_digits == 6) {
    append_digits(out, sub_millis, 3);
  } else if (fraction_digits != 3) {
    out.resize(out.size() - 4);  // the ".sss"
  }
  if (offset_minutes == 0) {
    out += 'Z';
  } else {
    int magnitude = std::abs(offset_minutes);
    out += offset_minutes < 0 ? '-' : '+';
    append_digits(out, magnitude / 60, 2);
    out += ':';
    append_digits(out, magnitude % 60, 2);
  }
  return out;
}

std::string render_session(const Session& s) {
  std::string out;
  out.reserve(640);
  out += "{\"id\":";
  append_json_string(out, s.id);
  out += ",\"createdAt\":";
  append_json_string(out, state_time(s.created_ms));
  out += ",\"updatedAt\":";
  append_json_string(out, state_time(s.updated_ms));
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
      append_json_string(out, state_time(s.decided_ms));
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
  append_json_optional(out, d.timestamp);
  out += "}\n";
  return out;
}

std::string render_live_sessions(const World& world, bool bare_array) {
  std::string out = bare_array ? "[" : "{\"sessions\":[";
  bool first = true;
  world.for_each_live([&](const Session& s) {
    if (!first) out += ',';
    first = false;
    out += s.json;
  });
  out += bare_array ? "]" : "]}";
  return out;
}

}  // namespace deltatap::sim
