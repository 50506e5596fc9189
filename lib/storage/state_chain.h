// StateChain: the JSON text of session_deltas rows' states in one database,
// whatever forms they are stored in (storage/state_codec.h): a before_ref is
// followed to the row it names, and a prefixed after state is decoded against
// its row's before state, which may be a reference to a row whose after state
// is prefixed in turn. Writers keep a chain to kMaxChainDepth prefixed values;
// one eight times longer is taken for a loop, a damaged database, and is an
// error.
//
// Keeps the after states it decoded most recently (up to a byte budget, the
// oldest forgotten first), by row id: a row's JSON text never changes
// whatever form it is converted to, so reading a session's rows in either
// order decodes each once, and an export in id order finds a session's
// previous row there unless more than the budget's worth of other rows came
// between. Whoever deletes rows calls forget() (ids of deleted rows may be
// given again by a retried batch).
//
// Looks rows up with one prepared statement. With `Statement::kept` it stays
// prepared between calls and its owner calls close() before the connection
// closes; with `Statement::per_call` it is finalized before each call returns
// (for an SQL function's data, which lives until the connection closes, and
// a connection with a statement left open does not close). One per
// connection, used only from the thread that owns it; the codec is the
// connection's and outlives it. Errors are values and name the row.
#pragma once

#include <sqlite3.h>

#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "base/result.h"
#include "storage/state_codec.h"

namespace deltatap {

class StateChain {
 public:
  // A column's value as stored: its type and bytes (viewed, not owned).
  struct Stored {
    int type = SQLITE_NULL;
    std::string_view bytes;
  };
  static Stored stored(sqlite3_stmt* stmt, int column);
  static Stored stored(sqlite3_value* value);

  enum class Statement { kept, per_call };
  // `budget`: the bytes of decoded states kept for the next reads.
  explicit StateChain(StateCodec& codec, std::size_t budget = 32u << 20,
                      Statement statement = Statement::kept)
      : codec_(codec), budget_(budget), per_call_(statement == Statement::per_call) {}
  ~StateChain() { close(); }
  StateChain(const StateChain&) = delete;
  StateChain& operator=(const StateChain&) = delete;

  // The JSON text of row `row_id`'s before state, stored as `before`, or
  // (`ref` != 0) the after state of row `ref`.
  Result<std::optional<std::string>> before(sqlite3* db, Stored before, std::int64_t ref,
                                            std::int64_t row_id);
  // The JSON text of row `row_id`'s after state, stored as `after`, its
  // before state being stored as `before` / `ref`.
  Result<std::optional<std::string>> after(sqlite3* db, Stored after, Stored before,
                                           std::int64_t ref, std::int64_t row_id);
  // The after state of row `id`, which row `for_row` (named in errors)
  // refers to: an error when no such row exists or it has no after state.
  Result<std::string> after_of(sqlite3* db, std::int64_t id, std::int64_t for_row);

  // Forgets every decoded state (rows were deleted or replaced).
  void forget();
  // Finalizes the statement (before the connection closes).
  void close();

 private:
  Result<std::optional<std::string>> after_at(sqlite3* db, Stored after, Stored before,
                                              std::int64_t ref, std::int64_t row_id, int steps);
  Result<std::string> after_of_at(sqlite3* db, std::int64_t id, std::int64_t for_row, int steps);
  void keep(std::int64_t id, const std::string& json);

  Result<sqlite3_stmt*> row_statement(sqlite3* db);
  // Finalizes a per-call statement when the outermost call returns.
  struct CallScope {
    StateChain& chain;
    explicit CallScope(StateChain& c) : chain(c) { ++chain.depth_; }
    ~CallScope() {
      if (--chain.depth_ == 0 && chain.per_call_) chain.close();
    }
  };

  StateCodec& codec_;
  std::size_t budget_;
  bool per_call_;
  int depth_ = 0;  // calls in progress (they recurse)
  sqlite3_stmt* row_ = nullptr;
  sqlite3* row_db_ = nullptr;
  std::size_t kept_bytes_ = 0;
  std::unordered_map<std::int64_t, std::string> kept_;
  std::deque<std::int64_t> kept_order_;  // oldest first
};

}  // namespace deltatap
