// ArchiveReader: a k-way merge of the store's page and each archive file's.
#include "storage/archive_reader.h"

#include <algorithm>
#include <utility>

#include "storage/archive_file.h"

namespace deltatap {

namespace {

// Newest first: timestamp, then id, descending (the store's order).
bool newer(const StoredDelta& a, const StoredDelta& b) {
  if (a.delta.timestamp != b.delta.timestamp) return a.delta.timestamp > b.delta.timestamp;
  return a.id > b.id;
}

}  // namespace

ArchiveReader::ArchiveReader() = default;
ArchiveReader::ArchiveReader(ArchiveReader&&) noexcept = default;
ArchiveReader& ArchiveReader::operator=(ArchiveReader&&) noexcept = default;
ArchiveReader::~ArchiveReader() = default;

Result<ArchiveReader> ArchiveReader::open(const std::string& directory) {
  auto entries = list_archive_files(directory);
  if (!entries.ok()) return Error{entries.error()};
  ArchiveReader reader;
  for (const auto& entry : *entries) {
    // Empty: being created by the daemon this instant, holding no rows yet.
    if (entry.bytes == 0) continue;
    auto file = ArchiveFile::open_readonly(entry.path);
    if (!file.ok()) return Error{file.error()};
    reader.files_.push_back(std::make_unique<ArchiveFile>(std::move(*file)));
  }
  return reader;
}

std::size_t ArchiveReader::file_count() const { return files_.size(); }

Result<DeltaPage> ArchiveReader::get_deltas(Store& store, const DeltaQuery& query) {
  int limit = std::clamp(query.limit, 1, kMaxQueryLimit);
  DeltaQuery bounded = query;
  bounded.limit = limit;
  auto page = store.get_deltas(bounded);
  if (!page.ok()) return Error{page.error()};
  // More rows may match beyond what a source gave when it said so.
  bool more = page->next.has_value();
  std::vector<StoredDelta> rows = std::move(page->deltas);
  for (auto& file : files_) {
    bool file_more = false;
    auto found = file->query(bounded, limit, &file_more);
    if (!found.ok()) return Error{found.error()};
    more = more || file_more;
    std::move(found->begin(), found->end(), std::back_inserter(rows));
  }
  std::sort(rows.begin(), rows.end(), newer);
  // The same id in two sources is the same delta: equal keys are adjacent.
  rows.erase(std::unique(rows.begin(), rows.end(),
                         [](const StoredDelta& a, const StoredDelta& b) { return a.id == b.id; }),
             rows.end());
  DeltaPage result;
  if (static_cast<int>(rows.size()) > limit) {
    rows.resize(static_cast<std::size_t>(limit));
    more = true;
  }
  result.deltas = std::move(rows);
  if (more && !result.deltas.empty()) {
    const auto& last = result.deltas.back();
    result.next = format_cursor({last.delta.timestamp, last.id});
  }
  return result;
}

Result<std::vector<StoredDelta>> ArchiveReader::session_history(Store& store,
                                                                const std::string& session_id) {
  auto rows = store.session_history(session_id);
  if (!rows.ok()) return Error{rows.error()};
  std::vector<StoredDelta> all = std::move(*rows);
  for (auto& file : files_) {
    auto found = file->session_history(session_id);
    if (!found.ok()) return Error{found.error()};
    std::move(found->begin(), found->end(), std::back_inserter(all));
  }
  std::sort(all.begin(), all.end(),
            [](const StoredDelta& a, const StoredDelta& b) { return a.id < b.id; });
  all.erase(std::unique(all.begin(), all.end(),
                        [](const StoredDelta& a, const StoredDelta& b) { return a.id == b.id; }),
            all.end());
  return all;
}

}  // namespace deltatap
