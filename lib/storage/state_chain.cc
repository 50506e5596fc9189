// StateChain. Built twice, as state_codec.cc is: into deltatap_lib and into
// the loadable SQLite extension, where every sqlite3_* call goes through the
// host's API table.
#ifdef DELTATAP_SQLITE_EXTENSION
#include <sqlite3ext.h>
SQLITE_EXTENSION_INIT3
#endif

#include "storage/state_chain.h"

#include <utility>

namespace deltatap {

namespace {

// Writers keep chains to kMaxChainDepth; a reader allows more before calling
// it a loop, since a depth is planned before the insert and a replayed row
// that the insert ignores (its id already stored) may have been written with
// another depth: such a chain is longer than planned, not damaged.
constexpr int kMaxChainSteps = 8 * kMaxChainDepth;

std::string row_error(std::int64_t row_id, std::string_view what) {
  return "session_deltas row " + std::to_string(row_id) + ": " + std::string(what);
}

// A value copied out of a statement that is reset before it is used.
struct Owned {
  int type = SQLITE_NULL;
  std::string bytes;
  StateChain::Stored view() const { return {type, bytes}; }
};

Owned owned(sqlite3_stmt* stmt, int column) {
  auto value = StateChain::stored(stmt, column);
  return Owned{value.type, std::string(value.bytes)};
}

}  // namespace

StateChain::Stored StateChain::stored(sqlite3_stmt* stmt, int column) {
  Stored value;
  value.type = sqlite3_column_type(stmt, column);
  if (value.type == SQLITE_NULL) return value;
  const void* data = value.type == SQLITE_BLOB ? sqlite3_column_blob(stmt, column)
                                               : sqlite3_column_text(stmt, column);
  if (value.type != SQLITE_BLOB) value.type = SQLITE_TEXT;  // a number is read as its text
  auto size = static_cast<std::size_t>(sqlite3_column_bytes(stmt, column));
  value.bytes = std::string_view(data ? static_cast<const char*>(data) : "", data ? size : 0);
  return value;
}

StateChain::Stored StateChain::stored(sqlite3_value* arg) {
  Stored value;
  value.type = sqlite3_value_type(arg);
  if (value.type == SQLITE_NULL) return value;
  const void* data =
      value.type == SQLITE_BLOB ? sqlite3_value_blob(arg) : sqlite3_value_text(arg);
  if (value.type != SQLITE_BLOB) value.type = SQLITE_TEXT;
  auto size = static_cast<std::size_t>(sqlite3_value_bytes(arg));
  value.bytes = std::string_view(data ? static_cast<const char*>(data) : "", data ? size : 0);
  return value;
}

Result<std::optional<std::string>> StateChain::before(sqlite3* db, Stored before,
                                                      std::int64_t ref, std::int64_t row_id) {
  if (ref != 0) {
    auto text = after_of(db, ref, row_id);
    if (!text.ok()) return Error{text.error()};
    return std::optional<std::string>(std::move(*text));
  }
  if (before.type == SQLITE_NULL) return std::optional<std::string>();
  if (before.type == SQLITE_BLOB && !StateCodec::is_encoded(before.bytes)) {
    return Error{row_error(row_id, "before_state is a BLOB that is not an encoded state")};
  }
  auto text = codec_.decode(before.bytes);
  if (!text.ok()) return Error{row_error(row_id, text.error())};
  return std::optional<std::string>(std::move(*text));
}

Result<std::optional<std::string>> StateChain::after(sqlite3* db, Stored after, Stored before,
                                                     std::int64_t ref, std::int64_t row_id) {
  CallScope scope(*this);
  return after_at(db, after, before, ref, row_id, 0);
}

Result<std::string> StateChain::after_of(sqlite3* db, std::int64_t id, std::int64_t for_row) {
  CallScope scope(*this);
  return after_of_at(db, id, for_row, 0);
}

Result<sqlite3_stmt*> StateChain::row_statement(sqlite3* db) {
  if (row_ && row_db_ == db) return row_;
  close();
  if (sqlite3_prepare_v3(db,
                         "SELECT after_state, before_state, before_ref FROM session_deltas "
                         "WHERE id = ?1",
                         -1, per_call_ ? 0 : SQLITE_PREPARE_PERSISTENT, &row_,
                         nullptr) != SQLITE_OK) {
    std::string message = sqlite3_errmsg(db);
    close();
    return Error{message};
  }
  row_db_ = db;
  return row_;
}

void StateChain::close() {
  sqlite3_finalize(row_);
  row_ = nullptr;
  row_db_ = nullptr;
}

Result<std::optional<std::string>> StateChain::after_at(sqlite3* db, Stored after, Stored before,
                                                        std::int64_t ref, std::int64_t row_id,
                                                        int steps) {
  if (after.type == SQLITE_NULL) return std::optional<std::string>();
  if (after.type == SQLITE_TEXT) return std::optional<std::string>(std::string(after.bytes));
  if (auto found = kept_.find(row_id); found != kept_.end() && row_id != 0) {
    return std::optional<std::string>(found->second);
  }
  if (StateCodec::is_encoded(after.bytes)) {
    auto text = codec_.decode(after.bytes);
    if (!text.ok()) return Error{row_error(row_id, text.error())};
    keep(row_id, *text);
    return std::optional<std::string>(std::move(*text));
  }
  if (!StateCodec::is_prefixed(after.bytes)) {
    return Error{row_error(row_id, "after_state is a BLOB that is not an encoded state")};
  }
  if (steps >= kMaxChainSteps) {
    return Error{row_error(row_id, "more than " + std::to_string(kMaxChainSteps) +
                                       " prefixed after states in a chain (a loop: a damaged file)")};
  }
  std::optional<std::string> prefix;
  if (ref != 0) {
    auto text = after_of_at(db, ref, row_id, steps + 1);
    if (!text.ok()) return Error{text.error()};
    prefix = std::move(*text);
  } else {
    auto text = this->before(db, before, 0, row_id);
    if (!text.ok()) return Error{text.error()};
    prefix = std::move(*text);
  }
  if (!prefix) return Error{row_error(row_id, "a prefixed after state without a before state")};
  auto text = codec_.decode_against(after.bytes, *prefix);
  if (!text.ok()) return Error{row_error(row_id, text.error())};
  keep(row_id, *text);
  return std::optional<std::string>(std::move(*text));
}

Result<std::string> StateChain::after_of_at(sqlite3* db, std::int64_t id, std::int64_t for_row,
                                            int steps) {
  if (auto found = kept_.find(id); found != kept_.end()) return found->second;
  Owned after, before;
  std::int64_t ref = 0;
  {
    auto prepared = row_statement(db);
    if (!prepared.ok()) return Error{row_error(for_row, "before_ref: " + prepared.error())};
    sqlite3_stmt* stmt = *prepared;
    sqlite3_bind_int64(stmt, 1, id);
    int rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW) {
      after = owned(stmt, 0);
      before = owned(stmt, 1);
      ref = sqlite3_column_type(stmt, 2) == SQLITE_NULL ? 0 : sqlite3_column_int64(stmt, 2);
    }
    std::string message = rc == SQLITE_ROW || rc == SQLITE_DONE ? "" : sqlite3_errmsg(db);
    sqlite3_reset(stmt);  // the values are copied; a deeper step reuses it
    if (!message.empty()) return Error{row_error(for_row, "before_ref: " + message)};
    if (rc == SQLITE_DONE || after.type == SQLITE_NULL) {
      return Error{row_error(for_row, "before_ref " + std::to_string(id) +
                                          " names no row with an after state")};
    }
  }
  auto text = after_at(db, after.view(), before.view(), ref, id, steps);
  if (!text.ok()) return Error{text.error()};
  return std::move(**text);
}

void StateChain::keep(std::int64_t id, const std::string& json) {
  if (id == 0 || json.size() > budget_ / 4) return;
  auto [at, added] = kept_.try_emplace(id, json);
  if (!added) return;
  kept_order_.push_back(id);
  kept_bytes_ += json.size();
  while (kept_bytes_ > budget_ && !kept_order_.empty()) {
    auto oldest = kept_.find(kept_order_.front());
    kept_order_.pop_front();
    if (oldest == kept_.end()) continue;
    kept_bytes_ -= oldest->second.size();
    kept_.erase(oldest);
  }
}

void StateChain::forget() {
  kept_.clear();
  kept_order_.clear();
  kept_bytes_ = 0;
}

}  // namespace deltatap
