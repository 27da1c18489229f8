/*
 * store_batch.c — freezing the buffered changes into a batch that a writer
 * (store_write.c) hands to the database (store_sqlite_write.c), whatever
 * the engine's thread changes meanwhile.
 */
#include <stdlib.h>
#include <string.h>

#include "store_internal.h"

void fl__store_fbatch_free(fbatch *b) {
  if (!b) return;
  free(b->rows);
  free(b->events);
  free(b->puts);
  free(b->ends);
  free(b->fires);
  free(b->begins);
  free(b->claims);
  free(b->workers);
  free(b->logs);
  free(b->trims);
  fl_buf_free(&b->strings);
  free(b);
}

size_t fl__store_fbatch_size(const fbatch *b) {
  return b->n_rows + b->n_events + b->n_puts + b->n_ends + b->n_fires +
         b->n_begins + b->n_claims + b->n_workers + b->n_logs + b->n_trims;
}

/* Copies s (n bytes) and a NUL into b's strings. */
static size_t fb_str(fbatch *b, const char *s, size_t n) {
  size_t off = b->strings.len;
  fl_buf_add(&b->strings, s, n);
  fl_buf_addc(&b->strings, '\0');
  return off;
}

/* Moves everything buffered into a frozen batch (NULL when out of memory,
   the buffer then unchanged). */
fbatch *fl__store_freeze(fl_store *st) {
  fbatch *b = calloc(1, sizeof *b);
  frow *rows = malloc((st->n_touched ? st->n_touched : 1) * sizeof *rows);
  if (!b || !rows) {
    free(b);
    free(rows);
    return NULL;
  }
  b->rows = rows;
  b->seq = st->batch_seq + 1; /* taken below, once nothing can fail */
  b->strings = st->batch; /* results, cached results, event errors */
  size_t keep = b->strings.len;
  for (size_t i = 0; i < st->n_touched; i++) {
    const fl_store_run *run = st->touched[i].run;
    uint32_t n = st->touched[i].task;
    const task_entry *e = &run->tasks[n];
    const char *key = run->names.data + e->key_off;
    const char *task = run->names.data + e->task_off;
    frow *r = &rows[i];
    *r = (frow){.run = run->rowid, .n = n, .n_changes = e->n_changes,
                .started_seq = e->started_seq, .map_index = e->map_index,
                .attempts = e->attempts, .state = e->state,
                .fresh = !e->written,
                .packed = !e->written && store_is_final_state(e->state),
                .was_packed = e->packed,
                .result_kind = e->result_kind ? e->result_kind
                               : e->written   ? -1
                                              : 0,
                .state_at = e->state_at, .started = e->started,
                .ended = e->ended, .err_off = SIZE_MAX, .res_off = SIZE_MAX};
    r->key_off = fb_str(b, key, strlen(key));
    r->task_off = fb_str(b, task, strlen(task));
    if (e->error) r->err_off = fb_str(b, e->error, strlen(e->error));
    if (e->result_kind == FL_STORE_RESULT_JSON) {
      r->res_off = e->result_off;
      r->res_len = e->result_len;
    }
  }
  if (b->strings.oom || fl__store_freeze_logs(st, b)) {
    b->strings.len = keep;
    b->strings.oom = 0;
    st->batch = b->strings;
    free(rows);
    free(b);
    return NULL;
  }
  b->n_rows = st->n_touched;
  for (size_t i = 0; i < st->n_touched; i++) {
    task_entry *e = &st->touched[i].run->tasks[st->touched[i].task];
    e->touched = e->result_kind = 0;
    e->packed |= !e->written && store_is_final_state(e->state);
    e->written = 1; /* its row is in this batch: later ones update it */
    e->result_off = e->result_len = 0;
  }
  st->batch_seq = b->seq;
  b->events = st->events;
  b->n_events = st->n_events;
  b->puts = st->puts;
  b->n_puts = st->n_puts;
  b->ends = st->ends;
  b->n_ends = st->n_ends;
  b->fires = st->fires;
  b->n_fires = st->n_fires;
  st->fires = NULL;
  st->cap_fires = 0;
  st->n_fires = 0;
  b->begins = st->begins;
  b->n_begins = st->n_begins;
  st->begins = NULL;
  st->cap_begins = st->n_begins = 0;
  b->claims = st->claims;
  b->n_claims = st->n_claims;
  st->claims = NULL;
  st->cap_claims = st->n_claims = 0;
  b->workers = st->workers;
  b->n_workers = st->n_workers;
  st->workers = NULL;
  st->cap_workers = st->n_workers = 0;
  st->events = NULL;
  st->puts = NULL;
  st->ends = NULL;
  st->cap_events = st->cap_puts = st->cap_ends = 0;
  st->n_touched = st->n_events = st->n_puts = st->n_ends = 0;
  st->batch = (fl_buf)FL_BUF_INIT;
  if (st->stats) {
    st->n_flushes++;
    st->n_rows += b->n_rows;
    st->n_events_written += b->n_events;
  }
  return b;
}
