// bench_raw_insert: the raw limit that ingest is measured against.
//
// Reads every delta row of a database file (what deltatapd stored in the
// ingest run), then times inserting those same rows into a fresh in-memory
// database with deltatapd's own schema: one prepared statement, 1,000 rows per
// transaction, nothing else. The schema is taken from Store::open_empty(), so
// it is the daemon's exactly, indexes included.
//
//   bench_raw_insert --from DB [--rows N] [--tuned] [--page-size P]
//                    [--journal-mode M] [--memdb] [--rows-per-statement K] [--repeat R]
//
// --tuned sets a 64 KiB page size and no rollback journal first: what an
// in-memory database whose durability comes from the journal file could use.
// --page-size and --journal-mode set one of the two, to tell their shares apart.
// --memdb inserts into a deserialized database, what deltatapd runs on after a
// restart (Store::load), instead of a fresh ":memory:" one.
// --rows-per-statement K inserts K rows per statement (multi-row VALUES).
// Prints one JSON line; rows_per_s is the best of the R repetitions.
#include <sqlite3.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "bench.h"
#include "storage/store.h"

namespace {

using namespace deltatap;
using namespace deltatap::bench;

struct Row {
  std::string session_id, type;
  std::optional<std::string> before, after;
  std::string timestamp, created_at;
};

[[noreturn]] void fail(const std::string& what, sqlite3* db = nullptr) {
  std::fprintf(stderr, "bench_raw_insert: %s%s%s\n", what.c_str(), db ? ": " : "",
               db ? sqlite3_errmsg(db) : "");
  std::exit(1);
}

void exec(sqlite3* db, const std::string& sql) {
  if (sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr) != SQLITE_OK) fail(sql, db);
}

std::optional<std::string> column(sqlite3_stmt* stmt, int i) {
  if (sqlite3_column_type(stmt, i) == SQLITE_NULL) return std::nullopt;
  return std::string(reinterpret_cast<const char*>(sqlite3_column_text(stmt, i)),
                     sqlite3_column_bytes(stmt, i));
}

std::vector<Row> read_rows(const std::string& path, std::int64_t limit) {
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
    fail("open " + path, db);
  }
  sqlite3_stmt* stmt = nullptr;
  std::string sql =
      "SELECT session_id, delta_type, before_state, after_state, timestamp, created_at "
      "FROM session_deltas ORDER BY id LIMIT " + std::to_string(limit);
  if (sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt, nullptr) != SQLITE_OK) fail("read", db);
  std::vector<Row> rows;
  while (sqlite3_step(stmt) == SQLITE_ROW) {
    rows.push_back({*column(stmt, 0), *column(stmt, 1), column(stmt, 2), column(stmt, 3),
                    *column(stmt, 4), *column(stmt, 5)});
  }
  sqlite3_finalize(stmt);
  sqlite3_close(db);
  return rows;
}

// The CREATE statements of deltatapd's schema, in creation order.
std::vector<std::string> store_schema() {
  auto store = Store::open_empty();
  if (!store.ok()) fail("Store::open_empty: " + store.error());
  auto image = (*store)->serialize();
  if (!image.ok()) fail("serialize: " + image.error());
  sqlite3* db = nullptr;
  sqlite3_open(":memory:", &db);
  auto size = image->size();
  auto copy = static_cast<unsigned char*>(sqlite3_malloc64(size));
  std::memcpy(copy, image->view().data(), size);
  if (sqlite3_deserialize(db, "main", copy, size, size, SQLITE_DESERIALIZE_FREEONCLOSE) !=
      SQLITE_OK) {
    fail("deserialize", db);
  }
  sqlite3_stmt* stmt = nullptr;
  sqlite3_prepare_v2(db,
                     "SELECT sql FROM sqlite_master WHERE sql IS NOT NULL "
                     "AND name NOT LIKE 'sqlite_%' ORDER BY rowid",
                     -1, &stmt, nullptr);
  std::vector<std::string> ddl;
  while (sqlite3_step(stmt) == SQLITE_ROW) ddl.push_back(*column(stmt, 0));
  sqlite3_finalize(stmt);
  sqlite3_close(db);
  return ddl;
}

// SQLITE_STATIC: the rows outlive the statement's use of them, so no copy.
void bind(sqlite3_stmt* stmt, int i, const std::string& text) {
  sqlite3_bind_text64(stmt, i, text.data(), text.size(), SQLITE_STATIC, SQLITE_UTF8);
}

void bind(sqlite3_stmt* stmt, int i, const std::optional<std::string>& text) {
  if (text) bind(stmt, i, *text); else sqlite3_bind_null(stmt, i);
}

struct Run {
  double seconds = 0;
  std::int64_t memory_bytes = 0;
};

struct Settings {
  std::int64_t page_size = 0;  // 0: SQLite's default
  std::string journal_mode;    // "": SQLite's default (MEMORY for :memory:)
  bool memdb = false;          // a deserialized database, as after Store::load
  std::size_t rows_per_statement = 1;  // > 1: multi-row VALUES, as Store::save_batch
};

// "INSERT ... VALUES (?,?,?,?,?,?), ..." with `rows` rows of six parameters.
std::string insert_sql(std::size_t rows) {
  std::string sql =
      "INSERT INTO session_deltas (session_id, delta_type, before_state, after_state, "
      "timestamp, created_at) VALUES ";
  for (std::size_t i = 0; i < rows; ++i) sql += i ? ",(?,?,?,?,?,?)" : "(?,?,?,?,?,?)";
  return sql;
}

// Moves the (empty, schema-only) database into a memdb the way Store::load
// builds one from a snapshot file, so inserts are timed on what a restarted
// daemon runs on.
void to_memdb(sqlite3* db) {
  sqlite3_int64 size = 0;
  unsigned char* image = sqlite3_serialize(db, "main", &size, 0);
  if (!image) fail("serialize", db);
  if (sqlite3_deserialize(db, "main", image, size, size,
                          SQLITE_DESERIALIZE_FREEONCLOSE | SQLITE_DESERIALIZE_RESIZEABLE) !=
      SQLITE_OK) {
    fail("deserialize", db);
  }
  sqlite3_int64 limit = 2'000'000'000;  // past the 1 GiB default, as far as SQLite goes
  sqlite3_file_control(db, "main", SQLITE_FCNTL_SIZE_LIMIT, &limit);
}

Run insert_all(const std::vector<Row>& rows, const std::vector<std::string>& ddl,
               const Settings& settings) {
  sqlite3* db = nullptr;
  if (sqlite3_open(":memory:", &db) != SQLITE_OK) fail("open :memory:", db);
  if (settings.page_size > 0) exec(db, "PRAGMA page_size = " + std::to_string(settings.page_size));
  if (!settings.journal_mode.empty()) exec(db, "PRAGMA journal_mode = " + settings.journal_mode);
  for (const auto& statement : ddl) exec(db, statement);
  if (settings.memdb) {
    to_memdb(db);
    if (!settings.journal_mode.empty()) exec(db, "PRAGMA journal_mode = " + settings.journal_mode);
  }
  auto prepare = [db](std::size_t rows) {
    sqlite3_stmt* stmt = nullptr;
    if (sqlite3_prepare_v2(db, insert_sql(rows).c_str(), -1, &stmt, nullptr) != SQLITE_OK) {
      fail("prepare insert", db);
    }
    return stmt;
  };
  sqlite3_stmt* insert = prepare(1);
  std::size_t per_statement = std::max<std::size_t>(settings.rows_per_statement, 1);
  sqlite3_stmt* insert_many = per_statement > 1 ? prepare(per_statement) : nullptr;
  auto bind_row = [](sqlite3_stmt* stmt, int first, const Row& row) {
    bind(stmt, first + 1, row.session_id);
    bind(stmt, first + 2, row.type);
    bind(stmt, first + 3, row.before);
    bind(stmt, first + 4, row.after);
    bind(stmt, first + 5, row.timestamp);
    bind(stmt, first + 6, row.created_at);
  };
  auto step = [db](sqlite3_stmt* stmt) {
    if (sqlite3_step(stmt) != SQLITE_DONE) fail("insert", db);
    sqlite3_reset(stmt);
  };
  constexpr std::size_t kPerTransaction = 1000;
  auto started = SteadyClock::now();
  for (std::size_t begin = 0; begin < rows.size(); begin += kPerTransaction) {
    std::size_t end = std::min(rows.size(), begin + kPerTransaction);
    exec(db, "BEGIN");
    std::size_t i = begin;
    for (; insert_many && i + per_statement <= end; i += per_statement) {
      for (std::size_t k = 0; k < per_statement; ++k) bind_row(insert_many, 6 * k, rows[i + k]);
      step(insert_many);
    }
    for (; i < end; ++i) {
      bind_row(insert, 0, rows[i]);
      step(insert);
    }
    exec(db, "COMMIT");
  }
  Run run;
  run.seconds = seconds_since(started);
  sqlite3_finalize(insert);
  sqlite3_finalize(insert_many);
  sqlite3_stmt* pages = nullptr;
  sqlite3_prepare_v2(db, "SELECT page_count * page_size FROM pragma_page_count, pragma_page_size",
                     -1, &pages, nullptr);
  if (sqlite3_step(pages) == SQLITE_ROW) run.memory_bytes = sqlite3_column_int64(pages, 0);
  sqlite3_finalize(pages);
  sqlite3_close(db);
  return run;
}

}  // namespace

int main(int argc, char** argv) {
  std::string from;
  std::int64_t limit = 0, repeat = 0;
  Settings settings;
  {
    Args args(argc, argv);
    from = args.text("from");
    limit = args.number("rows", INT64_MAX);
    repeat = args.number("repeat", 3);
    bool tuned = args.flag("tuned");
    settings.page_size = args.number("page-size", tuned ? 65536 : 0);
    settings.journal_mode = args.text("journal-mode", tuned ? "OFF" : "");
    settings.memdb = args.flag("memdb");
    settings.rows_per_statement = static_cast<std::size_t>(args.number("rows-per-statement", 1));
  }
  std::string mode = settings.page_size == 0 && settings.journal_mode.empty()
                         ? "default"
                         : "page_size=" + std::to_string(settings.page_size) +
                               " journal_mode=" + settings.journal_mode;
  if (settings.memdb) mode += " memdb";
  if (settings.rows_per_statement > 1) {
    mode += " rows_per_statement=" + std::to_string(settings.rows_per_statement);
  }
  if (from.empty()) fail("--from DB is required");
  auto rows = read_rows(from, limit);
  if (rows.empty()) fail(from + " holds no deltas");
  auto ddl = store_schema();
  std::optional<Run> best;
  for (std::int64_t i = 0; i < std::max<std::int64_t>(repeat, 1); ++i) {
    Run run = insert_all(rows, ddl, settings);
    std::fprintf(stderr, "bench_raw_insert: %zu rows in %.3f s\n", rows.size(), run.seconds);
    if (!best || run.seconds < best->seconds) best = run;
  }
  JsonLine()
      .add("mode", mode)
      .add("rows", static_cast<std::int64_t>(rows.size()))
      .add("seconds", best->seconds)
      .add("rows_per_s", static_cast<double>(rows.size()) / best->seconds)
      .add("memory_bytes", best->memory_bytes)
      .print();
}
