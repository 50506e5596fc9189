// analytics_reads: the SQL the analytics (api/analytics.h) ask of a Store.
//
// Every read is bounded by the window, never by the history: the session facts
// come from the `sessions` ledger (one row per session id: when its current
// life was created, reached a terminal planStatus, was deleted, was decided),
// the heatmap's counts from the `activity` table (one row per UTC quarter hour
// and repo). Only a window edge that does not fall on a quarter hour is counted
// from session_deltas itself, by a timestamp range on its (timestamp) index:
// at most two partial quarter hours.
//
// Times are the store's normalised UTC text (base/timestamp.h), compared as
// text; a Window's `since` is included and `until` excluded. `repo`, when set,
// keeps the sessions whose ledger row has that repo (the session's latest
// state's top-level "repo").
//
// Each function returns the rows or an Error carrying SQLite's message (a
// database without the ledger's fact columns or the activity table fails so).
// The store lane only, like the Store itself.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "base/result.h"
#include "storage/store.h"

namespace deltatap {

struct FactsWindow {
  std::string since, until;         // normalised; since < until
  std::optional<std::string> repo;  // nullopt: every repo
};

// One ledger row's analytics facts (see design.md, "Analytics"). An absent
// column is nullopt. Origins are "stream", "resync" or "reconcile".
struct SessionFacts {
  std::string session_id;
  std::optional<std::string> created_at, created_origin;  // the start of the current life
  std::optional<std::string> outcome, outcome_at, outcome_origin;  // "succeeded" | "failed"
  std::optional<std::string> ended_at, ended_origin;  // the deletion that ended it
  std::optional<std::string> approval, decided_at, decided_origin;
  std::int64_t life_gaps = 0;  // deltas with gap = 1 in this life
  bool live = false;
  std::string first_seen, last_seen;
};

// Sessions whose current life was created in the window.
Result<std::vector<SessionFacts>> sessions_created_in(Store& store, const FactsWindow& window);

// A decision the approvals answer counts: only the columns it reads, since a
// 30-day window holds most sessions' decisions (18,000 of 20,000 in the
// bench's store) and every column read is a copy.
struct Decision {
  bool approved = false;              // else rejected
  std::string decided_at;
  bool inferred = false;              // decided_origin is resync or reconcile
  std::optional<std::string> created_at;
};

// The decisions (approval 'approved' or 'rejected') made in the window, and
// how many live sessions seen in the window have an approval set that is
// neither (still pending).
struct ApprovalFacts {
  std::vector<Decision> decisions;
  std::int64_t pending = 0;
};
Result<ApprovalFacts> approvals_in(Store& store, const FactsWindow& window);

// Deltas of one quarter hour, or of part of one.
struct QuarterCount {
  std::string bucket;  // UTC quarter-hour start, "YYYY-MM-DDTHH:MM" (MM 00, 15, 30 or 45)
  std::int64_t deltas = 0;
  std::int64_t inferred = 0;  // of origin resync or reconcile
};

// The activity rows of the buckets in [first_bucket, end_bucket) (bucket text
// as above), summed over repos unless one is given, in bucket order; buckets
// without deltas are absent.
Result<std::vector<QuarterCount>> activity_between(Store& store, const std::string& first_bucket,
                                                   const std::string& end_bucket,
                                                   const std::optional<std::string>& repo);

// The deltas whose timestamp is in [since, until) (normalised times, meant to
// lie within one quarter hour), counted from session_deltas. Returns the
// counts; `bucket` is left empty for the caller.
Result<QuarterCount> deltas_between(Store& store, const std::string& since,
                                    const std::string& until,
                                    const std::optional<std::string>& repo);

// Sessions the ledger holds as live now (deltatap_sessions_live): a count
// over the ledger's rows, never over the history.
Result<std::int64_t> live_session_count(Store& store);

}  // namespace deltatap
