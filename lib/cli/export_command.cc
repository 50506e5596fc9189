#include "cli/commands.h"

#include <sys/types.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <ostream>
#include <string>

#include "base/files.h"
#include "cli/human_text.h"
#include "cli/source.h"

namespace deltatap::cli {

namespace {

// An export is made to be read by others (handed on, loaded elsewhere), unlike
// the snapshot, which base/files.h keeps private by default; the mode is set
// exactly, whatever the umask.
constexpr mode_t kExportFileMode = 0644;

}  // namespace

int cmd_export(Context& ctx) {
  int code = kExitOk;
  auto format = check_format(ctx, {"json", "ndjson", "csv"}, "json", code);
  if (!format) return code;
  std::string target = with_params("/api/export", {{"format", *format}});
  auto out_path = ctx.inv.option("--out");
  if (!out_path) {
    Sink sink = [&](std::string_view piece) -> Status {
      ctx.io.out.write(piece.data(), static_cast<std::streamsize>(piece.size()));
      if (!ctx.io.out) return Error{"writing to standard output failed"};
      return ok_status();
    };
    if (!get_ok(ctx, "GET", target, code, &sink)) return code;
    return kExitOk;
  }
  // The rows stream into base/files.h's temporary beside the target, which is
  // renamed over it only once the whole answer is in: an interrupted export
  // never leaves a truncated file.
  std::uint64_t written = 0;
  bool fetch_failed = false;
  auto fill = [&](const std::string& temp, int fd) -> Status {
    Sink sink = [&](std::string_view piece) -> Status {
      while (!piece.empty()) {
        auto n = ::write(fd, piece.data(), piece.size());
        if (n < 0) {
          if (errno == EINTR) continue;
          return Error{errno_text("writing", temp)};
        }
        piece.remove_prefix(static_cast<std::size_t>(n));
        written += static_cast<std::uint64_t>(n);
      }
      return ok_status();
    };
    if (get_ok(ctx, "GET", target, code, &sink)) return ok_status();
    // get_ok() has reported why and set `code`; this error only stops the
    // write (and removes the temporary).
    fetch_failed = true;
    return Error{"the export failed"};
  };
  if (auto s = write_file_atomically(*out_path, fill, kExportFileMode); !s.ok()) {
    if (fetch_failed) return code;
    return fail(ctx, "cannot write " + *out_path + ": " + s.error());
  }
  ctx.io.err << "deltatap: wrote " << *out_path << " (" << human_bytes(written) << ")\n";
  return kExitOk;
}

}  // namespace deltatap::cli
