// replay_journal: what the last run journaled after its last snapshot, put
// back into the store at start (design.md, "Durability").
//
// read_journal (storage/journal.h) gives the records with ids above the
// store's highest, in journal order. A record's CRC proves only that its bytes
// are the ones written, and anyone who can write the data directory can write a
// record: each delta is checked as the parser checks a frame's delta, each list
// of live sessions its ids, time and states, and what fails goes to the
// quarantine (reason invalid_journal_record, counted), never into the history.
// The rest become arrivals again, in journal order, and go through the same
// Recorder the store lane uses, so the ledger's rules decide on replay what
// they decided when the deltas arrived. A frame's deltas share their receive
// time: consecutive deltas with the same created_at are taken for one frame.
//
// Logs what it finds (a torn tail, files that are not deltatap's segments,
// the first quarantined record, the totals). An error (the journal cannot be
// read, the store refuses a batch) is logged too; the daemon then does not start.
// Threads: the store lane, before the stream lane starts.
#pragma once

#include <cstdint>
#include <string>

#include "base/result.h"
#include "ingest/ingest_metrics.h"
#include "ingest/recorder.h"
#include "storage/store.h"

namespace deltatap {

struct JournalReplayOutcome {
  std::uint64_t records = 0;      // intact records read
  std::uint64_t restored = 0;     // deltas handed to the recorder
  std::uint64_t quarantined = 0;  // records refused
  std::uint64_t lists = 0;        // lists of live sessions read
};

Result<JournalReplayOutcome> replay_journal(const std::string& journal_path, Store& store,
                                            Recorder& recorder, IngestMetrics& metrics);

}  // namespace deltatap
