/*
 * lparamlib.c — flow.param: typed flow parameters as Lua values.
 *
 *   params = { n = flow.param.int(5, { min = 1 }),
 *              day = flow.param.date(),            -- nil default: required
 *              mode = flow.param.enum({ "full", "delta" }, "delta") }
 *
 * Each is a userdata holding its kind and bounds (fl_paramdef), its default
 * and an enum's choices as uservalues. This file only builds them and
 * refuses bad definitions (a default its own constraints refuse); what a
 * value must be is param_types.c's, used here and by params.c alike.
 */
#include <math.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

#include "engine.h"
#include "lflowlua.h"
#include "loptions.h"
#include "param_types.h"

/* A new param of kind, pushed, without a default yet. */
static fl_paramdef *new_param(lua_State *L, fl_param_kind kind) {
  fl_paramdef *p = lua_newuserdatauv(L, sizeof *p, FL_PARAM_NUV);
  memset(p, 0, sizeof *p);
  p->kind = kind;
  luaL_setmetatable(L, FL_PARAM_MT);
  return p;
}

/* Sets the default (at idx, nil for "required") of the param on top,
   raising when the param's own rules refuse it. */
static void set_default(lua_State *L, int idx, const char *who) {
  int param = lua_gettop(L);
  if (!lua_isnil(L, idx)) {
    if (!fl_param_normalize(L, param, idx)) {
      char shown[64];
      const char *got =
          lua_type(L, idx) == LUA_TSTRING
              ? lua_pushfstring(L, "'%s'", lua_tostring(L, idx))
              : fl_opt_shown(L, idx, shown, sizeof shown);
      fl_buf want = FL_BUF_INIT;
      fl_param_expected(L, param, &want);
      lua_pushstring(L, fl_buf_str(&want));
      fl_buf_free(&want);
      luaL_error(L, "%s: the default must be %s, got %s", who,
                 lua_tostring(L, -1), got);
    }
  } else {
    lua_pushnil(L);
  }
  lua_setiuservalue(L, -2, FL_PARAM_UV_DEFAULT);
}

/* The bounds option { min =, max = } at idx (may be absent). */
static void read_bounds(lua_State *L, fl_paramdef *p, int idx,
                        const char *who) {
  if (lua_isnoneornil(L, idx)) return;
  luaL_checktype(L, idx, LUA_TTABLE);
  static const char *const names[] = {"min", "max", NULL};
  fl_opts o;
  fl_opts_begin(&o, L, idx, who, "option", names);
  for (int k; (k = fl_opts_next(&o)) >= 0;) {
    char shown[64];
    lua_Number d = lua_tonumber(L, o.value);
    lua_Integer n = 0;
    int whole = lua_type(L, o.value) == LUA_TNUMBER &&
                (lua_isinteger(L, o.value) ||
                 (d == floor(d) && lua_numbertointeger(d, &n)));
    if (whole && lua_isinteger(L, o.value)) n = lua_tointeger(L, o.value);
    if (p->kind == FL_PARAM_INT ? !whole
                                : lua_type(L, o.value) != LUA_TNUMBER ||
                                      !isfinite(d))
      luaL_error(L, "%s: option '%s' must be %s, got %s", who, o.key,
                 p->kind == FL_PARAM_INT ? "an integer" : "a finite number",
                 fl_opt_shown(L, o.value, shown, sizeof shown));
    if (k == 0)
      p->has_min = 1, p->imin = n, p->min = d;
    else
      p->has_max = 1, p->imax = n, p->max = d;
  }
  if (p->has_min && p->has_max &&
      (p->kind == FL_PARAM_INT ? p->imin > p->imax : p->min > p->max))
    luaL_error(L, "%s: option 'min' is greater than 'max'", who);
}

static int param_int(lua_State *L) {
  lua_settop(L, 2); /* a missing default is nil, not the new param */
  fl_paramdef *p = new_param(L, FL_PARAM_INT);
  read_bounds(L, p, 2, "flow.param.int");
  set_default(L, 1, "flow.param.int");
  return 1;
}

static int param_number(lua_State *L) {
  lua_settop(L, 2);
  fl_paramdef *p = new_param(L, FL_PARAM_NUMBER);
  read_bounds(L, p, 2, "flow.param.number");
  set_default(L, 1, "flow.param.number");
  return 1;
}

static int param_plain(lua_State *L, fl_param_kind kind, const char *who) {
  if (lua_gettop(L) > 1)
    luaL_error(L, "%s takes one argument, the default (nil: required)", who);
  lua_settop(L, 1);
  new_param(L, kind);
  set_default(L, 1, who);
  return 1;
}

static int param_string(lua_State *L) {
  return param_plain(L, FL_PARAM_STRING, "flow.param.string");
}
static int param_bool(lua_State *L) {
  return param_plain(L, FL_PARAM_BOOL, "flow.param.bool");
}
static int param_date(lua_State *L) {
  return param_plain(L, FL_PARAM_DATE, "flow.param.date");
}

/* flow.param.enum({ choices... }, default) */
static int param_enum(lua_State *L) {
  lua_settop(L, 2);
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_Integer n = (lua_Integer)lua_rawlen(L, 1);
  luaL_argcheck(L, n > 0, 1, "the choices must be a non-empty list of strings");
  lua_createtable(L, (int)n, 0); /* a copy: the script's table may change */
  for (lua_Integer i = 1; i <= n; i++) {
    if (lua_rawgeti(L, 1, i) != LUA_TSTRING)
      luaL_error(L, "flow.param.enum: choice %d must be a string, got %s",
                 (int)i, luaL_typename(L, -1));
    lua_rawseti(L, -2, i);
  }
  int choices = lua_gettop(L);
  new_param(L, FL_PARAM_ENUM);
  lua_pushvalue(L, choices);
  lua_setiuservalue(L, -2, FL_PARAM_UV_CHOICES);
  set_default(L, 2, "flow.param.enum");
  return 1;
}

static int param_tostring(lua_State *L) {
  luaL_checkudata(L, 1, FL_PARAM_MT);
  fl_buf b = FL_BUF_INIT;
  fl_param_describe_text(L, 1, &b);
  lua_pushfstring(L, "flow.param (%s)", fl_buf_str(&b));
  fl_buf_free(&b);
  return 1;
}

void fl_open_params(lua_State *L) {
  static const luaL_Reg meta[] = {{"__tostring", param_tostring},
                                  {NULL, NULL}};
  static const luaL_Reg funcs[] = {{"int", param_int},
                                   {"number", param_number},
                                   {"string", param_string},
                                   {"bool", param_bool},
                                   {"date", param_date},
                                   {"enum", param_enum},
                                   {NULL, NULL}};
  luaL_newmetatable(L, FL_PARAM_MT);
  luaL_setfuncs(L, meta, 0);
  lua_pushliteral(L, "flowlua");
  lua_setfield(L, -2, "__metatable");
  lua_pop(L, 1);
  luaL_newlib(L, funcs);
  lua_setfield(L, -2, "param"); /* into the module table on top */
}
