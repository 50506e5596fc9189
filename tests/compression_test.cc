// [storage] compression (issue 16, design.md "Capacity"): the codec, and the
// store with compression off, on and switched midway, on real SQLite
// databases in memory and as files. What a user relies on: every reader gets
// back exactly the JSON text that was stored, whatever the stored form.
#define BOOST_TEST_MODULE compression
#include <boost/test/unit_test.hpp>

#include <sqlite3.h>

#include <map>
#include <string>
#include <vector>

#include "storage/snapshot.h"
#include "storage/state_codec.h"
#include "storage/state_columns.h"
#include "storage/store.h"
#include "test_support.h"

using namespace deltatap;
using namespace deltatap::testing;

namespace {

// A session's state as the backend sends it, varied enough for a dictionary
// to learn from and to tell rows apart.
std::string state_of(int session, int step) {
  static const char* const kStatus[] = {"pending", "in_progress", "awaiting_approval", "done"};
  return R"({"id":"session-)" + std::to_string(session) + R"(","title":"Fix the flaky login test )" +
         std::to_string(session % 37) + R"(","repo":"github/acme-)" + std::to_string(session % 5) +
         R"(","planStatus":")" + kStatus[step % 4] + R"(","step":)" + std::to_string(step) +
         R"(,"exact":9007199254740993,"price":1.10,"note":"h\u00e9llo ✓ 😀 ")" +
         std::to_string(session * 7919 % 1000) + R"(","approval":{"state":"pending","by":null}})";
}

std::string nested(int depth) {
  return std::string(static_cast<std::size_t>(depth), '[') + "1" +
         std::string(static_cast<std::size_t>(depth), ']');
}

std::string megabyte_state() {
  std::string text = R"({"log":")";
  for (int i = 0; text.size() < (1u << 20); ++i) text += "line " + std::to_string(i) + " ok\\n";
  return text + "\"}";
}

// A state of another shape and vocabulary than state_of(): a dictionary
// trained on state_of() helps it little, one trained on it a lot.
std::string foreign_state(int i) {
  static const char* const kWords[] = {
      "Apfel", "Birne", "Kirsche", "Dattel", "Feige", "Traube", "Zitrone", "Mango",
      "Quitte", "Pflaume", "Banane", "Melone", "Ananas", "Papaya", "Limette", "Kiwi",
      "Wolke", "Regen", "Schnee", "Nebel", "Sturm", "Donner", "Blitz", "Sonne",
      "Fluss", "Berg", "Wald", "Wiese", "Meer", "Insel", "Wueste", "Steppe"};
  std::uint64_t x = 0x9e3779b97f4a7c15ULL * static_cast<std::uint64_t>(i + 1);
  auto next = [&x] {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return x;
  };
  std::string text = R"({"kategorie":")" + std::string(kWords[next() % 32]) + R"(","wert":)" +
                     std::to_string(next() % 100000) + R"(,"beschreibung":")";
  for (int k = 0; k < 24; ++k) text += std::string(k ? " " : "") + kWords[next() % 32];
  return text + "\"}";
}

Delta delta(int session, DeltaType type, const std::optional<std::string>& before,
            const std::optional<std::string>& after, int second) {
  Delta d;
  d.session_id = "session-" + std::to_string(session);
  d.type = type;
  d.before = before;
  d.after = after;
  char ts[32];
  std::snprintf(ts, sizeof ts, "2025-11-10T%02d:%02d:%02d.000Z", second / 3600 % 24,
                second / 60 % 60, second % 60);
  d.timestamp = ts;
  return d;
}

// A mixed stream: sessions created, updated (each before state the previous
// after state) and some deleted, plus the awkward states. `first_session`
// keeps streams of one test apart.
std::vector<Delta> stream(int sessions, int updates, int first_session = 0,
                          std::string (*state)(int, int) = state_of) {
  std::vector<Delta> out;
  int second = first_session;
  for (int s = first_session; s < first_session + sessions; ++s) {
    std::string last = state(s, 0);
    out.push_back(delta(s, DeltaType::created, std::nullopt, last, ++second));
    for (int u = 1; u <= updates; ++u) {
      std::string next = state(s, u);
      out.push_back(delta(s, DeltaType::updated, last, next, ++second));
      last = next;
    }
    if (s % 3 == 0) out.push_back(delta(s, DeltaType::deleted, last, std::nullopt, ++second));
  }
  return out;
}

std::string foreign_of(int s, int u) { return foreign_state(s * 1000 + u); }

std::vector<Delta> awkward(int session) {
  std::vector<Delta> out;
  std::string deep = nested(300), big = megabyte_state();
  std::string exact = R"({"n":9007199254740993,"m":-0.0,"e":1E400,"s":"\ud83d\ude00 \u0000"})";
  out.push_back(delta(session, DeltaType::created, std::nullopt, deep, 1));
  out.push_back(delta(session, DeltaType::updated, deep, big, 2));
  out.push_back(delta(session, DeltaType::updated, big, exact, 3));
  // Not the session's last state: stored as a copy, not a reference.
  out.push_back(delta(session, DeltaType::updated, R"({"other":true})", deep, 4));
  return out;
}

std::unique_ptr<Store> empty_store(Compression mode) {
  auto store = Store::open_empty();
  BOOST_REQUIRE_MESSAGE(store.ok(), store.error());
  BOOST_REQUIRE((*store)->set_compression(mode).ok());
  return std::move(store.value());
}

// Saves `deltas` in batches of `batch`, recording what each id must read back as.
void save(Store& store, const std::vector<Delta>& deltas, std::map<std::int64_t, Delta>& expected,
          std::size_t batch = 100) {
  for (std::size_t i = 0; i < deltas.size(); i += batch) {
    std::span<const Delta> part(deltas.data() + i, std::min(batch, deltas.size() - i));
    std::vector<std::int64_t> ids;
    auto saved = store.save_batch(part, std::nullopt, &ids);
    BOOST_REQUIRE_MESSAGE(saved.ok(), saved.error());
    BOOST_REQUIRE_EQUAL(ids.size(), part.size());
    for (std::size_t k = 0; k < ids.size(); ++k) expected[ids[k]] = part[k];
  }
}

// Steps the store's background work until it has a dictionary (trained on
// its own states on StateTrainer's thread) and has converted every row.
void settle(Store& store, std::int64_t dictionaries = 1) {
  BOOST_REQUIRE_MESSAGE(wait_until(
                            [&] {
                              auto step = store.convert_step(2'000);
                              BOOST_REQUIRE_MESSAGE(step.ok(), step.error());
                              return store.compression_stats().dictionaries >= dictionaries;
                            },
                            60s),
                        "no dictionary trained: " + store.compression_stats().last_training_error);
  for (int guard = 0; guard < 10'000; ++guard) {
    auto step = store.convert_step(500);
    BOOST_REQUIRE_MESSAGE(step.ok(), step.error());
    if (*step == 0) return;
  }
  BOOST_FAIL("convert_step never reached 0");
}

void convert_all(Store& store) {
  for (int guard = 0; guard < 10'000; ++guard) {
    auto step = store.convert_step(500);
    BOOST_REQUIRE_MESSAGE(step.ok(), step.error());
    if (*step == 0) return;
  }
  BOOST_FAIL("convert_step never reached 0");
}

void same(const StoredDelta& row, const Delta& want) {
  BOOST_TEST(row.delta.session_id == want.session_id);
  BOOST_TEST((row.delta.type == want.type));
  BOOST_TEST(row.delta.timestamp == want.timestamp);
  BOOST_TEST_REQUIRE(row.delta.before.has_value() == want.before.has_value(), "row " << row.id);
  if (want.before) BOOST_TEST_REQUIRE((*row.delta.before == *want.before), "before of row " << row.id);
  BOOST_TEST_REQUIRE(row.delta.after.has_value() == want.after.has_value(), "row " << row.id);
  if (want.after) BOOST_TEST_REQUIRE((*row.delta.after == *want.after), "after of row " << row.id);
}

// Every reader of the store gives back exactly what was saved.
void reads_back(Store& store, const std::map<std::int64_t, Delta>& expected) {
  std::size_t visited = 0;
  auto each = store.for_each_delta([&](const StoredDelta& row) {
    auto found = expected.find(row.id);
    BOOST_TEST_REQUIRE((found != expected.end()), "unexpected row " << row.id);
    same(row, found->second);
    ++visited;
    return true;
  });
  BOOST_REQUIRE_MESSAGE(each.ok(), each.error());
  BOOST_TEST(visited == expected.size());

  auto after = store.deltas_after(0, expected.size() + 10);
  BOOST_REQUIRE_MESSAGE(after.ok(), after.error());
  BOOST_TEST(after->size() == expected.size());
  for (const auto& row : *after) same(row, expected.at(row.id));

  // Every page of `query`, each row checked; returns how many rows.
  auto read_pages = [&](DeltaQuery query) {
    std::size_t rows = 0;
    for (;;) {
      auto page = store.get_deltas(query);
      BOOST_REQUIRE_MESSAGE(page.ok(), page.error());
      for (const auto& row : page->deltas) same(row, expected.at(row.id));
      rows += page->deltas.size();
      if (!page->next) return rows;
      query.before = page->next;
    }
  };
  DeltaQuery all;
  all.limit = kMaxQueryLimit;
  BOOST_TEST(read_pages(all) == expected.size());

  std::map<std::string, std::vector<std::int64_t>> by_session;
  for (const auto& [id, d] : expected) by_session[d.session_id].push_back(id);
  for (const auto& [session, ids] : by_session) {
    // Pages of three: a before state referring to the next page's row is
    // looked up, one referring to a row of the same page copied from it.
    DeltaQuery small;
    small.session_id = session;
    small.limit = 3;
    BOOST_TEST(read_pages(small) == ids.size());
    auto history = store.session_history(session);
    BOOST_REQUIRE_MESSAGE(history.ok(), history.error());
    BOOST_REQUIRE_EQUAL(history->size(), ids.size());
    for (std::size_t i = 0; i < ids.size(); ++i) {
      BOOST_TEST((*history)[i].id == ids[i]);
      same((*history)[i], expected.at(ids[i]));
    }
  }
  auto one = store.delta_by_id(expected.rbegin()->first);
  BOOST_REQUIRE_MESSAGE(one.ok(), one.error());
  BOOST_REQUIRE(one->has_value());
  same(**one, expected.rbegin()->second);

  // The ledger's last state of each session.
  auto sessions = store.sessions();
  BOOST_REQUIRE_MESSAGE(sessions.ok(), sessions.error());
  for (const auto& summary : *sessions) {
    const Delta& last = expected.at(summary.last_id);
    auto want = last.type == DeltaType::deleted ? last.before : last.after;
    BOOST_TEST((summary.last_state == want), summary.session_id);
  }
  auto checked = store.check();
  BOOST_REQUIRE_MESSAGE(checked.ok(), checked.error());
  BOOST_TEST(*checked == "ok");
}

fs::path to_file(Store& store, const TempDir& dir, const std::string& name = "sessions.sqlite") {
  auto path = dir / name;
  auto status = write_snapshot_file(
      path.string(), [&store](const std::string& temp) { return store.write_copy(temp); });
  BOOST_REQUIRE_MESSAGE(status.ok(), status.error());
  return path;
}

long long number(const fs::path& db, const std::string& sql) {
  return std::stoll(query_db(db, sql).at(0).at(0));
}

struct Connection {
  sqlite3* db = nullptr;
  explicit Connection(const fs::path& path, int flags = SQLITE_OPEN_READWRITE) {
    BOOST_REQUIRE(sqlite3_open_v2(path.c_str(), &db, flags, nullptr) == SQLITE_OK);
  }
  ~Connection() { sqlite3_close(db); }
};

}  // namespace

BOOST_AUTO_TEST_CASE(codec_round_trip_without_and_with_a_dictionary) {
  sqlite3* db = nullptr;
  BOOST_REQUIRE(sqlite3_open(":memory:", &db) == SQLITE_OK);
  BOOST_REQUIRE(sqlite3_exec(db, kCreateStateDictionaries, nullptr, nullptr, nullptr) == SQLITE_OK);
  std::vector<std::string> texts = {state_of(1, 1), nested(300), megabyte_state(),
                                    R"({"n":9007199254740993,"u":"\u00e9 ✓ 😀"})", "{}"};
  StateCodec codec;
  BOOST_REQUIRE(codec.load(db).ok());
  BOOST_TEST(!codec.has_dictionary());
  for (const auto& text : texts) {
    auto encoded = codec.encode(text);
    BOOST_TEST(StateCodec::is_encoded(encoded));
    BOOST_TEST(!StateCodec::is_encoded(text));
    auto decoded = codec.decode(encoded);
    BOOST_REQUIRE_MESSAGE(decoded.ok(), decoded.error());
    BOOST_TEST((*decoded == text));
    BOOST_TEST((*codec.decode(text) == text));  // TEXT passes through
  }
  std::vector<std::string> samples;
  for (int i = 0; i < 3'000; ++i) samples.push_back(state_of(i, i % 9));
  auto id = codec.train(db, samples);
  BOOST_REQUIRE_MESSAGE(id.ok(), id.error());
  BOOST_TEST(*id == 1u);
  BOOST_TEST(codec.newest_dictionary() == 1u);
  std::size_t json = 0, encoded_bytes = 0;
  for (int i = 5'000; i < 5'500; ++i) {
    auto text = state_of(i, i % 7);
    auto encoded = codec.encode(text);
    json += text.size();
    encoded_bytes += encoded.size();
    BOOST_TEST((*codec.decode(encoded) == text));
  }
  // The dictionary earns its keep on states like the ones it was trained on.
  BOOST_TEST(encoded_bytes * 3 < json, encoded_bytes << " of " << json);
  for (const auto& text : texts) BOOST_TEST((*codec.decode(codec.encode(text)) == text));

  // Another codec of the same database reads it once loaded; without it, an error.
  auto value = codec.encode(state_of(9, 9));
  StateCodec fresh;
  auto unknown = fresh.decode(value);
  BOOST_TEST(!unknown.ok());
  BOOST_TEST(unknown.error().find("dictionary 1") != std::string::npos, unknown.error());
  BOOST_REQUIRE(fresh.load(db).ok());
  BOOST_TEST((*fresh.decode(value) == state_of(9, 9)));
  // A damaged frame is an error, never a guess.
  value[value.size() / 2] = static_cast<char>(value[value.size() / 2] ^ 0x5a);
  BOOST_TEST(!fresh.decode(value).ok());

  // deltatap_json: NULL stays NULL, TEXT passes, a BLOB is decoded.
  BOOST_REQUIRE(StateCodec::register_sql_function(db).ok());
  sqlite3_stmt* stmt = nullptr;
  BOOST_REQUIRE(sqlite3_prepare_v2(db, "SELECT deltatap_json(?1), deltatap_json(NULL), deltatap_json('{}')",
                                   -1, &stmt, nullptr) == SQLITE_OK);
  auto blob = codec.encode(state_of(3, 3));
  sqlite3_bind_blob(stmt, 1, blob.data(), static_cast<int>(blob.size()), SQLITE_STATIC);
  BOOST_REQUIRE(sqlite3_step(stmt) == SQLITE_ROW);
  BOOST_TEST(std::string(reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0))) == state_of(3, 3));
  BOOST_TEST(sqlite3_column_type(stmt, 1) == SQLITE_NULL);
  BOOST_TEST(std::string(reinterpret_cast<const char*>(sqlite3_column_text(stmt, 2))) == "{}");
  sqlite3_finalize(stmt);
  sqlite3_close(db);
}

BOOST_AUTO_TEST_CASE(compression_off_keeps_plain_json) {
  auto store = empty_store(Compression::off);
  std::map<std::int64_t, Delta> expected;
  save(*store, stream(400, 8), expected);
  save(*store, awkward(100'000), expected, 1);
  reads_back(*store, expected);
  TempDir dir;
  auto file = to_file(*store, dir);
  BOOST_TEST(number(file, "SELECT COUNT(*) FROM session_deltas WHERE typeof(after_state) = 'blob' "
                          "OR typeof(before_state) = 'blob' OR before_ref IS NOT NULL") == 0);
  BOOST_TEST(number(file, "SELECT COUNT(*) FROM state_dictionaries") == 0);
  BOOST_TEST(store->compression_stats().mode == "off");
}

BOOST_AUTO_TEST_CASE(compression_on_encodes_and_references) {
  auto store = empty_store(Compression::zstd);
  std::map<std::int64_t, Delta> expected;
  save(*store, stream(400, 8), expected);
  settle(*store);
  save(*store, stream(300, 8, 1'000), expected);
  save(*store, awkward(100'000), expected, 1);
  reads_back(*store, expected);

  TempDir dir;
  auto file = to_file(*store, dir);
  BOOST_TEST(number(file, "SELECT COUNT(*) FROM session_deltas WHERE typeof(after_state) = 'text' "
                          "OR typeof(before_state) = 'text'") == 0);
  // Every updated delta of the streams starts from its session's last state.
  auto refs = number(file, "SELECT COUNT(*) FROM session_deltas WHERE before_ref IS NOT NULL");
  BOOST_TEST(refs >= 700 * 8);
  BOOST_TEST(number(file, "SELECT COUNT(*) FROM session_deltas WHERE before_ref IS NOT NULL AND "
                          "before_state IS NOT NULL") == 0);
  // The awkward stream's copy that is not the last state stays a copy.
  BOOST_TEST(number(file, "SELECT COUNT(*) FROM session_deltas WHERE session_id = 'session-100000' "
                          "AND delta_type = 'updated' AND before_ref IS NULL") == 1);
  auto stats = store->compression_stats();
  BOOST_TEST(stats.mode == "zstd");
  BOOST_TEST(stats.dictionaries == 1);
  BOOST_TEST(stats.ratio() > 0);
  BOOST_TEST(stats.ratio() < 0.5);
  BOOST_TEST(stats.references >= 300u * 8);
  BOOST_TEST(stats.converted);
}

BOOST_AUTO_TEST_CASE(a_prefixed_state_round_trips_only_against_its_before_state) {
  StateCodec codec;
  std::vector<std::pair<std::string, std::string>> pairs = {
      {state_of(1, 1), state_of(1, 2)},
      {megabyte_state(), R"({"n":9007199254740993,"u":"\u00e9 ✓ 😀"})"},
      {nested(300), megabyte_state()},
      {"{}", "{}"}};
  for (const auto& [before, after] : pairs) {
    auto value = codec.encode_against(after, before, 3);
    BOOST_TEST(StateCodec::is_prefixed(value));
    BOOST_TEST(!StateCodec::is_encoded(value));
    BOOST_TEST(StateCodec::depth_of(value) == 3);
    auto decoded = codec.decode_against(value, before);
    BOOST_REQUIRE_MESSAGE(decoded.ok(), decoded.error());
    BOOST_TEST((*decoded == after));
    // Without its before state it does not read: an error, not a guess.
    BOOST_TEST(!codec.decode(value).ok());
  }
  // Against the state before it, an update is a fraction of the state.
  auto small = codec.encode_against(state_of(7, 2), state_of(7, 1), 1);
  BOOST_TEST(small.size() * 3 < state_of(7, 2).size(), small.size());
  // Against another before state, or damaged: an error.
  BOOST_TEST(!codec.decode_against(small, state_of(8, 1)).ok());
  small[small.size() - 3] = static_cast<char>(small[small.size() - 3] ^ 0x11);
  BOOST_TEST(!codec.decode_against(small, state_of(7, 1)).ok());
}

BOOST_AUTO_TEST_CASE(updates_are_stored_against_the_state_before_them_in_bounded_chains) {
  auto store = empty_store(Compression::zstd);
  std::map<std::int64_t, Delta> expected;
  save(*store, stream(400, 8), expected);
  settle(*store);
  // Long sessions: their chains must start again every kMaxChainDepth updates.
  save(*store, stream(30, 3 * kMaxChainDepth + 5, 1'000), expected, 37);
  reads_back(*store, expected);
  TempDir dir;
  auto file = to_file(*store, dir);
  const std::string prefixed = "typeof(after_state) = 'blob' AND substr(after_state, 1, 1) = X'44'";
  const std::string long_sessions = "session_id LIKE 'session-10__'";  // 1000..1029
  auto long_updates = number(file, "SELECT COUNT(*) FROM session_deltas WHERE " + long_sessions +
                                       " AND delta_type = 'updated'");
  auto long_prefixed = number(file, "SELECT COUNT(*) FROM session_deltas WHERE " + long_sessions +
                                        " AND " + prefixed);
  // Of any kMaxChainDepth + 1 updates in a row, at most one starts a chain.
  const long long per_session = 3 * kMaxChainDepth + 5;
  const long long starts = (per_session + kMaxChainDepth) / (kMaxChainDepth + 1);
  BOOST_TEST(long_updates == 30 * per_session);
  BOOST_TEST(long_prefixed >= long_updates - 30 * starts, long_prefixed << " of " << long_updates);
  // Depth: 1 + the depth of the after state its before state refers to, at
  // most kMaxChainDepth; each long session starts again at least three times.
  BOOST_TEST(number(file, "SELECT MAX(unicode(CAST(substr(after_state, 2, 1) AS TEXT))) FROM "
                          "session_deltas WHERE " + prefixed) == kMaxChainDepth);
  BOOST_TEST(number(file, "SELECT MIN(n) FROM (SELECT COUNT(*) AS n FROM session_deltas WHERE " +
                              long_sessions + " AND delta_type = 'updated' AND NOT (" + prefixed +
                              ") GROUP BY session_id)") >= 3);
  // What it is for: an update's after state, prefixed, is smaller than a
  // session's first state encoded with the dictionary (these states are
  // small and alike, so the dictionary does well; on the simulator's, 33
  // against 104 bytes).
  double prefixed_bytes = static_cast<double>(number(file,
      "SELECT AVG(length(after_state)) FROM session_deltas WHERE " + prefixed));
  double dictionary_bytes = static_cast<double>(number(file,
      "SELECT AVG(length(after_state)) FROM session_deltas WHERE delta_type = 'created'"));
  BOOST_TEST(prefixed_bytes * 1.25 < dictionary_bytes,
             prefixed_bytes << " against " << dictionary_bytes);
  BOOST_TEST(store->compression_stats().prefixed > 0u);

  // The rows a chain starts from go (eviction of the oldest): the rows that
  // stay still read, and the file still checks.
  auto total = static_cast<std::int64_t>(expected.size());
  auto evicted = store->evict_beyond(total - 3'700);
  BOOST_REQUIRE_MESSAGE(evicted.ok(), evicted.error());
  while (static_cast<std::int64_t>(expected.size()) > total - 3'700) expected.erase(expected.begin());
  reads_back(*store, expected);
}

// A journal replay gives rows ids the store may already hold: the insert
// ignores those, but the depths of the rows after them were planned from the
// replayed copies, so their chains come out longer than planned. They still
// read (a reader takes only a far longer chain for a loop).
BOOST_AUTO_TEST_CASE(rows_after_a_replayed_id_read_though_their_chain_is_longer_than_planned) {
  auto store = empty_store(Compression::zstd);
  std::map<std::int64_t, Delta> expected;
  save(*store, stream(400, 8), expected);
  settle(*store);
  const std::int64_t base = expected.rbegin()->first;
  auto row_of = [&](int n) {
    StoredDelta row;
    row.id = base + n;
    row.delta = n == 1 ? delta(7'000, DeltaType::created, std::nullopt, state_of(7'000, 1), n)
                       : delta(7'000, DeltaType::updated, state_of(7'000, n - 1),
                               state_of(7'000, n), n);
    row.created_at = row.delta.timestamp;
    return row;
  };
  // 36 rows: the last one's chain is as deep as a writer makes one.
  std::vector<StoredDelta> first, replay;
  for (int n = 1; n <= 4 * (kMaxChainDepth + 1); ++n) first.push_back(row_of(n));
  for (int n = 4 * (kMaxChainDepth + 1); n <= 5 * (kMaxChainDepth + 1); ++n) replay.push_back(row_of(n));
  BOOST_REQUIRE(store->save_with_created_at(first).ok());
  BOOST_REQUIRE(store->save_with_created_at(replay).ok());  // its first row is held already
  for (const auto& row : first) expected[row.id] = row.delta;
  for (const auto& row : replay) expected[row.id] = row.delta;
  // Read cold (nothing decoded yet), the first row after the replayed one
  // walks its whole chain.
  TempDir dir;
  auto file = to_file(*store, dir);
  auto cold = Store::open_readonly(file.string());
  BOOST_REQUIRE_MESSAGE(cold.ok(), cold.error());
  const std::int64_t after_replayed = replay[1].id;
  auto row = (*cold)->delta_by_id(after_replayed);
  BOOST_REQUIRE_MESSAGE(row.ok(), row.error());
  BOOST_REQUIRE(row->has_value());
  same(**row, expected.at(after_replayed));
  reads_back(*store, expected);
}

BOOST_AUTO_TEST_CASE(a_chain_that_loops_is_an_error_not_a_hang) {
  TempDir dir;
  std::map<std::int64_t, Delta> expected;
  fs::path file;
  {
    auto store = empty_store(Compression::zstd);
    save(*store, stream(400, 8), expected);
    settle(*store);
    save(*store, stream(20, 4, 1'000), expected);
    file = to_file(*store, dir);
  }
  auto victim = number(file, "SELECT MAX(id) FROM session_deltas WHERE before_ref IS NOT NULL AND "
                             "substr(after_state, 1, 1) = X'44'");
  {
    Connection c(file);
    BOOST_REQUIRE(sqlite3_exec(c.db, ("UPDATE session_deltas SET before_ref = id WHERE id = " +
                                      std::to_string(victim)).c_str(),
                               nullptr, nullptr, nullptr) == SQLITE_OK);
  }
  auto store = Store::open_readonly(file.string());
  BOOST_REQUIRE_MESSAGE(store.ok(), store.error());
  auto checked = (*store)->check();
  BOOST_REQUIRE_MESSAGE(checked.ok(), checked.error());
  BOOST_TEST(checked->find("row " + std::to_string(victim)) != std::string::npos, *checked);
  BOOST_TEST(!(*store)->delta_by_id(victim).ok());
}

BOOST_AUTO_TEST_CASE(switched_on_then_off_midway) {
  auto store = empty_store(Compression::off);
  std::map<std::int64_t, Delta> expected;
  save(*store, stream(400, 8), expected);
  BOOST_REQUIRE(store->set_compression(Compression::zstd).ok());
  save(*store, stream(50, 8, 1'000), expected);
  settle(*store);  // trains on the stored states, then encodes every TEXT row
  save(*store, stream(50, 8, 2'000), expected);
  reads_back(*store, expected);
  TempDir dir;
  auto on = to_file(*store, dir, "on.sqlite");
  BOOST_TEST(number(on, "SELECT COUNT(*) FROM session_deltas WHERE typeof(after_state) = 'text'") == 0);
  // The times were converted too (time_columns.h), and back below.
  BOOST_TEST(store->time_columns().integer);
  BOOST_TEST(number(on, "SELECT COUNT(*) FROM session_deltas WHERE typeof(timestamp) = 'integer'") ==
             static_cast<long long>(expected.size()));

  BOOST_REQUIRE(store->set_compression(Compression::off).ok());
  save(*store, stream(50, 8, 3'000), expected);
  convert_all(*store);
  reads_back(*store, expected);
  auto off = to_file(*store, dir, "off.sqlite");
  BOOST_TEST(number(off, "SELECT COUNT(*) FROM session_deltas WHERE typeof(after_state) = 'blob' "
                         "OR typeof(before_state) = 'blob' OR before_ref IS NOT NULL") == 0);
  BOOST_TEST(store->compression_stats().converted);
  BOOST_TEST(!store->time_columns().integer);
  BOOST_TEST(number(off, "SELECT COUNT(*) FROM sqlite_master WHERE name LIKE '%next%'") == 0);
}

// Converting the times of a store with rows, in bounded steps, while rows are
// added and deleted and snapshots are taken: nothing lost, nothing twice.
BOOST_AUTO_TEST_CASE(times_convert_in_steps_through_deletes_inserts_and_a_reload) {
  auto store = empty_store(Compression::off);
  std::map<std::int64_t, Delta> expected;
  save(*store, stream(300, 8), expected);
  // A time that is no time (what a migrated file of the document's schema may
  // hold) is kept as it is, not dropped and not a failed step.
  Delta odd = expected.rbegin()->second;
  odd.session_id = "odd";
  odd.timestamp = "yesterday";
  std::vector<std::int64_t> odd_id;
  BOOST_REQUIRE(store->save_batch(std::span<const Delta>(&odd, 1), std::nullopt, &odd_id).ok());
  expected[odd_id.at(0)] = odd;
  BOOST_REQUIRE(!store->time_columns().integer);
  BOOST_REQUIRE(store->set_compression(Compression::zstd).ok());
  // No dictionary yet (the states wait for one): these steps move times only.
  for (int i = 0; i < 3; ++i) {
    auto step = store->convert_step(200);
    BOOST_REQUIRE_MESSAGE(step.ok(), step.error());
    BOOST_TEST(*step > 0);
  }
  BOOST_TEST(!store->time_columns().integer);
  BOOST_TEST(!store->compression_stats().converted);
  // Rows already moved go, and new ones come, before the conversion ends.
  auto evicted = store->evict_beyond(static_cast<std::int64_t>(expected.size()) - 250);
  BOOST_REQUIRE(evicted.ok());
  BOOST_TEST(*evicted == 250);
  for (int i = 0; i < 250; ++i) expected.erase(expected.begin());
  save(*store, stream(20, 8, 5'000), expected);
  reads_back(*store, expected);

  // A snapshot taken halfway carries the conversion: loaded and aimed the
  // same way it goes on; aimed back, it is dropped.
  TempDir dir;
  auto half = to_file(*store, dir, "half.sqlite");
  BOOST_TEST(number(half, "SELECT COUNT(*) FROM session_deltas_next") > 0);
  {
    auto back = Store::load_file(half.string());
    BOOST_REQUIRE_MESSAGE(back.ok(), back.error());
    BOOST_REQUIRE((*back)->set_compression(Compression::off).ok());
    convert_all(**back);
    reads_back(**back, expected);
    BOOST_TEST(!(*back)->time_columns().integer);
    auto file = to_file(**back, dir, "back.sqlite");
    BOOST_TEST(number(file, "SELECT COUNT(*) FROM sqlite_master WHERE name LIKE '%next%'") == 0);
  }
  auto loaded = Store::load_file(half.string());
  BOOST_REQUIRE_MESSAGE(loaded.ok(), loaded.error());
  BOOST_REQUIRE((*loaded)->set_compression(Compression::zstd).ok());
  settle(**loaded);
  BOOST_TEST((*loaded)->time_columns().integer);
  BOOST_TEST((*loaded)->compression_stats().converted);
  reads_back(**loaded, expected);
  auto kept = (*loaded)->delta_by_id(odd_id.at(0));
  BOOST_REQUIRE(kept.ok() && kept->has_value());
  BOOST_TEST((*kept)->delta.timestamp == "yesterday");
  BOOST_TEST(((*kept)->delta.after == odd.after));
  auto next_id = (*loaded)->last_delta_id() + 1;
  std::vector<std::int64_t> ids;
  BOOST_REQUIRE((*loaded)->save_batch(std::span<const Delta>(&expected.begin()->second, 1), std::nullopt, &ids).ok());
  BOOST_TEST(ids.at(0) == next_id);
  auto file = to_file(**loaded, dir, "done.sqlite");
  BOOST_TEST(number(file, "SELECT COUNT(*) FROM sqlite_master WHERE name LIKE '%next%'") == 0);
  BOOST_TEST(number(file, "SELECT COUNT(*) FROM session_deltas") == static_cast<long long>(expected.size()) + 1);
  BOOST_TEST(query_db(file, "PRAGMA integrity_check")[0][0] == "ok");
}

// With zstd a new store keeps its times as integer milliseconds (time_columns.h):
// every reader, a plain sqlite3 shell included, still reads the same text,
// and every query over times answers as the text layout does.
BOOST_AUTO_TEST_CASE(a_zstd_store_keeps_times_as_integers_and_answers_as_text_does) {
  std::vector<Delta> deltas = stream(60, 4);
  // The ends of what the store holds, and milliseconds that a float would round.
  const char* const kEdges[] = {"0001-01-01T00:00:00.000Z", "1969-12-31T23:59:59.999Z",
                                "1970-01-01T00:00:00.001Z", "2025-11-10T00:00:00.007Z",
                                "2038-01-19T03:14:08.999Z", "9999-12-31T23:59:59.999Z"};
  for (std::size_t i = 0; i < deltas.size(); ++i) {
    if (i % 9 == 0) deltas[i].timestamp = kEdges[(i / 9) % std::size(kEdges)];
  }
  const std::string created = "2025-11-10T12:00:00.123Z";
  std::map<Compression, std::unique_ptr<Store>> stores;
  std::map<std::int64_t, Delta> expected;
  for (Compression mode : {Compression::off, Compression::zstd}) {
    auto store = empty_store(mode);
    expected.clear();
    for (std::size_t i = 0; i < deltas.size(); i += 50) {
      std::span<const Delta> part(deltas.data() + i, std::min<std::size_t>(50, deltas.size() - i));
      std::vector<std::int64_t> ids;
      BOOST_REQUIRE(store->save_batch(part, created, &ids).ok());
      for (std::size_t k = 0; k < ids.size(); ++k) expected[ids[k]] = part[k];
    }
    reads_back(*store, expected);
    BOOST_TEST(store->time_columns().integer == (mode == Compression::zstd));
    stores[mode] = std::move(store);
  }
  TempDir dir;
  auto off = to_file(*stores[Compression::off], dir, "off.sqlite");
  auto on = to_file(*stores[Compression::zstd], dir, "on.sqlite");
  BOOST_TEST(number(off, "SELECT COUNT(*) FROM session_deltas WHERE typeof(timestamp) = 'text' "
                         "AND typeof(created_at) = 'text'") == static_cast<long long>(deltas.size()));
  BOOST_TEST(number(on, "SELECT COUNT(*) FROM session_deltas WHERE typeof(timestamp) = 'integer' "
                        "AND typeof(created_at) = 'integer'") == static_cast<long long>(deltas.size()));
  // The same text through the view, and in a plain sqlite3 shell with the
  // expression docs/capacity.md gives.
  const std::string text = "SELECT id, timestamp, created_at FROM session_deltas ORDER BY id";
  BOOST_TEST(query_db(on, "SELECT id, timestamp, created_at FROM session_deltas_json ORDER BY id") ==
             query_db(off, text));
  auto plain = run_command({"/usr/bin/sqlite3", on.string(),
                            "SELECT id, strftime('%Y-%m-%dT%H:%M:%fZ', timestamp / 1000.0, 'unixepoch'), "
                            "strftime('%Y-%m-%dT%H:%M:%fZ', created_at / 1000.0, 'unixepoch') "
                            "FROM session_deltas ORDER BY id"});
  BOOST_TEST(plain.exit_code == 0, plain.err);
  auto shell = run_command({"/usr/bin/sqlite3", off.string(), text});
  BOOST_TEST(plain.out == shell.out);
  BOOST_TEST(plain.out.find("|9999-12-31T23:59:59.999Z|2025-11-10T12:00:00.123Z\n") != std::string::npos);
  BOOST_TEST(plain.out.find("|0001-01-01T00:00:00.000Z|") != std::string::npos);
  // Reopened from the file, the store reads the stored form it finds.
  auto reopened = Store::load_file(on.string());
  BOOST_REQUIRE_MESSAGE(reopened.ok(), reopened.error());
  BOOST_TEST((*reopened)->time_columns().integer);
  auto history = (*reopened)->session_history("session-0");
  BOOST_REQUIRE(history.ok());
  BOOST_TEST(history->front().created_at == created);

  // Every range over times answers the same ids, page by page.
  auto ids_of = [](Store& store, DeltaQuery query) {
    std::vector<std::int64_t> ids;
    for (;;) {
      auto page = store.get_deltas(query);
      BOOST_REQUIRE_MESSAGE(page.ok(), page.error());
      for (const auto& row : page->deltas) ids.push_back(row.id);
      if (!page->next) return ids;
      query.before = page->next;
    }
  };
  const std::pair<const char*, const char*> kRanges[] = {
      {"0001-01-01T00:00:00.000Z", "0001-01-01T00:00:00.001Z"},
      {"1969-12-31T23:59:59.999Z", "2025-11-10T00:01:00.000Z"},
      {"2025-11-10T00:00:30.000Z", "9999-12-31T23:59:59.999Z"},
      {"2025-11-10T00:02:00.000Z", "2025-11-10T00:02:00.001Z"}};
  for (const auto& [since, until] : kRanges) {
    DeltaQuery query;
    query.since = since;
    query.until = until;
    query.limit = 7;
    auto want = ids_of(*stores[Compression::off], query);
    BOOST_TEST(ids_of(*stores[Compression::zstd], query) == want, since << " to " << until);
    BOOST_TEST((!want.empty() || std::string(since) == "2025-11-10T00:02:00.000Z"));
  }
  auto counts_off = stores[Compression::off]->counts();
  auto counts_on = stores[Compression::zstd]->counts();
  BOOST_TEST(counts_on.oldest.value_or("") == "0001-01-01T00:00:00.000Z");
  BOOST_TEST((counts_on.oldest == counts_off.oldest && counts_on.newest == counts_off.newest));
  // Deleting rows: the ledger's times and the activity's quarter hours (both
  // computed in SQL from the rows that go or stay) come out the same.
  std::map<Compression, std::vector<std::vector<std::string>>> ledgers;
  for (auto& [mode, store] : stores) {
    auto evicted = store->evict_beyond(static_cast<std::int64_t>(deltas.size()) - 100);
    BOOST_REQUIRE(evicted.ok());
    BOOST_TEST(*evicted == 100);
    auto file = to_file(*store, dir, mode == Compression::zstd ? "on-evicted.sqlite" : "off-evicted.sqlite");
    ledgers[mode] = query_db(file, "SELECT session_id, first_seen, last_seen, created + updated + deleted "
                                   "FROM sessions ORDER BY 1");
    auto activity = query_db(file, "SELECT bucket, repo, deltas FROM activity ORDER BY 1, 2");
    ledgers[mode].insert(ledgers[mode].end(), activity.begin(), activity.end());
  }
  BOOST_TEST(ledgers[Compression::zstd] == ledgers[Compression::off]);
  BOOST_TEST(ledgers[Compression::off].size() > 40u);
  // Retention by created_at: nothing before it, everything after.
  for (auto& [mode, store] : stores) {
    auto none = store->cleanup(*parse_timestamp(created));
    BOOST_REQUIRE(none.ok());
    BOOST_TEST(*none == 0);
    auto all = store->cleanup(*parse_timestamp("2025-11-10T12:00:00.124Z"));
    BOOST_REQUIRE(all.ok());
    BOOST_TEST(*all == static_cast<std::int64_t>(deltas.size()) - 100);
  }
  // Emptied, the text store takes integer times when switched, and ids go on.
  auto& emptied = *stores[Compression::off];
  auto last_id = emptied.last_delta_id();
  BOOST_REQUIRE(emptied.set_compression(Compression::zstd).ok());
  BOOST_TEST(emptied.time_columns().integer);
  std::vector<std::int64_t> ids;
  BOOST_REQUIRE(emptied.save_batch(std::span<const Delta>(deltas.data(), 1), std::nullopt, &ids).ok());
  BOOST_TEST(ids.at(0) == last_id + 1);
  auto one = emptied.delta_by_id(ids.at(0));
  BOOST_REQUIRE(one.ok() && one->has_value());
  same(**one, deltas[0]);
}

BOOST_AUTO_TEST_CASE(deleting_referenced_rows_keeps_later_rows_readable) {
  auto store = empty_store(Compression::zstd);
  std::map<std::int64_t, Delta> expected;
  save(*store, stream(400, 8), expected);
  settle(*store);
  save(*store, stream(200, 8, 1'000), expected);
  // The oldest rows go; rows after them referred to some of them.
  auto total = static_cast<std::int64_t>(expected.size());
  auto evicted = store->evict_beyond(total - 1'234);
  BOOST_REQUIRE_MESSAGE(evicted.ok(), evicted.error());
  BOOST_TEST(*evicted == 1'234);
  while (static_cast<std::int64_t>(expected.size()) > total - 1'234) expected.erase(expected.begin());
  reads_back(*store, expected);
  // Cleanup by age: everything created before now, except a hold.
  auto hold = std::next(expected.begin(), 500)->first;
  store->hold_deltas_after(hold);
  auto cleaned = store->cleanup(now_millis() + std::chrono::hours(1));
  BOOST_REQUIRE_MESSAGE(cleaned.ok(), cleaned.error());
  BOOST_TEST(*cleaned == 501);
  while (expected.begin()->first <= hold) expected.erase(expected.begin());
  reads_back(*store, expected);
  TempDir dir;
  auto file = to_file(*store, dir);
  BOOST_TEST(number(file, "SELECT COUNT(*) FROM session_deltas d WHERE before_ref IS NOT NULL AND "
                          "NOT EXISTS (SELECT 1 FROM session_deltas r WHERE r.id = d.before_ref)") == 0);
}

BOOST_AUTO_TEST_CASE(a_compressed_file_reopens_checks_and_reads_through_the_view) {
  TempDir dir;
  std::map<std::int64_t, Delta> expected;
  fs::path file;
  {
    auto store = empty_store(Compression::zstd);
    save(*store, stream(400, 8), expected);
    settle(*store);
    save(*store, stream(100, 8, 1'000), expected);
    save(*store, awkward(100'000), expected, 1);
    file = to_file(*store, dir);
  }
  BOOST_TEST(number(file, "PRAGMA user_version") == kSchemaVersion);
  for (bool readonly : {true, false}) {
    auto store = readonly ? Store::open_readonly(file.string()) : Store::load_file(file.string());
    BOOST_REQUIRE_MESSAGE(store.ok(), store.error());
    reads_back(**store, expected);  // check() says ok in there
  }
  // The view, with deltatap_json registered on the connection as a program would.
  Connection c(file, SQLITE_OPEN_READONLY);
  BOOST_REQUIRE(StateCodec::register_sql_function(c.db).ok());
  sqlite3_stmt* stmt = nullptr;
  BOOST_REQUIRE(sqlite3_prepare_v2(c.db,
                                   "SELECT id, before_state, after_state FROM session_deltas_json "
                                   "ORDER BY id",
                                   -1, &stmt, nullptr) == SQLITE_OK);
  std::size_t rows = 0;
  while (sqlite3_step(stmt) == SQLITE_ROW) {
    const Delta& want = expected.at(sqlite3_column_int64(stmt, 0));
    auto text = [&](int column) -> std::optional<std::string> {
      if (sqlite3_column_type(stmt, column) == SQLITE_NULL) return std::nullopt;
      return std::string(reinterpret_cast<const char*>(sqlite3_column_text(stmt, column)),
                         static_cast<std::size_t>(sqlite3_column_bytes(stmt, column)));
    };
    BOOST_TEST_REQUIRE((text(1) == want.before));
    BOOST_TEST_REQUIRE((text(2) == want.after));
    ++rows;
  }
  sqlite3_finalize(stmt);
  BOOST_TEST(rows == expected.size());

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  // A sanitized extension cannot be loaded into an unsanitized sqlite3.
#else
  // A plain sqlite3 shell with the extension.
  auto extension = bin_dir() / "deltatap_sqlite";
  const Delta& last = expected.rbegin()->second;
  auto shell = run_command({"/usr/bin/sqlite3", file.string(), ".load " + extension.string(),
                            "SELECT after_state FROM session_deltas_json WHERE id = " +
                                std::to_string(expected.rbegin()->first)});
  BOOST_TEST(shell.exit_code == 0, shell.err);
  BOOST_TEST(shell.out == *last.after + "\n");
  auto refs = run_command({"/usr/bin/sqlite3", file.string(), ".load " + extension.string(),
                           "SELECT COUNT(*) FROM session_deltas_json j JOIN session_deltas d "
                           "USING (id) WHERE d.before_ref IS NOT NULL AND j.before_state IS NOT NULL"});
  BOOST_TEST(refs.exit_code == 0, refs.err);
  BOOST_TEST(std::stoll(refs.out) >= 500 * 8);
  // Without it, the view says what is missing rather than returning blobs.
  auto bare = run_command({"/usr/bin/sqlite3", file.string(), "SELECT * FROM session_deltas_json LIMIT 1"});
  BOOST_TEST(bare.exit_code != 0);
  BOOST_TEST(bare.err.find("no such function: deltatap_") != std::string::npos, bare.err);
#endif
}

BOOST_AUTO_TEST_CASE(a_corrupted_value_fails_check_naming_the_row) {
  TempDir dir;
  std::map<std::int64_t, Delta> expected;
  fs::path file;
  {
    auto store = empty_store(Compression::zstd);
    save(*store, stream(400, 8), expected);
    settle(*store);
    save(*store, stream(20, 4, 1'000), expected);
    file = to_file(*store, dir);
  }
  auto victim = number(file, "SELECT MAX(id) FROM session_deltas WHERE typeof(after_state) = 'blob'");
  {
    Connection c(file);
    sqlite3_stmt* read = nullptr;
    BOOST_REQUIRE(sqlite3_prepare_v2(c.db, "SELECT after_state FROM session_deltas WHERE id = ?1", -1,
                                     &read, nullptr) == SQLITE_OK);
    sqlite3_bind_int64(read, 1, victim);
    BOOST_REQUIRE(sqlite3_step(read) == SQLITE_ROW);
    std::string blob(static_cast<const char*>(sqlite3_column_blob(read, 0)),
                     static_cast<std::size_t>(sqlite3_column_bytes(read, 0)));
    sqlite3_finalize(read);
    blob[blob.size() - 6] = static_cast<char>(blob[blob.size() - 6] ^ 0x21);
    sqlite3_stmt* write = nullptr;
    BOOST_REQUIRE(sqlite3_prepare_v2(c.db, "UPDATE session_deltas SET after_state = ?2 WHERE id = ?1",
                                     -1, &write, nullptr) == SQLITE_OK);
    sqlite3_bind_int64(write, 1, victim);
    sqlite3_bind_blob(write, 2, blob.data(), static_cast<int>(blob.size()), SQLITE_STATIC);
    BOOST_REQUIRE(sqlite3_step(write) == SQLITE_DONE);
    sqlite3_finalize(write);
  }
  auto store = Store::open_readonly(file.string());
  BOOST_REQUIRE_MESSAGE(store.ok(), store.error());
  auto checked = (*store)->check();
  BOOST_REQUIRE_MESSAGE(checked.ok(), checked.error());
  BOOST_TEST(*checked != "ok");
  BOOST_TEST(checked->find("row " + std::to_string(victim)) != std::string::npos, *checked);
  // Reading it is an error too, never a wrong text.
  auto row = (*store)->delta_by_id(victim);
  BOOST_TEST(!row.ok());
}

BOOST_AUTO_TEST_CASE(a_retrain_mid_stream_leaves_old_rows_readable) {
  auto store = empty_store(Compression::zstd);
  std::map<std::int64_t, Delta> expected;
  save(*store, stream(400, 8), expected);
  settle(*store);
  // States of a new shape: the ratio over a window gets far worse than right
  // after the training, and a second dictionary is trained. The ratio
  // watches the states the dictionary encodes (a session's first; its
  // updates are prefixed by the state before), so sessions of one state each.
  auto windows = static_cast<int>(kBaselineStates + 2 * kRatioWindow + 1);
  save(*store, stream(windows, 0, 10'000, foreign_of), expected);
  settle(*store, 2);
  save(*store, stream(100, 8, 50'000, foreign_of), expected);
  BOOST_TEST(store->compression_stats().newest_dictionary == 2u);
  reads_back(*store, expected);
}
