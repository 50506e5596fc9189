#include "service/journal_replay.h"

#include <algorithm>
#include <iterator>
#include <optional>
#include <utility>
#include <vector>

#include "base/json_text.h"
#include "base/logging.h"
#include "base/timestamp.h"
#include "ingest/arrival_queue.h"
#include "ingest/parser.h"
#include "storage/journal.h"

namespace deltatap {

namespace {

// The quarantine reason of a journal record that fails check_journal_record.
constexpr const char* kInvalidJournalRecord = "invalid_journal_record";

// Ids are given one per delta, counting up from 1. Replay refuses ids from
// 2^53 on: a daemon taking a million deltas a second reaches it after 285
// years, and the bound keeps ids exact wherever they become JSON numbers
// (doubles). Above all it leaves the rest of the 64-bit range free: one record
// with id INT64_MAX would otherwise leave no id for any later delta (SQLite's
// AUTOINCREMENT answers "database or disk is full" to every later insert).
constexpr std::int64_t kMaxReplayedId = std::int64_t{1} << 53;

// Why a journal record may not be replayed, as a rejection (its reason, the
// parser's label or invalid_id / invalid_created_at, goes into the quarantine
// detail); nullopt when it may. Ids not above the store's highest never get
// here: read_journal skips them, as the snapshot holds them.
std::optional<Rejection> check_journal_record(const StoredDelta& row) {
  if (row.id >= kMaxReplayedId) {
    return Rejection{"invalid_id",
                     "id " + std::to_string(row.id) + " is not below 2^53, the most deltatap gives",
                     ""};
  }
  if (auto rejection = check_delta(row.delta)) return rejection;
  // Retention compares created_at as text: it must be in the normalised form.
  auto created_at = normalise_timestamp(row.created_at);
  if (!created_at.ok() || *created_at != row.created_at) {
    return Rejection{"invalid_created_at",
                     "created_at " + json_quoted(row.created_at) + " is not a normalised time", ""};
  }
  return std::nullopt;
}

// As check_journal_record, for a journaled list of live sessions: its ids and
// time, and each session as the `created` it may become. nullopt when it may
// be replayed, else why not.
std::optional<std::string> check_journaled_list(const LiveSessionList& list) {
  if (list.first_id <= 0 || list.id_count < static_cast<std::int64_t>(list.sessions.size()) ||
      list.last_id() >= kMaxReplayedId) {
    return "its ids are out of range";
  }
  auto at = normalise_timestamp(list.at);
  if (!at.ok() || *at != list.at) return "its time " + json_quoted(list.at) + " is not a normalised time";
  for (const auto& session : list.sessions) {
    if (auto rejection = check_delta(Delta{session.session_id, DeltaType::created, std::nullopt,
                                           session.state, list.at})) {
      return "session " + json_quoted(session.session_id) + ": " + rejection->reason + ": " +
             rejection->detail;
    }
  }
  return std::nullopt;
}

}  // namespace

Result<JournalReplayOutcome> replay_journal(const std::string& path, Store& store,
                                            Recorder& recorder, IngestMetrics& metrics) {
  auto replay = read_journal(path, store.last_delta_id());
  if (!replay.ok()) {
    log_error("Cannot read the journal", {{"JOURNAL_PATH", path}, {"ERROR", replay.error()}});
    return Error{replay.error()};
  }
  for (const auto& warning : replay->warnings) {
    log_warning("Journal tail ignored", {{"JOURNAL_PATH", path}, {"DETAIL", warning}});
  }
  // Read here only: Journal::open below neither reports nor touches them.
  for (const auto& file : replay->foreign) {
    log_warning("Not a journal segment deltatap wrote; left alone, not replayed",
                {{"FILE", file.path}, {"DETAIL", file.why}});
  }
  std::uint64_t restored = 0, quarantined = 0;
  auto received = format_timestamp(now_millis());
  auto quarantine = [&](const std::string& detail, const std::string& raw) {
    if (quarantined++ == 0) {
      // One line for all of them: the count and the quarantine table say the rest.
      log_warning("Invalid journal records quarantined, not replayed",
                  {{"JOURNAL_PATH", path}, {"FIRST", detail}});
    }
    metrics.rejected.get(kInvalidJournalRecord).inc();
    if (auto s = store.quarantine({received, kInvalidJournalRecord, detail, raw}); !s.ok()) {
      log_error("Quarantine insert failed", {{"ERROR", s.error()}});
    }
  };
  // The records become arrivals again, in journal order: a frame's deltas
  // share their receive time, so consecutive ones with the same created_at
  // are taken for one frame (the ledger's resync events count per frame).
  std::vector<Arrival> arrivals;
  std::size_t next_list = 0;
  auto take_lists_before = [&](std::size_t delta_index) {
    for (; next_list < replay->reconciles.size() &&
           replay->reconciles[next_list].after_deltas <= delta_index;
         ++next_list) {
      auto& list = replay->reconciles[next_list].list;
      if (auto why = check_journaled_list(list)) {
        quarantine("journal list of live sessions " + std::to_string(list.first_id) + ": " + *why, "");
        continue;
      }
      arrivals.emplace_back().reconcile = std::move(list);
    }
  };
  for (std::size_t i = 0; i < replay->deltas.size(); ++i) {
    take_lists_before(i);
    auto& row = replay->deltas[i];
    if (auto rejection = check_journal_record(row)) {
      quarantine("journal record " + std::to_string(row.id) + ": " + rejection->reason + ": " +
                     rejection->detail,
                 rejection->raw);
      continue;
    }
    bool same_frame = !arrivals.empty() && !arrivals.back().reconcile &&
                      !arrivals.back().deltas.empty() &&
                      arrivals.back().deltas.back().created_at == row.created_at;
    if (!same_frame) arrivals.emplace_back();
    arrivals.back().deltas.push_back(std::move(row));
    ++restored;
  }
  take_lists_before(replay->deltas.size());
  constexpr std::size_t kChunk = 1'000;  // arrivals per transaction
  recorder.set_replaying(true);
  for (std::size_t i = 0; i < arrivals.size(); i += kChunk) {
    std::vector<Arrival> chunk(std::make_move_iterator(arrivals.begin() + i),
                               std::make_move_iterator(arrivals.begin() + std::min(i + kChunk, arrivals.size())));
    if (auto s = recorder.record(chunk); !s.ok()) {
      log_error("Journal replay failed", {{"ERROR", s.error()}});
      recorder.set_replaying(false);
      return Error{s.error()};
    }
  }
  if (replay->records > 0) {
    log_info("Journal replayed", {{"JOURNAL_PATH", path},
                                  {"RECORDS", std::to_string(replay->records)},
                                  {"RESTORED", std::to_string(restored)},
                                  {"QUARANTINED", std::to_string(quarantined)}});
  }
  recorder.set_replaying(false);
  return JournalReplayOutcome{replay->records, restored, quarantined, replay->reconciles.size()};
}

}  // namespace deltatap
