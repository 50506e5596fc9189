// Delta: one change to one Jules session, as the store keeps it.
// The wire formats (spec/wire-formats.md) map onto it; the parser builds it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace deltatap {

enum class DeltaType { created, updated, deleted };

std::string_view to_string(DeltaType type);
std::optional<DeltaType> parse_delta_type(std::string_view text);

struct Delta {
  std::string session_id;
  DeltaType type = DeltaType::created;
  // Compact JSON text of the state objects exactly as received (numbers keep
  // their digits, strings their unicode); empty optional when absent.
  std::optional<std::string> before;
  std::optional<std::string> after;
  // Normalised UTC "YYYY-MM-DDTHH:MM:SS.sssZ" (see timestamp.h).
  std::string timestamp;
};

// Where a stored delta comes from (design.md, "Fidelity"): what the backend
// sent, or what deltatap inferred from it.
enum class DeltaOrigin {
  stream,     // as the backend broadcast it
  resync,     // a re-announced `created` whose state had changed, stored as an `updated`
  reconcile,  // brought in line with the backend's list of live sessions
};

std::string_view to_string(DeltaOrigin origin);
std::optional<DeltaOrigin> parse_delta_origin(std::string_view text);

// A delta as read back from the store.
struct StoredDelta {
  std::int64_t id = 0;
  Delta delta;
  std::string created_at;  // same normalised form as timestamp
  DeltaOrigin origin = DeltaOrigin::stream;
  // Changes of this session before this delta were not observed: its before
  // state is not the session's last stored state, or the session was unknown.
  bool gap = false;
};

// One session in the backend's own list of live sessions (GET /api/sessions),
// which reconciliation brings the ledger to (design.md, "Fidelity").
struct LiveSession {
  std::string session_id;
  std::string state;  // compact JSON text, in the parser's form (exact digits)
};

// The backend's list of live sessions as it arrived, with the ids set aside
// for the deltas it may lead to (the store lane decides which; see
// ingest/ledger_rules.h). The journal keeps it, so a replay decides the same.
struct LiveSessionList {
  std::int64_t first_id = 0;  // ids first_id .. first_id + id_count - 1 are its
  std::int64_t id_count = 0;
  std::string at;             // normalised arrival time: the inferred deltas' timestamp
  std::vector<LiveSession> sessions;
  // Sessions the stream changed while the list was on its way: the stream is
  // the fresher witness for them, so the list neither changes nor ends them.
  std::vector<std::string> keep;
  // False when elements of the answer were refused: a session missing from an
  // incomplete list may be one of those, so none is ended for missing.
  bool complete = true;
  std::int64_t last_id() const { return first_id + id_count - 1; }
};

}  // namespace deltatap
