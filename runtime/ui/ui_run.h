/*
 * ui_run.h — the parts of a run the run page asks for (GET
 * /api/runs/ID/summary, /tasks, /graph, /timeline) and the few loaded
 * runs they are read from.
 *
 * A run of 100,000 task runs takes a good part of a second to load, and
 * its page asks for four parts, then again at each live update: the
 * loaded run (a flowlua_run_view) is kept, and loaded again only when its
 * mark (flowlua_run_mark_get: a query, not a load) says it changed.
 * Callers hold the server's lock (ui_server.c): the cache and the
 * flowlua handle are used by one thread at a time.
 */
#ifndef FL_UI_RUN_H
#define FL_UI_RUN_H

#include "flowlua.h"
#include "ui_reply.h"

typedef struct fl_ui_runs fl_ui_runs;

/* NULL when out of memory. */
fl_ui_runs *fl_ui_runs_new(void);
void fl_ui_runs_free(fl_ui_runs *c);

/* The loaded run that run_ref (a full id, a unique prefix, or "last")
   names, up to date: borrowed, valid until the next call on c. NULL with
   a 404 (no such run) or 500 answer in r. */
flowlua_run_view *fl_ui_runs_get(fl_ui_runs *c, flowlua *rt,
                                 const char *run_ref, fl_ui_reply *r);

/* GET /api/runs/ID/PART: summary, tasks?state=&offset=&limit=, graph,
   timeline?offset=&limit=; 404 for another part. */
void fl_ui_api_run_part(fl_ui_runs *c, flowlua *rt, const char *run_ref,
                        const char *part, const fl_ui_param *params, size_t n,
                        fl_ui_reply *r);

#endif
