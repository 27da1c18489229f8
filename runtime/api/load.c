/*
 * load.c — the public API's script loading: a script from a file or a
 * string, run once to collect the flows it returns; and host functions
 * registered into the `flowlua` module.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

#include "engine.h"
#include "fsutil.h"
#include "lflowlua.h"
#include "sha256.h"

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

/*
 * Loads the file at path as luaL_loadfilex(L, path, "t") does (a UTF-8 BOM
 * and a first line starting with '#' skipped, the line kept for the line
 * numbers; "@path" as the chunk name), from its bytes read whole: their
 * SHA-256 is the script's (rt->script_sha256), of exactly the text Lua
 * compiled, not of a file that may have changed since.
 */
static int load_script_file(lua_State *L, flowlua *rt, const char *path) {
  /* Every Lua allocation that may raise comes before the file's buffer, or
     after it is freed. */
  const char *chunkname = lua_pushfstring(L, "@%s", path);
  char *data;
  size_t len;
  if (fl_read_file(path, &data, &len) != 0) {
    int err = errno;
    lua_pop(L, 1);
    lua_pushfstring(L, "cannot open %s: %s", path, strerror(err));
    return LUA_ERRFILE;
  }
  fl_sha256_hex(data, len, rt->script_sha256);
  const char *p = data;
  size_t n = len;
  if (n >= 3 && memcmp(p, "\xEF\xBB\xBF", 3) == 0) p += 3, n -= 3;
  if (n > 0 && *p == '#') { /* a "#!" line: up to its newline, kept */
    const char *nl = memchr(p, '\n', n);
    n = nl ? n - (size_t)(nl - p) : 0;
    p = nl ? nl : p + n;
  }
  int st = luaL_loadbufferx(L, p, n, chunkname, "t");
  free(data);
  lua_remove(L, -2); /* the chunk name */
  return st;
}

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
  int st = ctx->path ? load_script_file(L, rt, ctx->path)
                     : luaL_loadbufferx(L, ctx->source, strlen(ctx->source),
                                        ctx->chunkname, "t");
  if (st != LUA_OK) {
    fl_set_error(rt, "cannot load %s: %s", rt->script_name,
                 lua_tostring(L, -1));
    if (st == LUA_ERRMEM) fl_name_memory_limit(rt, "while loading the script");
    ctx->status = st == LUA_ERRMEM ? FLOWLUA_ENOMEM : FLOWLUA_ELOAD;
    return 0;
  }
  lua_pushcfunction(L, fl_msgh);
  lua_insert(L, 1);
  st = lua_pcall(L, 0, 1, 1);
  if (st != LUA_OK) {
    fl_set_error(rt, "%s failed while loading: %s", rt->script_name,
                 lua_tostring(L, -1));
    if (st == LUA_ERRMEM) fl_name_memory_limit(rt, "while loading the script");
    ctx->status = FLOWLUA_ELOAD;
    return 0;
  }
  lua_replace(L, 1);
  lua_settop(L, 1);
  return collect_flows(L, rt->script_name);
}

static int load(flowlua *rt, load_ctx *ctx, const char *name) {
  fl_forget_run(rt);
  luaL_unref(rt->L, LUA_REGISTRYINDEX, rt->flows_ref);
  rt->flows_ref = LUA_NOREF;
  rt->n_flows = 0;
  free(rt->script_name);
  rt->script_name = strdup(name);
  if (!rt->script_name) return FLOWLUA_ENOMEM;
  fl_buf_reset(&rt->err);
  rt->script_sha256[0] = '\0'; /* set again when a file is read */
  fl_mem_take_hit(&rt->mem); /* only this call's refusals count */

  lua_State *L = rt->L;
  int top = lua_gettop(L);
  fl_task_names_begin(L); /* a task name defined twice fails the load */
  lua_pushcfunction(L, protected_load);
  lua_pushlightuserdata(L, ctx);
  ctx->status = FLOWLUA_OK;
  int st = lua_pcall(L, 1, 1, 0);
  if (st != LUA_OK) {
    fl_set_error(rt, "%s", lua_tostring(L, -1));
    if (st == LUA_ERRMEM) fl_name_memory_limit(rt, "while loading the script");
    ctx->status = st == LUA_ERRMEM ? FLOWLUA_ENOMEM : FLOWLUA_ELOAD;
  } else if (ctx->status == FLOWLUA_OK) {
    rt->n_flows = (size_t)lua_rawlen(L, -1);
    rt->flows_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  }
  lua_settop(L, top);
  fl_task_names_end(L);
  return ctx->status;
}

/* The script file's path, for workers (a worker loads the same file; its
   HELLO must name the same text: rt->script_sha256, set by the load). */
static void note_script_file(flowlua *rt, const char *path) {
  free(rt->script_path);
  rt->script_path = path ? strdup(path) : NULL;
}

static int flowlua_load_file_body(flowlua *rt, const char *path) {
  if (!rt) return FLOWLUA_EINVAL;
  if (!path) {
    fl_set_error(rt, "flowlua_load_file: path is NULL");
    return FLOWLUA_EINVAL;
  }
  load_ctx ctx = {.path = path};
  int status = load(rt, &ctx, path);
  note_script_file(rt, status == FLOWLUA_OK ? path : NULL);
  return status;
}

static int flowlua_load_string_body(flowlua *rt, const char *source, const char *chunkname) {
  if (!rt) return FLOWLUA_EINVAL;
  if (!source) {
    fl_set_error(rt, "flowlua_load_string: source is NULL");
    return FLOWLUA_EINVAL;
  }
  if (!chunkname) chunkname = "=(string)";
  load_ctx ctx = {.source = source, .chunkname = chunkname};
  note_script_file(rt, NULL);
  return load(rt, &ctx, chunkname[0] == '=' || chunkname[0] == '@'
                            ? chunkname + 1
                            : chunkname);
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
  if (fl_api_reentered(rt, "flowlua_register_function")) return FLOWLUA_ESTATE;
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
  int rc = fl_api_enter(rt, "flowlua_load_file", "flowlua_load_file");
  if (rc) return rc;
  if (fl_host_run_going(rt, "flowlua_load_file"))
    return fl_api_leave(rt, FLOWLUA_ESTATE);
  rc = flowlua_load_file_body(rt, path);
  return fl_api_leave(rt, rc);
}

int flowlua_load_string(flowlua *rt, const char *source, const char *chunkname) {
  if (!rt) return FLOWLUA_EINVAL;
  int rc = fl_api_enter(rt, "flowlua_load_string", "flowlua_load_string");
  if (rc) return rc;
  if (fl_host_run_going(rt, "flowlua_load_string"))
    return fl_api_leave(rt, FLOWLUA_ESTATE);
  rc = flowlua_load_string_body(rt, source, chunkname);
  return fl_api_leave(rt, rc);
}

