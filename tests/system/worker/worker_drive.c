/*
 * worker_drive.c — the worker side of worker tasks, driven as a driver
 * would: a socketpair, `flowlua __worker flow.lua` forked and executed with
 * the socket as descriptor 3, frames sent and read with core/wire.c and
 * values made and checked in a Lua state of this program (value_wire.c).
 *
 *     worker_drive FLOWLUA TEST
 *
 * runs one test (one process per test, as libuv's runner does; ctest gives
 * each its timeout). Every wait is bounded: a frame that does not come
 * within WAIT_S seconds fails the test, it does not hang it.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include "check.h"
#include "fsutil.h"
#include "lflowlua.h"
#include "sha256.h"
#include "value_wire.h"
#include "wire.h"

/* The longest any one frame or exit may take (sanitizers included). */
#define WAIT_S 10.0

static const char *g_flowlua;
static lua_State *L;

/* ---- the driver's Lua state: values to send and checks of results ------- */

static void open_lua(void) {
  L = luaL_newstate();
  luaL_openlibs(L);
  luaL_requiref(L, "json", luaopen_flowlua_json, 1);
  lua_pop(L, 1);
}

/* Runs code with the values from stack index first on as its arguments
   (removed), and returns its first result as a string: "" when the check
   passed (it returned true), else what it raised or returned. */
static const char *lua_verdict(const char *code, int first, char *out, size_t len) {
  int nargs = lua_gettop(L) - first + 1;
  if (luaL_loadstring(L, code) != LUA_OK) {
    snprintf(out, len, "%s", lua_tostring(L, -1));
    lua_settop(L, first - 1);
    return out;
  }
  lua_insert(L, first);
  if (lua_pcall(L, nargs, 1, 0) != LUA_OK || lua_toboolean(L, -1) != 1 ||
      lua_type(L, -1) != LUA_TBOOLEAN)
    snprintf(out, len, "%s", luaL_tolstring(L, -1, NULL));
  else
    out[0] = '\0';
  lua_settop(L, first - 1);
  return out;
}

/* The values code returns, as a JOB's args (fl_wire_encode_lua_args). */
static void encode_args(const char *code, fl_buf *out) {
  int top = lua_gettop(L);
  if (luaL_loadstring(L, code) != LUA_OK || lua_pcall(L, 0, LUA_MULTRET, 0) != LUA_OK) {
    fprintf(stderr, "driver lua: %s\n", lua_tostring(L, -1));
    abort();
  }
  fl_buf why = FL_BUF_INIT;
  if (fl_wire_encode_lua_args(L, top + 1, lua_gettop(L) - top, out, &why) != 0) {
    fprintf(stderr, "driver: cannot encode %s: %s\n", code, fl_buf_str(&why));
    abort();
  }
  fl_buf_free(&why);
  lua_settop(L, top);
}

/* The one value code returns, encoded (params). */
static void encode_value(const char *code, fl_buf *out) {
  int top = lua_gettop(L);
  if (luaL_loadstring(L, code) != LUA_OK || lua_pcall(L, 0, 1, 0) != LUA_OK) {
    fprintf(stderr, "driver lua: %s\n", lua_tostring(L, -1));
    abort();
  }
  fl_buf why = FL_BUF_INIT;
  if (fl_wire_encode_lua(L, -1, "params", out, &why) != 0) abort();
  fl_buf_free(&why);
  lua_settop(L, top);
}

/* ---- a worker process ---------------------------------------------------- */

typedef struct worker {
  pid_t pid;
  int fd;
  fl_wire_reader rd;
  fl_wire_writer wr;
  char dir[64];
  char script[96]; /* dir/flow.lua */
  char errpath[96]; /* its stderr */
} worker;

static void write_text(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  if (!f || fputs(text, f) < 0 || fclose(f) != 0) {
    perror(path);
    abort();
  }
}

/* A folder of its own with flow.lua holding script. */
static void worker_prepare(worker *w, const char *script) {
  memset(w, 0, sizeof *w);
  w->pid = -1;
  w->fd = -1;
  snprintf(w->dir, sizeof w->dir, "/tmp/flowlua-worker-%s", MKDTEMP_SUFFIX);
  if (!mkdtemp(w->dir)) abort();
  snprintf(w->script, sizeof w->script, "%s/flow.lua", w->dir);
  snprintf(w->errpath, sizeof w->errpath, "%s/stderr", w->dir);
  write_text(w->script, script);
  fl_wire_reader_init(&w->rd);
  fl_wire_writer_init(&w->wr);
}

/* In the child: descriptor 3 is the connection (sock), stderr goes to the
   worker's file, and it runs `flowlua __worker flow.lua` in its folder. A
   parent pid of -1 leaves FLOWLUA_WORKER_PARENT out, 0 sets our parent's. */
static void exec_worker(worker *w, int sock, const char *script_arg,
                        long parent) {
  if (sock >= 0) {
    if (sock == 3) fcntl(3, F_SETFD, 0);
    else if (dup2(sock, 3) != 3) _exit(126);
  } else {
    close(3);
  }
  int err = open(w->errpath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (err < 0 || dup2(err, 2) != 2) _exit(126);
  if (chdir(w->dir) != 0) _exit(126);
  char pid[32];
  snprintf(pid, sizeof pid, "%ld", parent == 0 ? (long)getppid() : parent);
  if (parent >= 0) setenv("FLOWLUA_WORKER_PARENT", pid, 1);
  else unsetenv("FLOWLUA_WORKER_PARENT");
  execl(g_flowlua, "flowlua", "__worker", script_arg, (char *)NULL);
  _exit(127);
}

/* Starts the worker on a socketpair; its end of the pair is w->fd. */
static void worker_spawn(worker *w, const char *script_arg, long parent) {
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) abort();
  w->pid = fork();
  if (w->pid < 0) abort();
  if (w->pid == 0) exec_worker(w, sv[1], script_arg, parent);
  close(sv[1]);
  w->fd = sv[0];
  fcntl(w->fd, F_SETFL, fcntl(w->fd, F_GETFL) | O_NONBLOCK);
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The next frame: 1 (valid until the next call), 0 at end of file between
   frames, -1 on a bad frame, an error or WAIT_S seconds without one. */
static int next_frame(worker *w, fl_wire_frame *f) {
  double until = now_s() + WAIT_S;
  for (;;) {
    int k = fl_wire_reader_next(&w->rd, f);
    if (k != 0) {
      if (k < 0) fprintf(stderr, "driver: bad frame: %s\n", w->rd.err);
      return k;
    }
    double left = until - now_s();
    if (left <= 0) {
      fprintf(stderr, "driver: no frame from the worker within %g s\n", WAIT_S);
      return -1;
    }
    struct pollfd p = {.fd = w->fd, .events = POLLIN};
    if (poll(&p, 1, (int)(left * 1000) + 1) < 0 && errno != EINTR) return -1;
    k = fl_wire_reader_fill(&w->rd, w->fd);
    if (k < 0) {
      fprintf(stderr, "driver: %s\n", w->rd.err);
      return -1;
    }
    if (k == 0) return fl_wire_reader_at_eof(&w->rd) == 0 ? 0 : -1;
  }
}

static void flush(worker *w) {
  int k;
  while ((k = fl_wire_writer_flush(&w->wr, w->fd)) == 0) {
    struct pollfd p = {.fd = w->fd, .events = POLLOUT};
    poll(&p, 1, 1000);
  }
  if (k < 0) fprintf(stderr, "driver: %s\n", w->wr.err);
}

static void expect_hello(worker *w) {
  fl_wire_frame f;
  CHECK_EQ_INT(next_frame(w, &f), 1);
  CHECK_EQ_STR(fl_wire_type_name(f.type), "HELLO");
  fl_wire_hello h;
  char err[FL_WIRE_ERR_MAX] = "";
  CHECK_EQ_INT(fl_wire_get_hello(&f, &h, err), 0);
  CHECK_EQ_STR(err, "");
  CHECK_EQ_INT(h.version, FL_WIRE_VERSION);
  CHECK_EQ_INT(h.pid, w->pid);
  char *data;
  size_t len;
  char want[65];
  if (fl_read_file(w->script, &data, &len) != 0) abort();
  fl_sha256_hex(data, len, want);
  free(data);
  char got[80];
  snprintf(got, sizeof got, "%.*s", (int)h.script_sha256.n, h.script_sha256.p);
  CHECK_EQ_STR(got, want);
  char runtime[80];
  snprintf(runtime, sizeof runtime, "%.*s", (int)h.runtime.n, h.runtime.p);
  CHECK_CONTAINS(runtime, "flowlua ");
  CHECK_CONTAINS(runtime, LUA_RELEASE);
}

/* Starts the worker on script and reads its HELLO. */
static void worker_start(worker *w, const char *script) {
  worker_prepare(w, script);
  worker_spawn(w, "flow.lua", 0);
  expect_hello(w);
}

/* The worker's exit: its status as waitpid gives it, or -1 when it did not
   exit within WAIT_S seconds (then it is killed). */
static int worker_wait(worker *w) {
  double until = now_s() + WAIT_S;
  int status;
  while (now_s() < until) {
    pid_t r = waitpid(w->pid, &status, WNOHANG);
    if (r == w->pid) {
      w->pid = -1;
      return status;
    }
    struct timespec ts = {0, 5 * 1000 * 1000};
    nanosleep(&ts, NULL);
  }
  fprintf(stderr, "driver: the worker did not exit within %g s\n", WAIT_S);
  kill(w->pid, SIGKILL);
  waitpid(w->pid, &status, 0);
  w->pid = -1;
  return -1;
}

/* What the worker wrote on stderr (a malloc'd string). */
static char *worker_stderr(worker *w) {
  char *data;
  size_t len;
  if (fl_read_file(w->errpath, &data, &len) != 0) return strdup("");
  return data;
}

static void worker_cleanup(worker *w) {
  if (w->pid > 0) {
    kill(w->pid, SIGKILL);
    waitpid(w->pid, NULL, 0);
  }
  if (w->fd >= 0) close(w->fd);
  fl_wire_reader_free(&w->rd);
  fl_wire_writer_free(&w->wr);
  unlink(w->script);
  unlink(w->errpath);
  rmdir(w->dir);
}

/* BYE, the worker's BYE back, end of file, exit 0 with nothing on stderr. */
static void worker_stop(worker *w) {
  fl_wire_put_bye(&w->wr.out, NULL);
  flush(w);
  fl_wire_frame f;
  CHECK_EQ_INT(next_frame(w, &f), 1);
  CHECK_EQ_STR(fl_wire_type_name(f.type), "BYE");
  CHECK_EQ_INT(next_frame(w, &f), 0);
  int status = worker_wait(w);
  CHECK(WIFEXITED(status));
  CHECK_EQ_INT(WEXITSTATUS(status), 0);
  char *err = worker_stderr(w);
  CHECK_EQ_STR(err, "");
  free(err);
  worker_cleanup(w);
}

/* ---- jobs ---------------------------------------------------------------- */

typedef struct job_spec {
  const char *task;   /* its name */
  const char *key;    /* NULL: the name */
  const char *run_id; /* NULL: "run-1" */
  int64_t map_index;
  uint64_t attempt; /* 0: 1 */
  uint64_t timeout_ms, memory_limit;
  const char *args;   /* Lua code returning the arguments; NULL: none */
  const char *params; /* Lua code returning the params; NULL: none sent */
} job_spec;

static fl_buf g_args, g_params;

static fl_wire_job make_job(uint64_t id, const job_spec *s) {
  fl_buf_reset(&g_args);
  fl_buf_reset(&g_params);
  encode_args(s->args ? s->args : "return", &g_args);
  if (s->params) encode_value(s->params, &g_params);
  const char *key = s->key ? s->key : s->task;
  const char *run = s->run_id ? s->run_id : "run-1";
  return (fl_wire_job){.job_id = id,
                       .run_id = {run, strlen(run)},
                       .task_key = {key, strlen(key)},
                       .task_name = {s->task, strlen(s->task)},
                       .map_index = s->map_index,
                       .attempt = s->attempt ? s->attempt : 1,
                       .timeout_ms = s->timeout_ms,
                       .memory_limit = s->memory_limit,
                       .args = {fl_buf_str(&g_args), g_args.len},
                       .params = {fl_buf_str(&g_params), g_params.len}};
}

static void send_job(worker *w, uint64_t id, const job_spec *s) {
  fl_wire_job m = make_job(id, s);
  if (fl_wire_put_job(&w->wr.out, &m, NULL) != 0) abort();
  flush(w);
}

static void send_cancel(worker *w, uint64_t id) {
  fl_wire_put_cancel(&w->wr.out, id, NULL);
  flush(w);
}

/* A job's frames up to its RESULT, as the driver got them. */
typedef struct result {
  int outcome; /* -1: no RESULT came */
  fl_buf value, message, traceback;
  /* The LOG and SECRET frames before it, one line each: "LOG 1 text" (the
     level), "SECRET value". */
  fl_buf frames;
} result;

static void result_free(result *r) {
  fl_buf_free(&r->value);
  fl_buf_free(&r->message);
  fl_buf_free(&r->traceback);
  fl_buf_free(&r->frames);
}

static const char *outcome_name(int outcome) {
  static const char *const names[] = {"SUCCESS", "FAILED", "FAILED_FINAL", "SKIPPED"};
  return outcome >= 0 && outcome <= 3 ? names[outcome] : "(none)";
}

/* Reads frames until job id's RESULT; every frame must be of that job. */
static void read_result(worker *w, uint64_t id, result *r) {
  *r = (result){.outcome = -1};
  fl_wire_frame f;
  char err[FL_WIRE_ERR_MAX] = "";
  while (next_frame(w, &f) == 1) {
    if (f.type == FL_WIRE_LOG) {
      fl_wire_log m;
      CHECK_EQ_INT(fl_wire_get_log(&f, &m, err), 0);
      CHECK_EQ_INT(m.job_id, id);
      fl_buf_addf(&r->frames, "LOG %d %.*s\n", (int)m.level, (int)m.text.n, m.text.p);
    } else if (f.type == FL_WIRE_SECRET) {
      fl_wire_secret m;
      CHECK_EQ_INT(fl_wire_get_secret(&f, &m, err), 0);
      CHECK_EQ_INT(m.job_id, id);
      fl_buf_addf(&r->frames, "SECRET %.*s\n", (int)m.secret.n, m.secret.p);
    } else if (f.type == FL_WIRE_RESULT) {
      fl_wire_result m;
      CHECK_EQ_INT(fl_wire_get_result(&f, &m, err), 0);
      CHECK_EQ_STR(err, "");
      CHECK_EQ_INT(m.job_id, id);
      r->outcome = m.outcome;
      fl_buf_add(&r->value, m.value.p, m.value.n);
      fl_buf_add(&r->message, m.message.p, m.message.n);
      fl_buf_add(&r->traceback, m.traceback.p, m.traceback.n);
      return;
    } else {
      fprintf(stderr, "driver: unexpected %s frame\n", fl_wire_type_name(f.type));
      CHECK(0);
      return;
    }
  }
  fprintf(stderr, "driver: no RESULT for job %llu\n", (unsigned long long)id);
  CHECK(0);
}

/* Runs one job and reads its result. */
static void run(worker *w, uint64_t id, const job_spec *s, result *r) {
  send_job(w, id, s);
  read_result(w, id, r);
}

/* Pushes the value a SUCCESS carried. */
static void push_value(result *r) {
  fl_buf why = FL_BUF_INIT;
  if (fl_wire_decode_lua(L, r->value.data, r->value.len, &why) != 0) {
    fprintf(stderr, "driver: the result does not decode: %s\n", fl_buf_str(&why));
    lua_pushnil(L);
    CHECK(0);
  }
  fl_buf_free(&why);
}

/* The job succeeded and check (Lua, the value as ...) returns true. */
static void check_success(result *r, const char *check) {
  CHECK_EQ_STR(outcome_name(r->outcome), "SUCCESS");
  if (r->outcome != FL_WIRE_SUCCESS) {
    fprintf(stderr, "  message: %s\n", fl_buf_str(&r->message));
    return;
  }
  char verdict[512];
  push_value(r);
  CHECK_EQ_STR(lua_verdict(check, lua_gettop(L), verdict, sizeof verdict), "");
}

/* ---- the tests ----------------------------------------------------------- */

static const char *const values_script =
    "local flow = require('flowlua')\n"
    "local json = flow.json\n"
    "flow.task('echo', function(...) return {...} end)\n"
    "flow.task('kinds', function(i, negz, bin, nested, null, empty, arr, maxi)\n"
    "  assert(math.type(i) == 'integer' and i == (1 << 53) + 1, 'integer')\n"
    "  assert(math.type(negz) == 'float' and negz == 0 and 1 / negz < 0, '-0.0')\n"
    "  assert(bin == 'a\\0b\\0\\255', 'binary string')\n"
    "  assert(nested.x.y[3].z == true and #nested.x.y == 3, 'nested')\n"
    "  assert(null == json.null, 'json.null')\n"
    "  assert(empty == json.empty_array, 'json.empty_array')\n"
    "  assert(getmetatable(arr) == json.array_mt and #arr == 0, 'empty array')\n"
    "  assert(maxi == math.maxinteger, 'maxinteger')\n"
    "  return 'ok'\n"
    "end)\n"
    "flow.task('bad_result', function() return {rows = {{}, {}, {f = print}}} end)\n"
    "return flow.define('f', function() end)\n";

static const char *const values_args =
    "return (1 << 53) + 1, -0.0, 'a\\0b\\0\\255', {x = {y = {1, 2, {z = true}}}},"
    " json.null, json.empty_array, setmetatable({}, json.array_mt), math.maxinteger";

/* Every kind of value the history keeps crosses both ways unchanged. */
static void test_values(void) {
  worker w;
  worker_start(&w, values_script);
  result r;
  run(&w, 1, &(job_spec){.task = "kinds", .args = values_args}, &r);
  check_success(&r, "return ... == 'ok'");
  result_free(&r);

  run(&w, 2, &(job_spec){.task = "echo", .args = values_args}, &r);
  check_success(&r,
                "local r = ...\n"
                "assert(math.type(r[1]) == 'integer' and r[1] == (1 << 53) + 1, 'integer: ' .. tostring(r[1]))\n"
                "assert(math.type(r[2]) == 'float' and r[2] == 0 and 1 / r[2] < 0, '-0.0')\n"
                "assert(r[3] == 'a\\0b\\0\\255', 'binary string')\n"
                "assert(r[4].x.y[1] == 1 and r[4].x.y[2] == 2 and r[4].x.y[3].z == true, 'nested')\n"
                "assert(r[5] == json.null, 'json.null')\n"
                "assert(r[6] == json.empty_array, 'json.empty_array')\n"
                "assert(getmetatable(r[7]) == json.array_mt and next(r[7]) == nil, 'empty array')\n"
                "assert(math.type(r[8]) == 'integer' and r[8] == math.maxinteger, 'maxinteger')\n"
                "return true");
  /* -0.0 keeps its sign bit in C too. */
  if (r.outcome == FL_WIRE_SUCCESS) {
    push_value(&r);
    lua_rawgeti(L, -1, 2);
    CHECK(signbit(lua_tonumber(L, -1)));
    lua_pop(L, 2);
  }
  result_free(&r);

  run(&w, 3, &(job_spec){.task = "bad_result"}, &r);
  CHECK_EQ_STR(outcome_name(r.outcome), "FAILED");
  CHECK_EQ_STR(fl_buf_str(&r.message),
               "task 'bad_result': result at 'rows[3].f' is a function");
  result_free(&r);
  worker_stop(&w);
}

/* flow.context() in a job says what the JOB said. */
static void test_context(void) {
  worker w;
  worker_start(&w, "local flow = require('flowlua')\n"
                   "flow.task('ctx', function() return flow.context() end)\n"
                   "return flow.define('f', function() end)\n");
  result r;
  run(&w, 7,
      &(job_spec){.task = "ctx", .key = "ctx[3]", .run_id = "run-42",
                  .map_index = 3, .attempt = 2,
                  .params = "return {region = 'eu', n = 5}"},
      &r);
  check_success(&r, "local c = ...\n"
                    "assert(c.run_id == 'run-42', 'run_id')\n"
                    "assert(c.task == 'ctx[3]', 'task')\n"
                    "assert(c.task_name == 'ctx', 'task_name')\n"
                    "assert(math.type(c.attempt) == 'integer' and c.attempt == 2, 'attempt')\n"
                    "assert(c.map_index == 3, 'map_index')\n"
                    "assert(c.params.region == 'eu' and c.params.n == 5, 'params')\n"
                    "return true");
  result_free(&r);
  /* A graph node: no map_index. */
  run(&w, 8, &(job_spec){.task = "ctx", .params = "return {}"}, &r);
  check_success(&r, "local c = ... return c.map_index == nil and c.task == 'ctx' "
                    "and c.attempt == 1 and next(c.params) == nil");
  result_free(&r);
  worker_stop(&w);
}

/* flow.log lines are LOG frames, in order, before the RESULT, at every
   level (the driver filters); a secret read is a SECRET frame before any
   later frame of the job. */
static void test_log_and_secret(void) {
  setenv("WORKER_TEST_SECRET", "hunter2-xyzzy", 1);
  worker w;
  worker_start(&w, "local flow = require('flowlua')\n"
                   "flow.task('talk', function(n)\n"
                   "  flow.log.info('one')\n"
                   "  local s = flow.secret('WORKER_TEST_SECRET')\n"
                   "  flow.log.debug('two %s', s)\n"
                   "  flow.log.warn('three')\n"
                   "  flow.log.error('four %d', n)\n"
                   "  print('print goes to stderr')\n"
                   "  return #s\n"
                   "end)\n"
                   "return flow.define('f', function() end)\n");
  result r;
  run(&w, 1, &(job_spec){.task = "talk", .args = "return 4"}, &r);
  check_success(&r, "return ... == 13");
  CHECK_EQ_STR(fl_buf_str(&r.frames), "LOG 1 one\n"
                                      "SECRET hunter2-xyzzy\n"
                                      "LOG 0 two hunter2-xyzzy\n"
                                      "LOG 2 three\n"
                                      "LOG 3 four 4\n");
  result_free(&r);
  /* The protocol is intact after print(): it went to stderr. */
  fl_wire_put_bye(&w.wr.out, NULL);
  flush(&w);
  fl_wire_frame f;
  CHECK_EQ_INT(next_frame(&w, &f), 1);
  CHECK_EQ_STR(fl_wire_type_name(f.type), "BYE");
  int status = worker_wait(&w);
  CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  char *err = worker_stderr(&w);
  CHECK_EQ_STR(err, "print goes to stderr\n");
  free(err);
  worker_cleanup(&w);
}

/* An error with its traceback, flow.fail, flow.skip, a task the script
   does not define: each is the job's RESULT, and the worker goes on. */
static void test_failures(void) {
  worker w;
  worker_start(&w, "local flow = require('flowlua')\n"
                   "local function deeper() error('kaboom') end\n"
                   "flow.task('boom', function() deeper() end)\n"
                   "flow.task('refuse', function() flow.fail('bad input') end)\n"
                   "flow.task('nothing', function() flow.skip('nothing to do') end)\n"
                   "flow.task('yields', function() coroutine.yield(1) end)\n"
                   "flow.task('table_error', function() error({code = 7}) end)\n"
                   "flow.task('ok', function() return true end)\n"
                   "return flow.define('f', function() end)\n");
  result r;
  run(&w, 1, &(job_spec){.task = "boom"}, &r);
  CHECK_EQ_STR(outcome_name(r.outcome), "FAILED");
  CHECK_EQ_STR(fl_buf_str(&r.message), "flow.lua:2: kaboom");
  CHECK_CONTAINS(fl_buf_str(&r.traceback), "stack traceback:");
  CHECK_CONTAINS(fl_buf_str(&r.traceback), "in upvalue 'deeper'");
  CHECK_CONTAINS(fl_buf_str(&r.traceback), "flow.lua:3:");
  result_free(&r);

  run(&w, 2, &(job_spec){.task = "refuse"}, &r);
  CHECK_EQ_STR(outcome_name(r.outcome), "FAILED_FINAL");
  CHECK_EQ_STR(fl_buf_str(&r.message), "bad input");
  result_free(&r);

  run(&w, 3, &(job_spec){.task = "nothing"}, &r);
  CHECK_EQ_STR(outcome_name(r.outcome), "SKIPPED");
  CHECK_EQ_STR(fl_buf_str(&r.message), "nothing to do");
  result_free(&r);

  run(&w, 4, &(job_spec){.task = "ghost"}, &r);
  CHECK_EQ_STR(outcome_name(r.outcome), "FAILED");
  CHECK_EQ_STR(fl_buf_str(&r.message),
               "worker: task 'ghost' is not defined by flow.lua (was the script changed?)");
  result_free(&r);

  run(&w, 5, &(job_spec){.task = "yields"}, &r);
  CHECK_EQ_STR(outcome_name(r.outcome), "FAILED");
  CHECK_CONTAINS(fl_buf_str(&r.message), "task yielded outside flowlua's waiting primitives");
  result_free(&r);

  run(&w, 6, &(job_spec){.task = "table_error"}, &r);
  CHECK_EQ_STR(outcome_name(r.outcome), "FAILED");
  CHECK_EQ_STR(fl_buf_str(&r.message), "(error object is a table value)");
  result_free(&r);

  run(&w, 7, &(job_spec){.task = "ok"}, &r);
  check_success(&r, "return ... == true");
  result_free(&r);
  worker_stop(&w);
}

/* A JOBS frame of 1,000 no-op jobs: 1,000 RESULTs, in order. */
static void test_batch(void) {
  worker w;
  worker_start(&w, "local flow = require('flowlua')\n"
                   "flow.task('noop', function(i) return i end)\n"
                   "return flow.define('f', function() end)\n");
  fl_wire_batch batch;
  fl_wire_jobs_begin(&w.wr.out, &batch);
  fl_buf args[1000];
  for (int i = 0; i < 1000; i++) {
    args[i] = (fl_buf)FL_BUF_INIT;
    lua_pushinteger(L, i + 1);
    fl_buf why = FL_BUF_INIT;
    fl_wire_encode_lua_args(L, lua_gettop(L), 1, &args[i], &why);
    fl_buf_free(&why);
    lua_pop(L, 1);
    fl_wire_job m = {.job_id = (uint64_t)(1000 + i),
                     .run_id = {"run-1", 5},
                     .task_key = {"noop", 4},
                     .task_name = {"noop", 4},
                     .map_index = i + 1,
                     .attempt = 1,
                     .args = {args[i].data, args[i].len},
                     .params = {"", 0}};
    fl_wire_jobs_add(&w.wr.out, &batch, &m);
  }
  CHECK_EQ_INT(fl_wire_jobs_end(&w.wr.out, &batch, NULL), 0);
  flush(&w);
  int in_order = 0;
  for (int i = 0; i < 1000; i++) {
    result r;
    read_result(&w, (uint64_t)(1000 + i), &r);
    if (r.outcome == FL_WIRE_SUCCESS) {
      push_value(&r);
      if (lua_tointeger(L, -1) == i + 1) in_order++;
      lua_pop(L, 1);
    }
    result_free(&r);
    fl_buf_free(&args[i]);
    if (r.outcome != FL_WIRE_SUCCESS) {
      for (int j = i + 1; j < 1000; j++) fl_buf_free(&args[j]);
      break;
    }
  }
  CHECK_EQ_INT(in_order, 1000);
  worker_stop(&w);
}

static const char *const busy_script =
    "local flow = require('flowlua')\n"
    "flow.task('spin', function()\n"
    "  flow.log.info('spinning')\n"
    "  local x = 0\n"
    "  while true do x = x + 1 end\n"
    "end)\n"
    "flow.task('stubborn', function()\n"
    "  flow.log.info('spinning')\n"
    "  while true do pcall(function() while true do end end) end\n"
    "end)\n"
    "flow.task('nap', function()\n"
    "  flow.log.info('napping')\n"
    "  flow.sleep(60)\n"
    "  return 'woke'\n"
    "end)\n"
    "flow.task('shell', function()\n"
    "  flow.log.info('waiting on a child')\n"
    "  return flow.shell({'sleep', '60'}).code\n"
    "end)\n"
    "flow.task('noop', function() return 'done' end)\n"
    "return flow.define('f', function() end)\n";

/* job.timeout_ms stops Lua code past it (a pcall cannot keep it going),
   a flow.sleep and a flow.shell; the worker takes the next job. */
static void test_timeout(void) {
  worker w;
  worker_start(&w, busy_script);
  const char *tasks[] = {"spin", "stubborn", "nap", "shell"};
  for (int i = 0; i < 4; i++) {
    result r;
    double t0 = now_s();
    run(&w, (uint64_t)i + 1, &(job_spec){.task = tasks[i], .timeout_ms = 200}, &r);
    double took = now_s() - t0;
    CHECK_EQ_STR(outcome_name(r.outcome), "FAILED");
    char want[128];
    snprintf(want, sizeof want, "task '%s' timed out: attempt 1 ran longer than 0.2 s",
             tasks[i]);
    CHECK_EQ_STR(fl_buf_str(&r.message), want);
    CHECK(took >= 0.2);
    result_free(&r);
  }
  result r;
  run(&w, 9, &(job_spec){.task = "noop"}, &r);
  check_success(&r, "return ... == 'done'");
  result_free(&r);
  worker_stop(&w);
}

/* Waits for the job's first LOG frame: its body is running. */
static void wait_running(worker *w, uint64_t id) {
  fl_wire_frame f;
  fl_wire_log m;
  char err[FL_WIRE_ERR_MAX];
  CHECK_EQ_INT(next_frame(w, &f), 1);
  CHECK_EQ_STR(fl_wire_type_name(f.type), "LOG");
  CHECK_EQ_INT(fl_wire_get_log(&f, &m, err), 0);
  CHECK_EQ_INT(m.job_id, id);
}

/* A CANCEL stops the running job, busy in Lua or waiting in flow.sleep
   or flow.shell; a CANCEL of a job not running is ignored, and one of a
   job queued behind the running one skips it. */
static void test_cancel(void) {
  worker w;
  worker_start(&w, busy_script);
  const char *tasks[] = {"spin", "stubborn", "nap", "shell"};
  for (int i = 0; i < 4; i++) {
    uint64_t id = (uint64_t)i + 1;
    send_job(&w, id, &(job_spec){.task = tasks[i]});
    wait_running(&w, id);
    send_cancel(&w, id);
    result r;
    read_result(&w, id, &r);
    CHECK_EQ_STR(outcome_name(r.outcome), "FAILED");
    CHECK_EQ_STR(fl_buf_str(&r.message), "cancelled by the driver");
    result_free(&r);
  }
  send_cancel(&w, 999);
  result r;
  run(&w, 10, &(job_spec){.task = "noop"}, &r);
  check_success(&r, "return ... == 'done'");
  result_free(&r);

  /* A job cancelled while it waited behind the running one is answered
     without running (its body would log 'napping'); the one after it
     runs. */
  send_job(&w, 20, &(job_spec){.task = "nap"});
  wait_running(&w, 20);
  send_job(&w, 21, &(job_spec){.task = "nap"});
  send_job(&w, 22, &(job_spec){.task = "noop"});
  send_cancel(&w, 21);
  send_cancel(&w, 20);
  read_result(&w, 20, &r);
  CHECK_EQ_STR(fl_buf_str(&r.message), "cancelled by the driver");
  result_free(&r);
  read_result(&w, 21, &r);
  CHECK_EQ_STR(fl_buf_str(&r.frames), ""); /* no 'napping': it never ran */
  CHECK_EQ_STR(outcome_name(r.outcome), "FAILED");
  CHECK_EQ_STR(fl_buf_str(&r.message), "cancelled by the driver (before it started)");
  result_free(&r);
  read_result(&w, 22, &r);
  check_success(&r, "return ... == 'done'");
  result_free(&r);
  worker_stop(&w);
}

/* The driver closing the connection stops the job in progress, runs none
   of those sent after it, and ends the worker (exit 0). */
static void test_driver_closes(void) {
  worker w;
  worker_start(&w, busy_script);
  send_job(&w, 1, &(job_spec){.task = "spin"});
  wait_running(&w, 1);
  send_job(&w, 2, &(job_spec){.task = "spin"});
  close(w.fd);
  w.fd = -1;
  int status = worker_wait(&w);
  CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  char *err = worker_stderr(&w);
  CHECK_EQ_STR(err, "");
  free(err);
  worker_cleanup(&w);
}

/* Module-level state is the worker's own and persists across its jobs. */
static void test_state(void) {
  worker w;
  worker_start(&w, "local flow = require('flowlua')\n"
                   "local count = 0\n"
                   "flow.task('count', function() count = count + 1 return count end)\n"
                   "return flow.define('f', function() end)\n");
  result r;
  run(&w, 1, &(job_spec){.task = "count"}, &r);
  check_success(&r, "return ... == 1");
  result_free(&r);
  run(&w, 2, &(job_spec){.task = "count"}, &r);
  check_success(&r, "return ... == 2");
  result_free(&r);
  worker_stop(&w);
}

/* A job past its memory_limit fails with the limit named; the worker
   frees what it held and takes the next job. */
static void test_memory(void) {
  worker w;
  worker_start(&w, "local flow = require('flowlua')\n"
                   "flow.task('hog', function()\n"
                   "  local t = {}\n"
                   "  for i = 1, 1e9 do t[i] = string.rep('x', 100) .. i end\n"
                   "end)\n"
                   "flow.task('small', function() return #string.rep('y', 1e6) end)\n"
                   "return flow.define('f', function() end)\n");
  result r;
  run(&w, 1, &(job_spec){.task = "hog", .memory_limit = (uint64_t)16 << 20}, &r);
  CHECK_EQ_STR(outcome_name(r.outcome), "FAILED");
  CHECK_EQ_STR(fl_buf_str(&r.message), "memory limit of 16 MiB reached in task 'hog'");
  CHECK_CONTAINS(fl_buf_str(&r.traceback), "flow.lua:4:");
  result_free(&r);
  run(&w, 2, &(job_spec){.task = "small", .memory_limit = (uint64_t)16 << 20}, &r);
  check_success(&r, "return ... == 1000000");
  result_free(&r);
  worker_stop(&w);
}

/* Killing the driver (here a middle process that started the worker and
   holds its connection) makes the worker exit, even while it is stuck in
   one C call that no hook reaches (a backtracking string.find): the
   kernel's death signal kills it. */
static void test_driver_killed(void) {
  /* Orphans come to us, not to a PID 1 that may never reap them. */
  CHECK_EQ_INT(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
  worker w;
  worker_prepare(&w, "local flow = require('flowlua')\n"
                     "flow.task('stuck', function()\n"
                     "  flow.log.info('stuck')\n"
                     "  return string.find(string.rep('a', 40), string.rep('a*', 40) .. 'b')\n"
                     "end)\n"
                     "return flow.define('f', function() end)\n");
  int report[2];
  if (pipe(report) != 0) abort();
  pid_t middle = fork();
  if (middle == 0) {
    close(report[0]);
    worker_spawn(&w, "flow.lua", 0);
    fl_wire_frame f;
    if (next_frame(&w, &f) != 1) _exit(1); /* HELLO: the worker is serving */
    send_job(&w, 1, &(job_spec){.task = "stuck"});
    if (next_frame(&w, &f) != 1 || f.type != FL_WIRE_LOG) _exit(1);
    long pid = (long)w.pid;
    if (write(report[1], &pid, sizeof pid) != (ssize_t)sizeof pid) _exit(1);
    for (;;) pause();
  }
  close(report[1]);
  long pid = 0;
  CHECK_EQ_INT(read(report[0], &pid, sizeof pid), (long)sizeof pid);
  close(report[0]);
  CHECK(pid > 0);
  kill(middle, SIGKILL);
  waitpid(middle, NULL, 0);
  /* The worker was reparented to us: waitpid tells when it is gone. */
  int gone = 0, status = 0;
  double until = now_s() + WAIT_S;
  while (pid > 0 && !gone && now_s() < until) {
    if (waitpid((pid_t)pid, &status, WNOHANG) == (pid_t)pid) gone = 1;
    else {
      struct timespec ts = {0, 2 * 1000 * 1000};
      nanosleep(&ts, NULL);
    }
  }
  CHECK(gone);
  CHECK(gone && WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
  if (!gone && pid > 0) {
    kill((pid_t)pid, SIGKILL);
    waitpid((pid_t)pid, NULL, 0);
  }
  CHECK_EQ_INT(kill((pid_t)pid, 0) == -1 ? errno : 0, ESRCH);
  worker_cleanup(&w);
}

/* Bad input: a script that is missing, bytes that are not frames, a
   parent that is not the driver, no connection on descriptor 3. */
static void test_bad_input(void) {
  worker w;
  worker_prepare(&w, "return require('flowlua').define('f', function() end)\n");
  worker_spawn(&w, "missing.lua", 0);
  int status = worker_wait(&w);
  CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 2);
  char *err = worker_stderr(&w);
  CHECK_CONTAINS(err, "cannot load missing.lua: cannot open missing.lua: No such file or directory");
  free(err);
  worker_cleanup(&w);

  worker_start(&w, "return require('flowlua').define('f', function() end)\n");
  fl_buf_adds(&w.wr.out, "GARBAGE!");
  flush(&w);
  status = worker_wait(&w);
  CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 1);
  err = worker_stderr(&w);
  CHECK_CONTAINS(err, "flowlua __worker: worker: the bytes from the driver: not a "
                      "flowlua worker frame: first byte 0x47");
  free(err);
  worker_cleanup(&w);

  /* A frame a worker never takes. */
  worker_start(&w, "return require('flowlua').define('f', function() end)\n");
  fl_wire_log m = {1, 1, {"x", 1}};
  fl_wire_put_log(&w.wr.out, &m, NULL);
  flush(&w);
  status = worker_wait(&w);
  CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 1);
  err = worker_stderr(&w);
  CHECK_CONTAINS(err, "unexpected frame from the driver: a LOG frame");
  free(err);
  worker_cleanup(&w);

  /* FLOWLUA_WORKER_PARENT names another process: exit 1 at once. */
  worker_prepare(&w, "return require('flowlua').define('f', function() end)\n");
  worker_spawn(&w, "flow.lua", 1);
  status = worker_wait(&w);
  CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 1);
  fl_wire_frame f;
  CHECK_EQ_INT(next_frame(&w, &f), 0); /* no HELLO */
  worker_cleanup(&w);

  worker_prepare(&w, "return require('flowlua').define('f', function() end)\n");
  w.pid = fork();
  if (w.pid == 0) exec_worker(&w, -1, "flow.lua", 0);
  status = worker_wait(&w);
  CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 2);
  err = worker_stderr(&w);
  CHECK_CONTAINS(err, "descriptor 3 is not open");
  free(err);
  worker_cleanup(&w);
}

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: worker_drive FLOWLUA TEST\n");
    return 2;
  }
  g_flowlua = argv[1];
  signal(SIGPIPE, SIG_IGN);
  open_lua();
  static const struct {
    const char *name;
    void (*fn)(void);
  } tests[] = {{"values", test_values},       {"context", test_context},
               {"log_secret", test_log_and_secret},
               {"failures", test_failures},   {"batch", test_batch},
               {"timeout", test_timeout},     {"cancel", test_cancel},
               {"state", test_state},         {"memory", test_memory},
               {"driver_killed", test_driver_killed},
               {"driver_closes", test_driver_closes},
               {"bad_input", test_bad_input}};
  int found = 0;
  for (size_t i = 0; i < sizeof tests / sizeof tests[0]; i++)
    if (strcmp(argv[2], tests[i].name) == 0) {
      check_run_(tests[i].fn, tests[i].name);
      found = 1;
    }
  if (!found) {
    fprintf(stderr, "worker_drive: no test '%s'\n", argv[2]);
    return 2;
  }
  fl_buf_free(&g_args);
  fl_buf_free(&g_params);
  lua_close(L);
  return check_summary();
}
