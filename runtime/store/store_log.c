/*
 * store_log.c — a task run's log lines on their way to the history:
 * recorded (fl_store_task_log), bounded as they come (the last
 * FL_STORE_LOG_LINES lines, at most FL_STORE_LOG_BYTES bytes of text),
 * buffered, and frozen into a batch with the trims that tell the writers
 * which older lines to delete (store_sqlite_write.c, pg_write.c).
 *
 * The bounds are kept here, in memory, from the lengths of the kept lines
 * (task_logs), so that neither recording nor writing ever reads the file
 * back. Lines pushed out before a flush never reach a batch, and the
 * buffer purges them once they outnumber the live ones, so a task logging
 * in a tight loop holds the bound's memory, not its output.
 *
 * What it must not do: write the journal (store.c does, as for every
 * change), decide anything about masking (the engine masks before it
 * records), or cost a task run that never logs anything but a NULL
 * pointer.
 */
#include <stdlib.h>
#include <string.h>

#include "store_internal.h"

/* Buffered lines below which the buffer is never purged of dropped ones. */
#define LOG_COMPACT_MIN 4096

static task_logs *logs_of(task_entry *e) {
  if (e->logs) return e->logs;
  e->logs = calloc(1, sizeof *e->logs);
  if (e->logs) e->logs->next_seq = 1;
  return e->logs;
}

/* Room for one more length in l's ring (which never holds more than
   FL_STORE_LOG_LINES + 1). 0, or -1 when out of memory. */
static int ring_room(task_logs *l) {
  if (l->count < l->cap) return 0;
  uint32_t cap = l->cap ? l->cap * 2 : 8;
  if (cap > FL_STORE_LOG_LINES + 1) cap = FL_STORE_LOG_LINES + 1;
  uint32_t *len = malloc(cap * sizeof *len);
  if (!len) return -1;
  /* Unrolled from head, so the ring starts at 0 again. */
  for (uint32_t i = 0; i < l->count; i++)
    len[i] = l->len[(l->head + i) % l->cap];
  free(l->len);
  l->len = len;
  l->cap = cap;
  l->head = 0;
  return 0;
}

/* Drops the oldest kept lines while the bounds are exceeded. */
static void enforce_bounds(task_logs *l) {
  while (l->count > FL_STORE_LOG_LINES ||
         (l->count > 0 && l->kept_bytes > FL_STORE_LOG_BYTES)) {
    uint32_t n = l->len[l->head];
    l->head = (l->head + 1) % l->cap;
    l->count--;
    l->kept_bytes -= n;
    l->dropped_lines++;
    l->dropped_bytes += n;
  }
}

/* Removes the buffered lines their task runs no longer keep, and their
   text: what keeps a task logging in a loop between two flushes within
   the bound's memory. */
static void compact(fl_store *st) {
  fl_buf text = FL_BUF_INIT;
  size_t k = 0;
  for (size_t i = 0; i < st->n_logs; i++) {
    pending_log pl = st->logs[i];
    const task_logs *l = pl.run->tasks[pl.task].logs;
    if (pl.seq < task_logs_first(l)) continue;
    size_t off = text.len;
    fl_buf_add(&text, st->log_text.data + pl.text_off, pl.text_len);
    pl.text_off = off;
    st->logs[k++] = pl;
  }
  if (text.oom) { /* keeps the buffer as it was: compacting is optional */
    fl_buf_free(&text);
    return;
  }
  fl_buf_free(&st->log_text);
  st->log_text = text;
  st->n_logs = k;
  st->log_compact = 2 * k > LOG_COMPACT_MIN ? 2 * k : LOG_COMPACT_MIN;
}

int fl__store_log_buffer(fl_store_run *run, uint32_t task, int attempt,
                         int level, double at, const char *text, size_t len,
                         j_log *jl) {
  fl_store *st = run->st;
  /* fl__store_task_known's test, here: store.c calls this file. */
  if (task >= run->n_tasks || run->tasks[task].key_off == SIZE_MAX)
    return fl__store_set_err(st, FLOWLUA_EINVAL,
                             "run '%s': no task run number %u", run->run_id,
                             task);
  if (level < FLOWLUA_LOG_DEBUG || level > FLOWLUA_LOG_ERROR)
    return fl__store_set_err(st, FLOWLUA_EINVAL,
                             "run '%s': no log level number %d", run->run_id,
                             level);
  task_entry *e = &run->tasks[task];
  if (e->logs && e->logs->closed) return 0; /* see store.h */
  task_logs *l = logs_of(e);
  if (!l || ring_room(l) || GROW(st->logs, st->cap_logs, st->n_logs))
    return fl__store_oom(st, "cannot buffer a log line");
  size_t cut = len > FL_STORE_LOG_BYTES ? len - FL_STORE_LOG_BYTES : 0;
  size_t off = st->log_text.len;
  fl_buf_add(&st->log_text, text, len - cut);
  if (st->log_text.oom) {
    st->log_text.len = off;
    st->log_text.oom = 0;
    return fl__store_oom(st, "cannot buffer a log line");
  }
  l->len[(l->head + l->count) % l->cap] = (uint32_t)(len - cut);
  l->count++;
  l->kept_bytes += len - cut;
  l->dropped_bytes += (int64_t)cut;
  enforce_bounds(l);
  int64_t seq = l->next_seq++;
  st->logs[st->n_logs++] = (pending_log){
      .run = run, .rowid = run->rowid, .seq = seq, .task = task,
      .attempt = attempt, .level = level, .at = at, .text_off = off,
      .text_len = len - cut};
  *jl = (j_log){.at = at, .seq = seq, .first_seq = task_logs_first(l),
                .dropped_lines = l->dropped_lines,
                .dropped_bytes = l->dropped_bytes, .attempt = attempt,
                .level = level, .len = (uint32_t)(len - cut)};
  if (!st->log_compact) st->log_compact = LOG_COMPACT_MIN;
  if (st->n_logs >= st->log_compact) compact(st);
  return 1;
}

int fl__store_log_restore(fl_store_run *run, uint32_t task, const j_log *jl,
                          const char *text) {
  fl_store *st = run->st;
  task_entry *e = &run->tasks[task];
  task_logs *l = logs_of(e);
  if (!l || GROW(st->logs, st->cap_logs, st->n_logs))
    return fl__store_oom(st, "cannot replay a log line");
  size_t off = st->log_text.len;
  fl_buf_add(&st->log_text, text, jl->len);
  if (st->log_text.oom) {
    st->log_text.len = off;
    st->log_text.oom = 0;
    return fl__store_oom(st, "cannot replay a log line");
  }
  free(l->len); /* the record's bounds stand for the ring's */
  l->len = NULL;
  l->cap = l->head = 0;
  l->closed = 1;
  l->next_seq = jl->seq + 1;
  l->count = (uint32_t)(jl->seq + 1 - jl->first_seq);
  l->dropped_lines = jl->dropped_lines;
  l->dropped_bytes = jl->dropped_bytes;
  st->logs[st->n_logs++] = (pending_log){
      .run = run, .rowid = run->rowid, .seq = jl->seq, .task = task,
      .attempt = jl->attempt, .level = jl->level, .at = jl->at,
      .text_off = off, .text_len = jl->len};
  return FLOWLUA_OK;
}

int fl__store_freeze_logs(fl_store *st, fbatch *b) {
  if (!st->n_logs) return 0;
  pending_log *logs = malloc(st->n_logs * sizeof *logs);
  pending_trim *trims = malloc(st->n_logs * sizeof *trims);
  size_t keep = b->strings.len, n = 0, n_trims = 0;
  if (!logs || !trims) goto oom;
  for (size_t i = 0; i < st->n_logs; i++) {
    pending_log pl = st->logs[i];
    if (pl.seq < task_logs_first(pl.run->tasks[pl.task].logs)) continue;
    size_t off = b->strings.len;
    fl_buf_add(&b->strings, st->log_text.data + pl.text_off, pl.text_len);
    fl_buf_addc(&b->strings, '\0');
    pl.text_off = off;
    pl.run = NULL; /* the run may be freed before the batch is written */
    logs[n++] = pl;
  }
  if (b->strings.oom) goto oom;
  /* Nothing fails from here on. */
  for (size_t i = 0; i < st->n_logs; i++) {
    const pending_log *pl = &st->logs[i];
    task_logs *l = pl->run->tasks[pl->task].logs;
    if (l->trim_batch == b->seq || (l->dropped_lines == l->trimmed_lines &&
                                    l->dropped_bytes == l->trimmed_bytes))
      continue;
    l->trim_batch = b->seq;
    l->trimmed_lines = l->dropped_lines;
    l->trimmed_bytes = l->dropped_bytes;
    trims[n_trims++] = (pending_trim){pl->rowid, task_logs_first(l),
                                      l->dropped_lines, l->dropped_bytes,
                                      pl->task};
  }
  b->logs = logs;
  b->n_logs = n;
  b->trims = trims;
  b->n_trims = n_trims;
  st->n_logs = 0;
  fl_buf_reset(&st->log_text);
  return 0;
oom:
  b->strings.len = keep;
  b->strings.oom = 0;
  free(logs);
  free(trims);
  return -1;
}

void fl__store_logs_close(task_logs *l) {
  free(l->len);
  l->len = NULL;
  l->cap = l->head = 0; /* count stays: where the kept lines start */
  l->closed = 1;
}

void fl__store_logs_drop_run(fl_store *st, fl_store_run *run) {
  size_t k = 0;
  for (size_t i = 0; i < st->n_logs; i++)
    if (st->logs[i].run != run) st->logs[k++] = st->logs[i];
  st->n_logs = k;
  for (uint32_t i = 0; i < run->n_tasks; i++) {
    task_logs *l = run->tasks[i].logs;
    if (!l) continue;
    free(l->len);
    free(l);
    run->tasks[i].logs = NULL;
  }
}

void fl__store_logs_free(fl_store *st) {
  free(st->logs);
  st->logs = NULL;
  st->n_logs = st->cap_logs = 0;
  fl_buf_free(&st->log_text);
}
