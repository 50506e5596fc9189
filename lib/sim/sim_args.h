// sim_args: the command line of deltatap-sim. parse_simulator_args() and
// kSimulatorUsage are declared in simulator.h, the public interface, and
// defined in sim_args.cc. This internal header holds what Simulator::create()
// shares with them, so --listen is judged by one parser whether it comes from
// the command line or from a SimulatorOptions built in code.
//
// Pure functions without state: any thread.
#pragma once

#include <string>
#include <string_view>

#include <boost/asio/ip/address.hpp>

#include "base/result.h"

namespace deltatap::sim {

struct ListenAddress {
  boost::asio::ip::address address;
  unsigned short port = 0;
};

// Parses "ADDR:PORT": ADDR an IPv4 or IPv6 address (IPv6 may be in brackets),
// PORT from 0 to 65535. On error, says which part is wrong without naming the
// flag: the caller adds that.
Result<ListenAddress> parse_listen(std::string_view text);

// `value` in double quotes, as the error messages show values. No escaping.
std::string quoted(std::string_view value);

}  // namespace deltatap::sim
