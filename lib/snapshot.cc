#include "snapshot.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "timestamp.h"

namespace deltatap {

namespace fs = std::filesystem;

namespace {

std::string errno_text(std::string_view what, const std::string& path) {
  return std::string(what) + " " + path + ": " + std::strerror(errno);
}

class FileDescriptor {
 public:
  explicit FileDescriptor(int fd) : fd_(fd) {}
  ~FileDescriptor() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const { return fd_; }
  int release() { return std::exchange(fd_, -1); }

 private:
  int fd_;
};

std::string parent_of(const std::string& path) {
  auto parent = fs::path(path).parent_path();
  return parent.empty() ? "." : parent.string();
}

}  // namespace

Status ensure_parent_directory(const std::string& path) {
  auto parent = fs::path(parent_of(path));
  std::error_code ec;
  if (fs::is_directory(parent, ec)) return ok_status();
  // Parents we create are private too: they hold nothing else.
  fs::path partial;
  for (const auto& part : parent) {
    partial /= part;
    if (fs::is_directory(partial, ec)) continue;
    if (::mkdir(partial.c_str(), 0700) != 0 && errno != EEXIST) {
      return Error{errno_text("cannot create directory", partial.string())};
    }
  }
  return ok_status();
}

Status write_snapshot_file(const std::string& path, std::string_view bytes) {
  if (auto s = ensure_parent_directory(path); !s.ok()) return s;
  std::string temp = path + ".tmp-XXXXXX";
  FileDescriptor fd(::mkstemp(temp.data()));  // mkstemp creates it 0600
  if (fd.get() < 0) return Error{errno_text("cannot create", temp)};
  auto fail = [&](std::string message) -> Status {
    ::unlink(temp.c_str());
    return Error{std::move(message)};
  };
  std::size_t written = 0;
  while (written < bytes.size()) {
    ssize_t n = ::write(fd.get(), bytes.data() + written, bytes.size() - written);
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail(errno_text("cannot write", temp));
    }
    written += static_cast<std::size_t>(n);
  }
  if (::fsync(fd.get()) != 0) return fail(errno_text("cannot fsync", temp));
  if (::close(fd.release()) != 0) return fail(errno_text("cannot close", temp));
  if (::rename(temp.c_str(), path.c_str()) != 0) return fail(errno_text("cannot rename to", path));
  FileDescriptor dir(::open(parent_of(path).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  // The rename is done; a directory we cannot fsync only weakens durability.
  if (dir.get() < 0 || ::fsync(dir.get()) != 0) {
    return Error{errno_text("cannot fsync directory of", path)};
  }
  return ok_status();
}

Result<std::optional<std::string>> read_snapshot_file(const std::string& path) {
  FileDescriptor fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) {
    if (errno == ENOENT) return std::optional<std::string>{};
    return Error{errno_text("cannot open", path)};
  }
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

Result<std::string> move_aside(const std::string& path) {
  std::string stamp = format_timestamp(now_millis());
  std::erase(stamp, ':');
  std::string target = path + ".corrupt-" + stamp;
  if (::rename(path.c_str(), target.c_str()) != 0) {
    return Error{errno_text("cannot move aside", path)};
  }
  return target;
}

std::uint64_t file_size(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return 0;
  return static_cast<std::uint64_t>(st.st_size);
}

}  // namespace deltatap
