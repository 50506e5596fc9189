// Hardening, the journal and retention (issue 13, items 5, 10 and 15), tried
// on the real deltatapd as an operator or an attacker with write access to the
// data directory would: stray and backup files beside the journal, a journal
// written by hand, and a stream_events table a flapping backend filled.
#define BOOST_TEST_MODULE hardening_journal
#include <boost/test/unit_test.hpp>

#include <signal.h>
#include <zlib.h>

#include <boost/asio/io_context.hpp>

#include <cstring>
#include <limits>

#include "base/delta.h"
#include "base/timestamp.h"
#include "storage/journal.h"
#include "storage/store.h"
#include "test_support.h"

using namespace deltatap;
using namespace deltatap::testing;

namespace {

// One journal record as lib/storage/journal.cc writes it: u32 payload length,
// u32 CRC-32 of the payload, then the payload: i64 id, u8 type, u8 flags
// (1: before, 2: after), then u32-length-prefixed session_id, timestamp,
// created_at, [before], [after]. Written here byte by byte, so that the test
// does not depend on the code it checks for what a record is.
struct Record {
  std::int64_t id = 0;
  DeltaType type = DeltaType::created;
  std::string session_id;
  std::string timestamp = "2025-11-10T12:00:00.000Z";
  std::string created_at;
  std::optional<std::string> before;
  std::optional<std::string> after;
};

template <typename T>
void put(std::string& out, T value) {
  char bytes[sizeof(T)];
  std::memcpy(bytes, &value, sizeof(T));
  out.append(bytes, sizeof(T));
}

void put_string(std::string& out, const std::string& text) {
  put<std::uint32_t>(out, static_cast<std::uint32_t>(text.size()));
  out += text;
}

std::string encode(const Record& r) {
  std::string payload;
  put<std::int64_t>(payload, r.id);
  put<std::uint8_t>(payload, static_cast<std::uint8_t>(r.type));
  put<std::uint8_t>(payload, static_cast<std::uint8_t>((r.before ? 1 : 0) | (r.after ? 2 : 0)));
  put_string(payload, r.session_id);
  put_string(payload, r.timestamp);
  put_string(payload, r.created_at);
  if (r.before) put_string(payload, *r.before);
  if (r.after) put_string(payload, *r.after);
  std::string out;
  put<std::uint32_t>(out, static_cast<std::uint32_t>(payload.size()));
  put<std::uint32_t>(out, static_cast<std::uint32_t>(::crc32_z(
                              0, reinterpret_cast<const unsigned char*>(payload.data()), payload.size())));
  return out + payload;
}

// Records in the header-less format of the previous version, which is also
// how anyone writes a journal file by hand.
std::string journal_of(const std::vector<Record>& records) {
  std::string out;
  for (const auto& r : records) out += encode(r);
  return out;
}

Record created(std::int64_t id, const std::string& session) {
  Record r;
  r.id = id;
  r.session_id = session;
  r.created_at = format_timestamp(now_millis());  // recent: retention (30 days) keeps it
  r.after = "{\"n\":" + std::to_string(id) + "}";
  return r;
}

std::size_t occurrences(const std::string& text, const std::string& needle) {
  std::size_t n = 0;
  for (auto at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
  return n;
}

fs::path data_dir(const TempDir& dir) {
  auto data = dir / "data";
  fs::create_directories(data);
  fs::permissions(data, fs::perms::owner_all, fs::perm_options::replace);
  return data;
}

std::string scalar(const fs::path& db, const std::string& sql) { return query_db(db, sql)[0][0]; }

}  // namespace

// Item 5: only files deltatap named itself are journal segments. A stray file
// with a twenty-digit number (stoull threw: abort at start, exit 134) and two
// dated backups (replayed and then deleted) are left alone and reported once;
// a segment of the previous version, header-less, is still replayed.
BOOST_AUTO_TEST_CASE(stray_and_backup_journal_files_are_left_alone_and_reported_once) {
  TempDir dir;
  auto data = data_dir(dir);
  auto journal = (data / "sessions.journal").string();

  auto stray = journal + ".99999999999999999999";
  write_file(stray, "not a journal at all\n");
  // An operator's dated copy of a journal of the previous version.
  auto old_backup = journal + ".20251110";
  write_file(old_backup, journal_of({created(1, "from-old-backup"), created(2, "from-old-backup")}));
  // An operator's dated copy of an active journal this version wrote.
  auto new_backup = journal + ".20251111";
  {
    TempDir scratch;
    auto scratch_journal = (scratch / "sessions.journal").string();
    {
      boost::asio::io_context io;
      auto opened = Journal::open(io, scratch_journal, [](const JournalWrite&) {});
      BOOST_REQUIRE_MESSAGE(opened.ok(), opened.error());
      for (int id = 1; id <= 3; ++id) {
        auto record = created(id, "from-new-backup");
        Delta delta{record.session_id, record.type, std::nullopt, record.after, record.timestamp};
        opened.value()->append(delta, id, record.created_at);
      }
      opened.value().reset();  // writes and syncs what is buffered
    }
    fs::copy_file(scratch_journal, new_backup);
  }
  // A segment the previous version left after a crash: it is ours, and replayed.
  auto legacy_segment = journal + ".3";
  write_file(legacy_segment, journal_of({created(1, "from-legacy-segment"), created(2, "from-legacy-segment")}));

  std::map<std::string, std::string> untouched;
  for (const auto& file : {stray, old_backup, new_backup}) untouched[file] = read_file(file);

  Sim sim(dir, "sim", {"--format", "delta", "--count", "20", "--seed", "51"});
  Process daemon({deltatapd_argv(), daemon_env(sim.url(), ""), dir.path()});
  BOOST_REQUIRE_MESSAGE(sim.wait_sent(10s), sim.process().stderr_text());
  // SIGUSR1 snapshots, with the stray files there, until the file holds it all.
  auto db = data / "sessions.sqlite";
  BOOST_REQUIRE_MESSAGE(wait_for_rows(daemon, db, 2 + 20, 10s),
                        "stored " << (fs::exists(db) ? count_of(db) : "-") << "\n" << daemon.stderr_text());
  BOOST_TEST(daemon.running(), daemon.stderr_text());
  BOOST_TEST(count_of(db, "session_id = 'from-legacy-segment'") == "2");
  BOOST_TEST(count_of(db, "session_id LIKE 'from-%-backup'") == "0", "a backup was replayed");
  // The replayed segment goes once a snapshot holds it; the others stay as they were.
  BOOST_TEST(wait_until([&] { return !fs::exists(legacy_segment); }, 5s));
  for (const auto& [file, bytes] : untouched) {
    BOOST_TEST(read_file(file) == bytes, file << " was changed or removed");
    auto name = fs::path(file).filename().string();
    BOOST_TEST(occurrences(daemon.stderr_text(), name) == 1u,
               name << " is not mentioned exactly once:\n" << daemon.stderr_text());
  }

  daemon.signal(SIGTERM);
  BOOST_TEST(daemon.wait(10s).value_or(-1) == 0, daemon.stderr_text());
  for (const auto& [file, bytes] : untouched) BOOST_TEST(read_file(file) == bytes, file);
  BOOST_TEST(count_of(db, "session_id LIKE 'from-%-backup'") == "0");
}

// Item 10: replay checks each record as the parser checks a frame's delta and
// quarantines what fails. Before, all of these were inserted, and the one with
// id INT64_MAX left no id for any later delta: every batch of the live stream
// failed with "database or disk is full".
BOOST_AUTO_TEST_CASE(invalid_journal_records_are_quarantined_and_the_stream_goes_on) {
  TempDir dir;
  auto data = data_dir(dir);
  std::vector<Record> records;
  records.push_back(created(1, "journal-good-1"));
  auto updated = created(2, "journal-good-2");
  updated.type = DeltaType::updated;
  updated.before = "{\"n\":1}";
  records.push_back(updated);
  records.push_back(created(3, ""));                       // empty session id
  auto not_a_time = created(4, "journal-bad-timestamp");
  not_a_time.timestamp = "yesterday";
  records.push_back(not_a_time);
  records.push_back(created(5, "journal-bad-\xff\xfe-utf8"));  // not UTF-8
  auto array_state = created(6, "journal-bad-state");
  array_state.after = "[1,2]";                              // a state must be an object
  records.push_back(array_state);
  auto spliced = created(7, "journal-bad-spliced");
  spliced.after = "{\"n\":7},\"x\":{}";                     // one object, then more
  records.push_back(spliced);
  auto deleted = created(8, "journal-good-3");
  deleted.type = DeltaType::deleted;
  deleted.before = "{\"n\":3}";
  deleted.after.reset();
  records.push_back(deleted);
  records.push_back(created(std::numeric_limits<std::int64_t>::max(), "journal-huge-id"));
  write_file(data / "sessions.journal", journal_of(records));

  Sim sim(dir, "sim", {"--format", "delta", "--count", "20", "--seed", "52"});
  Process daemon({deltatapd_argv(), daemon_env(sim.url(), ""), dir.path()});
  BOOST_REQUIRE_MESSAGE(sim.wait_sent(10s), sim.process().stderr_text());
  auto db = data / "sessions.sqlite";
  // The three good records, then the live stream after them.
  BOOST_REQUIRE_MESSAGE(wait_for_rows(daemon, db, 3 + 20, 10s),
                        "stored " << (fs::exists(db) ? count_of(db) : "-") << "\n" << daemon.stderr_text());
  BOOST_TEST(daemon.running());
  BOOST_TEST(!daemon.stderr_contains("database or disk is full"), daemon.stderr_text());
  BOOST_TEST(count_of(db, "session_id LIKE 'journal-good-%'") == "3");
  BOOST_TEST(count_of(db, "session_id LIKE 'journal-%' AND session_id NOT LIKE 'journal-good-%'") == "0");
  BOOST_TEST(count_of(db, "session_id = ''") == "0");
  BOOST_TEST(std::stoll(scalar(db, "SELECT MAX(id) FROM session_deltas")) < (std::int64_t{1} << 53));

  const std::string quarantined = "FROM rejected_messages WHERE reason = 'invalid_journal_record'";
  BOOST_TEST(scalar(db, "SELECT COUNT(*) " + quarantined) == "6");
  for (std::int64_t id : {std::int64_t{3}, std::int64_t{4}, std::int64_t{5}, std::int64_t{6},
                          std::int64_t{7}, std::numeric_limits<std::int64_t>::max()}) {
    BOOST_TEST(scalar(db, "SELECT COUNT(*) " + quarantined + " AND detail LIKE 'journal record " +
                              std::to_string(id) + ":%'") == "1",
               "record " << id);
  }
  // Logged once for all of them.
  BOOST_TEST(occurrences(daemon.stderr_text(), "Invalid journal records quarantined") == 1u,
             daemon.stderr_text());

  daemon.signal(SIGTERM);
  BOOST_TEST(daemon.wait(10s).value_or(-1) == 0, daemon.stderr_text());
  BOOST_TEST(count_of(db) == "23");
}

// Item 15: stream_events is pruned by the retention days, like the deltas.
BOOST_AUTO_TEST_CASE(retention_prunes_old_stream_events_at_start) {
  TempDir dir;
  auto data = data_dir(dir);
  auto db = data / "sessions.sqlite";
  auto now = now_millis();
  {
    auto store = std::move(Store::open_empty().value());
    for (int days_ago : {400, 45, 31}) {
      StreamEvent event{format_timestamp(now - std::chrono::days(days_ago)), "disconnected",
                        "ws://old.invalid/ws", 1006, "flapping"};
      BOOST_REQUIRE(store->record_event(event).ok());
    }
    for (int days_ago : {29, 1}) {
      StreamEvent event{format_timestamp(now - std::chrono::days(days_ago)), "disconnected",
                        "ws://recent.invalid/ws", 1006, "flapping"};
      BOOST_REQUIRE(store->record_event(event).ok());
    }
    auto written = store->write_copy(db.string());
    BOOST_REQUIRE_MESSAGE(written.ok(), written.error());
  }
  auto events_from = [&](const std::string& url) {
    return scalar(db, "SELECT COUNT(*) FROM stream_events WHERE url = '" + url + "'");
  };
  BOOST_REQUIRE(events_from("ws://old.invalid/ws") == "3");

  auto env = daemon_env("ws://127.0.0.1:" + std::to_string(free_port()) + "/ws", "");
  env["RETENTION_DAYS"] = "30";
  Process daemon({deltatapd_argv(), env, dir.path()});
  // Pruned at start, and the file written then: no signal needed.
  BOOST_REQUIRE_MESSAGE(wait_until([&] { return events_from("ws://old.invalid/ws") == "0"; }, 10s),
                        daemon.stderr_text());
  BOOST_TEST(events_from("ws://recent.invalid/ws") == "2");
  BOOST_TEST(daemon.running());
  daemon.signal(SIGTERM);
  BOOST_TEST(daemon.wait(10s).value_or(-1) == 0, daemon.stderr_text());
  BOOST_TEST(events_from("ws://old.invalid/ws") == "0");
  BOOST_TEST(events_from("ws://recent.invalid/ws") == "2");
}
