/*
 * record.c — the engine's side of the state store; see record.h.
 *
 * The store buffers; this file decides what is recorded (every state
 * change, results as JSON, masked errors) and when a flush must happen
 * before the scheduler may go on. The rule is per task, not per turn: a
 * task waits for a flush only when one of its upstream runs reached its
 * final state in the current flush epoch, so a 1→N fan flushes once for
 * the N, and only a chain pays a flush per task.
 */
#define _POSIX_C_SOURCE 200809L
#include "record.h"

#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

#include "states.h"
#include "store.h"
#include "sha256.h"

_Static_assert(FL_MAX_RESULT_LIMIT <= FL_STORE_MAX_RESULT,
               "a result the engine lets through is one the store takes");

void fl_record_log_notices(flowlua *rt, fl_store *st) {
  const char *text = fl_store_notices(st);
  while (*text) {
    const char *end = strchr(text, '\n');
    int len = end ? (int)(end - text) : (int)strlen(text);
    fl_log_printf(&rt->log, FLOWLUA_LOG_WARN, NULL, "state store %s: %.*s",
                  fl_store_path(st), len, text);
    text += len + (end != NULL);
  }
  fl_store_notices_clear(st);
}

int fl_record_open_history(flowlua *rt) {
  if (rt->store_state) return FLOWLUA_OK;
  const char *path = rt->state_path;
  if (!path || !*path || strcmp(path, ":memory:") == 0) {
    rt->store_state = -1;
    return FLOWLUA_OK;
  }
  char err[512];
  fl_store *st;
  if (fl_store_open(path, NULL, &st, err, sizeof err) != FLOWLUA_OK) {
    fl_set_error(rt, "%s (the run history; --state PATH keeps it elsewhere, "
                     "--state :memory: keeps none)",
                 err);
    return FLOWLUA_EIO;
  }
  size_t marked = 0;
  int crashed_status = fl_store_mark_crashed(st, fl_wall_time(), &marked);
  fl_record_log_notices(rt, st);
  if (crashed_status != FLOWLUA_OK) {
    fl_set_error(rt, "%s", fl_store_errmsg(st));
    fl_store_close(st);
    return FLOWLUA_EIO;
  }
  if (marked)
    fl_log_printf(&rt->log, FLOWLUA_LOG_WARN, NULL,
                  "state store %s: %zu run(s) marked Crashed: the processes "
                  "running them are gone (resume with --resume)",
                  fl_store_path(st), marked);
  rt->store = st;
  rt->store_state = 1;
  rt->flush_epoch = 1;
  return FLOWLUA_OK;
}

int fl_record_open(flowlua *rt) {
  int first = !rt->store_state;
  int rc = fl_record_open_history(rt);
  if (rc == FLOWLUA_OK && first) fl_record_flows(rt);
  return rc;
}

void fl_record_close(flowlua *rt) {
  fl_cancel_poll_stop(rt);
  fl_buf_free(&rt->result_json);
  fl_store_close(rt->store);
  rt->store = NULL;
  rt->store_state = 0;
}

/* A store failure during a run: remembered on the run, logged once. */
static void store_failed(fl_sched *s, const char *what) {
  if (s->store_error) return;
  fl_buf b = FL_BUF_INIT;
  fl_buf_addf(&b, "%s: %s", what, fl_store_errmsg(s->rt->store));
  s->store_error = fl_buf_str(&b)[0] ? strdup(fl_buf_str(&b)) : NULL;
  fl_log_printf(&s->rt->log, FLOWLUA_LOG_ERROR, s->g->flow->name, "%s",
                fl_buf_str(&b));
  fl_buf_free(&b);
}

/* The flow's params as JSON, masked; NULL when they cannot be encoded. */
static char *params_json(flowlua *rt, fl_graph *g) {
  lua_State *L = rt->L;
  fl_buf b = FL_BUF_INIT;
  lua_rawgeti(L, LUA_REGISTRYINDEX, g->params_ref);
  int ok = lua_istable(L, -1) && fl_json_encode_value(L, -1, &b, NULL) == 0;
  lua_pop(L, 1);
  char *out = ok ? fl_log_mask_dup(&rt->log, fl_buf_str(&b)) : NULL;
  fl_buf_free(&b);
  return out;
}

/* Declares every node of the graph as a task run, in one call. */
static int declare_graph(fl_sched *s, const char *const *keys) {
  const fl_graph *g = s->g;
  if (!g->n) return FLOWLUA_OK;
  const char **tasks = malloc(g->n * sizeof *tasks);
  if (!tasks) return FLOWLUA_ENOMEM;
  for (uint32_t i = 0; i < g->n; i++) tasks[i] = g->nodes[i].def->name;
  uint32_t first = 0;
  int rc = fl_store_task_add_many(s->rec, keys, tasks, g->n, &first);
  for (uint32_t i = 0; rc == FLOWLUA_OK && i < g->n; i++)
    s->runs[i].rec_id = first + i;
  free(tasks);
  return rc;
}

int fl_record_run_begin(fl_sched *s) {
  flowlua *rt = s->rt;
  if (!rt->store) return FLOWLUA_OK;
  fl_graph *g = s->g;
  const char **ptrs = fl_graph_keys(g);
  size_t n_edges = 0;
  fl_store_edge *edges = fl_graph_edges(g, &n_edges);
  char *params = params_json(rt, g);
  int rc = ptrs && edges ? FLOWLUA_OK : FLOWLUA_ENOMEM;
  if (rc != FLOWLUA_OK) {
    fl_set_error(rt, "flow '%s': out of memory recording the run",
                 g->flow->name);
    goto done;
  }
  const fl_store_run_row *from = s->resume ? &s->resume->run : NULL;
  fl_store_run_info info = {
      .run_id = s->run_id,
      .flow = g->flow->name,
      .script = rt->script_name,
      .params_json = params,
      /* A subflow's run is no fire of its own flow's schedule (a backfill
         of that flow must not count it), though its tasks see the
         parent's scheduled_at. */
      .scheduled_at = rt->scheduled_at > 0 && !s->parent ? rt->scheduled_at : 0,
      .started_at = s->started_wall,
      .keys = ptrs,
      .n_keys = g->n,
      .edges = edges,
      .n_edges = n_edges,
      .resumed_from = from ? from->run_id : NULL,
      /* A subflow's run: the run and task run that called it. */
      .parent_run_id = s->parent ? s->parent->run_id : NULL,
      .parent_task = s->parent ? s->parent_task : NULL,
      .owner = NULL};
  rc = fl_store_run_begin(rt->store, &info, &s->rec);
  if (rc == FLOWLUA_OK) fl_cancel_poll_arm(rt);
  if (rc == FLOWLUA_OK && from) /* recorded: the run is claimed */
    fl_log_printf(&rt->log, FLOWLUA_LOG_INFO, g->flow->name,
                  "resuming run %s (%s): tasks that succeeded keep their "
                  "results",
                  from->run_id, fl_flow_state_name(from->state));
  if (rc == FLOWLUA_OK) rc = declare_graph(s, ptrs);
  if (rc == FLOWLUA_ENOMEM)
    fl_set_error(rt, "flow '%s': out of memory recording the run",
                 g->flow->name);
  else if (rc == FLOWLUA_ESTATE && from) /* another resume claimed it */
    fl_set_error(rt, "cannot resume: %s", fl_store_errmsg(rt->store));
  else if (rc != FLOWLUA_OK)
    fl_set_error(rt, "flow '%s': recording the run: %s",
                 g->flow->name, fl_store_errmsg(rt->store));
done:
  if (rc != FLOWLUA_OK && s->rec) {
    fl_store_run_end(s->rec, FLOWLUA_FLOW_FAILED, fl_wall_time(),
                     fl_buf_str(&rt->err));
    s->rec = NULL;
  }
  free(params);
  free(ptrs);
  free(edges);
  return rc;
}

void fl_record_task_add(fl_sched *s, fl_taskrun *r) {
  if (!s->rec) return;
  fl_buf key = FL_BUF_INIT;
  fl_taskrun_add_key(&key, r);
  /* Only map elements are declared here (the graph's nodes were at the
     run's start): their keys are new by construction. */
  if (fl_store_task_add_element(s->rec, fl_buf_str(&key),
                                s->g->nodes[r->node].def->name,
                                (int)r->map_index, &r->rec_id) != FLOWLUA_OK)
    store_failed(s, "declaring a task run");
  fl_buf_free(&key);
}

void fl_record_state(fl_sched *s, fl_taskrun *r, int state, int final,
                     const char *err) {
  if (!s->rec) return;
  char *masked = err ? fl_log_mask_dup(&s->rt->log, err) : NULL;
  int attempt = state == FLOWLUA_TASK_SKIPPED ||
                        state == FLOWLUA_TASK_CACHED ||
                        state == FLOWLUA_TASK_TRIGGER_FAILED
                    ? 0
                    : r->attempts;
  if (fl_store_task_state(s->rec, r->rec_id, state, attempt, fl_wall_time(),
                          masked) != FLOWLUA_OK)
    store_failed(s, "recording a state change");
  free(masked);
  if (final) r->rec_epoch = s->rt->flush_epoch;
}

void fl_record_log(fl_sched *s, fl_taskrun *r, int level, const char *msg) {
  if (!s->rec || !msg) return;
  flowlua *rt = s->rt;
  /* The same masking as the printed line's: a secret never reaches the
     history, and the history holds what the log showed. Without secrets
     the text is the message itself (no copy). */
  fl_buf masked = FL_BUF_INIT;
  const char *text = msg;
  size_t len = strlen(msg);
  if (rt->log.n_secrets) {
    fl_log_mask(&rt->log, msg, &masked);
    if (masked.oom) {
      fl_buf_free(&masked);
      return; /* a line lost to memory, not the run */
    }
    text = masked.data ? masked.data : "";
    len = masked.len;
  }
  if (fl_store_task_log(s->rec, r->rec_id, r->attempts > 0 ? r->attempts : 1,
                        level, fl_wall_time(), text, len) != FLOWLUA_OK)
    store_failed(s, "recording a log line");
  fl_buf_free(&masked);
}

void fl_record_worker(fl_sched *s, fl_taskrun *r) {
  if (!s->rec || r->worker_pid <= 0) return;
  if (fl_store_task_worker(s->rec, r->rec_id, r->attempts, r->worker_host,
                           r->worker_pid) != FLOWLUA_OK)
    store_failed(s, "recording where an attempt runs");
}

/* The JSON of the value at idx, or NULL (not resumable). */
static int result_json(flowlua *rt, int idx, fl_buf *out) {
  if (fl_json_encode_value(rt->L, idx, out, NULL) != 0 || out->oom) return -1;
  /* The store never holds a secret: such a result is not kept. */
  if (fl_log_has_secret(&rt->log, out->data ? out->data : "", out->len))
    return -1;
  return 0;
}

/* Whether a result of len bytes of JSON may be stored for the task:
   warns, naming the task and the limit, when it may not. */
static int result_fits(fl_sched *s, const fl_taskdef *d, size_t len) {
  size_t limit = d->max_result ? d->max_result : FL_DEFAULT_MAX_RESULT;
  if (len <= limit) return 1;
  fl_log_printf(&s->rt->log, FLOWLUA_LOG_WARN, s->g->flow->name,
                "task '%s': its result is %zu bytes of JSON (%.1f MiB), over "
                "the limit of %zu bytes (%.1f MiB; task option max_result): "
                "not stored, so a resume runs the task again",
                d->name, len, len / 1048576.0, limit, limit / 1048576.0);
  return 0;
}

void fl_record_result(fl_sched *s, fl_taskrun *r, int idx) {
  /* nil is no result at all (store.h: FL_STORE_RESULT_NONE). */
  if (!s->rec || lua_isnil(s->rt->L, idx)) return;
  const fl_taskdef *d = s->g->nodes[r->node].def;
  fl_buf *b = &s->rt->result_json; /* reused: no allocation per task */
  fl_buf_reset(b);
  /* Not stored (store_result = false, or too large): recorded like a
     result that cannot be serialised, not resumable. The value still goes
     to the task's dependents in this run. */
  int ok = !d->no_store_result && !r->secret_result && result_json(s->rt, idx, b) == 0 &&
           result_fits(s, d, b->len);
  if (fl_store_task_result(s->rec, r->rec_id, ok ? fl_buf_str(b) : NULL,
                           ok ? b->len : 0) != FLOWLUA_OK)
    store_failed(s, "recording a result");
  if (b->cap > 65536) fl_buf_free(b); /* do not keep a big one */
}

/* A flush; with a journal, handed to the store's writer thread. */
static int store_flush(fl_store *st) {
  return fl_store_journalled(st) ? fl_store_flush_async(st) : fl_store_flush(st);
}

static int flush(fl_sched *s, const char *what) {
  flowlua *rt = s->rt;
  if (store_flush(rt->store) != FLOWLUA_OK) {
    store_failed(s, what);
    return -1;
  }
  rt->flush_epoch++;
  return 0;
}

/* With a journal, a flush only keeps the file current: one per this many
   buffered changes while the loop is busy (and one whenever it waits). */
#define BATCH_CHANGES 16384

int fl_record_before_start(fl_sched *s, fl_taskrun *r) {
  flowlua *rt = s->rt;
  if (!s->rec) return 0;
  if (s->store_error) return -1;
  if (fl_store_journalled(rt->store))
    return fl_store_buffered(rt->store) < BATCH_CHANGES
               ? 0
               : flush(s, "writing a batch of changes");
  /* Without a journal (PostgreSQL) too, a big batch goes to the store's
     writer thread while tasks go on; only a flush that makes an upstream
     durable waits (below), for this batch and every one before it. No
     new epoch: nothing is durable yet. */
  if (fl_store_buffered(rt->store) >= BATCH_CHANGES &&
      fl_store_flush_async(rt->store) != FLOWLUA_OK) {
    store_failed(s, "writing a batch of changes");
    return -1;
  }
  if (r->map_index) return 0; /* its map's upstream was made durable */
  const fl_dag *d = &s->g->dag;
  for (uint32_t k = d->up_off[r->node]; k < d->up_off[r->node + 1]; k++)
    if (s->runs[d->up[k]].rec_epoch == rt->flush_epoch)
      return flush(s, "making the upstream state durable");
  return 0;
}

void fl_record_idle(flowlua *rt) {
  if (!rt->store || fl_store_buffered(rt->store) == 0) return;
  if (store_flush(rt->store) != FLOWLUA_OK) {
    fl_log_printf(&rt->log, FLOWLUA_LOG_ERROR, NULL,
                  "writing the run history failed (retried at the next "
                  "flush): %s",
                  fl_store_errmsg(rt->store));
    return;
  }
  rt->flush_epoch++;
}

void fl_record_run_end(fl_sched *s) {
  if (!s->rec) return;
  /* The history records the counts the summary prints. */
  flowlua_outcome out;
  fl_fill_outcome(s, &out);
  fl_store_run_counts(s->rec, out.by_state, FLOWLUA_TASK_STATE_COUNT);
  if (fl_store_run_end(s->rec, s->state, fl_wall_time(), s->store_error) !=
      FLOWLUA_OK)
    fl_log_printf(&s->rt->log, FLOWLUA_LOG_ERROR, s->g->flow->name,
                  "recording the end of run %s: %s", s->run_id,
                  fl_store_errmsg(s->rt->store));
  s->rec = NULL;
  s->rt->flush_epoch++; /* run_end flushed everything (or, with a journal,
                            journalled it and handed it to the writer) */
}

/* ---- cache ---------------------------------------------------------------- */

/* The cache table holds the SHA-256 of a key, never the key: keys are often
   made from secrets (a token, a user's name). Rows written in clear by
   flowlua 0.5 never match a digest, so they are misses. */
static void cache_key_digest(const fl_taskrun *r, char hex[65]) {
  fl_sha256_hex(r->cache_key, strlen(r->cache_key), hex);
}

int fl_record_cache_get(fl_sched *s, fl_taskrun *r) {
  flowlua *rt = s->rt;
  if (!rt->store || !r->cache_key) return 0;
  const fl_taskdef *d = s->g->nodes[r->node].def;
  const char *json;
  size_t len;
  char key[65];
  cache_key_digest(r, key);
  int hit = fl_store_cache_get(rt->store, d->name, key, fl_wall_time(),
                               d->cache_for, &json, &len);
  if (hit < 0) {
    fl_log_printf(&rt->log, FLOWLUA_LOG_WARN, s->g->flow->name,
                  "reading the cache of task '%s' failed, so it runs: %s",
                  d->name, fl_store_errmsg(rt->store));
    return 0;
  }
  if (hit == 0) return 0;
  if (fl_json_decode_value(rt->L, json, len) != 0) {
    lua_pop(rt->L, 1); /* a damaged entry is a miss */
    return 0;
  }
  return 1;
}

void fl_record_cache_put(fl_sched *s, fl_taskrun *r, int idx) {
  flowlua *rt = s->rt;
  if (!rt->store || !r->cache_key) return;
  const fl_taskdef *d = s->g->nodes[r->node].def;
  fl_buf b = FL_BUF_INIT;
  char key[65];
  cache_key_digest(r, key);
  if (result_json(rt, idx, &b) == 0 &&
      b.len <= (d->max_result ? d->max_result : FL_DEFAULT_MAX_RESULT) &&
      fl_store_cache_put(rt->store, s->g->nodes[r->node].def->name,
                         key, fl_buf_str(&b), b.len,
                         fl_wall_time()) != FLOWLUA_OK)
    store_failed(s, "caching a result");
  fl_buf_free(&b);
}

/* ---- resume --------------------------------------------------------------- */

/* The stored task run that stands for key: the resumed run's own, or,
   where that run never got to it (not declared, or still Pending: it was
   killed first), the one in the run it resumed, and so on back. *from is
   the run it is in. */
static const fl_store_task_row *find_kept(const fl_store_run_detail *d,
                                          const char *key,
                                          const fl_store_run_detail **from) {
  for (; d; d = d->resumed) {
    const fl_store_task_row *t = fl_store_detail_find(d, key);
    if (t && t->state != FLOWLUA_TASK_PENDING) {
      *from = d;
      return t;
    }
  }
  return NULL;
}

int fl_record_restore(fl_sched *s, uint32_t node, int32_t map_index,
                      const char **from_run) {
  if (!s->resume || (s->rerun && s->rerun[node])) return 0;
  fl_buf key = FL_BUF_INIT;
  fl_graph_add_key(&key, s->g, node);
  if (map_index) fl_buf_addf(&key, "[%d]", (int)map_index);
  const fl_store_run_detail *from = NULL;
  const fl_store_task_row *t = find_kept(s->resume, fl_buf_str(&key), &from);
  fl_buf_free(&key);
  if (!t || !fl_store_task_reusable(t)) return 0;
  *from_run = from->run.run_id;
  if (t->result_kind == FL_STORE_RESULT_NONE) {
    lua_pushnil(s->rt->L);
    return 1;
  }
  if (fl_json_decode_value(s->rt->L, t->result, t->result_len) != 0) {
    lua_pop(s->rt->L, 1);
    return 0;
  }
  return 1;
}
