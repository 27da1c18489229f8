/*
 * serve_cmd.h — `flowlua serve PATH...` (serve_cmd.c): every scheduled
 * flow of the given scripts and folders served in one process, one
 * thread and one runtime handle per flow, on the public API only.
 */
#ifndef FL_SERVE_CMD_H
#define FL_SERVE_CMD_H

#include "cli.h"
#include "flowlua.h"

/* Serves until every flow is done (max-runs, until) or a signal stops
   it; returns the exit code: 0 every run succeeded, 1 one failed (or the
   history failed), 2 bad usage or a script that does not load (nothing
   served), 130 a signal cancelled a run. opts are each handle's (the
   daily prune, opts->retention, runs on the first flow's handle only). */
int cli_serve(const cli_args *args, const flowlua_options *opts);

#endif
