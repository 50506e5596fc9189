// The Simulator's public face (simulator.h) over its parts:
//   sim_args          the command line
//   session_model     the fake sessions and their history (World)
//   frames            the JSON text of states, frames and --record lines
//   broadcast_server  the server: pace, broadcast, counting, backpressure cuts
//   http_upgrade      a connection up to its upgrade: authentication
//   http_api          plain HTTP on the same port: GET /api/sessions
//   client_connection an upgraded client: its queue, pings and close
#include "sim/simulator.h"

#include <cstdint>
#include <memory>
#include <optional>
#include <utility>

#include "base/address.h"
#include "base/timestamp.h"
#include "sim/broadcast_server.h"

namespace deltatap {

using sim::Server;

struct Simulator::Impl {
  std::unique_ptr<Server> server;
};

Simulator::Simulator(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Simulator::~Simulator() = default;

Result<std::unique_ptr<Simulator>> Simulator::create(SimulatorOptions options,
                                                     std::FILE* summary_out) {
  // The check parse_simulator_args() made, again: `options` may be built in code.
  auto where = parse_listen_address(options.listen);
  if (!where.ok()) return Error{"--listen: " + where.error()};
  if (auto checked = check_simulator_options(options); !checked.ok()) {
    return Error{checked.error()};
  }
  std::optional<std::int64_t> start_ms;
  if (options.start_time) {
    auto start = parse_timestamp(*options.start_time);
    if (!start.ok()) return Error{"--start-time: " + start.error()};
    start_ms = start->time_since_epoch().count();
  }
  auto impl = std::make_unique<Impl>();
  impl->server = std::make_unique<Server>(std::move(options), summary_out, start_ms);
  auto opened = impl->server->open(*where);
  if (!opened.ok()) return Error{opened.error()};
  return std::unique_ptr<Simulator>(new Simulator(std::move(impl)));
}

int Simulator::port() const { return impl_->server->port(); }

int Simulator::run() { return impl_->server->run(); }

void Simulator::stop() { impl_->server->post_stop(); }

}  // namespace deltatap
