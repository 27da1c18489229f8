/*
 * ui_api.c — the JSON API of `flowlua ui`: its parameters checked, the
 * history read through flowlua.h, the answer or a JSON error.
 *
 * Parameters are strict: an unknown or repeated one is a 400, not
 * ignored, so that a typo in a script's URL does not silently list every
 * run.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "ui_api.h"
#include "ui_params.h"
#include "ui_time.h"

/* The page size when none is given, and the most one page may hold: a page
   is built in memory, whole, at each request. */
#define RUNS_DEFAULT_LIMIT 50
#define RUNS_MAX_LIMIT 500

static void release_flowlua(void *body) { flowlua_string_free(body); }

static int parse_state(const char *s, int *out) {
  for (int i = 0; s && i < FLOWLUA_FLOW_STATE_COUNT; i++)
    if (strcmp(s, flowlua_flow_state_name(i)) == 0) {
      *out = i;
      return 0;
    }
  return -1;
}

static int parse_bound(const char *key, const char *value, double *out,
                       fl_ui_reply *r) {
  if (!value) return 1;
  if (fl_ui_parse_time(value, out) == 0) return 1;
  fl_ui_reply_error(r, 400, "%s '%.100s' is not a time in UTC as the API "
                            "writes them (2026-12-05T12:00:00Z, or with "
                            ".mmm milliseconds)", key, value);
  return 0;
}

/* The filter of the query string, or 0 with a 400 answer in r. */
static int read_query(const fl_ui_param *params, size_t n,
                      flowlua_runs_query *q, fl_ui_reply *r) {
  static const char *const keys[] = {"flow", "state", "limit", "before",
                                     "since", "until"};
  const char *v[6];
  if (!fl_ui_params_take(params, n, keys, 6, v, r)) return 0;
  *q = (flowlua_runs_query){.flow = v[0], .state = -1, .before = v[3],
                            .limit = RUNS_DEFAULT_LIMIT};
  if (v[1] && parse_state(v[1], &q->state) != 0) {
    fl_ui_reply_error(r, 400, "state '%.100s' is not a run state (Scheduled, "
                              "Running, Success, Failed, Cancelled, Crashed)",
                      v[1]);
    return 0;
  }
  long limit;
  if (v[2]) {
    if (fl_ui_param_number("limit", v[2], 1, RUNS_MAX_LIMIT, &limit, r)) return 0;
    q->limit = (int)limit;
  }
  if (!parse_bound("since", v[4], &q->since, r) ||
      !parse_bound("until", v[5], &q->until, r))
    return 0;
  if (v[4] && v[5] && q->until <= q->since) {
    fl_ui_reply_error(r, 400, "until (%s) is not after since (%s)", v[5], v[4]);
    return 0;
  }
  return 1;
}

void fl_ui_reply_json(fl_ui_reply *r, char *text) {
  *r = (fl_ui_reply){.status = 200, .type = "application/json",
                     .body = text, .len = strlen(text),
                     .release = release_flowlua, .api = 1};
}

void fl_ui_api_runs(flowlua *rt, const fl_ui_param *params, size_t n,
                    fl_ui_reply *r) {
  flowlua_runs_query q;
  if (!read_query(params, n, &q, r)) return;
  char *text = NULL;
  int rc = flowlua_report_runs_page(rt, &q, &text);
  if (rc == FLOWLUA_OK)
    fl_ui_reply_json(r, text);
  else
    fl_ui_reply_error(r, rc == FLOWLUA_EINVAL ? 400 : 500, "%s",
                      flowlua_errmsg(rt));
}

void fl_ui_api_run(flowlua *rt, const char *run_ref, fl_ui_reply *r) {
  char *text = NULL;
  int rc = flowlua_report_run(rt, run_ref, 1, &text);
  if (rc == FLOWLUA_OK)
    fl_ui_reply_json(r, text);
  else /* EINVAL: no such run, or a prefix of several */
    fl_ui_reply_error(r, rc == FLOWLUA_EINVAL ? 404 : 500, "%s",
                      flowlua_errmsg(rt));
}

void fl_ui_api_flows(flowlua *rt, fl_ui_reply *r) {
  char *text = NULL;
  if (flowlua_report_flows(rt, &text) == FLOWLUA_OK)
    fl_ui_reply_json(r, text);
  else
    fl_ui_reply_error(r, 500, "%s", flowlua_errmsg(rt));
}
