// Journal: every stored delta is also appended to data/sessions.journal, so a
// crash loses at most the last group-commit interval instead of everything since
// the last snapshot.
//
// Records are length-prefixed and CRC-checked; a torn last record (a crash in
// mid-write) is detected and ignored on replay, never a reason to refuse the rest.
// When a snapshot starts, the active file is rotated into a numbered segment
// ("sessions.journal.N"); once a durable snapshot holds every id a segment holds,
// the segment is deleted. Records are never rewritten in place.
//
// Which files are segments: the data directory is the operator's too, and a
// "sessions.journal.20251110" may well be a dated backup. A file is replayed and
// deleted only if deltatap wrote it as a segment: each journal file starts with a
// header (8 magic bytes, then the u64 number of the segment it will become), and
// a segment's name must be "sessions.journal.N" with N exactly that number. A
// copy of the active file or of a segment under any other name fails the test.
// (The number is written when the file is created; the only rewrite in place is
// of that number, in the active file a previous run left, which this run
// numbers anew at open.)
// Segments of the previous version have no header; one is taken for ours when
// N <= kMaxLegacySegment (it numbered them from 1 up, one per snapshot: ten
// million is 19 years of one-minute snapshots, while a date such as 20251110
// is above it). Every other "sessions.journal.*" file is left alone and
// reported (JournalReplay::foreign), never replayed, renamed or deleted.
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

// Header-less segments named up to this are the previous version's (see above).
inline constexpr std::uint64_t kMaxLegacySegment = 9'999'999;

// A "sessions.journal.*" file that is not one of deltatap's segments.
struct ForeignJournalFile {
  std::string path;
  std::string why;  // one sentence: what about it says it is not ours
};

struct JournalReplay {
  // In journal order, ids above `after_id` only, exactly as the records hold
  // them: a CRC proves the bytes are the ones written, not that they are a
  // delta the parser would have let through. The caller validates them.
  std::vector<StoredDelta> deltas;
  // The lists of live sessions (reconciliation answers) whose ids reach above
  // `after_id`, each with the number of deltas in `deltas` that arrived before it.
  struct Reconcile {
    std::size_t after_deltas = 0;
    LiveSessionList list;
  };
  std::vector<Reconcile> reconciles;
  std::uint64_t records = 0;        // all intact records read
  std::uint64_t torn = 0;           // segments whose tail was torn or corrupt
  std::vector<std::string> warnings;
  std::vector<ForeignJournalFile> foreign;  // left alone, for the caller to report once
};

// Reads every segment of ours then the active file; keeps deltas with id > after_id.
Result<JournalReplay> read_journal(const std::string& journal_path, std::int64_t after_id);

struct JournalWrite {
  Status status = ok_status();
  std::uint64_t bytes = 0;          // written by this group
  std::uint64_t file_bytes = 0;     // journal bytes on disk after it
};

class Journal {
 public:
  // Moves an existing active file into a segment (it is replayed, not appended
  // to: its tail may be torn) and starts a new active file. Files that are not
  // deltatap's segments are neither counted nor touched (see above).
  static Result<std::unique_ptr<Journal>> open(boost::asio::io_context& io,
                                               const std::string& journal_path,
                                               std::function<void(const JournalWrite&)> on_written);
  ~Journal();  // writes and syncs what is buffered, then stops the worker

  void append(const Delta& delta, std::int64_t id, const std::string& created_at);
  // As append() for each row, under one lock.
  void append(std::span<const StoredDelta> rows);
  // A list of live sessions; its ids count as the journal's up to list.last_id().
  void append(const LiveSessionList& list);
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
