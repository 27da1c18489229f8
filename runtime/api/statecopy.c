/*
 * statecopy.c — flowlua_state_copy: `flowlua state copy FROM TO`, for the
 * CLI and embedders.
 *
 * The store copies (store_copy.c); this opens both sides as `runs` opens
 * a history — FROM for writing, so that runs of drivers that are gone are
 * marked Crashed first — and refuses what it can before TO is opened (a
 * missing FROM, a Running run), so that such a refusal creates nothing at
 * TO: no file, no schema.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "loop.h"
#include "record.h"
#include "store.h"

/* A state a copy can name: not empty, not ":memory:" (which holds nothing
   once the process ends). */
static int usable(flowlua *rt, const char *side, const char *path) {
  if (path && *path && strcmp(path, ":memory:") != 0) return 1;
  fl_set_error(rt, "flowlua_state_copy: %s must name a SQLite file or a "
                   "postgresql:// URI%s", side,
               path && *path ? " (not :memory:, which keeps no history)" : "");
  return 0;
}

/* Opens the source: 0 with *st, or a status with rt's error set. */
static int open_from(flowlua *rt, const char *from, fl_store **st) {
  fl_store_options o;
  fl_store_options_init(&o);
  o.must_exist = 1;
  char err[512];
  if (fl_store_open(from, &o, st, err, sizeof err) != FLOWLUA_OK) {
    fl_set_error(rt, "%s", err);
    return FLOWLUA_EIO;
  }
  if (!*st) {
    char *name = fl_store_display_name(from);
    fl_set_error(rt, "no run history at '%s' to copy from", name ? name : "?");
    free(name);
    return FLOWLUA_EINVAL;
  }
  int status = fl_store_mark_crashed(*st, fl_wall_time(), NULL);
  fl_record_log_notices(rt, *st);
  size_t running = 0;
  if (status == FLOWLUA_OK) status = fl_store_running_runs(*st, &running);
  if (status != FLOWLUA_OK) {
    fl_set_error(rt, "%s", fl_store_errmsg(*st));
    return FLOWLUA_EIO;
  }
  if (running) {
    char *name = fl_store_display_name(from);
    fl_set_error(rt, "cannot copy from '%s': %zu run%s still Running there "
                     "(a driver would go on writing to it); %s must end, or "
                     "be marked Crashed, before a copy",
                 name ? name : "?", running, running == 1 ? " is" : "s are",
                 running == 1 ? "it" : "they");
    free(name);
    return FLOWLUA_ESTATE;
  }
  return FLOWLUA_OK;
}

int flowlua_state_copy(flowlua *rt, const char *from, const char *to,
                       flowlua_state_copy_result *out) {
  if (!rt) return FLOWLUA_EINVAL;
  fl_buf_reset(&rt->err);
  if (!FL_API_SIZED(rt, "flowlua_state_copy", out)) return FLOWLUA_EINVAL;
  if (out) *out = (flowlua_state_copy_result){.size = sizeof *out};
  if (!usable(rt, "FROM", from) || !usable(rt, "TO", to))
    return FLOWLUA_EINVAL;
  double t0 = fl_wall_time();
  fl_store *src = NULL, *dst = NULL;
  int status = open_from(rt, from, &src);
  if (status == FLOWLUA_OK) {
    char err[512];
    if (fl_store_open(to, NULL, &dst, err, sizeof err) != FLOWLUA_OK) {
      fl_set_error(rt, "%s", err);
      status = FLOWLUA_EIO;
    }
  }
  fl_store_copy_counts n;
  if (status == FLOWLUA_OK) {
    fl_record_log_notices(rt, dst);
    status = fl_store_copy(src, dst, &n);
    if (status != FLOWLUA_OK) fl_set_error(rt, "%s", fl_store_errmsg(dst));
  }
  if (status == FLOWLUA_OK && out) {
    out->runs = n.runs;
    out->task_runs = n.task_runs;
    out->state_changes = n.state_changes;
    out->fire_claims = n.fire_claims;
    out->fire_events = n.fire_events;
    out->cache_entries = n.cache_entries;
    out->cache_skipped = n.cache_skipped;
    out->seconds = fl_wall_time() - t0;
    char *a = fl_store_display_name(from), *b = fl_store_display_name(to);
    snprintf(out->from_name, sizeof out->from_name, "%s", a ? a : "?");
    snprintf(out->to_name, sizeof out->to_name, "%s", b ? b : "?");
    free(a);
    free(b);
  }
  fl_store_close(dst);
  fl_store_close(src);
  return status;
}
