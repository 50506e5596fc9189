// LedgerRules: what the store lane makes of what arrived, so that the history
// says what happened and not only what the wire said (design.md, "Fidelity").
//
// For a delta off the stream, judged against its session's last stored state
// (the ledger's row, store.h's LedgerEntry, plus what this batch decided):
//   created, session live, same state      -> resync echo: no row
//   created, session live, other state     -> an `updated` from the last state, origin resync
//   deleted, session ended                 -> echo: no row (created ... deleted alternate)
//   updated/deleted, session unknown       -> stored as received, gap = 1
//   updated/deleted, before != last state  -> stored as received, gap = 1
//                                             (an `updated` of an ended session too)
//   updated, after == last state, and the last delta was inferred by reconciliation
//                                          -> echo: the list saw this change first
//   anything else                          -> stored as received
// States are compared as JSON values (state_compare.h), first by digest.
//
// For a list of live sessions (a reconciliation answer; base/delta.h's
// LiveSessionList), judged against the ledger as stored, at the list's time,
// origin reconcile: a listed session unknown or ended -> `created`; live with
// another state -> `updated`; a live session missing from a complete list ->
// `deleted`. Sessions in list.keep are left alone. The i-th listed session
// takes id first_id + i; the deletions take the ids after the listed ones, in
// session id order, and what does not fit the list's ids waits for the next list.
//
// What it decides depends only on the store and the arrivals, in order, so a
// journal replay decides the same. Errors are values (a failed read of the
// store). Threads: the store lane only.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "base/delta.h"
#include "base/result.h"
#include "ingest/ingest_metrics.h"
#include "storage/store.h"

namespace deltatap {

// What a run of arrivals came to: the rows to store, in id order, and the
// stream events that tell of it.
struct LedgerDecision {
  std::vector<StoredDelta> rows;
  std::vector<StreamEvent> events;
  std::int64_t ids_through = 0;  // every id up to this one is decided
  std::int64_t echoes = 0;       // re-announcements that stored nothing
  std::int64_t gaps = 0;
  std::int64_t reconciled[3] = {0, 0, 0};  // by DeltaType

  bool empty() const { return rows.empty() && events.empty() && ids_through == 0; }
};

class LedgerRules {
 public:
  explicit LedgerRules(Store& store);

  // One frame's deltas (ids assigned, in order), received at `received`.
  Status judge_frame(std::vector<StoredDelta>& deltas, LedgerDecision& out);
  // A list of live sessions. The store must hold every row decided before it
  // (the Recorder stores them first), since it is judged against the stored ledger.
  Status judge_list(const LiveSessionList& list, LedgerDecision& out);
  // The rows decided so far are in the store now: what the rules know of
  // their sessions stays known (as digests), so the next batch need not read
  // the ledger again for them.
  void stored();
  // They were not stored: from here on the store alone says what each
  // session's last state is.
  void forget() {
    known_.clear();
    touched_.clear();
    deciding_ = nullptr;
  }
  // On replay the journal already told of each gap and reconciliation when it
  // happened: the rules decide the same, without logging it a second time.
  void set_logging(bool on) { logging_ = on; }

 private:
  // A session's last state, from this batch or the store.
  struct Last {
    bool known = false;
    bool live = false;
    std::int64_t id = 0;
    std::optional<std::uint64_t> digest;
    bool loaded = false;                 // state and origin below are read
    std::optional<std::string> state;
    DeltaOrigin origin = DeltaOrigin::stream;
    // The session's last row is the decision's rows[*pending], not yet
    // stored: read from there, not from the store, when its state is needed.
    std::optional<std::size_t> pending;
  };

  Result<Last*> last_of(const std::string& session_id);
  void check_generation();
  Status load(Last& last);
  Result<bool> is_last_state(Last& last, const std::optional<std::string>& text);
  void remember(Last& last, const StoredDelta& row, std::size_t index);

  Store& store_;
  // What the rules know of sessions: read from the ledger or decided since.
  // It is the ledger's rows as they will be once the decided rows are stored;
  // it starts over when the store changes ledger rows itself (cleanup,
  // eviction: Store::ledger_generation) or a batch fails, and beyond
  // kMaxKnownSessions entries.
  std::unordered_map<std::string, Last> known_;
  // Entries of known_ (nodes keep their address) decided since the last
  // stored(), and the decision their rows are in.
  std::vector<Last*> touched_;
  const LedgerDecision* deciding_ = nullptr;
  std::uint64_t generation_ = 0;
  bool logging_ = true;
};

}  // namespace deltatap
