// Snapshot files: permissions, atomic replacement, and what kill -9 of a process
// in the middle of writing one leaves behind.
#define BOOST_TEST_MODULE snapshot
#include <boost/test/unit_test.hpp>

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstring>
#include <iterator>
#include <optional>
#include <random>
#include <thread>

#include "base/digest.h"
#include "base/files.h"
#include "base/logging.h"
#include "storage/snapshot.h"
#include "skip.h"
#include "storage/store.h"
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
  // Beside it, its digest (the hash of "second"), and no temporary files.
  auto digest = read_file(snapshot_digest_path(path.string()));
  BOOST_TEST(digest == file_digest(std::string_view("second")) + "\n");
  BOOST_TEST(digest.starts_with("xxh3-128 "));
  BOOST_TEST(digest.ends_with(" 6\n"));  // its size
  BOOST_TEST(mode_of(snapshot_digest_path(path.string())) == 0600u);
  int entries = 0;
  for ([[maybe_unused]] auto& e : fs::directory_iterator(path.parent_path())) ++entries;
  BOOST_TEST(entries == 2);
}

BOOST_AUTO_TEST_CASE(failed_write_keeps_the_old_file) {
  TempDir dir;
  // A path whose parent is a file: refused, naming it.
  write_file(dir / "blocker", "x");
  auto blocked = write_snapshot_file((dir / "blocker/sessions.sqlite").string(), "new");
  BOOST_TEST(!blocked.ok());
  BOOST_TEST(blocked.error().find("blocker") != std::string::npos, blocked.error());

  // A write that fails half-way, as on a full disk, for root too (directory
  // permissions would stop anyone but root): a child may write no file past
  // 4 KiB (RLIMIT_FSIZE, SIGXFSZ ignored, so the write fails with EFBIG).
  auto path = dir / "data/sessions.sqlite";
  BOOST_REQUIRE(write_snapshot_file(path.string(), "old").ok());
  pid_t child = ::fork();
  BOOST_REQUIRE(child >= 0);
  if (child == 0) {
    struct sigaction ignore {};
    ignore.sa_handler = SIG_IGN;
    ::sigaction(SIGXFSZ, &ignore, nullptr);
    rlimit limit{4096, 4096};
    if (::setrlimit(RLIMIT_FSIZE, &limit) != 0) ::_exit(3);
    ::_exit(write_snapshot_file(path.string(), std::string(1 << 16, 'n')).ok() ? 1 : 0);
  }
  int status = 0;
  BOOST_REQUIRE(::waitpid(child, &status, 0) == child);
  BOOST_TEST((WIFEXITED(status) && WEXITSTATUS(status) == 0),
             "a write past the limit did not fail (wait status " << status << ")");
  // The old file whole with its digest, and no temporary left beside them.
  BOOST_TEST(read_file(path) == "old");
  BOOST_TEST(snapshot_matches_digest(path.string()));
  int entries = 0;
  for ([[maybe_unused]] auto& e : fs::directory_iterator(path.parent_path())) ++entries;
  BOOST_TEST(entries == 2);
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

namespace {

std::vector<Delta> numbered_deltas(int from, int count) {
  std::vector<Delta> batch;
  for (int i = from; i < from + count; ++i) {
    Delta d;
    d.session_id = "sess_" + std::to_string(i);
    d.type = DeltaType::created;
    d.after = R"({"id":"x"})";
    d.timestamp = "2025-11-10T12:00:00.000Z";
    batch.push_back(std::move(d));
  }
  return batch;
}

FillFile copy_of(Store& store) {
  return [&store](const std::string& temp) { return store.write_copy(temp); };
}

std::optional<fs::path> file_ending_in(const TempDir& dir, const std::string& extension) {
  for (auto& entry : fs::directory_iterator(dir.path())) {
    if (entry.path().extension() == extension) return entry.path();
  }
  return std::nullopt;
}

// Sanitizer builds write snapshots in-process (snapshot.cc says why): the
// tests of the child itself cannot run there.
boost::test_tools::assertion_result forks_a_child([[maybe_unused]] boost::unit_test::test_unit_id id) {
#if defined(__SANITIZE_ADDRESS__)
  return excluded_by_build(id, "AddressSanitizer build: snapshots are written without a child");
#else
  return true;
#endif
}

bool process_gone(pid_t pid) {
  // Reparented to init when its parent died, and reaped there.
  return ::kill(pid, 0) != 0 && errno == ESRCH;
}

}  // namespace

BOOST_AUTO_TEST_CASE(a_child_writes_the_database_as_it_was_at_the_fork,
                     *boost::unit_test::precondition(forks_a_child)) {
  TempDir dir;
  auto path = (dir / "data/sessions.sqlite").string();
  auto store = Store::open_empty();
  BOOST_REQUIRE(store.ok());
  BOOST_REQUIRE((*store)->save_batch(numbered_deltas(0, 20'000)).ok());
  auto child = SnapshotChild::start(path, copy_of(**store));
  BOOST_REQUIRE_MESSAGE(child.ok(), child.error());
  // The parent goes on storing while the child copies: none of it is in the file.
  BOOST_REQUIRE((*store)->save_batch(numbered_deltas(20'000, 5'000)).ok());
  auto status = (*child)->wait(std::chrono::seconds(60));
  BOOST_REQUIRE_MESSAGE(status.ok(), status.error());
  BOOST_TEST(query_db(path, "SELECT COUNT(*), MAX(session_id) FROM session_deltas")[0] ==
                 (std::vector<std::string>{"20000", "sess_9999"}),
             boost::test_tools::per_element());
  BOOST_TEST(query_db(path, "PRAGMA integrity_check")[0][0] == "ok");
  BOOST_TEST(mode_of(path) == 0600u);
  auto loaded = Store::load_file(path);
  BOOST_REQUIRE_MESSAGE(loaded.ok(), loaded.error());
  BOOST_TEST((*loaded)->delta_count() == 20'000);
}

// A start trusts a file that matches the digest its snapshot left, and reads
// every page through quick_check when it does not: a file changed since (even
// in a way quick_check cannot see), a digest from another file (the crash
// between the two renames), or none at all.
BOOST_AUTO_TEST_CASE(a_load_trusts_the_digest_only_of_the_file_it_describes) {
  TempDir dir;
  auto path = (dir / "data/sessions.sqlite").string();
  auto store = Store::open_empty();
  BOOST_REQUIRE(store.ok());
  BOOST_REQUIRE((*store)->save_batch(numbered_deltas(0, 2'000)).ok());
  BOOST_REQUIRE(write_snapshot_file(path, copy_of(**store)).ok());
  BOOST_TEST(snapshot_matches_digest(path));
  auto loaded = Store::load_file(path);
  BOOST_REQUIRE_MESSAGE(loaded.ok(), loaded.error());
  BOOST_TEST((*loaded)->delta_count() == 2'000);
  BOOST_TEST(((*loaded)->load_check() == Store::LoadCheck::kDigest));
  BOOST_TEST(((*store)->load_check() == Store::LoadCheck::kNone));

  // One letter of one session id changed in place: still a sound database to
  // SQLite, but not the file the snapshot wrote.
  std::string bytes = read_file(path);
  auto at = bytes.find("sess_1234");
  BOOST_REQUIRE(at != std::string::npos);
  bytes[at] = 'z';
  write_file(path, bytes);
  BOOST_TEST(!snapshot_matches_digest(path));
  auto changed = Store::load_file(path);
  BOOST_REQUIRE_MESSAGE(changed.ok(), changed.error());
  BOOST_TEST(((*changed)->load_check() == Store::LoadCheck::kQuickCheck));

  // A newer file renamed into place without its digest (a crash between the
  // two renames): the old digest does not describe it.
  BOOST_REQUIRE(write_snapshot_file(path, copy_of(**store)).ok());
  BOOST_REQUIRE((*store)->save_batch(numbered_deltas(2'000, 10)).ok());
  BOOST_REQUIRE(write_file_atomically(path, [&](const std::string& temp, int) {
                  return (*store)->write_copy(temp);
                }).ok());
  auto newer = Store::load_file(path);
  BOOST_REQUIRE_MESSAGE(newer.ok(), newer.error());
  BOOST_TEST((*newer)->delta_count() == 2'010);
  BOOST_TEST(((*newer)->load_check() == Store::LoadCheck::kQuickCheck));

  // No digest at all, and a digest that is not one: quick_check.
  fs::remove(snapshot_digest_path(path));
  auto without = Store::load_file(path);
  BOOST_REQUIRE_MESSAGE(without.ok(), without.error());
  BOOST_TEST(((*without)->load_check() == Store::LoadCheck::kQuickCheck));
  write_file(snapshot_digest_path(path), "not a digest\n");
  auto garbled = Store::load_file(path);
  BOOST_REQUIRE_MESSAGE(garbled.ok(), garbled.error());
  BOOST_TEST(((*garbled)->load_check() == Store::LoadCheck::kQuickCheck));

  // A file that fails quick_check fails to load whatever digest is beside it
  // when the digest is not its own.
  BOOST_REQUIRE(write_snapshot_file(path, copy_of(**store)).ok());
  std::string whole = read_file(path);
  whole.resize(whole.size() / 2);
  write_file(path, whole);
  BOOST_TEST(!Store::load_file(path).ok());
}

BOOST_AUTO_TEST_CASE(a_failing_child_says_why_and_keeps_the_old_file) {
  TempDir dir;
  auto path = (dir / "sessions.sqlite").string();
  BOOST_REQUIRE(write_snapshot_file(path, "old").ok());
  auto child = SnapshotChild::start(
      path, [](const std::string&) -> Status { return Error{"disk on fire"}; });
  BOOST_REQUIRE(child.ok());
  auto status = (*child)->wait(std::chrono::seconds(60));
  BOOST_REQUIRE(!status.ok());
  BOOST_TEST(status.error() == "disk on fire");
  BOOST_TEST(read_file(path) == "old");
  BOOST_TEST(snapshot_matches_digest(path));
  int entries = 0;
  for ([[maybe_unused]] auto& e : fs::directory_iterator(dir.path())) ++entries;
  BOOST_TEST(entries == 2);
}

BOOST_AUTO_TEST_CASE(the_child_dies_with_the_process_that_started_it,
                     *boost::unit_test::precondition(forks_a_child)) {
  TempDir dir;
  auto path = (dir / "sessions.sqlite").string();
  // A stand-in for the daemon: it starts a snapshot that never finishes, then
  // is killed with SIGKILL. The child (which keeps no inherited descriptor)
  // reports its pid in a file next to its temporary one.
  pid_t daemon = ::fork();
  BOOST_REQUIRE(daemon >= 0);
  if (daemon == 0) {
    auto child = SnapshotChild::start(path, [](const std::string& temp) -> Status {
      std::string pid = std::to_string(::getpid());
      int fd = ::open((temp + ".part").c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
      if (fd < 0 || ::write(fd, pid.data(), pid.size()) != static_cast<ssize_t>(pid.size())) {
        return Error{"cannot write the pid"};
      }
      ::close(fd);
      ::rename((temp + ".part").c_str(), (temp + ".pid").c_str());
      for (;;) ::pause();
    });
    if (!child.ok()) ::_exit(3);
    for (;;) ::pause();
  }
  std::optional<fs::path> pid_file;
  BOOST_REQUIRE(wait_until([&] { return (pid_file = file_ending_in(dir, ".pid")).has_value(); }));
  pid_t snapshot = std::stoi(read_file(*pid_file));
  BOOST_REQUIRE(!process_gone(snapshot));
  ::kill(daemon, SIGKILL);
  ::waitpid(daemon, nullptr, 0);
  BOOST_TEST(wait_until([&] { return process_gone(snapshot); }, std::chrono::seconds(10)));
  // Its temporary file is what a restarted daemon clears away.
  BOOST_TEST(!fs::is_empty(dir.path()));
  remove_stale_temporaries(path);
  BOOST_TEST(fs::is_empty(dir.path()));
}

namespace {

// A TCP socket listening on 127.0.0.1:port (0: any); -1 when bind fails.
int listen_on(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<std::uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
      ::listen(fd, 4) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

int port_of(int fd) {
  sockaddr_in address{};
  socklen_t size = sizeof address;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &size);
  return ntohs(address.sin_port);
}

}  // namespace

// The daemon's listener and stream socket must not outlive it in a child: a
// restarted daemon could not bind its port while a snapshot was being written.
BOOST_AUTO_TEST_CASE(the_child_keeps_none_of_the_parents_sockets,
                     *boost::unit_test::precondition(forks_a_child)) {
  TempDir dir;
  int listener = listen_on(0);
  BOOST_REQUIRE(listener >= 0);
  int port = port_of(listener);
  // `fill` runs after the child has dealt with its descriptors; it says so with
  // a file next to its temporary one, then waits to be killed.
  auto child = SnapshotChild::start((dir / "sessions.sqlite").string(),
                                    [](const std::string& temp) -> Status {
                                      ::close(::open((temp + ".ready").c_str(),
                                                     O_CREAT | O_WRONLY | O_CLOEXEC, 0600));
                                      for (;;) ::pause();
                                    });
  BOOST_REQUIRE(child.ok());
  BOOST_REQUIRE(wait_until([&] { return file_ending_in(dir, ".ready").has_value(); }));
  ::close(listener);
  int again = listen_on(port);
  BOOST_TEST(again >= 0, "port " << port << " is still held by the snapshot child");
  if (again >= 0) ::close(again);
}

// A child that hangs would hold up every later snapshot: past the limit it is
// killed and the snapshot reported as failed, the old file kept.
BOOST_AUTO_TEST_CASE(a_child_that_never_finishes_is_killed_at_the_limit,
                     *boost::unit_test::precondition(forks_a_child)) {
  TempDir dir;
  auto path = (dir / "sessions.sqlite").string();
  BOOST_REQUIRE(write_snapshot_file(path, "old").ok());
  auto child = SnapshotChild::start(path, [](const std::string&) -> Status {
    for (;;) ::pause();
  });
  BOOST_REQUIRE(child.ok());
  auto status = (*child)->wait(std::chrono::milliseconds(200));
  BOOST_REQUIRE(!status.ok());
  BOOST_TEST(status.error().find("killed") != std::string::npos, status.error());
  BOOST_TEST(read_file(path) == "old");
}

namespace {

// A `fill` that says its pid (in "<temp>.pid", for the test to signal it), then
// waits for the file `go` before it writes "new": the test decides when the
// snapshot may finish. It gives up after 20 s, so a test that fails does not
// leave it behind.
FillFile pid_then_wait_for(const fs::path& go) {
  return [go](const std::string& temp) -> Status {
    std::string pid = std::to_string(::getpid());
    write_file(temp + ".part", pid);
    ::rename((temp + ".part").c_str(), (temp + ".pid").c_str());
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (!fs::exists(go)) {
      if (std::chrono::steady_clock::now() > deadline) return Error{"never told to go"};
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    ::unlink((temp + ".pid").c_str());
    write_file(temp, "new");
    return ok_status();
  };
}

pid_t wait_for_pid_file(const TempDir& dir) {
  std::optional<fs::path> pid_file;
  BOOST_REQUIRE(wait_until([&] { return (pid_file = file_ending_in(dir, ".pid")).has_value(); }));
  return std::stoi(read_file(*pid_file));
}

}  // namespace

// systemd sends `systemctl kill -s USR1` (and HUP, USR2) to every process of
// the unit: the child ignores them and its snapshot lands (issue 13, item 7).
BOOST_AUTO_TEST_CASE(the_child_outlives_hup_usr1_and_usr2,
                     *boost::unit_test::precondition(forks_a_child)) {
  TempDir dir;
  auto path = (dir / "sessions.sqlite").string();
  BOOST_REQUIRE(write_snapshot_file(path, "old").ok());
  auto child = SnapshotChild::start(path, pid_then_wait_for(dir / "go"));
  BOOST_REQUIRE_MESSAGE(child.ok(), child.error());
  pid_t snapshot = wait_for_pid_file(dir);
  // A signal whose action is to terminate ends the process before kill()
  // returns to the sender; one that is ignored is dropped as it is sent.
  for (int signo : {SIGUSR1, SIGHUP, SIGUSR2}) BOOST_TEST(::kill(snapshot, signo) == 0);
  write_file(dir / "go", "");
  auto status = (*child)->wait(std::chrono::seconds(30));
  BOOST_TEST(status.ok(), status.error());
  BOOST_TEST(read_file(path) == "new");
}

// SIGTERM is systemd's stop, sent to the whole unit: the child dies of it (the
// daemon then writes its final snapshot itself), and the old file is kept.
BOOST_AUTO_TEST_CASE(sigterm_ends_the_child_and_keeps_the_old_file,
                     *boost::unit_test::precondition(forks_a_child)) {
  TempDir dir;
  auto path = (dir / "sessions.sqlite").string();
  BOOST_REQUIRE(write_snapshot_file(path, "old").ok());
  auto child = SnapshotChild::start(path, pid_then_wait_for(dir / "go"));
  BOOST_REQUIRE_MESSAGE(child.ok(), child.error());
  pid_t snapshot = wait_for_pid_file(dir);
  BOOST_REQUIRE(::kill(snapshot, SIGTERM) == 0);
  auto status = (*child)->wait(std::chrono::seconds(30));
  BOOST_REQUIRE(!status.ok());
  BOOST_TEST(status.error().find(::strsignal(SIGTERM)) != std::string::npos, status.error());
  BOOST_TEST(read_file(path) == "old");
}

namespace {

// What `SystemCallFilter=~@resources` with `SystemCallErrorNumber=EPERM` did to
// the child: setpriority fails with EPERM, everything else is allowed. The
// architecture is not checked: the test runs only native system calls.
bool refuse_setpriority() {
  sock_filter program[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_setpriority, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA)),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  sock_fprog filter{static_cast<unsigned short>(std::size(program)), program};
  return ::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0 &&
         ::prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &filter) == 0;
}

}  // namespace

// Under a filter that refuses setpriority (issue 13, item 8) the snapshots
// still land, and the process says once, not at every snapshot, that they run
// at normal priority.
BOOST_AUTO_TEST_CASE(a_child_that_cannot_lower_its_priority_still_writes_and_says_so_once,
                     *boost::unit_test::precondition(forks_a_child)) {
  TempDir dir;
  auto path = (dir / "data/sessions.sqlite").string();
  auto log = dir / "log";
  // The filter stays with the process that installs it: a stand-in daemon.
  // Only async-signal-safe calls would be proper after fork() in a threaded
  // process; the test process has one thread, so the stand-in may use the
  // library as the daemon does. It reports by exit status, never through Boost.
  pid_t daemon = ::fork();
  BOOST_REQUIRE(daemon >= 0);
  if (daemon == 0) {
    int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0 || ::dup2(fd, STDERR_FILENO) < 0) ::_exit(10);
    if (!refuse_setpriority()) ::_exit(11);
    init_logging({.level = LogLevel::info, .format = LogFormat::text});
    auto store = Store::open_empty();
    if (!store.ok() || !(*store)->save_batch(numbered_deltas(0, 100)).ok()) ::_exit(12);
    for (int i = 0; i < 3; ++i) {
      auto child = SnapshotChild::start(path, copy_of(**store));
      if (!child.ok()) ::_exit(13);
      auto status = (*child)->wait(std::chrono::seconds(30));
      if (!status.ok()) {
        log_error("snapshot failed", {{"ERROR", status.error()}});
        flush_logging();
        ::_exit(14);
      }
    }
    flush_logging();
    ::_exit(0);
  }
  int status = 0;
  BOOST_REQUIRE(::waitpid(daemon, &status, 0) == daemon);
  BOOST_REQUIRE(WIFEXITED(status));
  if (WEXITSTATUS(status) == 11) {
    skip("this system refuses a seccomp filter");
    return;
  }
  std::string text = read_file(log);
  BOOST_REQUIRE_MESSAGE(WEXITSTATUS(status) == 0, "exit " << WEXITSTATUS(status) << ": " << text);
  BOOST_TEST(count_of(path) == "100");
  const std::string warning = "cannot lower its priority";
  auto first = text.find(warning);
  BOOST_TEST(first != std::string::npos, text);
  BOOST_TEST(text.find(warning, first + 1) == std::string::npos, text);
  BOOST_TEST(text.find(std::strerror(EPERM)) != std::string::npos, text);
}
