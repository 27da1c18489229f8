/* blockcache.c — freed small blocks kept for reuse; see blockcache.h. */
#include "blockcache.h"

#include <stdlib.h>

#if defined(__SANITIZE_ADDRESS__)
#define PASS_THROUGH 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define PASS_THROUGH 1
#endif
#endif
#ifndef PASS_THROUGH
#define PASS_THROUGH 0
#endif

/* A cached block's first bytes hold the next one of its list. */
typedef struct block {
  struct block *next;
} block;

/* A block freed with its size (what it was made or last resized to, so it
   holds at least that many bytes, whoever made it) goes to the list of
   that size; one too small to hold the link, too large, or past the cap
   to free(). */
static void give_back(fl_block_cache *c, void *ptr, size_t size) {
  if (PASS_THROUGH || size < sizeof(block) || size > FL_BLOCK_CACHE_MAX ||
      c->kept + size > FL_BLOCK_CACHE_KEEP) {
    free(ptr);
    return;
  }
  block *b = ptr;
  b->next = c->head[size];
  c->head[size] = b;
  c->kept += size;
}

static void *take(fl_block_cache *c, size_t size) {
  if (PASS_THROUGH || size > FL_BLOCK_CACHE_MAX) return malloc(size);
  block *b = c->head[size];
  if (!b) return malloc(size);
  c->head[size] = b->next;
  c->kept -= size;
  return b;
}

void *fl_block_cache_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  fl_block_cache *c = ud;
  if (nsize == 0) {
    if (ptr) give_back(c, ptr, osize);
    return NULL;
  }
  if (!ptr) return take(c, nsize);
  /* A resize: any block is malloc's own. Lua relies on a shrink never
     failing; the old block, big enough, is the answer if realloc fails. */
  void *p = realloc(ptr, nsize);
  return p || nsize > osize ? p : ptr;
}

void fl_block_cache_release(fl_block_cache *c) {
  for (size_t k = 0; k <= FL_BLOCK_CACHE_MAX; k++) {
    while (c->head[k]) {
      block *b = c->head[k];
      c->head[k] = b->next;
      free(b);
    }
  }
  c->kept = 0;
}
