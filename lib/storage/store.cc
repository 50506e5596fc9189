#include "storage/store.h"

#include <sqlite3.h>

#include "storage/session_summary.h"
#include "storage/sqlite_statement.h"

#include <algorithm>
#include <charconv>
#include <cstring>
#include <functional>
#include <map>
#include <thread>
#include <tuple>
#include <utility>

namespace deltatap {

namespace {

constexpr const char* kCreateDeltas = R"sql(
CREATE TABLE IF NOT EXISTS session_deltas (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  session_id TEXT NOT NULL,
  delta_type TEXT NOT NULL CHECK(delta_type IN ('created', 'updated', 'deleted')),
  before_state TEXT,
  after_state TEXT,
  timestamp TEXT NOT NULL,
  created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);)sql";

constexpr const char* kCreateIndexesAndTables = R"sql(
CREATE INDEX IF NOT EXISTS idx_session_deltas_session_id ON session_deltas(session_id);
CREATE INDEX IF NOT EXISTS idx_session_deltas_timestamp ON session_deltas(timestamp);
CREATE INDEX IF NOT EXISTS idx_session_deltas_created_at ON session_deltas(created_at);
CREATE INDEX IF NOT EXISTS idx_session_deltas_session_ts ON session_deltas(session_id, timestamp);
CREATE TABLE IF NOT EXISTS rejected_messages (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  received_at TEXT NOT NULL,
  reason TEXT NOT NULL,
  detail TEXT NOT NULL DEFAULT '',
  raw BLOB
);
CREATE TABLE IF NOT EXISTS stream_events (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  at TEXT NOT NULL,
  event TEXT NOT NULL,
  url TEXT NOT NULL DEFAULT '',
  close_code INTEGER NOT NULL DEFAULT 0,
  reason TEXT NOT NULL DEFAULT ''
);)sql";

// Rows per delta insert statement: a batch is stored in statements of these
// sizes, largest first, so at most seven statements are ever prepared for it.
constexpr std::size_t kInsertRowCounts[] = {64, 32, 16, 8, 4, 2, 1};

constexpr const char* kDeltaColumns =
    "id, session_id, delta_type, before_state, after_state, timestamp, created_at";

void bind_named(sqlite3_stmt* stmt, const char* name, std::string_view text) {
  int index = sqlite3_bind_parameter_index(stmt, name);
  if (index > 0) bind_text(stmt, index, text);
}

StoredDelta read_delta(sqlite3_stmt* stmt) {
  StoredDelta row;
  row.id = sqlite3_column_int64(stmt, 0);
  row.delta.session_id = column_text(stmt, 1);
  row.delta.type = parse_delta_type(column_text(stmt, 2)).value_or(DeltaType::updated);
  row.delta.before = column_optional(stmt, 3);
  row.delta.after = column_optional(stmt, 4);
  row.delta.timestamp = column_text(stmt, 5);
  row.created_at = column_text(stmt, 6);
  return row;
}

// SQL function used by the version-0 migration: the normalised form of a time,
// or the value unchanged when it is not one (a row is never dropped for that).
// datetime('now') values carry no zone; SQLite writes them in UTC.
void normalise_sql_function(sqlite3_context* context, int, sqlite3_value** args) {
  auto raw = sqlite3_value_text(args[0]);
  if (!raw) {
    sqlite3_result_null(context);
    return;
  }
  std::string_view text(reinterpret_cast<const char*>(raw), sqlite3_value_bytes(args[0]));
  auto normalised = normalise_timestamp(text);
  if (!normalised.ok()) normalised = normalise_timestamp(std::string(text) + "Z");
  if (normalised.ok()) {
    sqlite3_result_text64(context, normalised->data(), normalised->size(), SQLITE_TRANSIENT,
                          SQLITE_UTF8);
  } else {
    sqlite3_result_value(context, args[0]);
  }
}

// A connection closed when it goes out of scope.
struct Connection {
  sqlite3* db = nullptr;
  Connection() = default;
  Connection(Connection&& other) noexcept : db(std::exchange(other.db, nullptr)) {}
  Connection(const Connection&) = delete;
  ~Connection() { sqlite3_close(db); }
  sqlite3* get() const { return db; }
};

Result<Connection> open_source_file(const std::string& path) {
  Connection source;
  if (sqlite3_open_v2(path.c_str(), &source.db, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
    return Error{sqlite_error(source.db, "open " + path)};
  }
  return source;
}

// "ok", or what PRAGMA quick_check (or opening the file) said instead.
std::string quick_check_file(const std::string& path) {
  auto source = open_source_file(path);
  if (!source.ok()) return source.error();
  sqlite3_stmt* raw = nullptr;
  if (sqlite3_prepare_v2(source->get(), "PRAGMA quick_check", -1, &raw, nullptr) != SQLITE_OK) {
    return sqlite3_errmsg(source->get());
  }
  Statement stmt(raw);
  if (sqlite3_step(raw) != SQLITE_ROW) return sqlite3_errmsg(source->get());
  return column_text(raw, 0);
}

// Copies every page of `from` into `to` (whose own pages are replaced).
Status copy_pages(sqlite3* from, sqlite3* to, std::string_view what) {
  sqlite3_backup* backup = sqlite3_backup_init(to, "main", from, "main");
  if (!backup) return Error{sqlite_error(to, what)};
  int rc = sqlite3_backup_step(backup, -1);
  sqlite3_backup_finish(backup);
  if (rc != SQLITE_DONE) return Error{std::string(what) + ": " + sqlite3_errstr(rc)};
  return ok_status();
}

}  // namespace

std::optional<Cursor> parse_cursor(std::string_view text) {
  auto split = text.rfind('_');
  if (split == std::string_view::npos) return std::nullopt;
  Cursor cursor;
  auto id_text = text.substr(split + 1);
  auto [end, ec] = std::from_chars(id_text.data(), id_text.data() + id_text.size(), cursor.id);
  if (ec != std::errc() || end != id_text.data() + id_text.size() || cursor.id <= 0) {
    return std::nullopt;
  }
  auto timestamp = normalise_timestamp(text.substr(0, split));
  if (!timestamp.ok() || *timestamp != text.substr(0, split)) return std::nullopt;
  cursor.timestamp = *timestamp;
  return cursor;
}

std::string format_cursor(const Cursor& cursor) {
  return cursor.timestamp + "_" + std::to_string(cursor.id);
}

DatabaseImage::DatabaseImage(unsigned char* bytes, std::size_t size) : bytes_(bytes), size_(size) {}
void DatabaseImage::Free::operator()(unsigned char* p) const { sqlite3_free(p); }

struct Store::Impl {
  sqlite3* db = nullptr;
  std::map<std::string, Statement> statements;
  std::int64_t delta_count = 0;
  std::int64_t rejected_count = 0;
  std::int64_t rejected_evicted = 0;
  SessionSummaries summaries;
  bool has_summary = false;  // false only for a read-only file without a usable one

  ~Impl() {
    // Every prepared statement goes first: sqlite3_close leaves the connection
    // open (and its memory held) while one remains.
    statements.clear();
    summaries = SessionSummaries();
    sqlite3_close(db);
  }

  // Tuning is for the in-memory database only; files keep SQLite's defaults.
  Status open_memory() {
    if (sqlite3_open_v2(":memory:", &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr) !=
        SQLITE_OK) {
      return Error{sqlite_error(db, "open in-memory database")};
    }
    return ok_status();
  }

  // An in-memory destination must have the source's page size before the copy.
  Status copy_from(sqlite3* source) {
    if (auto s = open_memory(); !s.ok()) return s;
    sqlite3_stmt* raw = nullptr;
    int page_size = 0;
    if (sqlite3_prepare_v2(source, "PRAGMA page_size", -1, &raw, nullptr) == SQLITE_OK) {
      Statement stmt(raw);
      if (sqlite3_step(raw) == SQLITE_ROW) page_size = sqlite3_column_int(raw, 0);
    }
    if (page_size <= 0) return Error{sqlite_error(source, "read the database")};
    if (auto s = exec(("PRAGMA page_size = " + std::to_string(page_size)).c_str()); !s.ok()) {
      return s;
    }
    return copy_pages(source, db, "copy the database into memory");
  }

  Status exec(const char* sql) {
    char* message = nullptr;
    if (sqlite3_exec(db, sql, nullptr, nullptr, &message) != SQLITE_OK) {
      std::string text = message ? message : "unknown error";
      sqlite3_free(message);
      return Error{text};
    }
    return ok_status();
  }

  Result<sqlite3_stmt*> statement(const std::string& sql) {
    auto found = statements.find(sql);
    if (found != statements.end()) return found->second.get();
    sqlite3_stmt* stmt = nullptr;
    if (sqlite3_prepare_v3(db, sql.c_str(), -1, SQLITE_PREPARE_PERSISTENT, &stmt, nullptr) !=
        SQLITE_OK) {
      return Error{sqlite_error(db, "prepare")};
    }
    statements.emplace(sql, Statement(stmt));
    return stmt;
  }

  Result<std::int64_t> scalar(const std::string& sql) {
    auto stmt = statement(sql);
    if (!stmt.ok()) return Error{stmt.error()};
    Use use(*stmt);
    if (sqlite3_step(*use) != SQLITE_ROW) return Error{sqlite_error(db, sql)};
    return sqlite3_column_int64(*use, 0);
  }

  std::optional<std::string> scalar_text(const std::string& sql) {
    auto stmt = statement(sql);
    if (!stmt.ok()) return std::nullopt;
    Use use(*stmt);
    if (sqlite3_step(*use) != SQLITE_ROW) return std::nullopt;
    return column_optional(*use, 0);
  }

  Status register_functions() {
    if (sqlite3_create_function(db, "deltatap_normalise", 1,
                                SQLITE_UTF8 | SQLITE_DETERMINISTIC | SQLITE_DIRECTONLY, nullptr,
                                normalise_sql_function, nullptr, nullptr) != SQLITE_OK) {
      return Error{sqlite_error(db, "register function")};
    }
    return ok_status();
  }

  // Brings any known version up to kSchemaVersion.
  Status migrate() {
    auto version = scalar("PRAGMA user_version");
    if (!version.ok()) return Error{version.error()};
    if (*version > kSchemaVersion) {
      return Error{"schema version " + std::to_string(*version) +
                   " is newer than this deltatap understands (" + std::to_string(kSchemaVersion) +
                   ")"};
    }
    if (*version == kSchemaVersion) return ok_status();
    auto has_table =
        scalar("SELECT COUNT(*) FROM sqlite_master WHERE type='table' AND name='session_deltas'");
    if (!has_table.ok()) return Error{has_table.error()};
    if (auto s = exec("BEGIN IMMEDIATE"); !s.ok()) return s;
    Status result = *has_table ? migrate_from_version_0() : create_schema();
    if (result.ok()) {
      result = exec(("PRAGMA user_version = " + std::to_string(kSchemaVersion)).c_str());
    }
    if (result.ok()) return exec("COMMIT");
    (void)exec("ROLLBACK");
    return Error{"migration failed: " + result.error()};
  }

  Status create_schema() {
    if (auto s = exec(kCreateDeltas); !s.ok()) return s;
    return exec(kCreateIndexesAndTables);
  }

  // The document's table: created_at defaults to datetime('now') and times are
  // stored as received. Rebuild it with the new default and normalised times.
  Status migrate_from_version_0() {
    // The statement cache may hold statements on the old table.
    statements.clear();
    std::string create_new = kCreateDeltas;
    create_new.replace(create_new.find("session_deltas"), std::strlen("session_deltas"),
                       "session_deltas_v1");
    std::string copy = std::string("INSERT INTO session_deltas_v1 (") + kDeltaColumns +
                       ") SELECT id, session_id, delta_type, before_state, after_state, "
                       "deltatap_normalise(timestamp), deltatap_normalise(created_at) "
                       "FROM session_deltas";
    for (const std::string& sql :
         {create_new, copy, std::string("DROP TABLE session_deltas"),
          std::string("ALTER TABLE session_deltas_v1 RENAME TO session_deltas"),
          std::string(kCreateIndexesAndTables)}) {
      if (auto s = exec(sql.c_str()); !s.ok()) return s;
    }
    return ok_status();
  }

  // Only for the in-memory database. The migration keeps SQLite's rollback
  // journal; after it the journal is off, since the journal file and snapshots
  // give durability and an insert no longer copies each page it touches.
  Status finish_open() {
    if (auto s = register_functions(); !s.ok()) return s;
    if (auto s = migrate(); !s.ok()) return s;
    if (auto s = exec("PRAGMA journal_mode = OFF"); !s.ok()) return s;
    if (auto s = refresh_counts(); !s.ok()) return s;
    if (auto s = summaries.ensure(db, delta_count); !s.ok()) return s;
    has_summary = true;
    return ok_status();
  }

  Status refresh_counts() {
    auto deltas = scalar("SELECT COUNT(*) FROM session_deltas");
    if (!deltas.ok()) return Error{deltas.error()};
    auto rejected = scalar("SELECT COUNT(*) FROM rejected_messages");
    if (!rejected.ok()) return Error{rejected.error()};
    delta_count = *deltas;
    rejected_count = *rejected;
    return ok_status();
  }

  // The delta insert for `rows` rows, one of kInsertRowCounts. Several rows in
  // one statement share its start, its AUTOINCREMENT bookkeeping and its end:
  // bench_raw_insert --rows-per-statement measures about 1.8x the rows/s of
  // one row per statement.
  Result<sqlite3_stmt*> insert_statement(std::size_t rows) {
    std::string sql =
        "INSERT OR IGNORE INTO session_deltas (id, session_id, delta_type, before_state, "
        "after_state, timestamp, created_at) VALUES ";
    for (std::size_t i = 0; i < rows; ++i) sql += i ? ",(?,?,?,?,?,?,?)" : "(?,?,?,?,?,?,?)";
    return statement(sql);
  }

  // Inserts rows [0, count) in statements of kInsertRowCounts rows, largest
  // first. `row_at(i)` gives the i-th row's delta, created_at and id (0: a new
  // id). With `ids`, receives each row's id; rows with a given id may be
  // ignored as duplicates, so `ids` is for new rows only.
  template <typename RowAt>
  Status insert_rows(std::size_t count, RowAt row_at, std::vector<std::int64_t>* ids,
                     std::int64_t* inserted) {
    std::size_t done = 0;
    for (std::size_t rows : kInsertRowCounts) {
      while (count - done >= rows) {
        auto stmt = insert_statement(rows);
        if (!stmt.ok()) return Error{stmt.error()};
        Use use(*stmt);
        for (std::size_t k = 0; k < rows; ++k) {
          auto [delta, created_at, id] = row_at(done + k);
          int first = static_cast<int>(7 * k);
          if (id > 0) sqlite3_bind_int64(*use, first + 1, id); else sqlite3_bind_null(*use, first + 1);
          bind_text(*use, first + 2, delta.session_id);
          bind_text(*use, first + 3, to_string(delta.type));
          bind_optional(*use, first + 4, delta.before);
          bind_optional(*use, first + 5, delta.after);
          bind_text(*use, first + 6, delta.timestamp);
          bind_text(*use, first + 7, created_at);
        }
        if (sqlite3_step(*use) != SQLITE_DONE) return Error{sqlite_error(db, "insert delta")};
        auto changes = sqlite3_changes64(db);
        delta_count += changes;
        *inserted += changes;
        if (ids) {
          // New rows of one statement take consecutive ids, in VALUES order.
          if (changes != static_cast<std::int64_t>(rows)) {
            return Error{"insert delta: " + std::to_string(changes) + " of " +
                         std::to_string(rows) + " rows stored"};
          }
          auto last = sqlite3_last_insert_rowid(db);
          for (std::size_t k = 0; k < rows; ++k) {
            ids->push_back(last - static_cast<std::int64_t>(rows - 1 - k));
          }
        }
        done += rows;
      }
    }
    return ok_status();
  }

  // Deletes the deltas matching `where` and keeps the summary in step, in one
  // transaction.
  Result<std::int64_t> delete_where(const std::string& where,
                                    const std::function<void(sqlite3_stmt*)>& bind,
                                    const char* what) {
    if (auto s = exec("BEGIN"); !s.ok()) return Error{s.error()};
    auto result = [&]() -> Result<std::int64_t> {
      if (has_summary) {
        if (auto s = summaries.before_delete(db, where, bind); !s.ok()) return Error{s.error()};
      }
      auto stmt = statement("DELETE FROM session_deltas WHERE " + where);
      if (!stmt.ok()) return Error{stmt.error()};
      Use use(*stmt);
      bind(*use);
      if (sqlite3_step(*use) != SQLITE_DONE) return Error{sqlite_error(db, what)};
      std::int64_t deleted = sqlite3_changes64(db);
      delta_count -= deleted;
      if (has_summary) {
        if (auto s = summaries.after_delete(db); !s.ok()) return Error{s.error()};
      }
      return deleted;
    }();
    if (auto s = exec("COMMIT"); !s.ok() && result.ok()) return Error{s.error()};
    return result;
  }

  // The summary's share of a batch just inserted. When duplicates were ignored
  // (a replay of ids already held) it cannot tell which: recompute it all.
  template <typename RowAt>
  Status summarise(std::size_t count, RowAt row_at, std::int64_t inserted) {
    if (!has_summary || count == 0) return ok_status();
    if (inserted != static_cast<std::int64_t>(count)) return summaries.rebuild(db);
    std::vector<SessionSummaries::Added> added;
    added.reserve(count);
    for (std::size_t i = 0; i < count; ++i) added.push_back(row_at(i));
    return summaries.add(db, added);
  }

  // A batch of inserts, all or nothing. With no rollback journal, ROLLBACK is
  // not available: a failed batch is undone by deleting the rows it added
  // (ids only grow, so they are the ones above the highest id before it).
  template <typename Body>
  Status insert_batch(Body body) {
    auto highest = scalar("SELECT COALESCE(MAX(id), 0) FROM session_deltas");
    if (!highest.ok()) return Error{highest.error()};
    if (auto s = exec("BEGIN"); !s.ok()) return s;
    auto count_before = delta_count;
    Status result = body();
    if (!result.ok()) {
      (void)exec(("DELETE FROM session_deltas WHERE id > " + std::to_string(*highest)).c_str());
      delta_count = count_before;
      if (has_summary) (void)summaries.rebuild(db);  // it may hold part of the batch
    }
    if (auto s = exec("COMMIT"); !s.ok() && result.ok()) {
      delta_count = count_before;
      return s;
    }
    return result;
  }
};

Store::Store(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Store::~Store() = default;

Result<std::unique_ptr<Store>> Store::open_empty() {
  auto impl = std::make_unique<Impl>();
  if (auto s = impl->open_memory(); !s.ok()) return Error{s.error()};
  // Larger pages: fewer splits and less per-page work per insert (bench_raw_insert:
  // about 1.1x with the rollback journal off as well), and a smaller database.
  if (auto s = impl->exec("PRAGMA page_size = 65536"); !s.ok()) return Error{s.error()};
  if (auto s = impl->finish_open(); !s.ok()) return Error{s.error()};
  return std::unique_ptr<Store>(new Store(std::move(impl)));
}

Result<std::unique_ptr<Store>> Store::load_file(const std::string& path) {
  // The check reads the file through its own connection, so it can run beside
  // the copy; together they take as long as the slower of the two.
  std::string check_result;
  std::thread checker([&path, &check_result] { check_result = quick_check_file(path); });
  auto source = open_source_file(path);
  auto impl = std::make_unique<Impl>();
  Status copied = source.ok() ? impl->copy_from(source->get()) : Status(Error{source.error()});
  checker.join();
  if (!copied.ok()) return Error{copied.error()};
  if (check_result != "ok") return Error{"integrity check failed: " + check_result};
  if (auto s = impl->finish_open(); !s.ok()) return Error{s.error()};
  return std::unique_ptr<Store>(new Store(std::move(impl)));
}

Result<std::unique_ptr<Store>> Store::load(std::string_view bytes) {
  static constexpr std::string_view kHeader("SQLite format 3\0", 16);
  if (bytes.empty()) return open_empty();
  if (bytes.size() < 100 || bytes.substr(0, 16) != kHeader) {
    return Error{"not a SQLite database (bad header)"};
  }
  // The image is only read: deserialize it in place, then copy it as load_file does.
  Connection source;
  if (sqlite3_open_v2(":memory:", &source.db, SQLITE_OPEN_READWRITE, nullptr) != SQLITE_OK) {
    return Error{sqlite_error(source.db, "open in-memory database")};
  }
  auto data = reinterpret_cast<unsigned char*>(const_cast<char*>(bytes.data()));
  if (sqlite3_deserialize(source.db, "main", data, bytes.size(), bytes.size(),
                          SQLITE_DESERIALIZE_READONLY) != SQLITE_OK) {
    return Error{sqlite_error(source.db, "load database image")};
  }
  auto impl = std::make_unique<Impl>();
  if (auto s = impl->copy_from(source.db); !s.ok()) return Error{s.error()};
  auto check = impl->scalar_text("PRAGMA quick_check");
  if (!check || *check != "ok") {
    return Error{"integrity check failed: " + check.value_or(sqlite3_errmsg(impl->db))};
  }
  if (auto s = impl->finish_open(); !s.ok()) return Error{s.error()};
  return std::unique_ptr<Store>(new Store(std::move(impl)));
}

Result<std::unique_ptr<Store>> Store::open_readonly(const std::string& path) {
  auto impl = std::make_unique<Impl>();
  if (sqlite3_open_v2(path.c_str(), &impl->db, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
    return Error{sqlite_error(impl->db, "open " + path)};
  }
  auto version = impl->scalar("PRAGMA user_version");
  if (!version.ok()) return Error{path + ": " + version.error()};
  if (*version == 0) {
    // Migrating needs a writable copy; the file itself stays as it is.
    return load_file(path);
  }
  if (auto s = impl->register_functions(); !s.ok()) return Error{s.error()};
  if (*version > kSchemaVersion) {
    return Error{path + ": schema version " + std::to_string(*version) +
                 " is newer than this deltatap understands"};
  }
  if (auto s = impl->refresh_counts(); !s.ok()) return Error{path + ": " + s.error()};
  // A summary that does not add up (the file was changed by an older deltatap)
  // is not used: the history is scanned instead.
  if (SessionSummaries::present(impl->db)) {
    auto total = impl->scalar("SELECT COALESCE(SUM(created + updated + deleted), 0) FROM session_summary");
    impl->has_summary = total.ok() && *total == impl->delta_count;
  }
  return std::unique_ptr<Store>(new Store(std::move(impl)));
}

Status Store::save(const Delta& delta) { return save_batch({&delta, 1}); }

Status Store::save_batch(std::span<const Delta> deltas, std::optional<std::string> created_at,
                         std::vector<std::int64_t>* ids) {
  std::string at = created_at ? *created_at : format_timestamp(now_millis());
  // The summary orders a session's deltas by id too, so the ids are needed.
  std::vector<std::int64_t> own_ids;
  auto& assigned = ids ? *ids : own_ids;
  assigned.clear();
  auto status = impl_->insert_batch([&]() -> Status {
    std::int64_t inserted = 0;
    auto s = impl_->insert_rows(
        deltas.size(),
        [&](std::size_t i) {
          return std::tuple<const Delta&, std::string_view, std::int64_t>(deltas[i], at, 0);
        },
        &assigned, &inserted);
    if (!s.ok()) return s;
    return impl_->summarise(
        deltas.size(),
        [&](std::size_t i) { return SessionSummaries::Added{&deltas[i], assigned[i]}; }, inserted);
  });
  if (!status.ok()) assigned.clear();
  return status;
}

Status Store::save_with_created_at(std::span<const StoredDelta> deltas) {
  return impl_->insert_batch([&]() -> Status {
    std::int64_t inserted = 0;
    auto s = impl_->insert_rows(
        deltas.size(),
        [&](std::size_t i) {
          const auto& row = deltas[i];
          return std::tuple<const Delta&, std::string_view, std::int64_t>(row.delta,
                                                                          row.created_at, row.id);
        },
        nullptr, &inserted);
    if (!s.ok()) return s;
    return impl_->summarise(
        deltas.size(),
        [&](std::size_t i) { return SessionSummaries::Added{&deltas[i].delta, deltas[i].id}; },
        inserted);
  });
}

Result<DeltaPage> Store::get_deltas(const DeltaQuery& query) {
  std::optional<Cursor> cursor;
  if (query.before) {
    cursor = parse_cursor(*query.before);
    if (!cursor) return Error{"invalid cursor"};
  }
  int limit = std::clamp(query.limit, 1, kMaxQueryLimit);
  std::string sql = std::string("SELECT ") + kDeltaColumns + " FROM session_deltas WHERE 1";
  if (query.session_id) sql += " AND session_id = :sid";
  if (query.type) sql += " AND delta_type = :type";
  if (query.since) sql += " AND timestamp >= :since";
  if (query.until) sql += " AND timestamp < :until";
  // The first term bounds the index range; the second orders ties by id.
  if (cursor) sql += " AND timestamp <= :cts AND (timestamp, id) < (:cts, :cid)";
  sql += " ORDER BY timestamp DESC, id DESC LIMIT :limit";
  auto stmt = impl_->statement(sql);
  if (!stmt.ok()) return Error{stmt.error()};
  Use use(*stmt);
  if (query.session_id) bind_named(*use, ":sid", *query.session_id);
  if (query.type) bind_named(*use, ":type", to_string(*query.type));
  if (query.since) bind_named(*use, ":since", *query.since);
  if (query.until) bind_named(*use, ":until", *query.until);
  if (cursor) {
    bind_named(*use, ":cts", cursor->timestamp);
    sqlite3_bind_int64(*use, sqlite3_bind_parameter_index(*use, ":cid"), cursor->id);
  }
  sqlite3_bind_int(*use, sqlite3_bind_parameter_index(*use, ":limit"), limit + 1);
  DeltaPage page;
  int rc;
  while ((rc = sqlite3_step(*use)) == SQLITE_ROW) {
    if (static_cast<int>(page.deltas.size()) == limit) {
      const auto& last = page.deltas.back();
      page.next = format_cursor({last.delta.timestamp, last.id});
      break;
    }
    page.deltas.push_back(read_delta(*use));
  }
  if (rc != SQLITE_ROW && rc != SQLITE_DONE) return Error{sqlite_error(impl_->db, "query")};
  return page;
}

Status Store::for_each_delta(const std::function<bool(const StoredDelta&)>& visit) {
  // Not cached: a long export must not hold a statement another query needs.
  sqlite3_stmt* raw = nullptr;
  std::string sql = std::string("SELECT ") + kDeltaColumns + " FROM session_deltas ORDER BY id";
  if (sqlite3_prepare_v2(impl_->db, sql.c_str(), -1, &raw, nullptr) != SQLITE_OK) {
    return Error{sqlite_error(impl_->db, "prepare export")};
  }
  Statement stmt(raw);
  int rc;
  while ((rc = sqlite3_step(raw)) == SQLITE_ROW) {
    if (!visit(read_delta(raw))) return ok_status();
  }
  if (rc != SQLITE_DONE) return Error{sqlite_error(impl_->db, "export")};
  return ok_status();
}

Result<std::vector<SessionSummary>> Store::sessions() {
  // A read-only file without the summary is scanned instead, for the same columns.
  constexpr const char* kNewest =
      "(SELECT %s FROM session_deltas n WHERE n.session_id = g.session_id "
      "ORDER BY n.timestamp DESC, n.id DESC LIMIT 1)";
  auto newest = [&](const char* column) {
    std::string sql = kNewest;
    return sql.replace(sql.find("%s"), 2, column);
  };
  std::string sql =
      impl_->has_summary
          ? "SELECT session_id, created, updated, deleted, first_seen, last_seen, last_type, "
            "last_state FROM session_summary ORDER BY last_seen DESC, session_id"
          : "SELECT session_id, SUM(delta_type = 'created'), SUM(delta_type = 'updated'), "
            "SUM(delta_type = 'deleted'), MIN(timestamp), MAX(timestamp), " +
                newest("n.delta_type") + ", " +
                newest("CASE WHEN n.delta_type = 'deleted' THEN n.before_state "
                       "ELSE n.after_state END") +
                " FROM session_deltas g GROUP BY session_id "
                "ORDER BY MAX(timestamp) DESC, session_id";
  auto stmt = impl_->statement(sql);
  if (!stmt.ok()) return Error{stmt.error()};
  std::vector<SessionSummary> result;
  Use use(*stmt);
  int rc;
  while ((rc = sqlite3_step(*use)) == SQLITE_ROW) {
    SessionSummary row;
    row.session_id = column_text(*use, 0);
    row.created = sqlite3_column_int64(*use, 1);
    row.updated = sqlite3_column_int64(*use, 2);
    row.deleted = sqlite3_column_int64(*use, 3);
    row.first_seen = column_text(*use, 4);
    row.last_seen = column_text(*use, 5);
    row.last_type = column_text(*use, 6);
    row.last_state = column_optional(*use, 7);
    result.push_back(std::move(row));
  }
  if (rc != SQLITE_DONE) return Error{sqlite_error(impl_->db, "sessions")};
  return result;
}

Result<std::vector<StoredDelta>> Store::session_history(const std::string& session_id) {
  auto stmt = impl_->statement(std::string("SELECT ") + kDeltaColumns +
                               " FROM session_deltas WHERE session_id = ?1 "
                               "ORDER BY timestamp, id");
  if (!stmt.ok()) return Error{stmt.error()};
  Use use(*stmt);
  bind_text(*use, 1, session_id);
  std::vector<StoredDelta> rows;
  int rc;
  while ((rc = sqlite3_step(*use)) == SQLITE_ROW) rows.push_back(read_delta(*use));
  if (rc != SQLITE_DONE) return Error{sqlite_error(impl_->db, "session history")};
  return rows;
}

Result<std::int64_t> Store::cleanup(TimePoint older_than) {
  std::string bound = format_timestamp(older_than);
  return impl_->delete_where("created_at < ?1", [&](sqlite3_stmt* stmt) { bind_text(stmt, 1, bound); },
                             "cleanup");
}

Result<std::int64_t> Store::evict_beyond(std::int64_t max_rows) {
  std::int64_t excess = impl_->delta_count - max_rows;
  if (max_rows <= 0 || excess <= 0) return std::int64_t{0};
  return impl_->delete_where("id IN (SELECT id FROM session_deltas ORDER BY id LIMIT ?1)",
                             [&](sqlite3_stmt* stmt) { sqlite3_bind_int64(stmt, 1, excess); },
                             "evict");
}

Status Store::compact() {
  impl_->statements.clear();
  return impl_->exec("VACUUM");
}

Status Store::quarantine(const Rejected& rejected) {
  auto stmt = impl_->statement(
      "INSERT INTO rejected_messages (received_at, reason, detail, raw) VALUES (?1, ?2, ?3, ?4)");
  if (!stmt.ok()) return Error{stmt.error()};
  {
    Use use(*stmt);
    bind_text(*use, 1, rejected.received_at);
    bind_text(*use, 2, rejected.reason);
    bind_text(*use, 3, rejected.detail);
    auto raw = std::string_view(rejected.raw).substr(0, kMaxRejectedRawBytes);
    sqlite3_bind_blob64(*use, 4, raw.data(), raw.size(), SQLITE_STATIC);
    if (sqlite3_step(*use) != SQLITE_DONE) return Error{sqlite_error(impl_->db, "quarantine")};
  }
  ++impl_->rejected_count;
  if (impl_->rejected_count > kMaxRejectedRows) {
    auto evict = impl_->statement(
        "DELETE FROM rejected_messages WHERE id IN "
        "(SELECT id FROM rejected_messages ORDER BY id LIMIT ?1)");
    if (!evict.ok()) return Error{evict.error()};
    Use use(*evict);
    sqlite3_bind_int64(*use, 1, impl_->rejected_count - kMaxRejectedRows);
    if (sqlite3_step(*use) != SQLITE_DONE) return Error{sqlite_error(impl_->db, "evict rejected")};
    auto gone = sqlite3_changes64(impl_->db);
    impl_->rejected_count -= gone;
    impl_->rejected_evicted += gone;
  }
  return ok_status();
}

Result<std::vector<Rejected>> Store::rejected(int limit) {
  auto stmt = impl_->statement(
      "SELECT received_at, reason, detail, raw FROM rejected_messages ORDER BY id DESC LIMIT ?1");
  if (!stmt.ok()) return Error{stmt.error()};
  Use use(*stmt);
  sqlite3_bind_int(*use, 1, limit);
  std::vector<Rejected> rows;
  while (sqlite3_step(*use) == SQLITE_ROW) {
    Rejected row;
    row.received_at = column_text(*use, 0);
    row.reason = column_text(*use, 1);
    row.detail = column_text(*use, 2);
    auto blob = static_cast<const char*>(sqlite3_column_blob(*use, 3));
    if (blob) row.raw.assign(blob, sqlite3_column_bytes(*use, 3));
    rows.push_back(std::move(row));
  }
  return rows;
}

Status Store::record_event(const StreamEvent& event) {
  auto stmt = impl_->statement(
      "INSERT INTO stream_events (at, event, url, close_code, reason) VALUES (?1, ?2, ?3, ?4, ?5)");
  if (!stmt.ok()) return Error{stmt.error()};
  Use use(*stmt);
  bind_text(*use, 1, event.at);
  bind_text(*use, 2, event.event);
  bind_text(*use, 3, event.url);
  sqlite3_bind_int(*use, 4, event.close_code);
  bind_text(*use, 5, event.reason);
  if (sqlite3_step(*use) != SQLITE_DONE) return Error{sqlite_error(impl_->db, "stream event")};
  return ok_status();
}

Result<std::vector<StreamEvent>> Store::events(int limit) {
  auto stmt = impl_->statement(
      "SELECT at, event, url, close_code, reason FROM stream_events ORDER BY id DESC LIMIT ?1");
  if (!stmt.ok()) return Error{stmt.error()};
  Use use(*stmt);
  sqlite3_bind_int(*use, 1, limit);
  std::vector<StreamEvent> rows;
  while (sqlite3_step(*use) == SQLITE_ROW) {
    rows.push_back({column_text(*use, 0), column_text(*use, 1), column_text(*use, 2),
                    sqlite3_column_int(*use, 3), column_text(*use, 4)});
  }
  return rows;
}

StoreCounts Store::counts() {
  StoreCounts counts;
  counts.deltas = impl_->delta_count;
  counts.rejected = impl_->rejected_count;
  counts.rejected_evicted = impl_->rejected_evicted;
  counts.sessions =
      impl_->scalar(impl_->has_summary
                        ? "SELECT COUNT(*) FROM session_summary"
                        : "SELECT COUNT(*) FROM (SELECT DISTINCT session_id FROM session_deltas)")
          .value_or(0);
  counts.stream_events = impl_->scalar("SELECT COUNT(*) FROM stream_events").value_or(0);
  counts.memory_bytes = memory_bytes();
  counts.oldest = impl_->scalar_text("SELECT MIN(timestamp) FROM session_deltas");
  counts.newest = impl_->scalar_text("SELECT MAX(timestamp) FROM session_deltas");
  counts.schema_version = static_cast<int>(impl_->scalar("PRAGMA user_version").value_or(0));
  return counts;
}

std::int64_t Store::delta_count() const { return impl_->delta_count; }

std::int64_t Store::memory_bytes() {
  auto pages = impl_->scalar("PRAGMA page_count").value_or(0);
  auto page_size = impl_->scalar("PRAGMA page_size").value_or(0);
  return pages * page_size;
}

Status Store::write_copy(const std::string& path) {
  Connection file;
  if (sqlite3_open_v2(path.c_str(), &file.db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
                      nullptr) != SQLITE_OK) {
    return Error{sqlite_error(file.db, "open " + path)};
  }
  // The copy is a new file that nobody reads until it is renamed into place:
  // no rollback journal, and the caller fsyncs once at the end.
  char* message = nullptr;
  if (sqlite3_exec(file.db, "PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF", nullptr,
                   nullptr, &message) != SQLITE_OK) {
    std::string text = message ? message : "unknown error";
    sqlite3_free(message);
    return Error{"prepare " + path + ": " + text};
  }
  if (auto s = copy_pages(impl_->db, file.db, "copy the database to " + path); !s.ok()) return s;
  if (sqlite3_close(std::exchange(file.db, nullptr)) != SQLITE_OK) {
    return Error{"close " + path};
  }
  return ok_status();
}

Result<std::string> Store::check() {
  auto result = impl_->scalar_text("PRAGMA integrity_check");
  if (!result) return Error{sqlite_error(impl_->db, "integrity_check")};
  return *result;
}

Result<DatabaseImage> Store::serialize() {
  sqlite3_int64 size = 0;
  unsigned char* bytes = sqlite3_serialize(impl_->db, "main", &size, 0);
  if (!bytes) return Error{"serialize failed (out of memory?)"};
  return DatabaseImage(bytes, static_cast<std::size_t>(size));
}

std::int64_t Store::last_delta_id() {
  return impl_
      ->scalar("SELECT COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'session_deltas'), "
               "(SELECT MAX(id) FROM session_deltas), 0)")
      .value_or(0);
}

}  // namespace deltatap
