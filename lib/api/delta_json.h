// delta_json: the store's answers as text, shared by the HTTP API and the CLI so
// both say exactly the same thing, and read back by the CLI from the API.
//
// A delta is the domain document's SessionDelta
//   {"id":N,"type":...,"sessionId":...,"before":{...},"after":{...},
//    "timestamp":...,"createdAt":...,"origin":"stream","gap":false}
// with "before" omitted for created and "after" for deleted, as the document's
// JSON.stringify of an undefined field would. "origin" and "gap" (design.md,
// "Fidelity") come last, so every earlier field keeps its place: origin is
// "stream" for what the backend sent, "resync" or "reconcile" for what deltatap
// inferred; gap is true when changes of the session before this delta were not
// observed. Read back, a delta without them (an older daemon) is a stream delta
// without a gap; present, they must be one of those values. The states are copied from the
// stored JSON text, never re-serialised, so numbers keep every digit and strings
// their unicode. A stored state that is not valid JSON (possible only in a file
// some other program wrote) is emitted as a JSON string, so the output is always
// valid JSON.
//
// CSV follows RFC 4180: a header line, CRLF line ends, a field quoted when it
// holds a comma, quote, CR or LF, quotes doubled. Absent states are empty fields.
// The columns are the JSON fields in the same order, origin and gap last (gap as
// 0 or 1, as the table stores it), so the columns of older exports keep their
// positions.
// A cell that a spreadsheet would run as a formula (it starts with = + - @, tab
// or CR: a session id such as =cmd|' /C calc'!A0) gets a leading ' by default
// (OWASP's rule against CSV injection), so the spreadsheet shows it as text;
// CsvCells::raw writes every cell as stored, for programs that read the CSV.
// The rule applies to every cell; in practice only session ids can start so
// (states are JSON objects, times and ids start with digits).
// NDJSON is one delta object per line, LF-terminated.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/delta.h"
#include "base/json_text.h"
#include "base/result.h"
#include "storage/store.h"

namespace deltatap {

enum class CsvCells {
  neutralised,  // a cell starting with = + - @ tab or CR gets a leading '
  raw,          // every cell as stored
};

// True when a spreadsheet would take `field` for a formula: it starts with
// = + - @, a tab or a carriage return.
bool csv_cell_is_formula(std::string_view field);

// One RFC 4180 field, neutralised as `cells` says.
void append_csv_field(std::string& out, std::string_view field,
                      CsvCells cells = CsvCells::neutralised);

void append_delta_json(std::string& out, const StoredDelta& row);
void append_delta_csv(std::string& out, const StoredDelta& row,
                      CsvCells cells = CsvCells::neutralised);
inline constexpr std::string_view kDeltaCsvHeader =
    "id,type,sessionId,timestamp,createdAt,before,after,origin,gap\r\n";

// {"deltas":[...],"next":"CURSOR"|null}
std::string delta_page_json(const DeltaPage& page);

void append_session_json(std::string& out, const SessionSummary& row);
void append_session_csv(std::string& out, const SessionSummary& row,
                        CsvCells cells = CsvCells::neutralised);
inline constexpr std::string_view kSessionCsvHeader =
    "sessionId,created,updated,deleted,firstSeen,lastSeen,lastType,lastState,live,gaps,inferred\r\n";
// {"sessions":[...]}
std::string sessions_json(const std::vector<SessionSummary>& rows);

enum class ExportFormat { json, ndjson, csv };
std::optional<ExportFormat> parse_export_format(std::string_view text);
std::string_view content_type(ExportFormat format);

// The pieces of a streamed export: prologue, one piece per delta, epilogue.
// JSON export is a bare array of deltas. `cells` applies to CSV only.
class ExportWriter {
 public:
  explicit ExportWriter(ExportFormat format, CsvCells cells = CsvCells::neutralised)
      : format_(format), cells_(cells) {}
  void begin(std::string& out);
  void row(std::string& out, const StoredDelta& delta);
  void end(std::string& out);

 private:
  ExportFormat format_;
  CsvCells cells_;
  bool first_ = true;
};

// Reading the API's JSON back (the CLI on a live daemon). Each validates the
// whole text first; states come back as their exact JSON text.
Result<StoredDelta> parse_delta_json(std::string_view text);
Result<DeltaPage> parse_delta_page_json(std::string_view text);
Result<std::vector<SessionSummary>> parse_sessions_json(std::string_view text);

// The members of a JSON object in order, each value as its raw text; for
// readers that need exact numbers. An error when `text` is not an object.
struct RawMember {
  std::string key;
  std::string_view value;
};
Result<std::vector<RawMember>> raw_object_members(std::string_view text);

}  // namespace deltatap
