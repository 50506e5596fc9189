// net: the Boost names the simulator's network files share (internal to
// lib/sim). Nothing here has state; any thread.
#pragma once

#include <string_view>

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>

namespace deltatap::sim {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;

// Both the refusals (http_upgrade) and the upgrade answer (client_connection)
// carry it, so a client sees one server name whichever way it is turned away.
inline constexpr std::string_view kServerName = "deltatap-sim";

}  // namespace deltatap::sim
