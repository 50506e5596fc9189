// ArchiveFile: naming, opening and creating a monthly archive, reading its
// rows back as the store's, and its integrity check.
#include "storage/archive_file.h"

#include <dirent.h>
#include <sqlite3.h>
#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <utility>

#include "base/files.h"
#include "storage/sqlite_statement.h"
#include "storage/state_chain.h"

namespace deltatap {

namespace {

constexpr std::string_view kPrefix = "deltas-";
constexpr std::string_view kSuffix = ".sqlite";

// The store's session_deltas and before_ref (state_codec.h). ids are the
// store's: no AUTOINCREMENT, a row keeps the id it had. Two of the store's
// indexes only: a session's rows are found by (session_id, timestamp) and
// ordered by id in memory (a month of one session), and the newest created_at
// is kept in archive_info; the indexes on session_id alone and on created_at
// took a fifth of a file and a quarter of a move's time (bench_archive_move).
// Files written before keep theirs, which readers may use or not. The times
// are INTEGER milliseconds (storage/time_columns.h; format 2): files of
// format 1 keep their TEXT times, and each file is read as it is. The CHECKs
// are comparisons, not lists (store_open.cc says why: 4.5 µs a row here).
constexpr const char* kCreateSchema = R"sql(
CREATE TABLE IF NOT EXISTS session_deltas (
  id INTEGER PRIMARY KEY,
  session_id TEXT NOT NULL,
  delta_type TEXT NOT NULL CHECK(delta_type = 'created' OR delta_type = 'updated' OR delta_type = 'deleted'),
  before_state TEXT,
  after_state TEXT,
  timestamp INTEGER NOT NULL,
  created_at INTEGER NOT NULL,
  origin TEXT NOT NULL DEFAULT 'stream' CHECK(origin = 'stream' OR origin = 'resync' OR origin = 'reconcile'),
  gap INTEGER NOT NULL DEFAULT 0 CHECK(gap IN (0, 1)),
  before_ref INTEGER
);
CREATE INDEX IF NOT EXISTS idx_session_deltas_timestamp ON session_deltas(timestamp);
CREATE INDEX IF NOT EXISTS idx_session_deltas_session_ts ON session_deltas(session_id, timestamp);
CREATE TABLE IF NOT EXISTS archive_info (
  format_version INTEGER NOT NULL,
  month TEXT NOT NULL,
  newest_created_at TEXT
);)sql";

constexpr const char* kColumns =
    "id, session_id, delta_type, before_state, after_state, timestamp, created_at, origin, gap, "
    "before_ref";

Status exec(sqlite3* db, const std::string& sql, std::string_view what) {
  char* message = nullptr;
  if (sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &message) != SQLITE_OK) {
    std::string text = message ? message : sqlite3_errmsg(db);
    sqlite3_free(message);
    return Error{std::string(what) + ": " + text};
  }
  return ok_status();
}

Result<Statement> prepare(sqlite3* db, const std::string& sql) {
  sqlite3_stmt* raw = nullptr;
  if (sqlite3_prepare_v2(db, sql.c_str(), -1, &raw, nullptr) != SQLITE_OK) {
    return Error{sqlite_error(db, "prepare")};
  }
  return Statement(raw);
}

bool two_digits(std::string_view text) {
  return text.size() == 2 && std::isdigit(static_cast<unsigned char>(text[0])) &&
         std::isdigit(static_cast<unsigned char>(text[1]));
}

bool is_month(std::string_view month) {
  if (month.size() != 7 || month[4] != '-') return false;
  for (std::size_t i = 0; i < 4; ++i) {
    if (!std::isdigit(static_cast<unsigned char>(month[i]))) return false;
  }
  if (!two_digits(month.substr(5))) return false;
  int m = (month[5] - '0') * 10 + (month[6] - '0');
  return m >= 1 && m <= 12;
}

}  // namespace

std::string archive_directory_for(const std::string& store_path) {
  std::string parent = directory_of(store_path);
  return parent == "/" ? "/archive" : parent + "/archive";
}

std::string month_of(std::string_view normalised_time) {
  return std::string(normalised_time.substr(0, 7));
}

std::string month_start(std::string_view month) {
  return std::string(month) + "-01T00:00:00.000Z";
}

std::string next_month_start(std::string_view month) {
  int year = 0, number = 0;
  std::from_chars(month.data(), month.data() + 4, year);
  std::from_chars(month.data() + 5, month.data() + 7, number);
  if (++number > 12) {
    number = 1;
    ++year;
  }
  char text[32];  // room for any int: GCC checks the format against the type, not the range
  std::snprintf(text, sizeof text, "%04d-%02d", year, number);
  return month_start(text);
}

std::string archive_file_name(std::string_view month) {
  return std::string(kPrefix) + std::string(month) + std::string(kSuffix);
}

std::optional<std::string> month_of_file_name(std::string_view name) {
  if (name.size() != kPrefix.size() + 7 + kSuffix.size()) return std::nullopt;
  if (name.substr(0, kPrefix.size()) != kPrefix) return std::nullopt;
  if (name.substr(name.size() - kSuffix.size()) != kSuffix) return std::nullopt;
  auto month = name.substr(kPrefix.size(), 7);
  if (!is_month(month)) return std::nullopt;
  return std::string(month);
}

Result<std::vector<ArchiveFileEntry>> list_archive_files(const std::string& directory) {
  std::vector<ArchiveFileEntry> files;
  DIR* dir = ::opendir(directory.c_str());
  if (!dir) {
    if (errno == ENOENT) return files;
    return Error{errno_text("cannot list", directory)};
  }
  while (dirent* entry = ::readdir(dir)) {
    auto month = month_of_file_name(entry->d_name);
    if (!month) continue;
    ArchiveFileEntry file;
    file.month = *month;
    file.path = directory + "/" + entry->d_name;
    struct stat info {};
    if (::stat(file.path.c_str(), &info) != 0 || !S_ISREG(info.st_mode)) continue;
    file.bytes = static_cast<std::uint64_t>(info.st_size);
    file.sealed = (info.st_mode & S_IWUSR) == 0;
    files.push_back(std::move(file));
  }
  ::closedir(dir);
  std::sort(files.begin(), files.end(),
            [](const auto& a, const auto& b) { return a.month < b.month; });
  return files;
}

// ---------------------------------------------------------------------------

struct ArchiveFile::Impl {
  sqlite3* db = nullptr;
  std::string path;
  StateCodec codec;
  StateChain chain{codec, 4u << 20};  // an archive is read once per query, in pages
  TimeColumns times;                  // how this file keeps its times

  ~Impl() {
    chain.close();  // its statement goes before the connection
    sqlite3_close(db);
  }

  Error fail(std::string_view what) const { return Error{path + ": " + sqlite_error(db, what)}; }

  bool info_has_newest() const {
    auto stmt = prepare(db, "SELECT COUNT(*) FROM pragma_table_info('archive_info') "
                            "WHERE name = 'newest_created_at'");
    return stmt.ok() && sqlite3_step(stmt->get()) == SQLITE_ROW &&
           sqlite3_column_int(stmt->get(), 0) > 0;
  }

  // archive_info's month, or an error when the file is not an archive this
  // binary can read.
  Result<std::string> read_info() {
    auto stmt = prepare(db, "SELECT format_version, month FROM archive_info LIMIT 1");
    if (!stmt.ok()) return Error{path + ": not a deltatap archive (" + stmt.error() + ")"};
    if (sqlite3_step(stmt->get()) != SQLITE_ROW) {
      return Error{path + ": not a deltatap archive (archive_info is empty)"};
    }
    auto version = sqlite3_column_int64(stmt->get(), 0);
    if (version > kArchiveFormatVersion) {
      return Error{path + ": written by a newer deltatap (archive format " +
                   std::to_string(version) + ", this one reads up to " +
                   std::to_string(kArchiveFormatVersion) + ")"};
    }
    return column_text(stmt->get(), 1);
  }

  Status read_times() {
    auto layout = TimeColumns::of(db);
    if (!layout.ok()) return Error{path + ": " + layout.error()};
    times = *layout;
    return ok_status();
  }

  // The JSON text of a row's before or after state (kColumns), references
  // and prefixed after states resolved within this file.
  Result<std::optional<std::string>> state(sqlite3_stmt* row, bool before) {
    std::int64_t id = sqlite3_column_int64(row, 0);
    std::int64_t ref = sqlite3_column_type(row, 9) == SQLITE_NULL ? 0 : sqlite3_column_int64(row, 9);
    auto stored_before = StateChain::stored(row, 3);
    if (before) return chain.before(db, stored_before, ref, id);
    return chain.after(db, StateChain::stored(row, 4), stored_before, ref, id);
  }

  // Every row `stmt` gives (kColumns), states decoded.
  Result<std::vector<StoredDelta>> read_rows(sqlite3_stmt* stmt, std::string_view what) {
    std::vector<StoredDelta> rows;
    int rc;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
      auto row = read_row(stmt);
      if (!row.ok()) return Error{row.error()};
      rows.push_back(std::move(*row));
    }
    if (rc != SQLITE_DONE) return fail(what);
    return rows;
  }

  Result<StoredDelta> read_row(sqlite3_stmt* row) {
    StoredDelta delta;
    delta.id = sqlite3_column_int64(row, 0);
    delta.delta.session_id = column_text(row, 1);
    delta.delta.type = parse_delta_type(column_text(row, 2)).value_or(DeltaType::updated);
    auto before = state(row, true);
    if (!before.ok()) return Error{path + ": delta " + std::to_string(delta.id) + ": " + before.error()};
    auto after = state(row, false);
    if (!after.ok()) return Error{path + ": delta " + std::to_string(delta.id) + ": " + after.error()};
    delta.delta.before = std::move(*before);
    delta.delta.after = std::move(*after);
    delta.delta.timestamp = TimeColumns::read(row, 5);
    delta.created_at = TimeColumns::read(row, 6);
    delta.origin = parse_delta_origin(column_text(row, 7)).value_or(DeltaOrigin::stream);
    delta.gap = sqlite3_column_int(row, 8) != 0;
    return delta;
  }
};

ArchiveFile::ArchiveFile(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ArchiveFile::ArchiveFile(ArchiveFile&&) noexcept = default;
ArchiveFile& ArchiveFile::operator=(ArchiveFile&&) noexcept = default;
ArchiveFile::~ArchiveFile() = default;

TimeColumns ArchiveFile::time_columns() const { return impl_->times; }
sqlite3* ArchiveFile::db() const { return impl_->db; }
const std::string& ArchiveFile::path() const { return impl_->path; }
StateCodec& ArchiveFile::codec() { return impl_->codec; }
Result<std::optional<std::string>> ArchiveFile::state(sqlite3_stmt* row, bool before) {
  return impl_->state(row, before);
}

Result<ArchiveFile> ArchiveFile::open_for_writing(const std::string& path, std::string_view month,
                                                  bool* created) {
  struct stat info {};
  bool exists = ::stat(path.c_str(), &info) == 0;
  *created = !exists;
  // A sealed file takes rows again only when held rows of its month are
  // released late (a sink's hold): it is sealed again after the move.
  if (exists && (info.st_mode & S_IWUSR) == 0 && ::chmod(path.c_str(), 0600) != 0) {
    return Error{errno_text("cannot make writable", path)};
  }
  if (!is_month(month)) return Error{path + ": not a month: " + std::string(month)};
  auto impl = std::make_unique<Impl>();
  impl->path = path;
  // One thread uses the connection: no mutex around every call.
  if (sqlite3_open_v2(path.c_str(), &impl->db,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                      nullptr) != SQLITE_OK) {
    return impl->fail("open");
  }
  // A reader (the CLI on the same file) may hold it for a moment.
  sqlite3_busy_timeout(impl->db, 5'000);
  if (!exists && ::chmod(path.c_str(), 0600) != 0) {
    return Error{errno_text("cannot set the mode of", path)};
  }
  // A batch (up to 50,000 rows and their index entries) fits in the page
  // cache, so its pages are written once, at COMMIT.
  // A new file's pages are 64 KiB, as the store's (an existing file keeps
  // its own): a batch's index entries land in fewer pages, and its COMMIT
  // wrote 1.2 s instead of 3.1 s per 1,000,000 deltas (bench_archive_move).
  if (auto s = exec(impl->db,
                    "PRAGMA page_size = 65536; "
                    "PRAGMA journal_mode = DELETE; PRAGMA synchronous = FULL; "
                    "PRAGMA cache_size = -131072",
                    path);
      !s.ok()) {
    return Error{s.error()};
  }
  if (auto s = exec(impl->db, std::string("BEGIN IMMEDIATE;") + kCreateSchema + ";" +
                                  kCreateStateDictionaries,
                    path);
      !s.ok()) {
    return Error{s.error()};
  }
  auto count = prepare(impl->db, "SELECT COUNT(*) FROM archive_info");
  bool empty = count.ok() && sqlite3_step(count->get()) == SQLITE_ROW &&
               sqlite3_column_int64(count->get(), 0) == 0;
  count = Statement();
  if (empty) {
    std::string insert = "INSERT INTO archive_info (format_version, month) VALUES (" +
                         std::to_string(kArchiveFormatVersion) + ", '" + std::string(month) + "')";
    if (auto s = exec(impl->db, insert, path); !s.ok()) return Error{s.error()};
  }
  // A file written before archive_info kept it: the column, filled from the
  // rows once (its created_at index answers that).
  if (!impl->info_has_newest()) {
    if (auto s = exec(impl->db,
                      "ALTER TABLE archive_info ADD COLUMN newest_created_at TEXT; "
                      "UPDATE archive_info SET newest_created_at = (SELECT " +
                          time_text_sql("MAX(created_at)") + " FROM session_deltas)",
                      path);
        !s.ok()) {
      return Error{s.error()};
    }
  }
  if (auto s = exec(impl->db, "COMMIT", path); !s.ok()) return Error{s.error()};
  auto info_month = impl->read_info();
  if (!info_month.ok()) return Error{info_month.error()};
  if (*info_month != month) {
    return Error{path + ": holds the month " + *info_month + ", not " + std::string(month)};
  }
  if (auto s = impl->codec.load(impl->db); !s.ok()) return Error{path + ": " + s.error()};
  if (auto s = impl->read_times(); !s.ok()) return Error{s.error()};
  return ArchiveFile(std::move(impl));
}

Result<ArchiveFile> ArchiveFile::open_readonly(const std::string& path) {
  auto impl = std::make_unique<Impl>();
  impl->path = path;
  if (sqlite3_open_v2(path.c_str(), &impl->db, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
    return impl->fail("open");
  }
  // The CLI may read a file while the daemon commits a batch into it: wait
  // for that commit rather than fail.
  sqlite3_busy_timeout(impl->db, 5'000);
  if (auto month = impl->read_info(); !month.ok()) return Error{month.error()};
  if (auto s = impl->codec.load(impl->db); !s.ok()) return Error{path + ": " + s.error()};
  if (auto s = impl->read_times(); !s.ok()) return Error{s.error()};
  return ArchiveFile(std::move(impl));
}

Result<std::vector<StoredDelta>> ArchiveFile::query(const DeltaQuery& query, int limit, bool* more) {
  *more = false;
  std::optional<Cursor> cursor;
  if (query.before) {
    cursor = parse_cursor(*query.before);
    if (!cursor) return Error{"invalid cursor"};
  }
  // The store's query (store.h, delta_query_sql), over this file.
  auto stmt = prepare(impl_->db, std::string("SELECT ") + kColumns + " FROM session_deltas" +
                                     delta_query_sql(query, cursor.has_value()));
  if (!stmt.ok()) return Error{impl_->path + ": " + stmt.error()};
  sqlite3_stmt* s = stmt->get();
  bind_delta_query(s, query, cursor, impl_->times, std::int64_t{limit} + 1);
  std::vector<StoredDelta> rows;
  int rc;
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
    if (static_cast<int>(rows.size()) == limit) {
      *more = true;
      break;
    }
    auto row = impl_->read_row(s);
    if (!row.ok()) return Error{row.error()};
    rows.push_back(std::move(*row));
  }
  if (rc != SQLITE_ROW && rc != SQLITE_DONE) return impl_->fail("query");
  return rows;
}

Result<std::vector<StoredDelta>> ArchiveFile::session_history(const std::string& session_id) {
  auto stmt = prepare(impl_->db, std::string("SELECT ") + kColumns +
                                     " FROM session_deltas WHERE session_id = ?1 ORDER BY id");
  if (!stmt.ok()) return Error{impl_->path + ": " + stmt.error()};
  bind_text(stmt->get(), 1, session_id);
  return impl_->read_rows(stmt->get(), "session history");
}

Result<std::vector<StoredDelta>> ArchiveFile::deltas_after(std::int64_t after_id, std::size_t limit) {
  auto stmt = prepare(impl_->db, std::string("SELECT ") + kColumns +
                                     " FROM session_deltas WHERE id > ?1 ORDER BY id LIMIT ?2");
  if (!stmt.ok()) return Error{impl_->path + ": " + stmt.error()};
  sqlite3_bind_int64(stmt->get(), 1, after_id);
  sqlite3_bind_int64(stmt->get(), 2, static_cast<std::int64_t>(limit));
  return impl_->read_rows(stmt->get(), "deltas after");
}

Status ArchiveFile::note_newest_created_at(const std::string& created_at) {
  auto stmt = prepare(impl_->db,
                      "UPDATE archive_info SET newest_created_at = "
                      "MAX(COALESCE(newest_created_at, ''), ?1)");
  if (!stmt.ok()) return Error{impl_->path + ": " + stmt.error()};
  sqlite3_bind_text(stmt->get(), 1, created_at.data(), static_cast<int>(created_at.size()),
                    SQLITE_STATIC);
  if (sqlite3_step(stmt->get()) != SQLITE_DONE) return impl_->fail("note the newest created_at");
  return ok_status();
}

Result<std::optional<std::string>> ArchiveFile::newest_created_at() {
  // A file written before archive_info kept it is read from its rows (and
  // its created_at index); an empty file has none either way.
  auto stmt = prepare(impl_->db, impl_->info_has_newest()
                                     ? "SELECT newest_created_at FROM archive_info LIMIT 1"
                                     : "SELECT MAX(created_at) FROM session_deltas");
  if (!stmt.ok() || sqlite3_step(stmt->get()) != SQLITE_ROW) return impl_->fail("newest row");
  if (sqlite3_column_type(stmt->get(), 0) == SQLITE_NULL) return std::optional<std::string>();
  return std::optional<std::string>(TimeColumns::read(stmt->get(), 0));
}

Result<std::int64_t> ArchiveFile::row_count() {
  auto stmt = prepare(impl_->db, "SELECT COUNT(*) FROM session_deltas");
  if (!stmt.ok() || sqlite3_step(stmt->get()) != SQLITE_ROW) return impl_->fail("count rows");
  return std::int64_t{sqlite3_column_int64(stmt->get(), 0)};
}

Result<std::string> check_archive_file(const std::string& path) {
  auto file = ArchiveFile::open_readonly(path);
  if (!file.ok()) {
    // A file SQLite cannot read as a database at all is a failed check, not
    // a missing one: say what it is.
    struct stat info {};
    if (::stat(path.c_str(), &info) != 0) return Error{file.error()};
    return file.error();
  }
  sqlite3* db = file->db();
  {
    auto stmt = prepare(db, "PRAGMA integrity_check");
    if (!stmt.ok()) return path + ": " + stmt.error();
    if (sqlite3_step(stmt->get()) != SQLITE_ROW) return path + ": " + sqlite_error(db, "integrity_check");
    auto verdict = column_text(stmt->get(), 0);
    if (verdict != "ok") return path + ": " + verdict;
  }
  auto stmt = prepare(db, std::string("SELECT ") + kColumns + " FROM session_deltas ORDER BY id");
  if (!stmt.ok()) return path + ": " + stmt.error();
  int rc;
  while ((rc = sqlite3_step(stmt->get())) == SQLITE_ROW) {
    auto id = sqlite3_column_int64(stmt->get(), 0);
    for (int column : {3, 4}) {
      if (sqlite3_column_type(stmt->get(), column) == SQLITE_NULL) continue;
      auto text = file->state(stmt->get(), column == 3);
      if (!text.ok()) {
        return path + ": delta " + std::to_string(id) + ": " +
               (column == 3 ? "before_state" : "after_state") + " does not decode: " + text.error();
      }
    }
    if (sqlite3_column_type(stmt->get(), 9) != SQLITE_NULL) {
      auto ref = sqlite3_column_int64(stmt->get(), 9);
      auto target = prepare(db, "SELECT after_state IS NOT NULL FROM session_deltas WHERE id = ?1");
      if (!target.ok()) return path + ": " + target.error();
      sqlite3_bind_int64(target->get(), 1, ref);
      if (sqlite3_step(target->get()) != SQLITE_ROW || sqlite3_column_int(target->get(), 0) == 0) {
        return path + ": delta " + std::to_string(id) + ": before_ref " + std::to_string(ref) +
               " names no row of this file with an after_state";
      }
    }
  }
  if (rc != SQLITE_DONE) return path + ": " + sqlite_error(db, "read rows");
  return std::string("ok");
}

}  // namespace deltatap
