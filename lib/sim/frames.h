// frames: the JSON text the simulator sends and records (spec/wire-formats.md):
// a session's state, the timestamps, format A frames (one delta each), format B
// batches ("session_update") and the --record lines. One seed and start time
// must give the same bytes run after run (tests/simulator_test.cc compares
// them), so everything that spells them out is in one place.
//
// Strings go through append_json_string() (base/json_text.h); state texts
// (`before`, `after`) are JSON already and are copied in byte for byte.
//
// The render functions are pure: any thread. A Frame is not synchronised.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "base/delta.h"
#include "sim/session_model.h"

namespace deltatap::sim {

// ISO 8601 in the shapes the backend has been seen to use: fraction_digits 0,
// 3 or 6 (the last three made up, below the clock's resolution), and "Z" or a
// numeric offset that names the same instant. `sub_millis` (0-999) is those
// made-up digits, read only with 6; any other fraction_digits writes none.
// The local date must fall in years 0000-9999.
std::string render_time(std::int64_t utc_ms, int offset_minutes, int fraction_digits,
                        int sub_millis);

// The session's state as one compact JSON object; what Session::json holds.
std::string render_session(const Session& s);

// One delta on its way out. `timestamp` is optional on the wire: format A
// always has one, a batch entry only sometimes.
struct OutDelta {
  DeltaType type = DeltaType::created;
  std::string session_id;
  std::optional<std::string> before;
  std::optional<std::string> after;
  std::optional<std::string> timestamp;
};

// One text frame, shared by every connection it is broadcast to. It is
// settled (counted, recorded, or given back to the budget) once every one of
// them has finished with it.
//
// Shared ownership (std::shared_ptr): the broadcast server fills it and sets
// pending_writes to the number of connections it hands it to; each of those
// keeps a reference until its write is done or dropped, and reports back, so
// the server settles it when the count reaches 0. All on the io thread.
struct Frame {
  std::string text;
  std::vector<OutDelta> deltas;
  int pending_writes = 0;
  bool delivered = false;
  // A first poll's report of live sessions, not a change upstream: when it
  // reaches nobody, nothing was missed (it is not in unseen_deltas).
  bool reannounce = false;
};

// One format A text frame: {"type","sessionId","before"?,"after"?,"timestamp"?}.
std::string render_format_a(const OutDelta& d);

// One format B text frame: {"type":"session_update","delta":[{"id","change",
// "previous"?,"current"?,"timestamp"?},...]}, in the order given.
std::string render_format_b(const std::vector<OutDelta>& deltas);

// One --record line, newline included: every field present, null when absent.
std::string render_record(const OutDelta& d);

// The body of GET /api/sessions: every live session's state text (Session::
// json, byte for byte) in slot order, as {"sessions":[...]} or, for `bare_array`,
// as [...].
std::string render_live_sessions(const World& world, bool bare_array);

}  // namespace deltatap::sim
