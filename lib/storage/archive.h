// Archive: moving the deltas retention removes into monthly archive files
// ([retention] archive = on; design.md, "Capacity"; docs/archives.md) instead
// of deleting them, and bounding those files ([retention] archive_days).
//
// A move goes in batches of at most ArchiveOptions::batch_rows deltas (and
// batch_bytes of their stored states), each of one month (the UTC month of
// created_at, as retention goes by created_at), and each batch in steps:
//   1. its rows are read from the store (oldest first, after the batch
//      before), the file of its month opened and the rows made ready for it
//      (below) on the store's thread;
//   2. they are written into that file (archive_file.h) with INSERT OR IGNORE
//      in one transaction, which SQLite has on disk when COMMIT returns; the
//      file (and its directory when the file is new) is then fsync'd. This
//      step touches the file alone and runs on a thread of its own, beside
//      step 3 of the batch before;
//   3. only once step 2 has returned are the same rows deleted from the
//      store, through its deletion path (the ledger, the counts and
//      references stay right), on the store's thread.
// A crash between 2 and 3 loses nothing (the rows are in the file and still in
// the store) and duplicates nothing: the next move writes them again, ignored
// (ids are unique), then deletes them; a reader meanwhile (archive_reader.h)
// shows each id once.
//
// State values are copied as they are stored: a BLOB (state_codec.h) stays
// encoded and the dictionary it names is copied with it (a dictionary of the
// file under the same id but other bytes: the value is decoded and encoded
// again with the file's own). TEXT values are compressed with the file's own
// dictionary, trained on the first batch that brings at least
// kMinArchiveTrainingStates TEXT states to a file that has none; before that
// they stay TEXT. A before_ref naming a row that will not be in the same file
// is materialised (the state copied in, before_ref NULL); a TEXT before state
// equal to the TEXT after state of its session's row before it in the same
// batch becomes a before_ref to that row (what compression does in the store).
//
// Deltas held for a sink (Store::hold_deltas_after) are neither archived nor
// deleted. After a move, the files of months that can receive no more rows
// (the month ended before the cutoff and the store keeps none of its rows)
// are sealed: mode 0440. With keep_days > 0, sealed files whose newest
// created_at is older than keep_days are deleted.
//
// The functions here are called on the store's thread; step 2 of
// archive_expired runs on a thread it starts and joins before the next step
// 1 and before it returns. Errors are values; what was moved before an error
// stays moved, and a batch written but not deleted is taken again next time.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "base/result.h"
#include "base/timestamp.h"

namespace deltatap {

class Store;

inline constexpr std::size_t kMinArchiveTrainingStates = 400;
inline constexpr std::size_t kMaxArchiveTrainingStates = 4'000;

struct ArchiveOptions {
  std::string directory;             // archive_directory_for([storage] path)
  // A batch's bounds: deltas per transaction (and per delete), and the bytes
  // of their states held in memory while it is written. Bigger batches cost
  // fewer references materialised in the store at each batch's edge (one for
  // each session that goes on past it); one batch's rows are in memory at a time.
  std::int64_t batch_rows = 200'000;
  std::int64_t batch_bytes = 128 << 20;
  int keep_days = 0;                 // [retention] archive_days; 0 keeps every file
  // A test hook, called on the store's thread after each batch is durable
  // in its file and before it is deleted from the store (the next batch may
  // be being written meanwhile) (the service's DELTATAP_TEST_ARCHIVE_KILL
  // kills the process there). Empty in production.
  std::function<void()> after_write;
};

// One batch written to its file, not yet deleted from the store: the
// deletion of exactly these rows is delete_archived_batch's.
struct ArchivedBatch {
  std::string month;
  std::string path;
  std::int64_t rows = 0;
  // The batch is the store's rows with created_at in [from, to), id <= hold,
  // and (created_at, id) <= (last_created_at, last_id).
  std::string from, to;
  std::int64_t hold = 0;
  std::string last_created_at;
  std::int64_t last_id = 0;
  bool file_created = false;
};

// Steps 1 and 2 for the first batch of deltas stored before `older_than`:
// written into its month's file, durably. nullopt when nothing (not held) is due.
Result<std::optional<ArchivedBatch>> write_next_batch(Store& store, const ArchiveOptions& options,
                                                      TimePoint older_than);
// Deletes the batch's rows from the store; returns how many went.
Result<std::int64_t> delete_archived_batch(Store& store, const ArchivedBatch& batch);

struct ArchiveRun {
  std::int64_t moved = 0;           // deltas deleted from the store after archiving
  std::vector<std::string> months;  // files written, in order
  std::int64_t sealed = 0;          // files made read-only
  std::int64_t removed = 0;         // files deleted (keep_days)
};

// Every due batch (steps 1 to 3, above), then sealing and keep_days. `now` is
// retention's clock (keep_days is counted from it).
Result<ArchiveRun> archive_expired(Store& store, const ArchiveOptions& options,
                                   TimePoint older_than, TimePoint now);

// Seals the files that can receive no more rows (see above); returns how many.
Result<std::int64_t> seal_archives(Store& store, const ArchiveOptions& options,
                                   TimePoint older_than);
// Deletes the sealed files whose newest created_at is before now - keep_days;
// returns how many went (none when keep_days <= 0).
Result<std::int64_t> remove_old_archives(const ArchiveOptions& options, TimePoint now);

}  // namespace deltatap
