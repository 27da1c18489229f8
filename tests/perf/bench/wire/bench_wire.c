/*
 * bench_wire.c — the worker wire's cost (core/wire.c, engine/value_wire.c)
 * against JSON in the same process: flowlua's own codec (value_json.c, what
 * the history uses) and lua-cjson, on the same Lua values.
 *
 * Workloads, each timed with the monotonic clock, median of REPEAT runs:
 *  - jobs: 10,000 small JOBs (three arguments: an integer, a short string,
 *    a one-field table) encoded into one JOBS frame, then read back and
 *    their arguments pushed onto the Lua stack; ns per job. The references
 *    encode and decode the same arguments as JSON text, with no message
 *    around them.
 *  - value: one array of 1,000,000 elements (integers, floats, short
 *    strings in turn) encoded once and decoded once; ms and MB/s of each
 *    side's own bytes.
 *
 * Built and run by run.py beside it, against a build's libflowlua.a.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include "engine.h"
#include "value_wire.h"
#include "wire.h"

#define JOBS 10000
#define REPEAT 7

static lua_State *L;

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int by_value(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static double median(double *v, int n) {
  qsort(v, (size_t)n, sizeof *v, by_value);
  return v[n / 2];
}

static void die(const char *what, const char *why) {
  fprintf(stderr, "bench_wire: %s: %s\n", what, why);
  exit(1);
}

/* Leaves the list of every job's arguments (a table of 3-element tables)
   at the top of the stack. */
static void make_jobs_args(void) {
  const char *code =
      "local all = {}\n"
      "for i = 1, ... do all[i] = {i, 'item-' .. i, {x = i * 0.5}} end\n"
      "return all\n";
  if (luaL_loadstring(L, code) != LUA_OK) die("load", lua_tostring(L, -1));
  lua_pushinteger(L, JOBS);
  lua_call(L, 1, 1);
}

static void make_big_value(void) {
  const char *code =
      "local t = {}\n"
      "for i = 1, 1000000 do\n"
      "  local k = i % 3\n"
      "  t[i] = k == 0 and i or k == 1 and i + 0.5 or 's' .. i\n"
      "end\n"
      "return t\n";
  if (luaL_loadstring(L, code) != LUA_OK) die("load", lua_tostring(L, -1));
  lua_call(L, 0, 1);
}

/* One round of the wire: encode every job into a JOBS frame, then decode
   it and push each job's arguments. Returns the seconds of each half. */
static void wire_jobs_round(int all, fl_buf *frame, double *enc, double *dec) {
  fl_buf args = FL_BUF_INIT, why = FL_BUF_INIT;
  char err[FL_WIRE_ERR_MAX];
  fl_buf_reset(frame);
  double t0 = now();
  fl_wire_batch batch;
  fl_wire_jobs_begin(frame, &batch);
  fl_wire_job job = {0};
  job.run_id = (fl_wire_bytes){"run-0001", 8};
  job.task_name = (fl_wire_bytes){"noop", 4};
  job.task_key = (fl_wire_bytes){"noop", 4};
  job.params = (fl_wire_bytes){"\x06\x00\x00", 3};
  job.attempt = 1;
  for (int i = 1; i <= JOBS; i++) {
    lua_rawgeti(L, all, i);
    int top = lua_gettop(L);
    lua_rawgeti(L, top, 1);
    lua_rawgeti(L, top, 2);
    lua_rawgeti(L, top, 3);
    fl_buf_reset(&args);
    if (fl_wire_encode_lua_args(L, top + 1, 3, &args, &why) != 0) die("encode", fl_buf_str(&why));
    lua_settop(L, top - 1);
    job.job_id = (uint64_t)i;
    job.map_index = i;
    job.args = (fl_wire_bytes){args.data, args.len};
    fl_wire_jobs_add(frame, &batch, &job);
  }
  if (fl_wire_jobs_end(frame, &batch, err) != 0) die("jobs", err);
  double t1 = now();
  fl_wire_frame f;
  fl_wire_jobs_iter it;
  if (fl_wire_frame_parse(frame->data, frame->len, &f, err) != 0) die("frame", err);
  if (fl_wire_jobs_open(&it, &f) != 0) die("jobs", it.in.err);
  int n;
  while (fl_wire_jobs_next(&it, &job) == 1) {
    if (fl_wire_decode_lua_args(L, job.args.p, job.args.n, &n, &why) != 0)
      die("decode", fl_buf_str(&why));
    lua_pop(L, n);
  }
  double t2 = now();
  *enc = t1 - t0;
  *dec = t2 - t1;
  fl_buf_free(&args);
  fl_buf_free(&why);
}

/* The same arguments as JSON text through value_json.c. */
static void json_jobs_round(int all, double *enc, double *dec) {
  fl_buf *texts = calloc(JOBS, sizeof *texts);
  double t0 = now();
  for (int i = 1; i <= JOBS; i++) {
    lua_rawgeti(L, all, i);
    if (fl_json_encode_value(L, -1, &texts[i - 1], NULL) != 0) die("json", "encode");
    lua_pop(L, 1);
  }
  double t1 = now();
  for (int i = 0; i < JOBS; i++) {
    if (fl_json_decode_value(L, texts[i].data, texts[i].len) != 0) die("json", "decode");
    lua_pop(L, 1);
  }
  double t2 = now();
  *enc = t1 - t0;
  *dec = t2 - t1;
  for (int i = 0; i < JOBS; i++) fl_buf_free(&texts[i]);
  free(texts);
}

/* lua-cjson through the Lua API; 0 when it is not installed. */
static int have_cjson(void) {
  lua_getglobal(L, "require");
  lua_pushstring(L, "cjson");
  if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
    fprintf(stderr, "bench_wire: no lua-cjson (%s): its rows are left out\n", lua_tostring(L, -1));
    lua_pop(L, 1);
    return 0;
  }
  lua_setglobal(L, "cjson");
  return 1;
}

/* Calls cjson.encode or cjson.decode on the value at idx; leaves the result. */
static void cjson_call(const char *fn, int idx) {
  idx = lua_absindex(L, idx);
  lua_getglobal(L, "cjson");
  lua_getfield(L, -1, fn);
  lua_remove(L, -2);
  lua_pushvalue(L, idx);
  if (lua_pcall(L, 1, 1, 0) != LUA_OK) die("cjson", lua_tostring(L, -1));
}

static void cjson_jobs_round(int all, double *enc, double *dec) {
  lua_createtable(L, JOBS, 0);
  int texts = lua_gettop(L);
  double t0 = now();
  for (int i = 1; i <= JOBS; i++) {
    lua_rawgeti(L, all, i);
    cjson_call("encode", -1);
    lua_rawseti(L, texts, i);
    lua_pop(L, 1);
  }
  double t1 = now();
  for (int i = 1; i <= JOBS; i++) {
    lua_rawgeti(L, texts, i);
    cjson_call("decode", -1);
    lua_pop(L, 2);
  }
  double t2 = now();
  *enc = t1 - t0;
  *dec = t2 - t1;
  lua_pop(L, 1);
}

static void row(const char *name, double enc, double dec, double ref_total) {
  double total = enc + dec;
  printf("%-28s %10.0f %10.0f %10.0f", name, enc * 1e9 / JOBS, dec * 1e9 / JOBS,
         total * 1e9 / JOBS);
  if (ref_total > 0) printf("   %5.2fx", total / ref_total);
  printf("\n");
}

static void bench_jobs(int cjson) {
  make_jobs_args();
  int all = lua_gettop(L);
  double we[REPEAT], wd[REPEAT], je[REPEAT], jd[REPEAT], ce[REPEAT], cd[REPEAT];
  fl_buf frame = FL_BUF_INIT;
  for (int r = 0; r < REPEAT; r++) {
    wire_jobs_round(all, &frame, &we[r], &wd[r]);
    json_jobs_round(all, &je[r], &jd[r]);
    if (cjson) cjson_jobs_round(all, &ce[r], &cd[r]);
    lua_gc(L, LUA_GCCOLLECT);
  }
  double wire_e = median(we, REPEAT), wire_d = median(wd, REPEAT);
  double json_e = median(je, REPEAT), json_d = median(jd, REPEAT);
  printf("jobs: %d JOBs of 3 arguments, one JOBS frame of %zu bytes (%.1f bytes/job)\n", JOBS,
         frame.len, (double)frame.len / JOBS);
  printf("%-28s %10s %10s %10s   %s\n", "ns per job", "encode", "decode", "total",
         "time / wire's");
  row("wire (JOB in JOBS, args)", wire_e, wire_d, 0);
  row("JSON, value_json (args only)", json_e, json_d, wire_e + wire_d);
  if (cjson) row("JSON, lua-cjson (args only)", median(ce, REPEAT), median(cd, REPEAT), wire_e + wire_d);
  printf("jobs/s through the wire codec: %.0f\n\n", JOBS / (wire_e + wire_d));
  fl_buf_free(&frame);
  lua_settop(L, all - 1);
}

static void value_row(const char *name, double e, double d, size_t bytes, double ref_total) {
  printf("%-22s %9.1f %9.1f %9.1f %10.1f %10.1f %11.1f", name, e * 1e3, d * 1e3, (double)bytes / 1e6,
         (double)bytes / 1e6 / e, (double)bytes / 1e6 / d, (e + d) * 1e9 / 1e6);
  if (ref_total > 0) printf("  %5.2fx", (e + d) / ref_total);
  printf("\n");
}

static void bench_value(int cjson) {
  make_big_value();
  int v = lua_gettop(L);
  double we[REPEAT], wd[REPEAT], je[REPEAT], jd[REPEAT], ce[REPEAT], cd[REPEAT];
  fl_buf out = FL_BUF_INIT, why = FL_BUF_INIT;
  size_t json_bytes = 0, cjson_bytes = 0;
  for (int r = 0; r < REPEAT; r++) {
    fl_buf_reset(&out);
    double t0 = now();
    if (fl_wire_encode_lua(L, v, "value", &out, &why) != 0) die("encode", fl_buf_str(&why));
    double t1 = now();
    if (fl_wire_decode_lua(L, out.data, out.len, &why) != 0) die("decode", fl_buf_str(&why));
    double t2 = now();
    lua_pop(L, 1);
    we[r] = t1 - t0;
    wd[r] = t2 - t1;
    fl_buf text = FL_BUF_INIT;
    t0 = now();
    if (fl_json_encode_value(L, v, &text, NULL) != 0) die("json", "encode");
    t1 = now();
    if (fl_json_decode_value(L, text.data, text.len) != 0) die("json", "decode");
    t2 = now();
    lua_pop(L, 1);
    je[r] = t1 - t0;
    jd[r] = t2 - t1;
    json_bytes = text.len;
    fl_buf_free(&text);
    if (cjson) {
      t0 = now();
      cjson_call("encode", v);
      t1 = now();
      size_t n;
      lua_tolstring(L, -1, &n);
      cjson_bytes = n;
      cjson_call("decode", -1);
      t2 = now();
      lua_pop(L, 2);
      ce[r] = t1 - t0;
      cd[r] = t2 - t1;
    }
    lua_gc(L, LUA_GCCOLLECT);
  }
  double wire_total = median(we, REPEAT) + median(wd, REPEAT);
  printf("value: an array of 1,000,000 integers, floats and short strings\n");
  printf("%-22s %9s %9s %9s %10s %10s %11s  %s\n", "", "enc ms", "dec ms", "MB", "enc MB/s",
         "dec MB/s", "ns/element", "time / wire's");
  value_row("wire", median(we, REPEAT), median(wd, REPEAT), out.len, 0);
  value_row("JSON, value_json", median(je, REPEAT), median(jd, REPEAT), json_bytes, wire_total);
  if (cjson)
    value_row("JSON, lua-cjson", median(ce, REPEAT), median(cd, REPEAT), cjson_bytes, wire_total);
  fl_buf_free(&out);
  fl_buf_free(&why);
  lua_settop(L, v - 1);
}

int main(void) {
  L = luaL_newstate();
  luaL_openlibs(L);
  int cjson = have_cjson();
  printf("bench_wire: medians of %d runs, one process, %s\n\n", REPEAT, LUA_RELEASE);
  bench_jobs(cjson);
  bench_value(cjson);
  lua_close(L);
  return 0;
}
