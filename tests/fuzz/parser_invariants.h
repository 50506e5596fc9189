// What must hold for every frame, whatever it holds: shared by the fuzz target and the
// corpus replay test. Returns an empty string when all holds, else what broke.
#pragma once

#include <algorithm>
#include <string>
#include <string_view>

#include "ingest/parser.h"
#include "base/timestamp.h"
#include "json_oracle.h"

namespace deltatap::testing {

// A state's text must be a fixed point: fed back as a state it comes out byte for byte.
inline std::string check_state_round_trip(const std::string& state) {
  std::string frame = R"({"type":"created","sessionId":"x","after":)" + state + "}";
  ParsedFrame again = parse_frame(frame, TimePoint{});
  if (again.deltas.size() != 1 || !again.deltas[0].after) {
    return "state does not parse back: " + state.substr(0, 200) +
           (again.rejections.empty() ? "" : " (" + again.rejections[0].detail + ")");
  }
  if (*again.deltas[0].after != state) return "state is not a fixed point: " + state.substr(0, 200);
  return {};
}

inline std::string check_parsed_frame(std::string_view text, const ParsedFrame& frame) {
  for (const Delta& delta : frame.deltas) {
    if (delta.session_id.empty()) return "delta with an empty session id";
    if (delta.session_id.size() > kMaxSessionIdBytes) return "delta with an oversized session id";
    auto normalised = normalise_timestamp(delta.timestamp);
    if (!normalised.ok() || *normalised != delta.timestamp) {
      return "timestamp not normalised: " + delta.timestamp;
    }
    if (delta.type == DeltaType::created && !delta.after) return "created without after";
    if (delta.type == DeltaType::deleted && !delta.before) return "deleted without before";
    if (delta.type == DeltaType::updated && (!delta.before || !delta.after)) {
      return "updated without both states";
    }
    for (const auto* state : {&delta.before, &delta.after}) {
      if (!*state) continue;
      if ((*state)->empty() || (*state)->front() != '{') return "state is not an object";
      if (auto problem = check_state_round_trip(**state); !problem.empty()) return problem;
    }
  }
  if (frame.rejections.size() > kMaxItemisedRejections + kRejectionReasons.size()) {
    return "more rejections than itemised plus one summary per reason";
  }
  for (const Rejection& rejection : frame.rejections) {
    if (std::find(kRejectionReasons.begin(), kRejectionReasons.end(), rejection.reason) ==
        kRejectionReasons.end()) {
      return "unlisted rejection reason " + rejection.reason;
    }
    if (rejection.detail.empty()) return "rejection without detail";
    if (rejection.raw.size() > kMaxRawBytes) return "rejection raw over the limit";
    if (rejection.count == 0) return "rejection standing for nothing";
  }
  // Nothing at all comes only of a valid batch with an empty "delta" array
  // (parser.h), as another JSON parser reads the frame; anything else lost
  // without a word is a frame the tap dropped.
  if (frame.deltas.empty() && frame.rejections.empty() &&
      !is_empty_batch(text, static_cast<std::size_t>(kMaxDepth))) {
    return "frame vanished without a delta or a rejection";
  }
  return {};
}

}  // namespace deltatap::testing
