#include "cli/commands.h"

#include <algorithm>
#include <optional>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "api/delta_json.h"
#include "base/delta.h"
#include "base/json_text.h"
#include "cli/human_text.h"
#include "cli/source.h"
#include "cli/state_diff.h"
#include "cli/table.h"
#include "storage/store.h"

namespace deltatap::cli {

namespace {

std::string changed_fields(const StoredDelta& row) {
  if (row.delta.type != DeltaType::updated) return "";
  DeltaChanges changes;
  compute_changes(row, changes);
  if (changes.unreadable) return "(a state " + changes.problem + ")";
  std::string out;
  for (const auto& change : changes.changes) {
    if (!out.empty()) out += ", ";
    out += change.op == Change::Op::added     ? "+"
           : change.op == Change::Op::removed ? "-"
                                              : "";
    out += change.path;
  }
  // Escaped before it is clipped, so that the clip counts what is shown.
  return clip(out.empty() ? "(no field changed)" : escape_controls(out), 60);
}

void print_deltas(const Context& ctx, const std::vector<StoredDelta>& deltas,
                  std::string_view format) {
  std::string out;
  if (format == "ndjson") {
    for (const auto& row : deltas) {
      append_delta_json(out, row);
      out += '\n';
    }
  } else if (format == "csv") {
    out += kDeltaCsvHeader;
    for (const auto& row : deltas) append_delta_csv(out, row);
  } else {
    Table table;
    table.headers = {"ID", "TIME", "TYPE", "SESSION", "CHANGED"};
    for (const auto& row : deltas) {
      table.rows.push_back({std::to_string(row.id), show_time(row.delta.timestamp, ctx.style),
                            std::string(to_string(row.delta.type)), row.delta.session_id,
                            changed_fields(row)});
    }
    table.colour = [&](std::size_t r, std::size_t c) -> std::string_view {
      return c == 2 ? ctx.style.type_colour(table.rows[r][2]) : "";
    };
    table.print(ctx.io.out, ctx.style);
    return;
  }
  ctx.io.out << out;
}

std::string plan_status(const std::optional<std::string>& state) {
  if (!state) return "";
  auto tree = parse_tree(*state);
  if (!tree || tree->kind != JsonNode::Kind::object) return "";
  auto status = member(*tree, "planStatus");
  return status ? show_value(*status) : "";
}

}  // namespace

int cmd_query(Context& ctx) {
  int code = kExitOk;
  auto format = check_format(ctx, {"table", "json", "ndjson", "csv"}, "table", code);
  if (!format) return code;
  std::vector<std::pair<std::string, std::string>> params;
  for (auto [option, param] : {std::pair{"--session", "sessionId"}, std::pair{"--type", "type"},
                               std::pair{"--since", "since"}, std::pair{"--until", "until"},
                               std::pair{"--limit", "limit"}, std::pair{"--before", "before"}}) {
    if (auto value = ctx.inv.option(option)) params.emplace_back(param, *value);
  }
  auto answer = get_ok(ctx, "GET", with_params("/api/deltas", params), code);
  if (!answer) return code;
  if (*format == "json") {
    ctx.io.out << answer->body << '\n';
    return kExitOk;
  }
  auto page = parse_delta_page_json(answer->body);
  if (!page.ok()) return fail(ctx, "unreadable answer: " + page.error());
  print_deltas(ctx, page->deltas, *format);
  if (*format == "table") {
    if (page->deltas.empty()) ctx.io.err << "(no deltas match)\n";
    if (page->next) ctx.io.err << "(more: --before " << *page->next << ")\n";
  }
  return kExitOk;
}

int cmd_sessions(Context& ctx) {
  int code = kExitOk;
  auto format = check_format(ctx, {"table", "json", "ndjson", "csv"}, "table", code);
  if (!format) return code;
  auto answer = get_ok(ctx, "GET", "/api/sessions", code);
  if (!answer) return code;
  if (*format == "json") {
    ctx.io.out << answer->body << '\n';
    return kExitOk;
  }
  auto rows = parse_sessions_json(answer->body);
  if (!rows.ok()) return fail(ctx, "unreadable answer: " + rows.error());
  std::string out;
  if (*format == "ndjson") {
    for (const auto& row : *rows) {
      append_session_json(out, row);
      out += '\n';
    }
  } else if (*format == "csv") {
    out += kSessionCsvHeader;
    for (const auto& row : *rows) append_session_csv(out, row);
  } else {
    Table table;
    table.headers = {"SESSION", "CREATED", "UPDATED", "DELETED", "FIRST SEEN", "LAST SEEN",
                     "LAST", "STATUS"};
    for (const auto& row : *rows) {
      table.rows.push_back({row.session_id, std::to_string(row.created),
                            std::to_string(row.updated), std::to_string(row.deleted),
                            show_time(row.first_seen, ctx.style),
                            show_time(row.last_seen, ctx.style), row.last_type,
                            plan_status(row.last_state)});
    }
    table.colour = [&](std::size_t r, std::size_t c) -> std::string_view {
      return c == 6 ? ctx.style.type_colour(table.rows[r][6]) : "";
    };
    table.print(ctx.io.out, ctx.style);
    if (rows->empty()) ctx.io.err << "(no sessions stored)\n";
    return kExitOk;
  }
  ctx.io.out << out;
  return kExitOk;
}

int cmd_timeline(Context& ctx) {
  int code = kExitOk;
  auto format = check_format(ctx, {"text", "json"}, "text", code);
  if (!format) return code;
  const std::string& session = ctx.inv.positionals.at(0);
  // The whole history, page by page (newest first), then oldest first.
  std::vector<StoredDelta> history;
  std::optional<std::string> cursor;
  do {
    std::vector<std::pair<std::string, std::string>> params = {
        {"limit", std::to_string(kMaxQueryLimit)}};
    if (cursor) params.emplace_back("before", *cursor);
    auto answer =
        get_ok(ctx, "GET", with_params("/api/deltas/" + percent_encode(session), params), code);
    if (!answer) return code;
    auto page = parse_delta_page_json(answer->body);
    if (!page.ok()) return fail(ctx, "unreadable answer: " + page.error());
    for (auto& row : page->deltas) history.push_back(std::move(row));
    cursor = page->next;
  } while (cursor);
  std::reverse(history.begin(), history.end());
  // json_quoted escapes C0 controls, escape_controls what it leaves (DEL, C1).
  if (history.empty()) {
    return fail(ctx, "no deltas stored for session " + escape_controls(json_quoted(session)));
  }

  std::string out;
  if (*format == "json") {
    out = "{\"sessionId\":";
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
    ctx.io.out << out;
    return kExitOk;
  }

  // Every piece of stream text (the id, times, paths, values) goes through
  // escape_controls(): this text is for a terminal.
  const Style& style = ctx.style;
  auto when = [&](const std::string& stored) { return escape_controls(show_time(stored, style)); };
  auto value = [](const JsonNode* node, std::size_t width) {
    return clip(escape_controls(show_value(*node)), width);
  };
  out += style.paint("Session " + escape_controls(session), "1") + ": " +
         std::to_string(history.size()) + (history.size() == 1 ? " delta" : " deltas") + ", " +
         when(history.front().delta.timestamp) + " to " + when(history.back().delta.timestamp) +
         "\n";
  for (const auto& row : history) {
    std::string type(to_string(row.delta.type));
    out += when(row.delta.timestamp) + "  " +
           style.paint(type, style.type_colour(type)) +
           std::string(8 - type.size(), ' ') + style.paint("#" + std::to_string(row.id), "2") +
           "\n";
    DeltaChanges changes;
    compute_changes(row, changes);
    if (changes.unreadable) {
      out += "    (a state " + changes.problem + ")\n";
      continue;
    }
    if (row.delta.type == DeltaType::deleted) {
      out += "    (session deleted)\n";
      continue;
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
  ctx.io.out << out;
  return kExitOk;
}

}  // namespace deltatap::cli
