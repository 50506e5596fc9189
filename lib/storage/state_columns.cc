#include "storage/state_columns.h"

#include <algorithm>
#include <string>
#include <unordered_map>
#include <utility>

#include "base/digest.h"

namespace deltatap {

std::string stored_before_sql(std::string_view table) {
  std::string t(table);
  return "CASE WHEN " + t + ".before_ref IS NULL THEN " + t +
         ".before_state ELSE (SELECT ref.after_state FROM session_deltas ref WHERE ref.id = " + t +
         ".before_ref) END";
}

std::string json_before_sql(std::string_view table) {
  return "deltatap_json(" + stored_before_sql(table) + ")";
}

std::string json_after_sql(std::string_view table) {
  return "deltatap_json(" + std::string(table) + ".after_state)";
}

namespace {

std::string row_error(std::int64_t row_id, std::string_view what) {
  return "session_deltas row " + std::to_string(row_id) + ": " + std::string(what);
}

}  // namespace

Result<sqlite3_stmt*> StateColumns::cached(sqlite3* db, Statement& slot, const char* sql) {
  if (!slot.get()) {
    sqlite3_stmt* raw = nullptr;
    if (sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, &raw, nullptr) != SQLITE_OK) {
      return Error{sqlite_error(db, "state columns")};
    }
    slot = Statement(raw);
  }
  return slot.get();
}

Status StateColumns::open(sqlite3* db) {
  if (auto s = codec_.load(db); !s.ok()) return s;
  sqlite3_stmt* raw = nullptr;
  // The partial index answers this without a scan.
  if (sqlite3_prepare_v2(db,
                         "SELECT EXISTS (SELECT 1 FROM session_deltas WHERE before_ref IS NOT NULL)",
                         -1, &raw, nullptr) != SQLITE_OK) {
    return Error{sqlite_error(db, "state columns")};
  }
  Statement stmt(raw);
  if (sqlite3_step(raw) != SQLITE_ROW) return Error{sqlite_error(db, "state columns")};
  refs_may_exist_ = sqlite3_column_int(raw, 0) != 0;
  // Without a dictionary no value was ever encoded (encode() is only used
  // once one exists), and without references there is nothing to undo.
  converted_ = mode_ == Compression::off && !codec_.has_dictionary() && !refs_may_exist_;
  return ok_status();
}

void StateColumns::close() {
  highest_ = Statement();
  resolve_ = Statement();
  scan_ = Statement();
  update_ = Statement();
}

void StateColumns::set_mode(Compression mode) {
  if (mode == mode_) return;
  mode_ = mode;
  convert_after_ = 0;
  converted_ = false;
  table_sampled_ = false;
}

// --- writing -------------------------------------------------------------------

void StateColumns::note_json(std::string_view json) {
  if (ring_.size() < kTrainSamples) {
    ring_.emplace_back(json);
  } else {
    ring_[ring_next_].assign(json);  // reuses the slot's memory
    ring_next_ = (ring_next_ + 1) % kTrainSamples;
  }
  if (!codec_.has_dictionary()) ++seen_without_dictionary_;
}

void StateColumns::note_encoded(std::size_t json_bytes, std::size_t encoded_bytes) {
  json_bytes_ += json_bytes;
  encoded_bytes_ += encoded_bytes;
  if (baseline_ == 0) {
    baseline_json_ += json_bytes;
    baseline_encoded_ += encoded_bytes;
    if (++baseline_states_ >= kBaselineStates && baseline_json_ > 0) {
      baseline_ = static_cast<double>(baseline_encoded_) / static_cast<double>(baseline_json_);
    }
    return;
  }
  window_json_ += json_bytes;
  window_encoded_ += encoded_bytes;
  if (++window_states_ < kRatioWindow) return;
  double ratio = window_json_ ? static_cast<double>(window_encoded_) / window_json_ : 0;
  if (ratio > kRetrainFactor * baseline_) retrain_due_ = true;
  window_json_ = window_encoded_ = 0;
  window_states_ = 0;
}

void StateColumns::bind_state(sqlite3_stmt* stmt, int index,
                              const std::optional<std::string>& state) {
  if (!state) {
    sqlite3_bind_null(stmt, index);
    return;
  }
  if (mode_ != Compression::zstd) {
    bind_text(stmt, index, *state);
    return;
  }
  note_json(*state);
  if (!codec_.has_dictionary()) {
    bind_text(stmt, index, *state);
    return;
  }
  std::string encoded = codec_.encode(*state);
  note_encoded(state->size(), encoded.size());
  sqlite3_bind_blob64(stmt, index, encoded.data(), encoded.size(), SQLITE_TRANSIENT);
}

void StateColumns::bind_before(sqlite3_stmt* stmt, int state_index, int ref_index,
                               const std::optional<std::string>& before, std::int64_t ref) {
  if (ref > 0) {
    sqlite3_bind_null(stmt, state_index);
    sqlite3_bind_int64(stmt, ref_index, ref);
    refs_may_exist_ = true;
    ++references_;
    return;
  }
  bind_state(stmt, state_index, before);
  sqlite3_bind_null(stmt, ref_index);
}

Result<std::vector<std::int64_t>> StateColumns::references(sqlite3* db, SessionLedger* ledger,
                                                           std::span<const StoredDelta> rows,
                                                           bool predict_ids,
                                                           std::int64_t* first_predicted) {
  std::vector<std::int64_t> refs(rows.size(), 0);
  *first_predicted = 0;
  if (mode_ != Compression::zstd || !ledger) return refs;
  std::int64_t next_id = 0;  // the id the next row without one will get; 0: not known
  bool all_new = !rows.empty() && std::all_of(rows.begin(), rows.end(), [](const StoredDelta& row) {
    return row.id == 0;
  });
  if (predict_ids && all_new) {
    auto stmt = cached(db, highest_,
                       "SELECT MAX(COALESCE((SELECT seq FROM sqlite_sequence WHERE name = "
                       "'session_deltas'), 0), COALESCE((SELECT MAX(id) FROM session_deltas), 0))");
    if (!stmt.ok()) return Error{stmt.error()};
    Use use(*stmt);
    if (sqlite3_step(*use) != SQLITE_ROW) return Error{sqlite_error(db, "next delta id")};
    next_id = sqlite3_column_int64(*use, 0) + 1;
    *first_predicted = next_id;
  }
  // A session's last row so far in this batch: its id (0: not known before
  // the insert) and its after state (null: none).
  struct Last {
    std::int64_t id = 0;
    const std::string* after = nullptr;
  };
  std::unordered_map<std::string_view, Last> batch;
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const Delta& delta = rows[i].delta;
    if (delta.type != DeltaType::created && delta.before) {
      auto found = batch.find(delta.session_id);
      if (found != batch.end()) {
        const Last& last = found->second;
        if (last.id > 0 && last.after && *last.after == *delta.before) refs[i] = last.id;
      } else {
        auto row = ledger->row(db, delta.session_id);
        if (!row.ok()) return Error{row.error()};
        if (*row && (*row)->live && (*row)->last_id > 0 && (*row)->state_digest &&
            *(*row)->state_digest == digest_of(*delta.before)) {
          refs[i] = (*row)->last_id;
        }
      }
    }
    std::int64_t id = rows[i].id > 0 ? rows[i].id : (next_id ? next_id++ : 0);
    batch[delta.session_id] = Last{id, delta.after ? &*delta.after : nullptr};
  }
  return refs;
}

Status StateColumns::between_batches(sqlite3* db) {
  if (auto result = trainer_.poll()) {
    if (!result->ok()) {
      last_training_error_ = result->error();
      // Not again at once: after as many states again.
      seen_without_dictionary_ = 0;
      retrain_due_ = false;
      window_states_ = 0;
    } else {
      auto id = codec_.add_dictionary(db, **result, trainer_.samples());
      if (!id.ok()) return Error{id.error()};
      last_training_error_.clear();
      seen_without_dictionary_ = 0;
      retrain_due_ = false;
      baseline_ = 0;
      baseline_json_ = baseline_encoded_ = 0;
      baseline_states_ = 0;
      window_json_ = window_encoded_ = 0;
      window_states_ = 0;
      // Rows written as TEXT while there was none can be encoded now.
      convert_after_ = 0;
      converted_ = false;
    }
  }
  if (mode_ != Compression::zstd || trainer_.busy()) return ok_status();
  bool due = codec_.has_dictionary() ? retrain_due_ : seen_without_dictionary_ >= kTrainAfter;
  if (due) trainer_.start(ring_);  // a copy: the ring goes on filling
  return ok_status();
}

// A store switched to zstd with TEXT rows and no dictionary yet: the newest
// stored states are the samples, rather than waiting for new ones.
Status StateColumns::start_training_from_table(sqlite3* db) {
  if (table_sampled_ || trainer_.busy() || codec_.has_dictionary()) return ok_status();
  table_sampled_ = true;  // once per switch: later samples come from the writes
  sqlite3_stmt* raw = nullptr;
  if (sqlite3_prepare_v2(db,
                         "SELECT after_state FROM session_deltas WHERE after_state IS NOT NULL "
                         "ORDER BY id DESC LIMIT ?1",
                         -1, &raw, nullptr) != SQLITE_OK) {
    return Error{sqlite_error(db, "state columns")};
  }
  Statement stmt(raw);
  sqlite3_bind_int64(raw, 1, static_cast<std::int64_t>(kTrainSamples));
  std::vector<std::string> samples;
  int rc;
  while ((rc = sqlite3_step(raw)) == SQLITE_ROW) {
    auto value = read(raw, 0, 0);
    if (!value.ok()) return Error{value.error()};
    if (*value) samples.push_back(std::move(**value));
  }
  if (rc != SQLITE_DONE) return Error{sqlite_error(db, "state columns")};
  if (samples.size() + ring_.size() < kTrainAfter) return ok_status();
  for (const auto& sample : ring_) {
    if (samples.size() >= kTrainSamples) break;
    samples.push_back(sample);
  }
  trainer_.start(std::move(samples));
  return ok_status();
}

// --- reading -------------------------------------------------------------------

Result<std::optional<std::string>> StateColumns::read(sqlite3_stmt* stmt, int column,
                                                      std::int64_t row_id) {
  switch (sqlite3_column_type(stmt, column)) {
    case SQLITE_NULL:
      return std::optional<std::string>();
    case SQLITE_BLOB: {
      auto bytes = static_cast<const char*>(sqlite3_column_blob(stmt, column));
      std::string_view value(bytes ? bytes : "",
                             static_cast<std::size_t>(sqlite3_column_bytes(stmt, column)));
      if (!StateCodec::is_encoded(value)) return Error{row_error(row_id, "a BLOB that is not an encoded state")};
      auto decoded = codec_.decode(value);
      if (!decoded.ok()) return Error{row_error(row_id, decoded.error())};
      return std::optional<std::string>(std::move(*decoded));
    }
    default:
      return std::optional<std::string>(column_text(stmt, column));
  }
}

Result<std::optional<std::string>> StateColumns::read_before(sqlite3* db, sqlite3_stmt* stmt,
                                                             int column, int ref_column,
                                                             std::int64_t row_id) {
  if (sqlite3_column_type(stmt, ref_column) == SQLITE_NULL) return read(stmt, column, row_id);
  return resolve(db, sqlite3_column_int64(stmt, ref_column), row_id);
}

Result<std::optional<std::string>> StateColumns::resolve(sqlite3* db, std::int64_t ref,
                                                         std::int64_t row_id) {
  auto resolve = cached(db, resolve_, "SELECT after_state FROM session_deltas WHERE id = ?1");
  if (!resolve.ok()) return Error{resolve.error()};
  Use use(*resolve);
  sqlite3_bind_int64(*use, 1, ref);
  int rc = sqlite3_step(*use);
  if (rc == SQLITE_DONE || (rc == SQLITE_ROW && sqlite3_column_type(*use, 0) == SQLITE_NULL)) {
    return Error{row_error(row_id, "before_ref " + std::to_string(ref) +
                                       " names no row with an after state")};
  }
  if (rc != SQLITE_ROW) return Error{sqlite_error(db, "resolve before_ref")};
  return read(*use, 0, row_id);
}

Result<std::string> StateColumns::verify(sqlite3* db) {
  // TEXT needs no decoding (and is not copied); a reference needs its row to
  // exist with an after state, which that row's own turn decodes.
  sqlite3_stmt* raw = nullptr;
  if (sqlite3_prepare_v2(db,
                         "SELECT d.id, typeof(d.before_state), typeof(d.after_state), "
                         "d.before_ref, d.before_state, d.after_state, "
                         "d.before_ref IS NULL OR EXISTS (SELECT 1 FROM session_deltas ref "
                         "WHERE ref.id = d.before_ref AND ref.after_state IS NOT NULL) "
                         "FROM session_deltas d ORDER BY d.id",
                         -1, &raw, nullptr) != SQLITE_OK) {
    return Error{sqlite_error(db, "check states")};
  }
  Statement stmt(raw);
  int rc;
  while ((rc = sqlite3_step(raw)) == SQLITE_ROW) {
    std::int64_t id = sqlite3_column_int64(raw, 0);
    bool has_ref = sqlite3_column_type(raw, 3) != SQLITE_NULL;
    std::string_view before_type = reinterpret_cast<const char*>(sqlite3_column_text(raw, 1));
    if (has_ref && before_type != "null") {
      return row_error(id, "both before_state and before_ref are set");
    }
    if (sqlite3_column_int(raw, 6) == 0) {
      return row_error(id, "before_ref " + std::to_string(sqlite3_column_int64(raw, 3)) +
                               " names no row with an after state");
    }
    for (int column : {4, 5}) {
      if (sqlite3_column_type(raw, column) != SQLITE_BLOB) continue;
      auto value = read(raw, column, id);
      if (!value.ok()) return value.error();
    }
  }
  if (rc != SQLITE_DONE) return Error{sqlite_error(db, "check states")};
  return std::string("ok");
}

// --- deleting and converting ------------------------------------------------------

Status StateColumns::materialize_before_delete(sqlite3* db, const std::string& where,
                                               const std::function<void(sqlite3_stmt*)>& bind) {
  if (!refs_may_exist_) return ok_status();
  // `where` reads the outer row's columns unqualified; the parameters are
  // numbered, so both of its uses take the same values.
  std::string sql =
      "UPDATE session_deltas SET before_state = (SELECT ref.after_state FROM session_deltas ref "
      "WHERE ref.id = session_deltas.before_ref), before_ref = NULL "
      "WHERE before_ref IS NOT NULL AND before_ref IN (SELECT id FROM session_deltas WHERE " +
      where + ") AND NOT (" + where + ")";
  sqlite3_stmt* raw = nullptr;
  if (sqlite3_prepare_v2(db, sql.c_str(), -1, &raw, nullptr) != SQLITE_OK) {
    return Error{sqlite_error(db, "materialize references")};
  }
  Statement stmt(raw);
  bind(raw);
  if (sqlite3_step(raw) != SQLITE_DONE) return Error{sqlite_error(db, "materialize references")};
  return ok_status();
}

Result<std::int64_t> StateColumns::convert_step(sqlite3* db, std::size_t max_rows) {
  if (converted_ || max_rows == 0) return std::int64_t{0};
  bool encode = mode_ == Compression::zstd;
  if (encode && !codec_.has_dictionary()) {
    // Nothing to encode with yet; a dictionary's arrival restarts the pass.
    if (auto s = start_training_from_table(db); !s.ok()) return Error{s.error()};
    return std::int64_t{0};
  }
  struct Change {
    std::int64_t id;
    std::optional<std::string> before, after;  // the values to store (encoded or JSON)
    bool before_blob, after_blob;
  };
  std::vector<Change> changes;
  std::int64_t looked = 0;
  {
    auto scan = cached(db, scan_,
                       "SELECT id, before_state, after_state, before_ref FROM session_deltas "
                       "WHERE id > ?1 ORDER BY id LIMIT ?2");
    if (!scan.ok()) return Error{scan.error()};
    Use use(*scan);
    sqlite3_bind_int64(*use, 1, convert_after_);
    sqlite3_bind_int64(*use, 2, static_cast<std::int64_t>(max_rows));
    int rc;
    while ((rc = sqlite3_step(*use)) == SQLITE_ROW) {
      ++looked;
      std::int64_t id = sqlite3_column_int64(*use, 0);
      convert_after_ = id;
      int before_type = sqlite3_column_type(*use, 1);
      int after_type = sqlite3_column_type(*use, 2);
      bool has_ref = sqlite3_column_type(*use, 3) != SQLITE_NULL;
      bool wrong_form = encode ? (before_type == SQLITE_TEXT || after_type == SQLITE_TEXT)
                               : (before_type == SQLITE_BLOB || after_type == SQLITE_BLOB || has_ref);
      if (!wrong_form) continue;
      auto before = read_before(db, *use, 1, 3, id);
      if (!before.ok()) return Error{before.error()};
      auto after = read(*use, 2, id);
      if (!after.ok()) return Error{after.error()};
      Change change{id, std::nullopt, std::nullopt, false, false};
      if (encode) {
        // A reference stays one; a TEXT value is encoded.
        if (!has_ref && *before) {
          change.before = codec_.encode(**before);
          change.before_blob = true;
          note_encoded((*before)->size(), change.before->size());
        }
        if (*after) {
          change.after = codec_.encode(**after);
          change.after_blob = true;
          note_encoded((*after)->size(), change.after->size());
        }
      } else {
        change.before = std::move(*before);
        change.after = std::move(*after);
      }
      changes.push_back(std::move(change));
    }
    if (rc != SQLITE_DONE) return Error{sqlite_error(db, "convert states")};
  }
  if (looked == 0) {
    converted_ = true;
    return std::int64_t{0};
  }
  if (changes.empty()) return looked;
  auto update = cached(db, update_,
                       "UPDATE session_deltas SET before_state = CASE WHEN ?4 THEN before_state "
                       "ELSE ?2 END, after_state = ?3, before_ref = CASE WHEN ?4 THEN before_ref "
                       "ELSE NULL END WHERE id = ?1");
  if (!update.ok()) return Error{update.error()};
  if (sqlite3_exec(db, "BEGIN", nullptr, nullptr, nullptr) != SQLITE_OK) {
    return Error{sqlite_error(db, "convert states")};
  }
  Status result = ok_status();
  for (const auto& change : changes) {
    Use use(*update);
    sqlite3_bind_int64(*use, 1, change.id);
    auto bind_value = [&](int index, const std::optional<std::string>& value, bool blob) {
      if (!value) {
        sqlite3_bind_null(*use, index);
      } else if (blob) {
        sqlite3_bind_blob64(*use, index, value->data(), value->size(), SQLITE_STATIC);
      } else {
        bind_text(*use, index, *value);
      }
    };
    bind_value(2, change.before, change.before_blob);
    bind_value(3, change.after, change.after_blob);
    // Encoding keeps a reference and a NULL as they are.
    sqlite3_bind_int(*use, 4, encode && !change.before ? 1 : 0);
    if (sqlite3_step(*use) != SQLITE_DONE) {
      result = Error{sqlite_error(db, "convert states")};
      break;
    }
  }
  if (sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr) != SQLITE_OK && result.ok()) {
    result = Error{sqlite_error(db, "convert states")};
  }
  if (!result.ok()) return Error{result.error()};
  return looked;
}

StateColumnsStats StateColumns::stats(sqlite3* db) const {
  StateColumnsStats stats;
  stats.mode = mode_;
  stats.newest_dictionary = codec_.newest_dictionary();
  sqlite3_stmt* raw = nullptr;
  if (sqlite3_prepare_v2(db, "SELECT COUNT(*) FROM state_dictionaries", -1, &raw, nullptr) ==
      SQLITE_OK) {
    Statement stmt(raw);
    if (sqlite3_step(raw) == SQLITE_ROW) stats.dictionaries = sqlite3_column_int64(raw, 0);
  }
  stats.json_bytes = json_bytes_;
  stats.encoded_bytes = encoded_bytes_;
  stats.references = references_;
  stats.training = trainer_.busy();
  stats.converted = converted_;
  stats.last_training_error = last_training_error_;
  return stats;
}

}  // namespace deltatap
