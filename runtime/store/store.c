/*
 * store.c — the state store proper, on SQLite (see store.h for the
 * contract): runs and task runs as the engine reports them, buffered in a
 * batch and journalled until the writer (store_write.c) commits them, and
 * the cache. Opening a store and its schema are store_open.c's.
 *
 * What it must not do: decide anything about a run (the engine does) or
 * touch Lua.
 */
#define _GNU_SOURCE
#include "pg_store.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- the batch --------------------------------------------------------------- */

/* Copies n bytes and a NUL into the batch's strings; *off is where. */
static int batch_str(fl_store *st, const char *s, size_t n, size_t *off) {
  return fl__store_batch_str(st, s, n, off, "cannot buffer a change");
}

static int touch(fl_store *st, fl_store_run *run, uint32_t task) {
  task_entry *e = &run->tasks[task];
  if (e->touched) return FLOWLUA_OK;
  if (GROW(st->touched, st->cap_touched, st->n_touched))
    return fl__store_oom(st, "cannot buffer a change");
  st->touched[st->n_touched++] = (touched_task){run, task};
  e->touched = 1;
  return FLOWLUA_OK;
}

int fl_store_journalled(const fl_store *st) { return st->journal != NULL; }





/* Binds NULL for a NULL string: sqlite3_bind_text does too, but says so. */

/* Forgets the buffered changes of one run (which is about to be freed). */
static void batch_drop_run(fl_store *st, fl_store_run *run) {
  size_t k = 0;
  for (size_t i = 0; i < st->n_events; i++)
    if (st->events[i].run != run) st->events[k++] = st->events[i];
  st->n_events = k;
  k = 0;
  for (size_t i = 0; i < st->n_touched; i++)
    if (st->touched[i].run != run) st->touched[k++] = st->touched[i];
  st->n_touched = k;
  k = 0;
  for (size_t i = 0; i < st->n_workers; i++)
    if (st->workers[i].rowid != run->rowid) st->workers[k++] = st->workers[i];
  st->n_workers = k;
  fl__store_logs_drop_run(st, run);
}



/* ---- the journal ------------------------------------------------------------ */

static int journal(fl_store *st, j_head h, const void *fixed, size_t fixed_len,
                   const char *s1, size_t n1, const char *s2, size_t n2) {
  if (!st->journal || st->replaying) return FLOWLUA_OK;
  fl_journal_part parts[4] = {{&h, sizeof h}, {fixed, fixed_len},
                              {s1, s1 ? n1 : 0}, {s2, s2 ? n2 : 0}};
  if (fl_journal_append(st->journal, parts, 4) != 0)
    return fl__store_set_err(st, FLOWLUA_EIO, "cannot write its journal: %s",
                   strerror(errno));
  return FLOWLUA_OK;
}



/* A change to task n is journalled after a declaration of it in the same
   generation, so that a replay never needs a reset journal's records: the
   file holds everything they said but the declarations of task runs that
   never changed. */
static int redeclare(fl_store *st, fl_store_run *run, uint32_t n) {
  task_entry *e = &run->tasks[n];
  if (e->jgen == st->journal_gen || !st->journal || st->replaying)
    return FLOWLUA_OK;
  const char *key = run->names.data + e->key_off;
  const char *task = run->names.data + e->task_off;
  size_t key_len = strlen(key), task_len = strlen(task);
  j_add a = {e->map_index, (uint32_t)key_len, (uint32_t)task_len, 0};
  int status = journal(st, (j_head){run->rowid, n, J_ADD}, &a, sizeof a, key,
                       key_len, task, task_len);
  if (status == FLOWLUA_OK) e->jgen = st->journal_gen;
  return status;
}

/* ---- runs -------------------------------------------------------------------- */

const char *fl_store_run_id(const fl_store_run *run) { return run->run_id; }

void fl__store_free_run(fl_store_run *run) {
  fl_store *st = run->st;
  /* Its lease lapses: a run left Running is Crashed then. */
  if (st->pg) fl__pg_run_forget(st, run->rowid);
  batch_drop_run(st, run);
  if (run->prev)
    run->prev->next = run->next;
  else
    st->runs = run->next;
  if (run->next) run->next->prev = run->prev;
  for (uint32_t i = 0; i < run->n_tasks; i++) free(run->tasks[i].error);
  free(run->tasks);
  free(run->slots);
  fl_buf_free(&run->names);
  free(run->run_id);
  free(run);
}

typedef struct begin_ctx {
  fl_store_run *run;
  const fl_store_run_info *info;
  store_begin b;
  int reserved; /* the pool was filled in this transaction */
} begin_ctx;

/* At most this many runs back from a resumed run to the first run of its
   chain (as resume.c follows them). */
#define CLAIM_CHAIN_MAX 64

/* The runs of a resume chain still Running: the first run of the chain of
   ?1 (following resumed_from back), and every run that resumes it, and so
   on. Rows (run_id, owner_host, owner_boot, owner_pid, owner_start). */
static const char claim_sql[] =
    "WITH RECURSIVE up(id, depth) AS ("
    "  SELECT ?1, 0"
    "  UNION ALL SELECT r.resumed_from, up.depth + 1 FROM flow_run r, up"
    "  WHERE r.run_id = up.id AND r.resumed_from IS NOT NULL"
    "  AND up.depth < ?2),"
    " root(id) AS (SELECT id FROM up ORDER BY depth DESC LIMIT 1),"
    " family(id) AS (SELECT id FROM root"
    "  UNION SELECT r.run_id FROM flow_run r, family"
    "  WHERE r.resumed_from = family.id)"
    " SELECT r.run_id, r.owner_host, r.owner_boot, r.owner_pid, r.owner_start"
    " FROM flow_run r, family WHERE r.run_id = family.id"
    " AND r.state = 'Running'";

/* Where a process runs, for a message: "this host" or "host 'name'". */
static void add_where(fl_buf *b, const fl_store_owner *self, const char *host) {
  if (strcmp(host, self->host) == 0)
    fl_buf_adds(b, "this host");
  else
    fl_buf_addf(b, "host '%s'", host);
}

/* A resume claims the run it resumes: no run of its chain (the runs that
   resume one another, back to the first) may be Running with an owner
   that lives. Called in the transaction that records the resume, so of
   two resumes started at once the second sees the first's row and is
   refused (FLOWLUA_ESTATE). A Running run whose process died is no claim:
   crash detection marks it Crashed, and it can be resumed in turn. */
static int claim_resumed_run(fl_store *st, const char *resumed_from) {
  sqlite3_stmt *s = NULL;
  int status = fl__store_prepare(st, claim_sql, &s, "cannot claim the run");
  if (status) return status;
  sqlite3_bind_text(s, 1, resumed_from, -1, SQLITE_STATIC);
  sqlite3_bind_int(s, 2, CLAIM_CHAIN_MAX);
  int rc;
  while (status == FLOWLUA_OK && (rc = sqlite3_step(s)) == SQLITE_ROW) {
    const char *other = (const char *)sqlite3_column_text(s, 0);
    const char *host = (const char *)sqlite3_column_text(s, 1);
    const char *boot = (const char *)sqlite3_column_text(s, 2);
    int64_t pid = sqlite3_column_int64(s, 3);
    if (fl__store_owner_gone(&st->self, host ? host : "", boot ? boot : "",
                             pid, sqlite3_column_int64(s, 4)))
      continue;
    fl_buf msg = FL_BUF_INIT;
    fl_buf_addf(&msg, "run %s is already being resumed by pid %lld on ",
                resumed_from, (long long)pid);
    add_where(&msg, &st->self, host ? host : "");
    fl_buf_addf(&msg, " (run %s", other ? other : "?");
    fl_buf_adds(&msg, "); wait for that run to end");
    status = fl__store_set_err(st, FLOWLUA_ESTATE, "%s", fl_buf_str(&msg));
    fl_buf_free(&msg);
  }
  if (status == FLOWLUA_OK && rc != SQLITE_DONE)
    status = fl__store_sql_err(st, rc, "cannot claim run '%s'", resumed_from);
  sqlite3_finalize(s);
  return status;
}

/* Takes the run's id from the pool, or reserves one (a block, for a
   serving process) in the caller's transaction. */
static int take_id(fl_store *st, begin_ctx *c) {
  if (st->ids_next >= st->ids_end) {
    int64_t n = st->background && st->journal ? FL_STORE_ID_BLOCK : 1, first;
    int rc = fl__store_reserve_ids(st->db, n, &first);
    if (rc != SQLITE_DONE)
      return fl__store_sql_err(st, rc, "cannot take an id for run '%s'",
                               c->info->run_id);
    st->ids_next = first;
    st->ids_end = first + n;
    c->reserved = 1;
  }
  c->b.rowid = st->ids_next++;
  return FLOWLUA_OK;
}

static int insert_run(fl_store *st, void *ctx_) {
  begin_ctx *c = ctx_;
  const char *run_id = c->info->run_id;
  if (c->info->resumed_from) {
    int claimed = claim_resumed_run(st, c->info->resumed_from);
    if (claimed) return claimed;
  }
  int status = take_id(st, c);
  sqlite3_stmt *run = NULL, *graph = NULL;
  if (status == FLOWLUA_OK)
    status = fl__store_prepare(st, fl__store_run_insert_sql, &run,
                               "cannot record the run");
  if (status == FLOWLUA_OK)
    status = fl__store_prepare(st, fl__store_graph_insert_sql, &graph,
                               "cannot record the run's graph");
  int rc = status == FLOWLUA_OK ? fl__store_insert_begin(run, graph, &c->b)
                                : SQLITE_DONE;
  if (status == FLOWLUA_OK && rc == SQLITE_CONSTRAINT_UNIQUE)
    status = fl__store_set_err(st, FLOWLUA_EINVAL,
                               "run id '%s' is already recorded", run_id);
  else if (status == FLOWLUA_OK && rc == SQLITE_CONSTRAINT_CHECK)
    status = fl__store_set_err(st, FLOWLUA_EINVAL,
                               "the params of run '%s' are not valid JSON",
                               run_id);
  else if (status == FLOWLUA_OK && rc != SQLITE_DONE)
    status = fl__store_sql_err(st, rc, "cannot record run '%s'", run_id);
  else if (status == FLOWLUA_OK && sqlite3_changes(st->db) != 1)
    /* The id was there: run_ids was set back (a file restored from a
       copy?); the next block starts after every id in the file. */
    status = fl__store_set_err(st, FLOWLUA_EIO,
                               "run id #%lld handed out for run '%s' is "
                               "taken; run again",
                               (long long)c->b.rowid, run_id);
  sqlite3_finalize(run);
  sqlite3_finalize(graph);
  if (status == FLOWLUA_OK) c->run->rowid = c->b.rowid;
  return status;
}

/* The edges as stored: [[from, to, ordering], ...], from and to indexes
   into the graph's keys. */
static void edges_json(fl_buf *b, const fl_store_run_info *info) {
  fl_buf_addc(b, '[');
  for (size_t i = 0; i < info->n_edges; i++)
    fl_buf_addf(b, "%s[%u,%u,%d]", i ? "," : "", info->edges[i].from,
                info->edges[i].to, info->edges[i].ordering ? 1 : 0);
  fl_buf_addc(b, ']');
}

int fl_store_run_begin(fl_store *st, const fl_store_run_info *info,
                       fl_store_run **out) {
  *out = NULL;
  if (!info->run_id || !*info->run_id || !info->flow || !*info->flow)
    return fl__store_set_err(st, FLOWLUA_EINVAL,
                   "cannot record a run without a run id and a flow name");
  /* A link names both ends, or it is no link: a reader shows the pair. */
  if (!info->parent_run_id != !info->parent_task ||
      (info->parent_run_id && (!*info->parent_run_id || !*info->parent_task)))
    return fl__store_set_err(st, FLOWLUA_EINVAL,
                             "run '%s': a subflow's run needs both its "
                             "parent's run id and the parent's task key "
                             "(got %s and %s)",
                             info->run_id,
                             info->parent_run_id ? "a run id" : "none",
                             info->parent_task ? "a task key" : "none");
  for (size_t i = 0; i < info->n_edges; i++)
    if (info->edges[i].from >= info->n_keys || info->edges[i].to >= info->n_keys)
      return fl__store_set_err(st, FLOWLUA_EINVAL,
                               "run '%s': edge %zu joins task %u to task %u, "
                               "but the graph has %zu tasks",
                               info->run_id, i + 1, info->edges[i].from,
                               info->edges[i].to, info->n_keys);
  fl_store_run *run = calloc(1, sizeof *run);
  fl_buf graph = FL_BUF_INIT, edges = FL_BUF_INIT;
  if (!run || !(run->run_id = strdup(info->run_id))) goto fail_nomem;
  run->st = st;
  fl_buf_addc(&graph, '[');
  for (size_t i = 0; i < info->n_keys; i++) {
    if (i) fl_buf_addc(&graph, ',');
    fl_buf_add_json_string(&graph, info->keys[i]);
  }
  fl_buf_addc(&graph, ']');
  edges_json(&edges, info);
  if (graph.oom || edges.oom) goto fail_nomem;
  const fl_store_owner *owner = info->owner ? info->owner : &st->self;
  begin_ctx ctx = {run, info, {.pid = owner->pid, .start = owner->start_time,
                               .scheduled_at = info->scheduled_at,
                               .started_at = info->started_at}, 0};
  const char *str[J_BEGIN_STRINGS] = {
      [JB_RUN_ID] = info->run_id, [JB_FLOW] = info->flow,
      [JB_SCRIPT] = info->script, [JB_PARAMS] = info->params_json,
      [JB_RESUMED] = info->resumed_from,
      [JB_GRAPH] = graph.data,    [JB_EDGES] = edges.data,
      [JB_HOST] = owner->host,    [JB_BOOT] = owner->boot_id,
      [JB_PARENT] = info->parent_run_id,
      [JB_PARENT_TASK] = info->parent_task};
  for (int i = 0; i < J_BEGIN_STRINGS; i++) {
    ctx.b.str[i] = str[i];
    ctx.b.len[i] = str[i] ? strlen(str[i]) : 0;
  }
  int status;
  if (st->journal && !st->replaying && st->background && !info->resumed_from &&
      !info->owner && (fl__store_refill_ids(st), st->ids_next < st->ids_end)) {
    /* A serving process's run: no transaction, no wait for another
       process's lock (store_begin.c). */
    ctx.b.rowid = st->ids_next++;
    status = fl__store_begin_in_background(st, run, &ctx.b);
    if (status == FLOWLUA_OK) {
      fl__store_refill_ids(st);
      (void)fl_store_flush_async(st); /* a failure is the run's to report */
    }
  } else if (st->pg) {
    /* What is buffered first, as on SQLite; then the start, at once. */
    status = fl__store_flush(st, "cannot record the run");
    if (status == FLOWLUA_OK) status = fl__pg_run_begin(st, &ctx.b);
    if (status == FLOWLUA_OK) run->rowid = ctx.b.rowid;
  } else {
    status = fl__store_flush_with(st, "cannot record the run", insert_run,
                                  &ctx);
    /* Ids reserved by a transaction that rolled back are not ours. */
    if (status && ctx.reserved) st->ids_next = st->ids_end = 0;
    /* Everything journalled so far is in the file now (the flush waited for
       the writer): with no other run open, the journals start afresh, as
       they did when a run's end was committed before it returned. */
    if (status == FLOWLUA_OK) fl__store_journal_settled(st);
  }
  fl_buf_free(&graph);
  fl_buf_free(&edges);
  if (status) {
    free(run->run_id);
    free(run);
    return status;
  }
  run->next = st->runs;
  if (st->runs) st->runs->prev = run;
  st->runs = run;
  *out = run;
  return FLOWLUA_OK;
fail_nomem:
  fl_buf_free(&graph);
  fl_buf_free(&edges);
  if (run) free(run->run_id);
  free(run);
  return fl__store_oom(st, "cannot record the run");
}

typedef struct end_ctx {
  fl_store_run *run;
  int state;
  double ended_at;
  const char *error;
  const char *counts;
} end_ctx;

static int update_run_end(fl_store *st, void *ctx_) {
  end_ctx *c = ctx_;
  sqlite3_stmt *s = NULL;
  int status = fl__store_prepare(
      st,
      "UPDATE flow_run SET state = ?2, ended_at = ?3, error = ?4,"
      " task_counts = coalesce(?5, (SELECT json_group_object(state, n) FROM"
      " (" FL_STORE_COUNT_TASK_RUNS_SQL "))) WHERE id = ?1",
      &s, "cannot record the end of the run");
  if (status) return status;
  sqlite3_bind_int64(s, 1, c->run->rowid);
  sqlite3_bind_text(s, 2, fl__store_flow_state_name(c->state), -1, SQLITE_STATIC);
  fl__store_bind_opt_double(s, 3, c->ended_at);
  sqlite3_bind_text(s, 4, c->error, -1, SQLITE_STATIC);
  sqlite3_bind_text(s, 5, c->counts, -1, SQLITE_STATIC);
  status = fl__store_exec(st, s, "cannot record the end of the run");
  sqlite3_finalize(s);
  return status;
}

void fl_store_run_counts(fl_store_run *run, const size_t *by_state,
                         size_t n_states) {
  memset(run->counts, 0, sizeof run->counts);
  for (size_t i = 0; i < n_states && i < FL_STORE_TASK_STATES; i++)
    run->counts[i] = by_state[i];
  run->has_counts = 1;
}

/* Buffers the end of a run as the last change of its batch. */
static int buffer_end(fl_store *st, const fl_store_run *run, int state,
                      double ended_at, const char *error, const char *counts,
                      size_t counts_len) {
  const char *what = "cannot record the end of the run";
  if (GROW(st->ends, st->cap_ends, st->n_ends)) return fl__store_oom(st, what);
  pending_end e = {run->rowid, state, ended_at, SIZE_MAX, SIZE_MAX};
  size_t keep = st->batch.len;
  int status = error ? batch_str(st, error, strlen(error), &e.err_off)
                     : FLOWLUA_OK;
  if (status == FLOWLUA_OK && counts)
    status = batch_str(st, counts, counts_len, &e.counts_off);
  if (status != FLOWLUA_OK) {
    st->batch.len = keep;
    return status;
  }
  st->ends[st->n_ends++] = e;
  return FLOWLUA_OK;
}

/* The end of a run in a journalled store, without waiting for the file:
   the end is journalled (durable: a replay records it if this process
   dies), then handed to the writer thread with the run's last changes.
   So a run ends, and the serving loop goes on to its next fire time, while
   another process holds the database's lock; `runs` and `show` see the
   run Running until the writer has committed its end. */
static int end_in_background(fl_store_run *run, int state, double ended_at,
                             const char *error, const char *counts,
                             size_t counts_len) {
  fl_store *st = run->st;
  size_t err_len = error ? strlen(error) : 0;
  if (err_len >= J_NONE || counts_len >= J_NONE)
    return fl__store_set_err(st, FLOWLUA_EINVAL,
                             "run '%s': its error is too long to record",
                             run->run_id);
  j_end e = {ended_at, state, error ? (uint32_t)err_len : J_NONE,
             counts ? (uint32_t)counts_len : J_NONE, 0};
  int status = journal(st, (j_head){run->rowid, 0, J_END}, &e, sizeof e,
                       error, err_len, counts, counts_len);
  if (status == FLOWLUA_OK)
    status = buffer_end(st, run, state, ended_at, error, counts, counts_len);
  /* The run's rows are frozen here, before its handle goes: what failed
     to be handed over stays buffered for the next flush. */
  if (status == FLOWLUA_OK) status = fl_store_flush_async(st);
  return status;
}

int fl_store_run_end(fl_store_run *run, int state, double ended_at,
                     const char *error) {
  fl_store *st = run->st;
  int status;
  fl_buf counts = FL_BUF_INIT;
  if (state < 0 || state >= FLOWLUA_FLOW_STATE_COUNT) {
    status = fl__store_set_err(st, FLOWLUA_EINVAL,
                     "run '%s' cannot end in state number %d", run->run_id,
                     state);
    goto done;
  }
  /* The engine's counts when it gave them (no query over the run's task
     rows), else NULL: update_run_end counts the rows the flush left. */
  if (run->has_counts) {
    fl_buf_addc(&counts, '{');
    for (int i = 0, first = 1; i < FL_STORE_TASK_STATES; i++) {
      if (!run->counts[i]) continue;
      fl_buf_addf(&counts, "%s\"%s\":%zu", first ? "" : ",",
                  fl__store_task_state_names[i], run->counts[i]);
      first = 0;
    }
    fl_buf_addc(&counts, '}');
  }
  if (counts.oom) {
    status = fl__store_oom(st, "cannot record the end of the run");
    goto done;
  }
  if (st->journal && !st->replaying && (st->background || st->writer)) {
    status = end_in_background(run, state, ended_at, error, counts.data,
                               counts.data ? counts.len : 0);
    goto done;
  }
  if (st->pg) {
    /* The end goes with the run's last changes, in one transaction. */
    status = buffer_end(st, run, state, ended_at, error, counts.data,
                        counts.data ? counts.len : 0);
    if (status == FLOWLUA_OK)
      status = fl__store_flush(st, "cannot record the end of the run");
    goto done;
  }
  end_ctx ctx = {run, state, ended_at, error, counts.data};
  status = fl__store_flush_with(st, "cannot record the end of the run", update_run_end,
                      &ctx);
done:
  fl_buf_free(&counts);
  fl__store_free_run(run);
  if (status == FLOWLUA_OK) fl__store_journal_settled(st);
  return status;
}

/* ---- task runs ----------------------------------------------------------------- */

/* FNV-1a, then a final mix: keys differ mostly in their last characters
   ("fetch[9]", "fetch[10]"), and the mix spreads that into the low bits
   that pick the slot. */
static uint32_t hash_key(const char *s) {
  uint64_t h = 1469598103934665603ull;
  for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdull;
  h ^= h >> 33;
  return (uint32_t)h;
}

/* The slot of key in run's set: holding it, or the free one where it goes. */
static uint64_t *find_slot(fl_store_run *run, const char *key, uint32_t h) {
  uint32_t mask = run->n_slots - 1;
  for (uint32_t i = h & mask;; i = (i + 1) & mask) {
    uint64_t v = run->slots[i];
    if (!v) return &run->slots[i];
    if ((uint32_t)(v >> 32) == h &&
        strcmp(run->names.data + run->tasks[(uint32_t)v - 1].key_off, key) == 0)
      return &run->slots[i];
  }
}

/* After task runs were taken back: the set holds exactly those left. */
static void rebuild_slots(fl_store_run *run) {
  memset(run->slots, 0, (size_t)run->n_slots * sizeof *run->slots);
  uint32_t mask = run->n_slots - 1;
  run->n_bracketed = 0;
  for (uint32_t t = 0; t < run->n_tasks; t++) {
    if (!run->tasks[t].in_set) continue;
    const char *key = run->names.data + run->tasks[t].key_off;
    run->n_bracketed += strchr(key, '[') != NULL;
    uint32_t h = hash_key(key);
    uint32_t j = h & mask;
    while (run->slots[j]) j = (j + 1) & mask;
    run->slots[j] = (uint64_t)h << 32 | (t + 1);
  }
}

/* Keeps the set at most half full once it holds `count` keys. The slots
   keep each key's hash, so growing moves them without hashing again. */
static int grow_slots(fl_store_run *run, uint64_t count) {
  if (count * 2 <= run->n_slots) return 0;
  uint64_t n = run->n_slots ? run->n_slots : 1024;
  while (n < count * 2) n *= 2;
  uint64_t *slots = n <= UINT32_MAX ? calloc(n, sizeof *slots) : NULL;
  if (!slots) return -1;
  uint32_t mask = (uint32_t)(n - 1);
  for (uint32_t i = 0; i < run->n_slots; i++) {
    uint64_t v = run->slots[i];
    if (!v) continue;
    uint32_t j = (uint32_t)(v >> 32) & mask;
    while (slots[j]) j = (j + 1) & mask;
    slots[j] = v;
  }
  free(run->slots);
  run->slots = slots;
  run->n_slots = (uint32_t)n;
  return 0;
}

/* Room for `more` task runs in run's arrays and set; -1 when memory ran
   out (nothing changed but capacities). */
static int reserve_tasks(fl_store_run *run, uint32_t more, size_t name_bytes) {
  uint64_t need = (uint64_t)run->n_tasks + more;
  if (need > run->cap_tasks) {
    uint64_t cap = run->cap_tasks ? run->cap_tasks : 256;
    while (cap < need) cap *= 2;
    task_entry *t = cap <= UINT32_MAX ? realloc(run->tasks, cap * sizeof *t) : NULL;
    if (!t) return -1;
    run->tasks = t;
    run->cap_tasks = (uint32_t)cap;
  }
  if (fl_buf_reserve(&run->names, name_bytes) != 0) {
    run->names.oom = 0;
    return -1;
  }
  return grow_slots(run, need);
}

/* Declares one task run in room reserve_tasks made; a key already in the
   run is FLOWLUA_EINVAL, with nothing changed. An element's key is only
   compared with the set's bracketed keys (fl_store_task_add_element), and
   not added to it. */
static int add_entry(fl_store_run *run, const char *key, size_t key_len,
                     const char *task, size_t task_len, int map_index,
                     int element) {
  uint32_t h = 0;
  uint64_t *slot = NULL;
  if (!element || run->n_bracketed) {
    h = hash_key(key);
    slot = find_slot(run, key, h);
    if (*slot)
      return fl__store_set_err(run->st, FLOWLUA_EINVAL,
                           "run '%s': task key '%s' is used twice",
                           run->run_id, key);
    if (element) slot = NULL;
  }
  task_entry *e = &run->tasks[run->n_tasks];
  *e = (task_entry){.map_index = map_index, .state = FLOWLUA_TASK_PENDING,
                    .jgen = run->st->journal_gen};
  char *names = run->names.data;
  e->key_off = run->names.len;
  memcpy(names + e->key_off, key, key_len + 1);
  e->task_off = e->key_off + key_len + 1;
  memcpy(names + e->task_off, task, task_len + 1);
  run->names.len += key_len + task_len + 2;
  if (slot) {
    *slot = (uint64_t)h << 32 | (run->n_tasks + 1);
    run->n_bracketed += memchr(key, '[', key_len) != NULL;
  }
  run->n_tasks++;
  return FLOWLUA_OK;
}

int fl__store_task_known(const fl_store_run *run, uint32_t n) {
  return n < run->n_tasks && run->tasks[n].key_off != SIZE_MAX;
}

int fl__store_run_restore(fl_store_run *run, uint32_t n, const char *key,
                      const char *task, const task_entry *fields,
                      const char *error) {
  fl_store *st = run->st;
  if (fl__store_task_known(run, n)) return FLOWLUA_OK; /* said before */
  if (n >= UINT32_MAX - 1 || (run->restore_limit && n >= run->restore_limit))
    return fl__store_set_err(st, FLOWLUA_EIO,
                             "run '%s': a record names task run #%u, past "
                             "the %u the run can have declared (a damaged "
                             "or forged journal or database)",
                             run->run_id, n, run->restore_limit);
  size_t key_len = strlen(key), task_len = strlen(task);
  uint32_t more = n >= run->n_tasks ? n + 1 - run->n_tasks : 0;
  char *err_copy = error ? strdup(error) : NULL;
  if ((error && !err_copy) || reserve_tasks(run, more, key_len + task_len + 2)) {
    free(err_copy);
    return fl__store_oom(st, "cannot replay a journal");
  }
  while (run->n_tasks <= n) /* void until declared */
    run->tasks[run->n_tasks++] = (task_entry){.key_off = SIZE_MAX};
  /* add_entry appends at n_tasks: let it, then put the entry in place. */
  uint32_t count = run->n_tasks;
  run->n_tasks = n;
  task_entry keep = run->tasks[n];
  int status = add_entry(run, key, key_len, task, task_len, fields->map_index, 0);
  if (status) {
    run->tasks[n] = keep;
    run->n_tasks = count;
    free(err_copy);
    return status;
  }
  run->n_tasks = count;
  task_entry *e = &run->tasks[n];
  size_t key_off = e->key_off, task_off = e->task_off;
  *e = *fields;
  e->key_off = key_off;
  e->task_off = task_off;
  e->in_set = 1;
  e->error = err_copy;
  e->touched = e->result_kind = 0;
  e->result_off = e->result_len = 0;
  e->logs = NULL; /* lines are not journalled: none to restore */
  return FLOWLUA_OK;
}

static int task_add(fl_store_run *run, const char *key, const char *task,
                    int map_index, uint32_t *task_out, int element) {
  fl_store *st = run->st;
  if (!key || !*key)
    return fl__store_set_err(st, FLOWLUA_EINVAL, "run '%s': a task run needs a key",
                   run->run_id);
  if (!task) task = key;
  if (run->n_tasks == UINT32_MAX - 1)
    return fl__store_set_err(st, FLOWLUA_EINVAL, "run '%s': too many task runs",
                   run->run_id);
  size_t key_len = strlen(key), task_len = strlen(task);
  if (reserve_tasks(run, 1, key_len + task_len + 2))
    return fl__store_oom(st, "cannot add a task run");
  int status = add_entry(run, key, key_len, task, task_len, map_index, element);
  if (status) return status;
  run->tasks[run->n_tasks - 1].in_set = !element;
  *task_out = run->n_tasks - 1;
  j_add a = {map_index, (uint32_t)key_len, (uint32_t)task_len, 0};
  return journal(st, (j_head){run->rowid, *task_out, J_ADD}, &a, sizeof a, key,
                 key_len, task, task_len);
}

int fl_store_task_add(fl_store_run *run, const char *key, const char *task,
                      int map_index, uint32_t *task_out) {
  return task_add(run, key, task, map_index, task_out, 0);
}

int fl_store_task_add_element(fl_store_run *run, const char *key,
                              const char *task, int map_index,
                              uint32_t *task_out) {
  return task_add(run, key, task, map_index, task_out, 1);
}

/* At most this many task runs to a J_ADDS record, which keeps a record of a
   huge graph far below the journal's limit on one record. */
#define ADDS_PER_RECORD 65536u

/* One J_ADDS record for tasks [first, first + n) of run: a j_adds, the
   lengths of each key and task name, then their bytes. */
static int journal_adds(fl_store *st, fl_store_run *run, uint32_t first,
                        uint32_t n) {
  if (!st->journal || st->replaying) return FLOWLUA_OK;
  uint32_t *lens = malloc((size_t)n * 2 * sizeof *lens);
  if (!lens) return fl__store_oom(st, "cannot journal the task runs");
  const task_entry *e = run->tasks + first;
  /* A task's key and name are adjacent in run->names ("key\0task\0"), and
     the tasks declared together are adjacent too: one copy for them all. */
  size_t from = e[0].key_off, bytes = 0;
  for (uint32_t i = 0; i < n; i++) {
    lens[2 * i] = (uint32_t)(e[i].task_off - e[i].key_off - 1);
    lens[2 * i + 1] = (uint32_t)strlen(run->names.data + e[i].task_off);
    bytes += (size_t)lens[2 * i] + lens[2 * i + 1] + 2;
  }
  j_adds a = {n, 0};
  j_head h = {run->rowid, first, J_ADDS};
  fl_journal_part parts[4] = {{&h, sizeof h},
                              {&a, sizeof a},
                              {lens, (size_t)n * 2 * sizeof *lens},
                              {run->names.data + from, bytes}};
  int rc = fl_journal_append(st->journal, parts, 4);
  free(lens);
  if (rc != 0)
    return fl__store_set_err(st, FLOWLUA_EIO, "cannot write its journal: %s",
                         strerror(errno));
  return FLOWLUA_OK;
}

int fl_store_task_add_many(fl_store_run *run, const char *const *keys,
                           const char *const *tasks, uint32_t n,
                           uint32_t *first_out) {
  fl_store *st = run->st;
  if (n > UINT32_MAX - 1 - run->n_tasks)
    return fl__store_set_err(st, FLOWLUA_EINVAL, "run '%s': too many task runs",
                         run->run_id);
  size_t bytes = 0;
  for (uint32_t i = 0; i < n; i++) {
    if (!keys[i] || !*keys[i])
      return fl__store_set_err(st, FLOWLUA_EINVAL,
                           "run '%s': a task run needs a key", run->run_id);
    bytes += strlen(keys[i]) + strlen(tasks[i] ? tasks[i] : keys[i]) + 2;
  }
  if (reserve_tasks(run, n, bytes))
    return fl__store_oom(st, "cannot add the task runs");
  uint32_t first = run->n_tasks;
  size_t names_len = run->names.len;
  int status = FLOWLUA_OK;
  for (uint32_t i = 0; status == FLOWLUA_OK && i < n; i++) {
    const char *task = tasks[i] ? tasks[i] : keys[i];
    status = add_entry(run, keys[i], strlen(keys[i]), task, strlen(task), 0, 0);
    if (status == FLOWLUA_OK) run->tasks[run->n_tasks - 1].in_set = 1;
  }
  if (status != FLOWLUA_OK) { /* a key used twice: undo the others */
    run->n_tasks = first;
    run->names.len = names_len;
    rebuild_slots(run);
    return status;
  }
  *first_out = first;
  for (uint32_t done = 0; status == FLOWLUA_OK && done < n;) {
    uint32_t k = n - done < ADDS_PER_RECORD ? n - done : ADDS_PER_RECORD;
    status = journal_adds(st, run, first + done, k);
    done += k;
  }
  return status;
}

int fl_store_task_state(fl_store_run *run, uint32_t task, int state,
                        int attempt, double at, const char *error) {
  fl_store *st = run->st;
  if (!fl__store_task_known(run, task))
    return fl__store_set_err(st, FLOWLUA_EINVAL, "run '%s': no task run number %u",
                   run->run_id, task);
  if (state < 0 || state >= FL_STORE_TASK_STATES)
    return fl__store_set_err(st, FLOWLUA_EINVAL, "run '%s': no task state number %d",
                   run->run_id, state);
  task_entry *e = &run->tasks[task];
  /* The latest change so far stops being the latest: it goes to the
     history, unless it is the first Running, which the row tells anyway
     (so a task that runs once and succeeds writes no history at all). */
  int demote = e->n_changes > 0 && e->n_changes != e->started_seq;
  /* Everything that can fail comes first, so a failure changes nothing. */
  size_t batch_len = st->batch.len, err_off = SIZE_MAX;
  char *err_copy = NULL;
  if (demote && GROW(st->events, st->cap_events, st->n_events))
    return fl__store_oom(st, "cannot buffer a change");
  if (demote && e->error &&
      batch_str(st, e->error, strlen(e->error), &err_off))
    return FLOWLUA_ENOMEM;
  if ((error && !(err_copy = strdup(error))) || touch(st, run, task)) {
    st->batch.len = batch_len;
    free(err_copy);
    return fl__store_oom(st, "cannot buffer a change");
  }
  if (demote)
    st->events[st->n_events++] = (pending_event){
        .run = run, .rowid = run->rowid, .task = task, .seq = e->n_changes,
        .attempt = e->state_attempt, .state = e->state, .err_off = err_off,
        .at = e->state_at};
  e->state = (int8_t)state;
  e->state_at = at;
  e->state_attempt = attempt;
  free(e->error);
  e->error = err_copy;
  e->n_changes++;
  if (attempt > e->attempts) e->attempts = attempt;
  if (state == FLOWLUA_TASK_RUNNING && !e->started_seq) {
    e->started = at;
    e->started_seq = e->n_changes;
  }
  if (store_is_final_state(state)) {
    e->ended = at;
    if (e->logs) fl__store_logs_close(e->logs);
  }
  size_t err_len = error ? strlen(error) : 0;
  j_state js = {at, state, attempt, error ? (uint32_t)err_len : J_NONE,
                e->n_changes};
  int status = redeclare(st, run, task);
  if (status) return status;
  return journal(st, (j_head){run->rowid, task, J_STATE}, &js, sizeof js,
                 error, err_len, NULL, 0);
}

int fl_store_task_result(fl_store_run *run, uint32_t task, const char *json,
                         size_t len) {
  fl_store *st = run->st;
  if (!fl__store_task_known(run, task))
    return fl__store_set_err(st, FLOWLUA_EINVAL, "run '%s': no task run number %u",
                   run->run_id, task);
  if (json && len > FL_STORE_MAX_RESULT)
    return fl__store_set_err(st, FLOWLUA_EINVAL,
                             "run '%s': a result of %zu bytes of JSON, over "
                             "the store's limit of %zu",
                             run->run_id, len, FL_STORE_MAX_RESULT);
  task_entry *e = &run->tasks[task];
  size_t off = 0, batch_len = st->batch.len;
  if (json && batch_str(st, json, len, &off)) return FLOWLUA_ENOMEM;
  if (touch(st, run, task)) {
    st->batch.len = batch_len;
    return FLOWLUA_ENOMEM;
  }
  e->result_kind = json ? FL_STORE_RESULT_JSON : FL_STORE_RESULT_OPAQUE;
  e->result_off = json ? off : 0;
  e->result_len = json ? len : 0;
  j_result jr = {json ? (uint32_t)len : J_NONE, 0};
  int status = redeclare(st, run, task);
  if (status) return status;
  return journal(st, (j_head){run->rowid, task, J_RESULT}, &jr, sizeof jr,
                 json, len, NULL, 0);
}

int fl_store_task_worker(fl_store_run *run, uint32_t task, int attempt,
                         const char *host, int64_t pid) {
  fl_store *st = run->st;
  if (!fl__store_task_known(run, task))
    return fl__store_set_err(st, FLOWLUA_EINVAL, "run '%s': no task run number %u",
                   run->run_id, task);
  if (!host) host = st->self.host;
  size_t host_len = strlen(host);
  if (attempt < 1 || pid <= 0 || host_len == 0 || host_len > FL_STORE_MAX_HOST)
    return fl__store_set_err(st, FLOWLUA_EINVAL,
                             "run '%s': no worker attempt %d on '%.64s' pid %lld",
                             run->run_id, attempt, host, (long long)pid);
  size_t batch_len = st->batch.len, off = 0;
  if (GROW(st->workers, st->cap_workers, st->n_workers) ||
      batch_str(st, host, host_len, &off)) {
    st->batch.len = batch_len;
    return fl__store_oom(st, "cannot buffer a worker");
  }
  st->workers[st->n_workers++] = (pending_worker){run->rowid, pid, task,
                                                  attempt, off};
  j_worker jw = {pid, attempt, (uint32_t)host_len};
  int status = redeclare(st, run, task);
  if (status) return status;
  return journal(st, (j_head){run->rowid, task, J_WORKER}, &jw, sizeof jw,
                 host, host_len, NULL, 0);
}

int fl_store_task_log(fl_store_run *run, uint32_t task, int attempt,
                      int level, double at, const char *text, size_t len) {
  fl_store *st = run->st;
  j_log jl;
  int status = fl__store_log_buffer(run, task, attempt, level, at, text, len,
                                    &jl);
  if (status <= 0) return status;
  /* Journalled as a state change is: the lines that tell why a task
     broke are the ones a crash must not lose. */
  status = redeclare(st, run, task);
  if (status) return status;
  return journal(st, (j_head){run->rowid, task, J_LOG}, &jl, sizeof jl, text,
                 jl.len, NULL, 0);
}

/* ---- cache --------------------------------------------------------------------- */

int fl_store_cache_put(fl_store *st, const char *task, const char *key,
                       const char *json, size_t len, double at) {
  if (!task || !key || !json)
    return fl__store_set_err(st, FLOWLUA_EINVAL,
                   "a cache entry needs a task, a key and a result");
  if (GROW(st->puts, st->cap_puts, st->n_puts))
    return fl__store_oom(st, "cannot buffer a cache entry");
  pending_put p = {.json_len = len, .at = at};
  size_t batch_len = st->batch.len;
  if (batch_str(st, task, strlen(task), &p.task_off) ||
      batch_str(st, key, strlen(key), &p.key_off) ||
      batch_str(st, json, len, &p.json_off)) {
    st->batch.len = batch_len;
    return FLOWLUA_ENOMEM;
  }
  st->puts[st->n_puts++] = p;
  return FLOWLUA_OK;
}

static int cache_hit(fl_store *st, const char *json, size_t len,
                     const char **out, size_t *out_len) {
  fl_buf_reset(&st->cache_json);
  fl_buf_add(&st->cache_json, json, len);
  if (st->cache_json.oom) return fl__store_oom(st, "cannot read a cached result");
  *out = fl_buf_str(&st->cache_json);
  *out_len = len;
  return 1;
}

int fl_store_cache_get(fl_store *st, const char *task, const char *key,
                       double now, double max_age, const char **json,
                       size_t *len) {
  *json = NULL;
  *len = 0;
  int fresh_after_set = max_age >= 0;
  double oldest = now - max_age;
  /* Puts handed to the writer must be in the file before it is read. */
  int drained = fl__store_writer_drain(st);
  if (drained) return drained;
  /* The newest buffered put for this key wins over the file: it is what
     the next flush will write there. */
  for (size_t i = st->n_puts; i-- > 0;) {
    const pending_put *p = &st->puts[i];
    const char *b = st->batch.data;
    if (strcmp(b + p->task_off, task) != 0 || strcmp(b + p->key_off, key) != 0)
      continue;
    if (fresh_after_set && p->at < oldest) return 0;
    return cache_hit(st, b + p->json_off, p->json_len, json, len);
  }
  if (st->pg) {
    double stored = 0;
    int found = fl__pg_cache_get(st, task, key, &stored, &st->cache_json);
    if (found <= 0) return found;
    if (fresh_after_set && stored < oldest) return 0;
    *json = fl_buf_str(&st->cache_json);
    *len = st->cache_json.len;
    return 1;
  }
  sqlite3_stmt *s = st->stmt[S_CACHE_GET];
  sqlite3_bind_text(s, 1, task, -1, SQLITE_STATIC);
  sqlite3_bind_text(s, 2, key, -1, SQLITE_STATIC);
  int rc = sqlite3_step(s), status = 0;
  if (rc == SQLITE_ROW) {
    double stored = sqlite3_column_double(s, 1);
    if (!fresh_after_set || stored >= oldest)
      status = cache_hit(st, (const char *)sqlite3_column_text(s, 0),
                         (size_t)sqlite3_column_bytes(s, 0), json, len);
  } else if (rc != SQLITE_DONE) {
    status = fl__store_sql_err(st, rc, "cannot read the cache of task '%s'", task);
  }
  sqlite3_reset(s);
  return status;
}

