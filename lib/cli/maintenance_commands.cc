#include "cli/commands.h"

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <fstream>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "api/delta_json.h"
#include "base/json_text.h"
#include "cli/human_text.h"
#include "cli/source.h"
#include "cli/table.h"
#include "storage/archive_file.h"
#include "storage/snapshot.h"
#include "storage/store.h"

namespace deltatap::cli {

namespace {

// The schema version a file declares (PRAGMA user_version: bytes 60-63 of the
// header), read without letting SQLite migrate anything.
std::optional<std::uint32_t> file_schema_version(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  unsigned char header[100];
  if (!in.read(reinterpret_cast<char*>(header), sizeof header)) return std::nullopt;
  return (std::uint32_t{header[60]} << 24) | (std::uint32_t{header[61]} << 16) |
         (std::uint32_t{header[62]} << 8) | std::uint32_t{header[63]};
}

}  // namespace

namespace {

// An unsigned integer member of a flat JSON object; 0 when absent.
std::uint64_t json_number_member(std::string_view object, std::string_view key) {
  auto members = raw_object_members(object);
  if (!members.ok()) return 0;
  for (const auto& m : *members) {
    if (m.key != key) continue;
    std::uint64_t value = 0;
    std::from_chars(m.value.data(), m.value.data() + m.value.size(), value);
    return value;
  }
  return 0;
}

}  // namespace

int cmd_stats(Context& ctx) {
  int code = kExitOk;
  auto format = check_format(ctx, {"table", "json"}, "table", code);
  if (!format) return code;
  auto answer = get_ok(ctx, "GET", "/api/stats", code);
  if (!answer) return code;
  if (*format == "json") {
    ctx.io.out << answer->body << '\n';
    return kExitOk;
  }
  auto members = raw_object_members(answer->body);
  if (!members.ok()) return fail(ctx, "unreadable stats: " + members.error());
  static const std::vector<std::pair<std::string_view, std::string_view>> kLabels = {
      {"enabled", "Storage enabled"}, {"dbPath", "Database file"}, {"fileSize", "File size"},
      {"deltaCount", "Deltas"}, {"sessionCount", "Sessions"}, {"oldest", "Oldest delta"},
      {"newest", "Newest delta"}, {"memoryBytes", "Memory"}, {"schemaVersion", "Schema version"},
      {"rejectedCount", "Rejected messages"}, {"rejectedEvicted", "Rejected, evicted"},
      {"streamEvents", "Stream events"}, {"connected", "Stream connected"},
      {"streamUrl", "Stream URL"}, {"lastSnapshotAt", "Last snapshot"},
      {"lastSnapshotError", "Last snapshot error"}, {"journalBytes", "Journal"},
      {"startedAt", "Started"}};
  Table table;
  table.headers = {"WHAT", "VALUE"};
  for (const auto& [key, label] : kLabels) {
    auto found = std::find_if(members->begin(), members->end(),
                              [&](const RawMember& m) { return m.key == key; });
    if (found == members->end() || found->value == "null") continue;
    std::string value;
    if (!found->value.empty() && found->value.front() == '"') {
      value = decode_json_string(found->value).value_or(std::string(found->value));
      if (key == "oldest" || key == "newest" || key == "lastSnapshotAt" || key == "startedAt") {
        value = show_time(value, ctx.style);
      }
    } else {
      value = std::string(found->value);
      if (key == "fileSize" || key == "memoryBytes" || key == "journalBytes") {
        std::uint64_t bytes = 0;
        std::from_chars(value.data(), value.data() + value.size(), bytes);
        value = human_bytes(bytes) + " (" + value + " bytes)";
      }
      if (value == "true") value = "yes";
      if (value == "false") value = "no";
    }
    table.rows.push_back({std::string(label), value});
  }
  // The archive files, when there are any (docs/archives.md): one line.
  auto archive = std::find_if(members->begin(), members->end(),
                              [](const RawMember& m) { return m.key == "archive"; });
  if (archive != members->end() && archive->value != "null") {
    auto files = json_number_member(archive->value, "files");
    auto bytes = json_number_member(archive->value, "bytes");
    table.rows.push_back({"Archive files", std::to_string(files) + " (" + human_bytes(bytes) + ")"});
  }
  table.colour = [&](std::size_t row, std::size_t column) -> std::string_view {
    if (column == 1 && table.rows[row][0] == "Last snapshot error") return "31";
    return "";
  };
  table.print(ctx.io.out, ctx.style);
  return kExitOk;
}

int cmd_cleanup(Context& ctx) {
  auto older_than = ctx.inv.option("--older-than");
  if (!older_than) return usage(ctx.io, "cleanup needs --older-than 30d|ISO-8601");
  int code = kExitOk;
  auto answer =
      get_ok(ctx, "POST", with_params("/api/cleanup", {{"olderThan", *older_than}}), code);
  if (!answer) return code;
  auto members = raw_object_members(answer->body);
  if (!members.ok()) return fail(ctx, "unreadable answer: " + members.error());
  std::string deleted = "?", cutoff;
  for (const auto& m : *members) {
    if (m.key == "deleted") deleted = std::string(m.value);
    if (m.key == "olderThan") cutoff = decode_json_string(m.value).value_or("");
  }
  if (ctx.file && deleted != "0") {
    auto image = ctx.file->store().serialize();
    if (!image.ok()) return fail(ctx, "serializing the database: " + image.error());
    if (auto s = write_snapshot_file(ctx.where, image->view()); !s.ok()) {
      return fail(ctx, "rewriting " + ctx.where + ": " + s.error());
    }
  }
  // What the daemon answered is printed escaped, as any text from it is.
  ctx.io.out << "deleted " << escape_controls(deleted) << (deleted == "1" ? " delta" : " deltas")
             << " stored before " << escape_controls(show_time(cutoff, ctx.style))
             << (ctx.file && deleted != "0" ? " (" + escape_controls(ctx.where) + " rewritten)" : "")
             << '\n';
  return kExitOk;
}

int cmd_snapshot(Context& ctx) {
  if (ctx.file) {
    return usage(ctx.io, "snapshot asks the running daemon; it cannot work on a file (--db)");
  }
  int code = kExitOk;
  auto answer = get_ok(ctx, "POST", "/api/snapshot", code);
  if (!answer) return code;
  auto members = raw_object_members(answer->body);
  if (!members.ok()) return fail(ctx, "unreadable answer: " + members.error());
  std::string path, bytes = "0", seconds = "0";
  for (const auto& m : *members) {
    if (m.key == "path") path = decode_json_string(m.value).value_or("");
    if (m.key == "bytes") bytes = std::string(m.value);
    if (m.key == "seconds") seconds = std::string(m.value);
  }
  std::uint64_t size = 0;
  std::from_chars(bytes.data(), bytes.data() + bytes.size(), size);
  ctx.io.out << "snapshot written: " << escape_controls(path) << ", " << human_bytes(size) << " in "
             << escape_controls(seconds) << " s\n";
  return kExitOk;
}

namespace {

// Every archive file beside ctx.where (storage/archive_file.h's check), one
// line each; kExitFailed when any fails.
int check_archives(const Context& ctx) {
  auto directory = archive_directory_for(ctx.where);
  auto files = list_archive_files(directory);
  if (!files.ok()) return fail(ctx, files.error());
  ctx.io.out << "archive:        " << escape_controls(directory) << " (" << files->size()
             << (files->size() == 1 ? " file)\n" : " files)\n");
  int damaged = 0;
  for (const auto& file : *files) {
    auto verdict = check_archive_file(file.path);
    std::string text = verdict.ok() ? *verdict : "check failed: " + verdict.error();
    bool good = verdict.ok() && *verdict == "ok";
    if (!good) ++damaged;
    ctx.io.out << "  " << file.month << ":      "
               << escape_controls(good ? "ok" + std::string(file.sealed ? " (read-only)" : "")
                                       : text)
               << '\n';
  }
  if (damaged > 0) {
    return fail(ctx, std::to_string(damaged) + " archive file" + (damaged == 1 ? " is" : "s are") +
                         " damaged");
  }
  return kExitOk;
}

}  // namespace

int cmd_check(Context& ctx) {
  if (ctx.file) {
    auto& store = ctx.file->store();
    auto integrity = store.check();
    auto version = file_schema_version(ctx.where);
    auto counts = store.counts();
    bool ok = integrity.ok() && *integrity == "ok";
    ctx.io.out << "file:           " << escape_controls(ctx.where) << '\n';
    ctx.io.out << "integrity:      "
               << escape_controls(integrity.ok() ? *integrity : "check failed: " + integrity.error())
               << '\n';
    ctx.io.out << "schema version: " << (version ? std::to_string(*version) : "unknown");
    if (version && *version == static_cast<std::uint32_t>(kSchemaVersion)) {
      ctx.io.out << " (current)\n";
    } else if (version && *version == 0) {
      ctx.io.out << " (the domain document's schema; deltatapd migrates it on load)\n";
    } else {
      ctx.io.out << '\n';
    }
    ctx.io.out << "deltas:         " << counts.deltas << '\n';
    if (!ok) return fail(ctx, ctx.where + " is damaged");
    if (ctx.inv.option("--archive")) return check_archives(ctx);
    return kExitOk;
  }
  if (ctx.inv.option("--archive")) {
    return usage(ctx.io, "check --archive reads the archive files beside a file: give it with --db");
  }
  auto ready = ctx.source->fetch("GET", "/readyz");
  if (!ready.ok()) return fail(ctx, ready.error());
  if (ready->status != 200 && ready->status != 503) return api_error(ctx, *ready);
  ctx.io.out << "daemon:         " << escape_controls(ctx.where) << '\n';
  ctx.io.out << "ready:          " << (ready->status == 200 ? "yes" : "no") << '\n';
  if (auto members = raw_object_members(ready->body); members.ok()) {
    for (const auto& m : *members) {
      if (m.key != "reasons") continue;
      // Reasons are strings; show each on its own line.
      std::string_view list = m.value;
      std::size_t i = 0;
      while ((i = list.find('"', i)) != std::string_view::npos) {
        std::size_t end = i + 1;
        while (end < list.size() && list[end] != '"') end += list[end] == '\\' ? 2 : 1;
        auto reason = decode_json_string(list.substr(i, end - i + 1));
        // Reasons can quote the stream (a close reason, an error): escaped.
        if (reason.ok()) ctx.io.out << "  reason:       " << escape_controls(*reason) << '\n';
        i = end + 1;
      }
    }
  }
  int code = kExitOk;
  auto stats = get_ok(ctx, "GET", "/api/stats", code);
  if (!stats) return code;
  if (auto members = raw_object_members(stats->body); members.ok()) {
    for (const auto& m : *members) {
      if (m.key == "schemaVersion") {
        ctx.io.out << "schema version: " << escape_controls(m.value) << '\n';
      }
    }
  }
  return ready->status == 200 ? kExitOk : kExitFailed;
}

}  // namespace deltatap::cli
