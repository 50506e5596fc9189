// json_text: the one JSON text writer of the project. Everything deltatap
// writes as JSON (API answers, exports, log lines, the simulator's frames) puts
// its strings through append_json_string(), so there is one place that decides
// how text from the stream is escaped.
//
// Text is written as UTF-8; bytes that are not valid UTF-8 become U+FFFD, so the
// output is always valid JSON whatever the input. Pure functions: any thread.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "base/result.h"

namespace deltatap {

// Appends `text` as a quoted JSON string: quotes, backslashes and control
// characters escaped, valid UTF-8 kept as is, invalid bytes as \ufffd.
void append_json_string(std::string& out, std::string_view text);
// A string, or null when absent.
void append_json_optional(std::string& out, const std::optional<std::string>& text);

// `text` as a quoted JSON string (append_json_string into a new string): the
// way a value is quoted in an error message, which then stays on one line and
// valid UTF-8 whatever the value held.
std::string json_quoted(std::string_view text);

// The length of the valid UTF-8 sequence starting at text[i], or 0 when there
// is none (overlong forms, surrogates and code points past U+10FFFF are invalid).
std::size_t utf8_sequence_length(std::string_view text, std::size_t i);

// A JSON string token (with its quotes) decoded to UTF-8 text.
Result<std::string> decode_json_string(std::string_view token);

}  // namespace deltatap
