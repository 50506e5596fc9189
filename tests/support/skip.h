// Skips that ctest can see. A case that cannot run here (not root, a tool
// missing, a kernel that refuses) is never a silent pass: Boost.Test reports it
// as skipped with the reason, and the test program then exits 77, which ctest
// shows as "Skipped" (SKIP_RETURN_CODE 77, cmake/tests.cmake). CI runs as root
// with every tool scripts/setup installs, so there a skip means a broken
// machine or a broken test: scripts/test fails on any (DELTATAP_NO_SKIPS=1,
// which .ci/run sets). A developer's run lists them and goes on.
//
// tests/support/test_main.cc is every test program's main(); it counts the
// skips of both kinds below and turns a run that passed with skips into 77 (a
// failure stays a failure).
//
//  - Up front, when the whole case needs something of the machine, as a
//    decorator:
//      BOOST_AUTO_TEST_CASE(name, *needs_root("mounting a tmpfs"))
//      BOOST_AUTO_TEST_CASE(name, *needs_tool("lintian"))
//      BOOST_AUTO_TEST_CASE(name, *needs([] { return probe(); }))
//    A precondition of the test's own (boost::unit_test::precondition) counts
//    the same way.
//  - Mid-case, when only trying tells, or when only part of a case needs it:
//    skip("why"), then return (or leave that part out).
//
// Not a skip: a case the build itself rules out (the AddressSanitizer build
// writes snapshots without a child, so the tests of that child cannot run
// there). A precondition returns excluded_by_build(id, "why") for it: Boost
// still reports it, the exit status does not count it, because the other
// builds run it and CI runs them all.
#pragma once

#include <boost/test/unit_test.hpp>

#include <functional>
#include <string>

namespace deltatap::testing {

// `probe` returns "" when the case can run here, else why not.
boost::unit_test::precondition needs(std::function<std::string()> probe);
// Root (euid 0); `for_what` says what needs it.
boost::unit_test::precondition needs_root(const std::string& for_what);
// An executable `program` on $PATH; `package` names the Debian package with it.
boost::unit_test::precondition needs_tool(const std::string& program,
                                          const std::string& package = "");

// Records that the running case (or the part of it that follows) is skipped.
void skip(const std::string& why);

// For a precondition: the case cannot run in this build; not counted as a skip.
boost::test_tools::assertion_result excluded_by_build(boost::unit_test::test_unit_id id,
                                                      const std::string& why);

}  // namespace deltatap::testing
