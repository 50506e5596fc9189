// Listen addresses: "IP:PORT" or "[IPv6]:PORT", as the config, the flags and
// the HTTP API take them. The host must be a numeric IP address (no names, no
// IPv6 scope ids): a listener's address is checked where it is read, not
// resolved later.
//
// Pure functions: safe to call from any thread.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "base/result.h"

namespace deltatap {

struct ListenAddress {
  std::string host;        // the IP address as written, without brackets: "127.0.0.1", "::1"
  std::uint16_t port = 0;  // 0: the system picks a free port
  bool ipv6 = false;       // written in brackets
};

// On success, the host and port of `text`; every port from 0 to 65535 is
// accepted (a caller that needs a fixed port refuses 0 itself). On error, a
// message that quotes `text` (JSON-escaped) and says what is expected, in the
// form `"localhost" is not a listen address (expected IP:PORT or ...)`.
Result<ListenAddress> parse_listen_address(std::string_view text);

}  // namespace deltatap
