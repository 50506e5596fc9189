// The journal's file format and lifecycle on real files: group writes, torn
// tails, rotation into segments, and replay above a snapshot's last id.
#define BOOST_TEST_MODULE journal
#include <boost/test/unit_test.hpp>

#include <boost/asio/io_context.hpp>

#include "storage/journal.h"
#include "test_support.h"

using namespace deltatap;
using namespace deltatap::testing;

namespace {

Delta delta(int i) {
  Delta d;
  d.session_id = "sess_" + std::to_string(i % 5);
  d.type = i % 3 == 0 ? DeltaType::created : (i % 3 == 1 ? DeltaType::updated : DeltaType::deleted);
  if (d.type != DeltaType::created) d.before = R"({"n":9007199254740993,"s":"été 🐛"})";
  if (d.type != DeltaType::deleted) d.after = "{\"i\":" + std::to_string(i) + "}";
  d.timestamp = "2025-11-10T12:00:00.000Z";
  return d;
}

// Runs the io_context until `writes` group results came back.
struct Harness {
  boost::asio::io_context io;
  std::vector<JournalWrite> results;
  std::unique_ptr<Journal> journal;

  explicit Harness(const std::string& path) {
    auto opened = Journal::open(io, path, [this](const JournalWrite& w) { results.push_back(w); });
    BOOST_REQUIRE_MESSAGE(opened.ok(), opened.error());
    journal = std::move(opened.value());
  }
  void wait_for(std::size_t writes) {
    BOOST_REQUIRE(wait_until([&] {
      io.poll();
      io.restart();
      return results.size() >= writes;
    }));
  }
};

}  // namespace

BOOST_AUTO_TEST_CASE(records_written_in_groups_read_back_exactly) {
  TempDir dir;
  auto path = (dir / "data/sessions.journal").string();
  {
    Harness h(path);
    for (int i = 1; i <= 100; ++i) h.journal->append(delta(i), i, "2025-11-10T12:00:01.000Z");
    h.journal->flush();
    for (int i = 101; i <= 150; ++i) h.journal->append(delta(i), i, "2025-11-10T12:00:02.000Z");
    h.journal->flush();
    h.wait_for(2);
    for (auto& r : h.results) BOOST_TEST(r.status.ok());
    BOOST_TEST(h.results.back().file_bytes == fs::file_size(path));
  }
  auto replay = read_journal(path, 0);
  BOOST_REQUIRE(replay.ok());
  BOOST_REQUIRE_EQUAL(replay->deltas.size(), 150u);
  BOOST_TEST(replay->torn == 0u);
  for (int i = 1; i <= 150; ++i) {
    const auto& row = replay->deltas[i - 1];
    auto expected = delta(i);
    BOOST_TEST(row.id == i);
    BOOST_TEST(row.delta.session_id == expected.session_id);
    BOOST_TEST((row.delta.type == expected.type));
    BOOST_TEST((row.delta.before == expected.before));
    BOOST_TEST((row.delta.after == expected.after));
    BOOST_TEST(row.created_at == (i <= 100 ? "2025-11-10T12:00:01.000Z" : "2025-11-10T12:00:02.000Z"));
  }
  // Only what a snapshot up to id 120 does not hold.
  auto above = read_journal(path, 120);
  BOOST_REQUIRE(above.ok());
  BOOST_TEST(above->deltas.size() == 30u);
  BOOST_TEST(above->records == 150u);
}

BOOST_AUTO_TEST_CASE(a_torn_last_record_is_ignored_and_the_rest_kept) {
  TempDir dir;
  auto path = (dir / "sessions.journal").string();
  {
    Harness h(path);
    for (int i = 1; i <= 10; ++i) h.journal->append(delta(i), i, "2025-11-10T12:00:01.000Z");
    h.journal->flush();
    h.wait_for(1);
  }
  auto whole = read_file(path);
  for (std::size_t cut : {whole.size() - 1, whole.size() - 20, whole.size() - 60}) {
    write_file(path, whole.substr(0, cut));
    auto replay = read_journal(path, 0);
    BOOST_REQUIRE(replay.ok());
    BOOST_TEST(replay->deltas.size() == 9u);
    BOOST_TEST(replay->torn == 1u);
    BOOST_TEST(!replay->warnings.empty());
  }
  // A flipped byte inside a record is caught by the CRC.
  auto flipped = whole;
  flipped[flipped.size() - 3] ^= 0x40;
  write_file(path, flipped);
  auto replay = read_journal(path, 0);
  BOOST_REQUIRE(replay.ok());
  BOOST_TEST(replay->deltas.size() == 9u);
}

BOOST_AUTO_TEST_CASE(rotation_keeps_segments_until_dropped_and_reopen_never_appends_to_a_torn_file) {
  TempDir dir;
  auto path = (dir / "sessions.journal").string();
  {
    Harness h(path);
    for (int i = 1; i <= 5; ++i) h.journal->append(delta(i), i, "2025-11-10T12:00:01.000Z");
    auto first = h.journal->rotate();
    for (int i = 6; i <= 8; ++i) h.journal->append(delta(i), i, "2025-11-10T12:00:01.000Z");
    h.journal->flush();
    h.wait_for(2);
    BOOST_TEST(fs::exists(path + "." + std::to_string(first)));
    BOOST_TEST(read_journal(path, 0)->deltas.size() == 8u);
    h.journal->drop_covered(5);  // a snapshot holding ids 1-5
    h.journal->flush();
    h.journal.reset();  // joins the worker
    BOOST_TEST(!fs::exists(path + "." + std::to_string(first)));
    BOOST_TEST(read_journal(path, 0)->deltas.size() == 3u);
  }
  // Tear the active file, then reopen: the torn file becomes a segment and new
  // records go to a fresh file, so they stay readable.
  auto whole = read_file(path);
  write_file(path, whole.substr(0, whole.size() - 5));
  {
    Harness h(path);
    h.journal->append(delta(9), 9, "2025-11-10T12:00:01.000Z");
    h.journal->flush();
    h.wait_for(1);
  }
  auto replay = read_journal(path, 0);
  BOOST_REQUIRE(replay.ok());
  std::vector<std::int64_t> ids;
  for (auto& row : replay->deltas) ids.push_back(row.id);
  BOOST_TEST(ids == (std::vector<std::int64_t>{6, 7, 9}), boost::test_tools::per_element());
  BOOST_TEST(replay->torn == 1u);
}

// Ids are given on the stream lane before the store lane stores them, so the
// segment rotated for a snapshot can hold ids the snapshot does not: such a
// segment stays until a snapshot holds all of them.
BOOST_AUTO_TEST_CASE(a_segment_is_dropped_only_once_a_snapshot_holds_all_its_ids) {
  TempDir dir;
  auto path = (dir / "sessions.journal").string();
  Harness h(path);
  for (int i = 1; i <= 6; ++i) h.journal->append(delta(i), i, "2025-11-10T12:00:01.000Z");
  auto segment = h.journal->rotate();  // a snapshot starts while the store holds ids 1-4
  h.journal->flush();
  h.wait_for(1);
  h.journal->drop_covered(4);
  h.journal->append(delta(7), 7, "2025-11-10T12:00:01.000Z");
  h.journal->flush();
  h.wait_for(2);
  BOOST_TEST(fs::exists(path + "." + std::to_string(segment)));
  BOOST_TEST(read_journal(path, 4)->deltas.size() == 3u);  // 5, 6 and 7 survive a crash now
  h.journal->rotate();
  h.journal->drop_covered(7);  // the next snapshot holds them all
  h.journal.reset();
  BOOST_TEST(!fs::exists(path + "." + std::to_string(segment)));
  BOOST_TEST(read_journal(path, 0)->deltas.empty());
}

// A list of live sessions (reconciliation) is journaled between the deltas it
// arrived between, read back whole and in place, skipped once a snapshot holds
// its last id, and counts its whole id block for dropping its segment.
BOOST_AUTO_TEST_CASE(a_list_of_live_sessions_is_journaled_in_place) {
  TempDir dir;
  auto path = (dir / "data/sessions.journal").string();
  LiveSessionList list;
  list.first_id = 3;
  list.id_count = 4;  // ids 3..6
  list.at = "2025-11-10T12:00:05.000Z";
  list.sessions = {{"sess_a", R"({"n":9007199254740993})"}, {"sess_é", "{}"}};
  list.keep = {"sess_k"};
  list.complete = false;
  {
    Harness h(path);
    h.journal->append(delta(1), 1, "2025-11-10T12:00:01.000Z");
    h.journal->append(delta(2), 2, "2025-11-10T12:00:01.000Z");
    h.journal->append(list);
    h.journal->append(delta(7), 7, "2025-11-10T12:00:06.000Z");
    h.journal->flush();
    h.wait_for(1);
  }
  auto replay = read_journal(path, 0);
  BOOST_REQUIRE(replay.ok());
  BOOST_TEST(replay->records == 4u);
  BOOST_REQUIRE_EQUAL(replay->deltas.size(), 3u);
  BOOST_REQUIRE_EQUAL(replay->reconciles.size(), 1u);
  const auto& read = replay->reconciles[0];
  BOOST_TEST(read.after_deltas == 2u);  // between delta 2 and delta 7
  BOOST_TEST(read.list.first_id == 3);
  BOOST_TEST(read.list.id_count == 4);
  BOOST_TEST(read.list.at == list.at);
  BOOST_TEST(!read.list.complete);
  BOOST_REQUIRE_EQUAL(read.list.sessions.size(), 2u);
  BOOST_TEST(read.list.sessions[0].state == R"({"n":9007199254740993})");
  BOOST_TEST(read.list.sessions[1].session_id == "sess_é");
  BOOST_TEST((read.list.keep == std::vector<std::string>{"sess_k"}));
  // A snapshot holding ids up to 5 has not covered the list's block (3..6).
  BOOST_TEST(read_journal(path, 5)->reconciles.size() == 1u);
  BOOST_TEST(read_journal(path, 6)->reconciles.empty());
  BOOST_TEST(read_journal(path, 6)->deltas.size() == 1u);
}
