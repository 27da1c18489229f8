/*
 * ljsonlib.c — flow.json: encode, decode and null as in lua-cjson, plus
 * read(path) and write(path, value). The codec itself is the engine's
 * (value_json.c), shared with the history's results.
 *
 * The only C resource is an output or file buffer, held by a to-be-closed
 * userdata so that an error raised halfway frees it at once.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <math.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

#include "buf.h"
#include "fsutil.h"
#include "engine.h"
#include "lflowlua.h"
#include "loptions.h"
#include "value_json.h"

#define BUFFER_MT "flowlua.json.buffer"
/* ---- the buffer box ------------------------------------------------------ */

static int buffer_close(lua_State *L) {
  fl_buf_free(luaL_checkudata(L, 1, BUFFER_MT));
  return 0;
}

/* Pushes an empty buffer that is freed when the calling C function returns
   or raises. */
static fl_buf *push_buffer(lua_State *L) {
  fl_buf *b = lua_newuserdatauv(L, sizeof *b, 0);
  *b = (fl_buf)FL_BUF_INIT;
  luaL_setmetatable(L, BUFFER_MT);
  lua_toclose(L, -1);
  return b;
}

/* A path argument: a string without zero bytes (the OS would cut it). */
static const char *check_path(lua_State *L, int arg) {
  size_t n;
  const char *path = luaL_checklstring(L, arg, &n);
  if (strlen(path) != n) luaL_argerror(L, arg, "path contains a zero byte");
  return path;
}

/* ---- the module ---------------------------------------------------------- */

/* json.decode(text) -> value */
static int json_decode(lua_State *L) {
  size_t len;
  const char *text = luaL_checklstring(L, 1, &len);
  lua_settop(L, 1);
  fl_json_decode_lua(L, text, len, "json.decode", NULL);
  return 1;
}

/* json.encode(value [, {indent = n, sort_keys = true}]) -> text */
static int json_encode(lua_State *L) {
  luaL_checkany(L, 1);
  int indent = 0, sort_keys = 0;
  if (!lua_isnoneornil(L, 2)) {
    luaL_checktype(L, 2, LUA_TTABLE);
    static const char *const names[] = {"indent", "sort_keys", NULL};
    fl_opts o;
    fl_opts_begin(&o, L, 2, "json.encode", "option", names);
    for (int k; (k = fl_opts_next(&o)) >= 0;) {
      if (k == 0) {
        indent = fl_opt_integer(L, o.value, "json.encode", o.key, 0);
        if (indent > 16)
          return luaL_error(L, "json.encode: option 'indent' must be 0 to "
                               "16 spaces, got %d", indent);
      } else {
        if (!lua_isboolean(L, o.value))
          return luaL_error(L, "json.encode: option 'sort_keys' must be a "
                               "boolean, got %s", luaL_typename(L, o.value));
        sort_keys = lua_toboolean(L, o.value);
      }
    }
  }
  lua_settop(L, 1);
  fl_buf *b = push_buffer(L);
  fl_json_encode_lua_with(L, 1, b, "json.encode", indent, sort_keys);
  lua_pushlstring(L, b->data ? b->data : "", b->len);
  fl_buf_free(b);
  return 1;
}

/* json.read(path) -> value */
static int json_read(lua_State *L) {
  const char *path = check_path(L, 1);
  lua_settop(L, 1);
  fl_buf *b = push_buffer(L);
  size_t len;
  if (fl_read_file(path, &b->data, &len) != 0)
    return luaL_error(L, "json.read: cannot open '%s': %s", path,
                      strerror(errno));
  b->len = b->cap = len; /* fl_read_file ends it with a '\0' */
  fl_json_decode_lua(L, b->data, len, "json.read", path);
  return 1;
}

/* json.write(path, value): the text and a newline, written atomically. The
   value is encoded first, so one that cannot be leaves the file alone. */
static int json_write(lua_State *L) {
  const char *path = check_path(L, 1);
  luaL_checkany(L, 2);
  lua_settop(L, 2);
  fl_buf *b = push_buffer(L);
  fl_json_encode_lua(L, 2, b, "json.write");
  if (fl_buf_reserve(b, 1) != 0)
    return luaL_error(L, "json.write: not enough memory");
  b->data[b->len++] = '\n';
  char why[FL_FS_WHY_SIZE];
  if (fl_write_file_atomic_why(path, b->data, b->len, why, sizeof why) != 0)
    return luaL_error(L, "json.write: cannot write '%s': %s", path, why);
  fl_buf_free(b);
  return 0;
}

/* json.array([t]) -> t: marks t (or a new table) to encode as an array. */
static int json_array(lua_State *L) {
  if (lua_isnoneornil(L, 1)) {
    lua_settop(L, 0);
    lua_newtable(L);
  }
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 1);
  luaL_setmetatable(L, FL_JSON_ARRAY_MT);
  return 1;
}

int luaopen_flowlua_json(lua_State *L) {
  static const luaL_Reg funcs[] = {{"decode", json_decode},
                                   {"encode", json_encode},
                                   {"read", json_read},
                                   {"write", json_write},
                                   {"array", json_array},
                                   {"null", NULL},
                                   {"empty_array", NULL},
                                   {"array_mt", NULL},
                                   {NULL, NULL}};
  if (luaL_newmetatable(L, BUFFER_MT)) {
    lua_pushcfunction(L, buffer_close);
    lua_setfield(L, -2, "__close");
    lua_pushcfunction(L, buffer_close);
    lua_setfield(L, -2, "__gc");
  }
  lua_pop(L, 1);
  luaL_newlib(L, funcs);
  /* The same value as cjson.null, so the two compare equal. */
  lua_pushlightuserdata(L, NULL);
  lua_setfield(L, -2, "null");
  lua_pushlightuserdata(L, (void *)fl_json_empty_array());
  lua_setfield(L, -2, "empty_array");
  luaL_newmetatable(L, FL_JSON_ARRAY_MT);
  lua_setfield(L, -2, "array_mt");
  return 1;
}
