// Snapshot: the database file on disk, written so that a crash at any instant
// leaves either the old file or the new one, never a torn one.
//
// write_snapshot_file: temporary file in the same directory (mode 0600), write,
// fsync, rename over the target, fsync the directory. The directory is created
// with mode 0700 when missing. On failure the old file is untouched and the
// temporary file removed.
//
// These functions block on the disk: the daemon calls them from a worker thread.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "result.h"

namespace deltatap {

Status write_snapshot_file(const std::string& path, std::string_view bytes);

// The file's bytes; nullopt when it does not exist. An error for anything else
// (permission, I/O), which must not be mistaken for "start empty".
Result<std::optional<std::string>> read_snapshot_file(const std::string& path);

// Renames an unusable file to "<path>.corrupt-<UTC time>" so it is kept for a
// person to look at and never overwritten. Returns the new name.
Result<std::string> move_aside(const std::string& path);

// Size of the file in bytes, 0 when missing.
std::uint64_t file_size(const std::string& path);

// Creates the parent directory of `path` (and its parents) with mode 0700.
Status ensure_parent_directory(const std::string& path);

}  // namespace deltatap
