#include "base/delta.h"

namespace deltatap {

std::string_view to_string(DeltaType type) {
  switch (type) {
    case DeltaType::created: return "created";
    case DeltaType::updated: return "updated";
    case DeltaType::deleted: return "deleted";
  }
  return "unknown";
}

std::optional<DeltaType> parse_delta_type(std::string_view text) {
  if (text == "created") return DeltaType::created;
  if (text == "updated") return DeltaType::updated;
  if (text == "deleted") return DeltaType::deleted;
  return std::nullopt;
}

std::string_view to_string(DeltaOrigin origin) {
  switch (origin) {
    case DeltaOrigin::stream: return "stream";
    case DeltaOrigin::resync: return "resync";
    case DeltaOrigin::reconcile: return "reconcile";
  }
  return "unknown";
}

std::optional<DeltaOrigin> parse_delta_origin(std::string_view text) {
  if (text == "stream") return DeltaOrigin::stream;
  if (text == "resync") return DeltaOrigin::resync;
  if (text == "reconcile") return DeltaOrigin::reconcile;
  return std::nullopt;
}

}  // namespace deltatap
