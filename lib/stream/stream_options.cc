#include "stream/stream_options.h"

#include <algorithm>
#include <array>
#include <cctype>

#include <boost/url/parse.hpp>

namespace deltatap {

namespace {

std::string lower(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string_view trim(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  return text;
}

bool is_token_char(char c) {
  if (std::isalnum(static_cast<unsigned char>(c))) return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

// The handshake itself owns these; letting a configured header replace one
// would break the upgrade (or, for the protocol, bypass the token).
bool is_handshake_header(std::string_view lower_name) {
  static constexpr std::array<std::string_view, 9> kOwned = {
      "host", "upgrade", "connection", "sec-websocket-key", "sec-websocket-version",
      "sec-websocket-protocol", "sec-websocket-extensions", "content-length",
      "transfer-encoding"};
  return std::find(kOwned.begin(), kOwned.end(), lower_name) != kOwned.end();
}

// What distinguishes the two kinds of URL deltatap dials; every other rule is
// shared, so the stream and the reconciliation fetch accept the same hosts.
struct UrlRules {
  std::string_view plain;   // scheme without TLS
  std::string_view secure;  // scheme with TLS
  std::string_view what;    // for messages: "a WebSocket URL"
};
constexpr UrlRules kStreamRules{"ws", "wss", "a WebSocket URL"};
constexpr UrlRules kReconcileRules{"http", "https", "a reconcile URL"};

Result<StreamUrl> parse_url(std::string_view text, const UrlRules& rules) {
  auto parsed = boost::urls::parse_uri(text);
  if (!parsed) return Error{"not a URL (" + parsed.error().message() + ")"};
  boost::urls::url_view url = *parsed;

  StreamUrl out;
  std::string scheme = lower(url.scheme());
  if (scheme == rules.secure) {
    out.tls = true;
  } else if (scheme != rules.plain) {
    return Error{"the scheme must be " + std::string(rules.plain) + " or " +
                 std::string(rules.secure) + ", not " + std::string(url.scheme())};
  }
  if (!url.has_authority() || url.encoded_host().empty()) return Error{"the URL names no host"};
  // An '@' before the query is user info, or reads as such: "ws://u:p/w@h/ws"
  // parses as host "u" and a path "p/w@h/ws" that does not even start with '/'.
  // Refused either way, so a password is never sent as a host or a path.
  auto before_query = text.substr(0, text.find_first_of("?#"));
  if (url.has_userinfo() || before_query.find('@') != std::string_view::npos) {
    return Error{"user info in the URL is not supported (use the token option)"};
  }
  if (!url.encoded_path().empty() && url.encoded_path().front() != '/') {
    return Error{"the path after the host must start with /"};
  }
  if (url.has_fragment()) return Error{std::string(rules.what) + " cannot have a fragment"};

  std::string bracketed;
  switch (url.host_type()) {
    case boost::urls::host_type::ipv6:
      out.host = url.host_ipv6_address().to_string();
      bracketed = "[" + out.host + "]";
      break;
    case boost::urls::host_type::ipv4:
      out.host = url.host_ipv4_address().to_string();
      bracketed = out.host;
      break;
    case boost::urls::host_type::name:
      if (url.encoded_host().find('%') != boost::urls::string_view::npos) {
        return Error{"percent-encoded host names are not supported"};
      }
      out.host = lower(url.encoded_host());
      bracketed = out.host;
      break;
    default:
      return Error{"unsupported host form " + std::string(url.encoded_host())};
  }

  std::string default_port = out.tls ? "443" : "80";
  out.port = default_port;
  if (url.has_port() && !url.port().empty()) {
    std::string_view port = url.port();
    bool digits = port.size() <= 5 && std::all_of(port.begin(), port.end(),
                                                  [](char c) { return c >= '0' && c <= '9'; });
    int value = digits ? std::stoi(std::string(port)) : 0;
    if (value < 1 || value > 65535) return Error{"bad port " + std::string(port)};
    out.port = std::to_string(value);
  }

  out.host_header = bracketed;
  if (out.port != default_port) out.host_header += ":" + out.port;
  std::string path = url.encoded_path().empty() ? "/" : std::string(url.encoded_path());
  out.target = path;
  if (url.has_query()) out.target += "?" + std::string(url.encoded_query());
  // The query may carry credentials for some deployments: never shown.
  out.display = scheme + "://" + out.host_header + path + (url.has_query() ? "?..." : "");
  return out;
}

}  // namespace

Result<StreamUrl> parse_stream_url(std::string_view text) { return parse_url(text, kStreamRules); }

Result<StreamUrl> parse_reconcile_url(std::string_view text) {
  return parse_url(text, kReconcileRules);
}

Result<std::string> reconcile_url_for(std::string_view stream_url) {
  auto url = parse_stream_url(stream_url);
  if (!url) return Error{url.error()};
  // host_header keeps IPv6 brackets and leaves out a default port, and the
  // default ports agree (ws and http 80, wss and https 443).
  return std::string(url->tls ? "https" : "http") + "://" + url->host_header + "/api/sessions";
}

Result<StreamHeader> parse_stream_header(std::string_view line) {
  auto colon = line.find(':');
  if (colon == std::string_view::npos) return Error{"not a header line \"Name: value\""};
  std::string_view name = line.substr(0, colon);
  if (name.empty() || !std::all_of(name.begin(), name.end(), is_token_char)) {
    return Error{"not a header line \"Name: value\" (the name must be a token, without spaces)"};
  }
  std::string_view value = trim(line.substr(colon + 1));
  for (unsigned char c : value) {
    if ((c < 0x20 && c != '\t') || c == 0x7f) {
      return Error{"header " + std::string(name) + " has a control character in its value"};
    }
  }
  if (is_handshake_header(lower(name))) {
    return Error{"header " + std::string(name) +
                 " is set by the WebSocket handshake and cannot be overridden"};
  }
  return StreamHeader{std::string(name), std::string(value)};
}

}  // namespace deltatap
