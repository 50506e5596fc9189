// deltatap-sim: a simulated Jules Control Room backend (see lib/simulator.h).
#include <cstdio>
#include <string>
#include <vector>

#include "base/logging.h"
#include "sim/simulator.h"

int main(int argc, char** argv) {
  using namespace deltatap;
  auto options = parse_simulator_args(std::vector<std::string>(argv + 1, argv + argc));
  if (!options.ok()) {
    std::fprintf(stderr, "deltatap-sim: %s\n(see deltatap-sim --help)\n", options.error().c_str());
    return 2;
  }
  if (options->help) {
    std::fputs(kSimulatorUsage, stdout);
    return 0;
  }
  // Text on stderr even under systemd: stdout is the summary's alone.
  init_logging(LogOptions{.level = options->log_level, .format = LogFormat::text});
  auto simulator = Simulator::create(std::move(options.value()), stdout);
  if (!simulator.ok()) {
    log_error("deltatap-sim cannot start", {{"ERROR", simulator.error()}});
    flush_logging();
    return 1;
  }
  int code = simulator.value()->run();
  flush_logging();
  return code;
}
