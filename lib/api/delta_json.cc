#include "api/delta_json.h"

#include "base/json_text.h"

#include <rapidjson/document.h>
#include <rapidjson/encodedstream.h>
#include <rapidjson/memorystream.h>
#include <rapidjson/reader.h>

#include <algorithm>
#include <charconv>

namespace deltatap {

namespace {

constexpr unsigned kValidateFlags = rapidjson::kParseValidateEncodingFlag |
                                    rapidjson::kParseIterativeFlag |
                                    rapidjson::kParseNumbersAsStringsFlag;

// Whole-text JSON validation without building a document; iterative, so deep
// nesting cannot exhaust the stack.
bool is_valid_json(std::string_view text) {
  rapidjson::MemoryStream bytes(text.data(), text.size());
  rapidjson::EncodedInputStream<rapidjson::UTF8<>, rapidjson::MemoryStream> in(bytes);
  rapidjson::BaseReaderHandler<> ignore;
  rapidjson::Reader reader;
  return !reader.Parse<kValidateFlags>(in, ignore).IsError();
}

// As is_valid_json, faster: a std::string's text is NUL-terminated, so
// RapidJSON can read it in place with its fast string scanning. A NUL inside
// would end the text early: such a state is not JSON anyway.
bool is_valid_state(const std::string& state) {
  if (state.find('\0') != std::string::npos) return false;
  rapidjson::StringStream in(state.c_str());
  rapidjson::BaseReaderHandler<> ignore;
  rapidjson::Reader reader;
  return !reader.Parse<kValidateFlags>(in, ignore).IsError();
}

// A stored state: its own text when it is JSON (line breaks, which valid JSON
// can only hold as whitespace between tokens, become spaces so NDJSON stays one
// line per delta), else the text as a JSON string.
void append_state(std::string& out, const std::string& state) {
  if (!is_valid_state(state)) {
    append_json_string(out, state);
    return;
  }
  // Two memchr scans: find_first_of would test every byte against the set.
  if (state.find('\n') == std::string::npos && state.find('\r') == std::string::npos) {
    out += state;
    return;
  }
  for (char c : state) out += (c == '\n' || c == '\r') ? ' ' : c;
}

// --- Reading JSON back: a structural scanner over text already validated. ---

std::size_t skip_space(std::string_view text, std::size_t i) {
  while (i < text.size() &&
         (text[i] == ' ' || text[i] == '\t' || text[i] == '\n' || text[i] == '\r')) {
    ++i;
  }
  return i;
}

// End (one past) of the value starting at text[i].
std::size_t value_end(std::string_view text, std::size_t i) {
  auto skip_string = [&](std::size_t k) {
    for (++k; k < text.size() && text[k] != '"'; ++k) {
      if (text[k] == '\\') ++k;
    }
    return k + 1;
  };
  if (i >= text.size()) return i;
  char c = text[i];
  if (c == '"') return skip_string(i);
  if (c == '{' || c == '[') {
    int depth = 0;
    while (i < text.size()) {
      char d = text[i];
      if (d == '"') {
        i = skip_string(i);
        continue;
      }
      if (d == '{' || d == '[') ++depth;
      if (d == '}' || d == ']') {
        if (--depth == 0) return i + 1;
      }
      ++i;
    }
    return i;
  }
  while (i < text.size() && text[i] != ',' && text[i] != '}' && text[i] != ']' &&
         text[i] != ' ' && text[i] != '\t' && text[i] != '\n' && text[i] != '\r') {
    ++i;
  }
  return i;
}

// The elements of an array, each as raw text; `text` is valid JSON.
Result<std::vector<std::string_view>> raw_array_elements(std::string_view text) {
  std::size_t i = skip_space(text, 0);
  if (i >= text.size() || text[i] != '[') return Error{"expected a JSON array"};
  std::vector<std::string_view> items;
  i = skip_space(text, i + 1);
  if (i < text.size() && text[i] == ']') return items;
  while (i < text.size()) {
    std::size_t end = value_end(text, i);
    items.push_back(text.substr(i, end - i));
    i = skip_space(text, end);
    if (i < text.size() && text[i] == ',') {
      i = skip_space(text, i + 1);
      continue;
    }
    break;
  }
  return items;
}

bool is_null(std::string_view raw) { return raw == "null"; }

Result<std::string> member_string(const std::vector<RawMember>& members, std::string_view key,
                                  bool required = true) {
  for (const auto& m : members) {
    if (m.key == key) {
      if (!m.value.empty() && m.value.front() == '"') return decode_json_string(m.value);
      return Error{"\"" + std::string(key) + "\" is not a string"};
    }
  }
  if (!required) return std::string();
  return Error{"missing \"" + std::string(key) + "\""};
}

Result<std::int64_t> member_integer(const std::vector<RawMember>& members, std::string_view key) {
  for (const auto& m : members) {
    if (m.key != key) continue;
    std::int64_t value = 0;
    auto [end, ec] = std::from_chars(m.value.data(), m.value.data() + m.value.size(), value);
    if (ec != std::errc() || end != m.value.data() + m.value.size()) {
      return Error{"\"" + std::string(key) + "\" is not an integer"};
    }
    return value;
  }
  return Error{"missing \"" + std::string(key) + "\""};
}

std::optional<std::string_view> member_raw(const std::vector<RawMember>& members,
                                           std::string_view key) {
  for (const auto& m : members) {
    if (m.key == key) return m.value;
  }
  return std::nullopt;
}

std::optional<std::string> optional_state(const std::vector<RawMember>& members,
                                          std::string_view key) {
  auto raw = member_raw(members, key);
  if (!raw || is_null(*raw)) return std::nullopt;
  return std::string(*raw);
}

// Members of an object already validated as JSON.
Result<std::vector<RawMember>> members_of_valid(std::string_view text) {
  std::size_t i = skip_space(text, 0);
  if (i >= text.size() || text[i] != '{') return Error{"expected a JSON object"};
  std::vector<RawMember> members;
  i = skip_space(text, i + 1);
  if (i < text.size() && text[i] == '}') return members;
  while (i < text.size()) {
    std::size_t key_end = value_end(text, i);
    auto key = decode_json_string(text.substr(i, key_end - i));
    if (!key.ok()) return Error{key.error()};
    i = skip_space(text, key_end);
    i = skip_space(text, i + 1);  // the colon
    std::size_t end = value_end(text, i);
    members.push_back({std::move(key.value()), text.substr(i, end - i)});
    i = skip_space(text, end);
    if (i < text.size() && text[i] == ',') {
      i = skip_space(text, i + 1);
      continue;
    }
    break;
  }
  return members;
}

Result<StoredDelta> delta_from_valid(std::string_view text) {
  auto members = members_of_valid(text);
  if (!members.ok()) return Error{members.error()};
  StoredDelta row;
  auto id = member_integer(*members, "id");
  if (!id.ok()) return Error{id.error()};
  row.id = *id;
  auto type_text = member_string(*members, "type");
  if (!type_text.ok()) return Error{type_text.error()};
  auto type = parse_delta_type(*type_text);
  if (!type) return Error{"unknown delta type \"" + *type_text + "\""};
  row.delta.type = *type;
  auto session = member_string(*members, "sessionId");
  if (!session.ok()) return Error{session.error()};
  row.delta.session_id = std::move(session.value());
  auto timestamp = member_string(*members, "timestamp");
  if (!timestamp.ok()) return Error{timestamp.error()};
  row.delta.timestamp = std::move(timestamp.value());
  auto created_at = member_string(*members, "createdAt", false);
  if (!created_at.ok()) return Error{created_at.error()};
  row.created_at = std::move(created_at.value());
  row.delta.before = optional_state(*members, "before");
  row.delta.after = optional_state(*members, "after");
  // Absent from an older daemon's answer: what it stored came from the stream.
  if (member_raw(*members, "origin")) {
    auto origin_text = member_string(*members, "origin");
    if (!origin_text.ok()) return Error{origin_text.error()};
    auto origin = parse_delta_origin(*origin_text);
    if (!origin) return Error{"unknown delta origin " + json_quoted(*origin_text)};
    row.origin = *origin;
  }
  if (auto gap = member_raw(*members, "gap")) {
    if (*gap != "true" && *gap != "false") return Error{"\"gap\" is not true or false"};
    row.gap = *gap == "true";
  }
  return row;
}

Result<SessionSummary> session_from_valid(std::string_view text) {
  auto members = members_of_valid(text);
  if (!members.ok()) return Error{members.error()};
  SessionSummary row;
  auto session = member_string(*members, "sessionId");
  if (!session.ok()) return Error{session.error()};
  row.session_id = std::move(session.value());
  for (auto [key, field] : {std::pair{"created", &row.created}, std::pair{"updated", &row.updated},
                            std::pair{"deleted", &row.deleted}}) {
    auto count = member_integer(*members, key);
    if (!count.ok()) return Error{count.error()};
    *field = *count;
  }
  for (auto [key, field] : {std::pair{"firstSeen", &row.first_seen},
                            std::pair{"lastSeen", &row.last_seen},
                            std::pair{"lastType", &row.last_type}}) {
    auto value = member_string(*members, key);
    if (!value.ok()) return Error{value.error()};
    *field = std::move(value.value());
  }
  // The ledger's columns; absent from an older daemon's answer.
  if (auto live = member_raw(*members, "live")) {
    if (*live != "true" && *live != "false") return Error{"\"live\" is not true or false"};
    row.live = *live == "true";
  } else {
    row.live = row.last_type != "deleted";
  }
  for (auto [key, field] : {std::pair{"gaps", &row.gaps}, std::pair{"inferred", &row.inferred}}) {
    if (!member_raw(*members, key)) continue;
    auto count = member_integer(*members, key);
    if (!count.ok()) return Error{count.error()};
    *field = *count;
  }
  row.last_state = optional_state(*members, "lastState");
  return row;
}

}  // namespace

bool csv_cell_is_formula(std::string_view field) {
  if (field.empty()) return false;
  char c = field.front();
  return c == '=' || c == '+' || c == '-' || c == '@' || c == '\t' || c == '\r';
}

void append_csv_field(std::string& out, std::string_view field, CsvCells cells) {
  bool neutralise = cells == CsvCells::neutralised && csv_cell_is_formula(field);
  // One pass; find_first_of would run a search of the set for every byte.
  bool plain = std::none_of(field.begin(), field.end(), [](char c) {
    return c == ',' || c == '"' || c == '\r' || c == '\n';
  });
  if (plain) {
    if (neutralise) out += '\'';
    out += field;
    return;
  }
  out += '"';
  if (neutralise) out += '\'';
  for (char c : field) {
    if (c == '"') out += '"';
    out += c;
  }
  out += '"';
}

void append_delta_json(std::string& out, const StoredDelta& row) {
  out += "{\"id\":";
  out += std::to_string(row.id);
  out += ",\"type\":";
  append_json_string(out, to_string(row.delta.type));
  out += ",\"sessionId\":";
  append_json_string(out, row.delta.session_id);
  if (row.delta.before) {
    out += ",\"before\":";
    append_state(out, *row.delta.before);
  }
  if (row.delta.after) {
    out += ",\"after\":";
    append_state(out, *row.delta.after);
  }
  out += ",\"timestamp\":";
  append_json_string(out, row.delta.timestamp);
  out += ",\"createdAt\":";
  append_json_string(out, row.created_at);
  out += ",\"origin\":";
  append_json_string(out, to_string(row.origin));
  out += row.gap ? ",\"gap\":true}" : ",\"gap\":false}";
}

void append_delta_csv(std::string& out, const StoredDelta& row, CsvCells cells) {
  append_csv_field(out, std::to_string(row.id), cells);
  out += ',';
  append_csv_field(out, to_string(row.delta.type), cells);
  out += ',';
  append_csv_field(out, row.delta.session_id, cells);
  out += ',';
  append_csv_field(out, row.delta.timestamp, cells);
  out += ',';
  append_csv_field(out, row.created_at, cells);
  out += ',';
  if (row.delta.before) append_csv_field(out, *row.delta.before, cells);
  out += ',';
  if (row.delta.after) append_csv_field(out, *row.delta.after, cells);
  out += ',';
  append_csv_field(out, to_string(row.origin), cells);
  out += row.gap ? ",1\r\n" : ",0\r\n";
}

std::string delta_page_json(const DeltaPage& page) {
  std::string out = "{\"deltas\":[";
  bool first = true;
  for (const auto& row : page.deltas) {
    if (!first) out += ',';
    first = false;
    append_delta_json(out, row);
  }
  out += "],\"next\":";
  append_json_optional(out, page.next);
  out += '}';
  return out;
}

void append_session_json(std::string& out, const SessionSummary& row) {
  out += "{\"sessionId\":";
  append_json_string(out, row.session_id);
  out += ",\"created\":" + std::to_string(row.created);
  out += ",\"updated\":" + std::to_string(row.updated);
  out += ",\"deleted\":" + std::to_string(row.deleted);
  out += ",\"firstSeen\":";
  append_json_string(out, row.first_seen);
  out += ",\"lastSeen\":";
  append_json_string(out, row.last_seen);
  out += ",\"lastType\":";
  append_json_string(out, row.last_type);
  out += row.live ? ",\"live\":true" : ",\"live\":false";
  out += ",\"gaps\":" + std::to_string(row.gaps);
  out += ",\"inferred\":" + std::to_string(row.inferred);
  out += ",\"lastState\":";
  if (row.last_state) append_state(out, *row.last_state); else out += "null";
  out += '}';
}

void append_session_csv(std::string& out, const SessionSummary& row, CsvCells cells) {
  append_csv_field(out, row.session_id, cells);
  for (auto count : {row.created, row.updated, row.deleted}) {
    out += ',';
    append_csv_field(out, std::to_string(count), cells);
  }
  out += ',';
  append_csv_field(out, row.first_seen, cells);
  out += ',';
  append_csv_field(out, row.last_seen, cells);
  out += ',';
  append_csv_field(out, row.last_type, cells);
  out += ',';
  if (row.last_state) append_csv_field(out, *row.last_state, cells);
  out += row.live ? ",1," : ",0,";
  out += std::to_string(row.gaps) + "," + std::to_string(row.inferred) + "\r\n";
}

std::string sessions_json(const std::vector<SessionSummary>& rows) {
  std::string out = "{\"sessions\":[";
  bool first = true;
  for (const auto& row : rows) {
    if (!first) out += ',';
    first = false;
    append_session_json(out, row);
  }
  out += "]}";
  return out;
}

std::optional<ExportFormat> parse_export_format(std::string_view text) {
  if (text == "json") return ExportFormat::json;
  if (text == "ndjson") return ExportFormat::ndjson;
  if (text == "csv") return ExportFormat::csv;
  return std::nullopt;
}

std::string_view content_type(ExportFormat format) {
  switch (format) {
    case ExportFormat::json: return "application/json";
    case ExportFormat::ndjson: return "application/x-ndjson";
    case ExportFormat::csv: return "text/csv; charset=utf-8; header=present";
  }
  return "application/octet-stream";
}

void ExportWriter::begin(std::string& out) {
  if (format_ == ExportFormat::json) out += '[';
  if (format_ == ExportFormat::csv) out += kDeltaCsvHeader;
}

void ExportWriter::row(std::string& out, const StoredDelta& delta) {
  switch (format_) {
    case ExportFormat::json:
      out += first_ ? "\n" : ",\n";
      append_delta_json(out, delta);
      break;
    case ExportFormat::ndjson:
      append_delta_json(out, delta);
      out += '\n';
      break;
    case ExportFormat::csv:
      append_delta_csv(out, delta, cells_);
      break;
  }
  first_ = false;
}

void ExportWriter::end(std::string& out) {
  if (format_ == ExportFormat::json) out += first_ ? "]\n" : "\n]\n";
}

Result<std::vector<RawMember>> raw_object_members(std::string_view text) {
  if (!is_valid_json(text)) return Error{"not valid JSON"};
  return members_of_valid(text);
}

Result<StoredDelta> parse_delta_json(std::string_view text) {
  if (!is_valid_json(text)) return Error{"not valid JSON"};
  return delta_from_valid(text);
}

Result<DeltaPage> parse_delta_page_json(std::string_view text) {
  auto members = raw_object_members(text);
  if (!members.ok()) return Error{members.error()};
  auto deltas = member_raw(*members, "deltas");
  if (!deltas) return Error{"missing \"deltas\""};
  auto items = raw_array_elements(*deltas);
  if (!items.ok()) return Error{"\"deltas\": " + items.error()};
  DeltaPage page;
  for (auto item : *items) {
    auto row = delta_from_valid(item);
    if (!row.ok()) return Error{"a delta: " + row.error()};
    page.deltas.push_back(std::move(row.value()));
  }
  auto next = member_raw(*members, "next");
  if (next && !is_null(*next)) {
    auto cursor = decode_json_string(*next);
    if (!cursor.ok()) return Error{"\"next\": " + cursor.error()};
    page.next = std::move(cursor.value());
  }
  return page;
}

Result<std::vector<SessionSummary>> parse_sessions_json(std::string_view text) {
  auto members = raw_object_members(text);
  if (!members.ok()) return Error{members.error()};
  auto sessions = member_raw(*members, "sessions");
  if (!sessions) return Error{"missing \"sessions\""};
  auto items = raw_array_elements(*sessions);
  if (!items.ok()) return Error{"\"sessions\": " + items.error()};
  std::vector<SessionSummary> rows;
  for (auto item : *items) {
    auto row = session_from_valid(item);
    if (!row.ok()) return Error{"a session: " + row.error()};
    rows.push_back(std::move(row.value()));
  }
  return rows;
}

}  // namespace deltatap
