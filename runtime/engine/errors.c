/*
 * errors.c — error values raised by Lua code, as the engine reads them:
 * their text (whatever the value is), the message handler that adds a
 * traceback, and the kind of a flow.fail / flow.skip signal.
 *
 * The signal values are made by the flowlua module (runtime/lua); the
 * engine only reads them, so it does not depend on the module.
 */
#include <lauxlib.h>
#include <lua.h>

#include "engine.h"

const char *fl_error_text(lua_State *L, int idx) {
  idx = lua_absindex(L, idx);
  if (lua_type(L, idx) == LUA_TSTRING || lua_type(L, idx) == LUA_TNUMBER)
    return lua_pushstring(L, lua_tostring(L, idx));
  if (luaL_callmeta(L, idx, "__tostring") && lua_type(L, -1) == LUA_TSTRING)
    return lua_tostring(L, -1);
  return lua_pushfstring(L, "(error object is a %s value)",
                         luaL_typename(L, idx));
}

/* Message handler for lua_pcall: the message plus a traceback. */
int fl_msgh(lua_State *L) {
  const char *msg = fl_error_text(L, 1);
  luaL_traceback(L, L, msg, 1);
  return 1;
}

int fl_signal_kind(lua_State *L, int idx, const char **msg) {
  int *k = luaL_testudata(L, idx, FL_SIGNAL_MT);
  if (!k) return 0;
  lua_getiuservalue(L, idx, 1);
  *msg = lua_tostring(L, -1);
  lua_pop(L, 1); /* the string stays referenced by the userdata */
  return *k;
}

