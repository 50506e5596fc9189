// The ledger's rules (ingest/ledger_rules.h) as the store lane applies them,
// through the Recorder, on a real in-memory store: resync echoes, resync
// changes, gaps, repeated deletions, lists of live sessions.
#define BOOST_TEST_MODULE ledger
#include <boost/test/unit_test.hpp>

#include <sqlite3.h>

#include <cstring>
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

namespace {

// Both analytics tables of a database image, row by row, as text.
std::string facts_tables(const DatabaseImage& image) {
  sqlite3* db = nullptr;
  BOOST_REQUIRE(sqlite3_open(":memory:", &db) == SQLITE_OK);
  std::string copy(image.view());
  auto* bytes = static_cast<unsigned char*>(sqlite3_malloc64(copy.size()));
  std::memcpy(bytes, copy.data(), copy.size());
  BOOST_REQUIRE(sqlite3_deserialize(db, "main", bytes, copy.size(), copy.size(),
                                    SQLITE_DESERIALIZE_FREEONCLOSE) == SQLITE_OK);
  std::string out;
  for (const char* sql : {"SELECT * FROM sessions ORDER BY session_id",
                          "SELECT * FROM activity ORDER BY bucket, repo"}) {
    sqlite3_stmt* stmt = nullptr;
    BOOST_REQUIRE(sqlite3_prepare_v2(db, sql, -1, &stmt, nullptr) == SQLITE_OK);
    while (sqlite3_step(stmt) == SQLITE_ROW) {
      for (int c = 0; c < sqlite3_column_count(stmt); ++c) {
        auto text = sqlite3_column_text(stmt, c);
        out += text ? reinterpret_cast<const char*>(text) : "NULL";
        out += '|';
      }
      out += '\n';
    }
    sqlite3_finalize(stmt);
    out += "--\n";
  }
  sqlite3_close(db);
  return out;
}

std::string column(const DatabaseImage& image, const std::string& session, const std::string& name) {
  sqlite3* db = nullptr;
  BOOST_REQUIRE(sqlite3_open(":memory:", &db) == SQLITE_OK);
  auto* bytes = static_cast<unsigned char*>(sqlite3_malloc64(image.size()));
  std::memcpy(bytes, image.view().data(), image.size());
  BOOST_REQUIRE(sqlite3_deserialize(db, "main", bytes, image.size(), image.size(),
                                    SQLITE_DESERIALIZE_FREEONCLOSE) == SQLITE_OK);
  std::string sql = "SELECT " + name + " FROM sessions WHERE session_id = ?1";
  sqlite3_stmt* stmt = nullptr;
  BOOST_REQUIRE(sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt, nullptr) == SQLITE_OK);
  sqlite3_bind_text(stmt, 1, session.c_str(), -1, SQLITE_TRANSIENT);
  std::string value = "(no row)";
  if (sqlite3_step(stmt) == SQLITE_ROW) {
    auto text = sqlite3_column_text(stmt, 0);
    value = text ? reinterpret_cast<const char*>(text) : "NULL";
  }
  sqlite3_finalize(stmt);
  sqlite3_close(db);
  return value;
}

}  // namespace

// The analytics' facts (session_ledger.h), kept batch by batch with the
// writes deferred, read back as a reader sees them, and equal to what a
// rebuild from the history makes of the same rows.
BOOST_FIXTURE_TEST_CASE(the_facts_are_kept_as_the_history_says_and_rebuild_the_same, Fixture) {
  auto at = [&](const std::string& session, DeltaType type, std::optional<std::string> before,
                std::optional<std::string> after, const std::string& time) {
    auto r = row(session, type, std::move(before), std::move(after));
    r.delta.timestamp = time;
    return r;
  };
  const std::string p0 = R"({"repo":"acme/app","planStatus":"pending","approval":"pending"})";
  const std::string p1 = R"({"repo":"acme/app","planStatus":"in_progress","approval":{"state":"approved","by":"x"}})";
  const std::string p2 = R"({"repo":"acme/app","planStatus":"succeeded","approval":{"state":"approved","by":"x"}})";
  const std::string p3 = R"({"repo":"acme/app","planStatus":"failed","approval":{"state":"approved","by":"x"}})";
  frame({at("s1", DeltaType::created, std::nullopt, p0, "2026-03-29T00:10:00.000Z"),
         at("s1", DeltaType::updated, p0, p1, "2026-03-29T00:20:00.000Z")});
  frame({at("s1", DeltaType::updated, p1, p2, "2026-03-29T01:05:00.000Z"),
         // A later terminal status does not move the first one.
         at("s1", DeltaType::updated, p2, p3, "2026-03-29T01:06:00.000Z")});
  frame({at("s1", DeltaType::deleted, p3, std::nullopt, "2026-03-29T02:00:00.000Z"),
         // First seen mid-life, through a gap: no start is known.
         at("s2", DeltaType::updated, R"({"repo":"oss/lib","planStatus":"pending"})",
            R"({"repo":"oss/lib","planStatus":"in_progress","approval":"rejected"})",
            "2026-03-29T02:14:59.999Z")});

  auto image = store->serialize();
  BOOST_REQUIRE(image.ok());
  BOOST_TEST(column(*image, "s1", "repo") == "acme/app");
  BOOST_TEST(column(*image, "s1", "created_at") == "2026-03-29T00:10:00.000Z");
  BOOST_TEST(column(*image, "s1", "created_origin") == "stream");
  BOOST_TEST(column(*image, "s1", "outcome") == "succeeded");
  BOOST_TEST(column(*image, "s1", "outcome_at") == "2026-03-29T01:05:00.000Z");
  BOOST_TEST(column(*image, "s1", "approval") == "approved");
  BOOST_TEST(column(*image, "s1", "decided_at") == "2026-03-29T00:20:00.000Z");
  BOOST_TEST(column(*image, "s1", "ended_at") == "2026-03-29T02:00:00.000Z");
  BOOST_TEST(column(*image, "s1", "life_gaps") == "0");
  BOOST_TEST(column(*image, "s2", "created_at") == "NULL");
  BOOST_TEST(column(*image, "s2", "life_gaps") == "1");
  BOOST_TEST(column(*image, "s2", "approval") == "rejected");
  BOOST_TEST(column(*image, "s2", "decided_at") == "2026-03-29T02:14:59.999Z");
  auto tables = facts_tables(*image);
  BOOST_TEST(tables.find("2026-03-29T00:00|acme/app|1|0|") != std::string::npos, tables);
  BOOST_TEST(tables.find("2026-03-29T00:15|acme/app|1|0|") != std::string::npos, tables);
  BOOST_TEST(tables.find("2026-03-29T01:00|acme/app|2|0|") != std::string::npos, tables);
  BOOST_TEST(tables.find("2026-03-29T02:00|oss/lib|1|0|") != std::string::npos, tables);

  // The same history with the ledger gone: loading rebuilds it, the same.
  sqlite3* db = nullptr;
  BOOST_REQUIRE(sqlite3_open(":memory:", &db) == SQLITE_OK);
  auto* bytes = static_cast<unsigned char*>(sqlite3_malloc64(image->size()));
  std::memcpy(bytes, image->view().data(), image->size());
  BOOST_REQUIRE(sqlite3_deserialize(db, "main", bytes, image->size(), image->size(),
                                    SQLITE_DESERIALIZE_FREEONCLOSE | SQLITE_DESERIALIZE_RESIZEABLE) ==
                SQLITE_OK);
  BOOST_REQUIRE(sqlite3_exec(db, "DELETE FROM sessions; DELETE FROM activity", nullptr, nullptr,
                             nullptr) == SQLITE_OK);
  sqlite3_int64 size = 0;
  unsigned char* emptied = sqlite3_serialize(db, "main", &size, 0);
  BOOST_REQUIRE(emptied);
  std::string emptied_bytes(reinterpret_cast<const char*>(emptied), static_cast<std::size_t>(size));
  sqlite3_free(emptied);
  sqlite3_close(db);
  auto rebuilt = Store::load(emptied_bytes);
  BOOST_REQUIRE(rebuilt.ok());
  auto rebuilt_image = (*rebuilt)->serialize();
  BOOST_REQUIRE(rebuilt_image.ok());
  BOOST_TEST(facts_tables(*rebuilt_image) == tables);
}
