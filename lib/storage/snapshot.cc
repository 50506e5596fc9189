#include "storage/snapshot.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>

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

Status write_snapshot_file(const std::string& path, const FillFile& fill) {
  if (auto s = ensure_parent_directory(path); !s.ok()) return s;
  // SQLite writes the temporary by name; the descriptor is for the fsync.
  return write_file_atomically(path, [&fill](const std::string& temp, int) { return fill(temp); });
}

Status write_snapshot_file(const std::string& path, std::string_view bytes) {
  if (auto s = ensure_parent_directory(path); !s.ok()) return s;
  return write_file_atomically(path, bytes);
}

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
  pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid < 0) {
    ::close(fds[0]);
    ::close(fds[1]);
    return Error{errno_text("cannot fork to write", path)};
  }
  if (pid == 0) {
    // Inherited sockets would stay open (a listener bound, a connection the
    // parent closes left without its FIN) until the child exits: keep only the
    // standard streams and the result pipe.
    int result_fd = fds[1];
    ::close_range(3, static_cast<unsigned>(result_fd) - 1, 0);
    ::close_range(static_cast<unsigned>(result_fd) + 1, ~0U, 0);
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(2);  // the parent died before prctl
    // systemd signals the whole control group on stop: the child must die of
    // SIGTERM, not run the parent's handlers.
    for (int signo : {SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGPIPE}) ::signal(signo, SIG_DFL);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    // Background work: on two cores the copy must not take the CPU (or, by the
    // I/O priority that follows nice, the disk) from the stream and the API.
    ::setpriority(PRIO_PROCESS, 0, 19);
    auto status = write_snapshot_file(path, fill);
    if (status.ok()) ::_exit(0);
    const std::string& text = status.error();
    [[maybe_unused]] auto n = ::write(result_fd, text.data(), text.size());
    ::_exit(1);
  }
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
