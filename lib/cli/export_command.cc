#include "cli/commands.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <ostream>
#include <string>

#include "cli/human_text.h"
#include "cli/source.h"

namespace deltatap::cli {

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
  // A temporary file beside the target, renamed over it only when complete.
  std::filesystem::path final_path(*out_path);
  std::string temp = (final_path.parent_path().empty() ? std::filesystem::path(".")
                                                       : final_path.parent_path()) /
                     ("." + final_path.filename().string() + ".partial-XXXXXX");
  int fd = ::mkstemp(temp.data());
  if (fd < 0) return fail(ctx, "cannot create a file beside " + *out_path + ": " + std::strerror(errno));
  ::fchmod(fd, 0644);
  std::uint64_t written = 0;
  Sink sink = [&](std::string_view piece) -> Status {
    while (!piece.empty()) {
      auto n = ::write(fd, piece.data(), piece.size());
      if (n < 0) {
        if (errno == EINTR) continue;
        return Error{"writing " + temp + ": " + std::strerror(errno)};
      }
      piece.remove_prefix(static_cast<std::size_t>(n));
      written += static_cast<std::uint64_t>(n);
    }
    return ok_status();
  };
  auto answer = get_ok(ctx, "GET", target, code, &sink);
  bool ok = answer.has_value() && ::fsync(fd) == 0;
  ::close(fd);
  if (!ok || ::rename(temp.c_str(), out_path->c_str()) != 0) {
    std::string reason = ok ? std::string(std::strerror(errno)) : "";
    ::unlink(temp.c_str());
    if (!answer) return code;
    return fail(ctx, "cannot write " + *out_path + ": " + reason);
  }
  ctx.io.err << "deltatap: wrote " << *out_path << " (" << human_bytes(written) << ")\n";
  return kExitOk;
}

}  // namespace deltatap::cli
