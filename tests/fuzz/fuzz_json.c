/*
 * fuzz_json.c — JSON text as the store reads results back: the decoder and
 * encoder of ljsonlib.c through fl_json_decode_value / fl_json_encode_value,
 * on one Lua state kept for the whole run.
 *
 * Input: the JSON text.
 *
 * Properties:
 *  - decoding either succeeds or fails with a message that places the
 *    error ("at offset N (line L, column C)", N within the text);
 *  - a decoded value encodes, unless it holds a number too large for a
 *    double (1e400 decodes as infinity, which JSON cannot spell);
 *  - decode(encode(v)) is the same value as v (numbers compared as Lua
 *    compares them), and after that first round encoding keeps the text's
 *    length (key order may differ, not content).
 */
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <math.h>

#include "fuzz.h"
#include "engine.h"
#include "lflowlua.h"

static lua_State *L;

/* Whether the values at a and b are equal: tables by content, numbers by
   value (an integral float re-reads as an integer). */
static int same_value(int a, int b, int depth) {
  a = lua_absindex(L, a);
  b = lua_absindex(L, b);
  if (lua_type(L, a) != lua_type(L, b)) return 0;
  if (lua_type(L, a) != LUA_TTABLE) return lua_rawequal(L, a, b);
  if (depth > 1100) return 0;
  luaL_checkstack(L, 8, "comparing");
  size_t n_a = 0, n_b = 0;
  lua_pushnil(L);
  while (lua_next(L, a)) {
    n_a++;
    lua_pushvalue(L, -2);
    lua_rawget(L, b);
    int same = same_value(-2, -1, depth + 1);
    lua_pop(L, 2);
    if (!same) {
      lua_pop(L, 1);
      return 0;
    }
  }
  lua_pushnil(L);
  while (lua_next(L, b)) {
    n_b++;
    lua_pop(L, 1);
  }
  return n_a == n_b;
}

/* Whether the value at idx holds a non-finite number anywhere. */
static int has_infinity(int idx, int depth) {
  idx = lua_absindex(L, idx);
  if (lua_type(L, idx) == LUA_TNUMBER)
    return !lua_isinteger(L, idx) && !isfinite(lua_tonumber(L, idx));
  if (lua_type(L, idx) != LUA_TTABLE || depth > 1100) return 0;
  luaL_checkstack(L, 4, "scanning");
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    if (has_infinity(-1, depth + 1)) {
      lua_pop(L, 2);
      return 1;
    }
    lua_pop(L, 1);
  }
  return 0;
}

static void check_decode_error(size_t len) {
  const char *msg = lua_tostring(L, -1);
  FUZZ_CHECK(msg != NULL, "decoding failed with a %s", luaL_typename(L, -1));
  const char *at = strstr(msg, " at offset ");
  unsigned long long off = 0, line = 0, col = 0;
  if (!strstr(msg, "not enough memory")) {
    FUZZ_CHECK(strncmp(msg, "json.decode: ", 13) == 0 && at &&
                   sscanf(at, " at offset %llu (line %llu, column %llu)", &off,
                          &line, &col) == 3,
               "an error that does not place itself: '%s'", msg);
    FUZZ_CHECK(off <= len && line >= 1 && col >= 1,
               "an error placed outside the text (%zu bytes): '%s'", len, msg);
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (!L) {
    L = luaL_newstate();
    if (!L) abort();
    luaL_openlibs(L);
    /* Registers json.array_mt, which the encoder looks up. */
    luaL_requiref(L, "json", luaopen_flowlua_json, 0);
    lua_pop(L, 1);
  }
  /* The decoder wants text[len] == '\0'; the copy has nothing past it. */
  char *text = malloc(size + 1);
  if (!text) abort();
  memcpy(text, data, size);
  text[size] = '\0';

  if (fl_json_decode_value(L, text, size) != 0) {
    check_decode_error(size);
    goto done;
  }
  int value = lua_gettop(L);
  fl_buf out = FL_BUF_INIT, why = FL_BUF_INIT;
  if (fl_json_encode_value(L, value, &out, &why) != 0) {
    FUZZ_CHECK(has_infinity(value, 0) && strstr(fl_buf_str(&why), "infinity"),
               "a decoded value does not encode: %s\n  text: %s",
               fl_buf_str(&why), fuzz_show(text, size));
    fl_buf_free(&out);
    fl_buf_free(&why);
    goto done;
  }
  FUZZ_CHECK(fl_json_decode_value(L, out.data, out.len) == 0,
             "encoded text does not decode: %s\n  encoded: %s",
             lua_tostring(L, -1), fuzz_show(out.data, out.len));
  FUZZ_CHECK(same_value(value, -1, 0),
             "decode(encode(v)) differs from v\n  text: %s",
             fuzz_show(text, size));
  /* The first round may turn 4.0 into 4 and -0.0 into 0 (both pinned by
     tests/flows/json_*.lua); from then on the text keeps its length. */
  fl_buf again = FL_BUF_INIT, third = FL_BUF_INIT;
  FUZZ_CHECK(fl_json_encode_value(L, -1, &again, NULL) == 0 &&
                 fl_json_decode_value(L, again.data, again.len) == 0 &&
                 fl_json_encode_value(L, -1, &third, NULL) == 0,
             "a re-decoded value does not encode and decode");
  FUZZ_CHECK(third.len == again.len, "encoded %zu bytes, then %zu",
             again.len, third.len);
  fl_buf_free(&again);
  fl_buf_free(&third);
  fl_buf_free(&out);
  fl_buf_free(&why);
done:
  lua_settop(L, 0);
  free(text);
  return 0;
}
