// Replays every file of the fuzz seed corpus (tests/fuzz/corpus) through parse_frame as
// an ordinary test, so the sanitizer build runs the hostile inputs too, and checks the
// corpus still covers both formats and the rejection reasons a text frame can get.
#define BOOST_TEST_MODULE parser_corpus
#include <boost/test/unit_test.hpp>

#include <set>
#include <string>

#include "fuzz/parser_invariants.h"
#include "ingest/parser.h"
#include "test_support.h"

using namespace deltatap;
namespace dt = deltatap::testing;

BOOST_AUTO_TEST_CASE(every_corpus_file_keeps_the_parser_invariants) {
  const dt::fs::path corpus = dt::source_dir() / "tests" / "fuzz" / "corpus";
  BOOST_TEST_REQUIRE(dt::fs::is_directory(corpus));
  std::set<std::string> reasons;
  std::size_t files = 0, deltas = 0;
  for (const auto& entry : dt::fs::recursive_directory_iterator(corpus)) {
    if (!entry.is_regular_file()) continue;
    ++files;
    const std::string text = dt::read_file(entry.path());
    BOOST_TEST_CONTEXT(entry.path().filename().string()) {
      ParsedFrame frame = parse_frame(text, now_millis());
      std::string problem = dt::check_parsed_frame(text, frame);
      BOOST_TEST(problem.empty(), problem);
      deltas += frame.deltas.size();
      for (const auto& rejection : frame.rejections) reasons.insert(rejection.reason);
    }
  }
  BOOST_TEST_MESSAGE(files << " corpus files, " << deltas << " deltas, " << reasons.size()
                           << " distinct rejection reasons");
  BOOST_TEST(files >= 30u);
  BOOST_TEST(deltas >= 10u);
  // Every reason a text frame can earn (binary_frame and too_large come from the stream).
  for (std::string_view reason : kRejectionReasons) {
    if (reason == "binary_frame" || reason == "too_large") continue;
    BOOST_TEST(reasons.count(std::string(reason)) == 1u, "no corpus file is rejected as " << reason);
  }
}
