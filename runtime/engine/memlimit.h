/*
 * memlimit.h — the runtime's memory limit: a counting lua_Alloc in front of
 * malloc (through a cache of freed small blocks, blockcache.h), and a
 * charge for the scheduler's large C arrays.
 *
 * One fl_mem per runtime (per lua_State); no global state, no locking: a
 * runtime is driven by one thread at a time. What it counts is the Lua heap
 * (every table, string, closure and coroutine of the scripts and of the
 * engine) and the arrays the scheduler sizes by the number of task runs.
 * It does not see SQLite's page cache, libcurl's buffers or other C
 * libraries' memory: those allocators are process-wide (docs/manual/limits.md).
 *
 * Past the limit an allocation fails, and Lua raises its "not enough
 * memory" error after one emergency collection. The runtime then opens a
 * small grace allowance while it turns that into a failed task (message,
 * traceback, log, history), so that reporting a failure never fails itself.
 */
#ifndef FL_MEMLIMIT_H
#define FL_MEMLIMIT_H

#include <stddef.h>
#include <stdint.h>

#include <lua.h>

#include "blockcache.h"

/* The smallest limit accepted. An empty runtime's Lua heap is some 32 KiB,
   but a limit below a MiB is far more likely a slip ("512" for 512 MiB)
   than a plan. */
#define FL_MEM_MIN_LIMIT ((size_t)1 << 20)
/* What the runtime may use beyond the limit while it reports a task that
   reached it (fl_mem_grace). */
#define FL_MEM_GRACE ((size_t)1 << 20)

typedef struct fl_mem {
  fl_block_cache cache; /* what the counted blocks come from */
  size_t used;    /* bytes counted: the Lua heap plus charges */
  size_t peak;    /* the most `used` has been */
  size_t limit;   /* 0: no limit */
  uint8_t grace;  /* fl_mem_grace is open */
  uint8_t hit;    /* an allocation was refused for the limit */
  /* The last refusal, to know Lua's second try after its emergency
     collection (memlimit.c). */
  uint8_t retry_pending;
  void *refused_ptr;
  size_t refused_size, used_at_refusal;
} fl_mem;

/*
 * Makes the counting allocator L's, starting from what L holds now, with
 * the given limit (0: none). Its blocks come from malloc through m's block
 * cache (blockcache.h), so L must have been made by luaL_newstate (whose
 * blocks are malloc's). m must outlive L; fl_mem_release after lua_close.
 * Returns 0, or -1 when L already uses more than the limit (nothing is
 * changed then).
 */
int fl_mem_install(fl_mem *m, lua_State *L, size_t limit);

/* Frees the blocks m's cache kept: after lua_close of its state. */
void fl_mem_release(fl_mem *m);

/*
 * Charges `bytes` of C memory to the count: 0, or -1 (nothing charged, hit
 * set) when that would pass the limit. Every charge is given back with
 * fl_mem_uncharge when the memory is freed.
 */
int fl_mem_charge(fl_mem *m, size_t bytes);
void fl_mem_uncharge(fl_mem *m, size_t bytes);

/* Opens (1) or closes (0) the grace allowance of FL_MEM_GRACE bytes. */
void fl_mem_grace(fl_mem *m, int open);

/* Whether a refusal for the limit happened since the flag was last cleared
   (and clears it). */
int fl_mem_take_hit(fl_mem *m);

/* Writes a size for people into buf: "256 MiB", "1.5 GiB", "900 KiB",
   "512 bytes". Returns buf. */
const char *fl_mem_format(size_t bytes, char *buf, size_t len);

#endif
