// bench_backup_snapshot: a measured alternative to the daemon's snapshot, not
// used by it. Today a snapshot calls sqlite3_serialize() on the io thread: a
// full copy of the database that blocks the stream for as long as it takes and
// doubles the memory. SQLite's online backup can instead copy the live
// database into the snapshot's temporary file a few pages at a time, with the
// stream handled between steps; writes made on the same connection meanwhile
// are carried into the backup as they happen, so it never restarts.
//
//   bench_backup_snapshot --db PATH --out PATH [--pages-per-step P] [--rows-between R]
//
// Loads PATH as Store::load does (sqlite3_deserialize), backs it up to OUT in
// steps of P pages, inserting R rows (copies of the newest) between steps as a
// stream would, checks that OUT holds every row, and then times one
// sqlite3_serialize() as the reference. Peak RSS is read after each, so the
// backup's is not hidden by the copy's. Prints one JSON line.
#include <fcntl.h>
#include <sqlite3.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "bench.h"

namespace {

using namespace deltatap;
using namespace deltatap::bench;

[[noreturn]] void fail(const std::string& what, sqlite3* db = nullptr) {
  std::fprintf(stderr, "bench_backup_snapshot: %s%s%s\n", what.c_str(), db ? ": " : "",
               db ? sqlite3_errmsg(db) : "");
  std::exit(1);
}

void exec(sqlite3* db, const char* sql) {
  if (sqlite3_exec(db, sql, nullptr, nullptr, nullptr) != SQLITE_OK) fail(sql, db);
}

std::int64_t scalar(sqlite3* db, const char* sql) {
  sqlite3_stmt* stmt = nullptr;
  if (sqlite3_prepare_v2(db, sql, -1, &stmt, nullptr) != SQLITE_OK) fail(sql, db);
  std::int64_t value = sqlite3_step(stmt) == SQLITE_ROW ? sqlite3_column_int64(stmt, 0) : -1;
  sqlite3_finalize(stmt);
  return value;
}

}  // namespace

int main(int argc, char** argv) {
  std::string path, out;
  std::int64_t pages_per_step = 0, rows_between = 0;
  {
    Args args(argc, argv);
    path = args.text("db");
    out = args.text("out");
    pages_per_step = args.number("pages-per-step", 256);
    rows_between = args.number("rows-between", 2);
  }
  if (path.empty() || out.empty()) fail("usage: --db PATH --out PATH [--pages-per-step P] [--rows-between R]");

  // Read straight into SQLite's buffer: no second copy of the file in memory,
  // so the peak RSS below is the database's own plus what the snapshot adds.
  std::FILE* in = std::fopen(path.c_str(), "rb");
  if (!in) fail("cannot open " + path);
  std::fseek(in, 0, SEEK_END);
  auto size = static_cast<std::size_t>(std::ftell(in));
  std::fseek(in, 0, SEEK_SET);
  auto bytes = static_cast<unsigned char*>(sqlite3_malloc64(size));
  if (!bytes) fail("out of memory");
  if (std::fread(bytes, 1, size, in) != size) fail("short read of " + path);
  std::fclose(in);
  sqlite3* db = nullptr;
  sqlite3_open(":memory:", &db);
  if (sqlite3_deserialize(db, "main", bytes, size, size,
                          SQLITE_DESERIALIZE_FREEONCLOSE | SQLITE_DESERIALIZE_RESIZEABLE) != SQLITE_OK) {
    fail("deserialize", db);
  }
  auto rss_loaded = peak_rss_bytes();

  std::string temporary = out + ".tmp";
  std::remove(temporary.c_str());
  sqlite3* target = nullptr;
  if (sqlite3_open(temporary.c_str(), &target) != SQLITE_OK) fail("open " + temporary, target);
  // The file is renamed into place only when complete and synced, so it
  // needs neither a rollback journal nor SQLite's own syncs.
  exec(target, "PRAGMA journal_mode = OFF");
  exec(target, "PRAGMA synchronous = OFF");
  sqlite3_stmt* insert = nullptr;
  if (sqlite3_prepare_v2(db,
                         "INSERT INTO session_deltas (session_id, delta_type, before_state, "
                         "after_state, timestamp, created_at) SELECT session_id, delta_type, "
                         "before_state, after_state, timestamp, created_at FROM session_deltas "
                         "ORDER BY id DESC LIMIT 1",
                         -1, &insert, nullptr) != SQLITE_OK) {
    fail("prepare insert", db);
  }

  auto started = SteadyClock::now();
  sqlite3_backup* backup = sqlite3_backup_init(target, "main", db, "main");
  if (!backup) fail("backup_init", target);
  std::vector<double> steps_us;
  std::int64_t inserted = 0;
  int rc = SQLITE_OK;
  while (rc == SQLITE_OK || rc == SQLITE_BUSY || rc == SQLITE_LOCKED) {
    auto step_started = SteadyClock::now();
    rc = sqlite3_backup_step(backup, static_cast<int>(pages_per_step));
    steps_us.push_back(micros_between(step_started, SteadyClock::now()));
    if (rc != SQLITE_DONE) {
      // The stream goes on between steps, on the same connection.
      exec(db, "BEGIN");
      for (std::int64_t i = 0; i < rows_between; ++i) {
        if (sqlite3_step(insert) != SQLITE_DONE) fail("insert", db);
        sqlite3_reset(insert);
        ++inserted;
      }
      exec(db, "COMMIT");
    }
  }
  if (rc != SQLITE_DONE) fail("backup_step", target);
  sqlite3_backup_finish(backup);
  sqlite3_finalize(insert);
  double copy_seconds = seconds_since(started);
  sqlite3_close(target);

  auto sync_started = SteadyClock::now();
  int fd = ::open(temporary.c_str(), O_RDONLY);
  if (fd < 0 || ::fsync(fd) != 0) fail("fsync " + temporary);
  ::close(fd);
  if (std::rename(temporary.c_str(), out.c_str()) != 0) fail("rename to " + out);
  double sync_seconds = seconds_since(sync_started);

  auto rss_backed_up = peak_rss_bytes();

  // The reference: what the daemon does now, on its io thread.
  auto serialize_started = SteadyClock::now();
  sqlite3_int64 image_size = 0;
  unsigned char* image = sqlite3_serialize(db, "main", &image_size, 0);
  double serialize_ms = seconds_since(serialize_started) * 1000;
  auto rss_serialized = peak_rss_bytes();
  sqlite3_free(image);

  std::int64_t rows_live = scalar(db, "SELECT COUNT(*) FROM session_deltas");
  sqlite3_close(db);
  sqlite3* check = nullptr;
  sqlite3_open_v2(out.c_str(), &check, SQLITE_OPEN_READONLY, nullptr);
  std::int64_t rows_file = scalar(check, "SELECT COUNT(*) FROM session_deltas");
  sqlite3_close(check);
  if (rows_file != rows_live) {
    fail("the backup holds " + std::to_string(rows_file) + " rows, the database " +
         std::to_string(rows_live));
  }

  JsonLine()
      .add("database_bytes", static_cast<std::int64_t>(size))
      .add("rows", rows_live)
      .add("inserted_during", inserted)
      .add("serialize_ms", serialize_ms)
      .add("rss_loaded_bytes", rss_loaded)
      .add("rss_after_backup_bytes", rss_backed_up)
      .add("rss_after_serialize_bytes", rss_serialized)
      .add("pages_per_step", pages_per_step)
      .add("step", summarize(steps_us))
      .add("copy_seconds", copy_seconds)
      .add("sync_seconds", sync_seconds)
      .print();
}
