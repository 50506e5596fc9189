// json_tokens: what the ingest room's SAX readers (the parser, the reader of
// the backend's list of live sessions) call the JSON values they meet, and how
// a message names them. Internal to ingest/. Pure: any thread.
#pragma once

#include <cstdint>
#include <string_view>

namespace deltatap::json_tokens {

enum class Kind : std::uint8_t { absent, null, boolean, number, string, object, array };

// For messages: "a string", "an object", ...
inline const char* describe(Kind kind) {
  switch (kind) {
    case Kind::absent: return "absent";
    case Kind::null: return "null";
    case Kind::boolean: return "a boolean";
    case Kind::number: return "a number";
    case Kind::string: return "a string";
    case Kind::object: return "an object";
    case Kind::array: return "an array";
  }
  return "unknown";
}

// null counts as absent everywhere (spec/wire-formats.md).
inline bool present(Kind kind) { return kind != Kind::absent && kind != Kind::null; }

// A scalar as read: strings decoded (in the work buffer), other tokens as written.
struct Scalar {
  Kind kind = Kind::absent;
  std::string_view text;
};

}  // namespace deltatap::json_tokens
