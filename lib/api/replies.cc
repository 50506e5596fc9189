#include "api/replies.h"

#include <charconv>
#include <cstdio>
#include <utility>

#include "base/json_text.h"

namespace deltatap {

namespace {

ApiReply json_reply(int status, std::string body) {
  ApiReply reply;
  reply.status = status;
  reply.body = std::move(body);
  return reply;
}

ApiReply error_with(int status, std::string_view error, std::optional<std::string_view> parameter,
                    std::string_view detail) {
  std::string body = "{\"error\":";
  append_json_string(body, error);
  if (parameter) {
    body += ",\"parameter\":";
    append_json_string(body, *parameter);
  }
  body += ",\"detail\":";
  append_json_string(body, detail);
  body += '}';
  return json_reply(status, std::move(body));
}

void append_key(std::string& out, std::string_view key) {
  out += '"';
  out += key;
  out += "\":";
}

std::string stats_json(const StoreCounts& counts, const StatsExtra& extra) {
  std::string out = "{";
  append_key(out, "enabled");
  out += extra.enabled ? "true" : "false";
  out += ',';
  append_key(out, "dbPath");
  append_json_string(out, extra.db_path);
  out += ',';
  append_key(out, "fileSize");
  out += std::to_string(extra.file_size);
  out += ',';
  append_key(out, "deltaCount");
  out += std::to_string(counts.deltas);
  out += ',';
  append_key(out, "sessionCount");
  out += std::to_string(counts.sessions);
  out += ',';
  append_key(out, "rejectedCount");
  out += std::to_string(counts.rejected);
  out += ',';
  append_key(out, "rejectedEvicted");
  out += std::to_string(counts.rejected_evicted);
  out += ',';
  append_key(out, "streamEvents");
  out += std::to_string(counts.stream_events);
  out += ',';
  append_key(out, "memoryBytes");
  out += std::to_string(counts.memory_bytes);
  out += ',';
  append_key(out, "oldest");
  append_json_optional(out, counts.oldest);
  out += ',';
  append_key(out, "newest");
  append_json_optional(out, counts.newest);
  out += ',';
  append_key(out, "schemaVersion");
  out += std::to_string(counts.schema_version);
  out += ',';
  append_key(out, "lastSnapshotAt");
  append_json_optional(out, extra.last_snapshot_at);
  out += ',';
  append_key(out, "lastSnapshotError");
  append_json_optional(out, extra.last_snapshot_error);
  out += ',';
  append_key(out, "connected");
  out += extra.connected ? (*extra.connected ? "true" : "false") : "null";
  out += ',';
  append_key(out, "streamUrl");
  append_json_optional(out, extra.stream_url);
  out += ',';
  append_key(out, "journalBytes");
  out += extra.journal_bytes ? std::to_string(*extra.journal_bytes) : "null";
  out += ',';
  append_key(out, "startedAt");
  append_json_optional(out, extra.started_at);
  out += ',';
  append_key(out, "postgres");
  if (!extra.postgres) {
    out += "null";
  } else {
    const PostgresStats& pg = *extra.postgres;
    out += '{';
    append_key(out, "target");
    append_json_string(out, pg.target);
    out += ',';
    append_key(out, "source");
    append_json_string(out, pg.source);
    out += ',';
    append_key(out, "connected");
    out += pg.connected ? "true" : "false";
    out += ",\"mark\":" + std::to_string(pg.mark) + ",\"lag\":" + std::to_string(pg.lag) +
           ",\"errors\":" + std::to_string(pg.errors) + ',';
    append_key(out, "lastError");
    append_json_optional(out, pg.last_error);
    out += '}';
  }
  out += ',';
  append_key(out, "archive");
  if (!extra.archive) {
    out += "null";
  } else {
    const ArchiveStats& archive = *extra.archive;
    out += '{';
    append_key(out, "directory");
    append_json_string(out, archive.directory);
    out += ",\"files\":" + std::to_string(archive.files) + ",\"bytes\":" +
           std::to_string(archive.bytes) + ",\"moved\":" + std::to_string(archive.moved) + '}';
  }
  // [storage] compression: ratio is encoded / JSON bytes of the states this
  // process encoded (0 before any), as deltatap_compression_ratio.
  const CompressionStats& zc = counts.compression;
  out += ',';
  append_key(out, "compression");
  out += '{';
  append_key(out, "mode");
  append_json_string(out, zc.mode);
  out += ",\"dictionaries\":" + std::to_string(zc.dictionaries) +
         ",\"newestDictionary\":" + std::to_string(zc.newest_dictionary) +
         ",\"jsonBytes\":" + std::to_string(zc.json_bytes) +
         ",\"encodedBytes\":" + std::to_string(zc.encoded_bytes) + ",\"ratio\":";
  char ratio[32];
  std::snprintf(ratio, sizeof ratio, "%.4f", zc.ratio());
  out += ratio;
  out += ",\"references\":" + std::to_string(zc.references) +
         ",\"prefixed\":" + std::to_string(zc.prefixed) +
         ",\"training\":" + (zc.training ? "true" : "false") +
         ",\"converted\":" + (zc.converted ? "true" : "false") + ",\"times\":\"" + zc.times +
         "\",";
  append_key(out, "lastTrainingError");
  append_json_optional(out, zc.last_training_error.empty()
                                ? std::optional<std::string>()
                                : std::optional<std::string>(zc.last_training_error));
  out += '}';
  out += '}';
  return out;
}

std::string_view file_extension(ExportFormat format) {
  switch (format) {
    case ExportFormat::csv: return "csv";
    case ExportFormat::ndjson: return "ndjson";
    case ExportFormat::json: return "json";
  }
  return "json";
}

}  // namespace

ApiReply error_reply(int status, std::string_view error, std::string_view detail) {
  return error_with(status, error, std::nullopt, detail);
}

ApiReply parameter_error(std::string_view parameter, std::string_view detail) {
  return error_with(400, "invalid parameter", parameter, detail);
}

ApiReply unknown_parameter(std::string_view parameter, std::string_view detail) {
  return error_with(400, "unknown parameter", parameter, detail);
}

ApiReply unauthorized(std::string_view detail) {
  auto reply = error_reply(401, "unauthorized", detail);
  reply.headers.emplace_back("WWW-Authenticate", "Bearer realm=\"deltatap\"");
  return reply;
}

ApiReply method_not_allowed(std::string_view allowed, std::string_view detail) {
  auto reply = error_reply(405, "method not allowed", detail);
  reply.headers.emplace_back("Allow", std::string(allowed));
  return reply;
}

ApiReply health_reply() {
  std::string body = "{\"status\":";
  append_json_string(body, "ok");
  body += '}';
  return json_reply(200, std::move(body));
}

ApiReply readiness_reply(const std::vector<std::string>& reasons) {
  std::string body = "{\"status\":";
  append_json_string(body, reasons.empty() ? "ready" : "not ready");
  body += ",\"reasons\":[";
  for (std::size_t i = 0; i < reasons.size(); ++i) {
    if (i) body += ',';
    append_json_string(body, reasons[i]);
  }
  body += "]}";
  return json_reply(reasons.empty() ? 200 : 503, std::move(body));
}

ApiReply metrics_reply(std::string page) {
  ApiReply reply;
  reply.content_type = "text/plain; version=0.0.4; charset=utf-8";
  reply.body = std::move(page);
  return reply;
}

ApiReply stats_reply(const StoreCounts& counts, const StatsExtra& extra) {
  return json_reply(200, stats_json(counts, extra));
}

ApiReply delta_page_reply(const DeltaPage& page) { return json_reply(200, delta_page_json(page)); }

ApiReply sessions_reply(const std::vector<SessionSummary>& rows) {
  return json_reply(200, sessions_json(rows));
}

ApiReply export_reply(ExportFormat format,
                      std::function<Result<std::optional<std::string>>()> next_chunk) {
  ApiReply reply;
  reply.content_type = std::string(content_type(format));
  reply.headers.emplace_back("Content-Disposition", "attachment; filename=\"deltatap-export." +
                                                        std::string(file_extension(format)) +
                                                        "\"");
  reply.next_chunk = std::move(next_chunk);
  return reply;
}

ApiReply snapshot_reply(std::string_view path, std::uint64_t bytes, double seconds) {
  std::string body = "{\"path\":";
  append_json_string(body, path);
  body += ",\"bytes\":" + std::to_string(bytes) + ",\"seconds\":";
  char buffer[32];
  auto [end, ec] = std::to_chars(buffer, buffer + sizeof buffer, seconds);
  body.append(buffer, ec == std::errc() ? end : buffer);
  if (ec != std::errc()) body += '0';
  body += '}';
  return json_reply(200, std::move(body));
}

ApiReply cleanup_reply(std::int64_t deleted, TimePoint older_than) {
  std::string body = "{\"deleted\":" + std::to_string(deleted) + ",\"olderThan\":";
  append_json_string(body, format_timestamp(older_than));
  body += '}';
  return json_reply(200, std::move(body));
}

}  // namespace deltatap
