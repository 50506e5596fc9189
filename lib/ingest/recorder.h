// Recorder: what the store lane does with what arrived (design.md, "Threads").
// It judges a run of arrivals by the ledger's rules (ledger_rules.h: resync
// echoes, gaps, reconciliation) and stores what they decide in one transaction
// (ids and created_at were given on the stream lane, and the journal already
// has what arrived; a list of live sessions is judged after what came before
// it is stored), quarantines rejected frames with a log line per reason at
// most once a minute, records connection events, and applies the memory guard
// (max_deltas). Journal replay goes through record() too, so a restart
// decides what the running daemon decided.
//
// Errors are values: a failed batch is reported and counted in last_error();
// the deltas stay in the journal, so a restart replays them.
//
// Threads: the store lane only (it uses the Store).
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "base/result.h"
#include "ingest/arrival_queue.h"
#include "ingest/ingest_metrics.h"
#include "ingest/ledger_rules.h"
#include "storage/store.h"

namespace deltatap {

struct RecorderOptions {
  std::uint64_t max_deltas = 0;  // 0: no limit; else the oldest beyond it are evicted
};

class Recorder {
 public:
  Recorder(Store& store, IngestMetrics& metrics, RecorderOptions options);

  // Records `arrivals` in order. Returns the error of the delta insert, if any
  // (quarantine and event failures are logged, not returned).
  Status record(std::vector<Arrival>& arrivals);
  void set_options(const RecorderOptions& options) { options_ = options; }
  // While replaying the journal: decide as always, log nothing twice (ledger_rules.h).
  void set_replaying(bool on) { rules_.set_logging(!on); }
  // Set while the last batch of deltas could not be stored.
  const std::optional<std::string>& last_error() const { return last_error_; }

 private:
  Status store(LedgerDecision& decision);
  void quarantine(const Rejection& rejection, TimePoint received);
  void record_event(const StreamEvent& event);
  void apply_memory_guard();

  Store& store_;
  IngestMetrics& metrics_;
  RecorderOptions options_;
  LedgerRules rules_;
  LedgerDecision decision_;  // reused: its capacity survives between batches
  std::map<std::string, std::chrono::steady_clock::time_point> last_reject_log_;
  std::optional<std::string> last_error_;
};

}  // namespace deltatap
