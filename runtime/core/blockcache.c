/* blockcache.c — freed small blocks kept for reuse; see blockcache.h. */
#define _GNU_SOURCE /* malloc_usable_size */
#include "blockcache.h"

#include <malloc.h>
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

#define CLASSES (FL_BLOCK_CACHE_MAX / 16 + 1)

/* A cached block's first bytes hold the next one of its list. */
typedef struct block {
  struct block *next;
} block;

static void give_back(fl_block_cache *c, void *ptr) {
  /* The class is what the block holds (malloc's usable size, at least what
     was asked for), rounded down: every block of list k holds >= 16k bytes,
     whoever made it, so a block made before the cache was installed is as
     good as one made by it. */
  size_t k = malloc_usable_size(ptr) / 16;
  if (PASS_THROUGH || k == 0 || k >= CLASSES ||
      c->kept + k * 16 > FL_BLOCK_CACHE_KEEP) {
    free(ptr);
    return;
  }
  block *b = ptr;
  b->next = c->head[k];
  c->head[k] = b;
  c->kept += k * 16;
}

static void *take(fl_block_cache *c, size_t nsize) {
  size_t k = (nsize + 15) / 16; /* the smallest class that holds nsize */
  if (PASS_THROUGH || k >= CLASSES) return malloc(nsize);
  block *b = c->head[k];
  if (!b) return malloc(k * 16); /* a full class's size, to be reusable */
  c->head[k] = b->next;
  c->kept -= k * 16;
  return b;
}

void *fl_block_cache_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  fl_block_cache *c = ud;
  if (nsize == 0) {
    if (ptr) give_back(c, ptr);
    return NULL;
  }
  if (!ptr) return take(c, nsize);
  /* A resize: any block is malloc's own. Lua relies on a shrink never
     failing; the old block, big enough, is the answer if realloc fails. */
  void *p = realloc(ptr, nsize);
  return p || nsize > osize ? p : ptr;
}

void fl_block_cache_release(fl_block_cache *c) {
  for (size_t k = 0; k < CLASSES; k++) {
    while (c->head[k]) {
      block *b = c->head[k];
      c->head[k] = b->next;
      free(b);
    }
  }
  c->kept = 0;
}
