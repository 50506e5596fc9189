// web_console: the files of the web console (design.md, "Web console"), served
// at GET /ui/... from bytes compiled into the binary, so the console works
// offline and cannot drift from the daemon it came with.
//
// The files are lib/api/console/* and Debian's Chart.js
// (/usr/share/javascript/chart.js/chart.min.js, package libjs-chart.js), turned
// into byte arrays at build time by cmake/embed_assets.cmake, which writes the
// table kEmbeddedConsoleFiles below into a generated .cc file. No file is read
// at run time and no request path ever reaches the file system: a path is only
// ever compared with the names in that table.
//
// The console's files need no token (the page has to load before it can ask
// for one); everything it shows comes from the JSON API, which does. ApiHandler
// routes every target that is_console_target() accepts here, before its own
// authorisation check, and never on to an API route.
//
// Pure functions over constant data: any thread.
#pragma once

#include <cstddef>
#include <optional>
#include <string_view>

#include "api/api_handler.h"

namespace deltatap {

// One embedded file, as the generated table holds it.
struct EmbeddedFile {
  std::string_view name;          // "index.html", "console.js", "chart.min.js", ...
  std::string_view content_type;  // decided by the file's extension at build time
  std::string_view etag;          // quoted, from the content's SHA-256: "\"3fa9...\""
  std::string_view bytes;
};

// Defined in the generated file (cmake/embed_assets.cmake).
extern const EmbeddedFile kEmbeddedConsoleFiles[];
extern const std::size_t kEmbeddedConsoleFileCount;

// The Content-Security-Policy of every console file: scripts, styles and
// requests from the daemon itself only, nothing inline, no frames, no forms.
// An injected <script> in text from the stream could not run even if the page
// ever inserted it as markup (it does not: every such text is a text node).
inline constexpr std::string_view kConsoleContentSecurityPolicy =
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

// True when the request target (origin form, as received: path and query) is
// the console's: its path is "/ui" or starts with "/ui/". Such a request is
// answered by console_reply() and by nothing else.
bool is_console_target(std::string_view target);

// The file at `path` ("/ui/" and "/ui/index.html" are index.html; the query is
// ignored), or nullopt when there is none.
std::optional<EmbeddedFile> find_console_file(std::string_view path);

// The answer to a request for a console target:
//  - GET of a file: 200 with the file, its type, ETag, Cache-Control: no-cache
//    (the browser revalidates, so a new daemon's files are seen at once) and the
//    security headers; 304 with no body when `if_none_match` names its ETag;
//  - GET "/ui": 308 to "/ui/" (the page's files are named relative to it);
//  - another method: 405 with Allow: GET; an unknown file: 404 (JSON errors,
//    as the API's).
ApiReply console_reply(std::string_view method, std::string_view target,
                       std::string_view if_none_match);

}  // namespace deltatap
