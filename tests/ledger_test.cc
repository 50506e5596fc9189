// The ledger's rules (ingest/ledger_rules.h) as the store lane applies them,
// through the Recorder, on a real in-memory store: resync echoes, resync
// changes, gaps, repeated deletions, lists of live sessions.
#define BOOST_TEST_MODULE ledger
#include <boost/test/unit_test.hpp>

#include <string>
#include <vector>

#include "ingest/ingest_metrics.h"
#include "ingest/recorder.h"
#include "ingest/state_compare.h"
#include "storage/store.h"

using namespace deltatap;

namespace {

struct Fixture {
  std::unique_ptr<Store> store = std::move(Store::open_empty().value());
  IngestMetrics metrics;
  Recorder recorder{*store, metrics, RecorderOptions{}};
  std::int64_t next_id = 1;

  StoredDelta row(const std::string& session, DeltaType type, std::optional<std::string> before,
                  std::optional<std::string> after) {
    return StoredDelta{next_id++, Delta{session, type, std::move(before), std::move(after),
                                        "2025-11-10T12:00:00.000Z"},
                       "2025-11-10T12:00:00.000Z"};
  }
  void frame(std::vector<StoredDelta> deltas) {
    std::vector<Arrival> arrivals(1);
    arrivals[0].deltas = std::move(deltas);
    BOOST_REQUIRE(recorder.record(arrivals).ok());
  }
  void list(std::vector<LiveSession> sessions, std::vector<std::string> keep = {}, bool complete = true,
            std::int64_t extra_ids = 10) {
    LiveSessionList l;
    l.first_id = next_id;
    l.id_count = static_cast<std::int64_t>(sessions.size()) + extra_ids;
    next_id += l.id_count;
    l.at = "2025-11-10T13:00:00.000Z";
    l.sessions = std::move(sessions);
    l.keep = std::move(keep);
    l.complete = complete;
    std::vector<Arrival> arrivals(1);
    arrivals[0].reconcile = std::move(l);
    BOOST_REQUIRE(recorder.record(arrivals).ok());
  }
  SessionSummary ledger_row(const std::string& session) {
    auto rows = store->sessions();
    BOOST_REQUIRE(rows.ok());
    for (const auto& r : *rows) {
      if (r.session_id == session) return r;
    }
    BOOST_FAIL("no ledger row for " << session);
    return {};
  }
  // "type origin gap" per row of a session, in id order.
  std::string history(const std::string& session) {
    std::string out;
    auto rows = store->session_history(session);
    BOOST_REQUIRE(rows.ok());
    for (const auto& r : *rows) {
      out += std::string(to_string(r.delta.type)) + " " + std::string(to_string(r.origin)) +
             (r.gap ? " gap" : "") + "; ";
    }
    return out;
  }
};

}  // namespace

BOOST_FIXTURE_TEST_CASE(a_reannounced_session_is_an_echo_or_a_resync_change, Fixture) {
  frame({row("a", DeltaType::created, std::nullopt, R"({"id":"a","n":1.50,"x":[1,2]})")});
  // The same value, written in another member order and spacing: an echo.
  frame({row("a", DeltaType::created, std::nullopt, R"({ "x":[1,2], "id":"a", "n":1.50 })")});
  BOOST_TEST(history("a") == "created stream; ");
  BOOST_TEST(metrics.resync_echoes.value() == 1u);
  // 1.5 is not 1.50: the digits are the value. A changed state is an update from the last one.
  frame({row("a", DeltaType::created, std::nullopt, R"({"id":"a","n":1.5,"x":[1,2]})")});
  BOOST_TEST(history("a") == "created stream; updated resync; ");
  auto rows = store->session_history("a");
  BOOST_REQUIRE(rows.ok() && rows->size() == 2u);
  BOOST_TEST(rows->at(1).delta.before.value_or("") == R"({"id":"a","n":1.50,"x":[1,2]})");
  BOOST_TEST(ledger_row("a").inferred == 1);
  // A deletion, then the same deletion again: the second is an echo.
  frame({row("a", DeltaType::deleted, R"({"id":"a","n":1.5,"x":[1,2]})", std::nullopt)});
  frame({row("a", DeltaType::deleted, R"({"id":"a","n":1.5,"x":[1,2]})", std::nullopt)});
  BOOST_TEST(history("a") == "created stream; updated resync; deleted stream; ");
  BOOST_TEST(metrics.resync_echoes.value() == 2u);
  BOOST_TEST(!ledger_row("a").live);
  // The ids that stored nothing are decided too: a replay starts after them.
  BOOST_TEST(store->last_delta_id() == next_id - 1);
}

BOOST_FIXTURE_TEST_CASE(a_step_that_does_not_start_from_the_last_state_is_a_gap, Fixture) {
  frame({row("b", DeltaType::updated, R"({"v":0})", R"({"v":1})")});  // unknown session
  frame({row("b", DeltaType::updated, R"({"v":1})", R"({"v":2})"),    // chained: no gap
         row("b", DeltaType::updated, R"({"v":5})", R"({"v":6})")});  // 2..5 missed
  frame({row("b", DeltaType::deleted, R"({"v":6})", std::nullopt)});
  frame({row("b", DeltaType::updated, R"({"v":6})", R"({"v":7})")});  // after its deletion
  BOOST_TEST(history("b") == "updated stream gap; updated stream; updated stream gap; deleted stream; "
                             "updated stream gap; ");
  BOOST_TEST(metrics.gaps.value() == 3u);
  auto events = store->events(10);
  BOOST_REQUIRE(events.ok());
  std::size_t gap_events = 0;
  for (const auto& e : *events) gap_events += e.event == "gap" && e.reason.find("session b") == 0;
  BOOST_TEST(gap_events == 3u);
  BOOST_TEST(ledger_row("b").gaps == 3);
}

BOOST_FIXTURE_TEST_CASE(a_list_of_live_sessions_brings_the_ledger_to_it, Fixture) {
  frame({row("same", DeltaType::created, std::nullopt, R"({"s":1})"),
         row("changed", DeltaType::created, std::nullopt, R"({"s":1})"),
         row("gone", DeltaType::created, std::nullopt, R"({"s":1})"),
         row("kept", DeltaType::created, std::nullopt, R"({"s":1})"),
         row("ended", DeltaType::created, std::nullopt, R"({"s":1})")});
  frame({row("ended", DeltaType::deleted, R"({"s":1})", std::nullopt)});
  list({{"same", R"({"s":1})"}, {"changed", R"({"s":2})"}, {"new", R"({"s":3})"},
        {"ended", R"({"s":4})"}},
       {"kept"});
  BOOST_TEST(history("same") == "created stream; ");
  BOOST_TEST(history("changed") == "created stream; updated reconcile; ");
  BOOST_TEST(history("new") == "created reconcile; ");
  BOOST_TEST(history("gone") == "created stream; deleted reconcile; ");
  BOOST_TEST(history("kept") == "created stream; ");  // the stream speaks for it
  BOOST_TEST(history("ended") == "created stream; deleted stream; created reconcile; ");
  auto gone = store->session_history("gone");
  BOOST_REQUIRE(gone.ok() && !gone->empty());
  BOOST_TEST(gone->back().delta.timestamp == "2025-11-10T13:00:00.000Z");
  BOOST_TEST(gone->back().delta.before.value_or("") == R"({"s":1})");
  BOOST_TEST(metrics.reconciled.get("created").value() == 2u);
  BOOST_TEST(metrics.reconciled.get("updated").value() == 1u);
  BOOST_TEST(metrics.reconciled.get("deleted").value() == 1u);

  // The stream then reports the change reconciliation already inferred: an echo, not a gap.
  frame({row("changed", DeltaType::updated, R"({"s":1})", R"({"s":2})")});
  BOOST_TEST(history("changed") == "created stream; updated reconcile; ");
  BOOST_TEST(metrics.gaps.value() == 0u);

  // An incomplete list (more pages, unreadable elements) ends no session.
  list({{"same", R"({"s":1})"}}, {}, false);
  BOOST_TEST(history("kept") == "created stream; ");
  BOOST_TEST(history("changed") == "created stream; updated reconcile; ");
}

BOOST_FIXTURE_TEST_CASE(what_a_cleanup_removed_is_not_remembered, Fixture) {
  frame({row("c", DeltaType::created, std::nullopt, R"({"s":1})")});
  BOOST_REQUIRE(store->cleanup(parse_timestamp("2100-01-01T00:00:00Z").value()).ok());
  // The session's history is gone: its next update is from an unknown session.
  frame({row("c", DeltaType::updated, R"({"s":1})", R"({"s":2})")});
  BOOST_TEST(history("c") == "updated stream gap; ");
}
