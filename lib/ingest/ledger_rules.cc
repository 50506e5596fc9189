#include "ingest/ledger_rules.h"

#include <algorithm>
#include <set>
#include <utility>

#include "base/digest.h"
#include "base/logging.h"
#include "ingest/state_compare.h"

namespace deltatap {

namespace {

StreamEvent event(std::string at, std::string name, std::string reason) {
  StreamEvent e;
  e.at = std::move(at);
  e.event = std::move(name);
  e.reason = std::move(reason);
  return e;
}

const std::optional<std::string>& state_left_by(const Delta& delta) {
  return delta.type == DeltaType::deleted ? delta.before : delta.after;
}

}  // namespace

// A bound on the memory the rules keep: far above the live sessions of any
// control room, and it only costs a re-read of the ledger when reached.
constexpr std::size_t kMaxKnownSessions = 100'000;

LedgerRules::LedgerRules(Store& store) : store_(store), generation_(store.ledger_generation()) {}

void LedgerRules::check_generation() {
  // Rows decided but not stored are known only here: never start over then
  // (stored() checks again once they are in the store).
  if (!touched_.empty()) return;
  if (store_.ledger_generation() != generation_ || known_.size() > kMaxKnownSessions) {
    known_.clear();
    generation_ = store_.ledger_generation();
  }
}

void LedgerRules::stored() {
  // The decided rows are in the store now: their sessions are known by
  // digest again, as the ledger keeps them.
  for (Last* last : touched_) {
    last->pending.reset();
    last->state.reset();
    last->loaded = false;
  }
  touched_.clear();
  deciding_ = nullptr;
  check_generation();
}

Result<LedgerRules::Last*> LedgerRules::last_of(const std::string& session_id) {
  auto found = known_.find(session_id);
  if (found != known_.end()) return &found->second;
  auto entry = store_.ledger_entry(session_id);
  if (!entry.ok()) return Error{entry.error()};
  Last last;
  if (*entry) {
    last.known = true;
    last.live = (*entry)->live;
    last.id = (*entry)->last_id;
    last.digest = (*entry)->state_digest;
  }
  return &known_.emplace(session_id, std::move(last)).first->second;
}

Status LedgerRules::load(Last& last) {
  if (last.loaded || !last.known) return ok_status();
  if (last.pending && deciding_) {
    const StoredDelta& row = deciding_->rows[*last.pending];
    last.state = state_left_by(row.delta);
    last.origin = row.origin;
    last.loaded = true;
    return ok_status();
  }
  auto row = store_.delta_by_id(last.id);
  if (!row.ok()) return Error{row.error()};
  if (*row) {
    last.state = state_left_by((*row)->delta);
    last.origin = (*row)->origin;
  }
  last.loaded = true;
  return ok_status();
}

// Whether `text` is the session's last state as a JSON value. The digest
// answers the common case (the same text) without reading the stored state.
Result<bool> LedgerRules::is_last_state(Last& last, const std::optional<std::string>& text) {
  if (!last.known || !text) return false;
  if (!last.loaded && last.digest && *last.digest == digest_of(*text)) return true;
  if (auto s = load(last); !s.ok()) return Error{s.error()};
  return last.state && same_state(*last.state, *text);
}

// The row will be the decision's rows[index]: its state stays there (no copy)
// and the session is known by the state's digest meanwhile.
void LedgerRules::remember(Last& last, const StoredDelta& row, std::size_t index) {
  last.known = true;
  last.live = row.delta.type != DeltaType::deleted;
  last.id = row.id;
  const auto& state = row.delta.type == DeltaType::deleted ? row.delta.before : row.delta.after;
  last.digest = state ? std::optional(digest_of(*state)) : std::nullopt;
  last.state.reset();
  last.loaded = false;
  last.origin = row.origin;
  if (!last.pending) touched_.push_back(&last);
  last.pending = index;
}

Status LedgerRules::judge_frame(std::vector<StoredDelta>& deltas, LedgerDecision& out) {
  check_generation();
  deciding_ = &out;
  std::int64_t echoes = 0, changed = 0;
  std::string at;
  for (auto& row : deltas) {
    out.ids_through = std::max(out.ids_through, row.id);
    at = row.created_at;
    auto found = last_of(row.delta.session_id);
    if (!found.ok()) return Error{found.error()};
    Last& last = **found;
    const Delta& d = row.delta;

    if (d.type == DeltaType::created && last.known && last.live) {
      auto same = is_last_state(last, d.after);
      if (!same.ok()) return Error{same.error()};
      if (*same) {
        ++echoes;
        continue;
      }
      if (auto s = load(last); !s.ok()) return s;
      row.delta.type = DeltaType::updated;
      row.delta.before = last.state;
      row.origin = DeltaOrigin::resync;
      ++changed;
    } else if (d.type == DeltaType::deleted && last.known && !last.live) {
      ++echoes;
      continue;
    } else if (d.type != DeltaType::created) {
      bool gap = !last.known || !last.live;
      if (!gap) {
        auto same = is_last_state(last, d.before);
        if (!same.ok()) return Error{same.error()};
        gap = !*same;
      }
      if (gap && d.type == DeltaType::updated && last.known) {
        // Reconciliation may have seen this change before the stream told of
        // it (design.md, "Fidelity": the race): then it is already recorded.
        auto after_same = is_last_state(last, d.after);
        if (!after_same.ok()) return Error{after_same.error()};
        // The origin is read with the state; the digest alone does not have it.
        if (*after_same) {
          if (auto loaded = load(last); !loaded.ok()) return loaded;
        }
        if (*after_same && last.origin == DeltaOrigin::reconcile) {
          ++echoes;
          continue;
        }
      }
      if (gap) {
        row.gap = true;
        ++out.gaps;
        if (logging_) log_warning("Gap: changes of session " + d.session_id +
                        " before this delta were not observed; stored with gap = 1",
                    {message_id(message_ids::kGap), {"SESSION_ID", d.session_id},
                     {"DELTA_ID", std::to_string(row.id)}});
        out.events.push_back(event(row.created_at, "gap",
                                   "session " + d.session_id + ": its " +
                                       std::string(to_string(d.type)) + " (id " +
                                       std::to_string(row.id) +
                                       ") does not start from its last stored state"));
      }
    }
    remember(last, row, out.rows.size());
    out.rows.push_back(std::move(row));
  }
  if (echoes + changed > 0) {
    out.echoes += echoes;
    out.events.push_back(event(at, "resync",
                               std::to_string(echoes + changed) + " sessions re-announced: " +
                                   std::to_string(echoes) + " unchanged (not stored), " +
                                   std::to_string(changed) + " changed (stored as updated)"));
  }
  return ok_status();
}

Status LedgerRules::judge_list(const LiveSessionList& list, LedgerDecision& out) {
  check_generation();
  deciding_ = &out;
  out.ids_through = std::max(out.ids_through, list.last_id());
  std::set<std::string, std::less<>> keep(list.keep.begin(), list.keep.end());
  std::set<std::string, std::less<>> listed;
  std::int64_t unchanged = 0;
  auto add = [&](std::int64_t id, const std::string& session_id, DeltaType type,
                 std::optional<std::string> before, std::optional<std::string> after) {
    StoredDelta row{id, Delta{session_id, type, std::move(before), std::move(after), list.at},
                    list.at, DeltaOrigin::reconcile, false};
    ++out.reconciled[static_cast<int>(type)];
    remember(known_[session_id], row, out.rows.size());
    out.rows.push_back(std::move(row));
  };

  for (std::size_t i = 0; i < list.sessions.size(); ++i) {
    const auto& session = list.sessions[i];
    listed.insert(session.session_id);
    if (keep.count(session.session_id)) continue;
    std::int64_t id = list.first_id + static_cast<std::int64_t>(i);
    if (id > list.last_id()) break;  // never: the stream lane counts one id per listed session
    auto found = last_of(session.session_id);
    if (!found.ok()) return Error{found.error()};
    Last& last = **found;
    if (!last.known || !last.live) {
      add(id, session.session_id, DeltaType::created, std::nullopt, session.state);
      continue;
    }
    auto same = is_last_state(last, session.state);
    if (!same.ok()) return Error{same.error()};
    if (*same) {
      ++unchanged;
      continue;
    }
    if (auto s = load(last); !s.ok()) return s;
    add(id, session.session_id, DeltaType::updated, last.state, session.state);
  }

  std::int64_t left_out = 0;
  if (list.complete) {
    auto live = store_.live_sessions();
    if (!live.ok()) return Error{live.error()};
    std::int64_t next = list.first_id + static_cast<std::int64_t>(list.sessions.size());
    for (const auto& session_id : *live) {
      if (listed.count(session_id) || keep.count(session_id)) continue;
      if (next > list.last_id()) {
        ++left_out;
        continue;
      }
      auto found = last_of(session_id);
      if (!found.ok()) return Error{found.error()};
      Last& last = **found;
      if (auto s = load(last); !s.ok()) return s;
      add(next++, session_id, DeltaType::deleted, last.state, std::nullopt);
    }
  }

  auto count = [&](DeltaType type) { return std::to_string(out.reconciled[static_cast<int>(type)]); };
  std::string summary = count(DeltaType::created) + " created, " + count(DeltaType::updated) +
                        " updated, " + count(DeltaType::deleted) + " deleted, " +
                        std::to_string(unchanged) + " unchanged, " + std::to_string(keep.size()) +
                        " left to the stream";
  if (!list.complete) summary += "; the list was incomplete, so no session was ended";
  if (left_out > 0) {
    summary += "; " + std::to_string(left_out) + " vanished sessions wait for the next reconciliation";
  }
  out.events.push_back(event(list.at, "reconciled", summary));
  if (logging_) log_info("Reconciled with the backend's live sessions: " + summary,
           {message_id(message_ids::kReconciled),
            {"SESSIONS", std::to_string(list.sessions.size())}});
  return ok_status();
}

}  // namespace deltatap
