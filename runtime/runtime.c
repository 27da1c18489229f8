/*
 * runtime.c — the public API (include/flowlua.h): the runtime handle, script
 * loading, parameters, and running or checking a flow.
 *
 * Every call that runs Lua does so in protected mode, so an error — even out
 * of memory — comes back as a status code and a message on the handle; the
 * library never calls exit() or abort() and never lets a longjmp escape.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include "internal.h"
#include "record.h"
#include "resume.h"

/* ---- names and versions -------------------------------------------------- */

const char *flowlua_version(void) { return FLOWLUA_VERSION; }

const char *flowlua_strstatus(int status) {
  switch (status) {
#define FLOWLUA_STATUS_TEXT(name, code, text)                                  \
  case code:                                                                   \
    return text;
    FLOWLUA_STATUS_MAP(FLOWLUA_STATUS_TEXT)
#undef FLOWLUA_STATUS_TEXT
  }
  return "unknown status";
}

const char *flowlua_task_state_name(int state) {
  static const char *const names[] = {
#define FLOWLUA_STATE_TEXT(name, text) text,
      FLOWLUA_TASK_STATE_MAP(FLOWLUA_STATE_TEXT)};
  return state >= 0 && state < FLOWLUA_TASK_STATE_COUNT ? names[state] : "?";
}

const char *flowlua_flow_state_name(int state) {
  static const char *const names[] = {
      FLOWLUA_FLOW_STATE_MAP(FLOWLUA_STATE_TEXT)};
#undef FLOWLUA_STATE_TEXT
  return state >= 0 && state < FLOWLUA_FLOW_STATE_COUNT ? names[state] : "?";
}

/* ---- errors and randomness ----------------------------------------------- */

void fl_set_error(flowlua *rt, const char *fmt, ...) {
  fl_buf msg = FL_BUF_INIT;
  va_list ap;
  va_start(ap, fmt);
  fl_buf_addvf(&msg, fmt, ap);
  va_end(ap);
  fl_buf_free(&rt->err);
  rt->err = (fl_buf)FL_BUF_INIT;
  fl_log_mask(&rt->log, fl_buf_str(&msg), &rt->err); /* no secret leaks out */
  fl_buf_free(&msg);
}

/* After a call that failed for memory (LUA_ERRMEM): when it was the memory
   limit that refused, the message names the limit and what was going on. */
static void name_memory_limit(flowlua *rt, const char *doing) {
  if (!fl_mem_take_hit(&rt->mem) || !rt->mem.limit) return;
  char size[32];
  fl_buf msg = FL_BUF_INIT;
  fl_buf_addf(&msg, "memory limit of %s reached %s: %s",
              fl_mem_format(rt->mem.limit, size, sizeof size), doing,
              fl_buf_str(&rt->err));
  fl_set_error(rt, "%s", fl_buf_str(&msg));
  fl_buf_free(&msg);
}

const char *flowlua_errmsg(const flowlua *rt) {
  if (!rt) return "no runtime (NULL handle)";
  return rt->err.data ? rt->err.data : "";
}

/* xorshift64*: jitter and run ids need spread, not secrecy. */
uint64_t fl_random_u64(flowlua *rt) {
  uint64_t x = rt->rng;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  rt->rng = x;
  return x * 0x2545F4914F6CDD1DULL;
}

double fl_random(flowlua *rt) {
  return (double)(fl_random_u64(rt) >> 11) * 0x1.0p-53;
}

static uint64_t seed_random(void) {
  uint64_t seed = 0;
  if (getrandom(&seed, sizeof seed, GRND_NONBLOCK) != (ssize_t)sizeof seed) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    seed = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 20) ^
           ((uint64_t)getpid() << 40);
  }
  return seed ? seed : 0x9E3779B97F4A7C15ULL;
}

/* ---- lifecycle ----------------------------------------------------------- */

void flowlua_options_init(flowlua_options *opts) {
  *opts = (flowlua_options){.concurrency = 0,
                            .log_level = FLOWLUA_LOG_INFO,
                            .log_format = FLOWLUA_LOG_TEXT,
                            .log_fn = NULL,
                            .log_userdata = NULL,
                            .state_path = NULL,
                            .memory_limit = 0};
}

static int valid_options(const flowlua_options *o) {
  return o->concurrency >= 0 &&
         (o->memory_limit == 0 || o->memory_limit >= FL_MEM_MIN_LIMIT) &&
         o->log_level >= FLOWLUA_LOG_DEBUG &&
         o->log_level <= FLOWLUA_LOG_OFF &&
         (o->log_format == FLOWLUA_LOG_TEXT || o->log_format == FLOWLUA_LOG_JSON);
}

/* Opens the standard libraries and makes `require "flowlua"` work. */
static int open_libraries(lua_State *L) {
  luaL_openlibs(L);
  lua_getglobal(L, "package");
  lua_getfield(L, -1, "preload");
  lua_pushcfunction(L, luaopen_flowlua);
  lua_setfield(L, -2, "flowlua");
  return 0;
}

int flowlua_new(const flowlua_options *opts, flowlua **out) {
  if (!out) return FLOWLUA_EINVAL;
  *out = NULL;
  flowlua_options defaults;
  flowlua_options_init(&defaults);
  if (!opts) opts = &defaults;
  if (!valid_options(opts)) return FLOWLUA_EINVAL;

  flowlua *rt = calloc(1, sizeof *rt);
  if (!rt) return FLOWLUA_ENOMEM;
  rt->opts = *opts;
  rt->flows_ref = LUA_NOREF;
  if (opts->state_path && !(rt->state_path = strdup(opts->state_path))) {
    free(rt);
    return FLOWLUA_ENOMEM;
  }
  rt->opts.state_path = rt->state_path;
  rt->rng = seed_random();
  fl_logger_init(&rt->log, opts->log_level, opts->log_format, opts->log_fn,
                 opts->log_userdata);
  if (fl_loop_init(&rt->loop) != 0) goto fail_loop;
  rt->L = luaL_newstate();
  if (!rt->L) goto fail_lua;
  /* Counted from the start: the libraries and every script count. */
  if (fl_mem_install(&rt->mem, rt->L, opts->memory_limit) != 0) goto fail_libs;
  *(flowlua **)lua_getextraspace(rt->L) = rt;
  lua_pushcfunction(rt->L, open_libraries);
  if (lua_pcall(rt->L, 0, 0, 0) != LUA_OK) goto fail_libs;
  lua_sethook(rt->L, fl_interrupt_hook, LUA_MASKCOUNT, FL_HOOK_COUNT);
  *out = rt;
  return FLOWLUA_OK;

fail_libs:
  lua_close(rt->L);
fail_lua:
  fl_loop_close(&rt->loop);
fail_loop:
  fl_logger_free(&rt->log);
  free(rt->state_path);
  free(rt);
  return FLOWLUA_ENOMEM;
}

static void forget_tasks(flowlua *rt) {
  for (size_t i = 0; i < rt->n_task_keys; i++) free(rt->task_keys[i]);
  free(rt->task_keys);
  free(rt->task_runs);
  rt->task_keys = NULL;
  rt->task_runs = NULL;
  rt->n_task_keys = 0;
}

/* Drops the last run and graph (they borrow from the loaded script). */
static void forget_run(flowlua *rt) {
  forget_tasks(rt);
  if (rt->sched && rt->sched->active)
    rt->sched->orphan = 1; /* still going: freed once it has ended */
  else
    fl_sched_free(rt, rt->sched);
  rt->sched = NULL;
  fl_sched_collect(rt);
  fl_graph_free(rt, rt->graph);
  rt->graph = NULL;
}

void flowlua_clear_params(flowlua *rt) {
  if (!rt) return;
  for (size_t i = 0; i < rt->n_params; i++) {
    free(rt->param_names[i]);
    free(rt->param_values[i]);
  }
  free(rt->param_names);
  free(rt->param_values);
  rt->param_names = rt->param_values = NULL;
  rt->n_params = 0;
}

static void free_now(flowlua *rt);

/* Calls that may run the host's callbacks count themselves in rt->busy:
   a flowlua_free from inside a callback only asks, and the outermost call
   frees the runtime as it returns (it touches nothing after that). */
void fl_api_enter(flowlua *rt) { rt->busy++; }

int fl_api_leave(flowlua *rt, int rc) {
  if (--rt->busy == 0 && rt->free_requested) free_now(rt);
  return rc;
}

void flowlua_free(flowlua *rt) {
  if (!rt) return;
  if (rt->busy) {
    /* From a callback: the run is cancelled, and the runtime freed when
       the call that ran the callback returns. */
    rt->free_requested = 1;
    rt->stop_requested = 1;
    rt->cancel_requested = 1;
    return;
  }
  free_now(rt);
}

static void free_now(flowlua *rt) {
  forget_run(rt);
  while (rt->active) { /* runs a host left going: their coroutines first */
    fl_sched *s = rt->active;
    rt->active = s->next_active;
    fl_sched_free(rt, s);
  }
  fl_resume_forget(rt);
  fl_record_close(rt); /* after the runs: it ends the ones left open */
  lua_close(rt->L); /* frees the requests Lua still held */
  if (rt->http_ready) fl_http_close(&rt->http);
  fl_loop_close(&rt->loop);
  fl_logger_free(&rt->log);
  flowlua_clear_params(rt);
  fl_buf_free(&rt->err);
  free(rt->script_name);
  free(rt->state_path);
  free(rt);
}

lua_State *flowlua_lua_state(flowlua *rt) { return rt ? rt->L : NULL; }

void flowlua_stop(flowlua *rt) {
  if (!rt) return;
  rt->stop_requested = 1;
  fl_loop_wake(&rt->loop);
}

void flowlua_cancel(flowlua *rt) {
  if (!rt) return;
  rt->stop_requested = 1;
  rt->cancel_requested = 1;
  fl_loop_wake(&rt->loop);
}

void flowlua_reset_stop(flowlua *rt) {
  if (!rt) return;
  rt->cancel_requested = 0;
  rt->stop_requested = 0;
}

/* ---- loading a script ---------------------------------------------------- */

/* Lets a script `require` modules that sit next to it. */
static void add_script_dir_to_path(lua_State *L, const char *path) {
  const char *slash = strrchr(path, '/');
  if (!slash) return; /* the default path already has ./?.lua */
  lua_getglobal(L, "package");
  const char *dir = lua_pushlstring(L, path, (size_t)(slash - path + 1));
  lua_pushfstring(L, "%s?.lua;%s?/init.lua;", dir, dir);
  lua_getfield(L, -3, "path");
  lua_concat(L, 2);
  lua_setfield(L, -3, "path");
  lua_pop(L, 2);
}

typedef struct load_ctx {
  const char *path, *source, *chunkname;
  int status;
} load_ctx;

/* Collects the flows a script returned into a list; raises on anything
   else. Index 1 is the returned value. */
static int collect_flows(lua_State *L, const char *script) {
  lua_newtable(L); /* list */
  lua_newtable(L); /* names seen */
  int list = 2, seen = 3, n = 0;
  if (luaL_testudata(L, 1, FL_FLOW_MT)) {
    lua_pushvalue(L, 1);
    lua_rawseti(L, list, ++n);
  } else if (lua_type(L, 1) == LUA_TTABLE) {
    lua_pushnil(L);
    while (lua_next(L, 1)) {
      if (!luaL_testudata(L, -1, FL_FLOW_MT))
        return luaL_error(L, "%s returned a table holding %s at key '%s'; "
                             "it must hold only flows (flow.define(...))",
                          script, luaL_typename(L, -1),
                          luaL_tolstring(L, -2, NULL));
      fl_flowdef *f = lua_touserdata(L, -1);
      if (lua_getfield(L, seen, f->name) != LUA_TNIL)
        return luaL_error(L, "%s returned two flows named '%s'", script,
                          f->name);
      lua_pop(L, 1);
      lua_pushboolean(L, 1);
      lua_setfield(L, seen, f->name);
      lua_pushvalue(L, -1);
      lua_rawseti(L, list, ++n);
      lua_pop(L, 1);
    }
  }
  if (n == 0)
    return luaL_error(L,
                      "%s must return a flow (return flow.define(...)) or a "
                      "table of flows, but it returned %s",
                      script,
                      lua_type(L, 1) == LUA_TTABLE ? "an empty table"
                                                   : luaL_typename(L, 1));
  lua_pushvalue(L, list);
  return 1;
}

static int protected_load(lua_State *L) {
  load_ctx *ctx = lua_touserdata(L, 1);
  flowlua *rt = fl_rt(L);
  lua_settop(L, 0);
  if (ctx->path) add_script_dir_to_path(L, ctx->path);
  /* Source text only, from a file as from a string: Lua does not verify
     precompiled chunks, and a damaged one crashes the interpreter. */
  int st = ctx->path ? luaL_loadfilex(L, ctx->path, "t")
                     : luaL_loadbufferx(L, ctx->source, strlen(ctx->source),
                                        ctx->chunkname, "t");
  if (st != LUA_OK) {
    fl_set_error(rt, "cannot load %s: %s", rt->script_name,
                 lua_tostring(L, -1));
    if (st == LUA_ERRMEM) name_memory_limit(rt, "while loading the script");
    ctx->status = st == LUA_ERRMEM ? FLOWLUA_ENOMEM : FLOWLUA_ELOAD;
    return 0;
  }
  lua_pushcfunction(L, fl_msgh);
  lua_insert(L, 1);
  st = lua_pcall(L, 0, 1, 1);
  if (st != LUA_OK) {
    fl_set_error(rt, "%s failed while loading: %s", rt->script_name,
                 lua_tostring(L, -1));
    if (st == LUA_ERRMEM) name_memory_limit(rt, "while loading the script");
    ctx->status = FLOWLUA_ELOAD;
    return 0;
  }
  lua_replace(L, 1);
  lua_settop(L, 1);
  return collect_flows(L, rt->script_name);
}

static int load(flowlua *rt, load_ctx *ctx, const char *name) {
  forget_run(rt);
  luaL_unref(rt->L, LUA_REGISTRYINDEX, rt->flows_ref);
  rt->flows_ref = LUA_NOREF;
  rt->n_flows = 0;
  free(rt->script_name);
  rt->script_name = strdup(name);
  if (!rt->script_name) return FLOWLUA_ENOMEM;
  fl_buf_reset(&rt->err);
  fl_mem_take_hit(&rt->mem); /* only this call's refusals count */

  lua_State *L = rt->L;
  int top = lua_gettop(L);
  lua_pushcfunction(L, protected_load);
  lua_pushlightuserdata(L, ctx);
  ctx->status = FLOWLUA_OK;
  int st = lua_pcall(L, 1, 1, 0);
  if (st != LUA_OK) {
    fl_set_error(rt, "%s", lua_tostring(L, -1));
    if (st == LUA_ERRMEM) name_memory_limit(rt, "while loading the script");
    ctx->status = st == LUA_ERRMEM ? FLOWLUA_ENOMEM : FLOWLUA_ELOAD;
  } else if (ctx->status == FLOWLUA_OK) {
    rt->n_flows = (size_t)lua_rawlen(L, -1);
    rt->flows_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  }
  lua_settop(L, top);
  return ctx->status;
}

static int flowlua_load_file_body(flowlua *rt, const char *path) {
  if (!rt) return FLOWLUA_EINVAL;
  if (!path) {
    fl_set_error(rt, "flowlua_load_file: path is NULL");
    return FLOWLUA_EINVAL;
  }
  load_ctx ctx = {.path = path};
  return load(rt, &ctx, path);
}

static int flowlua_load_string_body(flowlua *rt, const char *source, const char *chunkname) {
  if (!rt) return FLOWLUA_EINVAL;
  if (!source) {
    fl_set_error(rt, "flowlua_load_string: source is NULL");
    return FLOWLUA_EINVAL;
  }
  if (!chunkname) chunkname = "=(string)";
  load_ctx ctx = {.source = source, .chunkname = chunkname};
  return load(rt, &ctx, chunkname[0] == '=' || chunkname[0] == '@'
                            ? chunkname + 1
                            : chunkname);
}

size_t flowlua_flow_count(const flowlua *rt) { return rt ? rt->n_flows : 0; }

const char *flowlua_flow_name(const flowlua *rt, size_t i) {
  if (!rt || i >= rt->n_flows) return NULL;
  lua_State *L = rt->L;
  lua_rawgeti(L, LUA_REGISTRYINDEX, rt->flows_ref);
  lua_rawgeti(L, -1, (lua_Integer)i + 1);
  fl_flowdef *f = lua_touserdata(L, -1);
  lua_pop(L, 2); /* the userdata stays referenced by the list */
  return f ? f->name : NULL;
}

/* ---- parameters ---------------------------------------------------------- */

int flowlua_set_param(flowlua *rt, const char *name, const char *value) {
  if (!rt) return FLOWLUA_EINVAL;
  if (!name || !*name || !value) {
    fl_set_error(rt, "flowlua_set_param: name and value are required");
    return FLOWLUA_EINVAL;
  }
  for (size_t i = 0; i < rt->n_params; i++)
    if (strcmp(rt->param_names[i], name) == 0) {
      char *v = strdup(value);
      if (!v) return FLOWLUA_ENOMEM;
      free(rt->param_values[i]);
      rt->param_values[i] = v;
      return FLOWLUA_OK;
    }
  char **names = realloc(rt->param_names, (rt->n_params + 1) * sizeof *names);
  if (!names) return FLOWLUA_ENOMEM;
  rt->param_names = names;
  char **values = realloc(rt->param_values, (rt->n_params + 1) * sizeof *values);
  if (!values) return FLOWLUA_ENOMEM;
  rt->param_values = values;
  char *n = strdup(name), *v = strdup(value);
  if (!n || !v) {
    free(n);
    free(v);
    return FLOWLUA_ENOMEM;
  }
  names[rt->n_params] = n;
  values[rt->n_params] = v;
  rt->n_params++;
  return FLOWLUA_OK;
}

/* A --param value as a message shows it: quoted, and cut short when long
   (10 KB of JSON in an error helps nobody), at a UTF-8 boundary. */
static const char *quote_value(char *out, size_t size, const char *value) {
  size_t len = strlen(value), cut = 60;
  if (len <= 80) {
    snprintf(out, size, "'%s'", value);
    return out;
  }
  while (cut > 0 && ((unsigned char)value[cut] & 0xC0) == 0x80) cut--;
  snprintf(out, size, "'%.*s...' (%zu bytes)", (int)cut, value, len);
  return out;
}

/* Converts the text `value` to the type of the default at def_idx and
   pushes it; returns 0, or -1 with the reason set on rt. */
static int push_param_value(flowlua *rt, const char *flow, const char *name,
                            const char *value, int def_idx) {
  lua_State *L = rt->L;
  char shown[128];
  switch (lua_type(L, def_idx)) {
  case LUA_TNUMBER:
    if (lua_stringtonumber(L, value) == 0) {
      fl_set_error(rt, "flow '%s': parameter '%s' must be a number, got %s",
                   flow, name, quote_value(shown, sizeof shown, value));
      return -1;
    }
    if (!isfinite(lua_tonumber(L, -1))) { /* 1e999 reads as infinity */
      lua_pop(L, 1);
      fl_set_error(rt, "flow '%s': parameter '%s' must be a finite number, "
                       "got %s",
                   flow, name, quote_value(shown, sizeof shown, value));
      return -1;
    }
    return 0;
  case LUA_TBOOLEAN: {
    static const char *const yes[] = {"true", "yes", "1", "on"};
    static const char *const no[] = {"false", "no", "0", "off"};
    for (int i = 0; i < 4; i++) {
      if (strcmp(value, yes[i]) == 0) return lua_pushboolean(L, 1), 0;
      if (strcmp(value, no[i]) == 0) return lua_pushboolean(L, 0), 0;
    }
    fl_set_error(rt, "flow '%s': parameter '%s' must be true or false, got %s",
                 flow, name, quote_value(shown, sizeof shown, value));
    return -1;
  }
  case LUA_TTABLE: {
    /* JSON, read by flow.json.decode so that integers stay integers. */
    int top = lua_gettop(L);
    lua_getfield(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
    lua_getfield(L, -1, "flowlua");
    if (lua_type(L, -1) != LUA_TTABLE ||
        lua_getfield(L, -1, "json") != LUA_TTABLE ||
        lua_getfield(L, -1, "decode") != LUA_TFUNCTION) {
      fl_set_error(rt, "flow '%s': parameter '%s': the flowlua module is "
                       "not loaded", flow, name);
      lua_settop(L, top);
      return -1;
    }
    lua_pushstring(L, value);
    int rc = lua_pcall(L, 1, 1, 0);
    if (rc != LUA_OK || !lua_istable(L, -1)) {
      fl_set_error(rt, "flow '%s': parameter '%s' must be a JSON object or "
                       "array, got %s (%s)",
                   flow, name, quote_value(shown, sizeof shown, value),
                   rc != LUA_OK && lua_isstring(L, -1) ? lua_tostring(L, -1)
                                                       : "not a table");
      lua_settop(L, top);
      return -1;
    }
    lua_replace(L, top + 1);
    lua_settop(L, top + 1);
    return 0;
  }
  default:
    lua_pushstring(L, value);
    return 0;
  }
}

/* Pushes the params for the flow at flow_idx: defaults, then overrides. */
static int push_params(flowlua *rt, int flow_idx) {
  lua_State *L = rt->L;
  fl_flowdef *f = lua_touserdata(L, flow_idx);
  lua_newtable(L);
  int params = lua_gettop(L);
  lua_getiuservalue(L, flow_idx, FL_FLOW_UV_PARAMS);
  int defaults = lua_gettop(L);
  lua_pushnil(L);
  while (lua_next(L, defaults)) {
    lua_pushvalue(L, -2);
    lua_insert(L, -2);
    lua_rawset(L, params);
  }
  if (rt->resume) {
    int rc = fl_resume_push_params(rt, f->name, defaults, params);
    if (rc) {
      lua_settop(L, params - 1);
      return rc;
    }
  }
  for (size_t i = 0; i < rt->n_params; i++) {
    const char *name = rt->param_names[i];
    if (lua_getfield(L, defaults, name) == LUA_TNIL) {
      fl_buf known = FL_BUF_INIT;
      lua_pushnil(L);
      while (lua_next(L, defaults)) {
        fl_buf_addf(&known, "%s%s", known.len ? ", " : "", lua_tostring(L, -2));
        lua_pop(L, 1);
      }
      if (known.len)
        fl_set_error(rt, "flow '%s' has no parameter '%s' (its parameters: %s)",
                     f->name, name, fl_buf_str(&known));
      else
        fl_set_error(rt, "flow '%s' has no parameter '%s' (it takes none)",
                     f->name, name);
      fl_buf_free(&known);
      lua_settop(L, params - 1);
      return FLOWLUA_EPARAM;
    }
    if (push_param_value(rt, f->name, name, rt->param_values[i], -1) != 0) {
      lua_settop(L, params - 1);
      return FLOWLUA_EPARAM;
    }
    lua_setfield(L, params, name);
    lua_pop(L, 1);
  }
  lua_settop(L, params);
  return FLOWLUA_OK;
}

/* ---- running ------------------------------------------------------------- */

/* Pushes the flow called name (NULL: the only one); FLOWLUA_ENOFLOW if none. */
int fl_push_flow(flowlua *rt, const char *name) {
  lua_State *L = rt->L;
  if (rt->flows_ref == LUA_NOREF) {
    fl_set_error(rt, "no script loaded");
    return FLOWLUA_ESTATE;
  }
  if (!name && rt->n_flows > 1) {
    fl_buf names = FL_BUF_INIT;
    for (size_t i = 0; i < rt->n_flows; i++)
      fl_buf_addf(&names, "%s'%s'", i ? ", " : "", flowlua_flow_name(rt, i));
    fl_set_error(rt, "%s defines %zu flows (%s): choose one by name",
                 rt->script_name, rt->n_flows, fl_buf_str(&names));
    fl_buf_free(&names);
    return FLOWLUA_ENOFLOW;
  }
  for (size_t i = 0; i < rt->n_flows; i++) {
    if (name && strcmp(flowlua_flow_name(rt, i), name) != 0) continue;
    lua_rawgeti(L, LUA_REGISTRYINDEX, rt->flows_ref);
    lua_rawgeti(L, -1, (lua_Integer)i + 1);
    lua_remove(L, -2);
    return FLOWLUA_OK;
  }
  fl_buf names = FL_BUF_INIT;
  for (size_t i = 0; i < rt->n_flows; i++)
    fl_buf_addf(&names, "%s'%s'", i ? ", " : "", flowlua_flow_name(rt, i));
  fl_set_error(rt, "%s has no flow named '%s' (it defines %s)",
               rt->script_name, name, fl_buf_str(&names));
  fl_buf_free(&names);
  return FLOWLUA_ENOFLOW;
}

typedef enum run_mode {
  RUN_CHECK, /* build and validate only */
  RUN_WAIT,  /* run, and return when the run has ended */
  RUN_START  /* start the run and return; it moves with fl_sched_pump_all */
} run_mode;

typedef struct run_ctx {
  const char *flow_name;
  run_mode mode;
  void (*on_end)(fl_sched *s, void *data); /* RUN_START */
  void *on_end_data;
  int status;
  int force;             /* resume: despite a changed graph */
  const char *from_task; /* resume: run this and its downstream again */
} run_ctx;

static int protected_run(lua_State *L) {
  run_ctx *ctx = lua_touserdata(L, 1);
  flowlua *rt = fl_rt(L);
  lua_settop(L, 0);
  ctx->status = fl_push_flow(rt, ctx->flow_name);
  if (ctx->status) return 0;
  ctx->status = push_params(rt, 1);
  if (ctx->status) return 0;
  ctx->status = fl_graph_build(rt, 1, 2);
  if (ctx->status || ctx->mode == RUN_CHECK) return 0;
  if (rt->resume) {
    ctx->status = fl_resume_check(rt, rt->graph, ctx->force, ctx->from_task);
    if (ctx->status) return 0;
  }
  if (ctx->mode == RUN_WAIT) {
    ctx->status = fl_sched_run(rt, rt->graph, &rt->sched);
    return 0;
  }
  ctx->status = fl_sched_start(rt, rt->graph, &rt->sched);
  if (ctx->status == FLOWLUA_OK) {
    rt->sched->on_end = ctx->on_end;
    rt->sched->on_end_data = ctx->on_end_data;
  }
  return 0;
}

static int run_protected(flowlua *rt, run_ctx *ctx) {
  forget_run(rt);
  fl_buf_reset(&rt->err);
  fl_mem_take_hit(&rt->mem); /* only this call's refusals count */
  lua_State *L = rt->L;
  int top = lua_gettop(L);
  ctx->status = FLOWLUA_OK;
  lua_pushcfunction(L, protected_run);
  lua_pushlightuserdata(L, ctx);
  int st = lua_pcall(L, 1, 0, 0);
  rt->building = NULL;
  rt->current = NULL;
  if (st != LUA_OK) {
    fl_set_error(rt, "%s: %s",
                 ctx->mode == RUN_CHECK ? "checking the flow failed"
                                        : "the run aborted",
                 lua_tostring(L, -1));
    if (st == LUA_ERRMEM)
      name_memory_limit(rt, rt->sched ? "between tasks (the runtime's own "
                                        "bookkeeping)"
                                      : "while building the flow");
    ctx->status = st == LUA_ERRMEM ? FLOWLUA_ENOMEM : FLOWLUA_EBUILD;
    if (rt->sched) rt->sched->state = FLOWLUA_FLOW_FAILED;
  } else if (ctx->status != FLOWLUA_OK &&
             strstr(fl_buf_str(&rt->err), "not enough memory")) {
    name_memory_limit(rt, "while building the flow"); /* the body's pcall */
  }
  fl_resume_forget(rt); /* a run took it over, or it did not start */
  lua_settop(L, top);
  return ctx->status;
}

static int run_or_check(flowlua *rt, const char *flow_name, int check_only) {
  run_ctx ctx = {flow_name, check_only ? RUN_CHECK : RUN_WAIT, NULL, NULL,
                 FLOWLUA_OK, 0, NULL};
  return run_protected(rt, &ctx);
}

int fl_start_run(flowlua *rt, const char *flow_name, double scheduled_at,
                 void (*on_end)(fl_sched *s, void *data), void *data) {
  run_ctx ctx = {flow_name, RUN_START, on_end, data, FLOWLUA_OK, 0, NULL};
  rt->scheduled_at = scheduled_at;
  int rc = run_protected(rt, &ctx);
  rt->scheduled_at = 0;
  return rc;
}

static int flowlua_check_body(flowlua *rt, const char *flow_name) {
  if (!rt) return FLOWLUA_EINVAL;
  return run_or_check(rt, flow_name, 1);
}

void fl_fill_outcome(const fl_sched *s, flowlua_outcome *out) {
  memset(out, 0, sizeof *out);
  out->state = s->state;
  out->duration = s->ended - s->started;
  memcpy(out->run_id, s->run_id, sizeof out->run_id);
  for (uint32_t i = 0; i < s->g->n; i++) {
    const fl_taskrun *r = &s->runs[i];
    if (r->map && r->map->n > 0) {
      for (uint32_t k = 0; k < r->map->n; k++)
        out->by_state[r->map->children[k].state]++;
      out->tasks += r->map->n;
    } else {
      out->by_state[r->state]++;
      out->tasks++;
    }
  }
}

/* flowlua_run, _resume and _serve wait on the loop themselves: not while
   the host drives a started run (hostloop.c). */
int fl_host_run_going(flowlua *rt, const char *who) {
  if (!rt->sched || !rt->sched->active) return 0;
  fl_set_error(rt, "%s: a run started with flowlua_start is going; step it "
                   "to its end first",
               who);
  return 1;
}

static int flowlua_run_body(flowlua *rt, const char *flow_name, flowlua_outcome *out) {
  if (!rt) return FLOWLUA_EINVAL;
  if (fl_host_run_going(rt, "flowlua_run")) return FLOWLUA_ESTATE;
  if (out) memset(out, 0, sizeof *out);
  int rc = run_or_check(rt, flow_name, 0);
  if (rt->sched && out) fl_fill_outcome(rt->sched, out);
  if (rc == FLOWLUA_OK && rt->sched && rt->sched->state == FLOWLUA_FLOW_CANCELLED)
    fl_set_error(rt, "the run was cancelled");
  return rc;
}

/* flowlua_resume (RUN_WAIT) and flowlua_start_resume (RUN_START): the
   stored run is read, then its resume runs like any other run. */
static int resume_with(flowlua *rt, const char *who, run_mode mode,
                       const char *flow_name, const char *run_ref, int force,
                       const char *from_task) {
  if (fl_host_run_going(rt, who)) return FLOWLUA_ESTATE;
  if (!run_ref || !*run_ref) {
    fl_set_error(rt, "%s: a run id (or \"last\") is required", who);
    return FLOWLUA_EINVAL;
  }
  forget_run(rt);
  fl_buf_reset(&rt->err);
  int rc = fl_resume_load(rt, flow_name, run_ref);
  if (rc) return rc;
  run_ctx ctx = {flow_name, mode, NULL, NULL, FLOWLUA_OK, force, from_task};
  return run_protected(rt, &ctx);
}

int flowlua_start_resume(flowlua *rt, const char *flow_name,
                         const char *run_ref, int force,
                         const char *from_task) {
  if (!rt) return FLOWLUA_EINVAL;
  return resume_with(rt, "flowlua_start_resume", RUN_START, flow_name,
                     run_ref, force, from_task);
}

static int flowlua_resume_body(flowlua *rt, const char *flow_name, const char *run_ref,
                   int force, const char *from_task, flowlua_outcome *out) {
  if (!rt) return FLOWLUA_EINVAL;
  if (out) memset(out, 0, sizeof *out);
  int rc = resume_with(rt, "flowlua_resume", RUN_WAIT, flow_name, run_ref,
                       force, from_task);
  if (rt->sched && out) fl_fill_outcome(rt->sched, out);
  if (rc == FLOWLUA_OK && rt->sched && rt->sched->state == FLOWLUA_FLOW_CANCELLED)
    fl_set_error(rt, "the run was cancelled");
  return rc;
}

/* ---- reading task runs --------------------------------------------------- */

/* Lists the task runs of the last run (or the nodes of the last check). */
static int index_tasks(flowlua *rt) {
  fl_sched *s = rt->sched;
  fl_graph *g = s ? s->g : rt->graph;
  if (rt->task_keys || !g) return 0;
  size_t n = g->n;
  if (s) n = s->total_runs;
  rt->task_keys = calloc(n ? n : 1, sizeof *rt->task_keys);
  rt->task_runs = calloc(n ? n : 1, sizeof *rt->task_runs);
  if (!rt->task_keys || !rt->task_runs) {
    forget_tasks(rt);
    return FLOWLUA_ENOMEM;
  }
  fl_buf key = FL_BUF_INIT;
  size_t k = 0;
  for (uint32_t i = 0; i < g->n && k < n; i++) {
    fl_buf_reset(&key);
    fl_graph_add_key(&key, g, i);
    rt->task_runs[k] = s ? &s->runs[i] : NULL;
    rt->task_keys[k++] = strdup(fl_buf_str(&key));
    fl_taskrun *r = s ? &s->runs[i] : NULL;
    for (uint32_t c = 0; r && r->map && c < r->map->n && k < n; c++) {
      fl_buf_reset(&key);
      fl_taskrun_add_key(&key, &r->map->children[c]);
      rt->task_runs[k] = &r->map->children[c];
      rt->task_keys[k++] = strdup(fl_buf_str(&key));
    }
  }
  rt->n_task_keys = k;
  fl_buf_free(&key);
  for (size_t i = 0; i < k; i++)
    if (!rt->task_keys[i]) {
      forget_tasks(rt);
      return FLOWLUA_ENOMEM;
    }
  return 0;
}

size_t flowlua_task_count(flowlua *rt) {
  if (!rt || index_tasks(rt) != 0) return 0;
  return rt->n_task_keys;
}

int flowlua_task_get(flowlua *rt, size_t i, flowlua_task_info *out) {
  if (!rt || !out) return FLOWLUA_EINVAL;
  int rc = index_tasks(rt);
  if (rc) return rc;
  if (i >= rt->n_task_keys) return FLOWLUA_EINVAL;
  const fl_taskrun *r = rt->task_runs[i];
  *out = (flowlua_task_info){.key = rt->task_keys[i],
                             .state = FLOWLUA_TASK_PENDING,
                             .map_size = -1};
  if (!r) { /* a checked graph: the node at that position, never run */
    out->task = rt->graph->nodes[i].def->name;
    return FLOWLUA_OK;
  }
  out->task = r->sched->g->nodes[r->node].def->name;
  out->state = r->state;
  out->attempts = r->attempts;
  if (r->first_start > 0 && r->ended >= r->first_start)
    out->duration = r->ended - r->first_start;
  out->error = r->error;
  if (r->map) out->map_size = (int)r->map->n;
  out->map_index = r->map_index;
  return FLOWLUA_OK;
}

/* ---- serving a schedule -------------------------------------------------- */

int flowlua_flow_scheduled(flowlua *rt, const char *flow_name) {
  if (!rt) return FLOWLUA_EINVAL;
  int rc = fl_push_flow(rt, flow_name);
  if (rc) return rc;
  fl_flowdef *f = lua_touserdata(rt->L, -1);
  lua_pop(rt->L, 1);
  return f->schedule != NULL;
}

/* ---- host functions ------------------------------------------------------ */

static int is_identifier(const char *s) {
  if (!s || !(*s == '_' || (*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z')))
    return 0;
  for (s++; *s; s++)
    if (!(*s == '_' || (*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
          (*s >= '0' && *s <= '9')))
      return 0;
  return 1;
}

/* Pushes the flowlua module table, built if no script has required it. */
static int push_module(lua_State *L) {
  luaL_requiref(L, "flowlua", luaopen_flowlua, 0);
  return 1;
}

int flowlua_register_function(flowlua *rt, const char *name,
                              int (*fn)(lua_State *L)) {
  if (!rt) return FLOWLUA_EINVAL;
  fl_buf_reset(&rt->err);
  if (!fn || !is_identifier(name)) {
    fl_set_error(rt, "flowlua_register_function: '%s' is not a Lua name (or "
                     "the function is NULL)",
                 name ? name : "(null)");
    return FLOWLUA_EINVAL;
  }
  lua_State *L = rt->L;
  int top = lua_gettop(L);
  lua_pushcfunction(L, push_module);
  if (lua_pcall(L, 0, 1, 0) != LUA_OK) {
    fl_set_error(rt, "flowlua_register_function: %s", lua_tostring(L, -1));
    lua_settop(L, top);
    return FLOWLUA_ENOMEM;
  }
  int module = lua_gettop(L);
  int taken = lua_getfield(L, module, name) != LUA_TNIL;
  lua_pop(L, 1);
  int ours = 0; /* registered before: replacing a host function is fine */
  if (lua_getfield(L, LUA_REGISTRYINDEX, FL_HOST_FUNCS) == LUA_TTABLE) {
    ours = lua_getfield(L, -1, name) != LUA_TNIL;
    lua_pop(L, 1);
  } else {
    lua_pop(L, 1);
    lua_newtable(L);
    lua_pushvalue(L, -1);
    lua_setfield(L, LUA_REGISTRYINDEX, FL_HOST_FUNCS);
  }
  if (taken && !ours) {
    fl_set_error(rt, "flowlua_register_function: flow.%s already exists in "
                     "the flowlua module",
                 name);
    lua_settop(L, top);
    return FLOWLUA_EINVAL;
  }
  lua_pushcfunction(L, fn);
  lua_setfield(L, -2, name); /* for modules built later */
  lua_pushcfunction(L, fn);
  lua_setfield(L, module, name); /* and the one scripts see now */
  lua_settop(L, top);
  return FLOWLUA_OK;
}

int flowlua_load_file(flowlua *rt, const char *path) {
  if (!rt) return FLOWLUA_EINVAL;
  fl_api_enter(rt);
  int rc = flowlua_load_file_body(rt, path);
  return fl_api_leave(rt, rc);
}

int flowlua_load_string(flowlua *rt, const char *source, const char *chunkname) {
  if (!rt) return FLOWLUA_EINVAL;
  fl_api_enter(rt);
  int rc = flowlua_load_string_body(rt, source, chunkname);
  return fl_api_leave(rt, rc);
}

int flowlua_check(flowlua *rt, const char *flow_name) {
  if (!rt) return FLOWLUA_EINVAL;
  fl_api_enter(rt);
  int rc = flowlua_check_body(rt, flow_name);
  return fl_api_leave(rt, rc);
}

int flowlua_run(flowlua *rt, const char *flow_name, flowlua_outcome *out) {
  if (!rt) return FLOWLUA_EINVAL;
  fl_api_enter(rt);
  int rc = flowlua_run_body(rt, flow_name, out);
  return fl_api_leave(rt, rc);
}

int flowlua_resume(flowlua *rt, const char *flow_name, const char *run_ref,
                   int force, const char *from_task, flowlua_outcome *out) {
  if (!rt) return FLOWLUA_EINVAL;
  fl_api_enter(rt);
  int rc = flowlua_resume_body(rt, flow_name, run_ref, force, from_task, out);
  return fl_api_leave(rt, rc);
}
