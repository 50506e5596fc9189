#include "sinks/pg_parallel_writer.h"

#include <algorithm>
#include <utility>

namespace deltatap {

PgParallelWriter::PgParallelWriter(PgParallelOptions options, const std::atomic<bool>& stop)
    : options_(std::move(options)), stop_(stop) {
  std::size_t count = std::max<std::size_t>(1, options_.connections);
  for (std::size_t i = 0; i < count; ++i) {
    lanes_.push_back(std::make_unique<Lane>());
    lanes_.back()->writer = std::make_unique<PgDeltaWriter>(options_.source);
  }
  for (std::size_t i = 1; i < count; ++i) {
    Lane& lane = *lanes_[i];
    lane.thread = std::thread([this, &lane] { serve(lane); });
  }
}

PgParallelWriter::~PgParallelWriter() {
  {
    std::lock_guard lock(mutex_);
    closing_ = true;
  }
  work_ready_.notify_all();
  for (auto& lane : lanes_) {
    if (lane->thread.joinable()) lane->thread.join();
  }
}

bool PgParallelWriter::connected() const { return lanes_.front()->connection != nullptr; }

Result<std::int64_t> PgParallelWriter::write(std::span<const StoredDelta> rows) {
  std::size_t parts = rows.size() < kSplitAtRows ? 1 : lanes_.size();
  std::size_t size = (rows.size() + parts - 1) / parts;
  {
    std::lock_guard lock(mutex_);
    for (std::size_t i = 1; i < parts; ++i) {
      Lane& lane = *lanes_[i];
      std::size_t start = std::min(rows.size(), i * size);
      lane.part = rows.subspan(start, std::min(size, rows.size() - start));
      lane.has_work = true;
      lane.done = false;
    }
  }
  if (parts > 1) work_ready_.notify_all();
  auto first = write_part(*lanes_.front(), rows.first(std::min(size, rows.size())));

  std::unique_lock lock(mutex_);
  work_done_.wait(lock, [&] {
    return std::all_of(lanes_.begin() + 1, lanes_.begin() + static_cast<std::ptrdiff_t>(parts),
                       [](const auto& lane) { return lane->done; });
  });
  if (!first.ok()) return first;
  std::int64_t added = *first;
  for (std::size_t i = 1; i < parts; ++i) {
    const auto& outcome = lanes_[i]->outcome;
    if (!outcome.ok()) return Error{outcome.error()};
    added += *outcome;
  }
  return added;
}

// Connects when needed, then writes. After a failure the writer forgets what
// it knew (its staging table, partitions, the highest id), and a broken
// connection is dropped, so the next attempt starts clean.
Result<std::int64_t> PgParallelWriter::write_part(Lane& lane, std::span<const StoredDelta> part) {
  if (part.empty()) return std::int64_t{0};
  if (!lane.connection) {
    auto made = PgConnection::connect(options_.connect, stop_);
    if (!made.ok()) return Error{made.error()};
    (*made)->set_timeout(options_.statement_timeout);
    if (auto s = ensure_pg_schema(**made); !s.ok()) return Error{s.error()};
    lane.connection = std::move(made.value());
    lane.writer->reset();
  }
  auto written = lane.writer->write(*lane.connection, part);
  if (!written.ok()) {
    lane.writer->reset();
    if (lane.connection->broken()) lane.connection.reset();
  }
  return written;
}

void PgParallelWriter::serve(Lane& lane) {
  for (;;) {
    std::span<const StoredDelta> part;
    {
      std::unique_lock lock(mutex_);
      work_ready_.wait(lock, [&] { return closing_ || lane.has_work; });
      if (closing_) return;
      part = lane.part;
      lane.has_work = false;
    }
    auto outcome = write_part(lane, part);
    {
      std::lock_guard lock(mutex_);
      lane.outcome = std::move(outcome);
      lane.done = true;
    }
    work_done_.notify_all();
  }
}

}  // namespace deltatap
