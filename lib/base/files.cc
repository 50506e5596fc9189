#include "base/files.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <charconv>
#include <chrono>
#include <climits>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <thread>

namespace deltatap {

namespace fs = std::filesystem;

namespace {

std::string parent_of(const std::string& path) {
  auto parent = fs::path(path).parent_path();
  return parent.empty() ? "." : parent.string();
}

bool is_directory(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

}  // namespace

std::string errno_text(int error) {
  // The GNU strerror_r (glibc's with _GNU_SOURCE, which g++ always defines):
  // it returns the text, in `buffer` or static, and unlike strerror() it is
  // safe from any thread.
  char buffer[256];
  return ::strerror_r(error, buffer, sizeof buffer);
}

std::string errno_text(std::string_view what, std::string_view path, int error) {
  std::string text(what);
  text += ' ';
  text += path;
  text += ": ";
  text += errno_text(error);
  return text;
}

Status write_all(int fd, std::string_view bytes, std::string_view path) {
  while (!bytes.empty()) {
    ssize_t n = ::write(fd, bytes.data(), bytes.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return Error{errno_text("cannot write", path)};
    }
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
  return ok_status();
}

Status make_private_directories(const std::string& directory) {
  if (is_directory(directory)) return ok_status();
  // Parents we create are private too: they hold nothing else.
  fs::path partial;
  for (const auto& part : fs::path(directory)) {
    partial /= part;
    const std::string& name = partial.native();
    if (is_directory(name) || ::mkdir(name.c_str(), 0700) == 0) continue;
    int error = errno;
    // EEXIST: made meanwhile by someone else (fine), or a file in the way.
    if (error == EEXIST) error = is_directory(name) ? 0 : ENOTDIR;
    if (error != 0) return Error{errno_text("cannot create directory", name, error)};
  }
  return ok_status();
}

Status ensure_parent_directory(const std::string& path) {
  return make_private_directories(parent_of(path));
}

Status write_file_atomically(const std::string& path, const FillTemporary& fill, mode_t mode) {
  const std::string pattern = path + ".tmp-XXXXXX";
  std::string temp = pattern;  // mkostemp fills in the Xs, even when it fails
  int fd = ::mkostemp(temp.data(), O_CLOEXEC);
  if (fd < 0) return Error{errno_text("cannot create", pattern)};
  // `message` is built (errno read) before this closes and unlinks anything.
  auto fail = [&](std::string message) -> Status {
    if (fd >= 0) ::close(fd);
    ::unlink(temp.c_str());
    return Error{std::move(message)};
  };
  if (::fchmod(fd, mode) != 0) return fail(errno_text("cannot set the mode of", temp));
  if (auto s = fill(temp, fd); !s.ok()) return fail(s.error());
  if (::fsync(fd) != 0) return fail(errno_text("cannot fsync", temp));
  int closed = ::close(fd);
  fd = -1;
  if (closed != 0) return fail(errno_text("cannot close", temp));
  if (::rename(temp.c_str(), path.c_str()) != 0) return fail(errno_text("cannot rename to", path));

  return fsync_path(parent_of(path), true);
}

Status write_file_atomically(const std::string& path, std::string_view bytes, mode_t mode) {
  return write_file_atomically(
      path,
      [bytes](const std::string& temp, int fd) -> Status { return write_all(fd, bytes, temp); },
      mode);
}

void remove_stale_temporaries(const std::string& path) {
  std::string prefix = fs::path(path).filename().string() + ".tmp-";
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(parent_of(path), ec)) {
    if (entry.path().filename().string().starts_with(prefix)) fs::remove(entry.path(), ec);
  }
}

Status fsync_path(const std::string& path, bool directory) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | (directory ? O_DIRECTORY : 0));
  if (fd < 0) return Error{errno_text("cannot open", path)};
  int synced = ::fsync(fd);
  int error = errno;
  ::close(fd);
  if (synced != 0) return Error{errno_text("cannot fsync", path, error)};
  return ok_status();
}

std::uint64_t file_size(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return 0;
  return static_cast<std::uint64_t>(st.st_size);
}

std::string directory_of(const std::string& path) { return parent_of(path); }

namespace {

std::string octal_mode(mode_t mode) {
  char text[8];
  std::snprintf(text, sizeof text, "%04o", static_cast<unsigned>(mode & 07777));
  return text;
}

// `path` as a shell word, so that the fix can be pasted as it is.
std::string shell_word(const std::string& path) {
  bool plain = !path.empty() && path.find_first_not_of(
                                    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                    "0123456789/._-+,:@%") == std::string::npos;
  if (plain) return path;
  std::string quoted = "'";
  for (char c : path) quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return quoted + "'";
}

// The PID a holder wrote into its lock file: decimal digits, then a newline
// (without it the write may not be complete yet).
std::optional<pid_t> read_lock_holder(int fd) {
  char text[32];
  ssize_t n = ::pread(fd, text, sizeof text, 0);
  if (n < 2 || text[n - 1] != '\n') return std::nullopt;
  long long pid = 0;
  const char* end = text + n - 1;
  auto [stop, error] = std::from_chars(text, end, pid);
  if (error != std::errc() || stop != end || pid <= 0 || pid > INT_MAX) return std::nullopt;
  return static_cast<pid_t>(pid);
}

}  // namespace

Status check_not_writable_by_others(const std::string& directory) {
  struct stat st {};
  if (::stat(directory.c_str(), &st) != 0) {
    if (errno == ENOENT) return ok_status();
    return Error{errno_text("cannot check the mode of", directory)};
  }
  if (!S_ISDIR(st.st_mode)) return Error{directory + " is not a directory"};
  const mode_t writable = st.st_mode & (S_IWGRP | S_IWOTH);
  if (writable == 0) return ok_status();
  std::string who = writable == (S_IWGRP | S_IWOTH) ? "its group and every other user"
                    : (writable & S_IWGRP)          ? "its group"
                                                    : "every other user";
  std::error_code ec;
  std::string shown = fs::absolute(directory, ec).lexically_normal().string();
  if (ec || shown.empty()) shown = directory;
  if (shown.size() > 1 && shown.back() == '/') shown.pop_back();
  return Error{"directory " + directory + " has mode " + octal_mode(st.st_mode) + ": " + who +
               " can write to it, and so could plant or replace the files in it; make it "
               "private with: chmod 700 " +
               shell_word(shown)};
}

FileLock::~FileLock() {
  if (fd_ >= 0) ::close(fd_);
}

Result<FileLockAttempt> try_lock_file(const std::string& path) {
  // O_NONBLOCK: a FIFO planted at the path must not hang the open (it is
  // refused below). O_NOFOLLOW: a symbolic link is refused, not followed.
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY,
                  0600);
  if (fd < 0) {
    if (errno == ELOOP) return Error{"lock file " + path + " is a symbolic link"};
    return Error{errno_text("cannot open the lock file", path)};
  }
  FileLock owned(fd);
  struct stat st {};
  if (::fstat(fd, &st) != 0) return Error{errno_text("cannot stat the lock file", path)};
  if (!S_ISREG(st.st_mode)) return Error{"lock file " + path + " is not a regular file"};
  while (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    if (errno == EINTR) continue;
    if (errno != EWOULDBLOCK) return Error{errno_text("cannot lock", path)};
    // The holder writes its PID right after it takes the lock: a contender
    // that comes in between waits that moment (bounded) to be able to name it.
    FileLockAttempt held;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(200);
    while (!(held.holder = read_lock_holder(fd)) && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return held;
  }
  // The lock protects; the PID only names the holder in another process's
  // message. So a disk too full for these few bytes does not fail the lock:
  // the next contender then says it cannot tell who holds it.
  std::string text = std::to_string(::getpid()) + "\n";
  [[maybe_unused]] bool recorded =
      ::ftruncate(fd, 0) == 0 &&
      ::pwrite(fd, text.data(), text.size(), 0) == static_cast<ssize_t>(text.size());
  FileLockAttempt taken;
  taken.lock.emplace(std::move(owned));
  return taken;
}

}  // namespace deltatap
