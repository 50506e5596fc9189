#include "cli/commands.h"

#include <optional>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "api/delta_json.h"
#include "base/delta.h"
#include "cli/human_text.h"
#include "cli/source.h"
#include "cli/state_diff.h"
#include "cli/table.h"

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
    // ORIGIN and GAP are empty for the ordinary case (what the backend sent,
    // following on from the last stored state), so that an inferred delta or a
    // gap is what the eye finds in those columns.
    Table table;
    table.headers = {"ID", "TIME", "TYPE", "ORIGIN", "GAP", "SESSION", "CHANGED"};
    for (const auto& row : deltas) {
      table.rows.push_back({std::to_string(row.id), show_time(row.delta.timestamp, ctx.style),
                            std::string(to_string(row.delta.type)),
                            row.origin == DeltaOrigin::stream ? ""
                                                              : std::string(to_string(row.origin)),
                            row.gap ? "gap" : "", row.delta.session_id, changed_fields(row)});
    }
    table.colour = [&](std::size_t r, std::size_t c) -> std::string_view {
      if (c == 2) return ctx.style.type_colour(table.rows[r][2]);
      if (table.rows[r][c].empty()) return "";
      return c == 3 ? kInferredColour : c == 4 ? kGapColour : "";
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
  if (ctx.inv.option("--archive")) params.emplace_back("archive", "1");
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
    // LIVE: the ledger's word (its last delta is not a deletion); GAPS and
    // INFERRED: how much of its history was not seen or was deduced.
    table.headers = {"SESSION", "CREATED", "UPDATED", "DELETED", "FIRST SEEN", "LAST SEEN",
                     "LAST", "STATUS", "LIVE", "GAPS", "INFERRED"};
    for (const auto& row : *rows) {
      table.rows.push_back({row.session_id, std::to_string(row.created),
                            std::to_string(row.updated), std::to_string(row.deleted),
                            show_time(row.first_seen, ctx.style),
                            show_time(row.last_seen, ctx.style), row.last_type,
                            plan_status(row.last_state), row.live ? "yes" : "no",
                            std::to_string(row.gaps), std::to_string(row.inferred)});
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

}  // namespace deltatap::cli
