// migrate_file: rewrites a database file as another schema version, offline
// (`deltatap migrate --to N --db FILE`; design.md, "The store").
//
//   to 4 (kSchemaVersion): what deltatapd does on load, done ahead of time:
//        versions 0 and 1 gain `origin` and `gap` and the ledger, versions
//        before 3 `before_ref`, state_dictionaries and the view
//        session_deltas_json (compression), every row kept; version 3 only
//        changes its number (4 allows integer times, storage/time_columns.h).
//   to 1: the rollback for an older deltatap (the domain document's "rollback
//        capability"): every delta is kept, with the columns version 1 has;
//        what version 1 cannot hold goes (each delta's origin and gap, and the
//        ledger, which version 1 rebuilds as its own session summary on load);
//        compressed states and references are written out as JSON text,
//        integer times as text.
//
// The file is replaced atomically (snapshot.h's write_snapshot_file: a crash
// leaves the old file or the new one) and keeps nothing of the old file's
// pages. A file already at the version asked for is left as it is.
// Blocks on the disk; the caller makes sure no deltatapd uses the file.
#pragma once

#include <cstdint>
#include <string>

#include "base/result.h"

namespace deltatap {

struct MigrateOutcome {
  int from_version = 0;
  int to_version = 0;
  std::int64_t deltas = 0;  // rows in the file after it
  bool changed = false;     // false: the file was at that version already
};

// `to` is 1 or kSchemaVersion; anything else is an error naming the versions known.
Result<MigrateOutcome> migrate_file(const std::string& path, int to);

}  // namespace deltatap
