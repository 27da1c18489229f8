/*
 * ui_api.h — the web UI's JSON API (GET /api/...), on the public API only:
 * read the history, never run a script, never write.
 */
#ifndef FL_UI_API_H
#define FL_UI_API_H

#include "flowlua.h"
#include "ui_reply.h"

/* A 200 JSON answer of text the API handed out (flowlua_string_free
   releases it). */
void fl_ui_reply_json(fl_ui_reply *r, char *text);

/* GET /api/runs?flow=&state=&limit=&before=&since=&until=: one page of
   runs (since/until: ISO 8601 UTC, ui_time.h). 400 for a
   parameter that is unknown, repeated, empty or out of range, or a
   `before` that names no run. */
void fl_ui_api_runs(flowlua *rt, const fl_ui_param *params, size_t n,
                    fl_ui_reply *r);

/* GET /api/runs/ID: a run with its task runs, as `flowlua show --json`;
   404 when no run has that id (or unique prefix, or "last"). */
void fl_ui_api_run(flowlua *rt, const char *run_ref, fl_ui_reply *r);

/* GET /api/flows: the flows the history knows (flowlua_report_flows). */
void fl_ui_api_flows(flowlua *rt, fl_ui_reply *r);

#endif
