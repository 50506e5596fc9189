// Issue 13, what deltatapd does at start with a data directory it must not use
// as it is: one another deltatapd holds (2), a database of a newer schema (6), a
// directory other users can write to (11), a FIFO at the database path (12).
// Each case runs the real daemon, as an operator would, and fails without the fix.
#define BOOST_TEST_MODULE hardening_start
#include <boost/test/unit_test.hpp>

#include <signal.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <map>

#include "storage/journal.h"
#include "test_support.h"

using namespace deltatap;
using namespace deltatap::testing;

namespace {

// A loopback port with nothing listening: the backend is down.
std::string dead_url() { return "ws://127.0.0.1:" + std::to_string(free_port()) + "/ws"; }

mode_t mode_of(const fs::path& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return 0;
  return st.st_mode & 07777;
}

// A data directory made by hand, with exactly `mode` whatever the umask.
fs::path make_data_dir(const TempDir& dir, mode_t mode) {
  auto data = dir / "data";
  fs::create_directory(data);
  BOOST_REQUIRE(::chmod(data.c_str(), mode) == 0);
  return data;
}

// Every file in `directory`, name to bytes.
std::map<std::string, std::string> files_in(const fs::path& directory) {
  std::map<std::string, std::string> files;
  for (const auto& entry : fs::directory_iterator(directory)) {
    files[entry.path().filename().string()] = read_file(entry.path());
  }
  return files;
}

// Waits until the daemon has exited or has shown that it went on starting
// (the failure these tests look for: it loaded or moved aside the file, wrote
// a new one where there was none, or connected), so that a regression fails
// fast instead of at the deadline.
bool exits_or_starts(Process& daemon, const fs::path& db,
                     std::chrono::milliseconds timeout = 10s) {
  const bool db_existed = fs::exists(fs::symlink_status(db));
  return wait_until(
      [&] {
        return !daemon.running() || daemon.stderr_contains("Database loaded") ||
               daemon.stderr_contains("moved aside") ||
               daemon.stderr_contains("Connected to the stream") ||
               (!db_existed && fs::exists(db));
      },
      timeout);
}

}  // namespace

// Item 2. Without the lock, B loads A's file, replays A's journal, rotates it
// away and snapshots over A's file, while A goes on writing to a journal that
// is no longer there.
BOOST_AUTO_TEST_CASE(a_second_daemon_on_the_same_data_directory_exits_1_naming_the_first) {
  TempDir dir;
  constexpr std::size_t kDeltas = 1500;
  Sim sim(dir, "sim", {"--format", "mixed", "--count", std::to_string(kDeltas), "--seed", "21"});
  auto env = daemon_env(sim.url(), "");
  Process a({deltatapd_argv(), env, dir.path()});
  auto data = dir / "data";
  auto db = data / "sessions.sqlite";
  auto journal = (data / "sessions.journal").string();
  auto journaled = [&] {
    auto replay = read_journal(journal, 0);
    return replay.ok() ? replay->deltas.size() : std::size_t{0};
  };
  // A has journaled the whole stream and written only its first, empty
  // snapshot (its next one is ten minutes away): the journal holds what the
  // file does not, and neither changes any more while A runs undisturbed.
  BOOST_REQUIRE_MESSAGE(wait_until([&] { return journaled() == kDeltas; }, 10s), a.stderr_text());
  BOOST_REQUIRE(fs::exists(db));
  BOOST_REQUIRE_EQUAL(count_of(db), "0");
  auto before = files_in(data);

  Process b({deltatapd_argv(), env, dir.path()});
  BOOST_REQUIRE_MESSAGE(exits_or_starts(b, db), b.stderr_text());
  BOOST_REQUIRE_MESSAGE(!b.running(), "a second daemon went on starting:\n" << b.stderr_text());
  BOOST_TEST(b.wait(1s).value_or(-1) == 1, b.stderr_text());
  BOOST_TEST(b.stderr_contains("PID " + std::to_string(a.pid())), b.stderr_text());

  // A's files are as they were: the same names, the same bytes, the same rows.
  BOOST_TEST((files_in(data) == before));
  BOOST_TEST(count_of(db) == "0");
  BOOST_TEST(journaled() == kDeltas);

  // A never noticed: it still runs, its next snapshot holds the whole stream,
  // and it stops cleanly.
  BOOST_REQUIRE(a.running());
  BOOST_REQUIRE_MESSAGE(wait_for_rows(a, db, static_cast<long>(kDeltas), 10s), a.stderr_text());
  a.signal(SIGTERM);
  BOOST_TEST(a.wait(10s).value_or(-1) == 0, a.stderr_text());
  BOOST_TEST(count_of(db) == std::to_string(kDeltas));
}

// Item 6. Without the check the file is taken for corrupt: moved aside, and the
// daemon starts empty and reports ready.
BOOST_AUTO_TEST_CASE(a_database_of_a_newer_schema_is_refused_and_left_untouched) {
  TempDir dir;
  auto data = make_data_dir(dir, 0700);
  auto db = data / "sessions.sqlite";
  sqlite3* handle = nullptr;
  BOOST_REQUIRE(sqlite3_open(db.c_str(), &handle) == SQLITE_OK);
  BOOST_REQUIRE(sqlite3_exec(handle,
                             "CREATE TABLE session_deltas (id INTEGER PRIMARY KEY, what TEXT);"
                             "INSERT INTO session_deltas (what) VALUES ('from the future');"
                             "PRAGMA user_version = 99;",
                             nullptr, nullptr, nullptr) == SQLITE_OK);
  sqlite3_close(handle);
  // The newer deltatap's journal, in a format this one does not know.
  write_file(data / "sessions.journal", "journal records of deltatap version 99\n");
  auto before = files_in(data);

  Process daemon({deltatapd_argv(), daemon_env(dead_url(), ""), dir.path()});
  BOOST_REQUIRE_MESSAGE(exits_or_starts(daemon, db), daemon.stderr_text());
  BOOST_REQUIRE_MESSAGE(!daemon.running(), "it went on starting:\n" << daemon.stderr_text());
  BOOST_TEST(daemon.wait(1s).value_or(-1) == 1, daemon.stderr_text());
  BOOST_TEST(daemon.stderr_contains("written by a newer deltatap, version 99"), daemon.stderr_text());
  // Nothing touched: the same files with the same bytes (no .corrupt-* file, no
  // journal segment), and only the lock file added.
  auto after = files_in(data);
  after.erase(".deltatap.lock");
  BOOST_TEST((after == before));
  BOOST_TEST(query_db(db, "PRAGMA user_version")[0][0] == "99");
}

// Item 11. Without the check the directory is used as it is.
BOOST_AUTO_TEST_CASE(a_data_directory_others_can_write_to_is_refused_and_not_changed) {
  for (mode_t mode : {mode_t{0777}, mode_t{0770}}) {
    TempDir dir;
    auto data = make_data_dir(dir, mode);
    Process daemon({deltatapd_argv(), daemon_env(dead_url(), ""), dir.path()});
    BOOST_REQUIRE_MESSAGE(exits_or_starts(daemon, data / "sessions.sqlite"), daemon.stderr_text());
    BOOST_REQUIRE_MESSAGE(!daemon.running(), "mode " << std::oct << mode << " was accepted:\n"
                                                     << daemon.stderr_text());
    BOOST_TEST(daemon.wait(1s).value_or(-1) == 1, daemon.stderr_text());
    char shown[8];
    std::snprintf(shown, sizeof shown, "%04o", static_cast<unsigned>(mode));
    auto log = daemon.stderr_text();
    BOOST_TEST(log.find(fs::canonical(data).string()) != std::string::npos, log);
    BOOST_TEST(log.find(std::string("mode ") + shown) != std::string::npos, log);
    BOOST_TEST(log.find("chmod 700") != std::string::npos, log);
    // Refused as it was found: the mode is not changed behind the operator's
    // back, and nothing was written in it (not even the lock file).
    BOOST_TEST(mode_of(data) == mode);
    BOOST_TEST(fs::is_empty(data));
  }
  // Private, or readable (not writable) by its group: used as it is.
  for (mode_t mode : {mode_t{0700}, mode_t{0750}}) {
    TempDir dir;
    auto data = make_data_dir(dir, mode);
    Process daemon({deltatapd_argv(), daemon_env(dead_url(), ""), dir.path()});
    BOOST_REQUIRE_MESSAGE(wait_until([&] { return fs::exists(data / "sessions.sqlite"); }),
                          "mode " << std::oct << mode << ":\n" << daemon.stderr_text());
    daemon.signal(SIGTERM);
    BOOST_TEST(daemon.wait(10s).value_or(-1) == 0, daemon.stderr_text());
    BOOST_TEST(mode_of(data) == mode);
  }
}

// Item 12. Without the fix the daemon blocks in open() on the FIFO, waiting
// for a writer: no READY, no API, until it is killed.
BOOST_AUTO_TEST_CASE(a_fifo_at_the_database_path_is_refused_at_once) {
  TempDir dir;
  auto data = make_data_dir(dir, 0700);
  auto db = data / "sessions.sqlite";
  BOOST_REQUIRE(::mkfifo(db.c_str(), 0600) == 0);
  Process daemon({deltatapd_argv(), daemon_env(dead_url(), ""), dir.path()});
  BOOST_REQUIRE_MESSAGE(exits_or_starts(daemon, db, 5s), "still running after 5 s:\n"
                                                         << daemon.stderr_text());
  BOOST_REQUIRE_MESSAGE(!daemon.running(), daemon.stderr_text());
  BOOST_TEST(daemon.wait(1s).value_or(-1) == 1, daemon.stderr_text());
  BOOST_TEST(daemon.stderr_contains("not a regular file"), daemon.stderr_text());
  BOOST_TEST(daemon.stderr_contains(db.filename().string()), daemon.stderr_text());
  BOOST_TEST(fs::is_fifo(fs::symlink_status(db)));
}
