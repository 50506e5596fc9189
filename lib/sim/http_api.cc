#include "sim/http_api.h"

#include <cctype>
#include <cstddef>
#include <string>

#include "base/json_text.h"
#include "sim/frames.h"

namespace deltatap::sim {

namespace {

constexpr std::string_view kSessionsPath = "/api/sessions";

std::string_view path_of(const Request& request) {
  std::string_view target(request.target().data(), request.target().size());
  return target.substr(0, target.find('?'));
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) !=
        std::tolower(static_cast<unsigned char>(b[i]))) {
      return false;
    }
  }
  return true;
}

// The credentials of "Authorization: Bearer TOKEN" (RFC 6750: the scheme in
// any case, then spaces); "" when the header is missing or of another scheme.
std::string_view bearer_of(const Request& request) {
  auto it = request.find(http::field::authorization);
  if (it == request.end()) return {};
  std::string_view value(it->value().data(), it->value().size());
  constexpr std::string_view kScheme = "Bearer";
  if (value.size() <= kScheme.size() || !iequals(value.substr(0, kScheme.size()), kScheme) ||
      value[kScheme.size()] != ' ') {
    return {};
  }
  value.remove_prefix(kScheme.size());
  while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
  while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.remove_suffix(1);
  return value;
}

Response json_answer(http::status status, unsigned version, std::string body) {
  Response response(status, version);
  response.set(http::field::server, kServerName);
  response.set(http::field::content_type, "application/json");
  response.keep_alive(false);
  response.body() = std::move(body);
  response.prepare_payload();
  return response;
}

}  // namespace

Response json_error(http::status status, unsigned version, std::string_view error,
                    std::string_view detail) {
  std::string body = "{\"error\":";
  append_json_string(body, error);
  body += ",\"detail\":";
  append_json_string(body, detail);
  body += "}\n";
  return json_answer(status, version, std::move(body));
}

Response answer_plain_request(const Request& request, const SimulatorOptions& options,
                              const World& world) {
  unsigned version = request.version();
  if (path_of(request) != kSessionsPath) {
    return json_error(http::status::not_found, version, "not found",
                      "this server answers GET /api/sessions and WebSocket upgrades");
  }
  // Authentication first, as the backend's middleware does: a client without
  // the token learns nothing, not even which methods there are.
  if (!options.token.empty() && !same_secret(bearer_of(request), options.token)) {
    auto refused = json_error(http::status::unauthorized, version, "unauthorized",
                              "wrong or missing bearer token (Authorization: Bearer TOKEN)");
    refused.set(http::field::www_authenticate, "Bearer");
    return refused;
  }
  if (request.method() != http::verb::get) {
    auto refused = json_error(http::status::method_not_allowed, version, "method not allowed",
                              "/api/sessions answers GET only");
    refused.set(http::field::allow, "GET");
    return refused;
  }
  bool bare_array = options.sessions_shape == SimSessionsShape::array;
  return json_answer(http::status::ok, version, render_live_sessions(world, bare_array));
}

bool same_secret(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  unsigned char diff = 0;
  for (std::size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  return diff == 0;
}

}  // namespace deltatap::sim
