/*
 * schedules.c — the public API of schedules: serving a flow's schedule
 * (the engine's serve.c does the work), and its fire times for
 * `flowlua next` and embedders, in the schedule's zone.
 */
#include <stdint.h>
#include <stdio.h>

#include <lua.h>

#include "api.h"
#include "schedule.h"
#include "tz.h"

/* ---- fire times for `flowlua next` and embedders ------------------------ */

/* The flow's schedule, or NULL with the error set. */
static const fl_schedule *flow_schedule(flowlua *rt, const char *flow_name,
                                        int *status) {
  *status = fl_push_flow(rt, flow_name);
  if (*status) return NULL;
  fl_flowdef *f = lua_touserdata(rt->L, -1);
  lua_pop(rt->L, 1);
  if (!f->schedule) {
    fl_set_error(rt, "flow '%s' has no schedule", f->name);
    *status = FLOWLUA_EINVAL;
  }
  return f->schedule;
}

/* The zone the flow's schedule shows its times in: the cron's, or local
   time (loaded into *local, which the caller frees). NULL with *status
   set, and the error on rt, when there is none. */
static const fl_tz *flow_zone(flowlua *rt, const char *flow_name,
                              fl_tz **local, int *status) {
  *local = NULL;
  const fl_schedule *sc = flow_schedule(rt, flow_name, status);
  if (!sc) return NULL;
  if (sc->tz) return sc->tz;
  char err[256];
  if (fl_tz_load(NULL, local, err, sizeof err) != 0) {
    fl_set_error(rt, "the local time zone: %s", err);
    *status = FLOWLUA_EINVAL;
    return NULL;
  }
  return *local;
}

int flowlua_next_fires(flowlua *rt, const char *flow_name, double after,
                       double *times, int count) {
  if (!rt || !times || count < 0) return FLOWLUA_EINVAL;
  int rc;
  const fl_schedule *sc = flow_schedule(rt, flow_name, &rc);
  if (!sc) return rc;
  int n = 0;
  double t = after;
  char err[256];
  while (n < count) {
    rc = fl_schedule_next(sc, t, &t, err, sizeof err);
    if (rc < 0) {
      fl_set_error(rt, "%s", err);
      return FLOWLUA_EINVAL;
    }
    if (rc > 0) break;
    times[n++] = t;
  }
  return n;
}

int flowlua_format_time(flowlua *rt, const char *flow_name, double t,
                        char *buf, size_t len) {
  if (!rt || !buf || len == 0) return FLOWLUA_EINVAL;
  int rc;
  fl_tz *local;
  const fl_tz *tz = flow_zone(rt, flow_name, &local, &rc);
  if (!tz) return rc;
  fl_time_format_iso_ms(tz, t, buf, len);
  fl_tz_free(local);
  return FLOWLUA_OK;
}

int flowlua_parse_time(flowlua *rt, const char *flow_name, const char *text,
                       double *out) {
  if (!rt || !text || !out) return FLOWLUA_EINVAL;
  int rc;
  fl_tz *local;
  const fl_tz *tz = flow_zone(rt, flow_name, &local, &rc);
  if (!tz) return rc;
  char err[256];
  int64_t t;
  rc = fl_time_parse_iso(text, tz, &t, err, sizeof err);
  fl_tz_free(local);
  if (rc != 0) {
    fl_set_error(rt, "%s", err);
    return FLOWLUA_EINVAL;
  }
  *out = (double)t;
  return FLOWLUA_OK;
}

int flowlua_backfill(flowlua *rt, const char *flow_name, double from,
                     double to, int concurrency, flowlua_backfill_result *out) {
  if (!rt) return FLOWLUA_EINVAL;
  if (!FL_API_SIZED(rt, "flowlua_backfill", out)) return FLOWLUA_EINVAL;
  int rc = fl_api_enter(rt, "flowlua_backfill", FL_API_RUN);
  if (rc) return rc;
  rc = fl_backfill(rt, flow_name, from, to, concurrency, out);
  return fl_api_leave(rt, rc);
}

int flowlua_serve(flowlua *rt, const char *flow_name, int max_runs,
                  flowlua_serve_result *out) {
  if (!rt) return FLOWLUA_EINVAL;
  if (!FL_API_SIZED(rt, "flowlua_serve", out)) return FLOWLUA_EINVAL;
  int rc = fl_api_enter(rt, "flowlua_serve", FL_API_RUN);
  if (rc) return rc;
  rc = fl_serve(rt, flow_name, max_runs, fl_api_reload_ops(), out);
  return fl_api_leave(rt, rc);
}
