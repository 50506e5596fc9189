// Service: one running deltatapd. It wires the parts together on a single
// io_context thread that owns the store: the stream client feeds the parser, the
// parser's deltas are stored in small batched transactions, timers take
// snapshots and apply retention, signals stop, reload and snapshot.
// Writing a snapshot file is the only long disk work; it runs on one worker
// thread and reports back, so the stream is never left unread meanwhile.
#pragma once

#include "service/config.h"

namespace deltatap {

// Runs until SIGTERM/SIGINT; returns the process exit code
// (0 clean stop, 1 fatal runtime error).
int run_service(const CommandLine& command_line, Config config);

}  // namespace deltatap
