#include "storage/state_columns.h"

#include <algorithm>
#include <string>
#include <unordered_map>
#include <utility>

#include "base/digest.h"

namespace deltatap {

std::string json_before_sql(std::string_view table) {
  std::string t(table);
  return "CASE WHEN " + t + ".before_ref IS NULL THEN deltatap_json(" + t +
         ".before_state) ELSE (SELECT deltatap_after(ref.after_state, ref.before_state, "
         "ref.before_ref) FROM session_deltas ref WHERE ref.id = " + t + ".before_ref) END";
}

std::string json_after_sql(std::string_view table) {
  std::string t(table);
  return "deltatap_after(" + t + ".after_state, " + t + ".before_state, " + t + ".before_ref)";
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
  chain_.close();
  highest_ = Statement();
  depth_ = Statement();
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

void StateColumns::note_encoded(std::size_t json_bytes, std::size_t encoded_bytes,
                                bool dictionary) {
  json_bytes_ += json_bytes;
  encoded_bytes_ += encoded_bytes;
  // A prefixed value says nothing of how well the dictionary fits.
  if (!dictionary) return;
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

void StateColumns::bind_after(sqlite3_stmt* stmt, int index,
                              const std::optional<std::string>& after,
                              const std::optional<std::string>& before, int depth) {
  if (depth <= 0 || !after || !before) {
    bind_state(stmt, index, after);
    return;
  }
  note_json(*after);
  std::string encoded = codec_.encode_against(*after, *before, depth);
  note_encoded(after->size(), encoded.size(), false);
  ++prefixed_;
  sqlite3_bind_blob64(stmt, index, encoded.data(), encoded.size(), SQLITE_TRANSIENT);
}

Result<int> StateColumns::depth_of_row(sqlite3* db, std::int64_t id) {
  auto stmt = cached(db, depth_, "SELECT substr(after_state, 1, 2) FROM session_deltas WHERE id = ?1");
  if (!stmt.ok()) return Error{stmt.error()};
  Use use(*stmt);
  sqlite3_bind_int64(*use, 1, id);
  int rc = sqlite3_step(*use);
  if (rc == SQLITE_DONE) return 0;
  if (rc != SQLITE_ROW) return Error{sqlite_error(db, "chain depth")};
  if (sqlite3_column_type(*use, 0) != SQLITE_BLOB) return 0;
  auto bytes = static_cast<const char*>(sqlite3_column_blob(*use, 0));
  return StateCodec::depth_of(
      std::string_view(bytes ? bytes : "", static_cast<std::size_t>(sqlite3_column_bytes(*use, 0))));
}

Result<StateColumns::Plan> StateColumns::plan(sqlite3* db, SessionLedger* ledger,
                                              std::span<const StoredDelta> rows, bool predict_ids,
                                              std::int64_t* first_predicted) {
  Plan plan;
  plan.refs.assign(rows.size(), 0);
  plan.depths.assign(rows.size(), 0);
  auto& refs = plan.refs;
  *first_predicted = 0;
  if (mode_ != Compression::zstd) return plan;
  const bool prefix = codec_.has_dictionary();
  std::int64_t next_id = 0;  // the id the next row without one will get; 0: not known
  bool all_new = !rows.empty() && std::all_of(rows.begin(), rows.end(), [](const StoredDelta& row) {
    return row.id == 0;
  });
  if (ledger && predict_ids && all_new) {
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
  // the insert), its after state (null: none) and that state's chain depth.
  struct Last {
    std::int64_t id = 0;
    const std::string* after = nullptr;
    int depth = 0;
  };
  std::unordered_map<std::string_view, Last> batch;
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const Delta& delta = rows[i].delta;
    int parent_depth = 0;  // of the after state refs[i] names
    if (ledger && delta.type != DeltaType::created && delta.before) {
      auto found = batch.find(delta.session_id);
      if (found != batch.end()) {
        const Last& last = found->second;
        if (last.id > 0 && last.after && *last.after == *delta.before) {
          refs[i] = last.id;
          parent_depth = last.depth;
        }
      } else {
        auto row = ledger->row(db, delta.session_id);
        if (!row.ok()) return Error{row.error()};
        if (*row && (*row)->live && (*row)->last_id > 0 && (*row)->state_digest &&
            *(*row)->state_digest == digest_of(*delta.before)) {
          refs[i] = (*row)->last_id;
          if (prefix) {
            // Usually the session's last row of an earlier batch, whose depth
            // this noted; else read from the row.
            auto noted = last_depths_.find(delta.session_id);
            if (noted != last_depths_.end() && noted->second.first == refs[i]) {
              parent_depth = noted->second.second;
            } else {
              auto depth = depth_of_row(db, refs[i]);
              if (!depth.ok()) return Error{depth.error()};
              parent_depth = *depth;
            }
          }
        }
      }
    }
    // Past the longest chain, the dictionary starts a new one.
    if (prefix && delta.after && delta.before && parent_depth < kMaxChainDepth) {
      plan.depths[i] = refs[i] > 0 ? parent_depth + 1 : 1;
    }
    std::int64_t id = rows[i].id > 0 ? rows[i].id : (next_id ? next_id++ : 0);
    batch[delta.session_id] = Last{id, delta.after ? &*delta.after : nullptr, plan.depths[i]};
  }
  // Bounded: past kMaxNotedDepths sessions it starts again (a miss costs one
  // read). A batch that fails leaves entries naming ids it did not keep,
  // which the id comparison above never matches with the ledger's.
  if (last_depths_.size() > kMaxNotedDepths) last_depths_.clear();
  for (const auto& [session, last] : batch) {
    if (last.id > 0) last_depths_[std::string(session)] = {last.id, last.depth};
  }
  return plan;
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
    if (sqlite3_column_type(raw, 0) == SQLITE_BLOB) continue;  // none before a dictionary
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
  auto value = StateChain::stored(stmt, column);
  if (value.type == SQLITE_NULL) return std::optional<std::string>();
  if (value.type == SQLITE_TEXT) return std::optional<std::string>(std::string(value.bytes));
  if (!StateCodec::is_encoded(value.bytes)) {
    return Error{row_error(row_id, "a BLOB that is not an encoded state")};
  }
  auto decoded = codec_.decode(value.bytes);
  if (!decoded.ok()) return Error{row_error(row_id, decoded.error())};
  return std::optional<std::string>(std::move(*decoded));
}

Result<std::optional<std::string>> StateColumns::read_before(sqlite3* db, sqlite3_stmt* stmt,
                                                             int column, int ref_column,
                                                             std::int64_t row_id) {
  if (sqlite3_column_type(stmt, ref_column) == SQLITE_NULL) return read(stmt, column, row_id);
  return resolve(db, sqlite3_column_int64(stmt, ref_column), row_id);
}

Result<std::optional<std::string>> StateColumns::read_after(sqlite3* db, sqlite3_stmt* stmt,
                                                            int column, int before_column,
                                                            int ref_column, std::int64_t row_id) {
  std::int64_t ref =
      sqlite3_column_type(stmt, ref_column) == SQLITE_NULL ? 0 : sqlite3_column_int64(stmt, ref_column);
  return chain_.after(db, StateChain::stored(stmt, column), StateChain::stored(stmt, before_column),
                      ref, row_id);
}

bool StateColumns::is_prefixed(sqlite3_stmt* stmt, int column) {
  return sqlite3_column_type(stmt, column) == SQLITE_BLOB &&
         StateCodec::is_prefixed(StateChain::stored(stmt, column).bytes);
}

Result<std::string> StateColumns::decode_against(std::string_view value, std::string_view before,
                                                  std::int64_t row_id) {
  auto text = codec_.decode_against(value, before);
  if (!text.ok()) return Error{row_error(row_id, text.error())};
  return std::move(*text);
}

Result<std::optional<std::string>> StateColumns::resolve(sqlite3* db, std::int64_t ref,
                                                         std::int64_t row_id) {
  auto text = chain_.after_of(db, ref, row_id);
  if (!text.ok()) return Error{text.error()};
  return std::optional<std::string>(std::move(*text));
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
    if (sqlite3_column_type(raw, 4) == SQLITE_BLOB) {
      auto value = read(raw, 4, id);
      if (!value.ok()) return value.error();
    }
    if (sqlite3_column_type(raw, 5) == SQLITE_BLOB) {
      auto value = read_after(db, raw, 5, 4, 3, id);
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
      "SELECT id, before_ref FROM session_deltas WHERE before_ref IS NOT NULL AND before_ref IN "
      "(SELECT id FROM session_deltas WHERE " + where + ") AND NOT (" + where + ")";
  sqlite3_stmt* raw = nullptr;
  if (sqlite3_prepare_v2(db, sql.c_str(), -1, &raw, nullptr) != SQLITE_OK) {
    return Error{sqlite_error(db, "materialize references")};
  }
  std::vector<std::pair<std::int64_t, std::int64_t>> staying;  // (row, the row it names)
  {
    Statement stmt(raw);
    bind(raw);
    int rc;
    while ((rc = sqlite3_step(raw)) == SQLITE_ROW) {
      staying.emplace_back(sqlite3_column_int64(raw, 0), sqlite3_column_int64(raw, 1));
    }
    if (rc != SQLITE_DONE) return Error{sqlite_error(db, "materialize references")};
  }
  // The named row's after state may be prefixed: its JSON text, stored as
  // the mode stores a value. The staying row's own prefixed after state was
  // compressed against that same text, so it still reads.
  sqlite3_stmt* update = nullptr;
  if (sqlite3_prepare_v2(db,
                         "UPDATE session_deltas SET before_state = ?2, before_ref = NULL "
                         "WHERE id = ?1",
                         -1, &update, nullptr) != SQLITE_OK) {
    return Error{sqlite_error(db, "materialize references")};
  }
  Statement stmt(update);
  for (const auto& [id, ref] : staying) {
    auto before = chain_.after_of(db, ref, id);
    if (!before.ok()) return Error{before.error()};
    Use use(update);
    sqlite3_bind_int64(update, 1, id);
    if (mode_ == Compression::zstd && codec_.has_dictionary()) {
      std::string encoded = codec_.encode(*before);
      sqlite3_bind_blob64(update, 2, encoded.data(), encoded.size(), SQLITE_TRANSIENT);
    } else {
      bind_text(update, 2, *before);
    }
    if (sqlite3_step(update) != SQLITE_DONE) return Error{sqlite_error(db, "materialize references")};
  }
  chain_.forget();  // the rows about to go may be in it
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
      auto after = read_after(db, *use, 2, 1, 3, id);
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
  stats.prefixed = prefixed_;
  stats.training = trainer_.busy();
  stats.converted = converted_;
  stats.last_training_error = last_training_error_;
  return stats;
}

}  // namespace deltatap
