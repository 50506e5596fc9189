#include "api/web_console.h"

#include <string>

#include "api/replies.h"

namespace deltatap {

namespace {

constexpr std::string_view kConsolePath = "/ui";

std::string_view path_of(std::string_view target) {
  return target.substr(0, target.find('?'));
}

// True when the If-None-Match header lists `etag` (or is "*"). The header is a
// comma-separated list of entity tags, each possibly weak (W/"..."); a weak
// match is enough for a GET (RFC 9110, 13.1.2).
bool etag_listed(std::string_view header, std::string_view etag) {
  while (!header.empty()) {
    auto comma = header.find(',');
    auto item = header.substr(0, comma);
    header = comma == std::string_view::npos ? std::string_view() : header.substr(comma + 1);
    auto begin = item.find_first_not_of(" \t");
    if (begin == std::string_view::npos) continue;
    item = item.substr(begin, item.find_last_not_of(" \t") - begin + 1);
    if (item.starts_with("W/")) item.remove_prefix(2);
    if (item == "*" || item == etag) return true;
  }
  return false;
}

void add_security_headers(ApiReply& reply) {
  reply.headers.emplace_back("Content-Security-Policy", std::string(kConsoleContentSecurityPolicy));
  reply.headers.emplace_back("Referrer-Policy", "no-referrer");
  reply.headers.emplace_back("X-Frame-Options", "DENY");
  reply.headers.emplace_back("Cross-Origin-Resource-Policy", "same-origin");
}

}  // namespace

bool is_console_target(std::string_view target) {
  auto path = path_of(target);
  return path == kConsolePath ||
         (path.starts_with(kConsolePath) && path.size() > kConsolePath.size() &&
          path[kConsolePath.size()] == '/');
}

std::optional<EmbeddedFile> find_console_file(std::string_view path) {
  path = path_of(path);
  if (!path.starts_with("/ui/")) return std::nullopt;
  auto name = path.substr(4);
  if (name.empty()) name = "index.html";
  for (std::size_t i = 0; i < kEmbeddedConsoleFileCount; ++i) {
    if (kEmbeddedConsoleFiles[i].name == name) return kEmbeddedConsoleFiles[i];
  }
  return std::nullopt;
}

ApiReply console_reply(std::string_view method, std::string_view target,
                       std::string_view if_none_match) {
  if (method != "GET") {
    return method_not_allowed("GET", "the web console's files answer GET only, not \"" +
                                         std::string(method.substr(0, 20)) + "\"");
  }
  if (path_of(target) == kConsolePath) {
    ApiReply reply;
    reply.status = 308;
    reply.content_type = "text/plain; charset=utf-8";
    reply.headers.emplace_back("Location", "/ui/");
    reply.body = "the web console is at /ui/\n";
    return reply;
  }
  auto file = find_console_file(target);
  if (!file) {
    return error_reply(404, "not found",
                       "the web console has no such file; open /ui/ (its pages are "
                       "#/sessions, #/session/ID and #/analytics)");
  }
  ApiReply reply;
  reply.content_type = std::string(file->content_type);
  reply.headers.emplace_back("ETag", std::string(file->etag));
  // Revalidated each time: cheap on loopback, and a new daemon's files are
  // never hidden behind a cached old page.
  reply.headers.emplace_back("Cache-Control", "no-cache");
  add_security_headers(reply);
  if (etag_listed(if_none_match, file->etag)) {
    reply.status = 304;
    return reply;
  }
  reply.body = std::string(file->bytes);
  return reply;
}

}  // namespace deltatap
