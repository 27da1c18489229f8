/*
 * blockcache.h — freed small blocks kept for reuse, in front of malloc.
 *
 * A Lua heap is mostly small objects (strings, tables, closures) made and
 * dropped in great numbers, and its collector frees them in bursts of
 * thousands. glibc's per-thread cache keeps at most 7 freed blocks of a
 * size; the rest of a burst goes through its slower bins and comes back
 * out of them one by one, which cost a quarter of the time of streaming a
 * CSV file (docs/performance.md, "Issue 22"). A cache keeps every freed
 * block of up to FL_BLOCK_CACHE_MAX bytes in a LIFO list per size, and
 * hands it out again for the next allocation of that very size. Lua frees
 * a block with the size it asked for it, so a list per size needs no
 * header and no question to malloc, and a Lua heap's small objects come
 * in few sizes (a table, an array of three values, strings of similar
 * lengths).
 *
 * Every block is an ordinary malloc block: the cache only delays free()
 * (so realloc() and free() of any block stay valid, one made before the
 * cache was installed too: it holds the size Lua frees it with). The
 * trade-off is that up to FL_BLOCK_CACHE_KEEP bytes of freed blocks stay
 * with their heap until fl_block_cache_release; beyond that, frees go
 * straight to free().
 *
 * One cache per Lua state, used by the one thread that drives that state:
 * no locking. Under AddressSanitizer the cache passes every call through,
 * so that a use after free is still caught.
 */
#ifndef FL_BLOCKCACHE_H
#define FL_BLOCKCACHE_H

#include <stddef.h>

/* Blocks of at most this many bytes are cached. */
#define FL_BLOCK_CACHE_MAX 256
/* The most the lists hold, in bytes. */
#define FL_BLOCK_CACHE_KEEP ((size_t)16 << 20)

typedef struct fl_block_cache {
  void *head[FL_BLOCK_CACHE_MAX + 1]; /* head[n]: freed blocks of n bytes */
  size_t kept;                        /* bytes in the lists */
} fl_block_cache;

#define FL_BLOCK_CACHE_INIT {{0}, 0}

/*
 * The lua_Alloc contract, with ud a fl_block_cache *: ptr NULL makes a
 * block of nsize bytes (osize is then a kind, ignored); nsize 0 frees ptr
 * (NULL: nothing), returning NULL; otherwise resizes ptr to nsize bytes.
 * NULL when out of memory (never for a free or a shrink).
 */
void *fl_block_cache_alloc(void *ud, void *ptr, size_t osize, size_t nsize);

/* Frees every block the cache holds; the cache stays usable. */
void fl_block_cache_release(fl_block_cache *c);

#endif
