// libFuzzer target for the frame parser: any bytes as a text frame (and as a binary
// frame) must come back as deltas and rejections that keep the parser's promises
// (tests/fuzz/parser_invariants.h); a broken promise aborts so the fuzzer reports it.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "ingest/parser.h"
#include "parser_invariants.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  deltatap::ParsedFrame frame =
      deltatap::parse_frame(text, deltatap::TimePoint{std::chrono::milliseconds(1'762'776'300'000)});
  std::string problem = deltatap::testing::check_parsed_frame(text, frame);
  if (!problem.empty()) {
    std::fprintf(stderr, "parser invariant broken: %s\n", problem.c_str());
    std::abort();
  }
  deltatap::Rejection binary = deltatap::binary_frame_rejection(text);
  if (binary.reason != "binary_frame" || binary.raw.size() > deltatap::kMaxRawBytes) std::abort();
  return 0;
}
