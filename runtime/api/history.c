/*
 * history.c — flowlua_report_runs and flowlua_report_run: `flowlua runs`
 * and `flowlua show`, for the CLI and embedders alike.
 *
 * Reading never creates a store: a state file that does not exist yet
 * holds no runs. Runs of processes that are gone are marked Crashed first,
 * so a report never shows a dead run as Running.
 */
#define _POSIX_C_SOURCE 200809L
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "record.h"
#include "store.h"

/* The history: rt's own store when open, else a handle of its own in
   *tmp (closed by the caller), or NULL when the file does not exist;
   read-only unless `writing` (a prune). */
int fl_history_open_for(flowlua *rt, int writing, fl_store **st,
                        fl_store **tmp) {
  *st = *tmp = NULL;
  fl_buf_reset(&rt->err);
  if (rt->store) {
    *st = rt->store;
    return FLOWLUA_OK;
  }
  if (rt->history && !writing) {
    /* Kept open: what a fresh handle does first, marking the runs of
       processes that are gone, is done again at most once a second (it
       costs a query, and a server may answer thousands of requests a
       second; a crash is not noticed sooner than that anyway). */
    double now = fl_wall_time();
    if (!(now - rt->history_marked_at < 1.0 && now >= rt->history_marked_at)) {
      if (fl_store_mark_crashed(rt->history, now, NULL) != FLOWLUA_OK) {
        fl_set_error(rt, "%s", fl_store_errmsg(rt->history));
        return FLOWLUA_EIO;
      }
      fl_record_log_notices(rt, rt->history);
      rt->history_marked_at = now;
    }
    *st = rt->history;
    return FLOWLUA_OK;
  }
  const char *path = rt->state_path;
  if (!path || !*path || strcmp(path, ":memory:") == 0) {
    fl_set_error(rt, "no run history%s: the runtime keeps none (state path "
                     "%s)", writing ? " to change" : "",
                 path && *path ? rt->state_name : "not set");
    return FLOWLUA_ESTATE;
  }
  fl_store_options o;
  fl_store_options_init(&o);
  o.must_exist = 1;
  o.reading = !writing;
  char err[512];
  if (fl_store_open(path, &o, tmp, err, sizeof err) != FLOWLUA_OK) {
    fl_set_error(rt, "%s", err);
    return FLOWLUA_EIO;
  }
  int status = *tmp ? fl_store_mark_crashed(*tmp, fl_wall_time(), NULL)
                    : FLOWLUA_OK;
  if (*tmp) fl_record_log_notices(rt, *tmp);
  if (status != FLOWLUA_OK) {
    fl_set_error(rt, "%s", fl_store_errmsg(*tmp));
    fl_store_close(*tmp);
    *tmp = NULL;
    return FLOWLUA_EIO;
  }
  *st = *tmp;
  return FLOWLUA_OK;
}

int flowlua_history_keep_open(flowlua *rt) {
  if (!rt) return FLOWLUA_EINVAL;
  if (rt->history) return FLOWLUA_OK;
  fl_store *st, *tmp;
  int rc = fl_history_open_for(rt, 0, &st, &tmp);
  if (rc) return rc;
  if (!st) {
    fl_set_error(rt, "no run history at %s to keep open (run a flow first)",
                 rt->state_name);
    return FLOWLUA_EINVAL;
  }
  rt->history = tmp; /* NULL when st is rt's own store: nothing to keep */
  rt->history_marked_at = fl_wall_time(); /* opening marked them */
  return FLOWLUA_OK;
}

int fl_history_open(flowlua *rt, fl_store **st, fl_store **tmp) {
  return fl_history_open_for(rt, 0, st, tmp);
}

int fl_history_open_run(flowlua *rt, const char *who, const char *run_ref,
                        fl_store **st, fl_store **tmp) {
  *st = *tmp = NULL;
  if (!run_ref || !*run_ref) {
    fl_set_error(rt, "%s: a run id (or \"last\") is required", who);
    return FLOWLUA_EINVAL;
  }
  int rc = fl_history_open(rt, st, tmp);
  if (rc == FLOWLUA_OK && !*st) {
    fl_set_error(rt, "no run '%s': no runs recorded yet (no state file at %s)",
                 run_ref, rt->state_name);
    return FLOWLUA_EINVAL;
  }
  return rc;
}

/* Hands the text in b to *out, or fails with ENOMEM. */
static int give_text(flowlua *rt, fl_buf *b, char **out) {
  if (b->oom) {
    fl_buf_free(b);
    fl_set_error(rt, "out of memory writing the report");
    return FLOWLUA_ENOMEM;
  }
  *out = b->data ? b->data : strdup("");
  b->data = NULL;
  fl_buf_free(b);
  if (!*out) {
    fl_set_error(rt, "out of memory writing the report");
    return FLOWLUA_ENOMEM;
  }
  return FLOWLUA_OK;
}

int flowlua_report_runs(flowlua *rt, const char *flow, int limit, int json,
                        char **out) {
  if (!rt || !out) return FLOWLUA_EINVAL;
  *out = NULL;
  fl_store *st, *tmp;
  int rc = fl_history_open(rt, &st, &tmp);
  if (rc) return rc;
  fl_store_run_list list = {0};
  if (st && fl_store_list_runs(st, flow, limit, &list) != FLOWLUA_OK) {
    fl_set_error(rt, "%s", fl_store_errmsg(st));
    fl_store_run_list_free(&list);
    fl_store_close(tmp);
    return FLOWLUA_EIO;
  }
  fl_buf b = FL_BUF_INIT;
  fl_store_print_runs(&b, &list, json);
  fl_store_run_list_free(&list);
  fl_store_close(tmp);
  return give_text(rt, &b, out);
}

/* The page's list, one run more than asked so that *more says whether a
   next page exists; the extra run is not part of the page. */
static int list_page(flowlua *rt, fl_store *st, const flowlua_runs_query *q,
                     fl_store_run_list *list, int *more) {
  fl_store_run_filter f = {.flow = q->flow, .state = q->state,
                           .before = q->before, .since = q->since,
                           .until = q->until,
                           .limit = q->limit > 0 && q->limit < INT_MAX
                                        ? q->limit + 1 : 0};
  *more = 0;
  int rc = fl_store_list_runs_where(st, &f, list);
  if (rc != FLOWLUA_OK) {
    fl_set_error(rt, "%s", fl_store_errmsg(st));
    return rc == FLOWLUA_EINVAL ? rc : FLOWLUA_EIO;
  }
  if (q->limit > 0 && list->n > (size_t)q->limit) {
    list->n = (size_t)q->limit;
    *more = 1;
  }
  return FLOWLUA_OK;
}

int flowlua_report_runs_page(flowlua *rt, const flowlua_runs_query *q,
                             char **out) {
  if (!rt || !q || !out) return FLOWLUA_EINVAL;
  *out = NULL;
  if (q->state < -1 || q->state >= FLOWLUA_FLOW_STATE_COUNT) {
    fl_set_error(rt, "flowlua_report_runs_page: no flow state %d", q->state);
    return FLOWLUA_EINVAL;
  }
  fl_store *st, *tmp;
  int rc = fl_history_open(rt, &st, &tmp);
  if (rc) return rc;
  fl_store_run_list list = {0};
  int more = 0;
  if (st && (rc = list_page(rt, st, q, &list, &more)) != FLOWLUA_OK) {
    fl_store_run_list_free(&list);
    fl_store_close(tmp);
    return rc;
  }
  if (!st && q->before) { /* no history: no run to page from either */
    fl_set_error(rt, "no run '%s' to list the runs before", q->before);
    return FLOWLUA_EINVAL;
  }
  fl_buf b = FL_BUF_INIT;
  fl_buf_adds(&b, "{\"runs\":");
  fl_store_print_runs(&b, &list, 1);
  while (b.len && b.data[b.len - 1] == '\n') b.len--; /* the CLI's newline */
  fl_buf_adds(&b, ",\"next_before\":");
  if (more)
    fl_buf_add_json_string(&b, list.rows[list.n - 1].run_id);
  else
    fl_buf_adds(&b, "null");
  fl_buf_adds(&b, "}\n");
  fl_store_run_list_free(&list);
  fl_store_close(tmp);
  return give_text(rt, &b, out);
}

int flowlua_report_run(flowlua *rt, const char *run_ref, int json,
                       char **out) {
  return flowlua_report_flow_run(rt, run_ref, NULL, json, out);
}

int flowlua_report_flow_run(flowlua *rt, const char *run_ref,
                            const char *flow, int json, char **out) {
  if (!rt || !out) return FLOWLUA_EINVAL;
  *out = NULL;
  fl_store *st, *tmp;
  int rc = fl_history_open_run(rt, "flowlua_report_run", run_ref, &st, &tmp);
  if (rc) return rc;
  fl_store_run_detail *d = NULL;
  rc = fl_store_load_run(st, run_ref, flow, &d);
  if (rc != FLOWLUA_OK) {
    fl_set_error(rt, "%s", fl_store_errmsg(st));
    fl_store_close(tmp);
    return rc;
  }
  /* Its tasks' log lines: a run that logged nothing costs two empty
     queries. */
  fl_store_log_list logs;
  rc = fl_store_load_logs(st, d, NULL, &logs);
  if (rc != FLOWLUA_OK) {
    fl_set_error(rt, "%s", fl_store_errmsg(st));
    fl_store_log_list_free(&logs);
    fl_store_run_detail_free(d);
    fl_store_close(tmp);
    return rc;
  }
  fl_buf b = FL_BUF_INIT;
  fl_store_print_run(&b, d, &logs, json);
  fl_store_log_list_free(&logs);
  fl_store_run_detail_free(d);
  fl_store_close(tmp);
  return give_text(rt, &b, out);
}

/* "events": [...] of a task run, for flowlua_report_task_run. */
static void add_events_json(fl_buf *b, const fl_store_event_list *ev) {
  fl_buf_adds(b, "\"events\":[");
  for (size_t i = 0; i < ev->n; i++) {
    const fl_store_task_event *e = &ev->items[i];
    fl_buf_addf(b, "%s{\"seq\":%lld,\"at\":", i ? "," : "",
                (long long)e->seq);
    fl_store_add_json_time(b, e->at);
    fl_buf_adds(b, ",\"state\":");
    fl_buf_add_json_string(b, fl_store_task_state_name(e->state));
    fl_buf_addf(b, ",\"attempt\":%d,\"error\":", e->attempt);
    if (e->error)
      fl_buf_add_json_string(b, e->error);
    else
      fl_buf_adds(b, "null");
    fl_buf_adds(b, ",\"worker\":");
    if (e->worker_pid > 0) {
      fl_buf_adds(b, "{\"host\":");
      fl_buf_add_json_string(b, e->worker_host ? e->worker_host : "");
      fl_buf_addf(b, ",\"pid\":%lld}", (long long)e->worker_pid);
    } else {
      fl_buf_adds(b, "null");
    }
    fl_buf_addc(b, '}');
  }
  fl_buf_addc(b, ']');
}

int flowlua_report_task_run(flowlua *rt, const char *run_ref,
                            const char *task_key, char **out) {
  if (!rt || !out) return FLOWLUA_EINVAL;
  *out = NULL;
  if (!task_key || !*task_key) {
    fl_set_error(rt, "flowlua_report_task_run: a task key is required");
    return FLOWLUA_EINVAL;
  }
  fl_store *st, *tmp;
  int rc = fl_history_open_run(rt, "flowlua_report_task_run", run_ref, &st,
                               &tmp);
  if (rc) return rc;
  fl_store_run_detail *d = NULL;
  fl_store_log_list logs = {0};
  fl_store_event_list events = {0};
  fl_buf b = FL_BUF_INIT, more = FL_BUF_INIT;
  rc = fl_store_load_run(st, run_ref, NULL, &d);
  if (rc != FLOWLUA_OK) {
    fl_set_error(rt, "%s", fl_store_errmsg(st));
    goto done;
  }
  const fl_store_task_row *t = fl_store_detail_find(d, task_key);
  if (!t) {
    fl_set_error(rt, "run %s has no task run '%s' (%zu task run%s: keys as "
                     "`flowlua show` lists them)",
                 d->run.run_id, task_key, d->n_tasks,
                 d->n_tasks == 1 ? "" : "s");
    rc = FLOWLUA_EINVAL;
    goto done;
  }
  rc = fl_store_load_logs(st, d, task_key, &logs);
  if (rc == FLOWLUA_OK)
    rc = fl_store_load_task_events(st, d, task_key, &events);
  if (rc != FLOWLUA_OK) {
    fl_set_error(rt, "%s", fl_store_errmsg(st));
    goto done;
  }
  fl_buf_adds(&more, "\"run\":");
  fl_buf_add_json_string(&more, d->run.run_id);
  fl_buf_addc(&more, ',');
  add_events_json(&more, &events);
  if (more.oom) b.oom = 1;
  fl_store_print_task_json(&b, d, (size_t)(t - d->tasks), &logs,
                           fl_buf_str(&more));
  fl_buf_addc(&b, '\n');
  rc = give_text(rt, &b, out);
done:
  fl_buf_free(&b);
  fl_buf_free(&more);
  fl_store_event_list_free(&events);
  fl_store_log_list_free(&logs);
  fl_store_run_detail_free(d);
  fl_store_close(tmp);
  return rc;
}
