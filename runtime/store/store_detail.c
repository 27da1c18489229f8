/*
 * store_detail.c — a loaded run (fl_store_run_detail) as both backends'
 * readers build it: its private layout (fl__store_detail), the index by
 * key that fl_store_detail_find searches, the counts of a run that has no
 * recorded ones, and freeing it.
 *
 * A leaf of the store: store_read.c and pg_read.c fill a detail, this file
 * knows nothing of either database.
 */
#include "store_internal.h"

#include <stdlib.h>
#include <string.h>

fl__store_detail *fl__store_detail_new(void) {
  fl__store_detail *x = calloc(1, sizeof *x);
  if (!x || !(x->arena = fl__store_arena_new())) {
    free(x);
    return NULL;
  }
  return x;
}

void fl_store_run_detail_free(fl_store_run_detail *d) {
  if (!d) return;
  fl_store_run_detail_free(d->resumed);
  fl__store_detail *x = (fl__store_detail *)d;
  free(x->by_key);
  free(x->numbers);
  free(x->graph);
  free(x->edges);
  free(x->pub.tasks);
  free(x->pub.subflows);
  fl__store_arena_free(x->arena);
  free(x);
}

int fl__store_detail_add_subflow(fl__store_detail *x, const char *task,
                                 size_t task_len, const char *run_id,
                                 size_t run_id_len, int state) {
  if (x->pub.n_subflows == x->cap_subflows) {
    size_t cap = x->cap_subflows ? 2 * x->cap_subflows : 4;
    fl_store_subflow *grown = realloc(x->pub.subflows, cap * sizeof *grown);
    if (!grown) return -1;
    x->pub.subflows = grown;
    x->cap_subflows = cap;
  }
  const char *t = fl__store_arena_dup(x->arena, task ? task : "",
                                      task ? task_len : 0);
  const char *id = fl__store_arena_dup(x->arena, run_id ? run_id : "",
                                       run_id ? run_id_len : 0);
  if (!t || !id) return -1;
  x->pub.subflows[x->pub.n_subflows++] = (fl_store_subflow){t, id, state};
  return 0;
}

static int cmp_key_index(const void *a, const void *b) {
  return strcmp(((const fl__store_key_index *)a)->key,
                ((const fl__store_key_index *)b)->key);
}

int fl__store_detail_index(fl__store_detail *x) {
  fl_store_run_detail *d = &x->pub;
  if (!d->n_tasks) return 0;
  if (!(x->by_key = malloc(d->n_tasks * sizeof *x->by_key))) return -1;
  for (size_t i = 0; i < d->n_tasks; i++)
    x->by_key[i] = (fl__store_key_index){d->tasks[i].key, (uint32_t)i};
  qsort(x->by_key, d->n_tasks, sizeof *x->by_key, cmp_key_index);
  return 0;
}

const fl_store_task_row *fl_store_detail_find(const fl_store_run_detail *d,
                                              const char *key) {
  const fl__store_detail *x = (const fl__store_detail *)d;
  if (!x->by_key) return NULL;
  fl__store_key_index want = {key, 0};
  const fl__store_key_index *k = bsearch(&want, x->by_key, d->n_tasks,
                                         sizeof *x->by_key, cmp_key_index);
  return k ? &d->tasks[k->i] : NULL;
}

/* The counts from the task runs just loaded rather than by a second pass
   over task_run, by FL_STORE_COUNT_TASK_RUNS_SQL's rule. */
int fl__store_detail_count(fl__store_detail *x) {
  fl_store_run_detail *d = &x->pub;
  uint8_t *group = calloc(d->n_tasks ? d->n_tasks : 1, 1);
  if (!group) return -1;
  fl_buf parent = FL_BUF_INIT;
  for (size_t i = 0; i < d->n_tasks; i++) {
    const fl_store_task_row *t = &d->tasks[i];
    const char *open = t->map_index > 0 ? strrchr(t->key, '[') : NULL;
    if (!open) continue;
    fl_buf_reset(&parent);
    fl_buf_add(&parent, t->key, (size_t)(open - t->key));
    const fl_store_task_row *p = fl_store_detail_find(d, fl_buf_str(&parent));
    if (p && p->map_index == 0) group[p - d->tasks] = 1;
  }
  int oom = parent.oom;
  fl_buf_free(&parent);
  for (size_t i = 0; !oom && i < d->n_tasks; i++) {
    if (group[i]) continue;
    d->run.n_tasks++;
    if (d->tasks[i].state >= 0) d->run.by_state[d->tasks[i].state]++;
  }
  free(group);
  return oom ? -1 : 0;
}

int fl__store_cmp_task_number(const void *a, const void *b) {
  int64_t x = ((const fl__store_task_number *)a)->n;
  int64_t y = ((const fl__store_task_number *)b)->n;
  return (x > y) - (x < y);
}

int fl__store_cmp_attempt(const void *a, const void *b) {
  const fl_store_attempt *x = a, *y = b;
  if (x->task != y->task) return x->task < y->task ? -1 : 1;
  return (x->attempt > y->attempt) - (x->attempt < y->attempt);
}
