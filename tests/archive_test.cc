// Archives ([retention] archive; storage/archive.h): deltas move out of the
// store into monthly SQLite files on disk, lose nothing and duplicate nothing
// when a move is cut short, read back byte-identical, and are read across
// memory and files with the store's order and cursor.
#define BOOST_TEST_MODULE archive
#include <boost/test/unit_test.hpp>

#include <sqlite3.h>
#include <sys/stat.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <set>

#include "storage/archive.h"
#include "storage/archive_file.h"
#include "storage/archive_reader.h"
#include "storage/retention.h"
#include "storage/state_codec.h"
#include "storage/store.h"
#include "test_support.h"

using namespace deltatap;
using namespace deltatap::testing;

namespace {

// Retention's clock in these tests: 70 days before it is in January, 40 days
// before it in February, the cutoff (30 days) in mid-February.
const TimePoint kNow = parse_timestamp("2026-03-15T12:00:00.000Z").value();
const TimePoint kCutoff = retention_cutoff(kNow, 30);

// States a reader must get back byte for byte: exact digits past a double's
// precision, unicode, escapes.
std::string state_of(std::int64_t id) {
  return R"({"id":")" + std::to_string(id) +
         R"(","n":9007199254740993,"f":1.10000000000000000001,"title":"Ünïcødé ✓ 日本語 🚀","q":"a\"b\\c"})";
}

StoredDelta row(std::int64_t id, const std::string& session, DeltaType type, int age_days,
                std::string timestamp = "") {
  StoredDelta r;
  r.id = id;
  r.delta.session_id = session;
  r.delta.type = type;
  if (type != DeltaType::created) r.delta.before = state_of(id - 1);
  if (type != DeltaType::deleted) r.delta.after = state_of(id);
  auto created = kNow - std::chrono::days(age_days);
  r.created_at = format_timestamp(created);
  r.delta.timestamp = timestamp.empty() ? r.created_at : timestamp;
  return r;
}

std::unique_ptr<Store> store_with(const std::vector<StoredDelta>& rows) {
  auto store = Store::open_empty();
  BOOST_REQUIRE_MESSAGE(store.ok(), store.error());
  auto saved = (*store)->save_with_created_at(rows);
  BOOST_REQUIRE_MESSAGE(saved.ok(), saved.error());
  return std::move(store.value());
}

// Two sessions: ids 1-3 stored 70 days ago (January), 4-6 40 days ago
// (February), 7-8 a day ago.
std::vector<StoredDelta> two_months() {
  return {row(1, "a", DeltaType::created, 70), row(2, "a", DeltaType::updated, 70),
          row(3, "b", DeltaType::created, 70), row(4, "a", DeltaType::updated, 40),
          row(5, "b", DeltaType::updated, 40), row(6, "b", DeltaType::deleted, 40),
          row(7, "a", DeltaType::updated, 1),  row(8, "c", DeltaType::created, 1)};
}

ArchiveOptions options_in(const TempDir& dir) {
  ArchiveOptions options;
  options.directory = (dir / "data/archive").string();
  return options;
}

std::vector<std::int64_t> ids_in_file(const std::string& path) {
  std::vector<std::int64_t> ids;
  for (const auto& r : query_db(path, "SELECT id FROM session_deltas ORDER BY id")) {
    ids.push_back(std::stoll(r.at(0)));
  }
  return ids;
}

std::vector<std::int64_t> ids_in_store(Store& store) {
  std::vector<std::int64_t> ids;
  auto status = store.for_each_delta([&](const StoredDelta& d) {
    ids.push_back(d.id);
    return true;
  });
  BOOST_REQUIRE_MESSAGE(status.ok(), status.error());
  return ids;
}

// The ledger adds up: its counts by type are the deltas the store holds.
void check_ledger(Store& store) {
  auto sessions = store.sessions();
  BOOST_REQUIRE_MESSAGE(sessions.ok(), sessions.error());
  std::int64_t total = 0;
  for (const auto& s : *sessions) total += s.created + s.updated + s.deleted;
  BOOST_TEST(total == store.delta_count());
  BOOST_TEST(store.counts().deltas == store.delta_count());
  BOOST_TEST(static_cast<std::int64_t>(ids_in_store(store).size()) == store.delta_count());
}

// The first column of the first row of `sql` on an open connection.
std::string query_db_text(sqlite3* db, const char* sql) {
  sqlite3_stmt* stmt = nullptr;
  BOOST_REQUIRE(sqlite3_prepare_v2(db, sql, -1, &stmt, nullptr) == SQLITE_OK);
  std::string text;
  if (sqlite3_step(stmt) == SQLITE_ROW && sqlite3_column_text(stmt, 0)) {
    text = reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0));
  }
  sqlite3_finalize(stmt);
  return text;
}

std::string file_of(const ArchiveOptions& options, const char* month) {
  return options.directory + "/" + archive_file_name(month);
}

}  // namespace

BOOST_AUTO_TEST_CASE(names_months_and_directories) {
  BOOST_TEST(archive_directory_for("data/sessions.sqlite") == "data/archive");
  BOOST_TEST(archive_directory_for("/var/lib/deltatap/data/sessions.sqlite") ==
             "/var/lib/deltatap/data/archive");
  BOOST_TEST(archive_file_name("2026-01") == "deltas-2026-01.sqlite");
  BOOST_TEST(month_of_file_name("deltas-2026-01.sqlite").value_or("") == "2026-01");
  BOOST_TEST(!month_of_file_name("deltas-2026-13.sqlite"));
  BOOST_TEST(!month_of_file_name("deltas-2026-01.sqlite-journal"));
  BOOST_TEST(next_month_start("2025-12") == "2026-01-01T00:00:00.000Z");
  BOOST_TEST(next_month_start("2026-02") == "2026-03-01T00:00:00.000Z");
}

BOOST_AUTO_TEST_CASE(expired_deltas_move_into_one_file_per_month) {
  TempDir dir;
  auto store = store_with(two_months());
  auto options = options_in(dir);
  auto run = archive_expired(*store, options, kCutoff, kNow);
  BOOST_REQUIRE_MESSAGE(run.ok(), run.error());
  BOOST_TEST(run->moved == 6);
  BOOST_TEST((run->months == std::vector<std::string>{"2026-01", "2026-02"}));

  // The store keeps the rest, and its counts and ledger follow.
  BOOST_TEST((ids_in_store(*store) == std::vector<std::int64_t>{7, 8}));
  check_ledger(*store);
  BOOST_TEST(store->check().value_or("") == "ok");

  // Each file holds exactly its month's ids, their states as stored.
  BOOST_TEST((ids_in_file(file_of(options, "2026-01")) == std::vector<std::int64_t>{1, 2, 3}));
  BOOST_TEST((ids_in_file(file_of(options, "2026-02")) == std::vector<std::int64_t>{4, 5, 6}));
  std::map<std::int64_t, StoredDelta> expected;
  for (const auto& r : two_months()) expected[r.id] = r;
  for (const char* month : {"2026-01", "2026-02"}) {
    auto file = ArchiveFile::open_readonly(file_of(options, month));
    BOOST_REQUIRE_MESSAGE(file.ok(), file.error());
    for (const char* session : {"a", "b"}) {
      auto rows = file->session_history(session);
      BOOST_REQUIRE_MESSAGE(rows.ok(), rows.error());
      for (const auto& got : *rows) {
        const auto& want = expected.at(got.id);
        BOOST_TEST(got.delta.before.value_or("(none)") == want.delta.before.value_or("(none)"));
        BOOST_TEST(got.delta.after.value_or("(none)") == want.delta.after.value_or("(none)"));
        BOOST_TEST(got.delta.timestamp == want.delta.timestamp);
        BOOST_TEST(got.created_at == want.created_at);
        BOOST_TEST(to_string(got.delta.type) == to_string(want.delta.type));
      }
    }
    BOOST_TEST(check_archive_file(file_of(options, month)).value_or("") == "ok");
  }

  // January can get no more rows: sealed. February still can (the cutoff is in it).
  auto files = list_archive_files(options.directory);
  BOOST_REQUIRE(files.ok());
  BOOST_REQUIRE(files->size() == 2u);
  BOOST_TEST((*files)[0].sealed);
  BOOST_TEST(!(*files)[1].sealed);
  struct stat info {};
  BOOST_REQUIRE(::stat((*files)[0].path.c_str(), &info) == 0);
  BOOST_TEST((info.st_mode & 0777) == kSealedArchiveMode);

  // A second run finds nothing more to move.
  auto again = archive_expired(*store, options, kCutoff, kNow);
  BOOST_REQUIRE_MESSAGE(again.ok(), again.error());
  BOOST_TEST(again->moved == 0);
}

BOOST_AUTO_TEST_CASE(retention_archives_before_it_deletes) {
  TempDir dir;
  auto store = store_with(two_months());
  RetentionOptions retention;
  retention.days = 30;
  retention.archive = true;
  auto options = options_in(dir);
  auto pruned = prune_expired(*store, kNow, retention, options);
  BOOST_REQUIRE_MESSAGE(pruned.ok(), pruned.error());
  BOOST_TEST(pruned->deltas == 6);
  BOOST_TEST(pruned->archived == 6);
  BOOST_TEST(store->delta_count() == 2);
  BOOST_TEST(ids_in_file(file_of(options, "2026-01")).size() == 3u);
  BOOST_TEST(ids_in_file(file_of(options, "2026-02")).size() == 3u);
}

BOOST_AUTO_TEST_CASE(sink_holds_are_neither_archived_nor_deleted) {
  TempDir dir;
  auto store = store_with(two_months());
  store->hold_deltas_after(4);  // 5 and 6 not sent yet
  auto options = options_in(dir);
  auto run = archive_expired(*store, options, kCutoff, kNow);
  BOOST_REQUIRE_MESSAGE(run.ok(), run.error());
  BOOST_TEST(run->moved == 4);
  BOOST_TEST((ids_in_store(*store) == std::vector<std::int64_t>{5, 6, 7, 8}));
  BOOST_TEST((ids_in_file(file_of(options, "2026-02")) == std::vector<std::int64_t>{4}));
  check_ledger(*store);
  // Released: they follow into the same file.
  store->hold_deltas_after(std::nullopt);
  run = archive_expired(*store, options, kCutoff, kNow);
  BOOST_REQUIRE_MESSAGE(run.ok(), run.error());
  BOOST_TEST(run->moved == 2);
  BOOST_TEST((ids_in_file(file_of(options, "2026-02")) == std::vector<std::int64_t>{4, 5, 6}));
}

BOOST_AUTO_TEST_CASE(small_batches_still_move_everything_in_order) {
  TempDir dir;
  std::vector<StoredDelta> rows;
  for (int i = 1; i <= 25; ++i) rows.push_back(row(i, "s" + std::to_string(i % 3), DeltaType::created, 40 + i));
  auto store = store_with(rows);
  auto options = options_in(dir);
  options.batch_rows = 4;
  auto run = archive_expired(*store, options, kCutoff, kNow);
  BOOST_REQUIRE_MESSAGE(run.ok(), run.error());
  BOOST_TEST(run->moved == 25);
  BOOST_TEST(store->delta_count() == 0);
  std::size_t archived = 0;
  auto files = list_archive_files(options.directory);
  BOOST_REQUIRE(files.ok());
  for (const auto& file : *files) archived += ids_in_file(file.path).size();
  BOOST_TEST(archived == 25u);
  check_ledger(*store);
}

BOOST_AUTO_TEST_CASE(a_move_cut_short_after_the_file_commit_is_redone_without_loss_or_duplicates) {
  TempDir dir;
  auto store = store_with(two_months());
  auto options = options_in(dir);
  // The first batch (January) is written and made durable; the process
  // "dies" before the delete: the store still holds the rows.
  auto written = write_next_batch(*store, options, kCutoff);
  BOOST_REQUIRE_MESSAGE(written.ok(), written.error());
  BOOST_REQUIRE(written->has_value());
  BOOST_TEST((*written)->rows == 3);
  BOOST_TEST(store->delta_count() == 8);
  BOOST_TEST((ids_in_file(file_of(options, "2026-01")) == std::vector<std::int64_t>{1, 2, 3}));

  // Meanwhile a reader across memory and files shows each id once.
  auto reader = ArchiveReader::open(options.directory);
  BOOST_REQUIRE_MESSAGE(reader.ok(), reader.error());
  DeltaQuery all;
  all.limit = kMaxQueryLimit;
  auto page = reader->get_deltas(*store, all);
  BOOST_REQUIRE_MESSAGE(page.ok(), page.error());
  BOOST_TEST(page->deltas.size() == 8u);

  // The next move writes them again (ignored) and then deletes them.
  auto run = archive_expired(*store, options, kCutoff, kNow);
  BOOST_REQUIRE_MESSAGE(run.ok(), run.error());
  BOOST_TEST(run->moved == 6);
  BOOST_TEST((ids_in_file(file_of(options, "2026-01")) == std::vector<std::int64_t>{1, 2, 3}));
  BOOST_TEST((ids_in_file(file_of(options, "2026-02")) == std::vector<std::int64_t>{4, 5, 6}));
  BOOST_TEST((ids_in_store(*store) == std::vector<std::int64_t>{7, 8}));
  check_ledger(*store);
}

BOOST_AUTO_TEST_CASE(queries_page_across_memory_and_files_newest_first_each_id_once) {
  TempDir dir;
  // Timestamps that do not follow created_at, ties among them across sources.
  std::vector<StoredDelta> rows;
  for (int i = 1; i <= 60; ++i) {
    int age = i % 3 == 0 ? 70 : i % 3 == 1 ? 40 : 2;
    char stamp[32];
    std::snprintf(stamp, sizeof stamp, "2026-01-%02dT10:00:00.000Z", 1 + (i * 7) % 20);
    rows.push_back(row(i, i % 4 == 0 ? "x" : "y", DeltaType::updated, age, stamp));
  }
  auto store = store_with(rows);
  auto options = options_in(dir);
  auto run = archive_expired(*store, options, kCutoff, kNow);
  BOOST_REQUIRE_MESSAGE(run.ok(), run.error());
  BOOST_TEST(run->moved == 40);

  auto newest_first = [](const StoredDelta& a, const StoredDelta& b) {
    return a.delta.timestamp != b.delta.timestamp ? a.delta.timestamp > b.delta.timestamp
                                                  : a.id > b.id;
  };
  auto check_pages = [&](DeltaQuery query, std::vector<StoredDelta> expected) {
    std::sort(expected.begin(), expected.end(), newest_first);
    auto reader = ArchiveReader::open(options.directory);
    BOOST_REQUIRE_MESSAGE(reader.ok(), reader.error());
    BOOST_TEST(reader->file_count() == 2u);
    std::vector<std::int64_t> got;
    std::vector<std::string> afters;
    query.limit = 7;
    for (int pages = 0; pages < 100; ++pages) {
      auto page = reader->get_deltas(*store, query);
      BOOST_REQUIRE_MESSAGE(page.ok(), page.error());
      BOOST_TEST(page->deltas.size() <= 7u);
      for (const auto& d : page->deltas) {
        got.push_back(d.id);
        afters.push_back(d.delta.after.value_or(""));
      }
      if (!page->next) break;
      query.before = page->next;
    }
    std::vector<std::int64_t> want;
    std::vector<std::string> want_afters;
    for (const auto& r : expected) {
      want.push_back(r.id);
      want_afters.push_back(r.delta.after.value_or(""));
    }
    BOOST_TEST(got == want, boost::test_tools::per_element());
    BOOST_TEST(afters == want_afters, boost::test_tools::per_element());
  };
  check_pages({}, rows);
  // The store's filters apply to the files alike.
  DeltaQuery one_session;
  one_session.session_id = "x";
  std::vector<StoredDelta> x_rows;
  std::copy_if(rows.begin(), rows.end(), std::back_inserter(x_rows),
               [](const StoredDelta& r) { return r.delta.session_id == "x"; });
  check_pages(one_session, x_rows);
  DeltaQuery window;
  window.since = "2026-01-05T00:00:00.000Z";
  window.until = "2026-01-12T00:00:00.000Z";
  std::vector<StoredDelta> in_window;
  std::copy_if(rows.begin(), rows.end(), std::back_inserter(in_window), [](const StoredDelta& r) {
    return r.delta.timestamp >= "2026-01-05T00:00:00.000Z" &&
           r.delta.timestamp < "2026-01-12T00:00:00.000Z";
  });
  check_pages(window, in_window);

  // A session's history across them: by id, each once.
  auto reader = ArchiveReader::open(options.directory);
  BOOST_REQUIRE(reader.ok());
  auto history = reader->session_history(*store, "x");
  BOOST_REQUIRE_MESSAGE(history.ok(), history.error());
  std::vector<std::int64_t> history_ids;
  for (const auto& d : *history) history_ids.push_back(d.id);
  std::vector<std::int64_t> x_ids;
  for (const auto& r : x_rows) x_ids.push_back(r.id);
  BOOST_TEST(history_ids == x_ids, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(enough_plain_states_are_compressed_in_the_file_and_read_back_exactly) {
  TempDir dir;
  std::vector<StoredDelta> rows;
  for (int i = 1; i <= 600; ++i) {
    auto r = row(i, "s" + std::to_string(i % 17), DeltaType::updated, 40);
    r.delta.after = R"({"id":"session-)" + std::to_string(i % 17) +
                    R"(","planStatus":"in_progress","n":9007199254740993,"title":"Ünïcødé ✓ )" +
                    std::to_string(i) + R"(","prompt":")" + std::string(300 + i % 50, 'p') +
                    R"(","steps":[1,2,3]})";
    rows.push_back(r);
  }
  auto store = store_with(rows);
  auto options = options_in(dir);
  auto run = archive_expired(*store, options, kCutoff, kNow);
  BOOST_REQUIRE_MESSAGE(run.ok(), run.error());
  BOOST_TEST(run->moved == 600);
  auto path = file_of(options, "2026-02");
  auto types = query_db(path, "SELECT typeof(after_state), COUNT(*) FROM session_deltas GROUP BY 1");
  BOOST_REQUIRE(types.size() == 1u);
  BOOST_TEST(types[0][0] == "blob");
  BOOST_TEST(query_db(path, "SELECT COUNT(*) FROM state_dictionaries")[0][0] == "1");
  auto reader = ArchiveReader::open(options.directory);
  BOOST_REQUIRE(reader.ok());
  std::map<std::int64_t, std::string> afters;
  for (const auto& r : rows) afters[r.id] = *r.delta.after;
  for (int s = 0; s < 17; ++s) {
    auto history = reader->session_history(*store, "s" + std::to_string(s));
    BOOST_REQUIRE_MESSAGE(history.ok(), history.error());
    for (const auto& d : *history) BOOST_TEST(d.delta.after.value_or("") == afters.at(d.id));
  }
  BOOST_TEST(check_archive_file(path).value_or("") == "ok");
}

BOOST_AUTO_TEST_CASE(encoded_states_and_references_are_copied_so_the_file_reads_alone) {
  TempDir dir;
  auto store = store_with(two_months());
  sqlite3* db = store->connection();
  // The store as compression leaves it (state_codec.h): a dictionary, BLOB
  // values, and before states kept as references (before_ref).
  BOOST_REQUIRE(sqlite3_exec(db, kCreateStateDictionaries, nullptr, nullptr, nullptr) == SQLITE_OK);
  auto has_ref = query_db_text(db, "SELECT COUNT(*) FROM pragma_table_info('session_deltas') "
                                   "WHERE name = 'before_ref'");
  if (has_ref == "0") {
    BOOST_REQUIRE(sqlite3_exec(db, "ALTER TABLE session_deltas ADD COLUMN before_ref INTEGER",
                               nullptr, nullptr, nullptr) == SQLITE_OK);
  }
  StateCodec codec;
  std::vector<std::string> samples;
  for (int i = 0; i < 1000; ++i) samples.push_back(state_of(i));
  auto trained = codec.train(db, samples);
  BOOST_REQUIRE_MESSAGE(trained.ok(), trained.error());
  auto blob = codec.encode(state_of(5));
  sqlite3_stmt* update = nullptr;
  BOOST_REQUIRE(sqlite3_prepare_v2(db, "UPDATE session_deltas SET after_state = ?1 WHERE id = 5",
                                   -1, &update, nullptr) == SQLITE_OK);
  sqlite3_bind_blob(update, 1, blob.data(), static_cast<int>(blob.size()), SQLITE_STATIC);
  BOOST_REQUIRE(sqlite3_step(update) == SQLITE_DONE);
  sqlite3_finalize(update);
  // 4's before refers to 7 (stored a day ago: it stays in memory), so the
  // copy materialises it; 5's before refers to 4 (the same file), so it stays
  // a reference. The states agree: 7's after is made 4's before, and 4's
  // after is 5's before already.
  for (const char* sql :
       {"UPDATE session_deltas SET after_state = (SELECT before_state FROM session_deltas "
        "WHERE id = 4) WHERE id = 7",
        "UPDATE session_deltas SET before_state = NULL, before_ref = 7 WHERE id = 4",
        "UPDATE session_deltas SET before_state = NULL, before_ref = 4 WHERE id = 5"}) {
    BOOST_REQUIRE(sqlite3_exec(db, sql, nullptr, nullptr, nullptr) == SQLITE_OK);
  }
  auto options = options_in(dir);
  auto run = archive_expired(*store, options, kCutoff, kNow);
  BOOST_REQUIRE_MESSAGE(run.ok(), run.error());
  BOOST_TEST(run->moved == 6);
  auto path = file_of(options, "2026-02");
  auto refs = query_db(path, "SELECT id, before_state IS NULL, before_ref FROM session_deltas ORDER BY id");
  BOOST_REQUIRE(refs.size() == 3u);
  BOOST_TEST(refs[0][1] == "0");  // 4: materialised
  BOOST_TEST(refs[0][2] == "NULL");
  BOOST_TEST(refs[1][1] == "1");  // 5: a reference within the file
  BOOST_TEST(refs[1][2] == "4");
  // The BLOB is copied as it was, with its dictionary.
  BOOST_TEST(query_db(path, "SELECT typeof(after_state) FROM session_deltas WHERE id = 5")[0][0] == "blob");
  BOOST_TEST(query_db(path, "SELECT COUNT(*) FROM state_dictionaries WHERE id = " +
                                std::to_string(*trained))[0][0] == "1");
  auto file = ArchiveFile::open_readonly(path);
  BOOST_REQUIRE_MESSAGE(file.ok(), file.error());
  auto history = file->session_history("b");
  BOOST_REQUIRE_MESSAGE(history.ok(), history.error());
  BOOST_REQUIRE(history->size() == 2u);  // 5 and 6
  BOOST_TEST((*history)[0].delta.after.value_or("") == state_of(5));
  BOOST_TEST((*history)[0].delta.before.value_or("") == state_of(4));  // 4's after
  auto a = file->session_history("a");
  BOOST_REQUIRE(a.ok() && a->size() == 1u);
  BOOST_TEST((*a)[0].delta.before.value_or("") == state_of(3));  // 7's after, copied in
  BOOST_TEST(check_archive_file(path).value_or("") == "ok");
}

// A move in many batches, with compression on (the store keeps references
// and prefixed states) and off (every state text).
static void moves_in_many_batches_with_references_across_their_edges(Compression mode) {
  TempDir dir;
  auto opened = Store::open_empty();
  BOOST_REQUIRE_MESSAGE(opened.ok(), opened.error());
  auto& store = **opened;
  BOOST_REQUIRE(store.set_compression(mode).ok());
  // 50 sessions interleaved, each update's before state its session's last
  // after state (so the store keeps references and prefixed states): rounds
  // 0-13 in January, 14-27 in February, the rest a day ago.
  constexpr int kSessions = 50, kRounds = 40;
  std::vector<StoredDelta> rows;
  for (int u = 0; u < kRounds; ++u) {
    for (int s = 0; s < kSessions; ++s) {
      auto r = row(u * kSessions + s + 1, "s" + std::to_string(s),
                   u == 0 ? DeltaType::created : DeltaType::updated, u < 14 ? 70 : u < 28 ? 40 : 1);
      if (u > 0) r.delta.before = state_of((u - 1) * kSessions + s + 1);
      rows.push_back(r);
    }
  }
  auto half = rows.size() / 2;
  BOOST_REQUIRE(store.save_with_created_at({rows.data(), half}).ok());
  if (mode == Compression::zstd) {
    // The dictionary (trained on a thread), then every row encoded.
    BOOST_REQUIRE(wait_until([&] {
      auto step = store.convert_step(2'000);
      BOOST_REQUIRE_MESSAGE(step.ok(), step.error());
      return store.compression_stats().dictionaries >= 1;
    }, std::chrono::seconds(60)));
  }
  BOOST_REQUIRE(store.save_with_created_at({rows.data() + half, rows.size() - half}).ok());
  for (int guard = 0; guard < 1'000; ++guard) {
    auto step = store.convert_step(500);
    BOOST_REQUIRE_MESSAGE(step.ok(), step.error());
    if (*step == 0) break;
  }
  auto refs_in_store = std::stoll(query_db_text(
      store.connection(), "SELECT COUNT(*) FROM session_deltas WHERE before_ref IS NOT NULL"));
  BOOST_REQUIRE(mode == Compression::zstd ? refs_in_store > 1'000 : refs_in_store == 0);
  std::map<std::int64_t, StoredDelta> expected;
  for (const auto& r : rows) expected[r.id] = r;

  auto options = options_in(dir);
  // A row's before state is the row 50 before it: in its own batch or the
  // one before, whose file holds it when this batch is read (a reference
  // kept), and 12 batches a month. Text states become references within a
  // batch only.
  options.batch_rows = 60;
  auto run = archive_expired(store, options, kCutoff, kNow);
  BOOST_REQUIRE_MESSAGE(run.ok(), run.error());
  BOOST_TEST(run->moved == 28 * kSessions);
  BOOST_TEST((run->months == std::vector<std::string>{"2026-01", "2026-02"}));

  // Each file reads alone, every state byte for byte, each id once.
  std::set<std::int64_t> archived;
  for (const char* month : {"2026-01", "2026-02"}) {
    auto path = file_of(options, month);
    BOOST_TEST(check_archive_file(path).value_or("") == "ok");
    // With compression on, only a session's first row of the month names a
    // row of another file; off, a tenth of the rows follow their session's
    // row before in the same batch (10 of 60).
    auto refs = std::stoll(query_db(path, "SELECT COUNT(*) FROM session_deltas WHERE before_ref "
                                          "IS NOT NULL")[0][0]);
    if (mode == Compression::zstd) {
      BOOST_TEST(refs == 13 * kSessions);
    } else {
      BOOST_TEST(refs > 100);
      BOOST_TEST(refs < 13 * kSessions);
    }
    auto file = ArchiveFile::open_readonly(path);
    BOOST_REQUIRE_MESSAGE(file.ok(), file.error());
    for (int s = 0; s < kSessions; ++s) {
      auto history = file->session_history("s" + std::to_string(s));
      BOOST_REQUIRE_MESSAGE(history.ok(), history.error());
      BOOST_TEST(history->size() == 14u);
      for (const auto& d : *history) {
        BOOST_TEST(archived.insert(d.id).second);
        const auto& want = expected.at(d.id).delta;
        BOOST_TEST(d.delta.before.value_or("-") == want.before.value_or("-"));
        BOOST_TEST(d.delta.after.value_or("-") == want.after.value_or("-"));
      }
    }
  }
  BOOST_TEST(archived.size() == 28u * kSessions);
  // What stays reads as it did: the first row of each session after the
  // move got its before state back as a value.
  std::size_t stayed = 0;
  auto status = store.for_each_delta([&](const StoredDelta& d) {
    ++stayed;
    BOOST_TEST(!archived.count(d.id));
    const auto& want = expected.at(d.id).delta;
    BOOST_TEST(d.delta.before.value_or("-") == want.before.value_or("-"));
    BOOST_TEST(d.delta.after.value_or("-") == want.after.value_or("-"));
    return true;
  });
  BOOST_REQUIRE_MESSAGE(status.ok(), status.error());
  BOOST_TEST(stayed == 12u * kSessions);
  check_ledger(store);
}

BOOST_AUTO_TEST_CASE(a_compressed_store_moves_in_many_batches_with_references_across_their_edges) {
  moves_in_many_batches_with_references_across_their_edges(Compression::zstd);
}

BOOST_AUTO_TEST_CASE(a_plain_store_moves_in_many_batches_its_repeated_states_as_references) {
  moves_in_many_batches_with_references_across_their_edges(Compression::off);
}

BOOST_AUTO_TEST_CASE(archive_days_deletes_old_month_files) {
  TempDir dir;
  auto store = store_with(two_months());
  auto options = options_in(dir);
  options.keep_days = 60;
  auto run = archive_expired(*store, options, kCutoff, kNow);
  BOOST_REQUIRE_MESSAGE(run.ok(), run.error());
  BOOST_TEST(run->moved == 6);
  // January's newest delta was stored 70 days ago: its file went.
  BOOST_TEST(run->removed == 1);
  BOOST_TEST(!fs::exists(file_of(options, "2026-01")));
  BOOST_TEST(fs::exists(file_of(options, "2026-02")));
  // A file not sealed is never deleted, however old.
  options.keep_days = 1;
  auto removed = remove_old_archives(options, kNow + std::chrono::days(400));
  BOOST_REQUIRE(removed.ok());
  BOOST_TEST(*removed == 0);
  BOOST_TEST(fs::exists(file_of(options, "2026-02")));
}

BOOST_AUTO_TEST_CASE(the_newest_created_at_is_kept_and_found_in_files_written_before_it_was) {
  TempDir dir;
  auto store = store_with(two_months());
  auto options = options_in(dir);
  BOOST_REQUIRE(archive_expired(*store, options, kCutoff, kNow).ok());
  auto path = file_of(options, "2026-02");
  auto newest_of = [](const std::string& file) {
    auto opened = ArchiveFile::open_readonly(file);
    BOOST_REQUIRE_MESSAGE(opened.ok(), opened.error());
    auto newest = opened->newest_created_at();
    BOOST_REQUIRE_MESSAGE(newest.ok(), newest.error());
    return newest->value_or("none");
  };
  const std::string february = two_months()[5].created_at;  // id 6, the month's newest
  BOOST_TEST(newest_of(path) == february);

  // A file as an earlier deltatap wrote it: no column, a created_at index.
  auto old = (dir / "deltas-2026-02-old.sqlite").string();
  fs::copy_file(path, old);
  fs::permissions(old, fs::perms::owner_read | fs::perms::owner_write);
  {
    sqlite3* db = nullptr;
    BOOST_REQUIRE(sqlite3_open(old.c_str(), &db) == SQLITE_OK);
    BOOST_REQUIRE(sqlite3_exec(db,
                               "ALTER TABLE archive_info DROP COLUMN newest_created_at; "
                               "CREATE INDEX idx_session_deltas_created_at ON "
                               "session_deltas(created_at)",
                               nullptr, nullptr, nullptr) == SQLITE_OK);
    sqlite3_close(db);
  }
  BOOST_TEST(newest_of(old) == february);  // from its rows
  BOOST_TEST(check_archive_file(old).value_or("") == "ok");
  {
    bool created = true;
    auto writing = ArchiveFile::open_for_writing(old, "2026-02", &created);
    BOOST_REQUIRE_MESSAGE(writing.ok(), writing.error());
    BOOST_TEST(!created);
  }
  BOOST_TEST(newest_of(old) == february);  // the column, filled once
}

// New files keep their times as INTEGER milliseconds (format 2); a file of
// format 1 keeps its TEXT times, reads the same and takes more rows as text.
BOOST_AUTO_TEST_CASE(a_file_of_format_1_keeps_its_text_times_and_reads_alike) {
  TempDir dir;
  auto store = store_with(two_months());
  auto options = options_in(dir);
  BOOST_REQUIRE(archive_expired(*store, options, kCutoff, kNow).ok());
  auto path = file_of(options, "2026-02");
  BOOST_TEST(query_db(path, "SELECT format_version FROM archive_info")[0][0] == "2");
  BOOST_TEST(query_db(path, "SELECT COUNT(*) FROM session_deltas WHERE typeof(timestamp) <> 'integer' "
                            "OR typeof(created_at) <> 'integer'")[0][0] == "0");
  // Every row across memory and the files, newest first, with its times.
  auto read_all = [&] {
    auto reader = ArchiveReader::open(options.directory);
    BOOST_REQUIRE_MESSAGE(reader.ok(), reader.error());
    DeltaQuery query;
    query.limit = 100;
    query.since = "2026-01-01T00:00:00.000Z";
    query.until = format_timestamp(kCutoff);
    auto page = reader->get_deltas(*store, query);
    BOOST_REQUIRE_MESSAGE(page.ok(), page.error());
    std::vector<std::string> rows;
    for (const auto& d : page->deltas) {
      rows.push_back(std::to_string(d.id) + " " + d.delta.timestamp + " " + d.created_at + " " +
                     d.delta.after.value_or("-"));
    }
    return rows;
  };
  auto before = read_all();
  BOOST_TEST(before.size() == 6u);

  {
    sqlite3* db = nullptr;
    BOOST_REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
    auto text = [](const char* column) {
      return std::string("strftime('%Y-%m-%dT%H:%M:%fZ', ") + column + " / 1000.0, 'unixepoch')";
    };
    std::string sql =
        "BEGIN; CREATE TABLE v1 (id INTEGER PRIMARY KEY, session_id TEXT NOT NULL, delta_type TEXT "
        "NOT NULL, before_state TEXT, after_state TEXT, timestamp TEXT NOT NULL, created_at TEXT NOT "
        "NULL, origin TEXT NOT NULL DEFAULT 'stream', gap INTEGER NOT NULL DEFAULT 0, before_ref "
        "INTEGER); INSERT INTO v1 SELECT id, session_id, delta_type, before_state, after_state, " +
        text("timestamp") + ", " + text("created_at") +
        ", origin, gap, before_ref FROM session_deltas; DROP TABLE session_deltas; ALTER TABLE v1 "
        "RENAME TO session_deltas; CREATE INDEX idx_session_deltas_timestamp ON "
        "session_deltas(timestamp); CREATE INDEX idx_session_deltas_session_ts ON "
        "session_deltas(session_id, timestamp); UPDATE archive_info SET format_version = 1; COMMIT;";
    BOOST_REQUIRE(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr) == SQLITE_OK);
    sqlite3_close(db);
  }
  BOOST_TEST(read_all() == before, boost::test_tools::per_element());

  // A February delta retention finds later goes into the same file, as text.
  auto more = row(9, "d", DeltaType::created, 35);
  BOOST_REQUIRE(store->save_with_created_at(std::vector<StoredDelta>{more}).ok());
  auto run = archive_expired(*store, options, kCutoff, kNow);
  BOOST_REQUIRE_MESSAGE(run.ok(), run.error());
  BOOST_TEST(run->moved == 1);
  BOOST_TEST(query_db(path, "SELECT COUNT(*) FROM session_deltas WHERE typeof(timestamp) = 'text' "
                            "AND typeof(created_at) = 'text'")[0][0] == "4");
  BOOST_TEST(query_db(path, "SELECT format_version FROM archive_info")[0][0] == "1");
  BOOST_TEST(check_archive_file(path).value_or("") == "ok");
  auto after = read_all();
  BOOST_TEST(after.size() == 7u);
  BOOST_TEST((std::find(after.begin(), after.end(),
                        "9 " + more.delta.timestamp + " " + more.created_at + " " + *more.delta.after) !=
              after.end()));
}

BOOST_AUTO_TEST_CASE(the_integrity_check_fails_on_a_damaged_file) {
  TempDir dir;
  auto store = store_with(two_months());
  auto options = options_in(dir);
  BOOST_REQUIRE(archive_expired(*store, options, kCutoff, kNow).ok());
  auto path = file_of(options, "2026-02");
  BOOST_TEST(check_archive_file(path).value_or("") == "ok");

  // A state that does not decode.
  auto bad_state = (dir / "bad-state.sqlite").string();
  fs::copy_file(path, bad_state);
  {
    sqlite3* db = nullptr;
    BOOST_REQUIRE(sqlite3_open(bad_state.c_str(), &db) == SQLITE_OK);
    BOOST_REQUIRE(sqlite3_exec(db, "UPDATE session_deltas SET after_state = X'5A00000000FFFFFF' "
                                   "WHERE id = 5", nullptr, nullptr, nullptr) == SQLITE_OK);
    sqlite3_close(db);
  }
  auto verdict = check_archive_file(bad_state);
  BOOST_REQUIRE(verdict.ok());
  BOOST_TEST(*verdict != "ok");
  BOOST_TEST(verdict->find("delta 5") != std::string::npos, *verdict);

  // Pages overwritten.
  auto bad_pages = (dir / "bad-pages.sqlite").string();
  fs::copy_file(path, bad_pages);
  {
    std::fstream file(bad_pages, std::ios::in | std::ios::out | std::ios::binary);
    // The start of the second page (the header's page size: 1 stands for 65536).
    unsigned char size_bytes[2] = {};
    file.seekg(16);
    file.read(reinterpret_cast<char*>(size_bytes), 2);
    std::size_t page_size = size_bytes[0] * 256u + size_bytes[1];
    if (page_size == 1) page_size = 65536;
    file.seekp(static_cast<std::streamoff>(page_size));
    std::string junk(8192, '\x5a');
    file.write(junk.data(), static_cast<std::streamsize>(junk.size()));
  }
  auto damaged = check_archive_file(bad_pages);
  BOOST_TEST((!damaged.ok() || *damaged != "ok"));
}
