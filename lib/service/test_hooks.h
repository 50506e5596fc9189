// Test hooks: what deltatapd takes from test-only environment variables, so
// that the process tests can reach states a real run reaches only by chance
// (a slow store lane, a crash in the middle of an archive move) or after long
// waits. Each is read once at start; none is set in production, and each does
// nothing when its variable is unset or malformed.
//
// All of them are used on the store lane.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>

#include "ingest/reconciler.h"

namespace deltatap {

// DELTATAP_TEST_RECONCILE_GRACE_MS=MS shortens the time an answer of the
// backend waits for the stream (reconciler.h), so that tests of
// reconciliation need not wait 10 s for each.
ReconcilerOptions reconciler_options_from_environment();

// DELTATAP_TEST_STALL_STORE_LANE=N:MS makes the store lane sleep MS
// milliseconds, once, after it holds N deltas, so that a test can show what
// the stream lane does meanwhile.
struct StoreLaneStall {
  std::int64_t after_deltas = -1;
  std::chrono::milliseconds duration{0};

  static StoreLaneStall from_environment();
  void maybe_stall(std::int64_t deltas);
};

// DELTATAP_TEST_ARCHIVE_KILL=1: a hook (for ArchiveOptions::after_write) that
// SIGKILLs the process once the first batch of an archive move is durable in
// its file and before it leaves the store: the crash storage/archive.h
// promises to survive. Empty when unset.
std::function<void()> archive_kill_hook();

}  // namespace deltatap
