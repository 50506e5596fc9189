// Files: the project's one way to replace a file atomically, to make private
// directories, to check that a directory is not open to other users, to lock a
// file, and to turn errno into text.
//
// write_file_atomically: a temporary file "<path>.tmp-XXXXXX" in the same
// directory (made by mkstemp, so no one else can have it open), filled, given
// its mode, fsync'd, renamed over `path`, and the directory fsync'd. A crash at
// any instant leaves either the old file or the new one, never a torn one; what
// a crash can leave is a temporary, which remove_stale_temporaries() clears.
//
// Thread safety: every function here may be called from any thread; they keep
// no state (errno_text uses strerror_r, not strerror). Two writers of the same
// path at once each produce a whole file and the last rename wins. They do not
// log and hold no locks of their own, so storage/snapshot.h runs
// write_file_atomically in a forked child.
#pragma once

#include <sys/types.h>

#include <cerrno>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "base/result.h"

namespace deltatap {

// The text of an errno value: "No such file or directory".
std::string errno_text(int error);

// "<what> <path>: <text of error>", e.g. "cannot open /x: No such file or
// directory". `error` defaults to errno as it is at the call.
std::string errno_text(std::string_view what, std::string_view path, int error = errno);

// Creates `directory` and every missing parent with mode 0700 (less if the
// umask says so); directories that exist are left as they are. On error (a
// component is not a directory, no permission) the message names the
// directory that could not be made.
Status make_private_directories(const std::string& directory);

// Writes all of `bytes` to `fd`, retrying short writes and EINTR. On error the
// message is "cannot write <path>: <errno text>"; what was written stays written.
Status write_all(int fd, std::string_view bytes, std::string_view path);

// make_private_directories() for the directory that holds `path` ("." when
// `path` has no directory part).
Status ensure_parent_directory(const std::string& path);

// Fills the temporary file. It gets the temporary's path and an open,
// writable descriptor of it, and may write through either (SQLite's backup API
// opens the path itself). It must not close the descriptor.
using FillTemporary = std::function<Status(const std::string& temp_path, int fd)>;

// Writes `path` atomically (above). The parent directory must exist. The new
// file gets `mode` exactly (the umask does not apply). On success the new file
// is in place and durable. On error the old file (if any) is untouched, the
// temporary is removed, and the message says which step failed and on which
// file; `fill`'s own error is returned as it is. The one exception is a failed
// fsync of the directory: that is an error too, though the new file is in place
// by then (its rename may not survive a crash).
Status write_file_atomically(const std::string& path, const FillTemporary& fill,
                             mode_t mode = 0600);
Status write_file_atomically(const std::string& path, std::string_view bytes,
                             mode_t mode = 0600);

// Removes the "<path>.tmp-*" temporaries that a process which died while
// writing `path` left behind. Errors are ignored: what cannot be removed stays.
void remove_stale_temporaries(const std::string& path);

// fsyncs the file, or the directory, at `path` (a directory's fsync makes the
// names in it durable). The error names the path and the failed step.
Status fsync_path(const std::string& path, bool directory);

// Size of the file in bytes, 0 when it is missing or cannot be stat'd.
std::uint64_t file_size(const std::string& path);

// The directory that holds `path` ("." when `path` has no directory part).
std::string directory_of(const std::string& path);

// An error naming `directory`, its mode and the fix ("chmod 700 <absolute
// path>") when users other than its owner may create, remove or rename entries
// in it: group or others have write permission (a sticky bit does not help: it
// still lets them create files, such as one a daemon would read). With POSIX
// ACLs the group bits are the ACL mask, so a named user's write access counts
// too. A missing directory is fine (the caller makes it private); a path that
// is not a directory is an error. It checks, never changes, the mode.
Status check_not_writable_by_others(const std::string& directory);

// An exclusive flock(2) on a lock file, held until the FileLock is destroyed
// (or the process ends: the kernel drops it with the last descriptor, so a
// crash never leaves a stale lock behind, unlike a bare PID file).
//
// The descriptor is opened O_CLOEXEC: no program this process executes keeps
// it. A child made by fork() shares the open file description and with it the
// lock, until it closes its copy or exits; storage/snapshot.h's child closes
// every inherited descriptor first thing and dies with its parent, so it holds
// the lock no longer than that, and never after the parent is gone. (Were a
// child to keep it, that would err on the safe side: no second process could
// take the lock while a write of the first might still land.)
struct FileLockAttempt;

class FileLock {
 public:
  FileLock(FileLock&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;
  FileLock& operator=(FileLock&&) = delete;
  ~FileLock();  // closes the descriptor: the lock is released; the file stays

 private:
  explicit FileLock(int fd) : fd_(fd) {}
  friend Result<FileLockAttempt> try_lock_file(const std::string& path);
  int fd_;
};

// What try_lock_file found: the lock, or the process that holds it.
struct FileLockAttempt {
  std::optional<FileLock> lock;  // empty: another process holds it
  // When `lock` is empty: the holder's PID as it wrote it into the file; empty
  // when it wrote none (yet) or something that is not a PID.
  std::optional<pid_t> holder;
};

// Opens (creating it with mode 0600) and locks `path` without waiting. The
// lock file must be a regular file and not a symbolic link (so one planted in
// the directory cannot point the open elsewhere). On success the file holds
// this process's PID as decimal text and a newline, for the next one to name
// it. Another holder is not an error: the attempt says who it is. An error is
// a file that cannot be opened, is not a regular file, or cannot be locked.
Result<FileLockAttempt> try_lock_file(const std::string& path);

}  // namespace deltatap
