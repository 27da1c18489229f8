/*
 * flows.c — what the history tells of flows without running a script
 * (flowlua_report_flows: the UI's flows page and its start form, with
 * next fire times computed from the recorded schedule), where a flow's
 * script is (flowlua_flow_script: what the UI starts), and cancels asked
 * for through the history (flowlua_request_cancel). Pauses are asked for
 * in pause.c; the report shows them.
 *
 * Everything read here may come from a copied, hostile history: a
 * schedule that does not parse, a zone that does not load, is reported as
 * the flow's next_fires_error, never trusted further.
 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "json.h"
#include "schedule.h"
#include "store.h"

/* Recent runs and fire events listed per flow, and fire times ahead. */
#define RECENT_RUNS 10
#define RECENT_FIRE_EVENTS 10
#define NEXT_FIRES 5

static void add_key_string(fl_buf *b, const char *key, const char *value) {
  fl_buf_addf(b, ",\"%s\":", key);
  if (value)
    fl_json_add_string(b, value, strlen(value));
  else
    fl_buf_adds(b, "null");
}

static void add_time(fl_buf *b, double t) {
  if (!(t > 0) || !isfinite(t)) {
    fl_buf_adds(b, "null");
    return;
  }
  char iso[64];
  fl_time_format_iso_ms(NULL, t, iso, sizeof iso);
  /* UTC as the rest of the API writes it: "...Z". */
  size_t n = strlen(iso);
  if (n > 6 && strcmp(iso + n - 6, "+00:00") == 0) strcpy(iso + n - 6, "Z");
  fl_buf_addf(b, "\"%s\"", iso);
}

/* The recorded schedule made again, or -1 with why in err. */
static int rebuild_schedule(const fl_store_flow_def *d, fl_schedule *sc,
                            char *err, size_t errlen) {
  memset(sc, 0, sizeof *sc);
  const char *kind = d->sched.kind ? d->sched.kind : "";
  if (strcmp(kind, "interval") == 0) {
    if (!(d->sched.every > 0) || !isfinite(d->sched.every) ||
        !isfinite(d->sched.start)) {
      snprintf(err, errlen, "the recorded interval is not a positive number");
      return -1;
    }
    sc->kind = FL_SCHEDULE_INTERVAL;
    sc->interval = d->sched.every;
    sc->start = d->sched.start;
  } else if (strcmp(kind, "cron") == 0) {
    sc->kind = FL_SCHEDULE_CRON;
    if (!d->sched.cron ||
        fl_cron_parse(d->sched.cron, &sc->cron, err, errlen) != 0)
      return -1;
    if (d->sched.dst_missing &&
        fl_dst_parse_missing(d->sched.dst_missing, &sc->dst.missing, err, errlen))
      return -1;
    if (d->sched.dst_repeated &&
        fl_dst_parse_repeated(d->sched.dst_repeated, &sc->dst.repeated, err,
                              errlen))
      return -1;
    /* A zone by name only: "" would mean this process's local time, not
       the serving process's. */
    const char *zone = d->sched.timezone && *d->sched.timezone
                           ? d->sched.timezone : "UTC";
    if (fl_tz_load(zone, &sc->tz, err, errlen) != 0) return -1;
  } else {
    snprintf(err, errlen, "the recorded schedule has no known kind");
    return -1;
  }
  sc->until = isfinite(d->sched.until) && d->sched.until > 0 ? d->sched.until : 0;
  return 0;
}

static void add_next_fires(fl_buf *b, const fl_store_flow_def *d, double now) {
  if (!d->schedule_json) return;
  fl_schedule sc;
  char err[256] = "";
  if (rebuild_schedule(d, &sc, err, sizeof err) != 0) {
    add_key_string(b, "next_fires_error", err);
    fl_schedule_free(&sc);
    return;
  }
  fl_buf_adds(b, ",\"next_fires\":[");
  double t = now;
  for (int i = 0; i < NEXT_FIRES; i++) {
    double next;
    int rc = fl_schedule_next(&sc, t, &next, err, sizeof err);
    if (rc != 0) break; /* none left (until), or none in reach */
    if (i) fl_buf_addc(b, ',');
    char iso[64];
    fl_time_format_iso_ms(sc.tz, next, iso, sizeof iso);
    fl_buf_addf(b, "\"%s\"", iso);
    t = next;
  }
  fl_buf_addc(b, ']');
  fl_schedule_free(&sc);
}

static int add_recent(fl_store *st, const char *flow, fl_buf *b) {
  fl_store_run_list runs = {0};
  if (fl_store_list_runs(st, flow, RECENT_RUNS, &runs) != FLOWLUA_OK) {
    fl_store_run_list_free(&runs);
    return -1;
  }
  fl_buf_adds(b, ",\"recent_runs\":");
  fl_store_print_runs(b, &runs, 1);
  while (b->len && b->data[b->len - 1] == '\n') b->len--;
  fl_store_run_list_free(&runs);
  fl_store_fire_event_list ev;
  if (fl_store_fire_events(st, flow, RECENT_FIRE_EVENTS, &ev) != FLOWLUA_OK)
    return -1;
  fl_buf_adds(b, ",\"fire_events\":[");
  for (size_t i = 0; i < ev.n; i++) {
    const fl_store_fire_event_row *e = &ev.rows[i];
    fl_buf_adds(b, i ? ",{" : "{");
    fl_buf_adds(b, "\"outcome\":");
    fl_json_add_string(b, e->outcome, strlen(e->outcome));
    fl_buf_adds(b, ",\"scheduled_at\":");
    add_time(b, e->scheduled_at);
    fl_buf_adds(b, ",\"last_at\":");
    add_time(b, e->last_at);
    fl_buf_addf(b, ",\"count\":%lld", (long long)e->count);
    add_key_string(b, "detail", e->detail);
    fl_buf_adds(b, ",\"at\":");
    add_time(b, e->at);
    fl_buf_addc(b, '}');
  }
  fl_buf_addc(b, ']');
  fl_store_fire_event_list_free(&ev);
  return 0;
}

/* "paused", and when it is, since when and by whom. */
static int add_pause(fl_store *st, const char *flow, fl_buf *b) {
  fl_store_pause p;
  if (fl_store_get_pause(st, flow, &p) != FLOWLUA_OK) return -1;
  fl_buf_addf(b, ",\"paused\":%s", p.paused ? "true" : "false");
  if (p.paused) {
    fl_buf_adds(b, ",\"paused_since\":");
    add_time(b, p.since);
    add_key_string(b, "paused_by", p.by);
  }
  fl_store_pause_clear(&p);
  return 0;
}

/* One flow's object; d NULL for a flow known by its runs only. */
static int add_flow(fl_store *st, const char *name,
                    const fl_store_flow_def *d, double now, fl_buf *b) {
  fl_buf_adds(b, "{\"name\":");
  fl_json_add_string(b, name, strlen(name));
  add_key_string(b, "script", d ? d->script : NULL);
  add_key_string(b, "host", d ? d->host : NULL);
  add_key_string(b, "script_sha256", d ? d->script_sha256 : NULL);
  /* Both were checked as JSON when written (SQLite's CHECK, PostgreSQL's
     jsonb); a copied file may hold anything, so only an object or array
     passes through as JSON, anything else as a string. */
  const char *params = d ? d->params_json : NULL;
  fl_buf_adds(b, ",\"params\":");
  if (params && params[0] == '{')
    fl_buf_adds(b, params);
  else
    fl_buf_adds(b, "{}");
  /* Each param's type, default and constraints; null when the flow was
     recorded by a flowlua that did not describe them. */
  const char *types = d ? d->param_types_json : NULL;
  fl_buf_adds(b, ",\"param_types\":");
  fl_buf_adds(b, types && types[0] == '{' ? types : "null");
  fl_buf_adds(b, ",\"schedule\":");
  if (d && d->schedule_json && d->schedule_json[0] == '{')
    fl_buf_adds(b, d->schedule_json);
  else
    fl_buf_adds(b, "null");
  fl_buf_adds(b, ",\"updated_at\":");
  add_time(b, d ? d->updated_at : 0);
  if (d) add_next_fires(b, d, now);
  int rc = add_pause(st, name, b);
  if (rc == 0) rc = add_recent(st, name, b);
  fl_buf_addc(b, '}');
  return rc;
}

int flowlua_report_flows(flowlua *rt, char **out) {
  if (!rt || !out) return FLOWLUA_EINVAL;
  *out = NULL;
  int rc = fl_api_enter(rt, "flowlua_report_flows", "a report");
  if (rc) return rc;
  fl_store *st, *tmp;
  rc = fl_history_open(rt, &st, &tmp);
  if (rc) return fl_api_leave(rt, rc);
  fl_store_flow_list defs = {0};
  fl_store_name_list names = {0};
  fl_buf b = FL_BUF_INIT;
  fl_buf_adds(&b, "{\"flows\":[");
  if (st && (fl_store_list_flows(st, &defs) != FLOWLUA_OK ||
             fl_store_run_flows(st, &names) != FLOWLUA_OK))
    rc = FLOWLUA_EIO;
  double now = fl_wall_time();
  /* Both lists are sorted by name (byte order, in both databases' C
     collation for the names flowlua writes): merged, each name once. */
  size_t i = 0, k = 0, n_out = 0;
  while (rc == FLOWLUA_OK && (i < defs.n || k < names.n)) {
    int c = i == defs.n ? 1 : k == names.n ? -1
                                            : strcmp(defs.items[i].flow, names.names[k]);
    const fl_store_flow_def *d = c <= 0 ? &defs.items[i] : NULL;
    const char *name = d ? d->flow : names.names[k];
    if (n_out++) fl_buf_addc(&b, ',');
    if (add_flow(st, name, d, now, &b) != 0) rc = FLOWLUA_EIO;
    if (c <= 0) i++;
    if (c >= 0) k++;
  }
  fl_buf_adds(&b, "]}\n");
  if (rc == FLOWLUA_EIO) fl_set_error(rt, "%s", fl_store_errmsg(st));
  fl_store_flow_list_free(&defs);
  fl_store_name_list_free(&names);
  fl_store_close(tmp);
  if (rc == FLOWLUA_OK && b.oom) {
    fl_set_error(rt, "out of memory writing the flows");
    rc = FLOWLUA_ENOMEM;
  }
  if (rc == FLOWLUA_OK) {
    *out = b.data;
    b.data = NULL;
  }
  fl_buf_free(&b);
  return fl_api_leave(rt, rc);
}

int flowlua_flow_script(flowlua *rt, const char *flow, char **script) {
  if (!rt || !flow || !script) return FLOWLUA_EINVAL;
  *script = NULL;
  int rc = fl_api_enter(rt, "flowlua_flow_script", "a report");
  if (rc) return rc;
  fl_store *st, *tmp;
  rc = fl_history_open(rt, &st, &tmp);
  if (rc) return fl_api_leave(rt, rc);
  fl_store_flow_list defs = {0};
  if (st && fl_store_list_flows(st, &defs) != FLOWLUA_OK) {
    fl_set_error(rt, "%s", fl_store_errmsg(st));
    rc = FLOWLUA_EIO;
  }
  const fl_store_flow_def *d = NULL;
  for (size_t i = 0; rc == FLOWLUA_OK && i < defs.n; i++)
    if (strcmp(defs.items[i].flow, flow) == 0) d = &defs.items[i];
  fl_store_owner self;
  fl_store_owner_self(&self);
  if (rc != FLOWLUA_OK) {
    /* said */
  } else if (!d) {
    fl_set_error(rt, "flow '%s' has no recorded script: run or serve its "
                     "script once (flowlua SCRIPT.lua) so that the history "
                     "knows where it is", flow);
    rc = FLOWLUA_ENOFLOW;
  } else if (strcmp(d->host, self.host) != 0) {
    fl_set_error(rt, "flow '%s' was recorded from %s on host '%s', not on "
                     "this one ('%s'): start it there", flow, d->script,
                 d->host, self.host);
    rc = FLOWLUA_ESTATE;
  } else if (!(*script = strdup(d->script))) {
    fl_set_error(rt, "out of memory");
    rc = FLOWLUA_ENOMEM;
  }
  fl_store_flow_list_free(&defs);
  fl_store_close(tmp);
  return fl_api_leave(rt, rc);
}

int flowlua_request_cancel(flowlua *rt, const char *run_ref, const char *by) {
  if (!rt) return FLOWLUA_EINVAL;
  int rc = fl_api_enter(rt, "flowlua_request_cancel", "a cancel");
  if (rc) return rc;
  if (!run_ref || !*run_ref) {
    fl_set_error(rt, "flowlua_request_cancel: a run id is required");
    return fl_api_leave(rt, FLOWLUA_EINVAL);
  }
  fl_store *st, *tmp;
  rc = fl_history_open_for(rt, 1, &st, &tmp);
  if (rc) return fl_api_leave(rt, rc);
  if (!st) {
    fl_set_error(rt, "no run '%s': no runs recorded yet", run_ref);
    return fl_api_leave(rt, FLOWLUA_EINVAL);
  }
  fl_store_run_detail *d = NULL;
  rc = fl_store_load_run(st, run_ref, NULL, &d);
  if (rc == FLOWLUA_OK)
    rc = fl_store_request_cancel(st, d->run.run_id, by && *by ? by : "flowlua",
                                 fl_wall_time());
  if (rc != FLOWLUA_OK) fl_set_error(rt, "%s", fl_store_errmsg(st));
  fl_store_run_detail_free(d);
  fl_store_close(tmp);
  return fl_api_leave(rt, rc);
}
