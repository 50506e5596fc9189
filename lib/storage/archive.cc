// Archive: the move of expired deltas into monthly files (archive.h says
// what and why; sealing and bounding the files is archive_sealing.cc).
#include "storage/archive.h"

#include <sqlite3.h>

#include <algorithm>
#include <future>
#include <limits>
#include <map>
#include <memory>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include "base/files.h"
#include "storage/archive_file.h"
#include "storage/sqlite_statement.h"
#include "storage/state_chain.h"
#include "storage/state_codec.h"
#include "storage/store.h"

namespace deltatap {

namespace {

// A column's value as stored, whatever its type.
struct Value {
  int type = SQLITE_NULL;  // SQLITE_NULL, SQLITE_TEXT or SQLITE_BLOB
  std::string bytes;
};

struct Row {
  std::int64_t id = 0;
  std::string session_id, delta_type, timestamp, created_at, origin;
  int gap = 0;
  Value before, after;
  std::optional<std::int64_t> before_ref;
};

Value read_value(sqlite3_stmt* stmt, int column) {
  Value value;
  value.type = sqlite3_column_type(stmt, column);
  if (value.type == SQLITE_BLOB) {
    auto data = static_cast<const char*>(sqlite3_column_blob(stmt, column));
    if (data) value.bytes.assign(data, static_cast<std::size_t>(sqlite3_column_bytes(stmt, column)));
  } else if (value.type != SQLITE_NULL) {
    // Numbers never are states; read whatever is there as text.
    value.type = SQLITE_TEXT;
    value.bytes = column_text(stmt, column);
  }
  return value;
}

Result<Statement> prepare(sqlite3* db, const char* sql) {
  sqlite3_stmt* raw = nullptr;
  if (sqlite3_prepare_v2(db, sql, -1, &raw, nullptr) != SQLITE_OK) {
    return Error{sqlite_error(db, "prepare")};
  }
  return Statement(raw);
}

Status exec(sqlite3* db, const char* sql, const std::string& path) {
  char* message = nullptr;
  if (sqlite3_exec(db, sql, nullptr, nullptr, &message) != SQLITE_OK) {
    std::string text = message ? message : sqlite3_errmsg(db);
    sqlite3_free(message);
    return Error{path + ": " + sql + ": " + text};
  }
  return ok_status();
}

// Whether the store's session_deltas has before_ref (a store written before
// compression existed has none: every before state is a value).
bool store_has_before_ref(sqlite3* db) {
  auto stmt = prepare(db, "SELECT COUNT(*) FROM pragma_table_info('session_deltas') "
                          "WHERE name = 'before_ref'");
  return stmt.ok() && sqlite3_step(stmt->get()) == SQLITE_ROW &&
         sqlite3_column_int(stmt->get(), 0) > 0;
}

std::uint32_t dictionary_of(const std::string& blob) {
  if (blob.size() < 5) return 0;
  std::uint32_t id = 0;
  for (int i = 4; i >= 1; --i) id = (id << 8) | static_cast<unsigned char>(blob[i]);
  return id;
}

// What a batch needs from the store before its file can take it, done on
// the store's thread: references materialised where the file will not hold
// their row, the dictionaries its values name copied into the file, and a
// value whose dictionary the file has under the same id but with other bytes
// decoded to its JSON text (the file encodes it with its own).
class BatchPreparer {
 public:
  BatchPreparer(sqlite3* store_db, ArchiveFile& file) : store_db_(store_db), file_(file) {}

  Status materialise_references(std::vector<Row>& rows) {
    std::unordered_set<std::int64_t> in_batch;
    for (const auto& row : rows) in_batch.insert(row.id);
    auto in_file = prepare(file_.db(), "SELECT 1 FROM session_deltas WHERE id = ?1");
    if (!in_file.ok()) return Error{in_file.error()};
    for (auto& row : rows) {
      if (!row.before_ref) continue;
      auto ref = *row.before_ref;
      if (in_batch.count(ref)) continue;
      Use file_use(in_file->get());
      sqlite3_bind_int64(in_file->get(), 1, ref);
      if (sqlite3_step(in_file->get()) == SQLITE_ROW) continue;
      // As JSON text (the named row's after state may be prefixed, which
      // reads only where its chain is), encoded as the file encodes TEXT.
      auto store = store_states();
      if (!store.ok()) return Error{store.error()};
      auto json = (*store)->chain.after_of(store_db_, ref, row.id);
      if (!json.ok()) return Error{"delta " + std::to_string(row.id) + ": " + json.error()};
      row.before = Value{SQLITE_TEXT, std::move(*json)};
      row.before_ref.reset();
    }
    return ok_status();
  }

  // After this, every BLOB value of `rows` is prefixed or names a
  // dictionary the file holds with the same bytes.
  Status resolve_dictionaries(std::vector<Row>& rows) {
    for (auto& row : rows) {
      for (Value* value : {&row.before, &row.after}) {
        if (value->type != SQLITE_BLOB || StateCodec::is_prefixed(value->bytes)) continue;
        auto id = dictionary_of(value->bytes);
        if (id == 0) continue;
        auto dictionary = copy_dictionary(id);
        if (!dictionary.ok()) return Error{"delta " + std::to_string(row.id) + ": " + dictionary.error()};
        if (*dictionary == Dictionary::shared) continue;
        auto store = store_states();
        if (!store.ok()) return Error{store.error()};
        auto json = (*store)->codec.decode(value->bytes);
        if (!json.ok()) return Error{"delta " + std::to_string(row.id) + ": " + json.error()};
        *value = Value{SQLITE_TEXT, std::move(*json)};
      }
    }
    return ok_status();
  }

 private:
  enum class Dictionary { shared, clashes };

  // Makes the store's dictionary `id` available in the file under the same
  // id, or says that the file's dictionary of that id is another.
  Result<Dictionary> copy_dictionary(std::uint32_t id) {
    if (auto found = dictionaries_.find(id); found != dictionaries_.end()) return found->second;
    auto from_store = prepare(store_db_,
                              "SELECT trained_at, samples, bytes FROM state_dictionaries WHERE id = ?1");
    if (!from_store.ok()) return Error{from_store.error()};
    sqlite3_bind_int64(from_store->get(), 1, id);
    if (sqlite3_step(from_store->get()) != SQLITE_ROW) {
      return Error{"the store has no state dictionary " + std::to_string(id)};
    }
    Value bytes = read_value(from_store->get(), 2);
    auto in_file = prepare(file_.db(), "SELECT bytes FROM state_dictionaries WHERE id = ?1");
    if (!in_file.ok()) return Error{in_file.error()};
    sqlite3_bind_int64(in_file->get(), 1, id);
    Dictionary result = Dictionary::shared;
    if (sqlite3_step(in_file->get()) == SQLITE_ROW) {
      if (read_value(in_file->get(), 0).bytes != bytes.bytes) result = Dictionary::clashes;
    } else {
      // Committed on its own, before the batch: a dictionary no row names
      // yet harms nothing, and the batch's rows find it wherever they land.
      auto insert = prepare(file_.db(),
                            "INSERT INTO state_dictionaries (id, trained_at, samples, bytes) "
                            "VALUES (?1, ?2, ?3, ?4)");
      if (!insert.ok()) return Error{insert.error()};
      sqlite3_bind_int64(insert->get(), 1, id);
      sqlite3_bind_value(insert->get(), 2, sqlite3_column_value(from_store->get(), 0));
      sqlite3_bind_value(insert->get(), 3, sqlite3_column_value(from_store->get(), 1));
      sqlite3_bind_blob64(insert->get(), 4, bytes.bytes.data(), bytes.bytes.size(), SQLITE_STATIC);
      if (sqlite3_step(insert->get()) != SQLITE_DONE) {
        return Error{sqlite_error(file_.db(), "copy state dictionary")};
      }
    }
    dictionaries_.emplace(id, result);
    return result;
  }

  // The store's states read as JSON text, loaded when first needed.
  struct StoreStates {
    StateCodec codec;
    StateChain chain{codec, 4u << 20};
  };
  Result<StoreStates*> store_states() {
    if (!store_states_) {
      auto states = std::make_unique<StoreStates>();
      if (auto st = states->codec.load(store_db_); !st.ok()) return Error{st.error()};
      store_states_ = std::move(states);
    }
    return store_states_.get();
  }

  sqlite3* store_db_;
  ArchiveFile& file_;
  std::map<std::uint32_t, Dictionary> dictionaries_;
  std::unique_ptr<StoreStates> store_states_;
};

// Writes prepared rows into their file: touches the file alone, so it may
// run on another thread than the store's.
class BatchWriter {
 public:
  explicit BatchWriter(ArchiveFile& file) : file_(file), file_times_(file.time_columns()) {}

  // A before state that is the text of the after state of its session's
  // row before it in the batch becomes a reference to that row, as a store
  // with compression on keeps it (a store with it off hands every before
  // state over as text): one state to encode and keep instead of two.
  static void reference_repeated_states(std::vector<Row>& rows) {
    std::unordered_map<std::string_view, const Row*> last_of_session;
    for (auto& row : rows) {
      auto [found, added] = last_of_session.try_emplace(row.session_id, &row);
      if (added) continue;
      const Row& previous = *found->second;
      found->second = &row;
      if (row.before.type == SQLITE_TEXT && previous.after.type == SQLITE_TEXT &&
          row.before.bytes == previous.after.bytes) {
        row.before = Value{};
        row.before_ref = previous.id;
      }
    }
  }

  // A dictionary for the file's TEXT states, when it has none and the batch
  // brings enough of them to train one worth having. A failed training
  // leaves the states TEXT, which every reader takes.
  void train_if_needed(const std::vector<Row>& rows) {
    if (file_.codec().has_dictionary()) return;
    std::vector<std::string> samples;
    for (const auto& row : rows) {
      for (const Value* value : {&row.before, &row.after}) {
        if (value->type == SQLITE_TEXT && samples.size() < kMaxArchiveTrainingStates) {
          samples.push_back(value->bytes);
        }
      }
    }
    if (samples.size() < kMinArchiveTrainingStates) return;
    (void)file_.codec().train(file_.db(), samples);
  }

  Status insert(const std::vector<Row>& rows) {
    auto stmt = prepare(file_.db(),
                        "INSERT OR IGNORE INTO session_deltas (id, session_id, delta_type, "
                        "before_state, after_state, timestamp, created_at, origin, gap, "
                        "before_ref) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)");
    if (!stmt.ok()) return Error{stmt.error()};
    sqlite3_stmt* s = stmt->get();
    for (const auto& row : rows) {
      Use use(s);
      sqlite3_bind_int64(s, 1, row.id);
      bind_text(s, 2, row.session_id);
      bind_text(s, 3, row.delta_type);
      bind_value(s, 4, row.before);
      bind_value(s, 5, row.after);
      file_times_.bind(s, 6, row.timestamp);
      file_times_.bind(s, 7, row.created_at);
      bind_text(s, 8, row.origin);
      sqlite3_bind_int(s, 9, row.gap);
      if (row.before_ref) {
        sqlite3_bind_int64(s, 10, *row.before_ref);
      } else {
        sqlite3_bind_null(s, 10);
      }
      if (sqlite3_step(s) != SQLITE_DONE) return Error{sqlite_error(file_.db(), "insert")};
    }
    return ok_status();
  }

 private:
  // TEXT is encoded with the file's dictionary when it has one; a BLOB goes
  // as it is (BatchPreparer made sure the file reads it).
  void bind_value(sqlite3_stmt* s, int index, const Value& value) {
    if (value.type == SQLITE_NULL) {
      sqlite3_bind_null(s, index);
    } else if (value.type == SQLITE_BLOB) {
      sqlite3_bind_blob64(s, index, value.bytes.data(), value.bytes.size(), SQLITE_STATIC);
    } else if (file_.codec().has_dictionary()) {
      auto blob = file_.codec().encode(value.bytes);
      sqlite3_bind_blob64(s, index, blob.data(), blob.size(), SQLITE_TRANSIENT);
    } else {
      sqlite3_bind_text64(s, index, value.bytes.data(), value.bytes.size(), SQLITE_STATIC, SQLITE_UTF8);
    }
  }

  ArchiveFile& file_;
  TimeColumns file_times_;
};

// Where the last batch read ended: the next one starts after it even while
// that batch is still in the store (being written, not yet deleted).
struct BatchCursor {
  std::string created_at;
  std::int64_t id = 0;
};

// The rows after `after` (when given) as `where` orders them: the cursor's
// time bounds the index range, the row value picks within equal times.
std::string after_cursor_sql(const std::optional<BatchCursor>& after) {
  return after ? " AND created_at >= ?8 AND (created_at, id) > (?8, ?9)" : "";
}
void bind_cursor(sqlite3_stmt* s, TimeColumns times, const std::optional<BatchCursor>& after) {
  if (!after) return;
  times.bind(s, 8, after->created_at);
  sqlite3_bind_int64(s, 9, after->id);
}

// The batch's rows, oldest first: at most `max_rows`, and no more once their
// stored values reach `max_bytes` (at least one row).
Result<std::vector<Row>> read_batch(sqlite3* db, TimeColumns times, const ArchivedBatch& batch,
                                    const std::optional<BatchCursor>& after,
                                    const ArchiveOptions& options) {
  std::string sql =
      std::string("SELECT id, session_id, delta_type, before_state, after_state, timestamp, "
                  "created_at, origin, gap, ") +
      (store_has_before_ref(db) ? "before_ref" : "NULL") +
      " FROM session_deltas WHERE created_at >= ?1 AND created_at < ?2 AND id <= ?3" +
      after_cursor_sql(after) + " ORDER BY created_at, id LIMIT ?4";
  auto stmt = prepare(db, sql.c_str());
  if (!stmt.ok()) return Error{stmt.error()};
  sqlite3_stmt* s = stmt->get();
  times.bind(s, 1, batch.from);
  times.bind(s, 2, batch.to);
  sqlite3_bind_int64(s, 3, batch.hold);
  sqlite3_bind_int64(s, 4, std::max<std::int64_t>(options.batch_rows, 1));
  bind_cursor(s, times, after);
  std::vector<Row> rows;
  std::int64_t bytes = 0;
  int rc = SQLITE_DONE;
  while (bytes < options.batch_bytes && (rc = sqlite3_step(s)) == SQLITE_ROW) {
    Row row;
    row.id = sqlite3_column_int64(s, 0);
    row.session_id = column_text(s, 1);
    row.delta_type = column_text(s, 2);
    row.before = read_value(s, 3);
    row.after = read_value(s, 4);
    row.timestamp = TimeColumns::read(s, 5);
    row.created_at = TimeColumns::read(s, 6);
    row.origin = column_text(s, 7);
    row.gap = sqlite3_column_int(s, 8);
    if (sqlite3_column_type(s, 9) != SQLITE_NULL && row.before.type == SQLITE_NULL) {
      row.before_ref = sqlite3_column_int64(s, 9);
    }
    bytes += static_cast<std::int64_t>(row.before.bytes.size() + row.after.bytes.size());
    rows.push_back(std::move(row));
  }
  if (rc != SQLITE_DONE && rc != SQLITE_ROW) return Error{sqlite_error(db, "read deltas to archive")};
  return rows;
}

// The created_at of the first delta due (not held, after `after`), if any.
Result<std::optional<std::string>> oldest_due(sqlite3* db, TimeColumns times,
                                              const std::string& bound, std::int64_t hold,
                                              const std::optional<BatchCursor>& after) {
  std::string sql = "SELECT created_at FROM session_deltas WHERE created_at < ?1 AND id <= ?2" +
                    after_cursor_sql(after) + " ORDER BY created_at, id LIMIT 1";
  auto stmt = prepare(db, sql.c_str());
  if (!stmt.ok()) return Error{stmt.error()};
  times.bind(stmt->get(), 1, bound);
  sqlite3_bind_int64(stmt->get(), 2, hold);
  bind_cursor(stmt->get(), times, after);
  int rc = sqlite3_step(stmt->get());
  if (rc == SQLITE_DONE) return std::optional<std::string>();
  if (rc != SQLITE_ROW) return Error{sqlite_error(db, "oldest delta due")};
  return std::optional<std::string>(TimeColumns::read(stmt->get(), 0));
}

// A batch read from the store and made ready for its file (BatchPreparer),
// its file open: what write_prepared() needs, and nothing of the store.
struct PreparedBatch {
  ArchivedBatch batch;
  std::vector<Row> rows;
  ArchiveFile file;
};

// Step 1 on the store's thread: the next batch due after `after`, read and
// prepared. nullopt when nothing (not held) is due.
Result<std::optional<PreparedBatch>> prepare_next_batch(Store& store, const ArchiveOptions& options,
                                                        TimePoint older_than,
                                                        const std::optional<BatchCursor>& after) {
  sqlite3* db = store.connection();
  std::string bound = format_timestamp(older_than);
  ArchivedBatch batch;
  batch.hold = store.held_after().value_or(std::numeric_limits<std::int64_t>::max());
  auto oldest = oldest_due(db, store.time_columns(), bound, batch.hold, after);
  if (!oldest.ok()) return Error{oldest.error()};
  if (!*oldest) return std::optional<PreparedBatch>();
  batch.month = month_of(**oldest);
  batch.from = month_start(batch.month);
  batch.to = std::min(next_month_start(batch.month), bound);
  auto rows = read_batch(db, store.time_columns(), batch, after, options);
  if (!rows.ok()) return Error{rows.error()};
  if (rows->empty()) return Error{"no deltas of " + batch.month + " to archive, yet one is due"};
  batch.rows = static_cast<std::int64_t>(rows->size());
  batch.last_created_at = rows->back().created_at;
  batch.last_id = rows->back().id;

  if (auto s = make_private_directories(options.directory); !s.ok()) return Error{s.error()};
  batch.path = options.directory + "/" + archive_file_name(batch.month);
  auto file = ArchiveFile::open_for_writing(batch.path, batch.month, &batch.file_created);
  if (!file.ok()) return Error{file.error()};
  BatchPreparer preparer(db, *file);
  if (auto s = preparer.materialise_references(*rows); !s.ok()) {
    return Error{batch.path + ": " + s.error()};
  }
  if (auto s = preparer.resolve_dictionaries(*rows); !s.ok()) {
    return Error{batch.path + ": " + s.error()};
  }
  return std::optional<PreparedBatch>(
      PreparedBatch{std::move(batch), std::move(*rows), std::move(*file)});
}

// Step 2 on any thread: the rows into their file in one transaction, then
// the file (and its directory when the file is new) fsync'd. Frees the rows.
Status write_prepared(PreparedBatch& prepared, const std::string& directory) {
  const ArchivedBatch& batch = prepared.batch;
  ArchiveFile& file = prepared.file;
  BatchWriter writer(file);
  BatchWriter::reference_repeated_states(prepared.rows);
  writer.train_if_needed(prepared.rows);
  if (auto s = exec(file.db(), "BEGIN IMMEDIATE", batch.path); !s.ok()) return s;
  if (auto s = writer.insert(prepared.rows); !s.ok()) {
    (void)exec(file.db(), "ROLLBACK", batch.path);
    return Error{batch.path + ": " + s.error()};
  }
  // Rows come in created_at order: the last is the newest.
  if (auto s = file.note_newest_created_at(batch.last_created_at); !s.ok()) {
    (void)exec(file.db(), "ROLLBACK", batch.path);
    return s;
  }
  if (auto s = exec(file.db(), "COMMIT", batch.path); !s.ok()) {
    (void)exec(file.db(), "ROLLBACK", batch.path);
    return s;
  }
  prepared.rows = {};
  // synchronous = FULL has the commit on disk; the explicit fsyncs say so
  // without relying on the file's settings, and make a new file's name durable.
  if (auto s = fsync_path(batch.path, false); !s.ok()) return s;
  if (batch.file_created) {
    if (auto s = fsync_path(directory, true); !s.ok()) return s;
  }
  return ok_status();
}

}  // namespace

Result<std::optional<ArchivedBatch>> write_next_batch(Store& store, const ArchiveOptions& options,
                                                      TimePoint older_than) {
  auto prepared = prepare_next_batch(store, options, older_than, std::nullopt);
  if (!prepared.ok()) return Error{prepared.error()};
  if (!*prepared) return std::optional<ArchivedBatch>();
  if (auto s = write_prepared(**prepared, options.directory); !s.ok()) return Error{s.error()};
  return std::optional<ArchivedBatch>(std::move((*prepared)->batch));
}

Result<std::int64_t> delete_archived_batch(Store& store, const ArchivedBatch& batch) {
  const TimeColumns times = store.time_columns();
  // The batch's last created_at bounds the range too: SQLite bounds an index
  // range by one term on each side and does not take the row value for it,
  // so with the month's end as the bound each query of the deletion walked
  // the rest of the month (every row read has created_at < to).
  return store.delete_deltas_where(
      "created_at >= ?1 AND created_at <= ?2 AND id <= ?3 AND (created_at, id) <= (?2, ?4)",
      [&](sqlite3_stmt* stmt) {
        times.bind(stmt, 1, batch.from);
        times.bind(stmt, 2, batch.last_created_at);
        sqlite3_bind_int64(stmt, 3, batch.hold);
        sqlite3_bind_int64(stmt, 4, batch.last_id);
      },
      "delete archived deltas");
}

// The batches go through three steps: prepared (store thread), written
// (its own thread), deleted (store thread). A batch's file write runs beside
// the deletion of the batch before it, which its file already holds durably;
// the next batch is prepared only once the write has finished, so the
// store's thread and the writing thread never share a connection or a file.
Result<ArchiveRun> archive_expired(Store& store, const ArchiveOptions& options,
                                   TimePoint older_than, TimePoint now) {
  ArchiveRun run;
  std::optional<ArchivedBatch> durable;  // in its file, still in the store
  std::optional<BatchCursor> after;
  for (;;) {
    auto next = prepare_next_batch(store, options, older_than, after);
    if (!next.ok()) return Error{next.error()};
    std::future<Status> writing;
    if (*next) {
      after = BatchCursor{(*next)->batch.last_created_at, (*next)->batch.last_id};
      writing = std::async(std::launch::async, write_prepared, std::ref(**next),
                           std::cref(options.directory));
    }
    Status deleted_ok = ok_status();
    if (durable) {
      if (options.after_write) options.after_write();
      auto deleted = delete_archived_batch(store, *durable);
      if (!deleted.ok()) {
        deleted_ok = Error{deleted.error()};
      } else if (*deleted == 0) {
        // Nothing else writes the store meanwhile: none deleted would loop for ever.
        deleted_ok = Error{"archived deltas of " + durable->month + " were not deleted"};
      } else {
        run.moved += *deleted;
        if (run.months.empty() || run.months.back() != durable->month) {
          run.months.push_back(durable->month);
        }
      }
    }
    // Whatever happened here, the write in flight finishes before returning.
    Status written = writing.valid() ? writing.get() : ok_status();
    if (!deleted_ok.ok()) return Error{deleted_ok.error()};
    if (!written.ok()) return Error{written.error()};
    if (!*next) break;
    durable = std::move((*next)->batch);
  }
  auto sealed = seal_archives(store, options, older_than);
  if (!sealed.ok()) return Error{sealed.error()};
  run.sealed = *sealed;
  auto removed = remove_old_archives(options, now);
  if (!removed.ok()) return Error{removed.error()};
  run.removed = *removed;
  return run;
}

}  // namespace deltatap
