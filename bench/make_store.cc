// bench_make_store: a deltatapd data directory of a chosen size, for the
// query, snapshot, memory and start-up scenarios.
//
//   bench_make_store --templates DB --out PATH --deltas N
//                    [--hot H] [--per-session P] [--journal J] [--span-days D]
//                    [--chain] [--compression off|zstd]
//
// The states are the simulator's own (the rows of DB, a database an ingest run
// stored, reused in turn), so row sizes are realistic. Sessions are renamed:
// one hot session "hot" holds H deltas spread evenly through time; the rest
// go round-robin to sessions "s-000000", "s-000001"... holding about P each.
// Timestamps are 1 ms apart and end now, and created_at equals the timestamp,
// so retention keeps everything. With --span-days the timestamps are spread
// evenly over the D days that end now instead (the analytics scenario: a
// month of history, whose answers read one row per session and per quarter
// hour); retention keeps them as long as D is within its days.
//
// With --chain, the sessions replay the simulator's own in order instead:
// each bench session goes through the states one simulator session went
// through, then those of the next, and an update's before state is its
// (renamed) session's last after state, as the backend sends them, so that a
// state compressed against its session's previous state (and [storage]
// compression's references) finds what it would in a real stream.
// --compression zstd stores as [storage] compression = zstd does, the
// dictionary trained on the first states and every row encoded by the end.
//
// PATH is written as deltatapd writes a snapshot; with --journal, J more
// deltas (ids after the snapshot's) go to PATH's journal, as a daemon that was
// killed after its last snapshot would leave them. Prints one JSON line.
#include <boost/asio/io_context.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <vector>
#include <unordered_map>
#include <thread>

#include "bench.h"
#include "storage/journal.h"
#include "storage/snapshot.h"
#include "storage/store.h"

namespace {

using namespace deltatap;
using namespace deltatap::bench;

[[noreturn]] void fail(const std::string& what) {
  std::fprintf(stderr, "bench_make_store: %s\n", what.c_str());
  std::exit(1);
}

std::vector<Delta> read_templates(const std::string& path) {
  auto store = Store::open_readonly(path);
  if (!store.ok()) fail(path + ": " + store.error());
  std::vector<Delta> templates;
  auto s = (*store)->for_each_delta([&](const StoredDelta& row) {
    templates.push_back(row.delta);
    return templates.size() < 100'000;
  });
  if (!s.ok()) fail(path + ": " + s.error());
  if (templates.empty()) fail(path + " holds no deltas");
  return templates;
}

// Delta number i of n, in time order, with its session and time.
class Generator {
 public:
  // Times cover `total` deltas (the journal's come after the snapshot's).
  // `span_ms`: the time the `total` deltas cover, ending now (0: 1 ms apart).
  Generator(std::vector<Delta> templates, std::int64_t n, std::int64_t hot,
            std::int64_t per_session, std::int64_t total, std::int64_t span_ms = 0)
      : templates_(std::move(templates)),
        n_(n),
        hot_(hot),
        sessions_(std::max<std::int64_t>(1, (n - hot) / std::max<std::int64_t>(per_session, 1))),
        step_ms_(span_ms > 0 ? std::max<std::int64_t>(1, span_ms / std::max<std::int64_t>(total, 1)) : 1),
        start_(now_millis() - std::chrono::milliseconds(total * step_ms_)) {}

  std::int64_t sessions() const { return sessions_; }

  StoredDelta make(std::int64_t i) {
    StoredDelta row;
    row.id = i + 1;  // as the daemon's stream lane numbers them before the store sees them
    // Exactly hot_ of the first n_ land on the hot session, evenly spaced.
    bool is_hot = i < n_ && (i + 1) * hot_ / n_ > i * hot_ / n_;
    std::int64_t session = is_hot ? -1 : next_typical_++ % sessions_;
    if (!chain_) {
      row.delta = templates_[static_cast<std::size_t>(i) % templates_.size()];
    } else if (is_hot) {
      row.delta = templates_[next_of(hot_cursor_, 1)];
    } else {
      // Stepping by sessions_ groups keeps the sessions on different groups
      // as long as there are enough.
      row.delta = templates_[next_of(cursors_[static_cast<std::size_t>(session)], sessions_)];
    }
    if (is_hot) {
      row.delta.session_id = "hot";
    } else {
      char name[32];
      std::snprintf(name, sizeof name, "s-%06lld", static_cast<long long>(session));
      row.delta.session_id = name;
    }
    row.delta.timestamp = format_timestamp(start_ + std::chrono::milliseconds(i * step_ms_));
    row.created_at = row.delta.timestamp;
    if (chain_) {
      // As the backend sends them: an update's before state is the session's
      // last after state (issue 16 measured it so on 2,462 of 2,462). Replayed
      // in order it is the template's own, except where a group ends.
      auto& last = last_after_[row.delta.session_id];
      if (row.delta.type != DeltaType::created && last) row.delta.before = last;
      last = row.delta.type == DeltaType::deleted ? std::nullopt : row.delta.after;
    }
    return row;
  }

  // Groups the templates by their simulator session (each in id order, the
  // groups in order of first appearance) for make() to replay.
  void chain_states() {
    chain_ = true;
    std::unordered_map<std::string, std::size_t> group_of;
    for (std::size_t k = 0; k < templates_.size(); ++k) {
      auto [it, added] = group_of.try_emplace(templates_[k].session_id, groups_.size());
      if (added) groups_.emplace_back();
      groups_[it->second].push_back(k);
    }
    cursors_.resize(static_cast<std::size_t>(sessions_));
    for (std::size_t s = 0; s < cursors_.size(); ++s) cursors_[s].group = s % groups_.size();
  }

 private:
  // Where a bench session is in its replay: a group, and a delta in it.
  struct Cursor {
    std::size_t group = 0;
    std::size_t position = 0;
  };

  // The template index at `cursor`, which then moves on; past a group's end
  // it starts the group `step` further on.
  std::size_t next_of(Cursor& cursor, std::int64_t step) {
    if (cursor.position == groups_[cursor.group].size()) {
      const std::size_t count = groups_.size();
      cursor.group = (cursor.group + static_cast<std::size_t>(step) % count) % count;
      cursor.position = 0;
    }
    return groups_[cursor.group][cursor.position++];
  }

  std::vector<Delta> templates_;
  std::int64_t n_, hot_, sessions_, step_ms_;
  std::int64_t next_typical_ = 0;
  TimePoint start_;
  bool chain_ = false;
  std::unordered_map<std::string, std::optional<std::string>> last_after_;
  std::vector<std::vector<std::size_t>> groups_;  // indices into templates_
  std::vector<Cursor> cursors_;                   // by typical session
  Cursor hot_cursor_;
};

}  // namespace

int main(int argc, char** argv) {
  std::string templates_path, out;
  std::int64_t deltas = 0, hot = 0, per_session = 0, journal_deltas = 0, span_days = 0;
  bool chain = false;
  std::string compression;
  {
    Args args(argc, argv);
    templates_path = args.text("templates");
    out = args.text("out");
    deltas = args.number("deltas", 0);
    hot = args.number("hot", 0);
    per_session = args.number("per-session", 100);
    journal_deltas = args.number("journal", 0);
    span_days = args.number("span-days", 0);
    chain = args.flag("chain");
    compression = args.text("compression", "off");
  }
  if (templates_path.empty() || out.empty() || deltas <= 0 || hot < 0 || hot > deltas ||
      (compression != "off" && compression != "zstd")) {
    fail("usage: --templates DB --out PATH --deltas N [--hot H<=N] [--per-session P] [--journal J] "
         "[--span-days D] [--chain] [--compression off|zstd]");
  }
  auto started = SteadyClock::now();
  Generator generator(read_templates(templates_path), deltas, hot, per_session,
                      deltas + journal_deltas, span_days * 86'400'000);
  if (chain) generator.chain_states();
  auto store = Store::open_empty();
  if (!store.ok()) fail(store.error());
  const bool zstd = compression == "zstd";
  if (zstd) {
    if (auto s = (*store)->set_compression(Compression::zstd); !s.ok()) fail(s.error());
  }
  // As the daemon's store lane: a bounded conversion step between batches
  // stores a dictionary trained meanwhile and encodes what came before it.
  auto convert = [&](bool to_the_end) {
    for (;;) {
      auto step = (*store)->convert_step(100'000);
      if (!step.ok()) fail(step.error());
      if (*step > 0) continue;
      auto stats = (*store)->compression_stats();
      if (!to_the_end || (stats.converted && !stats.training && stats.dictionaries > 0)) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  };
  constexpr std::int64_t kChunk = 10'000;
  std::vector<StoredDelta> chunk;
  // What storing costs this thread (the store lane's share; a dictionary's
  // training runs on a thread of its own and is not in it), without making
  // the deltas. Converting the rows stored before the first dictionary is
  // counted apart: at this rate training takes the first ~100,000 rows, at a
  // backend's a handful, so it is a cost of the bench's speed, once per store.
  double store_cpu = 0, convert_cpu = 0;
  for (std::int64_t i = 0; i < deltas; i += kChunk) {
    chunk.clear();
    for (std::int64_t j = i; j < std::min(deltas, i + kChunk); ++j) chunk.push_back(generator.make(j));
    double before_save = thread_cpu_seconds();
    if (auto s = (*store)->save_with_created_at(chunk); !s.ok()) fail(s.error());
    double before_convert = thread_cpu_seconds();
    store_cpu += before_convert - before_save;
    if (zstd) convert(false);
    convert_cpu += thread_cpu_seconds() - before_convert;
  }
  double before_convert = thread_cpu_seconds();
  if (zstd) convert(true);
  convert_cpu += thread_cpu_seconds() - before_convert;
  auto counts = (*store)->counts();
  Store& written = **store;
  if (auto s = write_snapshot_file(out, [&written](const std::string& temp) {
        return written.write_copy(temp);
      });
      !s.ok()) {
    fail(s.error());
  }

  if (journal_deltas > 0) {
    std::int64_t last_id = (*store)->last_delta_id();
    {
      boost::asio::io_context io;  // never run: write results are checked below instead
      auto journal = Journal::open(io, journal_path_for(out), [](const JournalWrite&) {});
      if (!journal.ok()) fail(journal.error());
      std::int64_t id = last_id;
      for (std::int64_t i = deltas; i < deltas + journal_deltas; ++i) {
        auto row = generator.make(i);
        (*journal)->append(row.delta, ++id, row.created_at);
      }
      (*journal)->flush();
    }  // ~Journal writes and syncs what is still buffered
    auto replay = read_journal(journal_path_for(out), last_id);
    if (!replay.ok()) fail(replay.error());
    if (static_cast<std::int64_t>(replay->deltas.size()) != journal_deltas) {
      fail("the journal holds " + std::to_string(replay->deltas.size()) + " deltas, not " +
           std::to_string(journal_deltas));
    }
  }
  JsonLine()
      .add("deltas", counts.deltas)
      .add("journal_deltas", journal_deltas)
      .add("sessions", generator.sessions() + (hot > 0 ? 1 : 0))
      .add("typical_sessions", generator.sessions())
      .add("hot_deltas", hot)
      .add("memory_bytes", counts.memory_bytes)
      .add("file_bytes", static_cast<std::int64_t>(file_size(out)))
      .add("seconds", seconds_since(started))
      .add("store_cpu_us_per_delta", 1e6 * store_cpu / static_cast<double>(std::max<std::int64_t>(1, deltas)))
      .add("convert_cpu_us_per_delta", 1e6 * convert_cpu / static_cast<double>(std::max<std::int64_t>(1, deltas)))
      .print();
}
