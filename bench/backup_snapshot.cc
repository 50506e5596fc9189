// bench_backup_snapshot: two measured alternatives to the daemon's snapshot,
// not used by it. Today a snapshot calls sqlite3_serialize() on the io thread:
// a full copy of the database that stops the stream for as long as it takes
// and doubles the memory.
//
//   bench_backup_snapshot --db PATH --out PATH --method steps|fork
//                         [--pages-per-step P] [--rows-between R]
//
// steps: SQLite's online backup copies the live database into the snapshot's
//   temporary file P pages at a time, R rows being inserted between steps as
//   the stream would. Writes on the same connection are carried into the
//   backup only when the source is a memdb (sqlite3_deserialize) database; an
//   ordinary ":memory:" database restarts the backup at every commit, so under
//   a steady stream it would never finish. A memdb is one buffer, capped at
//   SQLITE_MAX_ALLOCATION_SIZE (about 2 GiB).
// fork: the io thread forks; the child, holding a copy-on-write view of the
//   ":memory:" database, backs it up to the file in one go and exits, while
//   the parent goes on inserting R rows every millisecond. The pause is the
//   fork() itself.
//
// Both load PATH the way the method needs (timed), check that OUT holds every
// row the database had when the snapshot began or more, and time one
// sqlite3_serialize() as the reference. Prints one JSON line.
#include <fcntl.h>
#include <sqlite3.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
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

std::int64_t count_rows(sqlite3* db) { return scalar(db, "SELECT COUNT(*) FROM session_deltas"); }

// The file read straight into SQLite's buffer (one copy, not two) and
// deserialized, with the growth limit raised as far as SQLite allows.
sqlite3* load_memdb(const std::string& path) {
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
  // Without this a deserialized database stops growing at 1 GiB
  // (SQLITE_MEMDB_DEFAULT_MAXSIZE): every insert fails with "database or disk is full".
  sqlite3_int64 limit = 2'000'000'000;
  if (sqlite3_file_control(db, "main", SQLITE_FCNTL_SIZE_LIMIT, &limit) != SQLITE_OK) {
    fail("size limit", db);
  }
  return db;
}

// The file's pages copied into an ordinary ":memory:" database: no file image
// kept in memory, no size cap.
sqlite3* load_memory(const std::string& path) {
  sqlite3* file = nullptr;
  if (sqlite3_open_v2(path.c_str(), &file, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
    fail("open " + path, file);
  }
  sqlite3* db = nullptr;
  sqlite3_open(":memory:", &db);
  sqlite3_backup* load = sqlite3_backup_init(db, "main", file, "main");
  if (!load || sqlite3_backup_step(load, -1) != SQLITE_DONE) fail("load " + path, db);
  sqlite3_backup_finish(load);
  sqlite3_close(file);
  return db;
}

// Appends copies of the newest row, as a stream would add deltas.
class Inserter {
 public:
  explicit Inserter(sqlite3* db) : db_(db) {
    if (sqlite3_prepare_v2(db,
                           "INSERT INTO session_deltas (session_id, delta_type, before_state, "
                           "after_state, timestamp, created_at) SELECT session_id, delta_type, "
                           "before_state, after_state, timestamp, created_at FROM session_deltas "
                           "ORDER BY id DESC LIMIT 1",
                           -1, &stmt_, nullptr) != SQLITE_OK) {
      fail("prepare insert", db);
    }
  }
  ~Inserter() { sqlite3_finalize(stmt_); }

  void insert(std::int64_t rows) {
    exec(db_, "BEGIN");
    for (std::int64_t i = 0; i < rows; ++i) {
      if (sqlite3_step(stmt_) != SQLITE_DONE) fail("insert", db_);
      sqlite3_reset(stmt_);
      ++inserted_;
    }
    exec(db_, "COMMIT");
  }
  std::int64_t inserted() const { return inserted_; }

 private:
  sqlite3* db_;
  sqlite3_stmt* stmt_ = nullptr;
  std::int64_t inserted_ = 0;
};

// Opens the temporary file a snapshot is written to. It is renamed into place
// only when complete and synced, so it needs no rollback journal or syncs of
// SQLite's own.
sqlite3* open_target(const std::string& temporary) {
  std::remove(temporary.c_str());
  sqlite3* target = nullptr;
  if (sqlite3_open(temporary.c_str(), &target) != SQLITE_OK) fail("open " + temporary, target);
  exec(target, "PRAGMA journal_mode = OFF");
  exec(target, "PRAGMA synchronous = OFF");
  return target;
}

bool sync_and_rename(const std::string& temporary, const std::string& out) {
  int fd = ::open(temporary.c_str(), O_RDONLY);
  if (fd < 0) return false;
  bool synced = ::fsync(fd) == 0;
  ::close(fd);
  return synced && std::rename(temporary.c_str(), out.c_str()) == 0;
}

struct Outcome {
  std::vector<double> pauses_us;  // each stretch the "io thread" was kept from the stream
  double copy_seconds = 0;        // start of the snapshot to the file being complete
  double sync_seconds = 0;
  std::int64_t child_max_rss = 0;
};

Outcome snapshot_in_steps(sqlite3* db, const std::string& out, std::int64_t pages_per_step,
                          Inserter& stream) {
  Outcome outcome;
  std::string temporary = out + ".tmp";
  sqlite3* target = open_target(temporary);
  auto started = SteadyClock::now();
  sqlite3_backup* backup = sqlite3_backup_init(target, "main", db, "main");
  if (!backup) fail("backup_init", target);
  int rc = SQLITE_OK;
  while (rc == SQLITE_OK || rc == SQLITE_BUSY || rc == SQLITE_LOCKED) {
    auto step_started = SteadyClock::now();
    rc = sqlite3_backup_step(backup, static_cast<int>(pages_per_step));
    outcome.pauses_us.push_back(micros_between(step_started, SteadyClock::now()));
    if (rc != SQLITE_DONE) stream.insert(2);
  }
  if (rc != SQLITE_DONE) fail("backup_step", target);
  sqlite3_backup_finish(backup);
  sqlite3_close(target);
  outcome.copy_seconds = seconds_since(started);
  auto sync_started = SteadyClock::now();
  if (!sync_and_rename(temporary, out)) fail("fsync and rename " + temporary);
  outcome.sync_seconds = seconds_since(sync_started);
  return outcome;
}

Outcome snapshot_by_fork(sqlite3* db, const std::string& out, std::int64_t rows_per_ms,
                         Inserter& stream) {
  Outcome outcome;
  std::string temporary = out + ".tmp";
  auto started = SteadyClock::now();
  pid_t child = ::fork();
  outcome.pauses_us.push_back(micros_between(started, SteadyClock::now()));
  if (child < 0) fail("fork");
  if (child == 0) {
    // The child touches only its copy of the database and the file, then
    // leaves without running the parent's exit handlers.
    sqlite3* target = open_target(temporary);
    sqlite3_backup* backup = sqlite3_backup_init(target, "main", db, "main");
    bool ok = backup && sqlite3_backup_step(backup, -1) == SQLITE_DONE;
    sqlite3_backup_finish(backup);
    ok = sqlite3_close(target) == SQLITE_OK && ok;
    ::_exit(ok && sync_and_rename(temporary, out) ? 0 : 1);
  }
  int status = 0;
  rusage usage{};
  for (;;) {
    auto tick = SteadyClock::now();
    stream.insert(rows_per_ms);
    outcome.pauses_us.push_back(micros_between(tick, SteadyClock::now()));
    pid_t done = ::wait4(child, &status, WNOHANG, &usage);
    if (done == child) break;
    if (done < 0) fail("wait4");
    std::this_thread::sleep_until(tick + std::chrono::milliseconds(1));
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) fail("the snapshot child failed");
  outcome.copy_seconds = seconds_since(started);
  outcome.child_max_rss = static_cast<std::int64_t>(usage.ru_maxrss) * 1024;
  return outcome;
}

}  // namespace

int main(int argc, char** argv) {
  std::string path, out, method;
  std::int64_t pages_per_step = 0, rows_between = 0;
  {
    Args args(argc, argv);
    path = args.text("db");
    out = args.text("out");
    method = args.text("method", "steps");
    pages_per_step = args.number("pages-per-step", 256);
    rows_between = args.number("rows-between", 2);
  }
  if (path.empty() || out.empty() || (method != "steps" && method != "fork")) {
    fail("usage: --db PATH --out PATH --method steps|fork [--pages-per-step P] [--rows-between R]");
  }

  auto load_started = SteadyClock::now();
  sqlite3* db = method == "steps" ? load_memdb(path) : load_memory(path);
  double load_seconds = seconds_since(load_started);
  std::int64_t database_bytes = scalar(db, "PRAGMA page_count") * scalar(db, "PRAGMA page_size");
  std::int64_t rss_loaded = peak_rss_bytes();
  std::int64_t rows_before = count_rows(db);

  Outcome outcome;
  std::int64_t inserted = 0;
  {
    Inserter stream(db);
    outcome = method == "steps" ? snapshot_in_steps(db, out, pages_per_step, stream)
                                : snapshot_by_fork(db, out, rows_between, stream);
    inserted = stream.inserted();
  }
  std::int64_t rss_after = peak_rss_bytes();

  // The reference: what the daemon does now, on its io thread.
  auto serialize_started = SteadyClock::now();
  sqlite3_int64 image_size = 0;
  unsigned char* image = sqlite3_serialize(db, "main", &image_size, 0);
  double serialize_ms = seconds_since(serialize_started) * 1000;
  std::int64_t rss_serialized = peak_rss_bytes();
  sqlite3_free(image);
  sqlite3_close(db);

  sqlite3* check = nullptr;
  sqlite3_open_v2(out.c_str(), &check, SQLITE_OPEN_READONLY, nullptr);
  std::int64_t rows_file = count_rows(check);
  sqlite3_close(check);
  if (rows_file < rows_before) {
    fail("the snapshot holds " + std::to_string(rows_file) + " rows, fewer than the " +
         std::to_string(rows_before) + " it started with");
  }

  JsonLine()
      .add("method", method)
      .add("database_bytes", database_bytes)
      .add("rows", rows_before)
      .add("rows_in_file", rows_file)
      .add("inserted_during", inserted)
      .add("load_seconds", load_seconds)
      .add("serialize_ms", serialize_ms)
      .add("rss_loaded_bytes", rss_loaded)
      .add("rss_after_snapshot_bytes", rss_after)
      .add("rss_after_serialize_bytes", rss_serialized)
      .add("child_max_rss_bytes", outcome.child_max_rss)
      .add("pages_per_step", pages_per_step)
      .add("pause", summarize(outcome.pauses_us))
      .add("copy_seconds", outcome.copy_seconds)
      .add("sync_seconds", outcome.sync_seconds)
      .print();
}
