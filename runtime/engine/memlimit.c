/* memlimit.c — the counting allocator and the memory limit; see memlimit.h. */
#include "memlimit.h"

#include <stdio.h>

/* What may be used now: the limit, plus the grace while it is open. */
static size_t allowance(const fl_mem *m) {
  return m->limit + (m->grace ? FL_MEM_GRACE : 0);
}

static void count(fl_mem *m, size_t old_size, size_t new_size) {
  m->used = m->used - old_size + new_size;
  if (m->used > m->peak) m->peak = m->used;
}

/*
 * Whether a growth to `after` bytes in total must be refused. Lua answers a
 * refusal with an emergency full collection and one more try of the same
 * allocation. When that collection freed less than a sixteenth of the
 * limit, the heap is nearly all live data, and letting the second try
 * succeed would only repeat a full collection at almost every allocation
 * until the limit is reached for good — seconds of work for nothing. So
 * the second try fails then too: in effect, live data may fill fifteen
 * sixteenths of the limit.
 */
static int refuse(fl_mem *m, void *ptr, size_t nsize, size_t after) {
  int second_try = m->retry_pending && ptr == m->refused_ptr &&
                   nsize == m->refused_size;
  m->retry_pending = 0;
  if (second_try && m->used + allowance(m) / 16 > m->used_at_refusal)
    return 1;
  if (after <= allowance(m)) return 0;
  m->retry_pending = 1;
  m->refused_ptr = ptr;
  m->refused_size = nsize;
  m->used_at_refusal = m->used;
  return 1;
}

/*
 * The lua_Alloc contract: ptr NULL means a new block (osize then tells the
 * kind of object, not a size); nsize 0 frees. Lua assumes that shrinking
 * never fails, so only growth is refused.
 */
static void *counting_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  fl_mem *m = ud;
  size_t old_size = ptr ? osize : 0;
  if (m->limit && nsize > old_size &&
      refuse(m, ptr, nsize, m->used - old_size + nsize)) {
    m->hit = 1;
    return NULL;
  }
  void *p = fl_block_cache_alloc(&m->cache, ptr, osize, nsize);
  if (p || nsize == 0) count(m, old_size, nsize);
  return p;
}

int fl_mem_install(fl_mem *m, lua_State *L, size_t limit) {
  size_t now = (size_t)lua_gc(L, LUA_GCCOUNT) * 1024 +
               (size_t)lua_gc(L, LUA_GCCOUNTB);
  if (limit && now > limit) return -1;
  m->cache = (fl_block_cache)FL_BLOCK_CACHE_INIT;
  m->used = m->peak = now;
  m->limit = limit;
  m->grace = 0;
  m->hit = 0;
  m->retry_pending = 0;
  lua_setallocf(L, counting_alloc, m);
  return 0;
}

void fl_mem_release(fl_mem *m) { fl_block_cache_release(&m->cache); }

int fl_mem_charge(fl_mem *m, size_t bytes) {
  if (m->limit && (bytes > allowance(m) || m->used > allowance(m) - bytes)) {
    m->hit = 1;
    return -1;
  }
  count(m, 0, bytes);
  return 0;
}

void fl_mem_uncharge(fl_mem *m, size_t bytes) {
  m->used = bytes < m->used ? m->used - bytes : 0;
}

void fl_mem_grace(fl_mem *m, int open) { m->grace = open != 0; }

int fl_mem_take_hit(fl_mem *m) {
  int hit = m->hit;
  m->hit = 0;
  return hit;
}

const char *fl_mem_format(size_t bytes, char *buf, size_t len) {
  static const char *const units[] = {"KiB", "MiB", "GiB", "TiB"};
  if (bytes < 1024) {
    snprintf(buf, len, "%zu bytes", bytes);
    return buf;
  }
  double v = (double)bytes / 1024;
  int u = 0;
  while (v >= 1024 && u < 3) v /= 1024, u++;
  /* Whole numbers as such ("256 MiB"); others with one decimal. */
  if (v == (double)(size_t)v)
    snprintf(buf, len, "%zu %s", (size_t)v, units[u]);
  else
    snprintf(buf, len, "%.1f %s", v, units[u]);
  return buf;
}
