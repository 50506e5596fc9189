// The store against the domain document's test scenarios, on real SQLite
// databases (in memory, and as files written to temporary directories).
#define BOOST_TEST_MODULE store
#include <boost/test/unit_test.hpp>

#include <sqlite3.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/executor_work_guard.hpp>

#include <map>
#include <set>
#include <thread>

#include "storage/snapshot.h"
#include "storage/store.h"
#include "test_support.h"

using namespace deltatap;
using namespace deltatap::testing;

namespace {

Delta make_delta(std::string session, DeltaType type, std::string timestamp,
                 std::string state = R"({"id":"x","planStatus":"pending"})") {
  Delta d;
  d.session_id = std::move(session);
  d.type = type;
  if (type != DeltaType::created) d.before = state;
  if (type != DeltaType::deleted) d.after = state;
  d.timestamp = std::move(timestamp);
  return d;
}

std::unique_ptr<Store> empty_store() {
  auto store = Store::open_empty();
  BOOST_REQUIRE_MESSAGE(store.ok(), store.error());
  return std::move(store.value());
}

// Writes the store to a file, as the daemon's snapshots do, so tests can look
// at it with plain SQL.
fs::path to_file(Store& store, const TempDir& dir) {
  auto path = dir / "data/sessions.sqlite";
  auto status = write_snapshot_file(
      path.string(), [&store](const std::string& temp) { return store.write_copy(temp); });
  BOOST_REQUIRE_MESSAGE(status.ok(), status.error());
  return path;
}

// A batch of `count` deltas of about 1 KB each.
std::vector<Delta> kilobyte_deltas(int count, const std::string& session) {
  std::vector<Delta> batch;
  for (int i = 0; i < count; ++i) {
    batch.push_back(make_delta(session, DeltaType::updated, "2025-11-10T12:00:00.000Z",
                               R"({"id":"x","summary":")" + std::string(1000, 'a') + "\"}"));
  }
  return batch;
}

// Sets the largest size SQLite lets a deserialized database grow to, for this
// process. Only with no connection open.
void set_memdb_max_size(sqlite3_int64 bytes) {
  BOOST_REQUIRE(sqlite3_shutdown() == SQLITE_OK);
  BOOST_REQUIRE(sqlite3_config(SQLITE_CONFIG_MEMDB_MAXSIZE, bytes) == SQLITE_OK);
  BOOST_REQUIRE(sqlite3_initialize() == SQLITE_OK);
}

void exec_sql(sqlite3* db, const std::string& sql) {
  char* message = nullptr;
  int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &message);
  BOOST_REQUIRE_MESSAGE(rc == SQLITE_OK, (message ? message : "?") + std::string(" in ") + sql);
}

}  // namespace

BOOST_AUTO_TEST_CASE(new_database_has_the_schema_and_version) {
  TempDir dir;
  auto store = empty_store();
  auto file = to_file(*store, dir);
  auto names = query_db(file, "SELECT name FROM sqlite_master ORDER BY name");
  std::set<std::string> found;
  for (auto& row : names) found.insert(row[0]);
  for (const char* expected :
       {"session_deltas", "rejected_messages", "stream_events", "idx_session_deltas_session_id",
        "idx_session_deltas_timestamp", "idx_session_deltas_created_at",
        "idx_session_deltas_session_ts", "idx_session_deltas_before_ref", "state_dictionaries",
        "session_deltas_json"}) {
    BOOST_TEST(found.count(expected) == 1u, expected);
  }
  BOOST_TEST(query_db(file, "PRAGMA user_version")[0][0] == std::to_string(kSchemaVersion));
  // created_at's default is the normalised form, not datetime('now').
  auto sql = query_db(file, "SELECT sql FROM sqlite_master WHERE name='session_deltas'")[0][0];
  BOOST_TEST(sql.find("strftime('%Y-%m-%dT%H:%M:%fZ'") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(saves_and_retrieves_each_type) {
  auto store = empty_store();
  BOOST_REQUIRE(store->save(make_delta("sess_1", DeltaType::created, "2025-11-10T12:00:00.000Z")).ok());
  BOOST_REQUIRE(store->save(make_delta("sess_1", DeltaType::updated, "2025-11-10T12:05:00.000Z")).ok());
  BOOST_REQUIRE(store->save(make_delta("sess_1", DeltaType::deleted, "2025-11-10T12:10:00.000Z")).ok());
  auto page = store->get_deltas({.session_id = "sess_1"});
  BOOST_REQUIRE(page.ok());
  BOOST_REQUIRE_EQUAL(page->deltas.size(), 3u);
  BOOST_TEST((page->deltas[0].delta.type == DeltaType::deleted));
  BOOST_TEST(!page->deltas[0].delta.after.has_value());
  BOOST_TEST(page->deltas[0].delta.before.has_value());
  BOOST_TEST((page->deltas[2].delta.type == DeltaType::created));
  BOOST_TEST(!page->deltas[2].delta.before.has_value());
  BOOST_TEST(page->deltas[1].delta.before.has_value());
  BOOST_TEST(page->deltas[1].delta.after.has_value());
  BOOST_TEST(page->deltas[0].created_at.size() == 24u);
  BOOST_TEST(store->counts().deltas == 3);
}

BOOST_AUTO_TEST_CASE(states_are_kept_byte_for_byte) {
  auto store = empty_store();
  std::string state = R"({"id":"s","n":9007199254740993,"d":1.50,"u":"Réparer 🐛 — 修复","e":"a\"b\\c\n"})";
  BOOST_REQUIRE(store->save(make_delta("s", DeltaType::updated, "2025-11-10T12:00:00.000Z", state)).ok());
  auto page = store->get_deltas({});
  BOOST_REQUIRE(page.ok());
  BOOST_TEST(*page->deltas[0].delta.after == state);
  BOOST_TEST(*page->deltas[0].delta.before == state);
}

BOOST_AUTO_TEST_CASE(filters_by_session_id) {
  auto store = empty_store();
  BOOST_REQUIRE(store->save(make_delta("sess_1", DeltaType::created, "2025-11-10T12:00:00.000Z")).ok());
  BOOST_REQUIRE(store->save(make_delta("sess_2", DeltaType::created, "2025-11-10T12:00:00.000Z")).ok());
  auto page = store->get_deltas({.session_id = "sess_1"});
  BOOST_REQUIRE(page.ok());
  BOOST_REQUIRE_EQUAL(page->deltas.size(), 1u);
  BOOST_TEST(page->deltas[0].delta.session_id == "sess_1");
  auto none = store->get_deltas({.session_id = "sess_'; DROP TABLE session_deltas; --"});
  BOOST_REQUIRE(none.ok());
  BOOST_TEST(none->deltas.empty());
  BOOST_TEST(store->counts().deltas == 2);
}

BOOST_AUTO_TEST_CASE(newest_first_with_ties_by_id_and_limit) {
  auto store = empty_store();
  // Out of timestamp order on purpose, with a tie.
  std::vector<Delta> batch = {
      make_delta("a", DeltaType::created, "2025-11-10T12:00:02.000Z"),
      make_delta("a", DeltaType::updated, "2025-11-10T12:00:01.000Z"),
      make_delta("a", DeltaType::updated, "2025-11-10T12:00:03.000Z"),
      make_delta("a", DeltaType::updated, "2025-11-10T12:00:03.000Z"),
  };
  BOOST_REQUIRE(store->save_batch(batch).ok());
  auto page = store->get_deltas({});
  BOOST_REQUIRE(page.ok());
  std::vector<std::int64_t> ids;
  for (auto& row : page->deltas) ids.push_back(row.id);
  BOOST_TEST(ids == (std::vector<std::int64_t>{4, 3, 1, 2}), boost::test_tools::per_element());
  BOOST_TEST(!page->next.has_value());
  auto limited = store->get_deltas({.limit = 2});
  BOOST_REQUIRE(limited.ok());
  BOOST_TEST(limited->deltas.size() == 2u);
  BOOST_TEST(limited->next.has_value());
}

BOOST_AUTO_TEST_CASE(default_limit_is_100_and_cap_is_1000) {
  auto store = empty_store();
  std::vector<Delta> batch;
  for (int i = 0; i < 1500; ++i) {
    batch.push_back(make_delta("s" + std::to_string(i % 7), DeltaType::updated,
                               "2025-11-10T12:00:00.000Z"));
  }
  BOOST_REQUIRE(store->save_batch(batch).ok());
  BOOST_TEST(store->get_deltas({})->deltas.size() == 100u);
  BOOST_TEST(store->get_deltas({.limit = 100000})->deltas.size() == 1000u);
  BOOST_TEST(store->get_deltas({.limit = 0})->deltas.size() == 1u);
}

BOOST_AUTO_TEST_CASE(type_and_time_filters_combine) {
  auto store = empty_store();
  std::vector<Delta> batch = {
      make_delta("a", DeltaType::created, "2025-11-10T10:00:00.000Z"),
      make_delta("a", DeltaType::updated, "2025-11-10T11:00:00.000Z"),
      make_delta("b", DeltaType::updated, "2025-11-10T12:00:00.000Z"),
      make_delta("a", DeltaType::updated, "2025-11-10T13:00:00.000Z"),
  };
  BOOST_REQUIRE(store->save_batch(batch).ok());
  auto page = store->get_deltas({.session_id = "a",
                                 .type = DeltaType::updated,
                                 .since = "2025-11-10T11:00:00.000Z",
                                 .until = "2025-11-10T13:00:00.000Z"});
  BOOST_REQUIRE(page.ok());
  BOOST_REQUIRE_EQUAL(page->deltas.size(), 1u);
  BOOST_TEST(page->deltas[0].delta.timestamp == "2025-11-10T11:00:00.000Z");
}

BOOST_AUTO_TEST_CASE(cursor_walk_sees_every_delta_once_while_inserts_continue) {
  auto store = empty_store();
  std::vector<Delta> batch;
  for (int i = 0; i < 950; ++i) {
    // Many ties: 10 deltas share each timestamp.
    char ts[32];
    std::snprintf(ts, sizeof ts, "2025-11-10T12:%02d:%02d.000Z", (i / 10) / 60, (i / 10) % 60);
    batch.push_back(make_delta("s" + std::to_string(i % 13), DeltaType::updated, ts));
  }
  BOOST_REQUIRE(store->save_batch(batch).ok());
  std::set<std::int64_t> seen;
  std::optional<std::string> cursor;
  int pages = 0;
  do {
    auto page = store->get_deltas({.before = cursor, .limit = 37});
    BOOST_REQUIRE(page.ok());
    for (auto& row : page->deltas) BOOST_TEST(seen.insert(row.id).second);
    cursor = page->next;
    // New deltas keep arriving, newer than everything walked so far.
    BOOST_REQUIRE(store->save(make_delta("new", DeltaType::updated, "2026-01-01T00:00:00.000Z")).ok());
    ++pages;
  } while (cursor);
  BOOST_TEST(seen.size() == 950u);
  BOOST_TEST(pages == 26);
  BOOST_TEST(!store->get_deltas({.before = "garbage"}).ok());
}

BOOST_AUTO_TEST_CASE(many_writers_posting_at_once_lose_nothing) {
  // The daemon's model: the io thread owns the store, other threads post to it.
  auto store = empty_store();
  boost::asio::io_context io;
  auto work = boost::asio::make_work_guard(io);
  std::thread owner([&] { io.run(); });
  std::vector<std::thread> writers;
  for (int w = 0; w < 8; ++w) {
    writers.emplace_back([&, w] {
      for (int i = 0; i < 500; ++i) {
        boost::asio::post(io, [&, w, i] {
          auto s = store->save(make_delta("w" + std::to_string(w), DeltaType::updated,
                                          "2025-11-10T12:00:00.000Z",
                                          "{\"i\":" + std::to_string(i) + "}"));
          if (!s.ok()) std::abort();
        });
      }
    });
  }
  for (auto& t : writers) t.join();
  work.reset();
  owner.join();
  BOOST_TEST(store->counts().deltas == 4000);
  for (int w = 0; w < 8; ++w) {
    auto page = store->get_deltas({.session_id = "w" + std::to_string(w), .limit = 1000});
    BOOST_TEST(page->deltas.size() == 500u);
  }
}

BOOST_AUTO_TEST_CASE(cleanup_removes_old_rows_and_keeps_recent) {
  auto store = empty_store();
  auto now = now_millis();
  std::vector<StoredDelta> rows;
  for (int i = 0; i < 10; ++i) {
    StoredDelta row;
    row.delta = make_delta("s", DeltaType::updated, "2025-11-10T12:00:00.000Z");
    row.created_at = format_timestamp(now - std::chrono::days(i < 4 ? 31 : 29));
    rows.push_back(row);
  }
  BOOST_REQUIRE(store->save_with_created_at(rows).ok());
  auto deleted = store->cleanup(now - std::chrono::days(30));
  BOOST_REQUIRE(deleted.ok());
  BOOST_TEST(*deleted == 4);
  BOOST_TEST(store->counts().deltas == 6);
  BOOST_TEST(store->get_deltas({})->deltas.size() == 6u);
  BOOST_TEST(*store->cleanup(now - std::chrono::days(30)) == 0);
}

BOOST_AUTO_TEST_CASE(replay_with_ids_never_duplicates) {
  auto store = empty_store();
  StoredDelta row;
  row.id = 42;
  row.delta = make_delta("s", DeltaType::created, "2025-11-10T12:00:00.000Z");
  row.created_at = "2025-11-10T12:00:00.123Z";
  BOOST_REQUIRE(store->save_with_created_at({&row, 1}).ok());
  BOOST_REQUIRE(store->save_with_created_at({&row, 1}).ok());
  BOOST_TEST(store->counts().deltas == 1);
  BOOST_TEST(store->last_delta_id() == 42);
  BOOST_REQUIRE(store->save(make_delta("s", DeltaType::updated, "2025-11-10T12:00:01.000Z")).ok());
  BOOST_TEST(store->last_delta_id() == 43);
}

// A batch is stored several rows per statement; the ids handed back (what the
// journal records) must still be each delta's own, in order, for any size.
BOOST_AUTO_TEST_CASE(a_batch_reports_the_id_of_each_delta_in_order) {
  auto store = empty_store();
  BOOST_REQUIRE(store->save(make_delta("first", DeltaType::created, "2025-11-10T12:00:00.000Z")).ok());
  for (int size : {1, 3, 64, 203}) {
    std::vector<Delta> batch;
    for (int i = 0; i < size; ++i) {
      batch.push_back(make_delta("b" + std::to_string(size) + "-" + std::to_string(i),
                                 DeltaType::created, "2025-11-10T12:00:00.000Z"));
    }
    std::vector<std::int64_t> ids;
    BOOST_REQUIRE(store->save_batch(batch, std::nullopt, &ids).ok());
    BOOST_REQUIRE(ids.size() == batch.size());
    std::map<std::int64_t, std::string> session_of;
    BOOST_REQUIRE(store->for_each_delta([&](const StoredDelta& row) {
      session_of[row.id] = row.delta.session_id;
      return true;
    }).ok());
    for (int i = 0; i < size; ++i) {
      BOOST_TEST(session_of[ids[i]] == batch[i].session_id, "batch of " << size << ", delta " << i);
    }
  }
  BOOST_TEST(store->counts().deltas == 1 + 1 + 3 + 64 + 203);
}

// Journal replay after a snapshot re-inserts rows that may already be stored:
// within one statement of many rows, the stored ones are skipped, the rest kept.
BOOST_AUTO_TEST_CASE(replay_of_a_large_batch_skips_only_the_rows_already_stored) {
  auto store = empty_store();
  std::vector<StoredDelta> rows;
  for (int i = 1; i <= 150; ++i) {
    StoredDelta row;
    row.id = i;
    row.delta = make_delta("s" + std::to_string(i), DeltaType::created, "2025-11-10T12:00:00.000Z");
    row.created_at = "2025-11-10T12:00:00.123Z";
    rows.push_back(row);
  }
  std::vector<StoredDelta> every_third;
  for (std::size_t i = 0; i < rows.size(); i += 3) every_third.push_back(rows[i]);
  BOOST_REQUIRE(store->save_with_created_at(every_third).ok());
  BOOST_REQUIRE(store->save_with_created_at(rows).ok());
  BOOST_TEST(store->counts().deltas == 150);
  BOOST_TEST(store->delta_count() == 150);
  BOOST_TEST(store->last_delta_id() == 150);
  BOOST_TEST(store->get_deltas({.session_id = "s77"})->deltas.size() == 1u);
}

BOOST_AUTO_TEST_CASE(load_existing_file_round_trips) {
  TempDir dir;
  auto store = empty_store();
  for (int i = 0; i < 50; ++i) {
    BOOST_REQUIRE(store->save(make_delta("s" + std::to_string(i), DeltaType::created,
                                         "2025-11-10T12:00:00.000Z")).ok());
  }
  BOOST_REQUIRE(store->quarantine({"2025-11-10T12:00:00.000Z", "invalid_json", "not JSON", "{oops"}).ok());
  auto file = to_file(*store, dir);
  auto bytes = read_snapshot_file(file.string());
  BOOST_REQUIRE(bytes.ok() && bytes->has_value());
  auto loaded = Store::load(**bytes);
  BOOST_REQUIRE_MESSAGE(loaded.ok(), loaded.error());
  BOOST_TEST((*loaded)->counts().deltas == 50);
  BOOST_TEST((*loaded)->counts().rejected == 1);
  BOOST_TEST(query_db(file, "SELECT COUNT(*) FROM session_deltas")[0][0] == "50");
  auto readonly = Store::open_readonly(file.string());
  BOOST_REQUIRE_MESSAGE(readonly.ok(), readonly.error());
  BOOST_TEST((*readonly)->get_deltas({.limit = 1000})->deltas.size() == 50u);
}

// A store restored from a file once was a deserialized image, which SQLite
// lets grow only to SQLITE_MEMDB_DEFAULT_MAXSIZE (1 GiB, about 800,000 deltas):
// past it every insert failed with "database or disk is full". The cap is
// lowered to 1 MiB here so that the test needs megabytes, not gigabytes.
BOOST_AUTO_TEST_CASE(a_loaded_store_grows_past_the_deserialize_size_cap) {
  TempDir dir;
  fs::path file;
  {
    auto store = empty_store();
    BOOST_REQUIRE(store->save_batch(kilobyte_deltas(500, "before")).ok());
    file = to_file(*store, dir);
  }
  set_memdb_max_size(1 << 20);
  for (bool from_bytes : {false, true}) {
    BOOST_TEST_CONTEXT(std::string(from_bytes ? "Store::load" : "Store::load_file")) {
      auto bytes = read_snapshot_file(file.string());
      BOOST_REQUIRE(bytes.ok() && bytes->has_value());
      auto loaded = from_bytes ? Store::load(**bytes) : Store::load_file(file.string());
      BOOST_REQUIRE_MESSAGE(loaded.ok(), loaded.error());
      auto& store = **loaded;
      for (int round = 0; round < 4; ++round) {
        auto status = store.save_batch(kilobyte_deltas(1000, "after"));
        BOOST_REQUIRE_MESSAGE(status.ok(), status.error());
      }
      BOOST_TEST(store.delta_count() == 4500);
      BOOST_TEST(store.counts().memory_bytes > 4 * (1 << 20));
      BOOST_TEST(store.get_deltas({.session_id = "after", .limit = 1000})->deltas.size() == 1000u);
    }
  }
  set_memdb_max_size(sqlite3_int64{1} << 30);  // SQLITE_MEMDB_DEFAULT_MAXSIZE
}

BOOST_AUTO_TEST_CASE(load_file_refuses_a_damaged_file_and_a_file_that_is_not_a_database) {
  TempDir dir;
  auto store = empty_store();
  BOOST_REQUIRE(store->save_batch(kilobyte_deltas(300, "s")).ok());
  auto file = to_file(*store, dir);
  // Overwrite a stretch of table pages in the middle of the file.
  std::string bytes = read_file(file);
  BOOST_REQUIRE(bytes.size() > 200'000u);
  for (std::size_t i = 100'000; i < 140'000; ++i) bytes[i] = static_cast<char>(i * 7);
  auto damaged = dir / "damaged.sqlite";
  write_file(damaged, bytes);
  auto loaded = Store::load_file(damaged.string());
  BOOST_REQUIRE(!loaded.ok());
  BOOST_TEST_MESSAGE("damaged: " << loaded.error());
  auto text = dir / "text.sqlite";
  write_file(text, std::string(8192, 'x'));
  auto not_db = Store::load_file(text.string());
  BOOST_REQUIRE(!not_db.ok());
  BOOST_TEST(not_db.error().find("not a database") != std::string::npos, not_db.error());
  BOOST_TEST(!Store::load_file((dir / "missing.sqlite").string()).ok());
}

BOOST_AUTO_TEST_CASE(rejects_bytes_that_are_not_a_database) {
  BOOST_TEST(!Store::load("this is not a database at all, not even close to one").ok());
  std::string bad(4096, '\0');
  std::memcpy(bad.data(), "SQLite format 3", 16);
  BOOST_TEST(!Store::load(bad).ok());
}

BOOST_AUTO_TEST_CASE(migrates_a_version_0_file_written_with_the_documents_schema) {
  TempDir dir;
  auto path = dir / "old.sqlite";
  sqlite3* db = nullptr;
  BOOST_REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
  // The domain document's DDL, verbatim in substance.
  exec_sql(db, R"(CREATE TABLE IF NOT EXISTS session_deltas (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id TEXT NOT NULL,
    delta_type TEXT NOT NULL CHECK(delta_type IN ('created', 'updated', 'deleted')),
    before_state TEXT,
    after_state TEXT,
    timestamp TEXT NOT NULL,
    created_at TEXT NOT NULL DEFAULT (datetime('now'))
  );
  CREATE INDEX IF NOT EXISTS idx_session_deltas_session_id ON session_deltas(session_id);
  CREATE INDEX IF NOT EXISTS idx_session_deltas_timestamp ON session_deltas(timestamp);
  CREATE INDEX IF NOT EXISTS idx_session_deltas_created_at ON session_deltas(created_at);)");
  exec_sql(db, R"(INSERT INTO session_deltas (session_id, delta_type, before_state, after_state, timestamp)
    VALUES ('sess_abc123', 'created', NULL, '{"id":"sess_abc123","planStatus":"pending"}', '2025-11-10T12:00:00Z'),
           ('sess_abc123', 'updated', '{"id":"sess_abc123","planStatus":"pending"}',
            '{"id":"sess_abc123","planStatus":"in_progress"}', '2025-11-10T14:05:00.5+02:00'),
           ('sess_def456', 'deleted', '{"id":"sess_def456"}', NULL, '2025-11-10T12:10:00.123456Z');
    INSERT INTO session_deltas (session_id, delta_type, after_state, timestamp, created_at)
    VALUES ('sess_old', 'created', '{}', '2025-11-10T12:00:00Z', '2025-11-10 12:00:00');)");
  sqlite3_close(db);

  auto bytes = read_snapshot_file(path.string());
  BOOST_REQUIRE(bytes.ok() && bytes->has_value());
  auto loaded = Store::load(**bytes);
  BOOST_REQUIRE_MESSAGE(loaded.ok(), loaded.error());
  auto& store = **loaded;
  BOOST_TEST(store.counts().deltas == 4);
  BOOST_TEST(store.counts().schema_version == kSchemaVersion);
  auto out = to_file(store, dir);
  auto rows = query_db(out, "SELECT id, timestamp, created_at, after_state FROM session_deltas ORDER BY id");
  BOOST_REQUIRE_EQUAL(rows.size(), 4u);
  BOOST_TEST(rows[0][1] == "2025-11-10T12:00:00.000Z");
  BOOST_TEST(rows[1][1] == "2025-11-10T12:05:00.500Z");
  BOOST_TEST(rows[2][1] == "2025-11-10T12:10:00.123Z");
  BOOST_TEST(rows[3][2] == "2025-11-10T12:00:00.000Z");
  BOOST_TEST(rows[1][3] == R"({"id":"sess_abc123","planStatus":"in_progress"})");
  for (auto& row : rows) BOOST_TEST(row[2].size() == 24u);  // created_at normalised
  BOOST_TEST(query_db(out, "SELECT COUNT(*) FROM sqlite_master WHERE name='idx_session_deltas_session_ts'")[0][0] == "1");
  // New rows continue the id sequence and get the new created_at default.
  BOOST_REQUIRE(store.save(make_delta("n", DeltaType::created, "2025-11-10T12:00:00.000Z")).ok());
  BOOST_TEST(store.last_delta_id() == 5);
  // The offline reader migrates in memory and leaves the file alone.
  auto readonly = Store::open_readonly(path.string());
  BOOST_REQUIRE_MESSAGE(readonly.ok(), readonly.error());
  BOOST_TEST((*readonly)->counts().deltas == 4);
  BOOST_TEST(query_db(path, "PRAGMA user_version")[0][0] == "0");
}

BOOST_AUTO_TEST_CASE(a_file_with_the_documents_check_lists_loads_with_comparisons_that_still_refuse) {
  TempDir dir;
  fs::path path;
  {
    auto store = empty_store();
    BOOST_REQUIRE(store->save(make_delta("s", DeltaType::created, "2025-11-10T12:00:00.000Z")).ok());
    path = to_file(*store, dir);
  }
  // As every file written before: the CHECKs as the document writes them.
  sqlite3* db = nullptr;
  BOOST_REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
  exec_sql(db, R"(PRAGMA writable_schema = ON;
    UPDATE sqlite_master SET sql = replace(replace(sql,
      'CHECK(delta_type = ''created'' OR delta_type = ''updated'' OR delta_type = ''deleted'')',
      'CHECK(delta_type IN (''created'', ''updated'', ''deleted''))'),
      'CHECK(origin = ''stream'' OR origin = ''resync'' OR origin = ''reconcile'')',
      'CHECK(origin IN (''stream'', ''resync'', ''reconcile''))') WHERE name = 'session_deltas';
    PRAGMA writable_schema = OFF;)");
  sqlite3_close(db);
  auto lists = "SELECT COUNT(*) FROM sqlite_master WHERE name = 'session_deltas' AND "
               "sql LIKE '%delta_type IN (''created'', ''updated'', ''deleted'')%' AND "
               "sql LIKE '%origin IN (''stream'', ''resync'', ''reconcile'')%'";
  BOOST_REQUIRE(query_db(path, lists)[0][0] == "1");

  auto loaded = Store::load_file(path.string());
  BOOST_REQUIRE_MESSAGE(loaded.ok(), loaded.error());
  auto& store = **loaded;
  BOOST_REQUIRE(store.save(make_delta("s", DeltaType::updated, "2025-11-10T12:01:00.000Z")).ok());
  BOOST_TEST(store.delta_count() == 2);
  // The same constraints: a value outside either list is refused, naming it.
  for (const char* insert :
       {"INSERT INTO session_deltas (session_id, delta_type, timestamp, created_at) "
        "VALUES ('s', 'renamed', '2025-11-10T12:02:00.000Z', '2025-11-10T12:02:00.000Z')",
        "INSERT INTO session_deltas (session_id, delta_type, timestamp, created_at, origin) "
        "VALUES ('s', 'updated', '2025-11-10T12:02:00.000Z', '2025-11-10T12:02:00.000Z', 'guess')"}) {
    char* message = nullptr;
    BOOST_TEST(sqlite3_exec(store.connection(), insert, nullptr, nullptr, &message) == SQLITE_CONSTRAINT);
    BOOST_TEST(std::string(message ? message : "").find("CHECK constraint failed") != std::string::npos);
    sqlite3_free(message);
  }
  BOOST_TEST(store.delta_count() == 2);
  auto out = to_file(store, dir);
  BOOST_TEST(query_db(out, lists)[0][0] == "0");
  BOOST_TEST(query_db(out, "SELECT COUNT(*) FROM sqlite_master WHERE name = 'session_deltas' AND "
                           "sql LIKE '%delta_type = ''created'' OR%' AND sql LIKE '%origin = ''stream'' OR%'")[0][0] == "1");
  BOOST_TEST(query_db(out, "PRAGMA integrity_check")[0][0] == "ok");
  BOOST_TEST(query_db(out, "SELECT COUNT(*) FROM session_deltas")[0][0] == "2");
}

BOOST_AUTO_TEST_CASE(quarantine_is_bounded_and_truncates_raw) {
  auto store = empty_store();
  std::string huge(200 * 1024, 'x');
  BOOST_REQUIRE(store->quarantine({"2025-11-10T12:00:00.000Z", "too_large", "big", huge}).ok());
  auto rows = store->rejected(10);
  BOOST_REQUIRE(rows.ok());
  BOOST_TEST(rows->at(0).raw.size() == kMaxRejectedRawBytes);
  for (int i = 0; i < kMaxRejectedRows + 5; ++i) {
    BOOST_REQUIRE(store->quarantine({"2025-11-10T12:00:00.000Z", "invalid_json", "", "x"}).ok());
  }
  BOOST_TEST(store->counts().rejected == kMaxRejectedRows);
  BOOST_TEST(store->counts().rejected_evicted == 6);
}

BOOST_AUTO_TEST_CASE(sessions_summarise_each_session) {
  auto store = empty_store();
  std::vector<Delta> batch = {
      make_delta("a", DeltaType::created, "2025-11-10T10:00:00.000Z", R"({"v":1})"),
      make_delta("a", DeltaType::updated, "2025-11-10T11:00:00.000Z", R"({"v":2})"),
      make_delta("b", DeltaType::created, "2025-11-10T12:00:00.000Z", R"({"v":3})"),
      make_delta("b", DeltaType::deleted, "2025-11-10T13:00:00.000Z", R"({"v":4})"),
  };
  BOOST_REQUIRE(store->save_batch(batch).ok());
  auto sessions = store->sessions();
  BOOST_REQUIRE(sessions.ok());
  BOOST_REQUIRE_EQUAL(sessions->size(), 2u);
  BOOST_TEST(sessions->at(0).session_id == "b");
  BOOST_TEST(sessions->at(0).deleted == 1);
  BOOST_TEST(*sessions->at(0).last_state == R"({"v":4})");
  BOOST_TEST(sessions->at(1).created == 1);
  BOOST_TEST(sessions->at(1).updated == 1);
  BOOST_TEST(sessions->at(1).first_seen == "2025-11-10T10:00:00.000Z");
  BOOST_TEST(store->counts().sessions == 2);
}

namespace {

std::string describe(const std::vector<SessionSummary>& rows) {
  std::string out;
  for (const auto& r : rows) {
    out += r.session_id + " c" + std::to_string(r.created) + " u" + std::to_string(r.updated) +
           " d" + std::to_string(r.deleted) + " " + r.first_seen + ".." + r.last_seen + " " +
           r.last_type + " " + r.last_state.value_or("null") + (r.live ? " live" : " ended") +
           " g" + std::to_string(r.gaps) + " i" + std::to_string(r.inferred) + "\n";
  }
  return out;
}

// The same question answered by scanning the history: the file without its summary.
std::string sessions_by_scan(Store& store, const TempDir& dir, const std::string& name) {
  auto file = (dir / name).string();
  BOOST_REQUIRE(store.write_copy(file).ok());
  sqlite3* db = nullptr;
  BOOST_REQUIRE(sqlite3_open(file.c_str(), &db) == SQLITE_OK);
  BOOST_REQUIRE(sqlite3_exec(db, "DROP TABLE sessions", nullptr, nullptr, nullptr) == SQLITE_OK);
  sqlite3_close(db);
  auto readonly = Store::open_readonly(file);
  BOOST_REQUIRE(readonly.ok());
  auto rows = (*readonly)->sessions();
  BOOST_REQUIRE(rows.ok());
  return describe(*rows);
}

}  // namespace

// GET /api/sessions reads a summary kept as rows come and go; whatever happened
// (out-of-order timestamps, ties broken by id, replays, cleanup, eviction), it
// says what a scan of the history says.
BOOST_AUTO_TEST_CASE(the_session_ledger_agrees_with_a_scan_of_the_history) {
  TempDir dir;
  auto store = empty_store();
  std::vector<Delta> first = {
      make_delta("a", DeltaType::created, "2025-11-10T10:00:00.000Z", R"({"v":1})"),
      make_delta("b", DeltaType::created, "2025-11-10T10:00:00.000Z", R"({"v":2})"),
      make_delta("a", DeltaType::updated, "2025-11-10T09:00:00.000Z", R"({"v":3})"),  // earlier
      make_delta("b", DeltaType::updated, "2025-11-10T10:00:00.000Z", R"({"v":4})"),  // a tie
  };
  BOOST_REQUIRE(store->save_batch(first, "2025-11-01T00:00:00.000Z").ok());
  std::vector<Delta> second = {
      make_delta("c", DeltaType::created, "2025-11-10T11:00:00.000Z", R"({"v":5})"),
      make_delta("b", DeltaType::deleted, "2025-11-10T10:00:00.000Z", R"({"v":6})"),
  };
  BOOST_REQUIRE(store->save_batch(second, "2025-11-20T00:00:00.000Z").ok());
  // A replay of ids already held, mixed with a new one.
  std::vector<StoredDelta> replay = {
      {1, first[0], "2025-11-01T00:00:00.000Z"},
      {10, make_delta("a", DeltaType::updated, "2025-11-10T12:00:00.000Z", R"({"v":7})"),
       "2025-11-20T00:00:00.000Z"},
  };
  BOOST_REQUIRE(store->save_with_created_at(replay).ok());
  auto rows = store->sessions();
  BOOST_REQUIRE(rows.ok());
  BOOST_TEST(describe(*rows) == sessions_by_scan(*store, dir, "one.sqlite"));
  BOOST_TEST(rows->at(0).last_state.value_or("") == R"({"v":7})");  // a, at 12:00
  BOOST_TEST(rows->at(2).last_type == "deleted");                     // b: the tie went to the later id

  // Cleanup takes the first batch: "a" keeps only its replayed update, "b" only its deletion.
  auto deleted = store->cleanup(parse_timestamp("2025-11-10T00:00:00.000Z").value());
  BOOST_REQUIRE(deleted.ok());
  BOOST_TEST(*deleted == 4);
  rows = store->sessions();
  BOOST_TEST(describe(*rows) == sessions_by_scan(*store, dir, "two.sqlite"));
  BOOST_TEST(store->counts().sessions == 3);
  // Eviction of the oldest leaves one delta: only its session remains.
  auto evicted = store->evict_beyond(1);
  BOOST_REQUIRE(evicted.ok());
  rows = store->sessions();
  BOOST_REQUIRE_EQUAL(rows->size(), 1u);
  BOOST_TEST(describe(*rows) == sessions_by_scan(*store, dir, "three.sqlite"));
  BOOST_TEST(store->counts().sessions == 1);
}

// A file written without the summary, or changed since by something that did not
// keep it (an older deltatap), gets it rebuilt when it is loaded.
BOOST_AUTO_TEST_CASE(a_missing_or_stale_ledger_is_rebuilt_on_load) {
  TempDir dir;
  auto store = empty_store();
  std::vector<Delta> batch = {
      make_delta("a", DeltaType::created, "2025-11-10T10:00:00.000Z", R"({"v":1})"),
      make_delta("a", DeltaType::updated, "2025-11-10T11:00:00.000Z", R"({"v":2})"),
      make_delta("b", DeltaType::created, "2025-11-10T12:00:00.000Z", R"({"v":3})"),
  };
  BOOST_REQUIRE(store->save_batch(batch).ok());
  auto expected = sessions_by_scan(*store, dir, "expected.sqlite");
  auto missing = (dir / "expected.sqlite").string();  // the summary was dropped from it
  auto loaded = Store::load_file(missing);
  BOOST_REQUIRE(loaded.ok());
  BOOST_TEST(describe((*loaded)->sessions().value()) == expected);

  auto stale = (dir / "stale.sqlite").string();
  BOOST_REQUIRE(store->write_copy(stale).ok());
  sqlite3* db = nullptr;
  BOOST_REQUIRE(sqlite3_open(stale.c_str(), &db) == SQLITE_OK);
  BOOST_REQUIRE(sqlite3_exec(db, "DELETE FROM session_deltas WHERE session_id = 'b'", nullptr, nullptr,
                             nullptr) == SQLITE_OK);
  sqlite3_close(db);
  auto reloaded = Store::load_file(stale);
  BOOST_REQUIRE(reloaded.ok());
  auto rows = (*reloaded)->sessions().value();
  BOOST_REQUIRE_EQUAL(rows.size(), 1u);
  BOOST_TEST(rows[0].session_id == "a");
  BOOST_TEST(rows[0].updated == 1);
}
