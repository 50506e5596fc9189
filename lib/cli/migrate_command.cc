// deltatap migrate --to N --db FILE: storage/schema_versions.h, offline.
#include <filesystem>
#include <ostream>
#include <string>

#include "base/files.h"
#include "cli/commands.h"
#include "cli/human_text.h"
#include "storage/schema_versions.h"
#include "storage/store.h"

namespace deltatap::cli {

int cmd_migrate(Context& ctx) {
  auto to_text = ctx.inv.option("--to");
  if (!to_text || (*to_text != "1" && *to_text != std::to_string(kSchemaVersion))) {
    return usage(ctx.io, "migrate needs --to 1 or --to " + std::to_string(kSchemaVersion));
  }
  int to = std::stoi(*to_text);
  // A running deltatapd would write its own version over the file at its next
  // snapshot: the file is changed only while nobody holds its directory.
  auto directory = std::filesystem::path(ctx.where).parent_path();
  if (directory.empty()) directory = ".";
  auto lock = try_lock_file((directory / ".deltatap.lock").string());
  if (lock.ok() && !lock->lock) {
    std::string who = lock->holder ? " (pid " + std::to_string(*lock->holder) + ")" : "";
    return fail(ctx, "a running deltatapd" + who + " uses " + ctx.where +
                         "; stop it first (systemctl stop deltatap)");
  }
  auto outcome = migrate_file(ctx.where, to);
  if (!outcome.ok()) return fail(ctx, outcome.error());
  if (!outcome->changed) {
    ctx.io.out << escape_controls(ctx.where) << ": already at schema version " << to << " ("
               << outcome->deltas << " deltas); nothing to do\n";
    return kExitOk;
  }
  ctx.io.out << escape_controls(ctx.where) << ": schema version " << outcome->from_version
             << " -> " << to << ", " << outcome->deltas << " deltas kept";
  if (to < kSchemaVersion) ctx.io.out << " (each delta's origin and gap, and the ledger, dropped)";
  ctx.io.out << '\n';
  return kExitOk;
}

}  // namespace deltatap::cli
