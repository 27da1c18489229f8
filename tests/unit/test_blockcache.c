/*
 * test_blockcache.c — the small-block cache in front of malloc: a freed
 * block comes back for the next allocation of its size, and only of its
 * size (also one malloc made before the cache saw it), large blocks and
 * blocks past the cap go to free(), resizes keep the bytes, and release
 * empties it. Under AddressSanitizer the cache passes everything through;
 * the checks that need it to keep blocks say so and check the pass-through
 * instead.
 */
#define _GNU_SOURCE /* malloc_usable_size */
#include <malloc.h>
#include <stdlib.h>

#include "blockcache.h"
#include "check.h"

static void *alloc(fl_block_cache *c, size_t n) {
  return fl_block_cache_alloc(c, NULL, 0, n);
}

static void give(fl_block_cache *c, void *p, size_t n) {
  CHECK(fl_block_cache_alloc(c, p, n, 0) == NULL);
}

/* Whether this build's cache keeps blocks (not under AddressSanitizer). */
static int caching(void) {
  fl_block_cache c = FL_BLOCK_CACHE_INIT;
  give(&c, alloc(&c, 32), 32);
  int kept = c.kept > 0;
  fl_block_cache_release(&c);
  return kept;
}

static void test_freed_block_comes_back(void) {
  fl_block_cache c = FL_BLOCK_CACHE_INIT;
  char *p = alloc(&c, 40);
  CHECK(p != NULL);
  memset(p, 'x', 40);
  give(&c, p, 40);
  char *q = alloc(&c, 40);
  CHECK(q != NULL);
  if (caching()) CHECK(q == p); /* LIFO: the block just freed */
  CHECK_EQ_INT(c.kept, 0);      /* taken back out of the list */
  give(&c, q, 40);
  fl_block_cache_release(&c);
  CHECK_EQ_INT(c.kept, 0);
}

/* Every size up to the largest cached one, freed and asked for again in
   an order that mixes the classes: each block holds what was asked. */
static void test_blocks_hold_what_is_asked(void) {
  fl_block_cache c = FL_BLOCK_CACHE_INIT;
  void *held[FL_BLOCK_CACHE_MAX + 1] = {0};
  for (int round = 0; round < 3; round++) {
    for (size_t n = 1; n <= FL_BLOCK_CACHE_MAX; n++) {
      size_t m = round == 1 ? FL_BLOCK_CACHE_MAX + 1 - n : n;
      held[m] = alloc(&c, m);
      CHECK(held[m] != NULL);
      CHECK(malloc_usable_size(held[m]) >= m);
      memset(held[m], (int)m, m);
    }
    for (size_t n = 1; n <= FL_BLOCK_CACHE_MAX; n += 2) give(&c, held[n], n);
    for (size_t n = 2; n <= FL_BLOCK_CACHE_MAX; n += 2) give(&c, held[n], n);
  }
  CHECK(c.kept <= FL_BLOCK_CACHE_KEEP);
  fl_block_cache_release(&c);
  CHECK_EQ_INT(c.kept, 0);
}

/* A block malloc made for 17 bytes, freed through the cache with that
   size, is handed out again for 17 bytes and never for another size. */
static void test_foreign_block_size(void) {
  fl_block_cache c = FL_BLOCK_CACHE_INIT;
  char *foreign = malloc(17);
  CHECK(foreign != NULL);
  give(&c, foreign, 17);
  for (size_t n = 1; n <= FL_BLOCK_CACHE_MAX; n++) {
    if (n == 17) continue;
    void *p = alloc(&c, n);
    CHECK(p != NULL && p != foreign);
    CHECK(malloc_usable_size(p) >= n);
    give(&c, p, n);
  }
  void *again = alloc(&c, 17);
  if (caching()) CHECK(again == foreign);
  CHECK(again != NULL);
  give(&c, again, 17);
  fl_block_cache_release(&c);
}

static void test_large_blocks_are_not_kept(void) {
  fl_block_cache c = FL_BLOCK_CACHE_INIT;
  size_t n = FL_BLOCK_CACHE_MAX + 1;
  void *p = alloc(&c, n);
  CHECK(p != NULL);
  give(&c, p, n);
  CHECK_EQ_INT(c.kept, 0);
  fl_block_cache_release(&c);
}

static void test_cap(void) {
  fl_block_cache c = FL_BLOCK_CACHE_INIT;
  size_t n = FL_BLOCK_CACHE_MAX, count = FL_BLOCK_CACHE_KEEP / n + 1000;
  void **blocks = malloc(count * sizeof *blocks);
  CHECK(blocks != NULL);
  if (!blocks) return;
  for (size_t i = 0; i < count; i++) blocks[i] = alloc(&c, n);
  for (size_t i = 0; i < count; i++) give(&c, blocks[i], n);
  CHECK(c.kept <= FL_BLOCK_CACHE_KEEP);
  if (caching()) CHECK(c.kept > FL_BLOCK_CACHE_KEEP - 2 * n - 64);
  fl_block_cache_release(&c);
  CHECK_EQ_INT(c.kept, 0);
  /* Usable again after a release. */
  void *p = alloc(&c, 24);
  CHECK(p != NULL);
  give(&c, p, 24);
  fl_block_cache_release(&c);
  free(blocks);
}

static void test_resize_keeps_bytes(void) {
  fl_block_cache c = FL_BLOCK_CACHE_INIT;
  char *p = alloc(&c, 20);
  CHECK(p != NULL);
  memcpy(p, "0123456789abcdefghi", 20);
  p = fl_block_cache_alloc(&c, p, 20, 4000); /* small to large */
  CHECK(p != NULL);
  CHECK_EQ_STR(p, "0123456789abcdefghi");
  memset(p + 20, 'z', 3980);
  p = fl_block_cache_alloc(&c, p, 4000, 8); /* a shrink never fails */
  CHECK(p != NULL);
  CHECK(memcmp(p, "01234567", 8) == 0);
  give(&c, p, 8);
  fl_block_cache_release(&c);
}

int main(void) {
  RUN(test_freed_block_comes_back);
  RUN(test_blocks_hold_what_is_asked);
  RUN(test_foreign_block_size);
  RUN(test_large_blocks_are_not_kept);
  RUN(test_cap);
  RUN(test_resize_keeps_bytes);
  return check_summary();
}
