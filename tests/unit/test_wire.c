/*
 * test_wire.c — the worker wire (core/wire.c, engine/value_wire.c): values
 * that cross unchanged, values refused with their path, frames read whole
 * however the bytes arrive, hostile bytes refused with their offset, and
 * batches of jobs.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include "check.h"
#include "engine.h"
#include "lflowlua.h"
#include "value_wire.h"
#include "wire.h"

static lua_State *L;

/* same(a, b): equal by value, number kinds apart, every float bit that
   Lua shows (NaN equals NaN, -0.0 differs from 0.0), json.array_mt kept. */
static const char *const same_lua =
    "local json = ...\n"
    "local function same(a, b, depth)\n"
    "  if type(a) ~= type(b) then return false end\n"
    "  if type(a) == 'number' then\n"
    "    if math.type(a) ~= math.type(b) then return false end\n"
    "    if a ~= a then return b ~= b end\n"
    "    return a == b and (a ~= 0 or 1/a == 1/b)\n"
    "  end\n"
    "  if type(a) ~= 'table' then return rawequal(a, b) end\n"
    "  if (getmetatable(a) == json.array_mt) ~= (getmetatable(b) == json.array_mt) then\n"
    "    return false end\n"
    "  for k, v in next, a do if not same(v, rawget(b, k)) then return false end end\n"
    "  for k in next, b do if rawget(a, k) == nil then return false end end\n"
    "  return true\n"
    "end\n"
    "return same\n";

static void open_lua(void) {
  L = luaL_newstate();
  luaL_openlibs(L);
  luaL_requiref(L, "json", luaopen_flowlua_json, 1);
  if (luaL_loadstring(L, same_lua) != LUA_OK) abort();
  lua_pushvalue(L, -2);
  lua_call(L, 1, 1);
  lua_setglobal(L, "same");
  lua_pop(L, 1);
}

/* Runs code and leaves its one result on the stack. */
static void eval(const char *code) {
  if (luaL_loadstring(L, code) != LUA_OK || lua_pcall(L, 0, 1, 0) != LUA_OK) {
    fprintf(stderr, "lua: %s\n", lua_tostring(L, -1));
    abort();
  }
}

static int same_values(int a, int b) {
  a = lua_absindex(L, a);
  b = lua_absindex(L, b);
  lua_getglobal(L, "same");
  lua_pushvalue(L, a);
  lua_pushvalue(L, b);
  lua_call(L, 2, 1);
  int r = lua_toboolean(L, -1);
  lua_pop(L, 1);
  return r;
}

/* Encodes the result of code, decodes it, compares. */
static void check_round_trip(const char *code) {
  int top = lua_gettop(L);
  eval(code);
  fl_buf out = FL_BUF_INIT, why = FL_BUF_INIT;
  int rc = fl_wire_encode_lua(L, -1, "result", &out, &why);
  CHECK_EQ_STR(rc == 0 ? "" : fl_buf_str(&why), "");
  char err[FL_WIRE_ERR_MAX] = "";
  CHECK_EQ_INT(fl_wire_check_value(out.data, out.len, err), 0);
  CHECK_EQ_STR(err, "");
  rc = fl_wire_decode_lua(L, out.data, out.len, &why);
  CHECK_EQ_STR(rc == 0 ? "" : fl_buf_str(&why), "");
  if (rc == 0 && !same_values(-2, -1)) {
    fprintf(stderr, "not the same after a round trip: %s\n", code);
    CHECK(0);
  }
  lua_settop(L, top);
  fl_buf_free(&out);
  fl_buf_free(&why);
}

static void test_values_round_trip(void) {
  check_round_trip("return 2^53 + 1");
  check_round_trip("return (1 << 53) + 1");
  check_round_trip("return math.mininteger");
  check_round_trip("return math.maxinteger");
  check_round_trip("return -0.0");
  check_round_trip("return 0/0");
  check_round_trip("return math.huge");
  check_round_trip("return -math.huge");
  check_round_trip("return 0.1");
  check_round_trip("return 4.0");
  check_round_trip("return nil");
  check_round_trip("return true");
  check_round_trip("return false");
  check_round_trip("return ''");
  check_round_trip("return 'a\\0b\\255\\254\\192\\128 end'");
  check_round_trip("return string.rep('x', 100000)");
  check_round_trip("return json.null");
  check_round_trip("return json.empty_array");
  check_round_trip("return {}");
  check_round_trip("return setmetatable({}, json.array_mt)");
  check_round_trip("return setmetatable({1, 2, x = 3}, json.array_mt)");
  check_round_trip("return {1, nil, 3, [10] = 10, [-3] = 'neg', [0] = 0}");
  check_round_trip("return {1, 2, x = 'y', [1.5] = true, [2^63] = 'big', ['odd key'] = {}}");
  check_round_trip("return {a = {b = {c = {d = {json.null, json.empty_array, -0.0}}}}}");
  check_round_trip("local t = {} for i = 1, 1000 do t[i] = {i, tostring(i), i / 7} end return t");
  check_round_trip("local t = {} for i = 1, 300 do t['k' .. i] = i end return t");
  check_round_trip("local t = {1} for i = 1, 999 do t = {t} end return t");
  /* a table met twice, not a cycle: sent twice, by value */
  check_round_trip("local shared = {1, 2} return {shared, shared, k = shared}");
}

/* Doubles keep every bit, NaN's payload included. */
static void test_double_bits(void) {
  const double values[] = {-0.0, 0.0, 5e-324, 1.7976931348623157e308, -INFINITY};
  for (size_t k = 0; k < sizeof values / sizeof values[0]; k++) {
    fl_buf out = FL_BUF_INIT;
    fl_wire_put_double(&out, values[k]);
    fl_wire_in in;
    fl_wire_item it;
    fl_wire_in_init(&in, out.data, out.len);
    CHECK_EQ_INT(fl_wire_get_item(&in, &it), 0);
    CHECK_EQ_INT(it.tag, FL_WIRE_DOUBLE);
    CHECK(memcmp(&it.d, &values[k], sizeof it.d) == 0);
    fl_buf_free(&out);
  }
  uint64_t nan_bits = UINT64_C(0x7ff8000000abcdef);
  double nan;
  memcpy(&nan, &nan_bits, sizeof nan);
  fl_buf out = FL_BUF_INIT;
  fl_wire_put_double(&out, nan);
  CHECK_EQ_INT(out.len, 9);
  CHECK_EQ_INT((unsigned char)out.data[1], 0xef); /* little-endian */
  lua_pushnumber(L, nan);
  fl_buf again = FL_BUF_INIT, why = FL_BUF_INIT;
  CHECK_EQ_INT(fl_wire_encode_lua(L, -1, "result", &again, &why), 0);
  CHECK_EQ_INT(fl_wire_decode_lua(L, again.data, again.len, &why), 0);
  double back = lua_tonumber(L, -1);
  CHECK(memcmp(&back, &nan, sizeof back) == 0);
  CHECK(signbit(-0.0) && !signbit(0.0));
  lua_settop(L, 0);
  fl_buf_free(&out);
  fl_buf_free(&again);
  fl_buf_free(&why);
}

static void test_integers_compact(void) {
  const int64_t values[] = {0, 1, -1, 63, -64, 64, INT64_MAX, INT64_MIN, (INT64_C(1) << 53) + 1};
  const size_t sizes[] = {2, 2, 2, 2, 2, 3, 11, 11, 9};
  for (size_t k = 0; k < sizeof values / sizeof values[0]; k++) {
    fl_buf out = FL_BUF_INIT;
    fl_wire_put_int(&out, values[k]);
    CHECK_EQ_INT(out.len, sizes[k]);
    fl_wire_in in;
    fl_wire_item it;
    fl_wire_in_init(&in, out.data, out.len);
    CHECK_EQ_INT(fl_wire_get_item(&in, &it), 0);
    CHECK_EQ_INT(it.i, values[k]);
    CHECK(in.p == in.end);
    fl_buf_free(&out);
  }
}

/* The JSON the history would write is the same on both sides. */
static void test_json_after_crossing(void) {
  eval("return {setmetatable({}, json.array_mt), {}, json.empty_array, json.null, {1, 2, 3},"
       " setmetatable({1, nil, 3}, json.array_mt)}");
  fl_buf out = FL_BUF_INIT, why = FL_BUF_INIT, before = FL_BUF_INIT, after = FL_BUF_INIT;
  CHECK_EQ_INT(fl_wire_encode_lua(L, -1, "result", &out, &why), 0);
  CHECK_EQ_INT(fl_wire_decode_lua(L, out.data, out.len, &why), 0);
  CHECK_EQ_INT(fl_json_encode_value(L, -2, &before, NULL), 0);
  CHECK_EQ_INT(fl_json_encode_value(L, -1, &after, NULL), 0);
  CHECK_EQ_STR(fl_buf_str(&before), "[[],{},[],null,[1,2,3],[1,null,3]]");
  CHECK_EQ_STR(fl_buf_str(&after), fl_buf_str(&before));
  lua_settop(L, 0);
  fl_buf_free(&out);
  fl_buf_free(&why);
  fl_buf_free(&before);
  fl_buf_free(&after);
}

/* Encodes the result of code under label; returns why (static copy). */
static const char *refusal(const char *code, const char *label) {
  static char msg[512];
  eval(code);
  fl_buf out = FL_BUF_INIT, why = FL_BUF_INIT;
  fl_buf_adds(&out, "kept");
  int top = lua_gettop(L);
  int rc = fl_wire_encode_lua(L, -1, label, &out, &why);
  CHECK_EQ_INT(rc, -1);
  CHECK_EQ_STR(fl_buf_str(&out), "kept"); /* nothing left behind */
  CHECK_EQ_INT(lua_gettop(L), top);
  snprintf(msg, sizeof msg, "%s", fl_buf_str(&why));
  lua_settop(L, 0);
  fl_buf_free(&out);
  fl_buf_free(&why);
  return msg;
}

static void test_refused_with_path(void) {
  CHECK_EQ_STR(refusal("return {rows = {{}, {}, {f = print}}}", "argument 2"),
               "argument 2 at 'rows[3].f' is a function");
  CHECK_EQ_STR(refusal("return print", "result"), "result is a function");
  CHECK_EQ_STR(refusal("local t = {} t.self = t return t", "result"),
               "result at 'self' is a table that contains itself (a cycle)");
  CHECK_EQ_STR(refusal("local t = {a = {}} t.a.b = {t} return t", "result"),
               "result at 'a.b[1]' is a table that contains itself (a cycle)");
  CHECK_EQ_STR(refusal("return {x = {io.stdout}}", "result"), "result at 'x[1]' is a userdata");
  CHECK_EQ_STR(refusal("return {co = coroutine.create(print)}", "result"),
               "result at 'co' is a thread (a coroutine)");
  CHECK_EQ_STR(refusal("return {t = {['odd key'] = {print}}}", "result"),
               "result at 't[\"odd key\"][1]' is a function");
  CHECK_EQ_STR(refusal("return {[7] = {[2.5] = print}}", "result"),
               "result at '[7][2.5]' is a function");
  CHECK_EQ_STR(refusal("return {list = {[true] = 1}}", "result"),
               "result at 'list' has a boolean key (table keys must be strings or numbers)");
  CHECK_EQ_STR(refusal("return {[{}] = 1}", "result"),
               "result has a table key (table keys must be strings or numbers)");
  const char *deep = refusal("local t = {} for i = 1, 1000 do t = {t} end return t", "result");
  CHECK_CONTAINS(deep, "nests tables deeper than 1000");
  CHECK_CONTAINS(deep, "result at '...[1][1]");
  CHECK_EQ_STR(refusal("return {k = debug.upvalueid(function() return deep end, 1)}", "r"),
               "r at 'k' is a light userdata");
}

static void test_arguments(void) {
  eval("return {rows = {{}, {}, {f = print}}}");
  lua_pushinteger(L, 1);
  lua_insert(L, -2);
  fl_buf out = FL_BUF_INIT, why = FL_BUF_INIT;
  CHECK_EQ_INT(fl_wire_encode_lua_args(L, 1, 2, &out, &why), -1);
  CHECK_EQ_STR(fl_buf_str(&why), "argument 2 at 'rows[3].f' is a function");
  CHECK_EQ_INT(out.len, 0);
  lua_settop(L, 0);
  fl_buf_reset(&why);

  lua_pushnil(L);
  lua_pushinteger(L, 7);
  lua_pushnil(L);
  eval("return {1, x = 'y'}");
  CHECK_EQ_INT(fl_wire_encode_lua_args(L, 1, 4, &out, &why), 0);
  int n = -1;
  CHECK_EQ_INT(fl_wire_decode_lua_args(L, out.data, out.len, &n, &why), 0);
  CHECK_EQ_INT(n, 4);
  CHECK_EQ_INT(lua_gettop(L), 8);
  CHECK(lua_isnil(L, 5) && lua_isnil(L, 7));
  CHECK_EQ_INT(lua_tointeger(L, 6), 7);
  CHECK(same_values(4, 8));
  lua_settop(L, 0);

  fl_buf_reset(&out);
  CHECK_EQ_INT(fl_wire_encode_lua_args(L, 1, 0, &out, &why), 0);
  CHECK_EQ_INT(fl_wire_decode_lua_args(L, out.data, out.len, &n, &why), 0);
  CHECK_EQ_INT(n, 0);
  CHECK_EQ_INT(lua_gettop(L), 0);
  /* a value that is not a list of arguments */
  fl_buf_reset(&out);
  fl_wire_put_int(&out, 5);
  CHECK_EQ_INT(fl_wire_decode_lua_args(L, out.data, out.len, &n, &why), -1);
  CHECK_CONTAINS(fl_buf_str(&why), "not a list of arguments");
  CHECK_EQ_INT(lua_gettop(L), 0);
  fl_buf_free(&out);
  fl_buf_free(&why);
}

/* Decodes hostile bytes both ways (core check and Lua), expecting an error
   that contains `want`. */
static void check_hostile(const char *bytes, size_t len, const char *want) {
  char err[FL_WIRE_ERR_MAX] = "";
  CHECK_EQ_INT(fl_wire_check_value(bytes, len, err), -1);
  CHECK_CONTAINS(err, want);
  CHECK_CONTAINS(err, "at offset ");
  fl_buf why = FL_BUF_INIT;
  int top = lua_gettop(L);
  CHECK_EQ_INT(fl_wire_decode_lua(L, bytes, len, &why), -1);
  CHECK_EQ_INT(lua_gettop(L), top);
  CHECK_CONTAINS(fl_buf_str(&why), want);
  fl_buf_free(&why);
}

static void test_hostile_values(void) {
  check_hostile("", 0, "a value expected, the input ended at offset 0");
  check_hostile("\x06\xff\xff\xff\xff\x0f\x00", 7,
                "a table of 4294967295 values and 0 pairs with 0 bytes left at offset 0");
  check_hostile("\x06\x00\x80\x80\x80\x80\x10\x01", 8,
                "a table of 0 values and 4294967296 pairs with 1 bytes left");
  check_hostile("\x05\xff\xff\xff\xff\xff\xff\xff\xff\x7f", 10, "a string of");
  check_hostile("\x05\x05" "abc", 5, "a string of 5 bytes with 3 left at offset 0");
  check_hostile("\x04\x00\x00", 3, "a float cut short (2 of 8 bytes) at offset 0");
  check_hostile("\x03\x80\x00", 3, "needless zero byte at offset 1");
  check_hostile("\x03\xff\xff\xff\xff\xff\xff\xff\xff\xff\x02", 11, "longer than 64 bits");
  check_hostile("\x03\x80", 2, "cut short by the end of the input");
  check_hostile("\x2a", 1, "unknown value tag 0x2a at offset 0");
  check_hostile("\x06\x00\x01\x04\x00\x00\x00\x00\x00\x00\xf8\x7f\x02", 13,
                "a table key that is NaN (keys are strings or numbers) at offset 3");
  check_hostile("\x06\x00\x01\x02\x02", 5, "a table key that is a boolean");
  check_hostile("\x06\x00\x01\x08\x02", 5, "a table key that is json.null");
  check_hostile("\x00\x00", 2, "1 bytes after the value at offset 1");
  /* 10,000 tables deep: refused at the 1001st, no recursion past it */
  size_t deep = 10000;
  char *bytes = malloc(deep * 3 + 1);
  for (size_t k = 0; k < deep; k++) memcpy(bytes + 3 * k, "\x06\x01\x00", 3);
  bytes[deep * 3] = 0;
  check_hostile(bytes, deep * 3 + 1, "tables nested deeper than 1000 at offset 3000");
  free(bytes);
}

/* ---- messages and frames ------------------------------------------------- */

static fl_wire_bytes view(const char *s) { return (fl_wire_bytes){s, strlen(s)}; }

static int view_is(fl_wire_bytes b, const char *s) {
  return b.n == strlen(s) && memcmp(b.p, s, b.n) == 0;
}

static fl_wire_job sample_job(uint64_t id, fl_buf *args) {
  fl_wire_job j = {0};
  j.job_id = id;
  j.run_id = view("run-0001");
  j.task_key = view("parse[3]");
  j.task_name = view("parse");
  j.map_index = 3;
  j.attempt = 2;
  j.timeout_ms = 1500;
  j.memory_limit = (uint64_t)64 << 20;
  j.args = (fl_wire_bytes){args->data, args->len};
  j.params = (fl_wire_bytes){"\x06\x00\x00", 3};
  j.flow = view("etl");
  j.scheduled_at = 1764500000.123456;
  j.started_at = -0.0; /* every bit */
  return j;
}

/* One of each message, in one buffer. */
static void put_every_message(fl_buf *out, fl_buf *args) {
  char err[FL_WIRE_ERR_MAX];
  fl_wire_hello h = {FL_WIRE_VERSION, 4242, view("ab12"), view("flowlua 0.6.0, Lua 5.4")};
  CHECK_EQ_INT(fl_wire_put_hello(out, &h, err), 0);
  fl_wire_job j = sample_job(7, args);
  CHECK_EQ_INT(fl_wire_put_job(out, &j, err), 0);
  fl_wire_batch batch;
  fl_wire_jobs_begin(out, &batch);
  for (uint64_t k = 0; k < 3; k++) {
    j.job_id = 100 + k;
    fl_wire_jobs_add(out, &batch, &j);
  }
  CHECK_EQ_INT(fl_wire_jobs_end(out, &batch, err), 0);
  CHECK_EQ_INT(fl_wire_put_cancel(out, 7, err), 0);
  fl_wire_log lg = {7, 2, view("line\0with NUL")};
  lg.text.n = 13;
  CHECK_EQ_INT(fl_wire_put_log(out, &lg, err), 0);
  fl_wire_secret sc = {7, view("hunter2")};
  CHECK_EQ_INT(fl_wire_put_secret(out, &sc, err), 0);
  fl_wire_result r = {7, FL_WIRE_FAILED, {"", 0}, view("boom"), view("stack traceback:\n\t[C]: in ?")};
  CHECK_EQ_INT(fl_wire_put_result(out, &r, err), 0);
  fl_wire_result ok = {8, FL_WIRE_SUCCESS, {args->data, args->len}, {"", 0}, {"", 0}};
  CHECK_EQ_INT(fl_wire_put_result(out, &ok, err), 0);
  CHECK_EQ_INT(fl_wire_put_bye(out, err), 0);
}

/* Checks the frames of put_every_message, in order. */
static void check_every_message(const fl_wire_frame *f, int n, const fl_buf *args) {
  static const int types[] = {FL_WIRE_HELLO, FL_WIRE_JOB, FL_WIRE_JOBS, FL_WIRE_CANCEL,
                              FL_WIRE_LOG,   FL_WIRE_SECRET, FL_WIRE_RESULT,
                              FL_WIRE_RESULT, FL_WIRE_BYE};
  CHECK_EQ_INT(n, 9);
  if (n != 9) return;
  for (int k = 0; k < n; k++) CHECK_EQ_STR(fl_wire_type_name(f[k].type), fl_wire_type_name(types[k]));
  char err[FL_WIRE_ERR_MAX] = "";
  fl_wire_hello h;
  CHECK_EQ_INT(fl_wire_get_hello(&f[0], &h, err), 0);
  CHECK(h.version == FL_WIRE_VERSION && h.pid == 4242 && view_is(h.script_sha256, "ab12") &&
        view_is(h.runtime, "flowlua 0.6.0, Lua 5.4"));
  fl_wire_job j;
  CHECK_EQ_INT(fl_wire_get_job(&f[1], &j, err), 0);
  CHECK(j.job_id == 7 && view_is(j.run_id, "run-0001") && view_is(j.task_key, "parse[3]") &&
        view_is(j.task_name, "parse") && j.map_index == 3 && j.attempt == 2 &&
        j.timeout_ms == 1500 && j.memory_limit == (uint64_t)64 << 20 &&
        view_is(j.flow, "etl") && j.scheduled_at == 1764500000.123456 &&
        j.started_at == 0 && signbit(j.started_at));
  CHECK(j.args.n == args->len && memcmp(j.args.p, args->data, args->len) == 0);
  CHECK(j.params.n == 3);
  fl_wire_jobs_iter it;
  CHECK_EQ_INT(fl_wire_jobs_open(&it, &f[2]), 0);
  uint64_t want = 100;
  while (fl_wire_jobs_next(&it, &j) == 1) CHECK_EQ_INT(j.job_id, want++);
  CHECK_EQ_INT(want, 103);
  uint64_t id = 0;
  CHECK_EQ_INT(fl_wire_get_cancel(&f[3], &id, err), 0);
  CHECK_EQ_INT(id, 7);
  fl_wire_log lg;
  CHECK_EQ_INT(fl_wire_get_log(&f[4], &lg, err), 0);
  CHECK(lg.job_id == 7 && lg.level == 2 && lg.text.n == 13 && memcmp(lg.text.p, "line\0with NUL", 13) == 0);
  fl_wire_secret sc;
  CHECK_EQ_INT(fl_wire_get_secret(&f[5], &sc, err), 0);
  CHECK(sc.job_id == 7 && view_is(sc.secret, "hunter2"));
  fl_wire_result r;
  CHECK_EQ_INT(fl_wire_get_result(&f[6], &r, err), 0);
  CHECK(r.job_id == 7 && r.outcome == FL_WIRE_FAILED && view_is(r.message, "boom") &&
        view_is(r.traceback, "stack traceback:\n\t[C]: in ?") && r.value.n == 0);
  CHECK_EQ_INT(fl_wire_get_result(&f[7], &r, err), 0);
  CHECK(r.job_id == 8 && r.outcome == FL_WIRE_SUCCESS && r.value.n == args->len);
  CHECK_EQ_INT(fl_wire_get_bye(&f[8], err), 0);
  CHECK_EQ_INT(fl_wire_get_job(&f[0], &j, err), -1);
  CHECK_EQ_STR(err, "a HELLO frame where a JOB was expected");
}

static void encoded_args(fl_buf *args) {
  eval("return {'a', 1, {x = 2.5}}");
  fl_buf why = FL_BUF_INIT;
  CHECK_EQ_INT(fl_wire_encode_lua_args(L, -1, 1, args, &why), 0);
  lua_settop(L, 0);
  fl_buf_free(&why);
}

static void test_reader_byte_by_byte_and_whole(void) {
  fl_buf out = FL_BUF_INIT, args = FL_BUF_INIT;
  encoded_args(&args);
  put_every_message(&out, &args);
  for (int whole = 0; whole <= 1; whole++) {
    fl_wire_reader r;
    fl_wire_reader_init(&r);
    /* Frames stay valid until the next feed: keep copies of them. */
    fl_buf copies[9];
    fl_wire_frame f[9];
    int n = 0;
    size_t step = whole ? out.len : 1;
    for (size_t at = 0; at < out.len; at += step) {
      CHECK_EQ_INT(fl_wire_reader_feed(&r, out.data + at, step), 0);
      fl_wire_frame got;
      int rc;
      while ((rc = fl_wire_reader_next(&r, &got)) == 1 && n < 9) {
        copies[n] = (fl_buf)FL_BUF_INIT;
        fl_buf_add(&copies[n], got.payload, got.len);
        f[n] = got;
        f[n].payload = copies[n].data;
        n++;
      }
      CHECK(rc == 0 || rc == 1);
    }
    CHECK_EQ_INT(fl_wire_reader_at_eof(&r), 0);
    check_every_message(f, n, &args);
    for (int k = 0; k < n; k++) fl_buf_free(&copies[k]);
    fl_wire_reader_free(&r);
  }
  fl_buf_free(&out);
  fl_buf_free(&args);
}

static void test_reader_refusals(void) {
  fl_wire_reader r;
  fl_wire_frame f;
  /* a header announcing more than the limit: refused at once */
  fl_wire_reader_init(&r);
  const unsigned char big[6] = {FL_WIRE_MAGIC, FL_WIRE_RESULT, 0x00, 0x00, 0x10, 0x11};
  fl_wire_reader_feed(&r, big, sizeof big);
  CHECK_EQ_INT(fl_wire_reader_next(&r, &f), -1);
  CHECK_EQ_STR(r.err, "a RESULT frame of 286261248 bytes is over the limit of 269484032");
  CHECK_EQ_INT(fl_wire_reader_next(&r, &f), -1); /* and the stream stays refused */
  fl_wire_reader_free(&r);
  /* a bad magic */
  fl_wire_reader_init(&r);
  fl_wire_reader_feed(&r, "GET / HTTP/1.1\r\n", 16);
  CHECK_EQ_INT(fl_wire_reader_next(&r, &f), -1);
  CHECK_EQ_STR(r.err, "not a flowlua worker frame: first byte 0x47, expected 0xf1 (wire version 1)");
  fl_wire_reader_free(&r);
  /* an unknown type */
  fl_wire_reader_init(&r);
  fl_wire_reader_feed(&r, "\xf1\x63\0\0\0\0", 6);
  CHECK_EQ_INT(fl_wire_reader_next(&r, &f), -1);
  CHECK_EQ_STR(r.err, "unknown message type 99");
  fl_wire_reader_free(&r);
  /* end of file inside a frame, and inside a header */
  fl_buf out = FL_BUF_INIT;
  char err[FL_WIRE_ERR_MAX];
  fl_wire_log lg = {1, 3, view("a log line of some length")};
  fl_wire_put_log(&out, &lg, err);
  fl_wire_reader_init(&r);
  fl_wire_reader_feed(&r, out.data, 10);
  CHECK_EQ_INT(fl_wire_reader_next(&r, &f), 0);
  CHECK_EQ_INT(fl_wire_reader_at_eof(&r), -1);
  CHECK_EQ_STR(r.err, "end of file inside a LOG frame: 10 of 34 bytes");
  fl_wire_reader_free(&r);
  fl_wire_reader_init(&r);
  fl_wire_reader_feed(&r, out.data, 4);
  CHECK_EQ_INT(fl_wire_reader_at_eof(&r), -1);
  CHECK_EQ_STR(r.err, "end of file inside a frame's header: 4 of 6 bytes");
  fl_wire_reader_free(&r);
  /* a stored frame: exactly one, its length true */
  fl_wire_frame one;
  CHECK_EQ_INT(fl_wire_frame_parse(out.data, out.len, &one, err), 0);
  CHECK_EQ_INT(one.type, FL_WIRE_LOG);
  CHECK_EQ_INT(fl_wire_frame_parse(out.data, out.len - 1, &one, err), -1);
  CHECK_EQ_STR(err, "a LOG frame announcing 28 payload bytes holds 27");
  /* a payload with a field too many, or cut short */
  fl_wire_frame bad = {FL_WIRE_CANCEL, "\x07\x00", 2};
  uint64_t id;
  CHECK_EQ_INT(fl_wire_get_cancel(&bad, &id, err), -1);
  CHECK_EQ_STR(err, "a broken CANCEL message: 1 bytes after the last field at offset 1");
  fl_wire_frame cut = {FL_WIRE_RESULT, "\x07\x05", 2};
  fl_wire_result res;
  CHECK_EQ_INT(fl_wire_get_result(&cut, &res, err), -1);
  CHECK_EQ_STR(err, "a broken RESULT message: unknown outcome 5 at offset 1");
  fl_wire_frame jobs = {FL_WIRE_JOBS, "\xff\xff\x00\x00\x01", 5};
  fl_wire_jobs_iter it;
  CHECK_EQ_INT(fl_wire_jobs_open(&it, &jobs), -1);
  CHECK_CONTAINS(it.in.err, "a JOBS message of 65535 jobs in 5 bytes");
  fl_buf_free(&out);
}

static void set_nonblocking(int fd) { fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK); }

/* Frames through a socketpair and a pipe, both non-blocking: the writer
   stops at EAGAIN and resumes, the reader gets every frame whole. */
static void pass_through(int wfd, int rfd) {
  fl_wire_writer w;
  fl_wire_writer_init(&w);
  fl_wire_reader r;
  fl_wire_reader_init(&r);
  fl_buf big = FL_BUF_INIT;
  for (int k = 0; k < (1 << 20); k++) fl_buf_addc(&big, (char)(k * 7));
  char err[FL_WIRE_ERR_MAX];
  fl_wire_result res = {1, FL_WIRE_SUCCESS, {big.data, big.len}, {"", 0}, {"", 0}};
  for (int k = 0; k < 4; k++) {
    res.job_id = (uint64_t)k;
    CHECK_EQ_INT(fl_wire_put_result(&w.out, &res, err), 0);
  }
  int got = 0, stalls = 0, rounds = 0;
  while (got < 4 && rounds++ < 100000) {
    int rc = fl_wire_writer_flush(&w, wfd);
    CHECK(rc >= 0);
    if (rc == 0) stalls++;
    CHECK(fl_wire_reader_fill(&r, rfd) == 1);
    fl_wire_frame f;
    while (fl_wire_reader_next(&r, &f) == 1) {
      fl_wire_result back;
      CHECK_EQ_INT(fl_wire_get_result(&f, &back, err), 0);
      CHECK_EQ_INT(back.job_id, got);
      CHECK(back.value.n == big.len && memcmp(back.value.p, big.data, big.len) == 0);
      got++;
    }
  }
  CHECK_EQ_INT(got, 4);
  CHECK(stalls > 0); /* 4 MiB does not fit a pipe or socket buffer at once */
  CHECK_EQ_INT(fl_wire_writer_pending(&w), 0);
  /* the peer gone: an error, not a signal; and EOF between frames */
  close(rfd);
  CHECK_EQ_INT(fl_wire_put_bye(&w.out, err), 0);
  CHECK_EQ_INT(fl_wire_writer_flush(&w, wfd), -1);
  CHECK_CONTAINS(w.err, "the other end has closed it (EPIPE)");
  close(wfd);
  fl_buf_free(&big);
  fl_wire_writer_free(&w);
  fl_wire_reader_free(&r);
}

static void test_socketpair_and_pipe(void) {
  int sv[2];
  CHECK_EQ_INT(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  set_nonblocking(sv[0]);
  set_nonblocking(sv[1]);
  pass_through(sv[0], sv[1]);
  int p[2];
  CHECK_EQ_INT(pipe(p), 0);
  set_nonblocking(p[0]);
  set_nonblocking(p[1]);
  pass_through(p[1], p[0]); /* SIGPIPE is ignored in main() */
  /* end of file: 0 from fill, and at_eof says it fell between frames */
  CHECK_EQ_INT(pipe(p), 0);
  close(p[1]);
  fl_wire_reader r;
  fl_wire_reader_init(&r);
  CHECK_EQ_INT(fl_wire_reader_fill(&r, p[0]), 0);
  CHECK_EQ_INT(fl_wire_reader_at_eof(&r), 0);
  close(p[0]);
  fl_wire_reader_free(&r);
}

static void test_jobs_batch_of_10000(void) {
  fl_buf out = FL_BUF_INIT, args = FL_BUF_INIT;
  encoded_args(&args);
  char err[FL_WIRE_ERR_MAX];
  fl_wire_batch batch;
  fl_wire_jobs_begin(&out, &batch);
  fl_wire_job j = sample_job(0, &args);
  char key[32];
  for (int k = 0; k < 10000; k++) {
    j.job_id = (uint64_t)k;
    j.map_index = k + 1;
    snprintf(key, sizeof key, "parse[%d]", k + 1);
    j.task_key = view(key);
    fl_wire_jobs_add(&out, &batch, &j);
  }
  CHECK_EQ_INT(fl_wire_jobs_end(&out, &batch, err), 0);
  fl_wire_frame f;
  CHECK_EQ_INT(fl_wire_frame_parse(out.data, out.len, &f, err), 0);
  fl_wire_jobs_iter it;
  CHECK_EQ_INT(fl_wire_jobs_open(&it, &f), 0);
  int n = 0, wrong = 0, rc;
  fl_buf why = FL_BUF_INIT;
  while ((rc = fl_wire_jobs_next(&it, &j)) == 1) {
    snprintf(key, sizeof key, "parse[%d]", n + 1);
    if (j.job_id != (uint64_t)n || j.map_index != n + 1 || !view_is(j.task_key, key) ||
        j.args.n != args.len || memcmp(j.args.p, args.data, args.len) != 0)
      wrong++;
    n++;
  }
  CHECK_EQ_INT(rc, 0);
  CHECK_EQ_INT(n, 10000);
  CHECK_EQ_INT(wrong, 0);
  /* the last job's arguments decode in Lua */
  int nargs;
  CHECK_EQ_INT(fl_wire_decode_lua_args(L, j.args.p, j.args.n, &nargs, &why), 0);
  CHECK_EQ_INT(nargs, 1);
  lua_settop(L, 0);
  /* a batch without a job is refused, and leaves nothing */
  fl_buf_reset(&out);
  fl_wire_jobs_begin(&out, &batch);
  CHECK_EQ_INT(fl_wire_jobs_end(&out, &batch, err), -1);
  CHECK_EQ_INT(out.len, 0);
  fl_buf_free(&out);
  fl_buf_free(&args);
  fl_buf_free(&why);
}

/* A big table and long job moves its elements to make room for its counts. */
static void test_big_counts_patched(void) {
  check_round_trip("local t = {} for i = 1, 200000 do t[i] = i end"
                   " for i = 1, 20000 do t['k' .. i] = -i end return {t, 'after'}");
  fl_buf out = FL_BUF_INIT, big = FL_BUF_INIT;
  for (int k = 0; k < 70000; k++) fl_buf_addc(&big, 'x');
  char err[FL_WIRE_ERR_MAX];
  fl_wire_batch batch;
  fl_wire_jobs_begin(&out, &batch);
  fl_wire_job j = sample_job(1, &big);
  fl_wire_jobs_add(&out, &batch, &j);
  j.job_id = 2;
  j.args = view("");
  fl_wire_jobs_add(&out, &batch, &j);
  CHECK_EQ_INT(fl_wire_jobs_end(&out, &batch, err), 0);
  fl_wire_frame f;
  CHECK_EQ_INT(fl_wire_frame_parse(out.data, out.len, &f, err), 0);
  fl_wire_jobs_iter it;
  CHECK_EQ_INT(fl_wire_jobs_open(&it, &f), 0);
  CHECK_EQ_INT(fl_wire_jobs_next(&it, &j), 1);
  CHECK(j.job_id == 1 && j.args.n == 70000);
  CHECK_EQ_INT(fl_wire_jobs_next(&it, &j), 1);
  CHECK(j.job_id == 2 && j.args.n == 0);
  CHECK_EQ_INT(fl_wire_jobs_next(&it, &j), 0);
  fl_buf_free(&out);
  fl_buf_free(&big);
}

int main(void) {
  signal(SIGPIPE, SIG_IGN);
  open_lua();
  RUN(test_values_round_trip);
  RUN(test_double_bits);
  RUN(test_integers_compact);
  RUN(test_json_after_crossing);
  RUN(test_refused_with_path);
  RUN(test_arguments);
  RUN(test_hostile_values);
  RUN(test_reader_byte_by_byte_and_whole);
  RUN(test_reader_refusals);
  RUN(test_socketpair_and_pipe);
  RUN(test_jobs_batch_of_10000);
  RUN(test_big_counts_patched);
  lua_close(L);
  return check_summary();
}
