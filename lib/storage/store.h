// Store: the session-delta history in an in-memory SQLite database.
//
// The schema is the domain document's session_deltas table and indexes, plus an
// index on (session_id, timestamp), the columns `origin` and `gap` (design.md,
// "Fidelity"; both have defaults, so the document's own INSERT still works),
// the `sessions` ledger (session_ledger.h), the rejected_messages quarantine and
// the stream_events audit of the connection. Times are stored normalised
// (timestamp.h) so that string order is time order. PRAGMA user_version holds
// the schema version; files of versions 0 (the document's schema), 1 and 2 are
// migrated on load without losing a row (schema_versions.h rolls back).
// Version 3 adds before_ref, state_dictionaries and the view
// session_deltas_json ([storage] compression; storage/state_codec.h).
//
// A Store is used from one thread only (the daemon's store lane).
// Files are read by load_file() and open_readonly() and written by write_copy();
// making a written copy durable and atomic is snapshot.h's job.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/delta.h"
#include "base/result.h"
#include "base/timestamp.h"
#include "storage/storage_options.h"
#include "storage/time_columns.h"

struct sqlite3;
struct sqlite3_stmt;

namespace deltatap {

inline constexpr int kSchemaVersion = 4;
inline constexpr int kDefaultQueryLimit = 100;
inline constexpr int kMaxQueryLimit = 1000;
inline constexpr std::size_t kMaxRejectedRawBytes = 64 * 1024;
inline constexpr std::int64_t kMaxRejectedRows = 10'000;

// Filters combine. Results are newest first (timestamp, then id, descending).
struct DeltaQuery {
  std::optional<std::string> session_id;
  std::optional<DeltaType> type;
  std::optional<std::string> since;   // normalised; timestamp >= since
  std::optional<std::string> until;   // normalised; timestamp < until
  std::optional<std::string> before;  // a cursor from DeltaPage::next
  int limit = kDefaultQueryLimit;     // clamped to 1..kMaxQueryLimit
};

// A keyset cursor: the (timestamp, id) of the last delta of a page, as text
// "TIMESTAMP_ID". Callers treat it as opaque.
struct Cursor {
  std::string timestamp;
  std::int64_t id = 0;
};
std::optional<Cursor> parse_cursor(std::string_view text);
std::string format_cursor(const Cursor& cursor);

// A DeltaQuery as SQL over a session_deltas table, in memory or in an archive
// file, so that both page alike: " WHERE ... ORDER BY timestamp DESC, id DESC
// LIMIT :limit", after a cursor when `cursor` is set. bind_delta_query binds
// its parameters (times as `times` keeps them) and asks for `fetch` rows.
std::string delta_query_sql(const DeltaQuery& query, bool cursor);
void bind_delta_query(sqlite3_stmt* stmt, const DeltaQuery& query,
                      const std::optional<Cursor>& cursor, TimeColumns times, std::int64_t fetch);

// A database file image from serialize(); owns its memory, movable to a worker.
class DatabaseImage {
 public:
  DatabaseImage() = default;
  DatabaseImage(unsigned char* bytes, std::size_t size);  // takes sqlite3_malloc'd memory
  std::string_view view() const { return {reinterpret_cast<const char*>(bytes_.get()), size_}; }
  std::size_t size() const { return size_; }

 private:
  struct Free { void operator()(unsigned char* p) const; };
  std::unique_ptr<unsigned char, Free> bytes_;
  std::size_t size_ = 0;
};

struct DeltaPage {
  std::vector<StoredDelta> deltas;
  // Set when more rows may follow: pass it as DeltaQuery::before for the next page.
  std::optional<std::string> next;
};

// A row of GET /api/sessions: the session's ledger row.
struct SessionSummary {
  std::string session_id;
  std::int64_t created = 0, updated = 0, deleted = 0;
  std::int64_t gaps = 0;      // deltas stored with gap = 1
  std::int64_t inferred = 0;  // deltas of origin resync or reconcile
  std::string first_seen, last_seen;  // timestamps of its first and last delta (by id)
  std::int64_t last_id = 0;
  std::string last_type;
  bool live = false;  // its last delta is not a deletion
  std::optional<std::string> last_state;  // after_state of the last delta (before for deleted)
};

// What the ledger's rules need to know of one session (ingest/ledger_rules.h).
struct LedgerEntry {
  bool live = false;
  std::int64_t last_id = 0;
  std::optional<std::uint64_t> state_digest;  // base/digest.h of the last state's text
};

struct Rejected {
  std::string received_at;  // normalised
  std::string reason;       // short label
  std::string detail;
  std::string raw;          // truncated to kMaxRejectedRawBytes
};

struct StreamEvent {
  std::string at;           // normalised
  std::string event;        // connected | disconnected | auth_failed | oversized | started | stopped
  std::string url;
  int close_code = 0;
  std::string reason;
};

// [storage] compression as it stands (GET /api/stats' `compression`, the
// metric deltatap_compression_ratio).
struct CompressionStats {
  std::string mode;                  // "off" | "zstd"
  std::int64_t dictionaries = 0;     // rows of state_dictionaries
  std::uint32_t newest_dictionary = 0;
  // The states this process encoded (written, or converted by convert_step)
  // and what they became: encoded / json is the ratio (0 before any).
  std::uint64_t json_bytes = 0;
  std::uint64_t encoded_bytes = 0;
  std::uint64_t references = 0;      // before states stored as references since start
  std::uint64_t prefixed = 0;        // after states stored against their before state since start
  bool training = false;             // a dictionary is being trained
  bool converted = true;             // no stored row waits for convert_step
  std::string last_training_error;   // empty when the last training worked
  std::string times = "text";        // "text" | "integer": how the times are stored (time_columns.h)
  double ratio() const {
    return json_bytes ? static_cast<double>(encoded_bytes) / static_cast<double>(json_bytes) : 0;
  }
};

struct StoreCounts {
  std::int64_t deltas = 0;
  std::int64_t sessions = 0;
  std::int64_t rejected = 0;
  std::int64_t rejected_evicted = 0;
  std::int64_t stream_events = 0;
  std::int64_t memory_bytes = 0;  // page_count * page_size
  std::optional<std::string> oldest, newest;  // delta timestamps
  int schema_version = kSchemaVersion;
  CompressionStats compression;
};

struct StoreOptions {
  // false: no `sessions` ledger is kept (sessions() and the ledger's lookups
  // fail). Only for bench_ingest_budget, which measures what the ledger costs.
  bool ledger = true;
};

class Store {
 public:
  // An empty in-memory database with the current schema.
  static Result<std::unique_ptr<Store>> open_empty(StoreOptions options = {});
  // An in-memory database holding a copy of the SQLite file at `path`, migrated
  // to the current schema. The pages are copied into an ordinary in-memory
  // database, which can grow as far as memory allows (a deserialized image
  // could not grow past 1 GiB). While the copy runs, a second thread checks
  // the file: a file that matches the digest its snapshot wrote beside it
  // (storage/snapshot.h) is taken as checked; any other is read through
  // PRAGMA quick_check. An error means the file is not a usable database.
  static Result<std::unique_ptr<Store>> load_file(const std::string& path);
  // As load_file, from the bytes of a SQLite file image.
  static Result<std::unique_ptr<Store>> load(std::string_view bytes);
  // The file itself, read-only (for the offline CLI). A version-0 file is loaded
  // into memory and migrated there, leaving the file as it was.
  static Result<std::unique_ptr<Store>> open_readonly(const std::string& path);

  // How load_file checked the file this store was loaded from (kNone for a
  // store that was not loaded from a file, or was loaded from bytes).
  enum class LoadCheck { kNone, kDigest, kQuickCheck };
  LoadCheck load_check() const;

  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  // created_at defaults to now. A batch is one transaction: all or nothing.
  // When `ids` is given it receives the id assigned to each delta, in order.
  Status save(const Delta& delta);
  Status save_batch(std::span<const Delta> deltas, std::optional<std::string> created_at = {},
                    std::vector<std::int64_t>* ids = nullptr);
  // As save_batch, but each delta keeps the given id (0: a new one), created_at,
  // origin and gap (the store lane, journal replay, tests). `ids_through`:
  // every id up to it has been decided, stored or not (a resync echo stores
  // nothing), so last_delta_id() is at least it and a replay skips them.
  Status save_with_created_at(std::span<const StoredDelta> deltas, std::int64_t ids_through = 0);

  Result<DeltaPage> get_deltas(const DeltaQuery& query);
  // Every delta, oldest first, handed to `visit` one at a time (export); stops when
  // visit returns false.
  Status for_each_delta(const std::function<bool(const StoredDelta&)>& visit);
  // The ledger, most recently seen first.
  Result<std::vector<SessionSummary>> sessions();
  // One session's deltas in arrival order (by id).
  Result<std::vector<StoredDelta>> session_history(const std::string& session_id);
  // The ledger's row for a session; nullopt when the ledger does not know it.
  Result<std::optional<LedgerEntry>> ledger_entry(const std::string& session_id);
  // One delta by its id; nullopt when there is none.
  Result<std::optional<StoredDelta>> delta_by_id(std::int64_t delta_id);
  // The ids of the sessions the ledger holds as live, sorted.
  Result<std::vector<std::string>> live_sessions();

  // --- sinks (lib/sinks): what a sink has sent, kept in the table
  // sink_progress(sink TEXT PRIMARY KEY, last_id INTEGER), which snapshots
  // make durable (the journal does not hold it: after a kill -9 the mark may
  // be older than what was sent, and the sink sends some deltas again).
  // The highest id `sink` has sent (every delta up to it is sent); 0 when none.
  Result<std::int64_t> sink_mark(const std::string& sink);
  Status set_sink_mark(const std::string& sink, std::int64_t last_id);
  // Up to `limit` deltas with id > `after_id`, by id (a sink's next batch).
  Result<std::vector<StoredDelta>> deltas_after(std::int64_t after_id, std::size_t limit);
  // How many deltas have id > `after_id` (a sink's backlog); O(backlog).
  Result<std::int64_t> count_deltas_after(std::int64_t after_id);
  // While set, cleanup() and evict_beyond() keep every delta with id > `id`:
  // a sink has not sent them yet. nullopt (the default): no hold.
  void hold_deltas_after(std::optional<std::int64_t> id);

  // --- [storage] compression (storage/state_codec.h, storage/state_columns.h).
  // Every reader above sees the JSON text whatever the mode and the stored
  // form. Off (the default) writes TEXT; zstd writes encoded states once a
  // dictionary has been trained on the store's own states, and before states
  // equal to the session's last state as references (before_ref). A store
  // without a row also takes the times' layout of the mode (integer
  // milliseconds with zstd, the document's text when off; time_columns.h);
  // one with rows keeps its own. An error leaves the mode set and the store
  // without session_deltas' rows it never had (the error names what failed).
  Status set_compression(Compression mode);
  // One bounded step of bringing the stored rows to the mode (encoding TEXT,
  // or decoding and materializing references when off), and of storing a
  // dictionary trained meanwhile: at most `max_rows` rows looked at. Returns
  // the rows looked at; 0 when there is nothing left to do (zstd without a
  // dictionary yet: 0 too, and a training on the stored states starts).
  // Called between batches by the store lane.
  Result<std::int64_t> convert_step(std::size_t max_rows);
  CompressionStats compression_stats();

  // Deletes deltas whose created_at is before `older_than`; returns how many.
  // Deltas held for a sink (hold_deltas_after) stay.
  Result<std::int64_t> cleanup(TimePoint older_than);
  // Deletes stream events whose `at` is before `older_than`; returns how many.
  // A backend that flaps adds rows at every reconnect: without this they would
  // only ever grow.
  Result<std::int64_t> cleanup_events(TimePoint older_than);
  // Evicts the oldest deltas beyond `max_rows`, except those held for a sink;
  // returns how many went.
  Result<std::int64_t> evict_beyond(std::int64_t max_rows);
  // Gives freed pages back (VACUUM); worth it after a large cleanup.
  Status compact();

  Status quarantine(const Rejected& rejected);
  Result<std::vector<Rejected>> rejected(int limit);
  Status record_event(const StreamEvent& event);
  Result<std::vector<StreamEvent>> events(int limit);

  // Everything GET /api/stats shows; scans the table (tens of ms at 1,000,000 deltas).
  StoreCounts counts();
  // Deltas held now, kept as rows come and go: free to call often.
  std::int64_t delta_count() const;
  // Changes whenever ledger rows change other than by the rows a save adds
  // (cleanup, eviction, a rebuild): a cache of ledger rows is stale then.
  std::uint64_t ledger_generation() const;
  // Bytes of the in-memory database (page_count * page_size), without a scan.
  std::int64_t memory_bytes();
  // Integrity and schema: "ok" or SQLite's complaint; then every state
  // decodes and every before_ref resolves, or what is wrong with the first
  // row that does not, naming its id.
  Result<std::string> check();
  // Writes a copy of the whole database as a new SQLite file at `path` (absent or
  // empty), without fsync. The daemon calls it in a forked child (snapshot.h).
  Status write_copy(const std::string& path);
  // A consistent image of the whole database in memory, as big as the database
  // (tests and tools; the daemon uses write_copy).
  Result<DatabaseImage> serialize();
  // A statement of this store's connection, prepared once and cached, for the
  // storage room's own readers that keep their SQL beside their concept
  // (storage/analytics_reads.h); nothing outside storage/ calls it. The
  // statement stays owned by the store, valid until compact(); the caller
  // binds, steps and resets it (sqlite_statement.h's Use) before the next use.
  // An error when SQLite cannot prepare `sql`.
  Result<sqlite3_stmt*> prepared(const std::string& sql);
  // Highest delta id ever assigned, deleted rows included (AUTOINCREMENT's
  // sequence): a journal entry with a higher id is not in this database yet.
  std::int64_t last_delta_id();

  // --- the storage room's own writers that keep their SQL beside their
  // concept (storage/archive.h); nothing outside storage/ calls these.
  // The store's connection, for reading rows on the store's thread. Writing
  // deltas through it would bypass the ledger and the counts: deletions go
  // through delete_deltas_where.
  sqlite3* connection();
  // How session_deltas keeps its times, for SQL over connection().
  TimeColumns time_columns() const;
  // Deletes the deltas matching `where` (an SQL condition over
  // session_deltas' columns whose parameters `bind` binds) through the
  // store's one deletion path, in one transaction: the ledger, the counts and
  // the references of surviving rows to deleted ones stay right (as cleanup()
  // does). Returns how many went; an error names `what` and SQLite's complaint.
  Result<std::int64_t> delete_deltas_where(const std::string& where,
                                           const std::function<void(sqlite3_stmt*)>& bind,
                                           const char* what);
  // The hold of hold_deltas_after(): deltas above this id are kept.
  std::optional<std::int64_t> held_after() const;

 private:
  struct Impl;
  explicit Store(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace deltatap
