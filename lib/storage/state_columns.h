// StateColumns: how the store writes and reads session_deltas' state columns
// (before_state, after_state, before_ref) under [storage] compression
// (storage/state_codec.h gives the forms a value takes; design.md, "Capacity").
//
// Writing with compression = zstd: a state is encoded once the database holds
// a dictionary (before that, TEXT); a before state equal byte for byte to the
// after state of its session's last stored row (an `updated` or `deleted`
// delta) is stored as before_state NULL, before_ref = that row's id. The
// session's last row comes from the ledger (its last_id and the digest of its
// last state: equal digests are taken as equal texts, as the ledger's rules
// do, base/digest.h) or, within a batch, from an earlier row of the batch
// whose id is known before the insert (compared byte for byte).
//
// Dictionaries: after kTrainAfter states written without one, one is trained
// on the newest kTrainSamples states; it is trained again when the ratio
// (encoded bytes / JSON bytes) over a window of kRatioWindow states is worse
// than kRetrainFactor times the ratio measured over the first states encoded
// with the current dictionary. Training runs on StateTrainer's thread; its
// result is stored between batches.
//
// An after state whose row has a before state (a reference or a value) is
// stored prefixed against it once a dictionary exists (state_codec.h), unless
// that would make its chain longer than kMaxChainDepth: then with the
// dictionary, starting a new chain. Reading goes through a StateChain
// (state_chain.h), which keeps what it decoded last.
//
// Invariant kept with the store: every before_ref names a row of the same
// table whose after_state is not NULL (materialize_before_delete).
//
// Used only from the thread that owns the connection (the store lane);
// internal to storage/. Errors are values and name the row.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "base/delta.h"
#include "base/result.h"
#include "storage/session_ledger.h"
#include "storage/sqlite_statement.h"
#include "storage/state_chain.h"
#include "storage/state_codec.h"
#include "storage/state_trainer.h"
#include "storage/storage_options.h"

namespace deltatap {

inline constexpr std::size_t kTrainAfter = 2'000;
inline constexpr std::size_t kTrainSamples = 4'000;
inline constexpr std::size_t kBaselineStates = 2'000;
inline constexpr std::size_t kRatioWindow = 10'000;
inline constexpr double kRetrainFactor = 1.5;

// SQL expressions over a session_deltas row named `table` (an alias or the
// table's name): its states as JSON text (deltatap_json and deltatap_after,
// which register_functions adds to every store connection).
std::string json_before_sql(std::string_view table);
std::string json_after_sql(std::string_view table);

// What /api/stats and the metrics show (CompressionStats in store.h).
struct StateColumnsStats {
  Compression mode = Compression::off;
  std::int64_t dictionaries = 0;          // rows of state_dictionaries
  std::uint32_t newest_dictionary = 0;
  std::uint64_t json_bytes = 0;           // of the states encoded since start
  std::uint64_t encoded_bytes = 0;        // what they became
  std::uint64_t references = 0;           // before states stored as references since start
  std::uint64_t prefixed = 0;             // after states stored prefixed since start
  bool training = false;
  bool converted = true;                  // no row waits for convert_step
  std::string last_training_error;        // empty when the last training worked
};

class StateColumns {
 public:
  StateColumns() = default;
  StateColumns(const StateColumns&) = delete;
  StateColumns& operator=(const StateColumns&) = delete;

  // Loads `db`'s dictionaries and notes whether any reference exists. After
  // the schema is current. An error names the table.
  Status open(sqlite3* db);
  // Finalizes the cached statements (before the connection closes).
  void close();

  // Switching the mode restarts the conversion (convert_step) from the first row.
  void set_mode(Compression mode);
  Compression mode() const { return mode_; }

  // Between batches: stores a finished training's dictionary, and starts a
  // training when one is due. Cheap when nothing is.
  Status between_batches(sqlite3* db);

  // How the rows of a batch about to be inserted store their states: per
  // row, the before_ref (0: none) and the chain depth of the after state (0:
  // not prefixed).
  struct Plan {
    std::vector<std::int64_t> refs;
    std::vector<int> depths;
  };
  // `ledger` may be null (no ledger: no references). A row refers to an
  // earlier row of the batch only when that row's id is known: its own, or,
  // with `predict_ids` and no row having an id of its own, the id
  // AUTOINCREMENT will give it (the next after the highest ever, in order).
  // `*first_predicted` is then that first id (else 0): the caller checks the
  // ids assigned against it and fails the batch when they differ.
  Result<Plan> plan(sqlite3* db, SessionLedger* ledger, std::span<const StoredDelta> rows,
                    bool predict_ids, std::int64_t* first_predicted);
  // Binds a state as the mode wants it stored (TEXT, or BLOB once a
  // dictionary exists), and notes it for training and the ratio. TEXT is
  // bound without a copy (`state` outlives the step); a BLOB is copied.
  void bind_state(sqlite3_stmt* stmt, int index, const std::optional<std::string>& state);
  // Binds before_state and before_ref for a row whose reference is `ref`.
  void bind_before(sqlite3_stmt* stmt, int state_index, int ref_index,
                   const std::optional<std::string>& before, std::int64_t ref);
  // Binds after_state: prefixed against `before` when `depth` > 0 (the plan's).
  void bind_after(sqlite3_stmt* stmt, int index, const std::optional<std::string>& after,
                  const std::optional<std::string>& before, int depth);

  // The JSON text of column `column` of the current row (NULL: nullopt),
  // when it is not a prefixed after state (read_after).
  Result<std::optional<std::string>> read(sqlite3_stmt* stmt, int column, std::int64_t row_id);
  // The before state: column `column`, or, when `ref_column` is not NULL,
  // the after_state of the row it names.
  Result<std::optional<std::string>> read_before(sqlite3* db, sqlite3_stmt* stmt, int column,
                                                 int ref_column, std::int64_t row_id);
  // The after state (column `column`) of a row whose before state is in
  // `before_column` / `ref_column`, in any form.
  Result<std::optional<std::string>> read_after(sqlite3* db, sqlite3_stmt* stmt, int column,
                                                int before_column, int ref_column,
                                                std::int64_t row_id);
  static bool is_prefixed(sqlite3_stmt* stmt, int column);
  // The JSON text of a prefixed after state whose row's before state is `before`.
  Result<std::string> decode_against(std::string_view value, std::string_view before,
                                     std::int64_t row_id);
  // The after_state of row `ref`, the before state of row `row_id` (which
  // errors name).
  Result<std::optional<std::string>> resolve(sqlite3* db, std::int64_t ref, std::int64_t row_id);
  // Forgets the states decoded and the depths noted (after rows were
  // deleted: a retried batch may give their ids to other states).
  void forget() {
    chain_.forget();
    last_depths_.clear();
  }

  // Before rows matching `where` (session_deltas' own columns, bound by
  // `bind`, as Store::Impl::delete_where) are deleted: rows that stay and
  // refer to one of them get its after_state as their own before_state.
  // Inside the caller's transaction.
  Status materialize_before_delete(sqlite3* db, const std::string& where,
                                   const std::function<void(sqlite3_stmt*)>& bind);

  // One bounded step of converting the stored rows to the mode: up to
  // `max_rows` rows looked at (by id, from where the last step stopped),
  // TEXT encoded (zstd, once a dictionary exists) or BLOBs decoded and
  // references materialized (off). Returns the rows looked at; 0 when no
  // row is left to convert. Starts a training on the stored states when
  // zstd has no dictionary yet.
  Result<std::int64_t> convert_step(sqlite3* db, std::size_t max_rows);

  // Every value decodes and every reference names a row with an after
  // state: "ok", or what is wrong with the first bad row, naming its id.
  Result<std::string> verify(sqlite3* db);

  StateColumnsStats stats(sqlite3* db) const;

 private:
  void note_json(std::string_view json);
  // `dictionary`: a value the dictionary encoded, which the ratio watches.
  void note_encoded(std::size_t json_bytes, std::size_t encoded_bytes, bool dictionary = true);
  Result<int> depth_of_row(sqlite3* db, std::int64_t id);
  Status start_training_from_table(sqlite3* db);
  Result<sqlite3_stmt*> cached(sqlite3* db, Statement& slot, const char* sql);

  Compression mode_ = Compression::off;
  StateCodec codec_;
  StateChain chain_{codec_, 4u << 20};
  StateTrainer trainer_;
  bool refs_may_exist_ = false;
  // Samples: the newest states written, a ring of kTrainSamples.
  std::vector<std::string> ring_;
  std::size_t ring_next_ = 0;
  std::size_t seen_without_dictionary_ = 0;
  // The ratio: the first kBaselineStates after a dictionary, then windows.
  std::uint64_t baseline_json_ = 0, baseline_encoded_ = 0;
  std::size_t baseline_states_ = 0;
  double baseline_ = 0;  // 0: not measured yet
  std::uint64_t window_json_ = 0, window_encoded_ = 0;
  std::size_t window_states_ = 0;
  bool retrain_due_ = false;
  // Since start, for the stats.
  std::uint64_t json_bytes_ = 0, encoded_bytes_ = 0, references_ = 0, prefixed_ = 0;
  std::string last_training_error_;
  // Conversion: the next row id to look at; done until the mode changes.
  std::int64_t convert_after_ = 0;
  bool converted_ = false;
  bool table_sampled_ = false;  // start_training_from_table ran since the last switch
  Statement scan_, update_, highest_, depth_;
  // By session: its last row written (id) and that row's chain depth.
  static constexpr std::size_t kMaxNotedDepths = 200'000;
  std::unordered_map<std::string, std::pair<std::int64_t, int>> last_depths_;
};

}  // namespace deltatap
