// Store, how a database comes into being and goes to a file: the schema and
// its migration, opening and loading, copying pages, writing a copy and
// serializing. Writing and reading rows is store.cc.
#include "storage/store.h"

#include <sqlite3.h>

#include "storage/session_ledger.h"
#include "storage/snapshot.h"
#include "storage/sqlite_statement.h"
#include "storage/state_codec.h"
#include "storage/state_columns.h"
#include "storage/store_impl.h"

#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

namespace deltatap {

// The document's CHECKs on delta_type and origin, as they were written, and
// as deltatap writes them. SQLite (3.40) checks a value against a list of
// three by building a temporary table for every row written: 3 µs of a 4 µs
// insert in memory, more in a file. Comparisons are the same constraint,
// checked in place.
constexpr std::string_view kDeltaTypeInList = "CHECK(delta_type IN ('created', 'updated', 'deleted'))";
constexpr std::string_view kOriginInList = "CHECK(origin IN ('stream', 'resync', 'reconcile'))";
constexpr std::string_view kDeltaTypeCheck =
    "CHECK(delta_type = 'created' OR delta_type = 'updated' OR delta_type = 'deleted')";
constexpr std::string_view kOriginCheck =
    "CHECK(origin = 'stream' OR origin = 'resync' OR origin = 'reconcile')";

// session_deltas in either layout of its times (time_columns.h): the columns
// are the same, TEXT or INTEGER.
std::string create_deltas_sql(TimeColumns layout, std::string_view table) {
  std::string sql = "CREATE TABLE IF NOT EXISTS " + std::string(table) +
                    " (\n"
                    "  id INTEGER PRIMARY KEY AUTOINCREMENT,\n"
                    "  session_id TEXT NOT NULL,\n"
                    "  delta_type TEXT NOT NULL " + std::string(kDeltaTypeCheck) + ",\n"
                    "  before_state TEXT,\n"
                    "  after_state TEXT,\n";
  if (layout.integer) {
    sql += "  timestamp INTEGER NOT NULL,\n  created_at INTEGER NOT NULL,\n";
  } else {
    sql += "  timestamp TEXT NOT NULL,\n";
    sql += "  created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),\n";
  }
  return sql + "  origin TEXT NOT NULL DEFAULT 'stream' " + std::string(kOriginCheck) + ",\n" +
         "  gap INTEGER NOT NULL DEFAULT 0 CHECK(gap IN (0, 1)),\n"
         "  before_ref INTEGER\n)";
}

// The indexes of session_deltas (or of `table`, which becomes it:
// time_conversion.cc). Each layout names its own, so that both tables of a
// conversion have theirs at once.
std::string create_delta_indexes_sql(TimeColumns layout, std::string_view table) {
  const std::string on = " ON " + std::string(table) + "(";
  const std::string prefix = std::string("CREATE INDEX IF NOT EXISTS ") +
                             (layout.integer ? "idx_session_deltas_ms_" : "idx_session_deltas_");
  return prefix + "session_id" + on + "session_id);\n" +
         prefix + "timestamp" + on + "timestamp);\n" +
         prefix + "created_at" + on + "created_at);\n" +
         prefix + "session_ts" + on + "session_id, timestamp);\n" +
         prefix + "before_ref" + on + "before_ref) WHERE before_ref IS NOT NULL;\n";
}

// The view giving every row's states as JSON text whatever their stored form
// (state_codec.h), and its times as text whatever theirs.
std::string create_json_view_sql() {
  return "CREATE VIEW IF NOT EXISTS session_deltas_json AS SELECT d.id AS id, "
         "d.session_id AS session_id, d.delta_type AS delta_type, " +
         json_before_sql("d") + " AS before_state, " + json_after_sql("d") + " AS after_state, " +
         time_text_sql("d.timestamp") + " AS timestamp, " + time_text_sql("d.created_at") +
         " AS created_at, d.origin AS origin, d.gap AS gap FROM session_deltas d";
}

namespace {

constexpr const char* kCreateOtherTables = R"sql(
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

// Version 3 (compression): the dictionaries, and the view.
std::string create_compression_schema() {
  return std::string(kCreateStateDictionaries) + ";\n" + create_json_view_sql();
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

// The one wording for a file of a schema this binary does not know, whoever
// meets it (the daemon refuses to start on it; see service.cc, which reads the
// version from the header before loading so as to leave such a file alone).
std::string newer_version_error(std::int64_t version) {
  return "written by a newer deltatap, version " + std::to_string(version) +
         " (this one understands up to version " + std::to_string(kSchemaVersion) + ")";
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

DatabaseImage::DatabaseImage(unsigned char* bytes, std::size_t size) : bytes_(bytes), size_(size) {}
void DatabaseImage::Free::operator()(unsigned char* p) const { sqlite3_free(p); }

// Tuning is for the in-memory database only; files keep SQLite's defaults.
Status Store::Impl::open_memory() {
  // One thread at a time uses a store (the store lane): without SQLite's own
  // mutex, every step and column read skips a lock and an unlock (15 % of an
  // analytics answer's time in a profile).
  if (sqlite3_open_v2(":memory:", &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                      nullptr) !=
      SQLITE_OK) {
    return Error{sqlite_error(db, "open in-memory database")};
  }
  return ok_status();
}

// An in-memory destination must have the source's page size before the copy.
Status Store::Impl::copy_from(sqlite3* source) {
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

Status Store::Impl::register_functions() {
  if (sqlite3_create_function(db, "deltatap_normalise", 1,
                              SQLITE_UTF8 | SQLITE_DETERMINISTIC | SQLITE_DIRECTONLY, nullptr,
                              normalise_sql_function, nullptr, nullptr) != SQLITE_OK) {
    return Error{sqlite_error(db, "register function")};
  }
  if (auto s = StateCodec::register_sql_function(db); !s.ok()) return s;
  if (auto s = TimeColumns::register_sql_function(db); !s.ok()) return s;
  return SessionLedger::register_functions(db);
}

// Brings any known version up to kSchemaVersion, its CHECKs written as
// comparisons.
Status Store::Impl::migrate() {
  if (auto s = migrate_version(); !s.ok()) return s;
  return write_checks_as_comparisons();
}

// A table written with the lists of kDeltaTypeInList and kOriginInList gets
// the comparisons instead. Only the constraint's text changes, and every row
// satisfies both: SQLite documents such an edit through writable_schema
// ("Making Other Kinds Of Table Schema Changes"), the schema version bumped
// so that every statement prepared before is prepared again.
Status Store::Impl::write_checks_as_comparisons() {
  std::vector<std::pair<std::string, std::string>> rewrites;  // (table, new sql)
  for (const char* table : {"session_deltas", "session_deltas_next"}) {
    auto stmt = statement("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?1");
    if (!stmt.ok()) return Error{stmt.error()};
    Use use(*stmt);
    sqlite3_bind_text(*use, 1, table, -1, SQLITE_STATIC);
    if (sqlite3_step(*use) != SQLITE_ROW) continue;
    std::string sql = column_text(*use, 0);
    bool changed = false;
    for (auto [from, to] : {std::pair{kDeltaTypeInList, kDeltaTypeCheck},
                            std::pair{kOriginInList, kOriginCheck}}) {
      if (auto at = sql.find(from); at != std::string::npos) {
        sql.replace(at, from.size(), to);
        changed = true;
      }
    }
    if (changed) rewrites.emplace_back(table, std::move(sql));
  }
  if (rewrites.empty()) return ok_status();
  statements.clear();
  auto version = scalar("PRAGMA schema_version");
  if (!version.ok()) return Error{version.error()};
  if (auto s = exec("BEGIN IMMEDIATE; PRAGMA writable_schema = ON"); !s.ok()) return s;
  Status result = [&]() -> Status {
    for (const auto& [table, sql] : rewrites) {
      auto update = statement("UPDATE sqlite_master SET sql = ?1 WHERE type = 'table' AND name = ?2");
      if (!update.ok()) return Error{update.error()};
      Use use(*update);
      bind_text(*use, 1, sql);
      bind_text(*use, 2, table);
      if (sqlite3_step(*use) != SQLITE_DONE) return Error{sqlite_error(db, "rewrite CHECKs")};
    }
    return exec(("PRAGMA schema_version = " + std::to_string(*version + 1)).c_str());
  }();
  statements.clear();
  (void)exec("PRAGMA writable_schema = OFF");
  if (result.ok()) return exec("COMMIT");
  (void)exec("ROLLBACK");
  return Error{"write the CHECKs as comparisons: " + result.error()};
}

// Brings any known version up to kSchemaVersion.
Status Store::Impl::migrate_version() {
  auto version = scalar("PRAGMA user_version");
  if (!version.ok()) return Error{version.error()};
  if (*version > kSchemaVersion) return Error{newer_version_error(*version)};
  if (*version >= 3) {
    // A view written before after states could be prefixed reads them with
    // deltatap_json, which cannot: written again (a view holds no data).
    // So is one written before times could be integers (it gives them as they are).
    auto current = scalar("SELECT COUNT(*) FROM sqlite_master WHERE type = 'view' AND "
                          "name = 'session_deltas_json' AND sql LIKE '%deltatap_after%' AND "
                          "sql LIKE '%typeof%'");
    if (!current.ok()) return Error{current.error()};
    if (!*current) {
      if (auto s = exec("DROP VIEW IF EXISTS session_deltas_json"); !s.ok()) return s;
      if (auto s = exec(create_compression_schema().c_str()); !s.ok()) return s;
    }
    // Version 4 only allows integer times (time_columns.h): a version 3 file
    // is one as it stands.
    if (*version == kSchemaVersion) return ok_status();
    return exec(("PRAGMA user_version = " + std::to_string(kSchemaVersion)).c_str());
  }
  auto has_table =
      scalar("SELECT COUNT(*) FROM sqlite_master WHERE type='table' AND name='session_deltas'");
  if (!has_table.ok()) return Error{has_table.error()};
  if (auto s = exec("BEGIN IMMEDIATE"); !s.ok()) return s;
  Status result = !*has_table     ? create_schema(TimeColumns{})
                  : *version == 0 ? migrate_from_version_0()
                  : *version == 1 ? migrate_from_version_1()
                                  : migrate_from_version_2();
  if (result.ok()) {
    result = exec(("PRAGMA user_version = " + std::to_string(kSchemaVersion)).c_str());
  }
  if (result.ok()) return exec("COMMIT");
  (void)exec("ROLLBACK");
  return Error{"migration failed: " + result.error()};
}

Status Store::Impl::create_schema(TimeColumns layout) {
  if (auto s = exec(create_deltas_sql(layout, "session_deltas").c_str()); !s.ok()) return s;
  if (auto s = exec(create_delta_indexes_sql(layout, "session_deltas").c_str()); !s.ok()) return s;
  if (auto s = exec(kCreateOtherTables); !s.ok()) return s;
  return exec(create_compression_schema().c_str());
}

// Without a rollback journal (finish_open) these statements cannot be undone,
// but on an empty table nothing is lost if one fails: the next start finds
// the table, or creates it.
Status Store::Impl::recreate_empty_deltas(TimeColumns layout) {
  statements.clear();  // the cached inserts name the old columns
  auto sequence = scalar(
      "SELECT COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'session_deltas'), 0)");
  if (!sequence.ok()) return Error{sequence.error()};
  // Dropping the table drops its indexes and its sqlite_sequence row.
  for (const std::string& sql :
       {std::string("DROP VIEW IF EXISTS session_deltas_json"),
        std::string("DROP TABLE session_deltas"), create_deltas_sql(layout, "session_deltas"),
        create_delta_indexes_sql(layout, "session_deltas"), create_compression_schema(),
        "INSERT INTO sqlite_sequence (name, seq) SELECT 'session_deltas', " +
            std::to_string(*sequence) + " WHERE " + std::to_string(*sequence) + " > 0"}) {
    if (auto s = exec(sql.c_str()); !s.ok()) return Error{"recreate session_deltas: " + s.error()};
  }
  times = layout;
  return ok_status();
}

// The document's table: created_at defaults to datetime('now') and times are
// stored as received. Rebuild it with the new columns and default and
// normalised times. Every delta becomes origin `stream`, gap 0: nothing was
// inferred before deltatap.
Status Store::Impl::migrate_from_version_0() {
  // The statement cache may hold statements on the old table.
  statements.clear();
  std::string create_new = create_deltas_sql(TimeColumns{}, "session_deltas");
  create_new.replace(create_new.find("session_deltas"), std::strlen("session_deltas"),
                     "session_deltas_v2");
  std::string copy = std::string("INSERT INTO session_deltas_v2 (") + kVersion1Columns +
                     ") SELECT id, session_id, delta_type, before_state, after_state, "
                     "deltatap_normalise(timestamp), deltatap_normalise(created_at) "
                     "FROM session_deltas";
  for (const std::string& sql :
       {create_new, copy, std::string("DROP TABLE session_deltas"),
        std::string("ALTER TABLE session_deltas_v2 RENAME TO session_deltas"),
        create_delta_indexes_sql(TimeColumns{}, "session_deltas"), std::string(kCreateOtherTables),
        create_compression_schema()}) {
    if (auto s = exec(sql.c_str()); !s.ok()) return s;
  }
  return ok_status();
}

// Version 1 had the times normalised already: the two columns are added in
// place (their defaults fill every row), and v1's session_summary gives way to
// the ledger, which finish_open() builds from the history. Then as version 2.
Status Store::Impl::migrate_from_version_1() {
  statements.clear();
  for (const std::string& sql :
       {"ALTER TABLE session_deltas ADD COLUMN origin TEXT NOT NULL DEFAULT 'stream' " +
            std::string(kOriginCheck),
        std::string("ALTER TABLE session_deltas ADD COLUMN gap INTEGER NOT NULL DEFAULT 0 "
                    "CHECK(gap IN (0, 1))"),
        std::string("DROP TABLE IF EXISTS session_summary")}) {
    if (auto s = exec(sql.c_str()); !s.ok()) return s;
  }
  return migrate_from_version_2();
}

// Version 3 adds what compression needs (state_codec.h): before_ref (NULL in
// every row: no reference), its index, the dictionaries and the view. Every
// value stays the TEXT it was.
Status Store::Impl::migrate_from_version_2() {
  statements.clear();
  for (const std::string& sql :
       {std::string("ALTER TABLE session_deltas ADD COLUMN before_ref INTEGER"),
        create_delta_indexes_sql(TimeColumns{}, "session_deltas"), std::string(kCreateOtherTables),
        create_compression_schema()}) {
    if (auto s = exec(sql.c_str()); !s.ok()) return s;
  }
  return ok_status();
}

// Only for the in-memory database. The migration keeps SQLite's rollback
// journal; after it the journal is off, since the journal file and snapshots
// give durability and an insert no longer copies each page it touches.
Status Store::Impl::finish_open(bool keep_ledger) {
  if (auto s = register_functions(); !s.ok()) return s;
  if (auto s = migrate(); !s.ok()) return s;
  auto layout = TimeColumns::of(db);
  if (!layout.ok()) return Error{layout.error()};
  times = *layout;
  if (auto s = exec("PRAGMA journal_mode = OFF"); !s.ok()) return s;
  if (auto s = refresh_counts(); !s.ok()) return s;
  if (auto s = columns.open(db); !s.ok()) return s;
  if (!keep_ledger) return exec("DROP TABLE IF EXISTS sessions; DROP TABLE IF EXISTS activity");
  if (auto s = ledger.ensure(db, delta_count); !s.ok()) return s;
  has_ledger = true;
  return ok_status();
}

Status Store::Impl::refresh_counts() {
  auto deltas = scalar("SELECT COUNT(*) FROM session_deltas");
  if (!deltas.ok()) return Error{deltas.error()};
  auto rejected = scalar("SELECT COUNT(*) FROM rejected_messages");
  if (!rejected.ok()) return Error{rejected.error()};
  delta_count = *deltas;
  rejected_count = *rejected;
  return ok_status();
}

Store::Store(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Store::~Store() = default;

Store::LoadCheck Store::load_check() const { return impl_->load_check; }

Result<std::unique_ptr<Store>> Store::open_empty(StoreOptions options) {
  auto impl = std::make_unique<Impl>();
  if (auto s = impl->open_memory(); !s.ok()) return Error{s.error()};
  // Larger pages: fewer splits and less per-page work per insert (bench_raw_insert:
  // about 1.1x with the rollback journal off as well), and a smaller database.
  if (auto s = impl->exec("PRAGMA page_size = 65536"); !s.ok()) return Error{s.error()};
  if (auto s = impl->finish_open(options.ledger); !s.ok()) return Error{s.error()};
  return std::unique_ptr<Store>(new Store(std::move(impl)));
}

Result<std::unique_ptr<Store>> Store::load_file(const std::string& path) {
  // The check reads the file on its own (the digest with read(), quick_check
  // through its own connection), so it can run beside the copy; together they
  // take as long as the slower of the two.
  std::string check_result;
  LoadCheck check_used = LoadCheck::kQuickCheck;
  std::thread checker([&path, &check_result, &check_used] {
    if (snapshot_matches_digest(path)) {
      check_used = LoadCheck::kDigest;
      check_result = "ok";
    } else {
      check_result = quick_check_file(path);
    }
  });
  auto source = open_source_file(path);
  auto impl = std::make_unique<Impl>();
  Status copied = source.ok() ? impl->copy_from(source->get()) : Status(Error{source.error()});
  checker.join();
  if (!copied.ok()) return Error{copied.error()};
  if (check_result != "ok") return Error{"integrity check failed: " + check_result};
  if (auto s = impl->finish_open(); !s.ok()) return Error{s.error()};
  impl->load_check = check_used;
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
  if (*version > kSchemaVersion) return Error{path + ": " + newer_version_error(*version)};
  if (*version < kSchemaVersion) return load_file(path);
  if (auto s = impl->register_functions(); !s.ok()) return Error{s.error()};
  auto layout = TimeColumns::of(impl->db);
  if (!layout.ok()) return Error{path + ": " + layout.error()};
  impl->times = *layout;
  if (auto s = impl->refresh_counts(); !s.ok()) return Error{path + ": " + s.error()};
  if (auto s = impl->columns.open(impl->db); !s.ok()) return Error{path + ": " + s.error()};
  // An older version, or a ledger that does not add up (rows written by some
  // other program): migrating and rebuilding need a writable copy, so the file
  // is loaded into memory and changed there, and stays as it is.
  bool usable = *version == kSchemaVersion && SessionLedger::present(impl->db);
  if (usable) {
    auto total = impl->scalar("SELECT COALESCE(SUM(created + updated + deleted), 0) FROM sessions");
    usable = total.ok() && *total == impl->delta_count;
  }
  if (!usable) return load_file(path);
  impl->has_ledger = true;
  return std::unique_ptr<Store>(new Store(std::move(impl)));
}

Status Store::write_copy(const std::string& path) {
  if (auto s = impl_->settle_ledger(); !s.ok()) return s;
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
  if (auto s = impl_->settle_ledger(); !s.ok()) return Error{s.error()};
  auto result = impl_->scalar_text("PRAGMA integrity_check");
  if (!result) return Error{sqlite_error(impl_->db, "integrity_check")};
  if (*result != "ok") return *result;
  // SQLite's pages can be sound while a value is not: every state decodes
  // and every reference resolves (storage/state_columns.h).
  return impl_->columns.verify(impl_->db);
}

Result<DatabaseImage> Store::serialize() {
  if (auto s = impl_->settle_ledger(); !s.ok()) return Error{s.error()};
  sqlite3_int64 size = 0;
  unsigned char* bytes = sqlite3_serialize(impl_->db, "main", &size, 0);
  if (!bytes) return Error{"serialize failed (out of memory?)"};
  return DatabaseImage(bytes, static_cast<std::size_t>(size));
}

}  // namespace deltatap
