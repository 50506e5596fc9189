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
#include <charconv>
#include <cstring>
#include <filesystem>
#include <limits>
#include <map>
#include <mutex>
#include <optional>

#include "base/files.h"
#include "storage/snapshot.h"

namespace deltatap {

namespace fs = std::filesystem;
namespace asio = boost::asio;

namespace {

// File: a header, then records. Header: 8 magic bytes, then the u64 number of
// the segment the file becomes at rotation (journal.h says why). Read as a
// record length, "DTJO" is above kMaxPayload: the previous version, which had
// no header, takes such a file for a torn one instead of misreading it.
constexpr char kMagic[8] = {'D', 'T', 'J', 'O', 'U', 'R', 'N', '1'};
constexpr std::size_t kFileHeaderBytes = sizeof kMagic + 8;
// Numbers deltatap gives segments stay below this (one per snapshot: it is
// never reached), so the next number after any segment of ours cannot overflow.
constexpr std::uint64_t kMaxSegmentNumber = std::numeric_limits<std::uint64_t>::max() / 2;

// Record: u32 payload length, u32 CRC-32 of the payload, then the payload:
// i64 id, u8 type, u8 flags (1: before present, 2: after present), then
// u32-length-prefixed strings: session_id, timestamp, created_at, [before], [after].
// Type 3 is a list of live sessions instead: i64 first id, u8 3, u8 flags
// (1: complete), then i64 id count, string at, u32 n, n pairs of strings
// (session id, state), u32 k, k strings (sessions kept).
constexpr std::uint8_t kLiveSessionListType = 3;
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

bool decode_list(Reader& in, std::int64_t first_id, std::uint8_t flags, LiveSessionList& list) {
  list = LiveSessionList{};
  list.first_id = first_id;
  list.complete = (flags & 1) != 0;
  std::uint32_t count = 0;
  if (!in.get(list.id_count) || list.id_count < 0 || !in.get_string(list.at) || !in.get(count)) {
    return false;
  }
  for (std::uint32_t i = 0; i < count; ++i) {
    auto& session = list.sessions.emplace_back();
    if (!in.get_string(session.session_id) || !in.get_string(session.state)) return false;
  }
  if (!in.get(count)) return false;
  for (std::uint32_t i = 0; i < count; ++i) {
    if (!in.get_string(list.keep.emplace_back())) return false;
  }
  return in.done();
}

// A record holds a delta (`row`) or a list of live sessions (`list`, and then
// `is_list`).
bool decode(std::string_view payload, StoredDelta& row, LiveSessionList& list, bool& is_list) {
  Reader in(payload);
  std::uint8_t type = 0, flags = 0;
  is_list = false;
  if (!in.get(row.id) || !in.get(type) || !in.get(flags)) return false;
  if (type == kLiveSessionListType) {
    is_list = true;
    return decode_list(in, row.id, flags, list);
  }
  if (type > 2) return false;
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

std::string segment_path(const std::string& journal_path, std::uint64_t number) {
  return journal_path + "." + std::to_string(number);
}

std::string file_header(std::uint64_t number) {
  std::string out(kMagic, sizeof kMagic);
  put<std::uint64_t>(out, number);
  return out;
}

// What a file's first bytes (up to kFileHeaderBytes) say it is.
struct Head {
  enum Kind { no_records, header, legacy } kind = legacy;
  std::uint64_t number = 0;  // for `header`: the segment it was written to become
};

Head head_of(std::string_view first) {
  auto compared = std::min(first.size(), sizeof kMagic);
  if (std::memcmp(first.data(), kMagic, compared) != 0) return {Head::legacy, 0};
  // Empty, or cut inside its header (a crash just after creating it): no record yet.
  if (first.size() < kFileHeaderBytes) return {Head::no_records, 0};
  Head head{Head::header, 0};
  std::memcpy(&head.number, first.data() + sizeof kMagic, sizeof head.number);
  return head;
}

// The first `count` bytes of the plain file at `path`. A symbolic link is not
// followed and a FIFO never waited on: the error says what the name is instead.
Result<std::string> first_bytes(const std::string& path, std::size_t count) {
  int fd = ::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return Error{errno == ELOOP ? "it is a symbolic link" : errno_text(errno)};
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return Error{"it is not a regular file"};
  }
  std::string bytes(count, '\0');
  ssize_t n = ::pread(fd, bytes.data(), count, 0);
  int error = errno;
  ::close(fd);
  if (n < 0) return Error{errno_text(error)};
  bytes.resize(static_cast<std::size_t>(n));
  return bytes;
}

// N of a name "sessions.journal.N" as deltatap writes it (std::to_string: no
// sign, no leading zero, no space). from_chars, not stoull: a twenty-digit
// name is out of range, not a reason to throw.
std::optional<std::uint64_t> segment_number(std::string_view suffix) {
  if (suffix.empty() || suffix.front() == '0') return std::nullopt;
  std::uint64_t number = 0;
  auto [end, ec] = std::from_chars(suffix.data(), suffix.data() + suffix.size(), number);
  if (ec != std::errc() || end != suffix.data() + suffix.size() || number > kMaxSegmentNumber) {
    return std::nullopt;
  }
  return number;
}

struct SegmentScan {
  std::vector<std::uint64_t> ours;  // ascending
  std::vector<ForeignJournalFile> foreign;
};

// Sorts the "sessions.journal.*" files beside the active file into deltatap's
// segments and the rest (journal.h: which files are segments).
SegmentScan scan_segments(const std::string& journal_path) {
  SegmentScan scan;
  auto dir = fs::path(journal_path).parent_path();
  if (dir.empty()) dir = ".";
  auto prefix = fs::path(journal_path).filename().string() + ".";
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    auto name = it->path().filename().string();
    if (name.rfind(prefix, 0) != 0) continue;
    auto file = it->path().string();
    auto number = segment_number(std::string_view(name).substr(prefix.size()));
    if (!number) {
      scan.foreign.push_back({file, "its name does not end in a segment number deltatap writes"});
      continue;
    }
    auto first = first_bytes(file, kFileHeaderBytes);
    if (!first.ok()) {
      scan.foreign.push_back({file, first.error()});
      continue;
    }
    auto head = head_of(*first);
    if (head.kind == Head::header && head.number != *number) {
      scan.foreign.push_back({file, "its header says it was written as segment " +
                                        std::to_string(head.number) +
                                        ": a copy under another name"});
    } else if (head.kind != Head::header && *number > kMaxLegacySegment) {
      scan.foreign.push_back({file, "it has no journal header, and its number is above any "
                                    "deltatap gave a segment without one"});
    } else {
      scan.ours.push_back(*number);
    }
  }
  std::sort(scan.ours.begin(), scan.ours.end());
  return scan;
}

// The first segment number from `from` on whose name is free: a file that is
// not ours may hold a name, and a rotation must never rename over it.
std::uint64_t free_segment_number(const std::string& journal_path, std::uint64_t from) {
  struct stat st {};
  while (::lstat(segment_path(journal_path, from).c_str(), &st) == 0) ++from;
  return from;
}

// Points the header of the journal file at `path` at segment `number`.
Status write_header_number(const std::string& path, std::uint64_t number) {
  int fd = ::open(path.c_str(), O_WRONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return Error{errno_text("cannot open journal", path)};
  char bytes[sizeof number];
  std::memcpy(bytes, &number, sizeof number);
  bool written = ::pwrite(fd, bytes, sizeof bytes, sizeof kMagic) == static_cast<ssize_t>(sizeof bytes) &&
                 ::fdatasync(fd) == 0;
  int error = errno;
  ::close(fd);
  if (!written) return Error{errno_text("cannot write journal header", path, error)};
  return ok_status();
}

// The active file a previous run left: it becomes segment `number`, replayed
// and dropped like any other. Returns whether it did; a file that holds no
// record is removed instead (there is nothing in it to keep).
Result<bool> retire_leftover(const std::string& journal_path, std::uint64_t number) {
  struct stat st {};
  if (::lstat(journal_path.c_str(), &st) != 0) {
    if (errno == ENOENT) return false;
    return Error{errno_text("cannot read journal", journal_path)};
  }
  if (auto first = first_bytes(journal_path, kFileHeaderBytes); first.ok()) {
    auto head = head_of(*first);
    if (head.kind == Head::no_records) {
      if (::unlink(journal_path.c_str()) != 0) {
        return Error{errno_text("cannot remove empty journal", journal_path)};
      }
      return false;
    }
    // Its header named the number that run would have given it; this run's may differ.
    if (head.kind == Head::header) {
      if (auto s = write_header_number(journal_path, number); !s.ok()) return Error{s.error()};
    }
    // Without a header it is the previous version's, and stays so: the number
    // follows its segments, far below kMaxLegacySegment, so it is read as theirs.
  }
  if (::rename(journal_path.c_str(), segment_path(journal_path, number).c_str()) != 0) {
    return Error{errno_text("cannot rotate journal", journal_path)};
  }
  return true;
}

}  // namespace

std::string journal_path_for(const std::string& database_path) {
  fs::path path(database_path);
  return (path.parent_path() / (path.stem().string() + ".journal")).string();
}

Result<JournalReplay> read_journal(const std::string& journal_path, std::int64_t after_id) {
  JournalReplay replay;
  auto scan = scan_segments(journal_path);
  replay.foreign = std::move(scan.foreign);
  std::vector<std::string> files;
  for (auto number : scan.ours) files.push_back(segment_path(journal_path, number));
  files.push_back(journal_path);
  for (const auto& file : files) {
    auto bytes = read_snapshot_file(file);
    if (!bytes.ok()) return Error{bytes.error()};
    if (!bytes->has_value()) continue;
    std::string_view rest(**bytes);
    // The active file is ours by its name, whatever its header says.
    auto head = head_of(rest.substr(0, kFileHeaderBytes));
    if (head.kind == Head::no_records) continue;
    if (head.kind == Head::header) rest.remove_prefix(kFileHeaderBytes);
    while (!rest.empty()) {
      std::uint32_t size = 0, crc = 0;
      bool intact = rest.size() >= kHeaderBytes;
      if (intact) {
        std::memcpy(&size, rest.data(), 4);
        std::memcpy(&crc, rest.data() + 4, 4);
        intact = size <= kMaxPayload && rest.size() - kHeaderBytes >= size;
      }
      StoredDelta row;
      LiveSessionList list;
      bool is_list = false;
      std::string_view payload = intact ? rest.substr(kHeaderBytes, size) : std::string_view{};
      intact = intact && crc_of(payload) == crc && decode(payload, row, list, is_list);
      if (!intact) {
        ++replay.torn;
        replay.warnings.push_back(file + ": torn or corrupt record at byte " +
                                  std::to_string((*bytes)->size() - rest.size()) + "; " +
                                  std::to_string(rest.size()) + " bytes ignored");
        break;
      }
      ++replay.records;
      if (is_list) {
        if (list.last_id() > after_id) {
          replay.reconciles.push_back({replay.deltas.size(), std::move(list)});
        }
      } else if (row.id > after_id) {
        replay.deltas.push_back(std::move(row));
      }
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
  std::int64_t active_max_id = 0;   // highest id appended since the last rotation
  // Closed segments and the highest id each holds; a segment found at open was
  // replayed into the store before anything else, so any snapshot covers it (0).
  std::map<std::uint64_t, std::int64_t> segment_max_id;

  // Store lane only: the segment the active file becomes at the next rotation,
  // as its header says (rotate() hands the worker the one after it).
  std::uint64_t active_number = 1;

  // Worker state.
  std::uint64_t file_number = 1;    // what the header of the active file names
  int fd = -1;
  bool header_failed = false;       // the last open_active() opened the file but not its header
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

  // Opens the active file, giving a new one its header before any record: a
  // record behind no header would be in a file the next start cannot tell
  // for ours. Without the header the file is not used (fd stays -1) and the
  // next write tries again.
  Status open_active() {
    header_failed = false;
    fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0) return Error{errno_text("cannot open journal", path)};
    struct stat st {};
    ::fstat(fd, &st);
    good_size = static_cast<std::uint64_t>(st.st_size);
    Status status = ok_status();
    if (good_size >= kFileHeaderBytes) {
      // Still here after a failed rename: it goes on as the file for `file_number`.
      status = write_header_number(path, file_number);
    } else {
      auto header = file_header(file_number);
      bool written = ::ftruncate(fd, 0) == 0 &&
                     ::write(fd, header.data(), header.size()) == static_cast<ssize_t>(header.size());
      if (!written) {
        status = Error{errno_text("cannot write journal header", path)};
        if (::ftruncate(fd, 0) != 0) { /* reported via status */ }
      }
      good_size = header.size();
    }
    if (!status.ok()) {
      ::close(fd);
      fd = -1;
      good_size = 0;
      header_failed = true;
    }
    return status;
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
    if (auto s = deltatap::write_all(fd, bytes, path); !s.ok()) return s;
    if (::fdatasync(fd) != 0) return Error{errno_text("cannot fsync journal", path)};
    return ok_status();
  }

  // Worker: the active file becomes segment `number`; a new one, for segment
  // `next`, starts with its header.
  void rotate_to(std::uint64_t number, std::uint64_t next) {
    if (fd >= 0) {
      ::close(fd);
      fd = -1;
    }
    struct stat st {};
    if (::lstat(path.c_str(), &st) == 0) {
      if (static_cast<std::uint64_t>(st.st_size) <= kFileHeaderBytes) {
        // No record in it: a segment would only be one more file to drop.
        ::unlink(path.c_str());
      } else if (::rename(path.c_str(), segment_path(path, number).c_str()) != 0) {
        asio::post(io, [this, message = errno_text("cannot rotate journal", path)] {
          on_written({Error{message}, 0, good_size});
        });
      }
    }
    file_number = next;
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

  void append_list(const LiveSessionList& list) {
    auto& out = buffer;
    std::size_t start = out.size();
    put<std::uint32_t>(out, 0);  // length and CRC filled in as for a delta
    put<std::uint32_t>(out, 0);
    put<std::int64_t>(out, list.first_id);
    put<std::uint8_t>(out, kLiveSessionListType);
    put<std::uint8_t>(out, list.complete ? 1 : 0);
    put<std::int64_t>(out, list.id_count);
    put_string(out, list.at);
    put<std::uint32_t>(out, static_cast<std::uint32_t>(list.sessions.size()));
    for (const auto& session : list.sessions) {
      put_string(out, session.session_id);
      put_string(out, session.state);
    }
    put<std::uint32_t>(out, static_cast<std::uint32_t>(list.keep.size()));
    for (const auto& id : list.keep) put_string(out, id);
    auto size = static_cast<std::uint32_t>(out.size() - start - kHeaderBytes);
    std::memcpy(out.data() + start, &size, 4);
    active_max_id = std::max(active_max_id, list.last_id());
  }
};

Result<std::unique_ptr<Journal>> Journal::open(
    asio::io_context& io, const std::string& journal_path,
    std::function<void(const JournalWrite&)> on_written) {
  if (auto s = ensure_parent_directory(journal_path); !s.ok()) return Error{s.error()};
  auto impl = std::make_unique<Impl>(io, journal_path, std::move(on_written));
  // Files that are not ours were reported by read_journal; here they only hold names.
  auto ours = scan_segments(journal_path).ours;
  for (auto number : ours) impl->segment_max_id[number] = 0;
  auto number = free_segment_number(journal_path, ours.empty() ? 1 : ours.back() + 1);
  auto retired = retire_leftover(journal_path, number);
  if (!retired.ok()) return Error{retired.error()};
  if (*retired) {
    impl->segment_max_id[number] = 0;
    number = free_segment_number(journal_path, number + 1);
  }
  impl->active_number = number;
  impl->file_number = number;
  // A file that cannot be opened is a reason not to start. A header that cannot
  // be written (a full disk) is not: like any journal write it is retried with
  // the next group, and reported then.
  if (auto s = impl->open_active(); !s.ok() && !impl->header_failed) return Error{s.error()};
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

void Journal::append(const LiveSessionList& list) {
  std::lock_guard lock(impl_->mutex);
  impl_->append_list(list);
}

void Journal::flush() {
  std::lock_guard lock(impl_->mutex);
  impl_->flush_locked();
}

std::uint64_t Journal::rotate() {
  // The new active file's header names its segment from the start, so that
  // number is chosen now; looking for a free name is a stat or two, done
  // before taking the lock the stream lane appends under.
  auto number = impl_->active_number;
  auto next = free_segment_number(impl_->path, number + 1);
  impl_->active_number = next;
  std::lock_guard lock(impl_->mutex);
  impl_->flush_locked();
  impl_->segment_max_id[number] = impl_->active_max_id;
  impl_->active_max_id = 0;
  asio::post(impl_->worker, [impl = impl_.get(), number, next] { impl->rotate_to(number, next); });
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
