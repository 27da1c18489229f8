/*
 * errors.c — error values raised by Lua code, as the engine reads them:
 * their text (whatever the value is), the message handler that adds a
 * traceback, and the kind of a flow.fail / flow.skip signal. Error text
 * comes from anywhere (error(string.rep("x", 2e8)), a server's error body)
 * and goes to the history and the logs: it is bounded here, where it is
 * made, to its first FL_ERROR_HEAD and last FL_ERROR_TAIL bytes (where a
 * message says where it happened, and where a traceback says what
 * called), and the traceback likewise.
 *
 * The signal values are made by the flowlua module (runtime/lua); the
 * engine only reads them, so it does not depend on the module.
 */
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

#include "buf.h"

#include "engine.h"

const char *fl_error_bounded(lua_State *L, const char *s, size_t n) {
  if (n <= FL_ERROR_HEAD + FL_ERROR_TAIL) return lua_pushlstring(L, s, n);
  /* Secrets are masked before the cut: a cut through one would keep a
     piece of it that no mask matches later. */
  flowlua *rt = fl_rt(L);
  fl_buf masked = FL_BUF_INIT, b = FL_BUF_INIT;
  if (rt && rt->log.n_secrets) {
    fl_log_mask(&rt->log, s, &masked);
    s = masked.data;
    n = masked.len;
  }
  if (!masked.oom) fl_buf_add_bounded(&b, s, n, FL_ERROR_HEAD, FL_ERROR_TAIL);
  const char *text = masked.oom || b.oom
                         ? lua_pushliteral(L, "(a long error message, left out: "
                                              "out of memory shortening it)")
                         : lua_pushlstring(L, b.data, b.len);
  fl_buf_free(&masked);
  fl_buf_free(&b);
  return text;
}

const char *fl_error_text(lua_State *L, int idx) {
  idx = lua_absindex(L, idx);
  size_t n;
  if (lua_type(L, idx) == LUA_TSTRING || lua_type(L, idx) == LUA_TNUMBER) {
    const char *s = lua_tolstring(L, idx, &n);
    return fl_error_bounded(L, s, n);
  }
  if (luaL_callmeta(L, idx, "__tostring") && lua_type(L, -1) == LUA_TSTRING) {
    const char *s = lua_tolstring(L, -1, &n);
    fl_error_bounded(L, s, n);
    lua_remove(L, -2);
    return lua_tostring(L, -1);
  }
  return lua_pushfstring(L, "(error object is a %s value)",
                         luaL_typename(L, idx));
}

const char *fl_error_traceback(lua_State *L, lua_State *co, const char *msg, int level) {
  luaL_traceback(L, co, NULL, level);
  size_t n, msg_len = strlen(msg);
  const char *trace = lua_tolstring(L, -1, &n);
  fl_buf b = FL_BUF_INIT;
  fl_buf_add(&b, msg, msg_len);
  fl_buf_addc(&b, '\n');
  fl_buf_add_bounded(&b, trace, n, FL_ERROR_HEAD, FL_ERROR_TAIL);
  /* Out of memory: the message alone, rather than nothing. */
  if (b.oom)
    lua_pushlstring(L, msg, msg_len);
  else
    lua_pushlstring(L, b.data, b.len);
  fl_buf_free(&b);
  lua_remove(L, -2);
  return lua_tostring(L, -1);
}

/* Message handler for lua_pcall: the message plus a traceback. */
int fl_msgh(lua_State *L) {
  const char *msg = fl_error_text(L, 1);
  fl_error_traceback(L, L, msg, 1);
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

int fl_raise_signal(lua_State *L, int kind, const char *text, size_t n) {
  int *k = lua_newuserdatauv(L, sizeof(int), 1);
  *k = kind;
  lua_pushlstring(L, text, n);
  lua_setiuservalue(L, -2, 1);
  luaL_setmetatable(L, FL_SIGNAL_MT);
  return lua_error(L);
}
