// StreamOptions: how to reach the backend's broadcast (and its list of live
// sessions, for reconciliation), with their defaults beside them, and the
// rules every stream URL, reconcile URL and extra header must follow.
//
// The rules live here, once, because two parties apply them: the configuration
// refuses at start what the client could not send, and the client turns the
// same text into what it sends. A value that passes parse_stream_url() or
// parse_stream_header() is one the client will use as it is; nothing is dropped
// or refused later at connect.
//
// Pure functions: any thread may call them.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/result.h"

namespace deltatap {

struct StreamOptions {
  std::string url = "ws://127.0.0.1:3001/ws";
  std::string token;                         // sent as subprotocol "bearer.<token>"
  std::string token_file;                    // read at start when token is empty
  std::vector<std::string> headers;          // extra "Name: value" lines
  std::string ca_file;                       // extra CA for wss://
  bool insecure_skip_verify = false;         // warns at every connect
  std::chrono::milliseconds connect_timeout{10'000};  // resolve + connect + TLS + handshake
  std::chrono::milliseconds idle_timeout{90'000};     // no frame, ping or pong for this long
  std::chrono::milliseconds backoff_initial{500};
  std::chrono::milliseconds backoff_max{30'000};
  std::uint64_t max_message_bytes = 16u << 20;
  // Bytes of received deltas waiting for the store lane; a full queue stops reading.
  std::uint64_t buffer_bytes = 256u << 20;
  // After every (re)connect, ask the backend for its live sessions (design.md,
  // "Fidelity"), with the token and TLS settings above.
  bool reconcile = true;
  std::string reconcile_url;  // http(s)://...; empty: reconcile_url_for(url)

  bool operator==(const StreamOptions&) const = default;
};

// A ws:// or wss:// URL taken apart: ws://host[:port]/path?query, IPv6
// literals in brackets, default ports 80 and 443. No fragment, no user info
// (credentials belong in the token option, where they are never logged).
// parse_reconcile_url() fills the same fields from an http:// or https:// URL.
struct StreamUrl {
  bool tls = false;         // wss:// or https://
  std::string host;         // without brackets: what is resolved and verified
  std::string port;         // always set, decimal
  std::string host_header;  // the Host header: brackets kept, port when not the default
  std::string target;       // path (at least "/") and "?query" when present
  std::string display;      // for logs: the URL with the query replaced by "?..."
};

// On error, the message says what is wrong with the URL (not the URL itself,
// which may hold a secret).
Result<StreamUrl> parse_stream_url(std::string_view url);

// The reconciliation endpoint, [stream] reconcile_url: an http:// or https://
// URL under the same rules as a stream URL (a host, a port from 1 to 65535, no
// user info, no fragment; a query is allowed and shown as "?..." in display).
// On error, the message says what is wrong without quoting the URL.
Result<StreamUrl> parse_reconcile_url(std::string_view url);

// The reconciliation URL a stream URL implies when reconcile_url is empty: the
// backend's GET /api/sessions on the stream's host and port, ws -> http and
// wss -> https ("ws://h:3001/ws?x=1" -> "http://h:3001/api/sessions";
// "wss://[::1]/ws" -> "https://[::1]/api/sessions"). The stream URL's path and
// query are not carried over: they name the WebSocket endpoint (a backend
// behind a path prefix needs reconcile_url). An error when `stream_url` is not
// one parse_stream_url() accepts, with its message.
Result<std::string> reconcile_url_for(std::string_view stream_url);

// An extra handshake header: a token name, a value without control characters,
// and not one the WebSocket handshake owns (Host, Upgrade, Connection,
// Sec-WebSocket-*, Content-Length, Transfer-Encoding). Name and value come back
// trimmed. On error, the message names the header but never its value.
using StreamHeader = std::pair<std::string, std::string>;
Result<StreamHeader> parse_stream_header(std::string_view line);

}  // namespace deltatap
