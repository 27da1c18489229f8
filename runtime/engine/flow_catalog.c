/*
 * flow_catalog.c — the loaded script's flows written into the history
 * (table flow_def) when a process opens it to run or serve them: the
 * script's absolute path and host, its SHA-256, each flow's default params
 * (masked) and its schedule as JSON. Readers that must not run a script
 * (flowlua ui: the flows page, next fire times, the start form) read them
 * there.
 *
 * A failure here is not the run's: the definitions are a convenience for
 * readers, so it is logged as a warning and the run goes on.
 */
#define _XOPEN_SOURCE 700
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

#include "engine.h"
#include "json.h"
#include "param_types.h"
#include "record.h"
#include "schedule.h"
#include "store.h"

/* The flow's defaults as a JSON object, masked: a typed param's default
   in place of the param (none when it is required), so that "params"
   keeps meaning the defaults a start form fills in; "{}" when they hold
   what JSON cannot (they then cannot come from --param either). And
   *types, each param described (param_types.c), or NULL likewise. */
static char *defaults_json(flowlua *rt, int flow_idx, char **types) {
  lua_State *L = rt->L;
  fl_buf b = FL_BUF_INIT, t = FL_BUF_INIT;
  *types = NULL;
  lua_getiuservalue(L, flow_idx, FL_FLOW_UV_PARAMS);
  int defaults = lua_gettop(L);
  int ok = lua_istable(L, defaults);
  lua_newtable(L);
  fl_buf_addc(&t, '{');
  lua_pushnil(L);
  while (ok && lua_next(L, defaults)) {
    size_t len;
    const char *name = lua_tolstring(L, -2, &len); /* flow.define checked */
    if (t.len > 1) fl_buf_addc(&t, ',');
    fl_json_add_string(&t, name, len);
    fl_buf_addc(&t, ':');
    ok = fl_param_describe_json(L, -1, &t) == 0;
    if (fl_param_test(L, -1)) {
      lua_getiuservalue(L, -1, FL_PARAM_UV_DEFAULT);
      lua_remove(L, -2);
    }
    lua_pushvalue(L, -2);
    lua_insert(L, -2);
    lua_rawset(L, defaults + 1);
  }
  fl_buf_addc(&t, '}');
  ok = ok && fl_json_encode_value(L, defaults + 1, &b, NULL) == 0 && !t.oom;
  lua_settop(L, defaults - 1);
  char *out = fl_log_mask_dup(&rt->log, ok ? fl_buf_str(&b) : "{}");
  if (ok) *types = fl_log_mask_dup(&rt->log, fl_buf_str(&t));
  fl_buf_free(&b);
  fl_buf_free(&t);
  return out;
}

static void add_field(fl_buf *b, const char *key, const char *value) {
  fl_buf_addf(b, ",\"%s\":", key);
  fl_json_add_string(b, value, strlen(value));
}

/* The schedule as the history keeps it: what fl_schedule holds that a
   reader needs to compute fire times again, and its description. */
static void schedule_json(const fl_schedule *sc, fl_buf *b) {
  char text[512];
  fl_schedule_describe(sc, text, sizeof text);
  if (sc->kind == FL_SCHEDULE_CRON) {
    fl_buf_adds(b, "{\"kind\":\"cron\"");
    add_field(b, "cron", sc->expr ? sc->expr : "");
    add_field(b, "timezone", sc->tz ? fl_tz_name(sc->tz) : "UTC");
    add_field(b, "dst_missing", fl_dst_missing_name(sc->dst.missing));
    add_field(b, "dst_repeated", fl_dst_repeated_name(sc->dst.repeated));
  } else {
    fl_buf_addf(b, "{\"kind\":\"interval\",\"every\":%.17g,\"start\":%.17g",
                sc->interval, sc->start);
  }
  add_field(b, "overlap", fl_overlap_name(sc->overlap));
  fl_buf_addf(b, ",\"catchup\":%s", sc->catchup ? "true" : "false");
  if (sc->max_runs > 0) fl_buf_addf(b, ",\"max_runs\":%d", sc->max_runs);
  if (sc->until > 0) fl_buf_addf(b, ",\"until\":%.17g", sc->until);
  add_field(b, "text", text);
  fl_buf_addc(b, '}');
}

void fl_record_flows(flowlua *rt) {
  if (!rt->store || !rt->script_path || rt->flows_ref == LUA_NOREF ||
      rt->n_flows == 0)
    return;
  char script[PATH_MAX];
  if (!realpath(rt->script_path, script)) return; /* moved since: nothing to name */
  fl_store_owner self;
  fl_store_owner_self(&self);
  lua_State *L = rt->L;
  size_t n = rt->n_flows;
  fl_store_flow_def *defs = calloc(n, sizeof *defs);
  fl_buf *schedules = calloc(n, sizeof *schedules);
  int ok = defs && schedules;
  double now = fl_wall_time();
  lua_rawgeti(L, LUA_REGISTRYINDEX, rt->flows_ref);
  for (size_t i = 0; ok && i < n; i++) {
    lua_rawgeti(L, -1, (lua_Integer)i + 1);
    fl_flowdef *f = lua_touserdata(L, -1);
    char *types = NULL;
    char *params = f ? defaults_json(rt, lua_gettop(L), &types) : NULL;
    lua_pop(L, 1);
    if (!f || !params) {
      free(params);
      free(types);
      ok = 0;
      break;
    }
    if (f->schedule) schedule_json(f->schedule, &schedules[i]);
    defs[i] = (fl_store_flow_def){
        .flow = f->name,
        .script = script,
        .host = self.host,
        .script_sha256 = rt->script_sha256,
        .params_json = params,
        .schedule_json = f->schedule ? fl_buf_str(&schedules[i]) : NULL,
        .param_types_json = types,
        .updated_at = now};
    if (schedules[i].oom) ok = 0;
  }
  lua_pop(L, 1);
  if (!ok)
    fl_log_printf(&rt->log, FLOWLUA_LOG_WARN, NULL,
                  "out of memory recording the flows of %s in the history",
                  rt->script_name);
  else if (fl_store_put_flows(rt->store, defs, n) != FLOWLUA_OK)
    fl_log_printf(&rt->log, FLOWLUA_LOG_WARN, NULL,
                  "the flows of %s are not recorded in the history "
                  "(flowlua ui will not list them): %s",
                  rt->script_name, fl_store_errmsg(rt->store));
  for (size_t i = 0; defs && i < n; i++) {
    free((char *)defs[i].params_json);
    free((char *)defs[i].param_types_json);
  }
  for (size_t i = 0; schedules && i < n; i++) fl_buf_free(&schedules[i]);
  free(defs);
  free(schedules);
}
