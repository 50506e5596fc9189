// bench_store_query: the store through the library, at the size of a file
// bench_make_store wrote. What an HTTP query or a snapshot costs the io thread
// before any networking is added.
//
//   bench_store_query --db PATH --sessions S [--iterations K] [--serialize R]
//
// Times Store::load_file of the file (the bulk of start-up), then K calls each of
// get_deltas(limit 100) for a random typical session "s-NNNNNN" (S of them),
// for the hot session "hot", and with no session (the global newest 100), then
// each of the first K typical sessions' last delta read by id (what
// reconciliation reads), 20 calls of Store::counts() (GET /api/stats) and of what a /metrics scrape
// reads (delta_count(), memory_bytes()), then R calls
// of Store::serialize(), which is what blocks the daemon's io thread while a
// snapshot starts. Prints one JSON line.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "bench.h"
#include "storage/snapshot.h"
#include "storage/store.h"

namespace {

using namespace deltatap;
using namespace deltatap::bench;

[[noreturn]] void fail(const std::string& what) {
  std::fprintf(stderr, "bench_store_query: %s\n", what.c_str());
  std::exit(1);
}

// Microseconds per get_deltas call; every page must be full, or the store
// under test is not the one we think.
template <typename NextQuery>
std::vector<double> time_queries(Store& store, std::int64_t iterations, NextQuery next_query) {
  std::vector<double> samples;
  samples.reserve(static_cast<std::size_t>(iterations));
  for (std::int64_t i = 0; i < iterations + 100; ++i) {
    DeltaQuery query = next_query();
    auto started = SteadyClock::now();
    auto page = store.get_deltas(query);
    auto finished = SteadyClock::now();
    if (!page.ok()) fail(page.error());
    if (page->deltas.size() != static_cast<std::size_t>(query.limit)) {
      fail("a page came back with " + std::to_string(page->deltas.size()) + " deltas for " +
           query.session_id.value_or("(all)"));
    }
    if (i >= 100) samples.push_back(micros_between(started, finished));  // after warm-up
  }
  return samples;
}

}  // namespace

int main(int argc, char** argv) {
  std::string path;
  std::int64_t sessions = 0, iterations = 0, serializations = 0;
  {
    Args args(argc, argv);
    path = args.text("db");
    sessions = args.number("sessions", 0);
    iterations = args.number("iterations", 10'000);
    serializations = args.number("serialize", 5);
  }
  if (path.empty() || sessions <= 0) fail("usage: --db PATH --sessions S [--iterations K] [--serialize R]");

  auto load_started = SteadyClock::now();
  auto loaded = Store::load_file(path);
  double load_seconds = seconds_since(load_started);
  if (!loaded.ok()) fail(loaded.error());
  Store& store = **loaded;
  auto counts = store.counts();

  std::mt19937_64 random(7);
  std::uniform_int_distribution<std::int64_t> pick(0, sessions - 1);
  auto typical = time_queries(store, iterations, [&] {
    char name[32];
    std::snprintf(name, sizeof name, "s-%06lld", static_cast<long long>(pick(random)));
    return DeltaQuery{.session_id = name, .limit = 100};
  });
  auto hot = time_queries(store, iterations,
                          [] { return DeltaQuery{.session_id = "hot", .limit = 100}; });
  auto global = time_queries(store, iterations, [] { return DeltaQuery{.limit = 100}; });

  // Each session's last delta by its id, as reconciliation reads the state a
  // session ended in (its ledger row, then the delta): up to `iterations`
  // sessions in turn, none read before, so nothing of them is cached.
  std::vector<double> last_us;
  for (std::int64_t s = 0; s < std::min<std::int64_t>(sessions, iterations); ++s) {
    char name[32];
    std::snprintf(name, sizeof name, "s-%06lld", static_cast<long long>(s));
    auto started = SteadyClock::now();
    auto entry = store.ledger_entry(name);
    if (!entry.ok()) fail(entry.error());
    if (!*entry) continue;
    auto row = store.delta_by_id((*entry)->last_id);
    if (!row.ok()) fail(row.error());
    last_us.push_back(micros_between(started, SteadyClock::now()));
  }

  // What GET /api/stats costs the io thread, and what a /metrics scrape reads
  // instead (the status line reads delta_count() alone).
  std::vector<double> counts_us, scrape_us;
  for (int i = 0; i < 20; ++i) {
    auto started = SteadyClock::now();
    (void)store.counts();
    counts_us.push_back(micros_between(started, SteadyClock::now()));
    started = SteadyClock::now();
    (void)store.delta_count();
    (void)store.memory_bytes();
    scrape_us.push_back(micros_between(started, SteadyClock::now()));
  }

  std::vector<double> serialize_us;
  std::int64_t image_bytes = 0;
  for (std::int64_t i = 0; i < serializations; ++i) {
    auto started = SteadyClock::now();
    auto image = store.serialize();
    serialize_us.push_back(micros_between(started, SteadyClock::now()));
    if (!image.ok()) fail(image.error());
    image_bytes = static_cast<std::int64_t>(image->size());
  }

  JsonLine()
      .add("deltas", counts.deltas)
      .add("memory_bytes", counts.memory_bytes)
      .add("load_seconds", load_seconds)
      .add("typical", summarize(typical))
      .add("hot", summarize(hot))
      .add("global", summarize(global))
      .add("last_state", summarize(last_us))
      .add("counts", summarize(counts_us))
      .add("scrape", summarize(scrape_us))
      .add("serialize", summarize(serialize_us))
      .add("image_bytes", image_bytes)
      .add("peak_rss_bytes", peak_rss_bytes())
      .print();
}
