#include "service/test_hooks.h"

#include <csignal>
#include <cstdlib>
#include <string>
#include <string_view>
#include <thread>

#include "base/logging.h"

namespace deltatap {

ReconcilerOptions reconciler_options_from_environment() {
  ReconcilerOptions options;
  if (const char* text = std::getenv("DELTATAP_TEST_RECONCILE_GRACE_MS")) {
    options.grace = std::chrono::milliseconds(std::strtoll(text, nullptr, 10));
  }
  return options;
}

StoreLaneStall StoreLaneStall::from_environment() {
  StoreLaneStall stall;
  const char* text = std::getenv("DELTATAP_TEST_STALL_STORE_LANE");
  if (!text) return stall;
  std::string value(text);
  auto colon = value.find(':');
  if (colon == std::string::npos) return stall;
  stall.after_deltas = std::stoll(value.substr(0, colon));
  stall.duration = std::chrono::milliseconds(std::stoll(value.substr(colon + 1)));
  return stall;
}

void StoreLaneStall::maybe_stall(std::int64_t deltas) {
  if (after_deltas < 0 || deltas < after_deltas) return;
  after_deltas = -1;
  log_warning("Test hook: the store lane stalls", {{"DURATION_MS", std::to_string(duration.count())}});
  std::this_thread::sleep_for(duration);
}

std::function<void()> archive_kill_hook() {
  const char* text = std::getenv("DELTATAP_TEST_ARCHIVE_KILL");
  if (!text || std::string_view(text) != "1") return {};
  return [] {
    log_warning("Test hook: killed in the middle of an archive move");
    std::raise(SIGKILL);
  };
}

}  // namespace deltatap
