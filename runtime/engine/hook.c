/*
 * hook.c — the interrupt hook, which a script cannot remove.
 *
 * Timeouts and cancels reach a task busy in Lua code through a count hook
 * (fl_interrupt_hook). Lua has one hook per thread, and the
 * debug library's debug.sethook replaces it: a task that called
 * debug.sethook() (or set a hook of its own) ran past its timeout and
 * could not be cancelled. So debug.sethook and debug.gethook are replaced,
 * in the state's debug table, by functions that keep flowlua's hook and
 * chain the script's to it: the script's hook is called for the events it
 * asked for, with the arguments Lua's debug.sethook gives it, and
 * debug.gethook returns it; flowlua's count check runs first, always.
 *
 * A script's count hook ("", n) with n at most FL_HOOK_COUNT is called
 * every n instructions; a larger n is rounded up to a multiple of
 * FL_HOOK_COUNT. The originals are not kept anywhere a script could reach
 * (not even as upvalues: debug.getupvalue reads those).
 */
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

#include "engine.h"

/* ---- interrupting busy Lua code ----------------------------------------- */

/* A worker's job: its deadline, then what the worker's check says (a
   CANCEL from the driver, or the driver gone). The job's own coroutine
   yields, as a task's does, so that its pcall cannot swallow the stop. */
static void interrupt_job(lua_State *L, flowlua *rt, fl_job *j) {
  if (!j->interrupt && j->deadline_at > 0 && fl_now() >= j->deadline_at)
    j->interrupt = FL_INT_TIMEOUT;
  if (!j->interrupt) j->check(j);
  if (!j->interrupt && fl_cancelling(rt)) j->interrupt = FL_INT_CANCEL;
  if (!j->interrupt) return;
  if (L == j->co && lua_isyieldable(L)) {
    lua_yield(L, 0);
    return;
  }
  luaL_error(L, j->interrupt == FL_INT_CANCEL
                    ? "interrupted: cancelled by the driver"
                    : "interrupted: the task timed out");
}

void fl_interrupt_hook(lua_State *L, lua_Debug *ar) {
  (void)ar;
  flowlua *rt = fl_rt(L);
  fl_taskrun *r = rt->current;
  if (!r && rt->job) {
    interrupt_job(L, rt, rt->job);
    return;
  }
  int why = fl_cancelling(rt)                                    ? FL_INT_CANCEL
            : r && r->deadline_at > 0 && fl_now() >= r->deadline_at ? FL_INT_TIMEOUT
                                                                 : FL_INT_NONE;
  if (why == FL_INT_NONE) return;
  if (r) {
    r->interrupt = (uint8_t)why;
    /* A yield from a hook cannot be caught by the task's own pcall. */
    if (L == r->co && lua_isyieldable(L)) {
      lua_yield(L, 0);
      return;
    }
  }
  /* Not yieldable here (inside a C call such as table.sort): raise, and
     raise again at the next count if a pcall swallows it. */
  luaL_error(L, why == FL_INT_CANCEL ? "interrupted: the run was cancelled"
                                     : "interrupted: the task timed out");
}

/* ---- the script's hooks, chained ----------------------------------------- */

/* Registry: weak-keyed table thread -> { fn, mask, count, every, ticks }. */
static const char user_hooks_key = 0;

static const char *const event_names[] = {"call", "return", "line", "count",
                                          "tail call"};

/* Pushes the script's hook record for L's thread, or nil; returns its type. */
static int push_user_hook(lua_State *L, lua_State *thread) {
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &user_hooks_key) != LUA_TTABLE) {
    lua_pop(L, 1);
    lua_pushnil(L);
    return LUA_TNIL;
  }
  lua_pushthread(thread);
  if (thread != L) lua_xmove(thread, L, 1);
  int t = lua_rawget(L, -2);
  lua_remove(L, -2);
  return t;
}

/* Whether the script's count hook is due at this tick (its count may be a
   multiple of flowlua's). The record is on top of L. */
static int count_due(lua_State *L) {
  lua_getfield(L, -1, "every");
  lua_Integer every = lua_tointeger(L, -1);
  lua_getfield(L, -2, "ticks");
  lua_Integer ticks = lua_tointeger(L, -1) + 1;
  lua_pop(L, 2);
  if (every <= 0) return 0;
  if (ticks >= every) ticks = 0;
  lua_pushinteger(L, ticks);
  lua_setfield(L, -2, "ticks");
  return ticks == 0;
}

/* flowlua's check first (it may yield or raise, ending here), then the
   script's hook for the events it asked for. */
static void chained_hook(lua_State *L, lua_Debug *ar) {
  /* Lua calls the line hook right after a count hook that yielded: the
     task is being interrupted, and nothing may run on it now. */
  if (lua_status(L) == LUA_YIELD) return;
  /* Checked at line events too: the instructions of the script's own hook
     count down the same counter, with hooks off, so a line hook would
     starve the count hook. (Call and return hooks cannot yield.) */
  if (ar->event == LUA_HOOKCOUNT || ar->event == LUA_HOOKLINE) {
    fl_interrupt_hook(L, ar);
    if (lua_status(L) == LUA_YIELD) return; /* interrupted: nothing more */
  }
  if (push_user_hook(L, L) != LUA_TTABLE) {
    lua_pop(L, 1);
    return;
  }
  if (ar->event == LUA_HOOKCOUNT && !count_due(L)) {
    lua_pop(L, 1);
    return;
  }
  lua_getfield(L, -1, "fn");
  lua_remove(L, -2);
  lua_pushstring(L, event_names[ar->event]);
  if (ar->currentline >= 0)
    lua_pushinteger(L, ar->currentline);
  else
    lua_pushnil(L);
  lua_getinfo(L, "lS", ar);
  lua_call(L, 2, 0);
}

/* The thread argument of debug.sethook/gethook: *arg is 1 when given. */
static lua_State *thread_arg(lua_State *L, int *arg) {
  if (lua_isthread(L, 1)) {
    *arg = 1;
    return lua_tothread(L, 1);
  }
  *arg = 0;
  return L;
}

static int mask_of(const char *smask) {
  int mask = 0;
  if (strchr(smask, 'c')) mask |= LUA_MASKCALL;
  if (strchr(smask, 'r')) mask |= LUA_MASKRET;
  if (strchr(smask, 'l')) mask |= LUA_MASKLINE;
  return mask;
}

/* debug.sethook([thread,] hook, mask [, count]) and debug.sethook([thread]):
   as Lua's, but flowlua's count hook stays. */
static int guarded_sethook(lua_State *L) {
  int arg;
  lua_State *thread = thread_arg(L, &arg);
  int remove = lua_isnoneornil(L, arg + 1);
  const char *smask = remove ? "" : luaL_checkstring(L, arg + 2);
  if (!remove) luaL_checktype(L, arg + 1, LUA_TFUNCTION);
  lua_Integer count = remove ? 0 : luaL_optinteger(L, arg + 3, 0);
  fl_push_weak_table(L, &user_hooks_key);
  int hooks = lua_gettop(L);
  lua_pushthread(thread);
  if (thread != L) lua_xmove(thread, L, 1);
  if (remove) {
    lua_pushnil(L);
    lua_rawset(L, hooks);
    lua_sethook(thread, fl_interrupt_hook, LUA_MASKCOUNT, FL_HOOK_COUNT);
    return 0;
  }
  int step = count > 0 && count < FL_HOOK_COUNT ? (int)count : FL_HOOK_COUNT;
  lua_createtable(L, 0, 5);
  lua_pushvalue(L, arg + 1);
  lua_setfield(L, -2, "fn");
  lua_pushstring(L, smask);
  lua_setfield(L, -2, "mask");
  lua_pushinteger(L, count > 0 ? count : 0);
  lua_setfield(L, -2, "count");
  lua_pushinteger(L, count > 0 ? (count + step - 1) / step : 0);
  lua_setfield(L, -2, "every");
  lua_pushinteger(L, 0);
  lua_setfield(L, -2, "ticks");
  lua_rawset(L, hooks);
  lua_sethook(thread, chained_hook, mask_of(smask) | LUA_MASKCOUNT, step);
  return 0;
}

/* debug.gethook([thread]): the script's own hook, mask and count, or fail
   when it set none (flowlua's is not the script's business). */
static int guarded_gethook(lua_State *L) {
  int arg;
  lua_State *thread = thread_arg(L, &arg);
  if (push_user_hook(L, thread) != LUA_TTABLE) {
    luaL_pushfail(L);
    return 1;
  }
  int rec = lua_gettop(L);
  lua_getfield(L, rec, "fn");
  lua_getfield(L, rec, "mask");
  lua_getfield(L, rec, "count");
  return 3;
}

void fl_hook_install(lua_State *L) {
  if (lua_getglobal(L, "debug") == LUA_TTABLE) {
    lua_pushcfunction(L, guarded_sethook);
    lua_setfield(L, -2, "sethook");
    lua_pushcfunction(L, guarded_gethook);
    lua_setfield(L, -2, "gethook");
  }
  lua_pop(L, 1);
  lua_sethook(L, fl_interrupt_hook, LUA_MASKCOUNT, FL_HOOK_COUNT);
}

void fl_hook_reset(lua_State *co) {
  if (lua_gethook(co) == fl_interrupt_hook) return;
  lua_State *L = co; /* the record is dropped with the thread's own key */
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &user_hooks_key) == LUA_TTABLE) {
    lua_pushthread(L);
    lua_pushnil(L);
    lua_rawset(L, -3);
  }
  lua_pop(L, 1);
  lua_sethook(co, fl_interrupt_hook, LUA_MASKCOUNT, FL_HOOK_COUNT);
}
