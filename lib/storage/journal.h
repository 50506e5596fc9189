// Journal: every stored delta is also appended to data/sessions.journal, so a
// crash loses at most the last group-commit interval instead of everything since
// the last snapshot.
//
// Records are length-prefixed and CRC-checked; a torn last record (a crash in
// mid-write) is detected and ignored on replay, never a reason to refuse the rest.
// When a snapshot starts, the active file is rotated into a numbered segment
// ("sessions.journal.N"); once a durable snapshot holds every id a segment holds,
// the segment is deleted. Nothing is ever rewritten in place.
//
// Ids are assigned before the append, on the stream lane, and the store lane
// stores them a moment later: a snapshot taken meanwhile does not hold the last
// ids of the segment rotated for it. So a segment is dropped by the ids it
// holds (drop_covered), never merely because a snapshot started after it.
//
// Threads: append() and flush() are called by the stream lane, rotate() and
// drop_covered() by the store lane; they touch only memory, under one mutex.
// The file work runs in order on the journal's own worker thread, whose results
// come back to `on_written` through the io_context given to open().
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "base/delta.h"
#include "base/result.h"

namespace boost::asio {
class io_context;
}

namespace deltatap {

// "data/sessions.sqlite" -> "data/sessions.journal".
std::string journal_path_for(const std::string& database_path);

struct JournalReplay {
  std::vector<StoredDelta> deltas;  // in journal order, ids above `after_id` only
  std::uint64_t records = 0;        // all intact records read
  std::uint64_t torn = 0;           // segments whose tail was torn or corrupt
  std::vector<std::string> warnings;
};

// Reads every segment then the active file; keeps deltas with id > after_id.
Result<JournalReplay> read_journal(const std::string& journal_path, std::int64_t after_id);

struct JournalWrite {
  Status status = ok_status();
  std::uint64_t bytes = 0;          // written by this group
  std::uint64_t file_bytes = 0;     // journal bytes on disk after it
};

class Journal {
 public:
  // Moves an existing active file into a segment (it is replayed, not appended
  // to: its tail may be torn) and starts a new active file.
  static Result<std::unique_ptr<Journal>> open(boost::asio::io_context& io,
                                               const std::string& journal_path,
                                               std::function<void(const JournalWrite&)> on_written);
  ~Journal();  // writes and syncs what is buffered, then stops the worker

  void append(const Delta& delta, std::int64_t id, const std::string& created_at);
  // As append() for each row, under one lock.
  void append(std::span<const StoredDelta> rows);
  // Hands the buffered records to the worker: write, then fdatasync.
  void flush();
  // Everything appended so far goes to a closed segment; returns its number.
  std::uint64_t rotate();
  // A snapshot holding every id up to `last_id` is durable: closed segments
  // whose ids are all at most `last_id` are deleted.
  void drop_covered(std::int64_t last_id);
  std::uint64_t buffered_bytes() const;

 private:
  struct Impl;
  explicit Journal(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace deltatap
