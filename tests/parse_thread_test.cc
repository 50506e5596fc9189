// The parse thread: frames parsed off the io thread come back in the order they
// were submitted, drain() waits for all of them, io_context::run() does not
// return while a result is still owed, and a long backlog comes back in groups.
#define BOOST_TEST_MODULE parse_thread
#include <boost/test/unit_test.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include <algorithm>
#include <string>
#include <thread>
#include <vector>

#include "ingest/parse_thread.h"
#include "base/timestamp.h"

using namespace deltatap;
namespace asio = boost::asio;

namespace {

// Frame i: a format A delta for session "s<i>", or every seventh one not JSON.
std::string frame(int i) {
  if (i % 7 == 3) return "not json " + std::to_string(i);
  return R"({"type":"created","sessionId":"s)" + std::to_string(i) +
         R"(","after":{"id":"x","n":)" + std::to_string(i) + "}}";
}

struct Delivered {
  std::vector<std::string> order;  // session id, or "rejected <raw>"
  std::thread::id thread;
};

// Submits `count` frames from inside io.run(), then drains; returns what came back
// by the time the drain callback ran.
Delivered run_frames(int count, std::size_t max_backlog_bytes, bool* drained) {
  asio::io_context io;
  Delivered delivered;
  ParseThread parser(
      io,
      [&](ParsedFrame&& parsed, TimePoint) {
        delivered.thread = std::this_thread::get_id();
        for (auto& d : parsed.deltas) delivered.order.push_back(d.session_id);
        for (auto& r : parsed.rejections) delivered.order.push_back("rejected " + r.raw);
      },
      max_backlog_bytes);
  asio::post(io, [&] {
    for (int i = 0; i < count; ++i) parser.submit(frame(i), now_millis());
    parser.drain([&] { *drained = true; });
  });
  // No work guard: run() must not return before the drain callback has run.
  io.run();
  return delivered;
}

std::vector<std::string> expected(int count) {
  std::vector<std::string> order;
  for (int i = 0; i < count; ++i) {
    order.push_back(i % 7 == 3 ? "rejected " + frame(i) : "s" + std::to_string(i));
  }
  return order;
}

}  // namespace

BOOST_AUTO_TEST_CASE(results_come_back_in_submission_order_on_the_io_thread) {
  bool drained = false;
  auto delivered = run_frames(20'000, 8 * 1024 * 1024, &drained);
  BOOST_TEST(drained);
  BOOST_TEST(delivered.order == expected(20'000), boost::test_tools::per_element());
  BOOST_TEST((delivered.thread == std::this_thread::get_id()));
}

BOOST_AUTO_TEST_CASE(a_full_backlog_makes_submit_wait_and_loses_nothing) {
  // A one-byte limit: every submit waits until the thread has parsed the one before.
  bool drained = false;
  auto delivered = run_frames(2'000, 1, &drained);
  BOOST_TEST(drained);
  BOOST_TEST(delivered.order == expected(2'000), boost::test_tools::per_element());
}

// Under load the results come back in bounded groups, one io_context handler
// each, so storing starts while later frames are still being parsed. With the
// whole backlog as one group, the io thread waited for all of it, then stored
// while the parse thread had nothing to do.
BOOST_AUTO_TEST_CASE(a_long_backlog_comes_back_in_groups_of_at_most_256_kb) {
  constexpr int kFrames = 64;
  const std::string summary(64 * 1024, 'a');  // about 64 KB a frame
  asio::io_context io;
  std::vector<std::string> order;
  ParseThread parser(io, [&](ParsedFrame&& parsed, TimePoint) {
    for (auto& d : parsed.deltas) order.push_back(d.session_id);
  });
  bool drained = false;
  // All frames are queued from one handler, faster than one can be parsed.
  asio::post(io, [&] {
    for (int i = 0; i < kFrames; ++i) {
      parser.submit(R"({"type":"created","sessionId":"s)" + std::to_string(i) +
                        R"(","after":{"id":"x","summary":")" + summary + "\"}}",
                    now_millis());
    }
    parser.drain([&] { drained = true; });
  });
  std::size_t largest_group = 0;
  while (!drained) {
    std::size_t before = order.size();
    BOOST_REQUIRE(io.run_one() == 1);  // the parse thread's work guards keep it running
    largest_group = std::max(largest_group, order.size() - before);
  }
  BOOST_TEST(order.size() == static_cast<std::size_t>(kFrames));
  for (int i = 0; i < kFrames && i < static_cast<int>(order.size()); ++i) {
    BOOST_TEST(order[i] == "s" + std::to_string(i));
  }
  // 256 KB of 64 KB frames: four, or five when the fourth ends just short of it.
  BOOST_TEST(largest_group <= 5u, "one handler delivered " << largest_group << " frames");
}
