// StorageOptions and RetentionOptions: where and how often the store is written,
// and how long deltas are kept, with their defaults beside them.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace deltatap {

// [storage] compression (storage/state_codec.h, storage/state_columns.h).
enum class Compression { off, zstd };

struct StorageOptions {
  bool enabled = false;                      // PERSIST=1, as the domain document says
  std::string path = "data/sessions.sqlite"; // relative to the working directory
  std::chrono::milliseconds snapshot_interval{60'000};
  bool journal = true;
  std::chrono::milliseconds journal_fsync_interval{100};
  std::uint64_t max_deltas = 0;              // 0: no limit; else the oldest are evicted
  Compression compression = Compression::off; // off: the file holds the document's plain JSON
};

struct RetentionOptions {
  int days = 30;                             // 0 keeps everything
  // On: what `days` removes goes first into monthly archive files beside
  // [storage] path (storage/archive.h); needs storage enabled.
  bool archive = false;
  int archive_days = 0;                      // archive files kept; 0 keeps all
};

}  // namespace deltatap
