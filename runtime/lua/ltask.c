/*
 * ltask.c — making a task: the options of flow.task (and of a subflow
 * call, lsubflow.c) read into its fl_taskdef, and the registry of the
 * names a script's tasks claimed while it loaded.
 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

#include "engine.h"
#include "lflowlua.h"
#include "loptions.h"

static char *dup_or_raise(lua_State *L, const char *s) {
  char *d = strdup(s);
  if (!d) luaL_error(L, "out of memory");
  return d;
}

static void parse_retry_delay(lua_State *L, fl_taskdef *d, int idx,
                              const char *who) {
  if (lua_type(L, idx) == LUA_TNUMBER) {
    d->retry.delay = fl_opt_number(L, idx, who, "retry_delay", 0, HUGE_VAL);
    return;
  }
  if (lua_type(L, idx) != LUA_TTABLE)
    luaL_error(L,
               "%s: option 'retry_delay' must be a number or a list of "
               "numbers, got %s",
               who, luaL_typename(L, idx));
  size_t n = (size_t)lua_rawlen(L, idx);
  if (n == 0)
    luaL_error(L, "%s: option 'retry_delay' must not be an empty list", who);
  d->delays = malloc(n * sizeof *d->delays);
  if (!d->delays) luaL_error(L, "out of memory");
  for (size_t i = 1; i <= n; i++) {
    lua_rawgeti(L, idx, (lua_Integer)i);
    if (lua_type(L, -1) != LUA_TNUMBER || !(lua_tonumber(L, -1) >= 0) ||
        isinf(lua_tonumber(L, -1)))
      luaL_error(L,
                 "%s: option 'retry_delay' entry %d must be a number of "
                 "seconds >= 0, got %s",
                 who, (int)i, luaL_tolstring(L, -1, NULL));
    d->delays[i - 1] = lua_tonumber(L, -1);
    lua_pop(L, 1);
  }
  d->retry.delays = d->delays;
  d->retry.n_delays = n;
}

static void parse_tags(lua_State *L, fl_taskdef *d, int idx, const char *who) {
  if (lua_type(L, idx) != LUA_TTABLE)
    luaL_error(L, "%s: option 'tags' must be a list of names, got %s", who,
               luaL_typename(L, idx));
  int n = (int)lua_rawlen(L, idx);
  d->tags = calloc((size_t)(n ? n : 1), sizeof *d->tags);
  if (!d->tags) luaL_error(L, "out of memory");
  for (int i = 1; i <= n; i++) {
    lua_rawgeti(L, idx, i);
    if (lua_type(L, -1) != LUA_TSTRING || lua_rawlen(L, -1) == 0)
      luaL_error(L, "%s: option 'tags' entry %d must be a non-empty string",
                 who, i);
    d->tags[d->n_tags++] = dup_or_raise(L, lua_tostring(L, -1));
    lua_pop(L, 1);
  }
}

static void parse_trigger(lua_State *L, fl_taskdef *d, int task_idx, int idx,
                          const char *who) {
  if (lua_type(L, idx) == LUA_TFUNCTION) {
    d->trigger = FL_TRIGGER_FUNCTION;
    lua_pushvalue(L, idx);
    lua_setiuservalue(L, task_idx, FL_TASK_UV_TRIGGER);
    return;
  }
  if (lua_type(L, idx) != LUA_TSTRING)
    luaL_error(L, "%s: option 'trigger' must be a rule name or a function, "
                  "got %s",
               who, luaL_typename(L, idx));
  if (fl_trigger_parse(lua_tostring(L, idx), &d->trigger) != 0)
    luaL_error(L, "%s: unknown trigger rule '%s' (rules: %s)", who,
               lua_tostring(L, idx), fl_trigger_names());
}

/* The task options, in the order messages list them. */
static const char *const task_option_names[] = {
    "retries",    "retry_delay", "backoff",    "max_retry_delay",
    "retry_jitter", "retry_if",  "timeout",    "trigger",
    "tags",       "on_success",  "on_failure", "on_retry",
    "cache_key",  "cache_for",   "store_result", "max_result",
    "worker",     "queue",       "queue_timeout", NULL};
enum {
  OPT_RETRIES, OPT_RETRY_DELAY, OPT_BACKOFF, OPT_MAX_RETRY_DELAY,
  OPT_RETRY_JITTER, OPT_RETRY_IF, OPT_TIMEOUT, OPT_TRIGGER, OPT_TAGS,
  OPT_ON_SUCCESS, OPT_ON_FAILURE, OPT_ON_RETRY, OPT_CACHE_KEY, OPT_CACHE_FOR,
  OPT_STORE_RESULT, OPT_MAX_RESULT, OPT_WORKER, OPT_QUEUE, OPT_QUEUE_TIMEOUT
};

/* A function option kept as a user value of the task. */
static void set_task_function(lua_State *L, int task_idx, const fl_opts *o,
                              int uv) {
  fl_opt_function(L, o->value, o->who, o->key);
  lua_pushvalue(L, o->value);
  lua_setiuservalue(L, task_idx, uv);
}

/* Reads the options table at opts_idx into the task at task_idx. */
static void parse_task_options(lua_State *L, fl_taskdef *d, int task_idx,
                               int opts_idx, const char *who) {
  fl_opts o;
  int not_worker = 0; /* worker = false, said outright */
  fl_opts_begin(&o, L, opts_idx, who, "option", task_option_names);
  for (int k; (k = fl_opts_next(&o)) >= 0;) {
    int v = o.value;
    const char *key = o.key;
    switch (k) {
    case OPT_RETRIES:
      d->retry.retries = fl_opt_integer(L, v, who, key, 0);
      break;
    case OPT_RETRY_DELAY:
      parse_retry_delay(L, d, v, who);
      break;
    case OPT_BACKOFF:
      d->retry.backoff = fl_opt_number(L, v, who, key, 1, 1e6);
      break;
    case OPT_MAX_RETRY_DELAY:
      d->retry.max_delay = fl_opt_number(L, v, who, key, 0, HUGE_VAL);
      break;
    case OPT_RETRY_JITTER:
      d->retry.jitter = fl_opt_number(L, v, who, key, 0, 1);
      break;
    case OPT_TIMEOUT:
      d->timeout = fl_opt_number(L, v, who, key, 0, 1e9);
      if (d->timeout <= 0)
        luaL_error(L, "%s: option 'timeout' must be more than 0 seconds", who);
      break;
    case OPT_TRIGGER:
      parse_trigger(L, d, task_idx, v, who);
      break;
    case OPT_TAGS:
      parse_tags(L, d, v, who);
      break;
    case OPT_CACHE_FOR:
      d->cache_for = fl_opt_number(L, v, who, key, 0, HUGE_VAL);
      break;
    case OPT_STORE_RESULT:
      if (!lua_isboolean(L, v))
        luaL_error(L, "%s: option 'store_result' must be a boolean, got %s",
                   who, luaL_typename(L, v));
      d->no_store_result = !lua_toboolean(L, v);
      break;
    case OPT_MAX_RESULT:
      d->max_result = (size_t)fl_opt_integer(L, v, who, key, 1);
      if (d->max_result > FL_MAX_RESULT_LIMIT)
        luaL_error(L, "%s: option 'max_result' must be at most %d bytes "
                      "(256 MiB), got %d",
                   who, (int)FL_MAX_RESULT_LIMIT, (int)d->max_result);
      break;
    case OPT_WORKER:
      if (!lua_isboolean(L, v))
        luaL_error(L, "%s: option 'worker' must be a boolean, got %s", who,
                   luaL_typename(L, v));
      d->worker = (uint8_t)lua_toboolean(L, v);
      not_worker = !d->worker;
      break;
    case OPT_QUEUE: {
      /* A queue implies a worker task (DESIGN.md, "Worker tasks"). */
      size_t n;
      const char *q = lua_type(L, v) == LUA_TSTRING ? lua_tolstring(L, v, &n)
                                                     : NULL;
      if (!q || n == 0 || n > 200 || strlen(q) != n)
        luaL_error(L, "%s: option 'queue' must be a queue name (a string of "
                      "1 to 200 bytes, no NUL), got %s",
                   who, q ? "an empty or invalid string" : luaL_typename(L, v));
      free(d->queue);
      if (!(d->queue = strdup(q))) luaL_error(L, "%s: out of memory", who);
      d->worker = 1;
      break;
    }
    case OPT_QUEUE_TIMEOUT:
      /* How long a job may wait for a worker of a PostgreSQL queue. */
      d->queue_timeout = fl_opt_number(L, v, who, key, 0, 1e9);
      if (d->queue_timeout <= 0)
        luaL_error(L, "%s: option 'queue_timeout' must be more than 0 "
                      "seconds", who);
      break;
    case OPT_RETRY_IF:
      set_task_function(L, task_idx, &o, FL_TASK_UV_RETRY_IF);
      break;
    case OPT_ON_SUCCESS:
      set_task_function(L, task_idx, &o, FL_TASK_UV_ON_SUCCESS);
      break;
    case OPT_ON_FAILURE:
      set_task_function(L, task_idx, &o, FL_TASK_UV_ON_FAILURE);
      break;
    case OPT_ON_RETRY:
      set_task_function(L, task_idx, &o, FL_TASK_UV_ON_RETRY);
      break;
    case OPT_CACHE_KEY:
      set_task_function(L, task_idx, &o, FL_TASK_UV_CACHE_KEY);
      break;
    }
  }
  if (d->queue && not_worker)
    luaL_error(L, "%s: option 'queue' runs the task on a worker, but "
                  "'worker' is false", who);
  if (d->queue) d->worker = 1;
  if (d->queue_timeout > 0 && !d->worker)
    luaL_error(L, "%s: option 'queue_timeout' is how long a worker task's "
                  "job waits for a worker: it needs 'worker' or 'queue'", who);
}

/* ---- task names are unique within a script ---------------------------------
   Two tasks with one name would give their runs the same key in the
   history (a run could not be recorded, nor resumed): the second
   definition is refused while the script loads, naming both lines. */

static const char task_names_key = 0;
/* Registry: name -> task userdata, of the tasks the last script loaded
   defined (kept after the load, for a worker's jobs). */
static const char defined_tasks_key = 0;

void fl_task_names_begin(lua_State *L) {
  lua_newtable(L);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &task_names_key);
  lua_newtable(L);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &defined_tasks_key);
}

int fl_push_defined_task(lua_State *L, const char *name) {
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &defined_tasks_key) != LUA_TTABLE) {
    lua_pop(L, 1);
    return 0;
  }
  if (lua_getfield(L, -1, name) == LUA_TNIL) {
    lua_pop(L, 2);
    return 0;
  }
  lua_remove(L, -2);
  return 1;
}

void fl_keep_defined_task(lua_State *L, int idx, const char *name) {
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &task_names_key) != LUA_TTABLE) {
    lua_pop(L, 1);
    return; /* not loading: defined later (in a body), not a worker's */
  }
  lua_pop(L, 1);
  lua_rawgetp(L, LUA_REGISTRYINDEX, &defined_tasks_key);
  lua_pushvalue(L, idx);
  lua_setfield(L, -2, name);
  lua_pop(L, 1);
}

void fl_task_names_end(lua_State *L) {
  lua_pushnil(L);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &task_names_key);
}

void fl_claim_task_name(lua_State *L, const char *name) {
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &task_names_key) != LUA_TTABLE) {
    lua_pop(L, 1);
    return;
  }
  luaL_where(L, 1); /* "chunk:line: " */
  size_t len;
  const char *where = lua_tolstring(L, -1, &len);
  if (len >= 2 && where[len - 2] == ':') len -= 2;
  lua_pushlstring(L, len ? where : "?", len ? len : 1);
  lua_remove(L, -2);
  if (lua_getfield(L, -2, name) == LUA_TSTRING)
    luaL_error(L, "task '%s' is defined twice: %s and %s (task names must "
                  "be unique: they name the task's runs in the history)",
               name, lua_tostring(L, -1), lua_tostring(L, -2));
  lua_pop(L, 1);
  lua_setfield(L, -2, name);
  lua_pop(L, 1);
}

fl_taskdef *fl_task_new(lua_State *L, const char *name, int opts_idx,
                        int fn_idx, const char *who) {
  opts_idx = opts_idx ? lua_absindex(L, opts_idx) : 0;
  fn_idx = lua_absindex(L, fn_idx);
  /* The userdata exists (in a safe, empty state) before anything is
     allocated, so a failure below leaves nothing for __gc to trip on. */
  fl_taskdef *d = lua_newuserdatauv(L, sizeof *d, FL_TASK_NUV);
  memset(d, 0, sizeof *d);
  fl_retry_policy_init(&d->retry);
  d->trigger = FL_TRIGGER_ALL_SUCCESS;
  d->cache_for = -1; /* no cache_for: a cached result never expires */
  luaL_setmetatable(L, FL_TASK_MT);
  int task_idx = lua_gettop(L);
  d->name = dup_or_raise(L, name);
  lua_pushvalue(L, fn_idx);
  lua_setiuservalue(L, task_idx, FL_TASK_UV_FN);

  if (opts_idx) parse_task_options(L, d, task_idx, opts_idx, who);
  for (int uv = FL_TASK_UV_RETRY_IF; uv <= FL_TASK_UV_CACHE_KEY; uv++) {
    int set = lua_getiuservalue(L, task_idx, uv) == LUA_TFUNCTION;
    lua_pop(L, 1);
    if (uv == FL_TASK_UV_RETRY_IF) d->has_retry_if = (uint8_t)set;
    if (uv == FL_TASK_UV_ON_SUCCESS) d->has_on_success = (uint8_t)set;
    if (uv == FL_TASK_UV_ON_FAILURE) d->has_on_failure = (uint8_t)set;
    if (uv == FL_TASK_UV_ON_RETRY) d->has_on_retry = (uint8_t)set;
    if (uv == FL_TASK_UV_CACHE_KEY) d->has_cache_key = (uint8_t)set;
  }
  if (d->cache_for >= 0 && !d->has_cache_key)
    luaL_error(L, "%s: option 'cache_for' needs 'cache_key' (a function of "
                  "the task's arguments that returns the key)",
               who);
  lua_settop(L, task_idx);
  return d;
}

void fl_push_node(lua_State *L, const fl_graph *g, uint32_t index) {
  uint32_t *n = lua_newuserdatauv(L, 2 * sizeof(uint32_t), 0);
  n[0] = g->id;
  n[1] = index;
  /* From its registry slot (luaopen_flowlua), not by name:
     luaL_setmetatable compares the name's bytes at every node, a tenth
     of a task call's cost. */
  lua_rawgeti(L, LUA_REGISTRYINDEX, fl_rt(L)->node_mt_ref);
  lua_setmetatable(L, -2);
}
