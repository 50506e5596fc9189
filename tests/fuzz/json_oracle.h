// A second opinion on a frame, from a JSON parser that is not lib/ingest's:
// Boost.JSON's event parser (lib/ingest reads frames with RapidJSON). The
// parser's invariant (parser_invariants.h) uses it to tell the one frame that
// may yield neither a delta nor a rejection, a valid batch with an empty
// "delta" array, from a frame the parser lost.
//
// Built into the fuzz target and the corpus test only (json_oracle.cc holds
// Boost.JSON itself, header-only), never into the daemon.
#pragma once

#include <cstddef>
#include <string_view>

namespace deltatap::testing {

// True when `text` is exactly one JSON value (RFC 8259: UTF-8, no byte order
// mark, nothing but white space after it, no object with the same key twice,
// at most `max_depth` nested objects and arrays, the outermost counted) that
// is an object whose "type" is the string "session_update" and whose "delta"
// is an empty array. Keys and strings are compared unescaped.
bool is_empty_batch(std::string_view text, std::size_t max_depth);

}  // namespace deltatap::testing
