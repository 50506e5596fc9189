// http_api: the simulated backend's plain HTTP answers, served on the port of
// its WebSocket as the real backend serves both. http_upgrade.h reads every
// request and hands here each one that is not a WebSocket upgrade:
//   GET /api/sessions  200, every live session's current state (Session::json,
//                      each with its "id"), as {"sessions":[...]} or, with
//                      --sessions-shape array, a bare [...]; Content-Type
//                      application/json. The query string is ignored. With
//                      --token, "Authorization: Bearer TOKEN" is required
//                      (the scheme in any case): else 401, with
//                      WWW-Authenticate: Bearer.
//   /api/sessions with another method: 405 (Allow: GET), after the same auth.
//   anything else:     404.
// Errors are JSON: {"error":"...","detail":"..."}. Every answer says
// Connection: close: one request per connection, as http_upgrade.h serves it.
//
// Pure functions of their arguments. The World is not synchronised, so call
// answer_plain_request() on the thread that owns it (the server's io thread).
#pragma once

#include <string_view>

#include "sim/net.h"
#include "sim/session_model.h"
#include "sim/simulator.h"

namespace deltatap::sim {

using Request = http::request<http::string_body>;
using Response = http::response<http::string_body>;

// The answer to `request`, which is not a WebSocket upgrade (see above).
Response answer_plain_request(const Request& request, const SimulatorOptions& options,
                              const World& world);

// A JSON error answer: {"error": error, "detail": detail}, HTTP/`version`
// (11 for 1.1), closing the connection.
Response json_error(http::status status, unsigned version, std::string_view error,
                    std::string_view detail);

// Whether a == b, compared without an early exit, so that the time it takes
// says nothing about a token.
bool same_secret(std::string_view a, std::string_view b);

}  // namespace deltatap::sim
