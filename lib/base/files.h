// Files: the project's one way to replace a file atomically, to make private
// directories, and to turn errno into text.
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
#include <string>
#include <string_view>

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

// Size of the file in bytes, 0 when it is missing or cannot be stat'd.
std::uint64_t file_size(const std::string& path);

}  // namespace deltatap
