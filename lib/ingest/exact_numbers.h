// exact_numbers: how the parser keeps JSON numbers digit for digit. Internal
// to ingest/ (parser.cc and delta_check.cc). Pure functions: any thread.
#pragma once

#include <rapidjson/reader.h>

#include <string>

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

}  // namespace deltatap
