// Service: one running deltatapd, its wiring and its lifecycle.
// Two lanes (docs/architecture.md): the stream lane (ingest/stream_lane.h, its
// own thread) reads, parses and journals; the store lane (the thread that calls
// run_service) stores what the arrival queue hands it (ingest/recorder.h),
// answers the HTTP API, and runs the snapshot, retention and status timers.
// Signals stop, reload and snapshot.
#pragma once

#include "service/config.h"

namespace deltatap {

// Runs until SIGTERM/SIGINT; returns the process exit code
// (0 clean stop, 1 fatal runtime error).
int run_service(const CommandLine& command_line, Config config);

}  // namespace deltatap
