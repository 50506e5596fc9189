#include "storage/journal.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <map>
#include <mutex>

#include "base/files.h"
#include "storage/snapshot.h"

namespace deltatap {

namespace fs = std::filesystem;
namespace asio = boost::asio;

namespace {

// Record: u32 payload length, u32 CRC-32 of the payload, then the payload:
// i64 id, u8 type, u8 flags (1: before present, 2: after present), then
// u32-length-prefixed strings: session_id, timestamp, created_at, [before], [after].
constexpr std::size_t kHeaderBytes = 8;
constexpr std::uint32_t kMaxPayload = 1u << 30;

template <typename T>
void put(std::string& out, T value) {
  char bytes[sizeof(T)];
  std::memcpy(bytes, &value, sizeof(T));
  out.append(bytes, sizeof(T));
}

void put_string(std::string& out, std::string_view text) {
  put<std::uint32_t>(out, static_cast<std::uint32_t>(text.size()));
  out.append(text);
}

// CRC-32 (the IEEE polynomial of zlib, gzip and PNG).
std::uint32_t crc_of(std::string_view bytes) {
  return static_cast<std::uint32_t>(
      ::crc32_z(0, reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size()));
}

class Reader {
 public:
  explicit Reader(std::string_view bytes) : bytes_(bytes) {}
  template <typename T>
  bool get(T& value) {
    if (bytes_.size() < sizeof(T)) return false;
    std::memcpy(&value, bytes_.data(), sizeof(T));
    bytes_.remove_prefix(sizeof(T));
    return true;
  }
  bool get_string(std::string& text) {
    std::uint32_t size = 0;
    if (!get(size) || bytes_.size() < size) return false;
    text.assign(bytes_.substr(0, size));
    bytes_.remove_prefix(size);
    return true;
  }
  bool done() const { return bytes_.empty(); }

 private:
  std::string_view bytes_;
};

bool decode(std::string_view payload, StoredDelta& row) {
  Reader in(payload);
  std::uint8_t type = 0, flags = 0;
  if (!in.get(row.id) || !in.get(type) || !in.get(flags) || type > 2) return false;
  row.delta.type = static_cast<DeltaType>(type);
  if (!in.get_string(row.delta.session_id) || !in.get_string(row.delta.timestamp) ||
      !in.get_string(row.created_at)) {
    return false;
  }
  row.delta.before.reset();
  row.delta.after.reset();
  if (flags & 1) {
    if (!in.get_string(row.delta.before.emplace())) return false;
  }
  if (flags & 2) {
    if (!in.get_string(row.delta.after.emplace())) return false;
  }
  return in.done();
}

// Segment numbers present beside the active file, ascending.
std::vector<std::uint64_t> segments_of(const std::string& journal_path) {
  std::vector<std::uint64_t> numbers;
  auto dir = fs::path(journal_path).parent_path();
  if (dir.empty()) dir = ".";
  auto prefix = fs::path(journal_path).filename().string() + ".";
  std::error_code ec;
  for (auto& entry : fs::directory_iterator(dir, ec)) {
    auto name = entry.path().filename().string();
    if (name.rfind(prefix, 0) != 0) continue;
    auto suffix = name.substr(prefix.size());
    if (suffix.empty() || !std::all_of(suffix.begin(), suffix.end(), ::isdigit)) continue;
    numbers.push_back(std::stoull(suffix));
  }
  std::sort(numbers.begin(), numbers.end());
  return numbers;
}

std::string segment_path(const std::string& journal_path, std::uint64_t number) {
  return journal_path + "." + std::to_string(number);
}

}  // namespace

std::string journal_path_for(const std::string& database_path) {
  fs::path path(database_path);
  return (path.parent_path() / (path.stem().string() + ".journal")).string();
}

Result<JournalReplay> read_journal(const std::string& journal_path, std::int64_t after_id) {
  JournalReplay replay;
  std::vector<std::string> files;
  for (auto number : segments_of(journal_path)) files.push_back(segment_path(journal_path, number));
  files.push_back(journal_path);
  for (const auto& file : files) {
    auto bytes = read_snapshot_file(file);
    if (!bytes.ok()) return Error{bytes.error()};
    if (!bytes->has_value()) continue;
    std::string_view rest(**bytes);
    while (!rest.empty()) {
      std::uint32_t size = 0, crc = 0;
      bool intact = rest.size() >= kHeaderBytes;
      if (intact) {
        std::memcpy(&size, rest.data(), 4);
        std::memcpy(&crc, rest.data() + 4, 4);
        intact = size <= kMaxPayload && rest.size() - kHeaderBytes >= size;
      }
      StoredDelta row;
      std::string_view payload = intact ? rest.substr(kHeaderBytes, size) : std::string_view{};
      intact = intact && crc_of(payload) == crc && decode(payload, row);
      if (!intact) {
        ++replay.torn;
        replay.warnings.push_back(file + ": torn or corrupt record at byte " +
                                  std::to_string((*bytes)->size() - rest.size()) + "; " +
                                  std::to_string(rest.size()) + " bytes ignored");
        break;
      }
      ++replay.records;
      if (row.id > after_id) replay.deltas.push_back(std::move(row));
      rest.remove_prefix(kHeaderBytes + size);
    }
  }
  return replay;
}

struct Journal::Impl {
  asio::io_context& io;
  std::string path;
  std::function<void(const JournalWrite&)> on_written;
  asio::thread_pool worker{1};
  // Appends come from the stream lane, rotation and dropping from the store
  // lane: the mutex orders them, and the worker's queue keeps that order.
  std::mutex mutex;
  std::string buffer;
  std::uint64_t next_segment = 1;
  std::int64_t active_max_id = 0;   // highest id appended since the last rotation
  // Closed segments and the highest id each holds; a segment found at open was
  // replayed into the store before anything else, so any snapshot covers it (0).
  std::map<std::uint64_t, std::int64_t> segment_max_id;

  // Worker state.
  int fd = -1;
  std::uint64_t good_size = 0;      // bytes of whole records in the active file
  std::string unwritten;            // a group that failed, retried with the next

  Impl(asio::io_context& io, std::string path, std::function<void(const JournalWrite&)> done)
      : io(io), path(std::move(path)), on_written(std::move(done)) {}

  ~Impl() {
    {
      std::lock_guard lock(mutex);
      flush_locked();
    }
    worker.join();
    if (fd >= 0) ::close(fd);
  }

  Status open_active() {
    fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0) return Error{errno_text("cannot open journal", path)};
    struct stat st {};
    ::fstat(fd, &st);
    good_size = static_cast<std::uint64_t>(st.st_size);
    return ok_status();
  }

  void flush_locked() {
    if (buffer.empty()) return;
    auto capacity = buffer.capacity();
    asio::post(worker, [this, group = std::move(buffer)]() mutable { write_group(std::move(group)); });
    // The next group is about as large: growing it from nothing would copy it again and again.
    buffer.clear();
    buffer.reserve(capacity);
  }

  // Worker: writes each record's CRC, which append() left at zero.
  static void seal_records(std::string& group) {
    std::size_t at = 0;
    while (at + kHeaderBytes <= group.size()) {
      std::uint32_t size = 0;
      std::memcpy(&size, group.data() + at, 4);
      auto crc = crc_of(std::string_view(group).substr(at + kHeaderBytes, size));
      std::memcpy(group.data() + at + 4, &crc, 4);
      at += kHeaderBytes + size;
    }
  }

  // Worker: append the group (and any earlier failed one), then fdatasync.
  void write_group(std::string group) {
    seal_records(group);
    JournalWrite result;
    // Usually nothing failed before: take the group as it is rather than copy it.
    if (unwritten.empty()) unwritten.swap(group); else unwritten += group;
    result.status = write_all(unwritten);
    if (result.status.ok()) {
      result.bytes = unwritten.size();
      good_size += unwritten.size();
      unwritten.clear();
    } else if (fd >= 0) {
      // Cut a partial record off so later records stay readable.
      if (::ftruncate(fd, static_cast<off_t>(good_size)) != 0) { /* reported via status */ }
    }
    result.file_bytes = good_size;
    asio::post(io, [this, result] { on_written(result); });
  }

  Status write_all(std::string_view bytes) {
    if (fd < 0) {
      if (auto s = open_active(); !s.ok()) return s;
    }
    while (!bytes.empty()) {
      ssize_t n = ::write(fd, bytes.data(), bytes.size());
      if (n < 0) {
        if (errno == EINTR) continue;
        return Error{errno_text("cannot write journal", path)};
      }
      bytes.remove_prefix(static_cast<std::size_t>(n));
    }
    if (::fdatasync(fd) != 0) return Error{errno_text("cannot fsync journal", path)};
    return ok_status();
  }

  // Worker: the active file becomes segment `number`; a new one starts empty.
  void rotate_to(std::uint64_t number) {
    if (fd >= 0) {
      ::close(fd);
      fd = -1;
    }
    if (::rename(path.c_str(), segment_path(path, number).c_str()) != 0 && errno != ENOENT) {
      asio::post(io, [this, message = errno_text("cannot rotate journal", path)] {
        on_written({Error{message}, 0, good_size});
      });
    }
    good_size = 0;
    (void)open_active();
  }

  void drop(const std::vector<std::uint64_t>& numbers) {
    for (auto number : numbers) ::unlink(segment_path(path, number).c_str());
  }

  void append_record(const Delta& delta, std::int64_t id, std::string_view created_at) {
    auto& out = buffer;
    std::size_t start = out.size();
    put<std::uint32_t>(out, 0);  // length and CRC filled in below
    put<std::uint32_t>(out, 0);
    put<std::int64_t>(out, id);
    put<std::uint8_t>(out, static_cast<std::uint8_t>(delta.type));
    put<std::uint8_t>(out, static_cast<std::uint8_t>((delta.before ? 1 : 0) | (delta.after ? 2 : 0)));
    put_string(out, delta.session_id);
    put_string(out, delta.timestamp);
    put_string(out, created_at);
    if (delta.before) put_string(out, *delta.before);
    if (delta.after) put_string(out, *delta.after);
    // The CRC is filled in by the worker (seal_records), off the caller's lane.
    auto size = static_cast<std::uint32_t>(out.size() - start - kHeaderBytes);
    std::memcpy(out.data() + start, &size, 4);
    active_max_id = std::max(active_max_id, id);
  }
};

Result<std::unique_ptr<Journal>> Journal::open(
    asio::io_context& io, const std::string& journal_path,
    std::function<void(const JournalWrite&)> on_written) {
  if (auto s = ensure_parent_directory(journal_path); !s.ok()) return Error{s.error()};
  auto impl = std::make_unique<Impl>(io, journal_path, std::move(on_written));
  auto existing = segments_of(journal_path);
  impl->next_segment = existing.empty() ? 1 : existing.back() + 1;
  for (auto number : existing) impl->segment_max_id[number] = 0;
  if (::access(journal_path.c_str(), F_OK) == 0) {
    impl->segment_max_id[impl->next_segment] = 0;
    auto target = segment_path(journal_path, impl->next_segment++);
    if (::rename(journal_path.c_str(), target.c_str()) != 0) {
      return Error{errno_text("cannot rotate journal", journal_path)};
    }
  }
  if (auto s = impl->open_active(); !s.ok()) return Error{s.error()};
  return std::unique_ptr<Journal>(new Journal(std::move(impl)));
}

Journal::Journal(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Journal::~Journal() = default;

void Journal::append(const Delta& delta, std::int64_t id, const std::string& created_at) {
  std::lock_guard lock(impl_->mutex);
  impl_->append_record(delta, id, created_at);
}

void Journal::append(std::span<const StoredDelta> rows) {
  std::lock_guard lock(impl_->mutex);
  for (const auto& row : rows) impl_->append_record(row.delta, row.id, row.created_at);
}

void Journal::flush() {
  std::lock_guard lock(impl_->mutex);
  impl_->flush_locked();
}

std::uint64_t Journal::rotate() {
  std::lock_guard lock(impl_->mutex);
  impl_->flush_locked();
  auto number = impl_->next_segment++;
  impl_->segment_max_id[number] = impl_->active_max_id;
  impl_->active_max_id = 0;
  asio::post(impl_->worker, [impl = impl_.get(), number] { impl->rotate_to(number); });
  return number;
}

void Journal::drop_covered(std::int64_t last_id) {
  std::lock_guard lock(impl_->mutex);
  std::vector<std::uint64_t> covered;
  for (auto it = impl_->segment_max_id.begin(); it != impl_->segment_max_id.end();) {
    if (it->second <= last_id) {
      covered.push_back(it->first);
      it = impl_->segment_max_id.erase(it);
    } else {
      ++it;
    }
  }
  if (covered.empty()) return;
  asio::post(impl_->worker, [impl = impl_.get(), covered = std::move(covered)] { impl->drop(covered); });
}

std::uint64_t Journal::buffered_bytes() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->buffer.size();
}

}  // namespace deltatap
