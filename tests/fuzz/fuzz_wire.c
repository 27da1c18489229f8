/*
 * fuzz_wire.c — the worker wire on hostile bytes: frames as a driver reads
 * them from a worker (or from a stored job or result), and values as the
 * worker's Lua state decodes them (core/wire.c, engine/value_wire.c).
 *
 * Input: one byte choosing the mode and the size of the chunks the reader
 * is fed, then the bytes.
 *  - mode 0, a value: the core's check and the Lua decoder agree on
 *    whether it is well formed (naming an offset inside the input when
 *    not); a decoded value encodes again, decodes to the same value
 *    (numbers by kind and bit, json.array_mt kept), and the JSON the
 *    history would write of it is the same length before and after (or
 *    refused both times: NaN).
 *  - mode 1, a stream of frames fed in chunks: each frame handed out is
 *    exactly its header's length, frames and the rest add up to the input,
 *    and a message that decodes encodes again to the very same bytes (the
 *    format has one spelling per message).
 */
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <math.h>

#include "engine.h"
#include "fuzz.h"
#include "lflowlua.h"
#include "value_json.h"
#include "value_wire.h"
#include "wire.h"

static lua_State *L;
static const void *array_mt;

static int marked(int idx) {
  if (!lua_getmetatable(L, idx)) return 0;
  int m = lua_topointer(L, -1) == array_mt;
  lua_pop(L, 1);
  return m;
}

/* Equal by value: number kinds apart, floats by bits, NaN equal to NaN,
   json.array_mt kept. */
static int same_value(int a, int b, int depth) {
  a = lua_absindex(L, a);
  b = lua_absindex(L, b);
  if (lua_type(L, a) != lua_type(L, b)) return 0;
  if (lua_type(L, a) == LUA_TNUMBER) {
    if (lua_isinteger(L, a) != lua_isinteger(L, b)) return 0;
    if (lua_isinteger(L, a)) return lua_tointeger(L, a) == lua_tointeger(L, b);
    double x = lua_tonumber(L, a), y = lua_tonumber(L, b);
    return memcmp(&x, &y, sizeof x) == 0;
  }
  if (lua_type(L, a) != LUA_TTABLE) return lua_rawequal(L, a, b);
  if (depth > FL_WIRE_DEPTH_MAX + 1) return 0;
  if (marked(a) != marked(b)) return 0;
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

/* "... at offset N" with N inside the input. */
static void check_placed(const char *msg, size_t size) {
  const char *at = msg ? strstr(msg, " at offset ") : NULL;
  if (msg && strstr(msg, "not enough memory")) return;
  unsigned long long off = 0;
  FUZZ_CHECK(at && sscanf(at, " at offset %llu", &off) == 1 && off <= size,
             "an error that does not place itself in %zu bytes: '%s'", size,
             msg ? msg : "(null)");
}

static void fuzz_value(const char *data, size_t size) {
  char err[FL_WIRE_ERR_MAX] = "";
  int checked = fl_wire_check_value(data, size, err);
  fl_buf why = FL_BUF_INIT;
  int decoded = fl_wire_decode_lua(L, data, size, &why);
  if (decoded != 0 && strstr(fl_buf_str(&why), "not enough memory")) goto done;
  FUZZ_CHECK(checked == decoded, "the check says %d (%s), the decoder %d (%s)", checked, err,
             decoded, fl_buf_str(&why));
  if (decoded != 0) {
    check_placed(err, size);
    check_placed(fl_buf_str(&why), size);
    goto done;
  }
  int value = lua_gettop(L);
  fl_buf out = FL_BUF_INIT;
  FUZZ_CHECK(fl_wire_encode_lua(L, value, "result", &out, &why) == 0,
             "a decoded value does not encode: %s", fl_buf_str(&why));
  FUZZ_CHECK(fl_wire_decode_lua(L, out.data, out.len, &why) == 0,
             "an encoded value does not decode: %s", fl_buf_str(&why));
  FUZZ_CHECK(same_value(value, -1, 0), "decode(encode(v)) differs from v\n  input: %s",
             fuzz_show(data, size));
  fl_buf before = FL_BUF_INIT, after = FL_BUF_INIT;
  int jb = fl_json_encode_value(L, value, &before, NULL);
  int ja = fl_json_encode_value(L, -1, &after, NULL);
  FUZZ_CHECK(jb == ja && (jb != 0 || before.len == after.len),
             "the history's JSON changed by crossing: %d %zu, then %d %zu\n  input: %s", jb,
             before.len, ja, after.len, fuzz_show(data, size));
  fl_buf_free(&before);
  fl_buf_free(&after);
  fl_buf_free(&out);
done:
  fl_buf_free(&why);
  lua_settop(L, 0);
}

/* Encodes the decoded message of f again: the same bytes, or a finding. */
static void check_reencodes(const fl_wire_frame *f) {
  char err[FL_WIRE_ERR_MAX] = "";
  fl_buf out = FL_BUF_INIT;
  int decoded = 0;
  switch (f->type) {
  case FL_WIRE_HELLO: {
    fl_wire_hello m;
    if ((decoded = fl_wire_get_hello(f, &m, err) == 0)) fl_wire_put_hello(&out, &m, err);
    break;
  }
  case FL_WIRE_JOB: {
    fl_wire_job m;
    if ((decoded = fl_wire_get_job(f, &m, err) == 0)) fl_wire_put_job(&out, &m, err);
    break;
  }
  case FL_WIRE_JOBS: {
    fl_wire_jobs_iter it;
    fl_wire_job m;
    fl_wire_batch batch;
    if (fl_wire_jobs_open(&it, f) != 0) {
      snprintf(err, sizeof err, "%s", it.in.err);
      break;
    }
    fl_wire_jobs_begin(&out, &batch);
    int rc;
    while ((rc = fl_wire_jobs_next(&it, &m)) == 1) fl_wire_jobs_add(&out, &batch, &m);
    if (rc != 0) {
      snprintf(err, sizeof err, "%s", it.in.err);
      break;
    }
    decoded = fl_wire_jobs_end(&out, &batch, err) == 0;
    break;
  }
  case FL_WIRE_CANCEL: {
    uint64_t id;
    if ((decoded = fl_wire_get_cancel(f, &id, err) == 0)) fl_wire_put_cancel(&out, id, err);
    break;
  }
  case FL_WIRE_RESULT: {
    fl_wire_result m;
    if ((decoded = fl_wire_get_result(f, &m, err) == 0)) fl_wire_put_result(&out, &m, err);
    break;
  }
  case FL_WIRE_LOG: {
    fl_wire_log m;
    if ((decoded = fl_wire_get_log(f, &m, err) == 0)) fl_wire_put_log(&out, &m, err);
    break;
  }
  case FL_WIRE_SECRET: {
    fl_wire_secret m;
    if ((decoded = fl_wire_get_secret(f, &m, err) == 0)) fl_wire_put_secret(&out, &m, err);
    break;
  }
  default:
    if ((decoded = fl_wire_get_bye(f, err) == 0)) fl_wire_put_bye(&out, err);
  }
  if (!decoded) check_placed(err, f->len);
  if (decoded) {
    FUZZ_CHECK(out.len == f->len + FL_WIRE_HEADER_SIZE &&
                   memcmp(out.data + FL_WIRE_HEADER_SIZE, f->payload, f->len) == 0,
               "a %s message encodes again to other bytes (%zu, was %zu)\n  payload: %s",
               fl_wire_type_name(f->type), out.len - FL_WIRE_HEADER_SIZE, f->len,
               fuzz_show(f->payload, f->len));
  }
  fl_buf_free(&out);
}

static void fuzz_frames(const char *data, size_t size, size_t chunk) {
  fl_wire_reader r;
  fl_wire_reader_init(&r);
  size_t framed = 0;
  int rc = 0;
  for (size_t at = 0; at < size && rc >= 0; at += chunk) {
    size_t n = size - at < chunk ? size - at : chunk;
    FUZZ_CHECK(fl_wire_reader_feed(&r, data + at, n) == 0, "feeding: %s", r.err);
    fl_wire_frame f;
    while ((rc = fl_wire_reader_next(&r, &f)) == 1) {
      size_t announced = (size_t)(unsigned char)f.payload[-4] |
                         (size_t)(unsigned char)f.payload[-3] << 8 |
                         (size_t)(unsigned char)f.payload[-2] << 16 |
                         (size_t)(unsigned char)f.payload[-1] << 24;
      FUZZ_CHECK(announced == f.len, "a frame of %zu bytes announced %zu", f.len, announced);
      FUZZ_CHECK(memcmp(f.payload, data + framed + FL_WIRE_HEADER_SIZE, f.len) == 0,
                 "a frame's payload is not the input's bytes at %zu", framed);
      framed += FL_WIRE_HEADER_SIZE + f.len;
      check_reencodes(&f);
    }
    if (rc < 0) FUZZ_CHECK(r.err[0] != '\0', "a refused frame without a message");
  }
  FUZZ_CHECK(framed <= size, "frames of %zu bytes out of %zu", framed, size);
  if (rc >= 0) {
    int eof = fl_wire_reader_at_eof(&r);
    FUZZ_CHECK((eof == 0) == (framed == size), "at end of file: %d with %zu of %zu framed (%s)",
               eof, framed, size, r.err);
  }
  fl_wire_reader_free(&r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (!L) {
    L = luaL_newstate();
    if (!L) abort();
    luaL_openlibs(L);
    luaL_requiref(L, "json", luaopen_flowlua_json, 0); /* json.array_mt */
    lua_pop(L, 1);
    luaL_getmetatable(L, FL_JSON_ARRAY_MT);
    array_mt = lua_topointer(L, -1);
    lua_pop(L, 1);
  }
  if (size == 0) return 0;
  unsigned mode = data[0];
  /* A copy of exactly the input's size, so that ASan sees any over-read. */
  char *bytes = malloc(size - 1 ? size - 1 : 1);
  if (!bytes) abort();
  memcpy(bytes, data + 1, size - 1);
  if (mode & 1)
    fuzz_frames(bytes, size - 1, (mode >> 1) + 1);
  else
    fuzz_value(bytes, size - 1);
  free(bytes);
  return 0;
}
