// bench_postgres_lag: replication lag of the PostgreSQL sink at a steady rate
// (issue 17: "at a steady 2,000 deltas/s, replication lag p99 ≤ 1 s").
//
// The daemon's arrangement in one process: a store lane (an io_context on its
// own thread) owns an in-memory Store and the PostgresSink; a timer on that
// lane saves --rate deltas a second in 5 ms steps, reusing the states of the
// database --from (what deltatapd stored, so row sizes are realistic) under
// fresh ids. The lag of a delta is the time from its save to the moment the
// sink's mark (every id up to it is committed in PostgreSQL) covers it, read
// by a 1 ms timer on the same lane, so each figure may be up to 1 ms late.
//
//   bench_postgres_lag --from DB --url CONNINFO [--rate R] [--seconds S]
//
// Prints one JSON line: rate, deltas, lag_p50_us … lag_max_us, sent_per_s.
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <deque>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "bench.h"
#include "sinks/postgres_sink.h"
#include "storage/store.h"

namespace {

using namespace deltatap;
using namespace deltatap::bench;
namespace asio = boost::asio;

[[noreturn]] void fail(const std::string& what) {
  std::fprintf(stderr, "bench_postgres_lag: %s\n", what.c_str());
  std::exit(1);
}

constexpr auto kStep = std::chrono::milliseconds(5);
constexpr auto kPoll = std::chrono::milliseconds(1);

// Everything below runs on the store lane.
struct LagRun {
  Store& store;
  PostgresSink& sink;
  const std::vector<StoredDelta>& templates;
  double rate;
  SteadyClock::time_point started, stop_saving_at;
  asio::steady_timer save_timer, poll_timer;
  std::size_t next_template = 0;
  double owed = 0;  // deltas due but not yet saved (fractions carry over)
  std::deque<std::pair<std::int64_t, SteadyClock::time_point>> waiting;  // id, saved at
  std::vector<double> lags_us;
  std::int64_t last_id = 0;
  bool saving = true;

  LagRun(asio::io_context& io, Store& s, PostgresSink& k, const std::vector<StoredDelta>& t,
         double r, std::chrono::seconds duration)
      : store(s), sink(k), templates(t), rate(r), started(SteadyClock::now()),
        stop_saving_at(started + duration), save_timer(io), poll_timer(io) {}

  void save_step() {
    auto now = SteadyClock::now();
    if (now >= stop_saving_at) {
      saving = false;
      return;
    }
    owed += rate * std::chrono::duration<double>(kStep).count();
    std::vector<Delta> batch;
    while (owed >= 1) {
      batch.push_back(templates[next_template++ % templates.size()].delta);
      owed -= 1;
    }
    std::vector<std::int64_t> ids;
    if (auto s = store.save_batch(batch, std::nullopt, &ids); !s.ok()) fail(s.error());
    for (auto id : ids) waiting.emplace_back(id, now);
    if (!ids.empty()) last_id = ids.back();
    save_timer.expires_at(save_timer.expiry() + kStep);
    save_timer.async_wait([this](const boost::system::error_code& ec) {
      if (!ec) save_step();
    });
  }

  void poll() {
    auto mark = sink.status().mark;
    auto now = SteadyClock::now();
    while (!waiting.empty() && waiting.front().first <= mark) {
      lags_us.push_back(micros_between(waiting.front().second, now));
      waiting.pop_front();
    }
    if (!saving && waiting.empty()) return;  // done: the lane runs out of work
    if (now - stop_saving_at > std::chrono::seconds(60)) fail("the sink never caught up");
    poll_timer.expires_after(kPoll);
    poll_timer.async_wait([this](const boost::system::error_code& ec) {
      if (!ec) poll();
    });
  }
};

}  // namespace

int main(int argc, char** argv) {
  Args args(argc, argv);
  auto from = args.text("from");
  auto url = args.text("url");
  auto rate = static_cast<double>(args.number("rate", 2'000));
  auto seconds = std::chrono::seconds(args.number("seconds", 30));
  if (from.empty() || url.empty()) {
    fail("usage: bench_postgres_lag --from DB --url CONNINFO [--rate R] [--seconds S]");
  }
  std::vector<StoredDelta> templates;
  {
    auto source = Store::open_readonly(from);
    if (!source.ok()) fail(source.error());
    auto rows = (*source)->deltas_after(0, 20'000);
    if (!rows.ok()) fail(rows.error());
    templates = std::move(rows.value());
  }
  if (templates.empty()) fail(from + " holds no deltas");

  auto store = Store::open_empty();
  if (!store.ok()) fail(store.error());
  asio::io_context lane;
  PostgresOptions options;
  options.url = url;
  options.source = "bench-lag-" + std::to_string(::getpid()) + "-" +
                   std::to_string(SteadyClock::now().time_since_epoch().count());
  auto sent_id_path = std::filesystem::temp_directory_path() / (options.source + ".sent-id");
  Gauge lag_gauge;
  Counter errors;
  auto sink = PostgresSink::create(lane, **store, options, "", sent_id_path.string(),
                                   PostgresSinkMetrics{lag_gauge, errors});
  if (!sink.ok()) fail(sink.error());
  (*sink)->start();

  LagRun run(lane, **store, **sink, templates, rate, seconds);
  asio::post(lane, [&] {
    run.save_timer.expires_after(kStep);
    run.save_timer.async_wait([&](const boost::system::error_code& ec) {
      if (!ec) run.save_step();
    });
    run.poll();
  });
  // The lane ends when saving and polling are done; the sink's tick keeps it
  // alive otherwise, so run until the poll says every delta was seen.
  std::thread lane_thread([&] {
    while (!lane.stopped()) {
      lane.run_one_for(std::chrono::milliseconds(100));
      if (!run.saving && run.waiting.empty() && run.lags_us.size() > 0) lane.stop();
    }
  });
  lane_thread.join();
  double elapsed = seconds_since(run.started);
  (*sink)->stop();
  std::filesystem::remove(sent_id_path);
  if (errors.value() > 0) std::fprintf(stderr, "bench_postgres_lag: %llu sink errors\n",
                                       static_cast<unsigned long long>(errors.value()));
  auto deltas = static_cast<std::int64_t>(run.lags_us.size());
  JsonLine()
      .add("rate", rate)
      .add("deltas", deltas)
      .add("seconds", elapsed)
      .add("errors", static_cast<std::int64_t>(errors.value()))
      .add("lag", summarize(std::move(run.lags_us)))
      .print();
  return 0;
}
