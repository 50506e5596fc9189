// replies: every answer of the HTTP API, status, content type and body, is
// made by one of these functions, so the shape of an answer is decided in one
// place and no endpoint writes JSON by hand. Strings go through
// append_json_string (base/json_text.h). The listings (deltas, sessions, the
// export's pieces) are the encodings of api/delta_json.h, which the CLI shares
// and reads back; these functions wrap them into replies.
//
// Pure functions: any thread.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "api/api_handler.h"
#include "api/delta_json.h"
#include "base/result.h"
#include "base/timestamp.h"
#include "storage/store.h"

namespace deltatap {

// Errors: {"error":ERROR,"detail":DETAIL}, with "parameter":NAME between the
// two when one query parameter is at fault. ERROR is a short fixed phrase a
// client may compare; DETAIL is a sentence for a person.
ApiReply error_reply(int status, std::string_view error, std::string_view detail);
// 400 "invalid parameter": `parameter` is known but its value is refused.
ApiReply parameter_error(std::string_view parameter, std::string_view detail);
// 400 "unknown parameter": the endpoint takes no `parameter`.
ApiReply unknown_parameter(std::string_view parameter, std::string_view detail);
// 401 "unauthorized", with the Bearer challenge in WWW-Authenticate.
ApiReply unauthorized(std::string_view detail);
// 405 "method not allowed", with `allowed` in the Allow header.
ApiReply method_not_allowed(std::string_view allowed, std::string_view detail);

// GET /healthz: 200 {"status":"ok"}.
ApiReply health_reply();
// GET /readyz: 200 {"status":"ready","reasons":[]} when `reasons` is empty,
// else 503 {"status":"not ready","reasons":[...]}.
ApiReply readiness_reply(const std::vector<std::string>& reasons);
// GET /metrics: the Prometheus text page as Metrics::render wrote it.
ApiReply metrics_reply(std::string page);
// GET /api/stats: the document's getStats fields (enabled, dbPath, fileSize,
// deltaCount) and more, every field always present (null when unknown).
ApiReply stats_reply(const StoreCounts& counts, const StatsExtra& extra);
// GET /api/deltas[/{id}]: {"deltas":[...],"next":"CURSOR"|null}.
ApiReply delta_page_reply(const DeltaPage& page);
// GET /api/sessions: {"sessions":[...]}.
ApiReply sessions_reply(const std::vector<SessionSummary>& rows);
// GET /api/export: a streamed attachment named deltatap-export.EXT whose
// pieces come from `next_chunk` (see ApiReply::next_chunk).
ApiReply export_reply(ExportFormat format,
                      std::function<Result<std::optional<std::string>>()> next_chunk);
// POST /api/snapshot: {"path":...,"bytes":N,"seconds":X}, X in the shortest
// form that reads back as the same double.
ApiReply snapshot_reply(std::string_view path, std::uint64_t bytes, double seconds);
// POST /api/cleanup: {"deleted":N,"olderThan":TIMESTAMP}, the cutoff normalised.
ApiReply cleanup_reply(std::int64_t deleted, TimePoint older_than);

}  // namespace deltatap
