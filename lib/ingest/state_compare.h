// same_state: whether two JSON texts are the same JSON value, as the ledger's
// rules compare a delta's before state with a session's last stored state
// (design.md, "Fidelity"): the order of an object's members and whitespace do
// not matter; strings are compared by the characters they stand for (escapes
// resolved); numbers by their exact digits (1.5 and 1.50 differ, as the store
// keeps both as written). A text that is not one JSON value is equal to no text
// but an identical one.
//
// The rules call it only when the digests of the two texts differ (the same
// text, the common case, never gets here), so it favours being plainly right
// over being fast. Pure function: any thread may call it.
#pragma once

#include <string_view>

namespace deltatap {

bool same_state(std::string_view a, std::string_view b);

}  // namespace deltatap
