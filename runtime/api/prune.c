/*
 * prune.c — flowlua_prune: `flowlua prune`, for the CLI and embedders.
 *
 * The store does the deleting a short transaction at a time
 * (store_prune.c); this drives its steps to the end on a handle of its
 * own, or on the runtime's when it has one open (a serving process).
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <sys/stat.h>
#include <time.h>

#include "api.h"
#include "store.h"

/* The pause between two steps of a prune (see flowlua_prune). */
#define STEP_PAUSE_NS 2000000

/* The file's size with its WAL: what the prune gives back. */
static long long file_bytes(const char *path) {
  struct stat sb;
  long long n = stat(path, &sb) == 0 ? (long long)sb.st_size : 0;
  char wal[4096];
  snprintf(wal, sizeof wal, "%s-wal", path);
  if (stat(wal, &sb) == 0) n += (long long)sb.st_size;
  return n;
}

int flowlua_prune(flowlua *rt, const flowlua_prune_options *opts,
                  flowlua_prune_result *out) {
  if (!rt || !opts) return FLOWLUA_EINVAL;
  fl_buf_reset(&rt->err);
  if (!FL_API_SIZED(rt, "flowlua_prune", opts) ||
      !FL_API_SIZED(rt, "flowlua_prune", out))
    return FLOWLUA_EINVAL;
  if (out) *out = (flowlua_prune_result){.size = sizeof *out};
  if (!(opts->older_than >= 0)) {
    fl_set_error(rt, "flowlua_prune: older_than must be 0 or more seconds");
    return FLOWLUA_EINVAL;
  }
  /* Opened as `runs` opens it, for writing: runs of processes that are
     gone are marked Crashed first, so they are old enough to go. */
  fl_store *st, *tmp;
  int opened = fl_history_open_for(rt, 1, &st, &tmp);
  if (opened) return opened;
  if (!st) return FLOWLUA_OK; /* no history yet: nothing to delete */
  const char *path = fl_store_path(st);
  long long before = file_bytes(path);
  fl_store_prune_opts po = {opts->older_than, opts->keep_failed, opts->flow,
                            opts->vacuum};
  fl_store_prune *p = NULL;
  int rc = fl_store_prune_begin(st, &po, fl_wall_time(), &p);
  int interrupted = 0;
  /* A stop (flowlua_stop, the CLI's SIGINT) ends it between two steps:
     what was deleted stays deleted, and the next prune goes on. */
  while (rc == FLOWLUA_OK && (rc = fl_store_prune_step(p)) == 1) {
    rc = FLOWLUA_OK;
    /* A breath between two steps: SQLite's lock is not fair, and a writer
       polling for it would otherwise often find the next step there
       first. */
    nanosleep(&(struct timespec){0, STEP_PAUSE_NS}, NULL);
    if (rt->cancel_requested || rt->stop_requested) {
      interrupted = 1;
      break;
    }
  }
  if (interrupted) {
    fl_set_error(rt, "prune stopped before the end (what it deleted stays "
                     "deleted; prune again to go on)");
    rc = FLOWLUA_ESTATE;
  } else if (rc != FLOWLUA_OK) {
    fl_set_error(rt, "%s", fl_store_errmsg(st));
  }
  if (out && p) {
    const fl_store_prune_result *r = fl_store_prune_done(p);
    out->runs = r->runs;
    out->task_runs = r->task_runs;
    out->fire_events = r->fire_events;
    out->fire_claims = r->fire_claims;
    out->longest_step = r->longest_step;
    out->free_pages_kept = r->free_pages_kept;
    out->bytes_before = before;
    out->bytes_after = file_bytes(path);
  }
  fl_store_prune_free(p);
  fl_store_close(tmp);
  return rc;
}
