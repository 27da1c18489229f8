/*
 * retention.c — a serving process's own pruning (flowlua_options.retention,
 * `--retention AGE`): at the start and once a day, the runs that ended
 * longer ago than the retention are deleted from the history.
 *
 * The prune (store_prune.c) goes one short transaction per turn of the
 * loop, from a timer: the scheduler's fire times and the runs in progress
 * wait at most one step (about 15 ms), never the whole prune.
 */
#include "retention.h"

#include "log.h"
#include "store.h"

/* Once a day; an hour after a prune that failed (the file busy, the disk
   full), so that one failure is not a day without pruning. */
#define RETENTION_EVERY 86400.0
#define RETENTION_RETRY 3600.0

static void finish(fl_retention *r, int failed) {
  const fl_store_prune_result *res = fl_store_prune_done(r->prune);
  if (!failed)
    fl_log_printf(&r->rt->log, FLOWLUA_LOG_INFO, NULL,
             "retention: pruned %zu run(s) (%zu task runs), %zu fire "
             "event(s) older than the retention",
             res->runs, res->task_runs, res->fire_events);
  fl_store_prune_free(r->prune);
  r->prune = NULL;
  fl_timer_start(&r->rt->loop, &r->timer,
                 failed ? RETENTION_RETRY : RETENTION_EVERY);
}

static void on_timer(fl_timer *t) {
  fl_retention *r = t->data;
  flowlua *rt = r->rt;
  if (!rt->store) { /* no history (":memory:"): nothing to prune, ever */
    return;
  }
  if (!r->prune) {
    fl_store_prune_opts o = {.older_than = rt->opts.retention};
    if (fl_store_prune_begin(rt->store, &o, fl_wall_time(), &r->prune) !=
        FLOWLUA_OK) {
      fl_log_printf(&r->rt->log, FLOWLUA_LOG_WARN, NULL,
                    "retention: %s (tried again in an hour)",
               fl_store_errmsg(rt->store));
      fl_timer_start(&rt->loop, &r->timer, RETENTION_RETRY);
      return;
    }
  }
  int rc = fl_store_prune_step(r->prune);
  if (rc == 1) {
    /* The next step a turn of the loop later, after a breath: SQLite's
       lock is not fair, and a writer polling for it would otherwise often
       find the next step there first. */
    fl_timer_start(&rt->loop, &r->timer, 0.002);
  } else if (rc == 0) {
    finish(r, 0);
  } else {
    fl_log_printf(&r->rt->log, FLOWLUA_LOG_WARN, NULL,
             "retention: pruning the history failed (tried again in an "
             "hour): %s",
             fl_store_errmsg(rt->store));
    finish(r, 1);
  }
}

void fl_retention_start(fl_retention *r, flowlua *rt) {
  *r = (fl_retention){.rt = rt};
  fl_timer_init(&r->timer, on_timer, r);
  if (rt->opts.retention > 0 && rt->store)
    fl_timer_start(&rt->loop, &r->timer, 0);
}

void fl_retention_stop(fl_retention *r) {
  if (!r->rt) return;
  fl_timer_stop(&r->rt->loop, &r->timer);
  fl_store_prune_free(r->prune);
  r->prune = NULL;
  r->rt = NULL;
}
