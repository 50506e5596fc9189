// exact_numbers: how the parser keeps JSON numbers digit for digit. Internal
// to ingest/ (parser.cc, delta_check.cc, state_compare.cc). Pure functions: any thread.
#pragma once

#include <rapidjson/reader.h>

#include <string>
#include <string_view>

namespace deltatap {

// The reader's flags for a frame: in situ, UTF-8 validated, iterative (deep
// nesting cannot exhaust the stack), numbers handed over as their text.
constexpr unsigned kFrameParseFlags =
    rapidjson::kParseInsituFlag | rapidjson::kParseValidateEncodingFlag |
    rapidjson::kParseIterativeFlag | rapidjson::kParseNumbersAsStringsFlag;

// RapidJSON 1.1.0 refuses numbers beyond double range (1e400, 400-digit integers) even
// when asked for them as strings. Such numbers are valid JSON and must survive, so after
// that refusal the work buffer gets every valid number token outside strings replaced
// by a same-length "0e000..." stand-in, which the reader accepts; RawNumber reads the
// real digits from the original at the same offset. Invalid tokens stay as they are, so
// the reader still refuses what it should.
void neutralise_numbers(std::string& buffer);

// Reads `text` as one JSON value with kFrameParseFlags, in situ on a padded
// copy, with a handler made by make(buffer) for each attempt; when the reader
// refuses a number beyond double range, tries once more with numbers
// neutralised (numbers are then read from `text` at the same offset, which a
// handler can do since its buffer and `text` line up). On success, done(handler)
// gets the handler of the attempt that read it. Returns whether one did.
template <typename Make, typename Done>
bool read_with_exact_numbers(std::string_view text, Make make, Done done) {
  constexpr std::size_t kPadding = 4;  // as in parse_frame
  std::string buffer;
  for (bool neutralised : {false, true}) {
    buffer.assign(text);
    buffer.append(kPadding, '\0');
    if (neutralised) neutralise_numbers(buffer);
    rapidjson::InsituStringStream stream(buffer.data());
    auto handler = make(static_cast<const char*>(buffer.data()));
    rapidjson::Reader reader;
    auto result = reader.Parse<kFrameParseFlags>(stream, handler);
    if (!result.IsError()) {
      done(handler);
      return true;
    }
    if (result.Code() != rapidjson::kParseErrorNumberTooBig) return false;
  }
  return false;
}

}  // namespace deltatap
