/*
 * lschedlib.c — flow.interval and flow.cron: schedules as Lua values.
 *
 *   flow.interval { seconds=, minutes=, hours=, days=, start=, <options> }
 *   flow.cron(expr, { tz=, dst = { missing=, repeated= }, <options> })
 *
 * with the options of both: overlap, catchup, catchup_window, max_runs,
 * until. Times (start, until) are epoch seconds or ISO 8601 text. Each
 * schedule is a userdata owning its fl_schedule; a flow that uses it keeps
 * a reference, so the C struct lives as long as the flow does.
 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

#include "engine.h"
#include "lflowlua.h"
#include "loptions.h"
#include "schedule.h"

static int schedule_gc(lua_State *L) {
  fl_schedule_free(luaL_checkudata(L, 1, FL_SCHEDULE_MT));
  return 0;
}

static int schedule_tostring(lua_State *L) {
  char text[300];
  fl_schedule_describe(luaL_checkudata(L, 1, FL_SCHEDULE_MT), text, sizeof text);
  lua_pushfstring(L, "schedule: %s", text);
  return 1;
}

/* A new schedule userdata, zeroed, on top of the stack. */
static fl_schedule *push_schedule(lua_State *L) {
  fl_schedule *s = lua_newuserdatauv(L, sizeof *s, 0);
  memset(s, 0, sizeof *s);
  s->dst = (fl_dst_policy)FL_DST_POLICY_DEFAULT;
  luaL_setmetatable(L, FL_SCHEDULE_MT);
  return s;
}

/* The last second of the year 9999: ISO 8601 text has four-digit years,
   and later times cannot be printed, only waited for. */
#define LATEST_TIME 253402300799.0

/* A point in time: epoch seconds, or ISO 8601 text read in tz (NULL: the
   local zone) when it has no offset of its own. */
static double time_option(lua_State *L, int v, const char *who,
                          const char *key, const fl_tz *tz) {
  if (lua_type(L, v) == LUA_TNUMBER) {
    double t = lua_tonumber(L, v);
    if (!(t >= 0 && t <= LATEST_TIME)) {
      char text[64];
      luaL_error(L, "%s: option '%s' must be epoch seconds from 0 to "
                    "253402300799 (the year 9999), got %s",
                 who, key, fl_opt_shown(L, v, text, sizeof text));
    }
    return t;
  }
  if (lua_type(L, v) != LUA_TSTRING)
    luaL_error(L, "%s: option '%s' must be epoch seconds or an ISO 8601 time, "
                  "got %s",
               who, key, luaL_typename(L, v));
  char err[200];
  fl_tz *local = NULL;
  if (!tz && fl_tz_load(NULL, &local, err, sizeof err) != 0)
    luaL_error(L, "%s: option '%s': %s", who, key, err);
  int64_t t;
  int rc = fl_time_parse_iso(lua_tostring(L, v), tz ? tz : local, &t, err,
                             sizeof err);
  fl_tz_free(local);
  if (rc != 0) luaL_error(L, "%s: option '%s': %s", who, key, err);
  return (double)t;
}

/* The options both kinds take, last in each kind's list of names. */
#define COMMON_OPTIONS "overlap", "catchup", "catchup_window", "max_runs", "until"
enum { OVERLAP, CATCHUP, CATCHUP_WINDOW, MAX_RUNS, UNTIL, N_COMMON };

/* Option `which` (from OVERLAP) of the common ones, with its value at v. */
static void common_option(lua_State *L, fl_schedule *s, const char *who,
                          int which, const char *key, int v) {
  switch (which) {
  case OVERLAP: {
    const char *name = lua_type(L, v) == LUA_TSTRING ? lua_tostring(L, v) : "";
    if (fl_overlap_parse(name, &s->overlap) != 0)
      luaL_error(L, "%s: option 'overlap' must be one of %s, got %s", who,
                 fl_overlap_names, luaL_tolstring(L, v, NULL));
    break;
  }
  case CATCHUP:
    if (lua_type(L, v) != LUA_TBOOLEAN)
      luaL_error(L, "%s: option 'catchup' must be true or false, got %s", who,
                 luaL_typename(L, v));
    s->catchup = lua_toboolean(L, v);
    break;
  case CATCHUP_WINDOW:
    s->catchup_window = fl_opt_seconds(L, v, who, key, 0);
    break;
  case MAX_RUNS:
    if (!lua_isinteger(L, v) || lua_tointeger(L, v) < 1 ||
        lua_tointeger(L, v) > 1000000000) {
      char text[64];
      luaL_error(L, "%s: option 'max_runs' must be a whole number >= 1, got %s",
                 who, fl_opt_shown(L, v, text, sizeof text));
    }
    s->max_runs = (int)lua_tointeger(L, v);
    break;
  case UNTIL:
    s->until = time_option(L, v, who, key, s->tz);
    break;
  }
}

/* flow.interval { ... } -> schedule */
static int flow_interval(lua_State *L) {
  static const char *who = "flow.interval";
  static const double units[] = {1, 60, 3600, 86400}; /* seconds... days */
  static const char *const names[] = {"seconds", "minutes", "hours", "days",
                                      "start", COMMON_OPTIONS, NULL};
  enum { START = 4, FIRST_COMMON };
  luaL_checktype(L, 1, LUA_TTABLE);
  fl_schedule *s = push_schedule(L);
  s->kind = FL_SCHEDULE_INTERVAL;
  fl_opts o;
  fl_opts_begin(&o, L, 1, who, "field", names);
  for (int k; (k = fl_opts_next(&o)) >= 0;) {
    if (k < START)
      s->interval += fl_opt_seconds(L, o.value, who, o.key, 0) * units[k];
    else if (k == START)
      s->start = time_option(L, o.value, who, o.key, NULL);
    else
      common_option(L, s, who, k - FIRST_COMMON, o.key, o.value);
  }
  if (!(s->interval > 0) || !isfinite(s->interval))
    luaL_error(L, "%s: the interval must be more than 0 seconds", who);
  /* Fire times are kept to about a millisecond, and k * interval must stay
     exact enough to tell one fire time from the next: a nanosecond
     interval made the search for the next one spin for ever. */
  char text[64];
  if (s->interval < 0.001) {
    snprintf(text, sizeof text, "%g", s->interval);
    luaL_error(L, "%s: the interval must be at least 0.001 seconds, got %s",
               who, text);
  }
  if (s->interval > 3153600000.0) {
    snprintf(text, sizeof text, "%g", s->interval);
    luaL_error(L, "%s: the interval must be at most 3153600000 seconds "
                  "(100 years), got %s",
               who, text);
  }
  return 1;
}

/* dst = { missing = "shift" | "skip", repeated = "first" | "last" | "both" } */
static void dst_option(lua_State *L, fl_schedule *s, const char *who, int v) {
  if (lua_type(L, v) != LUA_TTABLE)
    luaL_error(L, "%s: option 'dst' must be a table { missing=, repeated= }, "
                  "got %s",
               who, luaL_typename(L, v));
  lua_pushnil(L);
  while (lua_next(L, v)) {
    if (lua_type(L, -2) != LUA_TSTRING)
      luaL_error(L, "%s: option 'dst': field names must be strings, got %s",
                 who, luaL_typename(L, -2));
    const char *key = lua_tostring(L, -2);
    if ((strcmp(key, "missing") == 0 || strcmp(key, "repeated") == 0) &&
        lua_type(L, -1) != LUA_TSTRING)
      luaL_error(L, "%s: dst.%s must be %s, got %s", who, key,
                 key[0] == 'm' ? "'shift' or 'skip'"
                               : "'first', 'last' or 'both'",
                 luaL_typename(L, -1));
    const char *name = lua_tostring(L, -1);
    char err[160];
    int rc = 0;
    if (strcmp(key, "missing") == 0)
      rc = fl_dst_parse_missing(name, &s->dst.missing, err, sizeof err);
    else if (strcmp(key, "repeated") == 0)
      rc = fl_dst_parse_repeated(name, &s->dst.repeated, err, sizeof err);
    else
      luaL_error(L, "%s: unknown field 'dst.%s' (fields: missing, repeated)",
                 who, key);
    if (rc != 0) luaL_error(L, "%s: %s", who, err);
    lua_pop(L, 1);
  }
}

/* flow.cron(expr, [opts]) -> schedule */
static int flow_cron(lua_State *L) {
  static const char *who = "flow.cron";
  const char *expr = luaL_checkstring(L, 1);
  if (!lua_isnoneornil(L, 2)) luaL_checktype(L, 2, LUA_TTABLE);
  lua_settop(L, 2);
  fl_schedule *s = push_schedule(L);
  s->kind = FL_SCHEDULE_CRON;
  s->expr = strdup(expr);
  if (!s->expr) return luaL_error(L, "%s: out of memory", who);
  char err[256];
  if (fl_cron_parse(expr, &s->cron, err, sizeof err) != 0)
    return luaL_error(L, "%s: %s", who, err);
  /* The zone first: `until` may be a local time in it. */
  const char *zone = NULL;
  if (lua_istable(L, 2)) {
    lua_getfield(L, 2, "tz");
    if (!lua_isnil(L, -1) && lua_type(L, -1) != LUA_TSTRING)
      return luaL_error(L, "%s: option 'tz' must be a zone name like "
                           "'Europe/Madrid', got %s",
                        who, luaL_typename(L, -1));
    zone = lua_tostring(L, -1);
  }
  if (fl_tz_load(zone, &s->tz, err, sizeof err) != 0)
    return luaL_error(L, "%s: option 'tz': %s", who, err);
  lua_settop(L, 3); /* drop the zone name: the schedule is the result */
  if (lua_istable(L, 2)) {
    static const char *const names[] = {"tz", "dst", COMMON_OPTIONS, NULL};
    enum { TZ, DST, FIRST_COMMON };
    fl_opts o;
    fl_opts_begin(&o, L, 2, who, "option", names);
    for (int k; (k = fl_opts_next(&o)) >= 0;) {
      if (k == DST)
        dst_option(L, s, who, o.value);
      else if (k >= FIRST_COMMON)
        common_option(L, s, who, k - FIRST_COMMON, o.key, o.value);
    }
  }
  return 1;
}

const fl_schedule *fl_check_schedule(lua_State *L, int idx, const char *who) {
  fl_schedule *s = luaL_testudata(L, idx, FL_SCHEDULE_MT);
  if (!s)
    luaL_error(L, "%s: option 'schedule' must be made by flow.interval or "
                  "flow.cron, got %s",
               who, luaL_typename(L, idx));
  return s;
}

void fl_open_schedules(lua_State *L) {
  static const luaL_Reg meta[] = {{"__gc", schedule_gc},
                                  {"__tostring", schedule_tostring},
                                  {NULL, NULL}};
  static const luaL_Reg funcs[] = {{"interval", flow_interval},
                                   {"cron", flow_cron},
                                   {NULL, NULL}};
  luaL_newmetatable(L, FL_SCHEDULE_MT);
  luaL_setfuncs(L, meta, 0);
  lua_pushliteral(L, "flowlua");
  lua_setfield(L, -2, "__metatable");
  lua_pop(L, 1);
  luaL_setfuncs(L, funcs, 0); /* into the module table on top */
}
