#include "base/address.h"

#include <arpa/inet.h>

#include <array>

#include "base/json_text.h"

namespace deltatap {

namespace {

constexpr std::string_view kExpected =
    "IP:PORT or [IPv6]:PORT, e.g. 127.0.0.1:9477 or [::1]:9477";

Error refusal(std::string_view text, std::string_view what, std::string_view expected) {
  return Error{json_quoted(text) + " is not " + std::string(what) + " (expected " +
               std::string(expected) + ")"};
}

}  // namespace

Result<ListenAddress> parse_listen_address(std::string_view text) {
  auto colon = text.rfind(':');
  if (colon == std::string_view::npos) return refusal(text, "a listen address", kExpected);
  ListenAddress address;
  std::string_view host = text.substr(0, colon);
  address.ipv6 = host.size() >= 2 && host.front() == '[' && host.back() == ']';
  if (address.ipv6) {
    host = host.substr(1, host.size() - 2);
  } else if (host.find(':') != std::string_view::npos) {
    return refusal(text, "a listen address",
                   "[IPv6]:PORT for an IPv6 address, with brackets, e.g. [::1]:9477");
  }
  address.host = std::string(host);
  std::array<unsigned char, 16> buffer{};
  if (::inet_pton(address.ipv6 ? AF_INET6 : AF_INET, address.host.c_str(), buffer.data()) != 1) {
    return refusal(text, "a listen address", kExpected);
  }

  std::string_view port = text.substr(colon + 1);
  unsigned number = 0;
  bool port_ok = !port.empty() && port.size() <= 5;
  for (std::size_t i = 0; port_ok && i < port.size(); ++i) {
    port_ok = port[i] >= '0' && port[i] <= '9';
    number = number * 10 + static_cast<unsigned>(port[i] - '0');
  }
  if (!port_ok || number > 65535) {
    return refusal(text, "a listen address with a valid port", "a port number up to 65535");
  }
  address.port = static_cast<std::uint16_t>(number);
  return address;
}

}  // namespace deltatap
