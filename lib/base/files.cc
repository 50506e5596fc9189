#include "base/files.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>

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

  int dir = ::open(parent_of(path).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir < 0) return Error{errno_text("cannot open the directory of", path)};
  int synced = ::fsync(dir);
  int error = errno;
  ::close(dir);
  if (synced != 0) return Error{errno_text("cannot fsync the directory of", path, error)};
  return ok_status();
}

Status write_file_atomically(const std::string& path, std::string_view bytes, mode_t mode) {
  return write_file_atomically(
      path,
      [bytes](const std::string& temp, int fd) -> Status {
        std::size_t written = 0;
        while (written < bytes.size()) {
          ssize_t n = ::write(fd, bytes.data() + written, bytes.size() - written);
          if (n < 0) {
            if (errno == EINTR) continue;
            return Error{errno_text("cannot write", temp)};
          }
          written += static_cast<std::size_t>(n);
        }
        return ok_status();
      },
      mode);
}

void remove_stale_temporaries(const std::string& path) {
  std::string prefix = fs::path(path).filename().string() + ".tmp-";
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(parent_of(path), ec)) {
    if (entry.path().filename().string().starts_with(prefix)) fs::remove(entry.path(), ec);
  }
}

std::uint64_t file_size(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return 0;
  return static_cast<std::uint64_t>(st.st_size);
}

}  // namespace deltatap
