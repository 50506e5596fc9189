// rejection_text: how a rejection is worded and its raw text kept. Internal
// to ingest/ (parser.cc and delta_check.cc). Pure functions: any thread.
#pragma once

#include <string>
#include <string_view>

#include "ingest/parser.h"

namespace deltatap {

// `text` in quotes, cut to 64 bytes with "..." when longer.
std::string quote_short(std::string_view text);
// A rejection keeping at most kMaxRawBytes of `raw` (cut at a UTF-8 boundary,
// the cut said in the detail).
Rejection make_rejection(std::string reason, std::string detail, std::string_view raw);

}  // namespace deltatap
