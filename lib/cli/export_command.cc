#include "cli/commands.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <future>
#include <ostream>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/files.h"
#include "cli/human_text.h"
#include "cli/source.h"
#include "sinks/pg_connection.h"
#include "sinks/pg_parallel_writer.h"
#include "sinks/pg_writer.h"
#include "sinks/postgres_sink.h"
#include "storage/archive_file.h"
#include "storage/store.h"

namespace deltatap::cli {

namespace {

// What --out names once a link is followed: the file a link points to is the one
// replaced, and the link stays. A dangling link is left as it is named.
std::string resolve_link(const std::string& path) {
  struct stat link {};
  if (::lstat(path.c_str(), &link) != 0 || !S_ISLNK(link.st_mode)) return path;
  char* real = ::realpath(path.c_str(), nullptr);
  if (!real) return path;
  std::string resolved = real;
  std::free(real);
  return resolved;
}

// A new export is private, as the history it copies is (the snapshot is 0600 in
// a 0700 directory), and narrower still when the umask says so; `chmod` it to
// hand it on. The CLI is one thread, so reading the umask by setting it is safe.
mode_t new_file_mode() {
  mode_t mask = ::umask(0);
  ::umask(mask);
  return 0600 & ~mask;
}

// Writes each piece whole to `fd`, counting the bytes; an error names `path`.
Sink descriptor_sink(int fd, const std::string& path, std::uint64_t& written) {
  return [fd, &path, &written](std::string_view piece) -> Status {
    if (auto s = write_all(fd, piece, path); !s.ok()) return s;
    written += piece.size();
    return ok_status();
  };
}

int report_written(Context& ctx, const std::string& path, std::uint64_t written) {
  ctx.io.err << "deltatap: wrote " << path << " (" << human_bytes(written) << ")\n";
  return kExitOk;
}

// --out names something that is not a regular file. A character device
// (/dev/null, /dev/stdout on a terminal) or a FIFO is written in place, as the
// shell's `>` would: a temporary renamed over it would replace the device or the
// pipe with a plain file. Anything else (a directory, a block device, a socket)
// is refused.
int export_in_place(Context& ctx, const std::string& path, mode_t type,
                    const std::string& target) {
  if (!S_ISCHR(type) && !S_ISFIFO(type)) {
    std::string what = S_ISDIR(type)   ? "a directory"
                       : S_ISBLK(type) ? "a block device"
                       : S_ISSOCK(type) ? "a socket"
                                        : "not a regular file";
    return fail(ctx, "cannot write " + path + ": it is " + what +
                         " (--out takes a file, a character device or a FIFO)");
  }
  int fd = ::open(path.c_str(), O_WRONLY | O_NOCTTY | O_CLOEXEC);
  if (fd < 0) return fail(ctx, errno_text("cannot open", path));
  std::uint64_t written = 0;
  Sink sink = descriptor_sink(fd, path, written);
  int code = kExitOk;
  bool fetched = get_ok(ctx, "GET", target, code, &sink).has_value();
  int closed = ::close(fd);
  if (!fetched) return code;  // get_ok() has said why: the fetch or a write failed
  if (closed != 0) return fail(ctx, errno_text("cannot close", path));
  return report_written(ctx, path, written);
}

// --- export --to postgresql://… ---------------------------------------------------

// Deltas per batch: two COPYs of 5,000, one per connection (pg_parallel_writer.h).
constexpr std::size_t kExportBatch = 10'000;

// "[#######-------------]  35%  350000/1000000 deltas": redrawn in place on a
// terminal (carriage return, no newline until the end).
void draw_progress(std::ostream& err, std::int64_t done, std::int64_t total) {
  constexpr int kWidth = 30;
  double share = total > 0 ? static_cast<double>(done) / static_cast<double>(total) : 1.0;
  int filled = static_cast<int>(share * kWidth);
  err << "\r[" << std::string(filled, '#') << std::string(kWidth - filled, '-') << "] ";
  char percent[8];
  std::snprintf(percent, sizeof percent, "%3d%%", static_cast<int>(share * 100));
  err << percent << "  " << done << "/" << total << " deltas" << std::flush;
}

// Copies the whole history of the --db file into PostgreSQL's schema
// (sinks/pg_writer.h), in batches, idempotently: a delta already there (same
// source and id) is skipped, so running it again adds nothing. Deltas are
// read in id order from the file, the sink's order.
int export_to_postgres(Context& ctx, const std::string& url) {
  if (!ctx.file) {
    return usage(ctx.io, "export --to needs --db FILE: it copies a file's history (a running "
                         "daemon replicates with [postgres] url)");
  }
  auto shown = display_conninfo(url);
  if (!shown.ok()) return fail(ctx, "--to: " + shown.error());
  std::string source = postgres_source_name(ctx.inv.option("--source").value_or(""));
  std::atomic<bool> never{false};  // the CLI is stopped by a signal, as a whole
  PgConnectOptions options;
  options.url = url;
  options.application_name = "deltatap export";
  auto connection = PgConnection::connect(options, never);
  if (!connection.ok()) return fail(ctx, "cannot connect to " + *shown + ": " + connection.error());
  (*connection)->set_timeout(PostgresOptions{}.statement_timeout);
  if (auto s = ensure_pg_schema(**connection); !s.ok()) {
    return fail(ctx, "cannot prepare the schema in " + *shown + ": " + s.error());
  }
  connection->reset();  // the check's; the writer opens its own two
  Store& store = ctx.file->store();
  std::int64_t total = store.delta_count();
  // --archive: the archive files beside the file first, oldest month first,
  // then the file's own deltas (each source by id; ids never repeat across
  // them, and a repeat would be dropped by the key anyway).
  std::vector<ArchiveFile> archives;
  if (ctx.inv.option("--archive")) {
    auto files = list_archive_files(archive_directory_for(ctx.where));
    if (!files.ok()) return fail(ctx, files.error());
    for (const auto& entry : *files) {
      auto file = ArchiveFile::open_readonly(entry.path);
      if (!file.ok()) return fail(ctx, file.error());
      auto rows = file->row_count();
      if (!rows.ok()) return fail(ctx, rows.error());
      total += *rows;
      archives.push_back(std::move(*file));
    }
  }
  const bool progress = ::isatty(STDERR_FILENO) == 1;
  PgParallelOptions writer_options;
  writer_options.connect = options;
  writer_options.source = source;
  writer_options.statement_timeout = PostgresOptions{}.statement_timeout;
  PgParallelWriter writer(writer_options, never);
  std::int64_t done = 0, added = 0;
  std::string error;
  auto started = std::chrono::steady_clock::now();
  auto drawn = started;
  auto flush = [&](std::span<const StoredDelta> batch) -> bool {
    auto written = writer.write(batch);
    if (!written.ok()) {
      error = written.error();
      return false;
    }
    done += static_cast<std::int64_t>(batch.size());
    added += *written;
    auto now = std::chrono::steady_clock::now();
    if (progress && now - drawn >= std::chrono::milliseconds(200)) {
      drawn = now;
      draw_progress(ctx.io.err, done, total);
    }
    return true;
  };
  // One source (an archive file, then the store) in id order. The next batch
  // is read on a thread of its own while this one is written: PostgreSQL's
  // backends would otherwise wait for each read (about a tenth of an
  // export's time). Only that thread touches `from` meanwhile.
  Status visited = ok_status();
  auto copy_all = [&](auto& from) {
    auto read = [&from](std::int64_t after) { return from.deltas_after(after, kExportBatch); };
    auto next = std::async(std::launch::async, read, std::int64_t{0});
    for (;;) {
      auto rows = next.get();
      if (!rows.ok()) {
        visited = Error{rows.error()};
        return;
      }
      if (rows->empty()) return;
      next = std::async(std::launch::async, read, rows->back().id);
      if (!flush(*rows)) {
        next.wait();
        return;
      }
    }
  };
  for (auto& archive : archives) {
    if (visited.ok() && error.empty()) copy_all(archive);
  }
  if (visited.ok() && error.empty()) copy_all(store);
  if (progress) {
    draw_progress(ctx.io.err, done, total);
    ctx.io.err << "\n";
  }
  if (!visited.ok()) return fail(ctx, "reading " + ctx.where + ": " + visited.error());
  if (!error.empty()) {
    return fail(ctx, "writing to " + *shown + " failed after " + std::to_string(done) +
                         " deltas (running the export again resumes safely): " + error);
  }
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  char rate[32];
  std::snprintf(rate, sizeof rate, "%.0f", seconds > 0 ? static_cast<double>(done) / seconds : 0.0);
  ctx.io.err << "deltatap: exported " << done << " deltas to " << *shown << " as source "
             << escape_controls(source) << ": " << added << " new, " << (done - added)
             << " already there (" << rate << " deltas/s)\n";
  return kExitOk;
}

}  // namespace

int cmd_export(Context& ctx) {
  if (auto to = ctx.inv.option("--to")) {
    return export_to_postgres(ctx, *to);
  }
  int code = kExitOk;
  auto format = check_format(ctx, {"json", "ndjson", "csv"}, "json", code);
  if (!format) return code;
  std::vector<std::pair<std::string, std::string>> params = {{"format", *format}};
  if (ctx.inv.option("--csv-raw")) params.emplace_back("csv", "raw");
  if (ctx.inv.option("--archive")) params.emplace_back("archive", "1");
  std::string target = with_params("/api/export", params);
  auto out_option = ctx.inv.option("--out");
  if (!out_option) {
    Sink sink = [&](std::string_view piece) -> Status {
      ctx.io.out.write(piece.data(), static_cast<std::streamsize>(piece.size()));
      if (!ctx.io.out) return Error{"writing to standard output failed"};
      return ok_status();
    };
    if (!get_ok(ctx, "GET", target, code, &sink)) return code;
    return kExitOk;
  }
  const std::string out_path = resolve_link(*out_option);
  struct stat existing {};
  bool exists = ::stat(out_path.c_str(), &existing) == 0;
  if (exists && !S_ISREG(existing.st_mode)) {
    return export_in_place(ctx, out_path, existing.st_mode, target);
  }
  // A file replaced keeps its permissions (never the set-id bits); a new one
  // is private.
  mode_t mode = exists ? (existing.st_mode & 0777) : new_file_mode();
  bool other_owner = exists && (existing.st_uid != ::geteuid() || existing.st_gid != ::getegid());
  std::string owner_note;

  // The rows stream into base/files.h's temporary beside the target (made 0600,
  // then given `mode`), which is renamed over it only once the whole answer is
  // in: an interrupted export never leaves a truncated file.
  std::uint64_t written = 0;
  bool fetch_failed = false;
  auto fill = [&](const std::string& temp, int fd) -> Status {
    // The owner and group too, where the user may keep them (root may; anyone
    // may keep a group they are in). A group that cannot be kept loses its
    // permissions rather than hand them to the user's own group.
    if (other_owner && ::fchown(fd, existing.st_uid, existing.st_gid) != 0) {
      if (::fchown(fd, static_cast<uid_t>(-1), existing.st_gid) == 0) {
        owner_note = "it now belongs to you; its group is kept";
      } else if (::fchmod(fd, mode & 0707) == 0) {
        owner_note = "it now belongs to you and your group, so its group permissions were dropped";
      } else {
        return Error{errno_text("cannot set the mode of", temp)};
      }
    }
    Sink sink = descriptor_sink(fd, temp, written);
    if (get_ok(ctx, "GET", target, code, &sink)) return ok_status();
    // get_ok() has reported why and set `code`; this error only stops the
    // write (and removes the temporary).
    fetch_failed = true;
    return Error{"the export failed"};
  };
  if (auto s = write_file_atomically(out_path, fill, mode); !s.ok()) {
    if (fetch_failed) return code;
    return fail(ctx, "cannot write " + out_path + ": " + s.error());
  }
  if (!owner_note.empty()) {
    ctx.io.err << "deltatap: note: " << out_path << " could not keep its owner: " << owner_note
               << "\n";
  }
  return report_written(ctx, out_path, written);
}

}  // namespace deltatap::cli
