// bench_postgres: replication into PostgreSQL (issue 17), beside the naive way.
//
// Reads up to --rows deltas of a database file (what deltatapd stored), then
// writes them into the PostgreSQL database at --url twice, each time under a
// fresh source name so that every row is new:
//   - "copy": the sink's own path (sinks/pg_parallel_writer.h): batches of
//     --batch rows, each cut in two halves COPYed over two connections at once
//     (straight into the table, since every id is new);
//   - "copy_one": the same over one connection (what one backend can parse);
//   - "naive": what generic shippers do: one INSERT per delta, a transaction
//     per batch of the same size, the same table and conflict clause.
// and once more "copy" under the first source (every row a duplicate: what a
// resend after a crash costs).
//
//   bench_postgres --from DB --url CONNINFO [--rows N] [--batch B] [--connections C] [--repeat R]
//
// The two COPY figures are each the median of R runs (default 3), alternated.
// Prints one JSON line: copy_rows_per_s, copy_one_rows_per_s (medians),
// copy_runs, copy_one_runs (every run), naive_rows_per_s, resend_rows_per_s.
#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "bench.h"
#include "sinks/pg_connection.h"
#include "sinks/pg_parallel_writer.h"
#include "sinks/pg_writer.h"
#include "storage/store.h"

namespace {

using namespace deltatap;
using namespace deltatap::bench;

[[noreturn]] void fail(const std::string& what) {
  std::fprintf(stderr, "bench_postgres: %s\n", what.c_str());
  std::exit(1);
}

std::vector<StoredDelta> read_rows(const std::string& path, std::int64_t limit) {
  auto store = Store::open_readonly(path);
  if (!store.ok()) fail(store.error());
  auto rows = (*store)->deltas_after(0, static_cast<std::size_t>(limit));
  if (!rows.ok()) fail(rows.error());
  return std::move(rows.value());
}

// One INSERT per delta, a transaction per `batch` deltas.
void insert_naively(PgConnection& connection, const std::string& source,
                    const std::vector<StoredDelta>& rows, std::size_t batch) {
  const std::string sql =
      "INSERT INTO session_deltas (source, id, session_id, delta_type, before_state, after_state, "
      "\"timestamp\", created_at, origin, gap) VALUES ($1, $2, $3, $4, $5::jsonb, $6::jsonb, "
      "$7::timestamptz, $8::timestamptz, $9, $10) ON CONFLICT DO NOTHING";
  for (std::size_t start = 0; start < rows.size(); start += batch) {
    if (!connection.exec("BEGIN").ok()) fail("BEGIN failed");
    for (std::size_t i = start; i < std::min(rows.size(), start + batch); ++i) {
      const auto& row = rows[i];
      // NULL states are sent as JSON null here: the naive path needs no
      // NULL handling to be measured fairly (states are rarely absent).
      auto state = [](const std::optional<std::string>& s) { return s ? jsonb_safe(*s) : "null"; };
      auto done = connection.exec(sql, {source, std::to_string(row.id), row.delta.session_id,
                                        std::string(to_string(row.delta.type)), state(row.delta.before),
                                        state(row.delta.after), row.delta.timestamp, row.created_at,
                                        std::string(to_string(row.origin)), row.gap ? "true" : "false"});
      if (!done.ok()) fail("insert: " + done.error());
    }
    if (!connection.exec("COMMIT").ok()) fail("COMMIT failed");
  }
}

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  return values[values.size() / 2];
}

// "58186 49021 61230": the runs, in the order they ran.
std::string join_rates(const std::vector<double>& rates) {
  std::string text;
  for (double rate : rates) {
    if (!text.empty()) text += ' ';
    text += std::to_string(static_cast<std::int64_t>(rate));
  }
  return text;
}

}  // namespace

int main(int argc, char** argv) {
  Args args(argc, argv);
  auto from = args.text("from");
  auto url = args.text("url");
  auto limit = args.number("rows", 100'000);
  auto batch = static_cast<std::size_t>(args.number("batch", 10'000));
  auto connections = static_cast<std::size_t>(args.number("connections", 2));
  auto repeat = std::max<std::int64_t>(1, args.number("repeat", 3));
  if (from.empty() || url.empty()) fail("usage: bench_postgres --from DB --url CONNINFO [--rows N]");
  auto rows = read_rows(from, limit);
  if (rows.empty()) fail(from + " holds no deltas");
  std::fprintf(stderr, "bench_postgres: %zu deltas read\n", rows.size());

  std::atomic<bool> never{false};
  PgConnectOptions options;
  options.url = url;
  auto connection = PgConnection::connect(options, never);
  if (!connection.ok()) fail(connection.error());
  auto& db = **connection;
  db.set_timeout(std::chrono::minutes(10));
  if (auto s = ensure_pg_schema(db); !s.ok()) fail(s.error());
  // A run of its own: sources nobody else writes.
  std::string run = std::to_string(std::chrono::system_clock::now().time_since_epoch().count());

  auto copy = [&](const std::string& source, std::size_t connections) {
    PgParallelOptions writer_options;
    writer_options.connect = options;
    writer_options.source = source;
    writer_options.statement_timeout = std::chrono::minutes(10);
    writer_options.connections = connections;
    PgParallelWriter writer(writer_options, never);
    auto started = SteadyClock::now();
    for (std::size_t start = 0; start < rows.size(); start += batch) {
      std::span<const StoredDelta> part(rows.data() + start, std::min(batch, rows.size() - start));
      if (auto written = writer.write(part); !written.ok()) fail(written.error());
    }
    return static_cast<double>(rows.size()) / seconds_since(started);
  };
  // The machine is noisy (other tenants, the server's checkpoints): each COPY
  // figure is the median of `repeat` runs, each under a source of its own, and
  // the runs are printed too.
  std::vector<double> copy_rates, copy_one_rates;
  for (std::int64_t i = 0; i < repeat; ++i) {
    copy_rates.push_back(copy("bench-copy-" + run + "-" + std::to_string(i), connections));
    copy_one_rates.push_back(copy("bench-copy-one-" + run + "-" + std::to_string(i), 1));
  }
  double copy_rate = median(copy_rates);
  double copy_one_rate = median(copy_one_rates);
  double resend_rate = copy("bench-copy-" + run + "-0", connections);
  auto started = SteadyClock::now();
  insert_naively(db, "bench-naive-" + run, rows, batch);
  double naive_rate = static_cast<double>(rows.size()) / seconds_since(started);

  JsonLine()
      .add("rows", static_cast<std::int64_t>(rows.size()))
      .add("batch", static_cast<std::int64_t>(batch))
      .add("connections", static_cast<std::int64_t>(connections))
      .add("copy_rows_per_s", copy_rate)
      .add("copy_one_rows_per_s", copy_one_rate)
      .add("copy_runs", join_rates(copy_rates))
      .add("copy_one_runs", join_rates(copy_one_rates))
      .add("resend_rows_per_s", resend_rate)
      .add("naive_rows_per_s", naive_rate)
      .print();
  return 0;
}
