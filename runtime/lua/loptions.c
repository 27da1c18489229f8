/*
 * loptions.c — reading options tables for the bindings (loptions.h).
 * Numbers in messages are formatted with snprintf, because
 * lua_pushfstring has no %g.
 */
#include "loptions.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include <lauxlib.h>

void fl_opts_begin(fl_opts *o, lua_State *L, int idx, const char *who,
                   const char *noun, const char *const *names) {
  *o = (fl_opts){.L = L, .table = lua_absindex(L, idx), .who = who,
                 .noun = noun, .names = names};
  lua_pushnil(L);
}

const char *fl_opts_push_list(lua_State *L, const char *const *names) {
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  for (size_t i = 0; names[i]; i++) {
    if (i) luaL_addstring(&b, ", ");
    luaL_addstring(&b, names[i]);
  }
  luaL_pushresult(&b);
  return lua_tostring(L, -1);
}

int fl_opts_next(fl_opts *o) {
  lua_State *L = o->L;
  if (o->value) lua_settop(L, o->value - 1); /* the key, for lua_next */
  if (!lua_next(L, o->table)) {
    o->value = 0;
    o->key = NULL;
    return -1;
  }
  o->value = lua_gettop(L);
  if (lua_type(L, -2) != LUA_TSTRING)
    luaL_error(L, "%s: %s names must be strings, got %s", o->who, o->noun,
               luaL_typename(L, -2));
  o->key = lua_tostring(L, -2);
  for (int i = 0; o->names[i]; i++)
    if (strcmp(o->key, o->names[i]) == 0) return i;
  const char *list = fl_opts_push_list(L, o->names);
  luaL_error(L, "%s: unknown %s '%s' (%ss: %s)", o->who, o->noun, o->key,
             o->noun, list);
  return -1;
}

double fl_opt_number(lua_State *L, int idx, const char *who, const char *key,
                     double lo, double hi) {
  if (lua_type(L, idx) != LUA_TNUMBER)
    luaL_error(L, "%s: option '%s' must be a number, got %s", who, key,
               luaL_typename(L, idx));
  double v = lua_tonumber(L, idx);
  if (v >= lo && v <= hi) return v;
  char range[96];
  if (isinf(hi))
    snprintf(range, sizeof range, "at least %g, got %g", lo, v);
  else
    snprintf(range, sizeof range, "between %g and %g, got %g", lo, hi, v);
  luaL_error(L, "%s: option '%s' must be %s", who, key, range);
  return 0;
}

int fl_opt_integer(lua_State *L, int idx, const char *who, const char *key,
                   lua_Integer lo) {
  const lua_Integer hi = 1000000000;
  int isint = 0;
  lua_Integer v =
      lua_type(L, idx) == LUA_TNUMBER ? lua_tointegerx(L, idx, &isint) : 0;
  if (!isint)
    luaL_error(L, "%s: option '%s' must be a whole number, got %s", who, key,
               lua_type(L, idx) == LUA_TNUMBER ? lua_tostring(L, idx)
                                               : luaL_typename(L, idx));
  if (v < lo)
    luaL_error(L, "%s: option '%s' must be a whole number from %I, got %I",
               who, key, (LUAI_UACINT)lo, (LUAI_UACINT)v);
  if (v > hi)
    luaL_error(L, "%s: option '%s' must be a whole number from %I to %I, "
                  "got %I",
               who, key, (LUAI_UACINT)lo, (LUAI_UACINT)hi, (LUAI_UACINT)v);
  return (int)v;
}

const char *fl_opt_shown(lua_State *L, int idx, char *out, size_t size) {
  if (lua_type(L, idx) != LUA_TNUMBER) return luaL_typename(L, idx);
  snprintf(out, size, "%g", (double)lua_tonumber(L, idx));
  return out;
}

double fl_opt_seconds(lua_State *L, int idx, const char *who, const char *key,
                      double lo) {
  if (lua_type(L, idx) != LUA_TNUMBER || !(lua_tonumber(L, idx) >= lo) ||
      !isfinite(lua_tonumber(L, idx))) {
    char text[64], low[32];
    snprintf(low, sizeof low, "%g", lo);
    luaL_error(L, "%s: option '%s' must be a number of seconds >= %s, got %s",
               who, key, low, fl_opt_shown(L, idx, text, sizeof text));
  }
  return lua_tonumber(L, idx);
}

void fl_opt_function(lua_State *L, int idx, const char *who, const char *key) {
  if (lua_type(L, idx) != LUA_TFUNCTION)
    luaL_error(L, "%s: option '%s' must be a function, got %s", who, key,
               luaL_typename(L, idx));
}
