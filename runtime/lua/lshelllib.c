/*
 * lshelllib.c — flow.shell(argv, opts): run a child process and collect its
 * exit code and output, without blocking the other tasks.
 *
 * argv is a list (no shell involved); a string runs through /bin/sh only with
 * `shell = true`. A non-zero exit is a result, not an error (`check = true`
 * makes it one); a program that cannot start, a timeout or too much output
 * raise, naming the command and the cause.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include <lauxlib.h>
#include <lua.h>

#include "engine.h"
#include "lflowlua.h"
#include "loptions.h"
#include "process.h"

#define FL_PROC_MT "flowlua.process"
#define FL_SHELL_DEFAULT_MAX_OUTPUT ((size_t)64 << 20)

typedef struct lproc {
  fl_proc proc;
  fl_wait wait;
  fl_timer deadline;
  fl_taskrun *run;
  double timeout;
  int timed_out, started;
  flowlua *rt;
} lproc;

static int proc_gc(lua_State *L) {
  lproc *lp = luaL_checkudata(L, 1, FL_PROC_MT);
  if (lp->started) {
    fl_timer_stop(&lp->rt->loop, &lp->deadline);
    fl_proc_free(&lp->proc);
    lp->started = 0;
  }
  return 0;
}

static void on_done(fl_proc *p) {
  lproc *lp = (lproc *)((char *)p - offsetof(lproc, proc));
  fl_timer_stop(&lp->rt->loop, &lp->deadline);
  if (lp->run) fl_sched_wake(lp->run);
}

static void on_deadline(fl_timer *t) {
  lproc *lp = t->data;
  lp->timed_out = 1;
  fl_proc_kill(&lp->proc);
  lp->proc.finished = 1;
  if (lp->run) fl_sched_wake(lp->run);
}

/* The task was interrupted: the child must not outlive it. */
static void on_cancel(fl_wait *w) {
  lproc *lp = (lproc *)((char *)w - offsetof(lproc, wait));
  fl_timer_stop(&lp->rt->loop, &lp->deadline);
  fl_proc_kill(&lp->proc);
}

/* "prog arg1 arg2" for messages, from the argv list at idx. */
static const char *push_command_text(lua_State *L, int argv_idx) {
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  lua_Integer n = (lua_Integer)lua_rawlen(L, argv_idx);
  for (lua_Integer i = 1; i <= n && i <= 8; i++) {
    if (i > 1) luaL_addchar(&b, ' ');
    lua_rawgeti(L, argv_idx, i);
    luaL_addvalue(&b);
  }
  if (n > 8) luaL_addstring(&b, " ...");
  luaL_pushresult(&b);
  return lua_tostring(L, -1);
}

/* What of a child's stderr goes into the error of `check = true` (and so
   into the log and the history): its end, where the cause usually is, not
   megabytes of it. */
#define FL_SHELL_STDERR_TAIL 4096

/* Pushes the last FL_SHELL_STDERR_TAIL bytes or so of err, starting on a
   UTF-8 character, with a note of how many bytes before them were left
   out. */
static void push_stderr_tail(lua_State *L, const char *err, size_t len) {
  if (len <= FL_SHELL_STDERR_TAIL) {
    lua_pushlstring(L, err, len);
    return;
  }
  size_t from = len - FL_SHELL_STDERR_TAIL;
  /* Not in the middle of a character: skip its continuation bytes (at
     most three in valid UTF-8; other bytes are not text to keep whole). */
  for (int i = 0; i < 3 && ((unsigned char)err[from] & 0xc0) == 0x80; i++)
    from++;
  lua_pushfstring(L, "[first %I bytes of stderr left out] ", (lua_Integer)from);
  lua_pushlstring(L, err + from, len - from);
  lua_concat(L, 2);
}

static int finish_shell(lua_State *L, int status, lua_KContext ctx) {
  (void)status;
  int ud = (int)ctx;
  lproc *lp = lua_touserdata(L, ud);
  fl_proc *p = &lp->proc;
  const char *cmd = lua_tostring(L, ud - 1);
  if (lp->timed_out) {
    char secs[32];
    snprintf(secs, sizeof secs, "%g", lp->timeout);
    return luaL_error(L, "shell: '%s' timed out after %s s (killed)", cmd, secs);
  }
  if (p->too_much)
    return luaL_error(L, "shell: '%s' wrote more than %d bytes of output "
                         "(killed; raise max_output)",
                      cmd, (int)p->max_output);
  lua_createtable(L, 0, 5);
  int code = 0;
  if (WIFEXITED(p->status)) {
    code = WEXITSTATUS(p->status);
  } else if (WIFSIGNALED(p->status)) {
    code = 128 + WTERMSIG(p->status);
    lua_pushinteger(L, WTERMSIG(p->status));
    lua_setfield(L, -2, "signal");
  }
  lua_pushinteger(L, code);
  lua_setfield(L, -2, "code");
  lua_pushlstring(L, p->out.data ? p->out.data : "", p->out.len);
  lua_setfield(L, -2, "stdout");
  lua_pushlstring(L, p->err.data ? p->err.data : "", p->err.len);
  lua_setfield(L, -2, "stderr");
  lua_pushnumber(L, p->ended - p->started);
  lua_setfield(L, -2, "elapsed");
  if (lua_toboolean(L, ud - 2) && code != 0) {
    push_stderr_tail(L, p->err.data ? p->err.data : "", p->err.len);
    return luaL_error(L, "shell: '%s' exited with code %d: %s", cmd, code,
                      lua_tostring(L, -1));
  }
  return 1;
}

/* Whether the string at idx holds a NUL byte: the C strings a program
   receives (arguments, environment, folder) would end there, silently
   running something other than what was asked. */
static int has_nul(lua_State *L, int idx) {
  size_t len;
  const char *s = lua_tolstring(L, idx, &len);
  return s && strlen(s) != len;
}

/* Builds a NULL-terminated char* array in a userdata from the strings in
   the list at idx; the strings stay alive in that list. */
static char **push_cstring_array(lua_State *L, int idx, int n) {
  char **v = lua_newuserdatauv(L, (size_t)(n + 1) * sizeof *v, 0);
  for (int i = 1; i <= n; i++) {
    lua_rawgeti(L, idx, i);
    v[i - 1] = (char *)lua_tostring(L, -1);
    lua_pop(L, 1);
  }
  v[n] = NULL;
  return v;
}

extern char **environ;

/* The environment: ours, with opts.env's entries added or replaced (or
   alone with clear_env). Pushes a list of "K=V" strings; returns its size. */
static int push_environment(lua_State *L, int env_idx, int clear) {
  lua_newtable(L);
  int list = lua_gettop(L), n = 0;
  lua_newtable(L); /* names set by opts.env */
  int given = lua_gettop(L);
  lua_pushnil(L);
  while (lua_next(L, env_idx)) {
    if (lua_type(L, -2) != LUA_TSTRING || !*lua_tostring(L, -2) ||
        strchr(lua_tostring(L, -2), '='))
      luaL_error(L, "shell: env names must be non-empty strings without '='");
    if (has_nul(L, -2))
      luaL_error(L, "shell: an env name contains a NUL byte");
    if (lua_type(L, -1) != LUA_TSTRING && lua_type(L, -1) != LUA_TNUMBER)
      luaL_error(L, "shell: env value for '%s' must be a string, got %s",
                 lua_tostring(L, -2), luaL_typename(L, -1));
    if (has_nul(L, -1))
      luaL_error(L, "shell: env value for '%s' contains a NUL byte",
                 lua_tostring(L, -2));
    lua_pushfstring(L, "%s=%s", lua_tostring(L, -2), lua_tostring(L, -1));
    lua_rawseti(L, list, ++n);
    lua_pushvalue(L, -2);
    lua_pushboolean(L, 1);
    lua_rawset(L, given);
    lua_pop(L, 1);
  }
  for (char **e = clear ? NULL : environ; e && *e; e++) {
    const char *eq = strchr(*e, '=');
    if (!eq) continue;
    lua_pushlstring(L, *e, (size_t)(eq - *e));
    int overridden = lua_rawget(L, given) != LUA_TNIL;
    lua_pop(L, 1);
    if (overridden) continue;
    lua_pushstring(L, *e);
    lua_rawseti(L, list, ++n);
  }
  lua_pop(L, 1);
  return n;
}

static const char *const shell_options[] = {
    "timeout", "cwd",   "env",   "clear_env", "stdin",
    "shell",   "check", "max_output", NULL};

/* flow.shell's options, as read from its second argument. */
typedef struct shell_opts {
  int use_shell, clear_env, check, has_env;
  const char *cwd, *stdin_data; /* held by the options table */
  size_t stdin_len, max_output;
  double timeout;
} shell_opts;

static void read_shell_options(lua_State *L, int idx, shell_opts *so) {
  *so = (shell_opts){.max_output = FL_SHELL_DEFAULT_MAX_OUTPUT};
  if (lua_isnoneornil(L, idx)) return;
  luaL_checktype(L, idx, LUA_TTABLE);
  enum { TIMEOUT, CWD, ENV, CLEAR_ENV, STDIN, SHELL, CHECK, MAX_OUTPUT };
  fl_opts it;
  fl_opts_begin(&it, L, idx, "shell", "option", shell_options);
  for (int k; (k = fl_opts_next(&it)) >= 0;) {
    int v = it.value;
    switch (k) {
    case TIMEOUT:
      so->timeout = luaL_checknumber(L, v);
      if (!(so->timeout > 0))
        luaL_error(L, "shell: option 'timeout' must be more than 0 seconds");
      break;
    case CWD:
      so->cwd = luaL_checkstring(L, v);
      if (has_nul(L, v))
        luaL_error(L, "shell: option 'cwd' contains a NUL byte");
      break;
    case ENV:
      luaL_checktype(L, v, LUA_TTABLE);
      so->has_env = 1;
      break;
    case CLEAR_ENV:
      so->clear_env = lua_toboolean(L, v);
      break;
    case STDIN:
      so->stdin_data = luaL_checklstring(L, v, &so->stdin_len);
      break;
    case SHELL:
      so->use_shell = lua_toboolean(L, v);
      break;
    case CHECK:
      so->check = lua_toboolean(L, v);
      break;
    case MAX_OUTPUT: {
      lua_Integer m = luaL_checkinteger(L, v);
      if (m <= 0) luaL_error(L, "shell: option 'max_output' must be > 0");
      so->max_output = (size_t)m;
      break;
    }
    }
  }
}

/* Pushes the argv list: the list given, or {"/bin/sh", "-c", command} when
   a command line was given and a shell asked for; checks every element and
   returns the count. */
static int push_argv(lua_State *L, int use_shell) {
  if (lua_type(L, 1) == LUA_TSTRING) {
    if (!use_shell)
      return luaL_error(L, "shell: pass the command as a list of arguments "
                           "{ prog, arg, ... }, or set shell = true to run a "
                           "command line through /bin/sh");
    lua_createtable(L, 3, 0);
    lua_pushliteral(L, "/bin/sh");
    lua_rawseti(L, -2, 1);
    lua_pushliteral(L, "-c");
    lua_rawseti(L, -2, 2);
    lua_pushvalue(L, 1);
    lua_rawseti(L, -2, 3);
  } else {
    luaL_argexpected(L, lua_type(L, 1) == LUA_TTABLE, 1, "argument list");
    lua_pushvalue(L, 1);
  }
  int argv_idx = lua_gettop(L);
  int argc = (int)lua_rawlen(L, argv_idx);
  if (argc == 0) return luaL_error(L, "shell: the argument list is empty");
  for (int i = 1; i <= argc; i++) {
    int t = lua_rawgeti(L, argv_idx, i);
    if (t != LUA_TSTRING && t != LUA_TNUMBER)
      return luaL_error(L, "shell: argument %d must be a string, got %s", i,
                        lua_typename(L, t));
    if (has_nul(L, -1))
      return use_shell && lua_type(L, 1) == LUA_TSTRING
                 ? luaL_error(L, "shell: the command line contains a NUL byte "
                                 "(a program cannot receive one)")
                 : luaL_error(L, "shell: argument %d contains a NUL byte (a "
                                 "program cannot receive one)", i);
    lua_pop(L, 1);
  }
  return argc;
}

static int flow_shell(lua_State *L) {
  flowlua *rt = fl_rt(L);
  shell_opts so;
  read_shell_options(L, 2, &so);
  lua_settop(L, 2);
  int argc = push_argv(L, so.use_shell);
  int argv_idx = lua_gettop(L);
  char **argv = push_cstring_array(L, argv_idx, argc);
  char **envp = NULL;
  if (so.has_env || so.clear_env) {
    lua_getfield(L, 2, "env");
    if (lua_isnil(L, -1)) {
      lua_pop(L, 1);
      lua_newtable(L);
    }
    int n = push_environment(L, lua_gettop(L), so.clear_env);
    envp = push_cstring_array(L, lua_gettop(L), n);
  }
  lua_pushboolean(L, so.check);        /* ud - 2 */
  push_command_text(L, argv_idx);      /* ud - 1 */
  lproc *lp = lua_newuserdatauv(L, sizeof *lp, 0);
  memset(lp, 0, sizeof *lp);
  luaL_setmetatable(L, FL_PROC_MT);
  int ud = lua_gettop(L);
  lp->rt = rt;
  lp->timeout = so.timeout;
  lp->wait.cancel = on_cancel;
  fl_timer_init(&lp->deadline, on_deadline, lp);

  fl_taskrun *run = fl_sched_parkable(L);
  if (!run && rt->current)
    return luaL_error(L, "shell: cannot wait here: call it from the task body "
                         "itself, not from a coroutine or hook it runs");
  lp->run = run;
  fl_proc_opts o = {.argv = argv, .envp = envp, .cwd = so.cwd,
                    .stdin_data = so.stdin_data, .stdin_len = so.stdin_len,
                    .max_output = so.max_output};
  if (fl_proc_start(&rt->loop, &lp->proc, &o, on_done, lp) != 0) {
    int e = errno;
    if (so.cwd && e == ENOENT)
      return luaL_error(L, "shell: cannot run '%s' in '%s': %s", argv[0], so.cwd,
                        strerror(e));
    return luaL_error(L, "shell: cannot run '%s': %s", argv[0], strerror(e));
  }
  lp->started = 1;
  if (so.timeout > 0) fl_timer_start(&rt->loop, &lp->deadline, so.timeout);
  if (run) return fl_sched_park(L, run, &lp->wait, ud, finish_shell);

  /* Nothing else runs here (script top level, flow body): wait in place. */
  while (!lp->proc.finished) {
    if (fl_cancelling(rt)) {
      on_cancel(&lp->wait);
      return luaL_error(L, "shell: '%s' interrupted", lua_tostring(L, ud - 1));
    }
    if (fl_loop_poll(&rt->loop, -1) < 0)
      return luaL_error(L, "shell: waiting on the event loop failed");
  }
  return finish_shell(L, LUA_OK, ud);
}

int luaopen_flowlua_shell(lua_State *L) {
  static const luaL_Reg meta[] = {{"__gc", proc_gc}, {NULL, NULL}};
  luaL_newmetatable(L, FL_PROC_MT);
  luaL_setfuncs(L, meta, 0);
  lua_pop(L, 1);
  lua_pushcfunction(L, flow_shell);
  return 1;
}
