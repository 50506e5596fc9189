// ArchiveReader: the store's questions (DeltaQuery, a session's history)
// answered across the in-memory store and the archive files of a directory
// (archive_file.h), as if they were one history.
//
// A page is newest first (timestamp, then id, descending) with the store's
// cursor ("TIMESTAMP_ID"), so paging with Store::get_deltas' cursor and with
// this reader's is the same: each source (the store, then every file) is
// asked for up to `limit` rows before the cursor, the answers are merged and
// the first `limit` taken. An id found twice (a move that wrote a file and
// was stopped before its delete; archive.h) is shown once. States come back
// as JSON text, whether a file keeps them as TEXT or encoded.
//
// The files are opened read-only when the reader is made (SQLITE_OPEN_READONLY)
// and stay open for its life, so an export that pages through a year opens
// each file once; a file added after that is not seen. One thread (the
// store's) uses a reader and its store. Errors are values naming the file.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "base/delta.h"
#include "base/result.h"
#include "storage/store.h"

namespace deltatap {

class ArchiveFile;

class ArchiveReader {
 public:
  // Opens every archive file in `directory` (none when it is missing). An
  // error when a file there cannot be opened as an archive.
  static Result<ArchiveReader> open(const std::string& directory);

  ArchiveReader(ArchiveReader&&) noexcept;
  ArchiveReader& operator=(ArchiveReader&&) noexcept;
  ~ArchiveReader();

  // Store::get_deltas over `store` and the files.
  Result<DeltaPage> get_deltas(Store& store, const DeltaQuery& query);
  // Store::session_history over `store` and the files: by id, each once.
  Result<std::vector<StoredDelta>> session_history(Store& store, const std::string& session_id);

  std::size_t file_count() const;

 private:
  ArchiveReader();
  std::vector<std::unique_ptr<ArchiveFile>> files_;
};

}  // namespace deltatap
