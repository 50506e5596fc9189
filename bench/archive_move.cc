// bench_archive_move: how fast deltas move out of memory into the monthly
// archive files (issue 16: at least 100,000 deltas/s), and what they weigh
// there.
//
//   bench_archive_move --db PATH --dir DIR [--batch-rows B]
//
// Loads PATH (a store file, e.g. one bench_make_store wrote) into memory as
// deltatapd does, then archives every delta in it into DIR (which must be
// empty or missing; storage/archive.h), timing the move alone: the batches'
// reads, the copies (compression included), the fsyncs and the deletes from
// memory. Prints one JSON line: deltas moved, seconds, deltas per second, the
// archive files' bytes and bytes per delta.
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "bench.h"
#include "storage/archive.h"
#include "storage/archive_file.h"
#include "storage/store.h"

namespace {

using namespace deltatap;
using namespace deltatap::bench;

[[noreturn]] void fail(const std::string& what) {
  std::fprintf(stderr, "bench_archive_move: %s\n", what.c_str());
  std::exit(1);
}

}  // namespace

int main(int argc, char** argv) {
  std::string db, dir;
  std::int64_t batch_rows = 0;
  {
    Args args(argc, argv);
    db = args.text("db");
    dir = args.text("dir");
    batch_rows = args.number("batch-rows", ArchiveOptions{}.batch_rows);
  }
  if (db.empty() || dir.empty() || batch_rows <= 0) fail("usage: --db PATH --dir DIR [--batch-rows B]");
  auto existing = list_archive_files(dir);
  if (!existing.ok()) fail(existing.error());
  if (!existing->empty()) fail(dir + " already holds archive files");
  auto store = Store::load_file(db);
  if (!store.ok()) fail(store.error());
  std::int64_t before = (*store)->delta_count();

  ArchiveOptions options;
  options.directory = dir;
  options.batch_rows = batch_rows;
  // The writes of whatever ran before (the store builder's 1 GB file) go to
  // disk first: the move's fsyncs would wait behind them, and time them.
  ::sync();
  // Everything is due: the cutoff is after the newest delta.
  auto now = now_millis() + std::chrono::days(1);
  auto started = SteadyClock::now();
  auto run = archive_expired(**store, options, now, now);
  double seconds = seconds_since(started);
  if (!run.ok()) fail(run.error());
  if (run->moved != before || (*store)->delta_count() != 0) {
    fail("moved " + std::to_string(run->moved) + " of " + std::to_string(before) + " deltas");
  }
  auto files = list_archive_files(dir);
  if (!files.ok()) fail(files.error());
  std::int64_t bytes = 0;
  for (const auto& file : *files) bytes += static_cast<std::int64_t>(file.bytes);
  JsonLine()
      .add("deltas", run->moved)
      .add("files", static_cast<std::int64_t>(files->size()))
      .add("seconds", seconds)
      .add("deltas_per_second", seconds > 0 ? static_cast<double>(run->moved) / seconds : 0.0)
      .add("archive_bytes", bytes)
      .add("bytes_per_delta", run->moved > 0 ? static_cast<double>(bytes) / static_cast<double>(run->moved) : 0.0)
      .print();
  return 0;
}
