// commands: one entry point per command, called by run_cli() once the
// invocation is known to be well formed (the command exists, its positional
// count is right) and the source is open.
//
// Each writes its answer to ctx.io.out, reports problems through context.h and
// returns the exit code. The --format and other command options are checked by
// the command itself; the help texts that describe them are in args.cc.
#pragma once

#include "cli/context.h"

namespace deltatap::cli {

// query_commands.cc
int cmd_query(Context& ctx);
int cmd_sessions(Context& ctx);

// timeline_command.cc
int cmd_timeline(Context& ctx);  // ctx.inv.positionals[0] is the session id

// export_command.cc
int cmd_export(Context& ctx);

// maintenance_commands.cc
int cmd_stats(Context& ctx);
int cmd_cleanup(Context& ctx);   // with --db, ctx.file must be a private_copy source
int cmd_snapshot(Context& ctx);  // needs the live daemon
int cmd_check(Context& ctx);

// analytics_command.cc
int cmd_analytics(Context& ctx);  // ctx.inv.positionals[0] names the answer

// migrate_command.cc
int cmd_migrate(Context& ctx);   // ctx.where is the --db file; no source is open

}  // namespace deltatap::cli
