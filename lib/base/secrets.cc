#include "base/secrets.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>

#include "base/files.h"
#include "base/json_text.h"

namespace deltatap {

Result<std::string> read_secret_file(const std::string& path, bool require_private) {
  std::string name = json_quoted(path);
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) return Error{errno_text("cannot read", name)};
  // Closes the descriptor on the way out; the message (and the errno in it) is
  // built before.
  auto fail = [fd](std::string message) -> Error {
    ::close(fd);
    return Error{std::move(message)};
  };
  struct stat st {};
  if (::fstat(fd, &st) != 0) return fail(errno_text("cannot stat", name));
  if (!S_ISREG(st.st_mode)) {
    return fail("cannot read " + name +
                ": not a regular file (expected a file holding the secret)");
  }
  if (require_private && (st.st_mode & 0044) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    return fail("refusing " + name + ": it is readable by group or others (mode " + mode +
                "; expected mode 0600 or 0400: chmod 600 " + path + ")");
  }
  std::string text;
  char buffer[4096];
  for (;;) {
    ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return fail(errno_text("cannot read", name));
    if (n == 0) break;
    text.append(buffer, static_cast<std::size_t>(n));
    if (text.size() > kMaxSecretFileBytes) {
      return fail("cannot read " + name + ": larger than " +
                  std::to_string(kMaxSecretFileBytes / 1024) +
                  " KiB (expected a file holding just the secret)");
    }
  }
  ::close(fd);
  if (text.ends_with("\r\n")) text.resize(text.size() - 2);
  else if (text.ends_with('\n')) text.pop_back();
  return text;
}

}  // namespace deltatap
