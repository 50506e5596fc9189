// deltatap_sqlite: a loadable SQLite extension registering deltatap_json(value)
// (storage/state_codec.h), so that a plain `sqlite3` shell can read a store
// written with [storage] compression = zstd through the view
// session_deltas_json:
//
//   sqlite3 data/sessions.sqlite '.load /usr/lib/deltatap/deltatap_sqlite'
//           'SELECT * FROM session_deltas_json LIMIT 5'
//
// (one command line: the shell runs each argument in turn).
//
// SQLite finds the entry point under its default name, sqlite3_extension_init.
// Every SQLite call of this library goes through the host's API table
// (sqlite3ext.h): the codec is compiled into it with DELTATAP_SQLITE_EXTENSION.
#include <sqlite3ext.h>
SQLITE_EXTENSION_INIT1

#include "storage/state_codec.h"

extern "C" {

int sqlite3_extension_init(sqlite3* db, char** error, const sqlite3_api_routines* api) {
  SQLITE_EXTENSION_INIT2(api);
  auto registered = deltatap::StateCodec::register_sql_function(db);
  if (!registered.ok()) {
    *error = sqlite3_mprintf("%s", registered.error().c_str());
    return SQLITE_ERROR;
  }
  return SQLITE_OK;
}

}  // extern "C"
