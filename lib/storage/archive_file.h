// ArchiveFile: one monthly archive of deltas (design.md, "Capacity";
// docs/archives.md), a SQLite file named deltas-YYYY-MM.sqlite in the archive
// directory (the directory `archive` beside [storage] path) by the UTC month
// of its deltas' created_at, the time retention goes by.
//
// A file holds:
//   - session_deltas: the store's columns (origin and gap included) and
//     before_ref, indexed on timestamp and on (session_id, timestamp). A state value is NULL, TEXT (the
//     JSON) or the BLOB of state_codec.h. A before_ref names a row of the
//     same file (the mover materialises any other, archive.h), so every row
//     reads back from its own file alone;
//   - state_dictionaries (state_codec.h's kCreateStateDictionaries): the
//     dictionaries the BLOB values of this file name;
//   - archive_info: one row, the format version, the month and the newest
//     created_at of its rows (NULL while it has none).
//
// Files of months that can receive no more rows are read-only (mode 0440)
// and are opened with SQLITE_OPEN_READONLY by readers. Everything here runs
// on the caller's thread; an ArchiveFile is used by one thread at a time.
// Errors are values naming the file.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/delta.h"
#include "base/result.h"
#include "storage/state_codec.h"
#include "storage/store.h"

struct sqlite3;

namespace deltatap {

// 2: the times are INTEGER milliseconds (storage/time_columns.h); a file of
// format 1 keeps its TEXT times and its number, and reads as it is.
inline constexpr int kArchiveFormatVersion = 2;
// Mode of a file that receives no more rows; a file being written is 0600.
inline constexpr unsigned kSealedArchiveMode = 0440;

// dirname(store_path)/archive: "data/archive" for "data/sessions.sqlite".
std::string archive_directory_for(const std::string& store_path);
// "YYYY-MM" of a normalised time (timestamp.h), which starts with it.
std::string month_of(std::string_view normalised_time);
// The normalised time at which `month` ("YYYY-MM") begins, and the next month's.
std::string month_start(std::string_view month);
std::string next_month_start(std::string_view month);
// "deltas-YYYY-MM.sqlite"; the month back from such a name, nullopt for any other.
std::string archive_file_name(std::string_view month);
std::optional<std::string> month_of_file_name(std::string_view name);

struct ArchiveFileEntry {
  std::string month;  // "YYYY-MM"
  std::string path;
  std::uint64_t bytes = 0;
  bool sealed = false;  // read-only (no write permission for its owner)
};
// The archive files in `directory`, oldest month first; none when the
// directory is missing. Other files there are left out (and alone).
Result<std::vector<ArchiveFileEntry>> list_archive_files(const std::string& directory);

class ArchiveFile {
 public:
  // Opens the file at `path` for writing, creating it (mode 0600, schema,
  // archive_info for `month`) when missing; a sealed file is made writable
  // (0600) again. `created` tells whether it was new (its directory then
  // needs an fsync). journal_mode DELETE, synchronous FULL: a COMMIT is on
  // disk when it returns. An error when the file is not an archive of
  // `month` or of a newer format.
  static Result<ArchiveFile> open_for_writing(const std::string& path, std::string_view month,
                                              bool* created);
  // Opens the file read-only (SQLITE_OPEN_READONLY) and loads its dictionaries.
  static Result<ArchiveFile> open_readonly(const std::string& path);

  ArchiveFile(ArchiveFile&&) noexcept;
  ArchiveFile& operator=(ArchiveFile&&) noexcept;
  ~ArchiveFile();

  sqlite3* db() const;
  // How this file keeps its times (format 1: text; 2: integer).
  TimeColumns time_columns() const;
  const std::string& path() const;
  // The codec loaded on this file's connection (its own dictionaries).
  StateCodec& codec();
  // The JSON text of the before or after state of the row `row` is on (a
  // statement reading this file's session_deltas columns in the store's
  // order, Store::Impl::delta_columns()), references and prefixed states resolved.
  Result<std::optional<std::string>> state(sqlite3_stmt* row, bool before);

  // The store's DeltaQuery over this file's rows, newest first, at most
  // `limit` rows (not clamped), states decoded (before_ref resolved).
  // `more` is set when further rows match.
  Result<std::vector<StoredDelta>> query(const DeltaQuery& query, int limit, bool* more);
  // Up to `limit` rows with id > `after_id`, by id, states decoded (what
  // `export --to --archive` copies, batch after batch).
  Result<std::vector<StoredDelta>> deltas_after(std::int64_t after_id, std::size_t limit);
  // One session's rows of this file by id, states decoded.
  Result<std::vector<StoredDelta>> session_history(const std::string& session_id);
  // Newest created_at in the file; nullopt when it holds no rows.
  Result<std::optional<std::string>> newest_created_at();
  // Within the transaction that adds rows: `created_at` is the newest of
  // them (kept when newer than the file's).
  Status note_newest_created_at(const std::string& created_at);
  Result<std::int64_t> row_count();

 private:
  struct Impl;
  explicit ArchiveFile(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// The archive's own integrity check: PRAGMA integrity_check, archive_info
// present and of a known format, every state value decodes to JSON text and
// every before_ref names a row of the file. Returns "ok" or the first problem
// found (naming the row); an Error when the file cannot be opened at all.
Result<std::string> check_archive_file(const std::string& path);

}  // namespace deltatap
