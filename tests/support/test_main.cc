// main() of every test program (each defines BOOST_TEST_MODULE, which gives
// it init_unit_test(), and is compiled with BOOST_TEST_NO_MAIN): Boost.Test's
// own run, then exit 77 when it passed with skips (tests/support/skip.h says
// why and how cases skip).
#include "skip.h"

#include <sys/stat.h>
#include <unistd.h>

#include <boost/cstdlib.hpp>
#include <boost/test/tree/observer.hpp>

#include <cstdlib>
#include <iostream>
#include <set>
#include <string_view>
#include <vector>

// Defined by <boost/test/unit_test.hpp> in the test's own file (BOOST_TEST_MODULE).
bool init_unit_test();

namespace deltatap::testing {

namespace {

namespace utf = boost::unit_test;

// ctest's exit code for "skipped" (SKIP_RETURN_CODE in cmake/tests.cmake).
constexpr int kSkipped = 77;

struct Skip {
  std::string unit;
  std::string why;
};

std::vector<Skip>& skips() {
  static std::vector<Skip> list;
  return list;
}

std::set<utf::test_unit_id>& build_exclusions() {
  static std::set<utf::test_unit_id> ids;
  return ids;
}

// Told of every unit Boost.Test does not run, and why.
class SkipCounter : public utf::test_observer {
 public:
  using utf::test_observer::test_unit_skipped;
  void test_unit_skipped(const utf::test_unit& unit, utf::const_string reason) override {
    // "disabled" is a unit left out on purpose (--run_test, a decorator), not
    // one the machine could not run.
    if (reason == utf::const_string("disabled") || build_exclusions().count(unit.p_id)) return;
    skips().push_back({unit.full_name(), std::string(reason.begin(), reason.end())});
  }
};

bool executable_on_path(const std::string& program) {
  const char* path = std::getenv("PATH");
  std::string_view rest = path ? path : "/usr/bin:/bin";
  while (true) {
    auto colon = rest.find(':');
    std::string dir(rest.substr(0, colon));
    std::string candidate = (dir.empty() ? std::string(".") : dir) + "/" + program;
    struct stat st {};
    if (::stat(candidate.c_str(), &st) == 0 && S_ISREG(st.st_mode) &&
        ::access(candidate.c_str(), X_OK) == 0) {
      return true;
    }
    if (colon == std::string_view::npos) return false;
    rest.remove_prefix(colon + 1);
  }
}

}  // namespace

utf::precondition needs(std::function<std::string()> probe) {
  return utf::precondition([probe = std::move(probe)](utf::test_unit_id) {
    std::string missing = probe();
    boost::test_tools::assertion_result result(missing.empty());
    result.message() << missing;
    return result;
  });
}

utf::precondition needs_root(const std::string& for_what) {
  return needs([for_what] {
    return ::geteuid() == 0 ? std::string() : "needs root for " + for_what;
  });
}

utf::precondition needs_tool(const std::string& program, const std::string& package) {
  return needs([program, package] {
    if (executable_on_path(program)) return std::string();
    return program + " is not installed" +
           (package.empty() ? std::string() : " (Debian package " + package + ")") +
           "; scripts/setup installs what the tests use";
  });
}

void skip(const std::string& why) {
  skips().push_back({utf::framework::current_test_case().full_name(), why});
  BOOST_TEST_MESSAGE("skipped: " << why);
}

boost::test_tools::assertion_result excluded_by_build(utf::test_unit_id id, const std::string& why) {
  build_exclusions().insert(id);
  boost::test_tools::assertion_result result(false);
  result.message() << why;
  return result;
}

}  // namespace deltatap::testing

int main(int argc, char* argv[]) {
  namespace dt = deltatap::testing;
  dt::SkipCounter counter;
  boost::unit_test::framework::register_observer(counter);
  int code = boost::unit_test::unit_test_main(&init_unit_test, argc, argv);
  // One line per skip, whatever the log level: scripts/test collects these
  // lines from ctest's log to say what was skipped and why.
  for (const auto& skip : dt::skips()) {
    std::cerr << "SKIPPED " << skip.unit << ": " << skip.why << "\n";
  }
  if (code == boost::exit_success && !dt::skips().empty()) {
    std::cerr << dt::skips().size() << " skipped: exit " << dt::kSkipped
              << ", which ctest reports as Skipped\n";
    return dt::kSkipped;
  }
  return code;
}
