/*
 * handle.c — what every part of the engine asks of the runtime handle: to
 * hold an error message, a random number, the loaded script's flows, and
 * whether a run the host drives is going.
 *
 * A leaf of the engine: it calls nothing above it (graph, sched, record),
 * so that all of them may call it.
 */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lua.h>

#include "engine.h"

/* ---- errors and randomness ----------------------------------------------- */

void fl_set_error(flowlua *rt, const char *fmt, ...) {
  fl_buf msg = FL_BUF_INIT;
  va_list ap;
  va_start(ap, fmt);
  fl_buf_addvf(&msg, fmt, ap);
  va_end(ap);
  fl_buf_free(&rt->err);
  rt->err = (fl_buf)FL_BUF_INIT;
  fl_log_mask(&rt->log, fl_buf_str(&msg), &rt->err); /* no secret leaks out */
  fl_buf_free(&msg);
}

/* After a call that failed for memory (LUA_ERRMEM): when it was the memory
   limit that refused, the message names the limit and what was going on. */
void fl_name_memory_limit(flowlua *rt, const char *doing) {
  if (!fl_mem_take_hit(&rt->mem) || !rt->mem.limit) return;
  char size[32];
  fl_buf msg = FL_BUF_INIT;
  fl_buf_addf(&msg, "memory limit of %s reached %s: %s",
              fl_mem_format(rt->mem.limit, size, sizeof size), doing,
              fl_buf_str(&rt->err));
  fl_set_error(rt, "%s", fl_buf_str(&msg));
  fl_buf_free(&msg);
}

/* xorshift64*: jitter and run ids need spread, not secrecy. */
uint64_t fl_random_u64(flowlua *rt) {
  uint64_t x = rt->rng;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  rt->rng = x;
  return x * 0x2545F4914F6CDD1DULL;
}

double fl_random(flowlua *rt) {
  return (double)(fl_random_u64(rt) >> 11) * 0x1.0p-53;
}

uint64_t fl_seed_random(void) {
  uint64_t seed = 0;
  if (getrandom(&seed, sizeof seed, GRND_NONBLOCK) != (ssize_t)sizeof seed) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    seed = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 20) ^
           ((uint64_t)getpid() << 40);
  }
  return seed ? seed : 0x9E3779B97F4A7C15ULL;
}

/* ---- the loaded flows --------------------------------------------------- */

/* The name of the loaded script's flow i (from 0), or NULL. */
const char *fl_flow_name(const flowlua *rt, size_t i) {
  if (i >= rt->n_flows) return NULL;
  lua_State *L = rt->L;
  lua_rawgeti(L, LUA_REGISTRYINDEX, rt->flows_ref);
  lua_rawgeti(L, -1, (lua_Integer)i + 1);
  fl_flowdef *f = lua_touserdata(L, -1);
  lua_pop(L, 2); /* the userdata stays referenced by the list */
  return f ? f->name : NULL;
}

const char *fl_script_sha256(flowlua *rt) { return rt->script_sha256; }

int fl_push_weak_table(lua_State *L, const void *key) {
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, key) == LUA_TTABLE) return 0;
  lua_pop(L, 1);
  lua_newtable(L);
  lua_newtable(L);
  lua_pushliteral(L, "k");
  lua_setfield(L, -2, "__mode");
  lua_setmetatable(L, -2);
  lua_pushvalue(L, -1);
  lua_rawsetp(L, LUA_REGISTRYINDEX, key);
  return 1;
}

/* Pushes the flow called name (NULL: the only one); FLOWLUA_ENOFLOW if none. */
int fl_push_flow(flowlua *rt, const char *name) {
  lua_State *L = rt->L;
  if (rt->flows_ref == LUA_NOREF) {
    fl_set_error(rt, "no script loaded");
    return FLOWLUA_ESTATE;
  }
  if (!name && rt->n_flows > 1) {
    fl_buf names = FL_BUF_INIT;
    for (size_t i = 0; i < rt->n_flows; i++)
      fl_buf_addf(&names, "%s'%s'", i ? ", " : "", fl_flow_name(rt, i));
    fl_set_error(rt,
                 "%s defines %zu flows (%s): choose one by name (--flow NAME)",
                 rt->script_name, rt->n_flows, fl_buf_str(&names));
    fl_buf_free(&names);
    return FLOWLUA_ENOFLOW;
  }
  for (size_t i = 0; i < rt->n_flows; i++) {
    if (name && strcmp(fl_flow_name(rt, i), name) != 0) continue;
    lua_rawgeti(L, LUA_REGISTRYINDEX, rt->flows_ref);
    lua_rawgeti(L, -1, (lua_Integer)i + 1);
    lua_remove(L, -2);
    return FLOWLUA_OK;
  }
  fl_buf names = FL_BUF_INIT;
  for (size_t i = 0; i < rt->n_flows; i++)
    fl_buf_addf(&names, "%s'%s'", i ? ", " : "", fl_flow_name(rt, i));
  fl_set_error(rt, "%s has no flow named '%s' (it defines %s)",
               rt->script_name, name, fl_buf_str(&names));
  fl_buf_free(&names);
  return FLOWLUA_ENOFLOW;
}

/* ---- public calls -------------------------------------------------------- */

/* A host function or callback runs inside a public call (flowlua_run,
   flowlua_step, flowlua_load_file...). A call from there that changes the
   runtime — loads a script, builds a graph, starts a run — would replace
   what the outer call is using (the outer run ended "Scheduled" with no
   tasks): such calls are refused. */
int fl_api_reentered(flowlua *rt, const char *who) {
  if (rt->busy == 0) return 0;
  fl_set_error(rt, "%s called from inside %s of the same runtime (from a "
                   "host function or callback): not allowed until that "
                   "call returns; flowlua_stop and flowlua_cancel are",
               who, rt->busy_doing ? rt->busy_doing : FL_API_RUN);
  return 1;
}

/* Counted, for fl_api_leave (engine.c). */
int fl_api_enter(flowlua *rt, const char *who, const char *doing) {
  if (fl_api_reentered(rt, who)) return FLOWLUA_ESTATE;
  rt->busy_doing = doing;
  rt->busy++;
  return FLOWLUA_OK;
}

/* flowlua_run, _resume and _serve wait on the loop themselves: not while
   the host drives a started run (hostloop.c). */
int fl_host_run_going(flowlua *rt, const char *who) {
  if (!rt->sched || !rt->sched->active) return 0;
  fl_set_error(rt, "%s: a run started with flowlua_start is going; step it "
                   "to its end first",
               who);
  return 1;
}
