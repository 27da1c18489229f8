/*
 * store_arena.c — the strings of what the readers hand back (lists, a
 * run's detail, attempts), in blocks that never move and are freed at
 * once: one allocation per 64 KiB instead of one per string. The fast path,
 * fl__store_arena_dup, is inline in store_internal.h.
 *
 * A leaf of the store: shared by store_read.c and pg_read.c.
 */
#include "store_internal.h"

#include <stdlib.h>

#define BLOCK_SIZE 65536

struct fl_store_arena *fl__store_arena_new(void) {
  return calloc(1, sizeof(struct fl_store_arena));
}

void fl__store_arena_free(struct fl_store_arena *a) {
  if (!a) return;
  while (a->head) {
    fl__store_arena_block *next = a->head->next;
    free(a->head);
    a->head = next;
  }
  free(a);
}

char *fl__store_arena_alloc(struct fl_store_arena *a, size_t size) {
  fl__store_arena_block *b = a->head;
  size_t cap = size > BLOCK_SIZE ? size : BLOCK_SIZE;
  fl__store_arena_block *nb = malloc(sizeof *nb + cap);
  if (!nb) return NULL;
  nb->used = size;
  nb->cap = cap;
  /* A big string gets a block of its own, behind the current one, so the
     current block's free space is not wasted. */
  if (b && cap > BLOCK_SIZE) {
    nb->next = b->next;
    b->next = nb;
  } else {
    nb->next = b;
    a->head = nb;
  }
  return nb->data;
}
