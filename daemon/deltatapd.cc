// deltatapd: taps the Control Room broadcast into the session-delta store.
#include <cstdio>

#include "service/config.h"
#include "base/logging.h"
#include "service/service.h"

int main(int argc, char** argv) {
  using namespace deltatap;
  auto command_line = parse_command_line(argc, argv);
  if (!command_line.ok()) {
    std::fprintf(stderr, "deltatapd: %s\n(see deltatapd --help)\n", command_line.error().c_str());
    return 2;
  }
  if (command_line->help) {
    std::fputs(kDeltatapdUsage, stdout);
    return 0;
  }
  if (command_line->version) {
    std::printf("deltatapd %s\n", DELTATAP_VERSION);
    return 0;
  }
  auto config = load_config(*command_line, process_environment());
  if (!config.ok()) {
    std::fprintf(stderr, "deltatapd: configuration error: %s\n", config.error().c_str());
    return 2;
  }
  if (command_line->check_config) {
    std::fputs(describe_config(*config).c_str(), stdout);
    return 0;
  }
  init_logging(config->log);
  return run_service(*command_line, std::move(config.value()));
}
