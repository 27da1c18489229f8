/*
 * ui_run.c — the run page's parts and the loaded runs they come from
 * (ui_run.h says why runs are kept loaded).
 */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <string.h>

#include "ui_api.h"
#include "ui_params.h"
#include "ui_run.h"

/* Runs kept loaded: a few pages open at once. A 100,000-task run holds
   some 50 MB; more would be memory nobody looks at. */
#define KEPT_RUNS 4
/* Page sizes: what one answer may hold, so that a page of a huge run
   stays small (the page draws at most this many rows). */
#define TASKS_DEFAULT 100
#define TASKS_MAX 500
#define TIMELINE_DEFAULT 500
#define TIMELINE_MAX 2000
/* What a part returns when it answered a bad parameter itself (flowlua's
   statuses are 0 or negative). */
#define ANSWERED 1
/* Beyond this many nodes the graph is summed by layer. */
#define GRAPH_MAX_NODES 2000

typedef struct kept {
  char *id;
  flowlua_run_view *view;
  flowlua_run_mark mark;
  unsigned long used; /* the clock of the last use: the oldest goes first */
} kept;

struct fl_ui_runs {
  kept runs[KEPT_RUNS];
  unsigned long clock;
};

fl_ui_runs *fl_ui_runs_new(void) { return calloc(1, sizeof(fl_ui_runs)); }

static void forget(kept *k) {
  flowlua_run_view_free(k->view);
  free(k->id);
  memset(k, 0, sizeof *k);
}

void fl_ui_runs_free(fl_ui_runs *c) {
  if (!c) return;
  for (int i = 0; i < KEPT_RUNS; i++) forget(&c->runs[i]);
  free(c);
}

static int same_mark(const flowlua_run_mark *a, const flowlua_run_mark *b) {
  return a->state == b->state && a->ended_at == b->ended_at &&
         a->task_runs == b->task_runs && a->changes == b->changes;
}

static void not_found(flowlua *rt, int rc, fl_ui_reply *r) {
  /* EINVAL: no such run, or a prefix of several (the message says) */
  fl_ui_reply_error(r, rc == FLOWLUA_EINVAL ? 404 : 500, "%s",
                    flowlua_errmsg(rt));
}

static kept *find(fl_ui_runs *c, const char *id) {
  for (int i = 0; i < KEPT_RUNS; i++)
    if (c->runs[i].id && strcmp(c->runs[i].id, id) == 0) return &c->runs[i];
  return NULL;
}

static kept *slot(fl_ui_runs *c) {
  kept *oldest = &c->runs[0];
  for (int i = 0; i < KEPT_RUNS; i++) {
    if (!c->runs[i].id) return &c->runs[i];
    if (c->runs[i].used < oldest->used) oldest = &c->runs[i];
  }
  forget(oldest);
  return oldest;
}

flowlua_run_view *fl_ui_runs_get(fl_ui_runs *c, flowlua *rt,
                                 const char *run_ref, fl_ui_reply *r) {
  flowlua_run_mark mark = FLOWLUA_INIT(flowlua_run_mark);
  kept *k = find(c, run_ref);
  if (k) { /* a full id: the mark says whether what is kept is current */
    int rc = flowlua_run_mark_get(rt, k->id, &mark);
    if (rc != FLOWLUA_OK) { /* pruned meanwhile, or the history fails */
      forget(k);
      not_found(rt, rc, r);
      return NULL;
    }
    if (same_mark(&mark, &k->mark)) {
      k->used = ++c->clock;
      return k->view;
    }
  }
  /* The mark is read before the run is loaded: a change in between makes
     the next request load it again, never keeps an old load as new. */
  int have_mark = k != NULL;
  flowlua_run_view *v = NULL;
  int rc = flowlua_run_view_open(rt, run_ref, &v);
  if (rc != FLOWLUA_OK) {
    if (k) forget(k);
    not_found(rt, rc, r);
    return NULL;
  }
  if (!have_mark) {
    /* "last" or a prefix: the id is known only now. A run that goes on is
       given a mark that matches nothing, to be loaded again next time. */
    if (flowlua_run_mark_get(rt, flowlua_run_view_id(v), &mark) != FLOWLUA_OK ||
        mark.state == FLOWLUA_FLOW_RUNNING)
      mark.changes = -1;
    k = find(c, flowlua_run_view_id(v));
  }
  if (k)
    forget(k);
  else
    k = slot(c);
  k->id = strdup(flowlua_run_view_id(v));
  if (!k->id) {
    flowlua_run_view_free(v);
    fl_ui_reply_error(r, 500, "out of memory keeping run %s", run_ref);
    return NULL;
  }
  k->view = v;
  k->mark = mark;
  k->used = ++c->clock;
  return v;
}

static int parse_task_state(const char *s, int *out) {
  for (int i = 0; i < FLOWLUA_TASK_STATE_COUNT; i++)
    if (strcmp(s, flowlua_task_state_name(i)) == 0) {
      *out = i;
      return 0;
    }
  return -1;
}

static int part_tasks(flowlua *rt, flowlua_run_view *v,
                      const fl_ui_param *params, size_t n, fl_ui_reply *r,
                      char **text) {
  static const char *const keys[] = {"state", "offset", "limit"};
  const char *val[3];
  if (!fl_ui_params_take(params, n, keys, 3, val, r)) return ANSWERED;
  flowlua_tasks_query q = {.state = -1, .offset = 0, .limit = TASKS_DEFAULT};
  long num;
  if (val[0] && parse_task_state(val[0], &q.state) != 0) {
    fl_ui_reply_error(r, 400, "state '%.100s' is not a task state (Pending, "
                              "Running, Success, Failed, Retrying, TimedOut, "
                              "Skipped, TriggerFailed, Cancelled, Cached)",
                      val[0]);
    return ANSWERED;
  }
  if (val[1]) {
    if (fl_ui_param_number("offset", val[1], 0, 1000000000L, &num, r)) return ANSWERED;
    q.offset = (size_t)num;
  }
  if (val[2]) {
    if (fl_ui_param_number("limit", val[2], 1, TASKS_MAX, &num, r)) return ANSWERED;
    q.limit = (size_t)num;
  }
  return flowlua_run_view_tasks(rt, v, &q, text);
}

static int part_timeline(flowlua *rt, flowlua_run_view *v,
                         const fl_ui_param *params, size_t n, fl_ui_reply *r,
                         char **text) {
  static const char *const keys[] = {"offset", "limit"};
  const char *val[2];
  if (!fl_ui_params_take(params, n, keys, 2, val, r)) return ANSWERED;
  long offset = 0, limit = TIMELINE_DEFAULT;
  if (val[0] && fl_ui_param_number("offset", val[0], 0, 1000000000L, &offset, r))
    return ANSWERED;
  if (val[1] && fl_ui_param_number("limit", val[1], 1, TIMELINE_MAX, &limit, r))
    return ANSWERED;
  return flowlua_run_view_timeline(rt, v, (size_t)offset, (size_t)limit, text);
}

void fl_ui_api_run_part(fl_ui_runs *c, flowlua *rt, const char *run_ref,
                        const char *part, const fl_ui_param *params, size_t n,
                        fl_ui_reply *r) {
  int known = strcmp(part, "summary") == 0 || strcmp(part, "tasks") == 0 ||
              strcmp(part, "graph") == 0 || strcmp(part, "timeline") == 0;
  if (!known) {
    fl_ui_reply_error(r, 404, "no such API path (a run's parts: summary, "
                              "tasks, graph, timeline, events)");
    return;
  }
  int takes_none = strcmp(part, "summary") == 0 || strcmp(part, "graph") == 0;
  const char *none[1];
  if (takes_none && !fl_ui_params_take(params, n, NULL, 0, none, r)) return;
  flowlua_run_view *v = fl_ui_runs_get(c, rt, run_ref, r);
  if (!v) return;
  char *text = NULL;
  int rc;
  if (strcmp(part, "summary") == 0)
    rc = flowlua_run_view_summary(rt, v, &text);
  else if (strcmp(part, "graph") == 0)
    rc = flowlua_run_view_graph(rt, v, GRAPH_MAX_NODES, &text);
  else if (strcmp(part, "tasks") == 0)
    rc = part_tasks(rt, v, params, n, r, &text);
  else
    rc = part_timeline(rt, v, params, n, r, &text);
  if (rc == ANSWERED) return; /* a bad parameter, said */
  if (rc == FLOWLUA_OK)
    fl_ui_reply_json(r, text);
  else
    fl_ui_reply_error(r, 500, "%s", flowlua_errmsg(rt));
}
