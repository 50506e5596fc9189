// timeline_command: `deltatap timeline SESSION`, one session's history told in
// the order it happened (design.md, "Fidelity").
//
// That order is arrival order, the delta ids: it is the chain of before and
// after states. Timestamps are not a safe key: format A's whole seconds and
// format B's receive times meet in one history, so a later step can carry an
// earlier time (an update at 12:00:00 after its `created` at 12:00:00.500).
// The steps are therefore sorted by id, never by time, and a time that runs
// backwards against the step before it is marked rather than "corrected".
//
// The text also says what deltatap did not see and what it inferred:
//   -- changes between T1 and T2 were not observed      (before a gap = 1 step)
//   -- changes before T2 were not observed               (a gap on the first step)
//   T2  updated  #9  inferred: reconciled with the backend's live sessions
// Every piece of stream text goes through escape_controls(): this is for a
// terminal. --format json carries the same steps, in the same order, each with
// its origin and gap.
#include "cli/commands.h"

#include <algorithm>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "api/delta_json.h"
#include "base/delta.h"
#include "base/json_text.h"
#include "base/timestamp.h"
#include "cli/human_text.h"
#include "cli/source.h"
#include "cli/state_diff.h"
#include "storage/store.h"

namespace deltatap::cli {

namespace {

// The session's whole history in arrival order. The API pages newest first by
// time; every page is gathered, then the ids decide the order.
std::optional<std::vector<StoredDelta>> fetch_history(const Context& ctx,
                                                      const std::string& session, int& code) {
  std::vector<StoredDelta> history;
  std::optional<std::string> cursor;
  do {
    std::vector<std::pair<std::string, std::string>> params = {
        {"limit", std::to_string(kMaxQueryLimit)}};
    if (cursor) params.emplace_back("before", *cursor);
    if (ctx.inv.option("--archive")) params.emplace_back("archive", "1");
    auto answer =
        get_ok(ctx, "GET", with_params("/api/deltas/" + percent_encode(session), params), code);
    if (!answer) return std::nullopt;
    auto page = parse_delta_page_json(answer->body);
    if (!page.ok()) {
      code = fail(ctx, "unreadable answer: " + page.error());
      return std::nullopt;
    }
    for (auto& row : page->deltas) history.push_back(std::move(row));
    cursor = page->next;
  } while (cursor);
  std::sort(history.begin(), history.end(),
            [](const StoredDelta& a, const StoredDelta& b) { return a.id < b.id; });
  return history;
}

// What an inferred step is, in words; empty for what the backend sent.
std::string_view inferred_label(DeltaOrigin origin) {
  switch (origin) {
    case DeltaOrigin::stream: return "";
    case DeltaOrigin::resync: return "inferred: re-announced after a backend restart";
    case DeltaOrigin::reconcile: return "inferred: reconciled with the backend's live sessions";
  }
  return "";
}

// True when `later`'s time is before `earlier`'s. Times that do not parse (a
// file some other program wrote) are not compared: nothing is claimed.
bool runs_backwards(const StoredDelta& earlier, const StoredDelta& later) {
  auto a = parse_timestamp(earlier.delta.timestamp);
  auto b = parse_timestamp(later.delta.timestamp);
  return a.ok() && b.ok() && *b < *a;
}

std::string timeline_json(const std::string& session, const std::vector<StoredDelta>& history) {
  std::string out = "{\"sessionId\":";
  append_json_string(out, session);
  out += ",\"deltas\":[";
  for (std::size_t i = 0; i < history.size(); ++i) {
    const auto& row = history[i];
    DeltaChanges changes;
    compute_changes(row, changes);
    if (i) out += ',';
    out += "{\"id\":" + std::to_string(row.id) + ",\"type\":";
    append_json_string(out, to_string(row.delta.type));
    out += ",\"timestamp\":";
    append_json_string(out, row.delta.timestamp);
    out += ",\"createdAt\":";
    append_json_string(out, row.created_at);
    out += ",\"origin\":";
    append_json_string(out, to_string(row.origin));
    out += row.gap ? ",\"gap\":true" : ",\"gap\":false";
    out += ",\"changes\":[";
    for (std::size_t k = 0; k < changes.changes.size(); ++k) {
      const auto& change = changes.changes[k];
      if (k) out += ',';
      out += "{\"op\":";
      append_json_string(out, change.op == Change::Op::changed ? "changed"
                              : change.op == Change::Op::added ? "added"
                                                               : "removed");
      out += ",\"path\":";
      append_json_string(out, change.path);
      if (change.before) {
        out += ",\"before\":";
        append_compact(out, *change.before);
      }
      if (change.after) {
        out += ",\"after\":";
        append_compact(out, *change.after);
      }
      out += '}';
    }
    out += "]}";
  }
  out += "]}\n";
  return out;
}

// The lines under a step's heading: the fields it changed.
void append_changes(std::string& out, const StoredDelta& row, const Style& style) {
  auto value = [](const JsonNode* node, std::size_t width) {
    return clip(escape_controls(show_value(*node)), width);
  };
  DeltaChanges changes;
  compute_changes(row, changes);
  if (changes.unreadable) {
    out += "    (a state " + changes.problem + ")\n";
    return;
  }
  if (row.delta.type == DeltaType::deleted) {
    out += "    (session deleted)\n";
    return;
  }
  if (changes.changes.empty()) out += "    (no field changed)\n";
  for (const auto& change : changes.changes) {
    std::string path = escape_controls(change.path);
    switch (change.op) {
      case Change::Op::changed:
        out += "    " + path + ": " + value(change.before, 100) + " → " +
               value(change.after, 100) + "\n";
        break;
      case Change::Op::added:
        out += "    " + style.paint("+ " + path, "32") + ": " + value(change.after, 160) + "\n";
        break;
      case Change::Op::removed:
        out += "    " + style.paint("- " + path, "31") + ": " + value(change.before, 160) + "\n";
        break;
    }
  }
}

std::string timeline_text(const std::string& session, const std::vector<StoredDelta>& history,
                          const Style& style) {
  auto when = [&](const std::string& stored) { return escape_controls(show_time(stored, style)); };
  std::size_t gaps = 0, inferred = 0;
  for (const auto& row : history) {
    gaps += row.gap ? 1 : 0;
    inferred += row.origin != DeltaOrigin::stream ? 1 : 0;
  }
  std::string out = style.paint("Session " + escape_controls(session), "1") + ": " +
                    std::to_string(history.size()) +
                    (history.size() == 1 ? " delta" : " deltas") + ", " +
                    when(history.front().delta.timestamp) + " to " +
                    when(history.back().delta.timestamp);
  if (gaps || inferred) {
    out += "; ";
    if (gaps) out += std::to_string(gaps) + (gaps == 1 ? " gap" : " gaps");
    if (gaps && inferred) out += ", ";
    if (inferred) out += std::to_string(inferred) + " inferred";
  }
  out += "\n";

  const StoredDelta* previous = nullptr;
  for (const auto& row : history) {
    if (row.gap) {
      std::string sentence =
          previous ? "-- changes between " + when(previous->delta.timestamp) + " and " +
                         when(row.delta.timestamp) + " were not observed"
                   : "-- changes before " + when(row.delta.timestamp) + " were not observed";
      out += style.paint(sentence, kGapColour) + "\n";
    }
    std::string type(to_string(row.delta.type));
    out += when(row.delta.timestamp) + "  " + style.paint(type, style.type_colour(type)) +
           std::string(8 - type.size(), ' ') + style.paint("#" + std::to_string(row.id), "2");
    if (previous && runs_backwards(*previous, row)) {
      out += "  " + style.paint("(timestamp earlier than the previous step)", kBackwardsColour);
    }
    if (auto label = inferred_label(row.origin); !label.empty()) {
      out += "  " + style.paint(label, kInferredColour);
    }
    out += "\n";
    append_changes(out, row, style);
    previous = &row;
  }
  return out;
}

}  // namespace

int cmd_timeline(Context& ctx) {
  int code = kExitOk;
  auto format = check_format(ctx, {"text", "json"}, "text", code);
  if (!format) return code;
  const std::string& session = ctx.inv.positionals.at(0);
  auto history = fetch_history(ctx, session, code);
  if (!history) return code;
  // json_quoted escapes C0 controls, escape_controls what it leaves (DEL, C1).
  if (history->empty()) {
    return fail(ctx, "no deltas stored for session " + escape_controls(json_quoted(session)));
  }
  ctx.io.out << (*format == "json" ? timeline_json(session, *history)
                                   : timeline_text(session, *history, ctx.style));
  return kExitOk;
}

}  // namespace deltatap::cli
