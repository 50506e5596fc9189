#include "storage/snapshot.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstring>

#include "base/digest.h"
#include "base/logging.h"
#include "base/timestamp.h"

namespace deltatap {

namespace {

class FileDescriptor {
 public:
  explicit FileDescriptor(int fd) : fd_(fd) {}
  ~FileDescriptor() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const { return fd_; }

 private:
  int fd_;
};

}  // namespace

namespace {

// The digest goes in place after the file: see snapshot.h for why that order
// is safe. Its failure is the snapshot's: the file is in place, but the
// digest beside it is the old one, and the error says so.
Status write_digest(const std::string& path, const std::string& digest) {
  auto written = write_file_atomically(snapshot_digest_path(path), digest + "\n");
  if (!written.ok()) return Error{path + " is written, but not its digest: " + written.error()};
  return ok_status();
}

}  // namespace

Status write_snapshot_file(const std::string& path, const FillFile& fill) {
  if (auto s = ensure_parent_directory(path); !s.ok()) return s;
  // SQLite writes the temporary by name; the descriptor is for the digest,
  // read back while the pages are still in the page cache, and the fsync.
  std::string digest;
  auto written = write_file_atomically(path, [&](const std::string& temp, int fd) -> Status {
    if (auto s = fill(temp); !s.ok()) return s;
    auto taken = file_digest(fd, temp);
    if (!taken.ok()) return Error{taken.error()};
    digest = std::move(*taken);
    return ok_status();
  });
  if (!written.ok()) return written;
  return write_digest(path, digest);
}

Status write_snapshot_file(const std::string& path, std::string_view bytes) {
  if (auto s = ensure_parent_directory(path); !s.ok()) return s;
  if (auto s = write_file_atomically(path, bytes); !s.ok()) return s;
  return write_digest(path, file_digest(bytes));
}

std::string snapshot_digest_path(const std::string& path) { return path + ".digest"; }

bool snapshot_matches_digest(const std::string& path) {
  auto recorded = read_snapshot_file(snapshot_digest_path(path));
  if (!recorded.ok() || !*recorded) return false;
  auto actual = file_digest(path);
  return actual.ok() && **recorded == *actual + "\n";
}

namespace {

// What the child says on its result pipe, in order: this marker, the reason
// and a newline when it could not lower its priority; then, when the snapshot
// failed, the error text (which never starts with the marker's control byte).
constexpr std::string_view kPriorityNotice = "\x01priority:";

// The child's word to the parent. A parent gone is nothing the child can act
// on (it is about to die of PR_SET_PDEATHSIG): errors are dropped.
void tell_parent(int fd, std::string_view text) {
  while (!text.empty()) {
    ssize_t n = ::write(fd, text.data(), text.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    text.remove_prefix(static_cast<std::size_t>(n));
  }
}

// Every child of the process meets the same filter, so once is enough; a
// snapshot at normal priority is slower for the rest of the daemon, not wrong.
void report_priority_failure(const std::string& reason) {
  static std::atomic<bool> reported{false};
  if (reported.exchange(true)) return;
  log_warning(
      "The snapshot process cannot lower its priority (nice 19): snapshots compete with the "
      "stream and the API for the CPU and the disk. Allow setpriority if a system call filter "
      "refuses it",
      {{"ERROR", reason}});
}

// The forked child, all signals blocked (start() says why): sets itself up,
// writes the snapshot and exits 0, or 1 after telling the parent why.
[[noreturn]] void run_snapshot_child(pid_t parent, int result_fd, const std::string& path,
                                     const FillFile& fill) {
  // Inherited sockets would stay open (a listener bound, a connection the
  // parent closes left without its FIN) until the child exits: keep only the
  // standard streams and the result pipe.
  ::close_range(3, static_cast<unsigned>(result_fd) - 1, 0);
  ::close_range(static_cast<unsigned>(result_fd) + 1, ~0U, 0);
  // The parent's handlers belong to its event loop (asio's write into a pipe
  // the parent reads, and that descriptor is closed now): whatever it catches
  // goes back to the default here, before any signal is let in.
  for (int signo = 1; signo < NSIG; ++signo) {
    struct sigaction action {};
    // glibc keeps two real-time signals to itself (EINVAL): nothing to reset.
    if (::sigaction(signo, nullptr, &action) != 0) continue;
    if (action.sa_handler != SIG_DFL && action.sa_handler != SIG_IGN) ::signal(signo, SIG_DFL);
  }
  // systemd signals every process of the unit: `systemctl kill -s USR1` (what
  // the docs say to run), `-s HUP` or `-s USR2` are meant for the daemon and
  // must not end a snapshot. SIGPIPE: a parent gone is an error on the result
  // pipe, not a death.
  // SIGTERM and SIGINT keep their default and end the child: they mean stop
  // (systemctl stop signals the whole unit; ^C the whole process group), and
  // the stopping daemon waits for this child, then writes its final snapshot
  // in-process, superseding this one. Ignoring them would only make the stop
  // wait for a copy about to be overwritten, against TimeoutStopSec.
  for (int signo : {SIGHUP, SIGUSR1, SIGUSR2, SIGPIPE}) ::signal(signo, SIG_IGN);
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (::getppid() != parent) ::_exit(2);  // the parent died before prctl
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  // Background work: on two cores the copy must not take the CPU (or, by the
  // I/O priority that follows nice, the disk) from the stream and the API. A
  // refusal (the unit's system call filter) costs speed, not the snapshot: the
  // parent hears of it and says so.
  if (::setpriority(PRIO_PROCESS, 0, 19) != 0) {
    tell_parent(result_fd, std::string(kPriorityNotice) + errno_text(errno) + "\n");
  }
  auto status = write_snapshot_file(path, fill);
  if (status.ok()) ::_exit(0);
  tell_parent(result_fd, status.error());
  ::_exit(1);
}

}  // namespace

Result<std::unique_ptr<SnapshotChild>> SnapshotChild::start(const std::string& path,
                                                            FillFile fill) {
#if defined(__SANITIZE_ADDRESS__)
  // GCC 12's AddressSanitizer runtime takes no locks around fork() (LLVM's got
  // pthread_atfork handlers in December 2023): a child forked while another
  // thread is inside the sanitizer's allocator can deadlock in it. Sanitizer
  // builds therefore write the snapshot in this process; the fork itself is
  // exercised by the ordinary build.
  return std::unique_ptr<SnapshotChild>(new SnapshotChild(-1, -1, write_snapshot_file(path, fill)));
#endif
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return Error{errno_text("cannot create a pipe for", path)};
  // Every signal stays blocked from before fork() until the child has set its
  // own dispositions. Otherwise a signal in between runs this process's
  // handlers in the child: asio's write the signal number into a pipe that
  // this process reads, so a SIGTERM meant for the child would stop the daemon.
  // Blocked in this thread only; the daemon's other threads take the signals
  // meant for it meanwhile, or it gets them when the mask is restored.
  sigset_t all, saved;
  sigfillset(&all);
  if (int error = ::pthread_sigmask(SIG_SETMASK, &all, &saved); error != 0) {
    ::close(fds[0]);
    ::close(fds[1]);
    return Error{"cannot block signals to fork for " + path + ": " + errno_text(error)};
  }
  pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid != 0) {
    // This process, whether fork() worked or not: the mask it had. Restoring a
    // mask pthread_sigmask itself returned cannot fail.
    ::pthread_sigmask(SIG_SETMASK, &saved, nullptr);
  }
  if (pid < 0) {
    ::close(fds[0]);
    ::close(fds[1]);
    return Error{errno_text("cannot fork to write", path)};
  }
  if (pid == 0) run_snapshot_child(parent, fds[1], path, fill);
  ::close(fds[1]);
  return std::unique_ptr<SnapshotChild>(new SnapshotChild(pid, fds[0]));
}

Status SnapshotChild::wait(std::chrono::milliseconds limit) {
  if (pid_ < 0) return finished_;
  std::string message;
  char buffer[512];
  bool killed = false;
  auto deadline = std::chrono::steady_clock::now() + limit;
  for (;;) {
    if (!killed) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      pollfd readable{result_fd_, POLLIN, 0};
      int ready = left.count() > 0 ? ::poll(&readable, 1, static_cast<int>(left.count())) : 0;
      if (ready < 0 && errno == EINTR) continue;
      if (ready == 0) {
        // A child that never finishes would stop every later snapshot: end it.
        ::kill(pid_, SIGKILL);
        killed = true;
      }
    }
    ssize_t n = ::read(result_fd_, buffer, sizeof buffer);
    if (n > 0) {
      message.append(buffer, static_cast<std::size_t>(n));
    } else if (n == 0 || errno != EINTR) {
      break;
    }
  }
  if (message.starts_with(kPriorityNotice)) {
    auto end = message.find('\n');
    report_priority_failure(message.substr(kPriorityNotice.size(), end - kPriorityNotice.size()));
    message.erase(0, end == std::string::npos ? message.size() : end + 1);
  }
  int status = 0;
  pid_t reaped;
  do {
    reaped = ::waitpid(pid_, &status, 0);
  } while (reaped < 0 && errno == EINTR);
  pid_ = -1;
  if (reaped < 0) return Error{"cannot wait for the snapshot process: " + errno_text(errno)};
  if (killed) {
    auto after = limit.count() >= 1000 ? std::to_string(limit.count() / 1000) + " s"
                                       : std::to_string(limit.count()) + " ms";
    return Error{"snapshot process still running after " + after + "; killed"};
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return ok_status();
  if (!message.empty()) return Error{message};
  if (WIFSIGNALED(status)) {
    ended_by_stop_signal_ = WTERMSIG(status) == SIGTERM || WTERMSIG(status) == SIGINT;
    return Error{std::string("snapshot process killed by signal ") + ::strsignal(WTERMSIG(status))};
  }
  return Error{"snapshot process exited with status " + std::to_string(WEXITSTATUS(status))};
}

SnapshotChild::~SnapshotChild() {
  if (pid_ > 0) {
    ::kill(pid_, SIGKILL);
    while (::waitpid(pid_, nullptr, 0) < 0 && errno == EINTR) {
    }
  }
  if (result_fd_ >= 0) ::close(result_fd_);
}

namespace {

// What a file is, for a message: "a FIFO".
const char* kind_of_file(mode_t mode) {
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISSOCK(mode)) return "a socket";
  return "of some other kind";
}

// Opens a database (or journal) file for reading: fd -1 when it does not exist,
// an error when it cannot be opened or is not a regular file. O_NONBLOCK keeps
// the open of a FIFO from waiting for a writer; it changes nothing for reading
// a regular file.
Result<int> open_database_file(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
  if (fd < 0) {
    if (errno == ENOENT) return -1;
    return Error{errno_text("cannot open", path)};
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    int error = errno;
    ::close(fd);
    return Error{errno_text("cannot stat", path, error)};
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    return Error{path + " is not a regular file (it is " + kind_of_file(st.st_mode) + ")"};
  }
  return fd;
}

}  // namespace

Result<bool> snapshot_file_exists(const std::string& path) {
  auto opened = open_database_file(path);
  if (!opened.ok()) return Error{opened.error()};
  FileDescriptor fd(*opened);
  return fd.get() >= 0;
}

Result<std::optional<std::string>> read_snapshot_file(const std::string& path) {
  auto opened = open_database_file(path);
  if (!opened.ok()) return Error{opened.error()};
  FileDescriptor fd(*opened);
  if (fd.get() < 0) return std::optional<std::string>{};
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return Error{errno_text("cannot stat", path)};
  std::string bytes;
  bytes.resize(static_cast<std::size_t>(st.st_size));
  std::size_t got = 0;
  while (got < bytes.size()) {
    ssize_t n = ::read(fd.get(), bytes.data() + got, bytes.size() - got);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Error{errno_text("cannot read", path)};
    }
    if (n == 0) break;
    got += static_cast<std::size_t>(n);
  }
  bytes.resize(got);
  return std::optional<std::string>(std::move(bytes));
}

Result<std::optional<std::int32_t>> snapshot_schema_version(const std::string& path) {
  // The file format's header: 100 bytes, starting with this magic string; the
  // user version is the big-endian 4-byte integer at offset 60.
  static constexpr char kMagic[] = "SQLite format 3";  // and its NUL: 16 bytes
  constexpr std::size_t kHeaderSize = 100;
  constexpr std::size_t kUserVersionOffset = 60;
  auto opened = open_database_file(path);
  if (!opened.ok()) return Error{opened.error()};
  FileDescriptor fd(*opened);
  if (fd.get() < 0) return std::optional<std::int32_t>{};
  unsigned char header[kHeaderSize];
  std::size_t got = 0;
  while (got < kHeaderSize) {
    ssize_t n = ::pread(fd.get(), header + got, kHeaderSize - got, static_cast<off_t>(got));
    if (n < 0) {
      if (errno == EINTR) continue;
      return Error{errno_text("cannot read", path)};
    }
    if (n == 0) break;
    got += static_cast<std::size_t>(n);
  }
  if (got < kHeaderSize || std::memcmp(header, kMagic, sizeof kMagic) != 0) {
    return std::optional<std::int32_t>{};
  }
  const unsigned char* v = header + kUserVersionOffset;
  auto bits = (std::uint32_t{v[0]} << 24) | (std::uint32_t{v[1]} << 16) |
              (std::uint32_t{v[2]} << 8) | std::uint32_t{v[3]};
  // SQLite reads it as a signed 32-bit integer.
  return std::optional<std::int32_t>(static_cast<std::int32_t>(bits));
}

Result<std::string> move_aside(const std::string& path) {
  std::string stamp = format_timestamp(now_millis());
  std::erase(stamp, ':');
  std::string target = path + ".corrupt-" + stamp;
  if (::rename(path.c_str(), target.c_str()) != 0) {
    return Error{errno_text("cannot move aside", path)};
  }
  return target;
}

}  // namespace deltatap
