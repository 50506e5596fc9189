// Journal: every stored delta is also appended to data/sessions.journal, so a
// crash loses at most the last group-commit interval instead of everything since
// the last snapshot.
//
// Records are length-prefixed and CRC-checked; a torn last record (a crash in
// mid-write) is detected and ignored on replay, never a reason to refuse the rest.
// When a snapshot starts, the active file is rotated into a numbered segment
// ("sessions.journal.N"); once that snapshot is durable the segments it covers
// are deleted. Nothing is ever rewritten in place.
//
// Threads: append()/flush()/rotate()/drop_through() are called on the io thread
// and only touch memory; the file work runs in order on the journal's own worker
// thread, whose results come back to `on_written` on the io thread.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
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
  // Hands the buffered records to the worker: write, then fdatasync.
  void flush();
  // Everything appended so far goes to a closed segment; returns its number.
  std::uint64_t rotate();
  // A snapshot holding everything up to segment `segment` is durable.
  void drop_through(std::uint64_t segment);
  std::uint64_t buffered_bytes() const;

 private:
  struct Impl;
  explicit Journal(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace deltatap
