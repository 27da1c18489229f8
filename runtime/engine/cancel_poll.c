/*
 * cancel_poll.c — cancels asked for through the history. Another process
 * (flowlua ui, on any host of a PostgreSQL history) cannot signal the
 * process running a run, so it records the request (run_cancel); this
 * process looks for requests about its recorded runs once a second while
 * it has any, and cancels those runs only, as a signal cancels them all.
 *
 * A task busy in Lua code holds the loop, so the request is seen when it
 * yields or ends (a parked task — HTTP, flow.sleep, a worker's job — is
 * interrupted at once); no task starts after it.
 */
#include <stdlib.h>

#include "engine.h"
#include "record.h"
#include "store.h"

#define POLL_SECONDS 1.0

static void poll_history(fl_timer *t);

static size_t recorded_runs(flowlua *rt) {
  size_t n = 0;
  for (fl_sched *s = rt->active; s; s = s->next_active)
    if (s->rec && !s->cancel_asked && !s->cancelling) n++;
  return n;
}

void fl_cancel_poll_arm(flowlua *rt) {
  if (!rt->cancel_poll_ready) {
    fl_timer_init(&rt->cancel_poll, poll_history, rt);
    rt->cancel_poll_ready = 1;
  }
  if (!fl_timer_armed(&rt->cancel_poll))
    fl_timer_start(&rt->loop, &rt->cancel_poll, POLL_SECONDS);
}

void fl_cancel_poll_stop(flowlua *rt) {
  if (rt->cancel_poll_ready) fl_timer_stop(&rt->loop, &rt->cancel_poll);
}

static void poll_history(fl_timer *t) {
  flowlua *rt = t->data;
  size_t n = rt->store ? recorded_runs(rt) : 0;
  if (n == 0) return; /* armed again by the next recorded run */
  fl_sched **runs = malloc(n * sizeof *runs);
  const char **ids = malloc(n * sizeof *ids);
  unsigned char *asked = malloc(n);
  if (runs && ids && asked) {
    size_t i = 0;
    for (fl_sched *s = rt->active; s; s = s->next_active)
      if (s->rec && !s->cancel_asked && !s->cancelling) {
        runs[i] = s;
        ids[i++] = fl_store_run_id(s->rec);
      }
    if (fl_store_cancel_requests(rt->store, ids, n, asked) != FLOWLUA_OK) {
      /* Next time, maybe: the history's own failures are the writes'. */
      fl_log_printf(&rt->log, FLOWLUA_LOG_DEBUG, NULL, "%s",
                    fl_store_errmsg(rt->store));
    } else {
      for (i = 0; i < n; i++) {
        if (!asked[i]) continue;
        runs[i]->cancel_asked = 1;
        fl_log_printf(&rt->log, FLOWLUA_LOG_WARN, runs[i]->g->flow->name,
                      "run %s: a cancel was asked for through the history",
                      ids[i]);
      }
    }
  }
  free(runs);
  free(ids);
  free(asked);
  fl_timer_start(&rt->loop, &rt->cancel_poll, POLL_SECONDS);
}
