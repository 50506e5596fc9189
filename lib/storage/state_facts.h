// StateFacts: the few top-level fields of a session state that the analytics
// need (design.md, "Analytics"): `repo`, `planStatus` and `approval` (a string,
// or an object whose `state` is one). Everything else in the state is opaque.
//
// StateFactsReader::read() reads compact JSON text as the store keeps it. A
// field that is absent, or not of the expected kind (a number where a string
// was expected), is left empty; text that is not a JSON object gives
// all-empty facts. It never fails and never throws. The reader keeps one
// buffer for the text (RapidJSON reads it in place, so reading allocates
// nothing once the buffer has grown) and the facts point into it: one reader
// per thread, its facts used before its next read.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace deltatap {

// Views into the reader's buffer: valid until its next read().
struct StateFacts {
  std::optional<std::string_view> repo;
  std::optional<std::string_view> plan_status;
  std::optional<std::string_view> approval;  // the string, or the object's "state"
};

class StateFactsReader {
 public:
  StateFacts read(std::string_view state);

 private:
  std::string buffer_;
};

// Whether a planStatus ends a plan's run (succeeded or failed).
bool is_terminal_plan_status(std::string_view status);
// Whether an approval state is a decision (approved or rejected).
bool is_approval_decision(std::string_view approval);

}  // namespace deltatap
