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

/* The page size when none is given, and the most one page may hold: a page
   is built in memory, whole, at each request. */
#define RUNS_DEFAULT_LIMIT 50
#define RUNS_MAX_LIMIT 500

static void release_flowlua(void *body) { flowlua_string_free(body); }
static int parse_limit(const char *s, int *out) {
  if (!s || !*s || strlen(s) > 4) return -1;
  int v = 0;
  for (const char *p = s; *p; p++) {
    if (*p < '0' || *p > '9') return -1;
    v = v * 10 + (*p - '0');
  }
  if (v < 1 || v > RUNS_MAX_LIMIT) return -1;
  *out = v;
  return 0;
}

static int parse_state(const char *s, int *out) {
  for (int i = 0; s && i < FLOWLUA_FLOW_STATE_COUNT; i++)
    if (strcmp(s, flowlua_flow_state_name(i)) == 0) {
      *out = i;
      return 0;
    }
  return -1;
}

/* The filter of the query string, or 0 with a 400 answer in r. */
static int read_query(const fl_ui_param *params, size_t n,
                      flowlua_runs_query *q, fl_ui_reply *r) {
  static const char *const keys[] = {"flow", "state", "limit", "before"};
  const char *seen[4] = {0};
  for (size_t i = 0; i < n; i++) {
    size_t k = 0;
    while (k < 4 && strcmp(params[i].key, keys[k]) != 0) k++;
    if (k == 4) {
      fl_ui_reply_error(r, 400, "unknown parameter '%.100s' (known: flow, "
                                "state, limit, before)", params[i].key);
      return 0;
    }
    if (seen[k]) {
      fl_ui_reply_error(r, 400, "parameter '%s' given twice", keys[k]);
      return 0;
    }
    if (!params[i].value || !*params[i].value) {
      fl_ui_reply_error(r, 400, "parameter '%s' is empty", keys[k]);
      return 0;
    }
    seen[k] = params[i].value;
  }
  *q = (flowlua_runs_query){.flow = seen[0], .state = -1, .before = seen[3],
                            .limit = RUNS_DEFAULT_LIMIT};
  if (seen[1] && parse_state(seen[1], &q->state) != 0) {
    fl_ui_reply_error(r, 400, "state '%.100s' is not a run state (Scheduled, "
                              "Running, Success, Failed, Cancelled, Crashed)",
                      seen[1]);
    return 0;
  }
  if (seen[2] && parse_limit(seen[2], &q->limit) != 0) {
    fl_ui_reply_error(r, 400, "limit '%.100s' is not a whole number from 1 "
                              "to %d", seen[2], RUNS_MAX_LIMIT);
    return 0;
  }
  return 1;
}

static void reply_json(fl_ui_reply *r, char *text) {
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
    reply_json(r, text);
  else
    fl_ui_reply_error(r, rc == FLOWLUA_EINVAL ? 400 : 500, "%s",
                      flowlua_errmsg(rt));
}

void fl_ui_api_run(flowlua *rt, const char *run_ref, fl_ui_reply *r) {
  char *text = NULL;
  int rc = flowlua_report_run(rt, run_ref, 1, &text);
  if (rc == FLOWLUA_OK)
    reply_json(r, text);
  else /* EINVAL: no such run, or a prefix of several */
    fl_ui_reply_error(r, rc == FLOWLUA_EINVAL ? 404 : 500, "%s",
                      flowlua_errmsg(rt));
}

void fl_ui_api_flows(flowlua *rt, fl_ui_reply *r) {
  char *text = NULL;
  if (flowlua_report_flows(rt, &text) == FLOWLUA_OK)
    reply_json(r, text);
  else
    fl_ui_reply_error(r, 500, "%s", flowlua_errmsg(rt));
}
