// Snapshot: the database file on disk, written so that a crash at any instant
// leaves either the old file or the new one, never a torn one.
//
// write_snapshot_file: base/files.h's write_file_atomically (temporary file in
// the same directory, mode 0600, filled, fsync, rename over the target, fsync
// the directory), after creating the directory with mode 0700 when missing. On
// failure the old file is untouched and the temporary file removed.
//
// Each write also leaves "<path>.digest" (snapshot_digest_path): the new
// file's size and hash (base/digest.h's file_digest), taken from its bytes
// before the fsync and written atomically after the rename. A start uses it to
// skip PRAGMA quick_check, which reads every page through SQLite (3.8 s at
// 10,000,000 deltas, against 0.4 s for the hash): a file that matches its
// digest is, byte for byte, a file a snapshot wrote and checked. A crash
// between the two renames leaves the old digest beside the new file; it does
// not match, and that start runs quick_check as it would with no digest.
//
// The file helpers the daemon uses around snapshots (ensure_parent_directory,
// remove_stale_temporaries, file_size) are base/files.h's, included here.
//
// These functions block on the disk. SnapshotChild runs one in a forked
// process, so that the daemon's thread pauses only for fork() itself.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "base/files.h"
#include "base/result.h"

namespace deltatap {

// `fill` writes the new content to the temporary path it is given (SQLite's
// backup API opens the file by name).
using FillFile = std::function<Status(const std::string& temp_path)>;

Status write_snapshot_file(const std::string& path, const FillFile& fill);
Status write_snapshot_file(const std::string& path, std::string_view bytes);

// "<path>.digest".
std::string snapshot_digest_path(const std::string& path);
// Whether the file at `path` has the size and hash its digest file records;
// false when either file is missing or cannot be read (never an error: the
// caller then checks the file the long way).
bool snapshot_matches_digest(const std::string& path);

// write_snapshot_file(path, fill) in a child process made by fork(). The child
// sees this process's memory as it was at fork() (copy-on-write), so `fill` may
// read a database that this process goes on changing. The child runs only
// `fill` and system calls, never the parent's event loop, logging or signal
// handlers; it closes every inherited descriptor but the standard streams
// (`fill` opens what it writes), runs at nice 19, and dies with its parent
// (PR_SET_PDEATHSIG): a snapshot never lands after the process that started it
// is gone. In AddressSanitizer builds there is no child (see snapshot.cc): the
// file is written by start() itself.
//
// Signals: systemd sends `systemctl kill` and `systemctl stop` signals to every
// process of the unit. The child ignores SIGHUP, SIGUSR1, SIGUSR2 and SIGPIPE
// (a reload or a snapshot request is the daemon's business) and dies of
// SIGTERM and SIGINT (a stop: the daemon writes its final snapshot itself and
// should not wait for this one). No signal can reach the child with this
// process's handlers in place: start() blocks every signal across fork().
//
// A child that cannot lower its priority (a seccomp filter refusing
// setpriority) still writes the snapshot; wait() logs that once per process.
class SnapshotChild {
 public:
  static Result<std::unique_ptr<SnapshotChild>> start(const std::string& path, FillFile fill);
  ~SnapshotChild();  // kills and reaps a child still running
  SnapshotChild(const SnapshotChild&) = delete;
  SnapshotChild& operator=(const SnapshotChild&) = delete;

  // Blocks until the child exits; its outcome. A child still running after
  // `limit` is killed and reported as failed. Call once.
  Status wait(std::chrono::milliseconds limit);
  // After wait(): whether the child was ended by SIGTERM or SIGINT from
  // outside (a stop sent to the whole unit), rather than failing on its own.
  bool ended_by_stop_signal() const { return ended_by_stop_signal_; }

 private:
  SnapshotChild(pid_t pid, int result_fd, Status finished = ok_status())
      : pid_(pid), result_fd_(result_fd), finished_(std::move(finished)) {}
  pid_t pid_;      // -1 when the snapshot was written in this process (sanitizer builds)
  int result_fd_;  // the child's error text, if any; EOF when it exits
  Status finished_;
  bool ended_by_stop_signal_ = false;
};

// Whether the file exists; an error when it exists but cannot be read, or is
// not a regular file. Something else at the database path (a FIFO, a device,
// a directory) is refused, never opened for reading: a FIFO would block the
// open until a writer came, a device would never end. The open does not wait
// (O_NONBLOCK) so that this answer itself cannot hang.
Result<bool> snapshot_file_exists(const std::string& path);

// The file's bytes; nullopt when it does not exist. An error for anything else
// (permission, I/O, not a regular file), which must not be mistaken for "start
// empty". storage/journal.h reads its files with it too, so a FIFO at a journal
// path is refused the same way.
Result<std::optional<std::string>> read_snapshot_file(const std::string& path);

// The schema version (PRAGMA user_version) recorded in the header of the
// SQLite file at `path`, read from the header bytes without SQLite, so the
// file is only read: no connection, no journal or lock files, no recovery.
// nullopt when the file is missing or is not a SQLite database (shorter than
// its 100-byte header or without its magic string): that is for loading to
// find out. An error as for read_snapshot_file. The daemon reads it before
// loading, to tell "written by a newer deltatap" (leave it alone, refuse to
// start) from "unusable" (move it aside). A database in WAL mode could hold a
// newer version in its -wal file only; deltatap never writes one.
Result<std::optional<std::int32_t>> snapshot_schema_version(const std::string& path);

// Renames an unusable file to "<path>.corrupt-<UTC time>" so it is kept for a
// person to look at and never overwritten. Returns the new name.
Result<std::string> move_aside(const std::string& path);

}  // namespace deltatap
