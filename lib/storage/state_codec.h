// StateCodec: how a state (a JSON text) is kept in a database when
// [storage] compression = zstd (design.md, "Capacity"), in the store and in
// the archive files alike.
//
// A stored state value (session_deltas.before_state / after_state) is one of:
//   - NULL: no state (a created delta's before, a deleted delta's after), or,
//     for before_state only, a reference: before_ref names the delta whose
//     after_state this before state equals (store.h);
//   - TEXT: the JSON itself (compression off, or a row not converted yet);
//   - BLOB: kEncodedTag, then the dictionary's id as 4 bytes little-endian
//     (0: no dictionary), then one zstd frame holding the JSON text;
//   - for after_state only, BLOB: kPrefixedTag, then one byte, the value's
//     depth (below), then one zstd frame compressed with the row's own before
//     state (its JSON text) as the prefix. An update changes a few fields of
//     a state, so against the state before it an after state takes about a
//     third of what it takes with a dictionary (33 against 104 bytes on the
//     simulator's sessions). Reading it needs that before state, which may
//     be a reference to the previous row, whose after state may be prefixed
//     in turn: a chain (storage/state_chain.h). Its depth is the number of
//     prefixed after states read to decode it: 1 when the before state is a
//     value, 1 + the depth of the referenced row's after state otherwise (0
//     for the other forms); writers start a new chain (the dictionary form)
//     rather than go past kMaxChainDepth, so any row decodes in at most that
//     many steps.
// So a reader tells TEXT from an encoded value by the column's type alone,
// and a store being converted holds both.
//
// The dictionaries live in the same database, in
//   state_dictionaries(id INTEGER PRIMARY KEY, trained_at TEXT NOT NULL,
//                      samples INTEGER NOT NULL, bytes BLOB NOT NULL)
// A dictionary once written never changes; it stays while any value names it
// (copying values to another database copies the rows they name with them).
//
// One codec per database connection, used only from the thread that owns the
// connection. Errors are values; nothing here throws.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "base/result.h"

namespace deltatap {

inline constexpr char kEncodedTag = 'Z';
inline constexpr char kPrefixedTag = 'D';
inline constexpr int kMaxChainDepth = 8;

// The table's DDL; Store's schema and the archive files both run it.
inline constexpr const char* kCreateStateDictionaries =
    "CREATE TABLE IF NOT EXISTS state_dictionaries (id INTEGER PRIMARY KEY, "
    "trained_at TEXT NOT NULL, samples INTEGER NOT NULL, bytes BLOB NOT NULL)";

class StateCodec {
 public:
  StateCodec();
  ~StateCodec();
  StateCodec(StateCodec&&) noexcept;
  StateCodec& operator=(StateCodec&&) noexcept;

  // Reads every row of `db`'s state_dictionaries (the table must exist); the
  // newest (highest id) becomes the one encode() uses. Call again after
  // another connection added one. An error names the table and SQLite's
  // complaint.
  Status load(sqlite3* db);

  // Whether encode() has a dictionary (before the first training it has none
  // and callers keep states as TEXT).
  bool has_dictionary() const;
  std::uint32_t newest_dictionary() const;  // 0 when none

  // The BLOB form of `json`, with the newest dictionary.
  std::string encode(std::string_view json);

  // The prefixed BLOB form of the after state `json` of a row whose before
  // state is `before`, at chain depth `depth` (1..kMaxChainDepth).
  std::string encode_against(std::string_view json, std::string_view before, int depth);

  // True when `value` (a column's bytes) is the dictionary BLOB form.
  static bool is_encoded(std::string_view value);
  // True when `value` is the prefixed form; its depth (0 for any other form).
  static bool is_prefixed(std::string_view value);
  static int depth_of(std::string_view value);

  // The JSON text a stored value stands for: a TEXT value as it is; a BLOB
  // decoded. An error (never a guess) when its dictionary is unknown or the
  // frame is corrupt, naming which, and for a prefixed value (which needs
  // its before state: decode_against).
  Result<std::string> decode(std::string_view value);
  // The JSON text of a prefixed value whose row's before state is `before`.
  Result<std::string> decode_against(std::string_view value, std::string_view before);

  // Trains a dictionary on `samples` (JSON texts, at least a few hundred),
  // stores it in `db`'s state_dictionaries and makes it the newest; returns
  // its id. Slow (tens to hundreds of ms): the store lane calls it in
  // bounded steps or off the lane (state_trainer.h). An error when zstd
  // cannot train on these samples.
  Result<std::uint32_t> train(sqlite3* db, std::span<const std::string> samples);

  // train() in its two halves, for training off the connection's thread
  // (state_trainer.h): train_bytes touches no codec or database, so any
  // thread may call it; add_dictionary stores `bytes` in `db` as the next id
  // and makes it the newest (the owning thread). Errors as train's.
  static Result<std::string> train_bytes(std::span<const std::string> samples);
  Result<std::uint32_t> add_dictionary(sqlite3* db, std::string_view bytes, std::size_t samples);

  // Registers the SQL functions on `db`: deltatap_json(value), the JSON text
  // of a stored value (NULL stays NULL) other than a prefixed one, decoded
  // with the dictionaries of that same database, loaded on first use; and
  // deltatap_after(after_state, before_state, before_ref), the JSON text of
  // a row's after state in any form (state_chain.h). The view
  // session_deltas_json and the loadable extension (tools/sqlite_extension)
  // use them.
  static Status register_sql_function(sqlite3* db);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace deltatap
