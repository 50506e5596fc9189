// Snapshot files: permissions, atomic replacement, and what kill -9 of a process
// in the middle of writing one leaves behind.
#define BOOST_TEST_MODULE snapshot
#include <boost/test/unit_test.hpp>

#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <random>

#include "snapshot.h"
#include "store.h"
#include "test_support.h"

using namespace deltatap;
using namespace deltatap::testing;

namespace {

mode_t mode_of(const fs::path& path) {
  struct stat st {};
  BOOST_REQUIRE(::stat(path.c_str(), &st) == 0);
  return st.st_mode & 07777;
}

// A real database image of roughly `deltas` rows, all tagged with `tag`.
std::string database_image(int deltas, const std::string& tag) {
  auto store = Store::open_empty();
  BOOST_REQUIRE(store.ok());
  std::vector<Delta> batch;
  for (int i = 0; i < deltas; ++i) {
    Delta d;
    d.session_id = "sess_" + std::to_string(i % 500);
    d.type = DeltaType::updated;
    d.before = R"({"id":"x","summary":")" + std::string(200, 'b') + "\"}";
    d.after = R"({"id":"x","tag":")" + tag + "\"}";
    d.timestamp = "2025-11-10T12:00:00.000Z";
    batch.push_back(std::move(d));
  }
  BOOST_REQUIRE((*store)->save_batch(batch).ok());
  auto image = (*store)->serialize();
  BOOST_REQUIRE(image.ok());
  return std::string(image->view());
}

}  // namespace

BOOST_AUTO_TEST_CASE(creates_private_directory_and_file) {
  TempDir dir;
  auto path = dir / "state/data/sessions.sqlite";
  BOOST_REQUIRE(write_snapshot_file(path.string(), "hello").ok());
  BOOST_TEST(read_file(path) == "hello");
  BOOST_TEST(mode_of(path) == 0600u);
  BOOST_TEST(mode_of(path.parent_path()) == 0700u);
  BOOST_TEST(mode_of(path.parent_path().parent_path()) == 0700u);
  // Replaced whole, no temporary files left behind.
  BOOST_REQUIRE(write_snapshot_file(path.string(), "second").ok());
  BOOST_TEST(read_file(path) == "second");
  int entries = 0;
  for ([[maybe_unused]] auto& e : fs::directory_iterator(path.parent_path())) ++entries;
  BOOST_TEST(entries == 1);
}

BOOST_AUTO_TEST_CASE(failed_write_keeps_the_old_file) {
  if (::geteuid() == 0) {
    // root ignores directory permissions; use a path whose parent is a file instead.
    TempDir dir;
    write_file(dir / "blocker", "x");
    auto status = write_snapshot_file((dir / "blocker/sessions.sqlite").string(), "new");
    BOOST_TEST(!status.ok());
    BOOST_TEST(status.error().find("blocker") != std::string::npos);
    return;
  }
  TempDir dir;
  auto path = dir / "data/sessions.sqlite";
  BOOST_REQUIRE(write_snapshot_file(path.string(), "old").ok());
  fs::permissions(path.parent_path(), fs::perms::owner_read | fs::perms::owner_exec);
  BOOST_TEST(!write_snapshot_file(path.string(), "new").ok());
  fs::permissions(path.parent_path(), fs::perms::owner_all);
  BOOST_TEST(read_file(path) == "old");
}

BOOST_AUTO_TEST_CASE(missing_file_reads_as_none_and_move_aside_keeps_it) {
  TempDir dir;
  auto missing = read_snapshot_file((dir / "nope.sqlite").string());
  BOOST_REQUIRE(missing.ok());
  BOOST_TEST(!missing->has_value());
  auto path = dir / "bad.sqlite";
  write_file(path, "garbage");
  auto moved = move_aside(path.string());
  BOOST_REQUIRE(moved.ok());
  BOOST_TEST(!fs::exists(path));
  BOOST_TEST(read_file(*moved) == "garbage");
  BOOST_TEST(moved->find(".corrupt-") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(kill_9_while_writing_leaves_the_old_or_the_new_file) {
  TempDir dir;
  auto path = (dir / "data/sessions.sqlite").string();
  const std::string old_image = database_image(60'000, "old");
  const std::string new_image = database_image(60'000, "new");
  BOOST_TEST_MESSAGE("image size " << new_image.size() << " bytes");
  std::mt19937 random(12345);
  int saw_old = 0, saw_new = 0;
  for (int round = 0; round < 8; ++round) {
    BOOST_REQUIRE(write_snapshot_file(path, old_image).ok());
    pid_t child = ::fork();
    BOOST_REQUIRE(child >= 0);
    if (child == 0) {
      for (;;) {
        if (!write_snapshot_file(path, new_image).ok()) _exit(3);
      }
    }
    // Let the writer get somewhere between "just started" and "several files in".
    auto delay = std::chrono::milliseconds(random() % 400);
    auto deadline = std::chrono::steady_clock::now() + delay;
    while (std::chrono::steady_clock::now() < deadline) {
    }
    ::kill(child, SIGKILL);
    int status = 0;
    ::waitpid(child, &status, 0);
    BOOST_REQUIRE(WIFSIGNALED(status));
    auto bytes = read_file(path);
    bool is_old = bytes == old_image, is_new = bytes == new_image;
    BOOST_TEST((is_old || is_new), "round " << round << ": torn file of " << bytes.size());
    saw_old += is_old;
    saw_new += is_new;
    auto check = query_db(path, "PRAGMA integrity_check");
    BOOST_TEST(check[0][0] == "ok");
    for (auto& entry : fs::directory_iterator(fs::path(path).parent_path())) {
      if (entry.path().string() != path) fs::remove(entry.path());  // stale temp files
    }
  }
  BOOST_TEST_MESSAGE("old " << saw_old << ", new " << saw_new);
}
