/*
 * store_read.c — reading runs back: lists for `runs`, one run with its
 * task runs for `show` and resume, and the checks a resume makes.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pg_store.h"
#include "store_internal.h"

/* ---- reading back ------------------------------------------------------------------ */

/* Column i as a string copied into the arena; NULL for SQL NULL. *ok is
   cleared when memory runs out. */
static const char *col_str(struct fl_store_arena *a, sqlite3_stmt *s, int i,
                           int *ok) {
  const char *v = (const char *)sqlite3_column_text(s, i);
  if (!v) return NULL;
  char *p = fl__store_arena_dup(a, v, (size_t)sqlite3_column_bytes(s, i));
  if (!p) *ok = 0;
  return p;
}

/* The columns of flow_run every reader wants, in the order read_run_row
   reads them. */
#define RUN_COLUMNS                                                            \
  "r.id, r.run_id, r.flow, r.script, r.params, r.state, r.scheduled_at,"       \
  " r.started_at, r.ended_at, r.error, r.resumed_from, r.owner_pid,"           \
  " r.owner_host, r.task_counts, r.parent_run, r.parent_task"

static int read_run_row(struct fl_store_arena *a, sqlite3_stmt *s,
                        fl_store_run_row *r) {
  int ok = 1;
  memset(r, 0, sizeof *r);
  r->run_id = col_str(a, s, 1, &ok);
  r->flow = col_str(a, s, 2, &ok);
  r->script = col_str(a, s, 3, &ok);
  r->params_json = col_str(a, s, 4, &ok);
  r->state = fl_store_flow_state_parse((const char *)sqlite3_column_text(s, 5));
  r->scheduled_at = sqlite3_column_double(s, 6);
  r->started_at = sqlite3_column_double(s, 7);
  r->ended_at = sqlite3_column_double(s, 8);
  r->error = col_str(a, s, 9, &ok);
  r->resumed_from = col_str(a, s, 10, &ok);
  r->owner_pid = sqlite3_column_int64(s, 11);
  r->owner_host = col_str(a, s, 12, &ok);
  r->parent_run_id = col_str(a, s, 14, &ok);
  r->parent_task = col_str(a, s, 15, &ok);
  return ok;
}

/* The statements read_counts uses, prepared on first use and kept for
   the rows of one list: preparing costs more than running them, and a
   page of runs is read a few thousand times a second by the web UI. */
typedef struct counts_stmts {
  sqlite3_stmt *recorded, *counted;
} counts_stmts;

static void counts_stmts_free(counts_stmts *c) {
  sqlite3_finalize(c->recorded);
  sqlite3_finalize(c->counted);
}

/* Fills the counts of task runs by state: from the counts recorded at the
   run's end, or, for a run without them (still running) or with counts
   that are not a JSON object of counts (a damaged or forged file), by
   counting its task runs. */
static int read_counts(fl_store *st, counts_stmts *c, int64_t rowid,
                       const char *counts_json, fl_store_run_row *r) {
  sqlite3_stmt **s = counts_json ? &c->recorded : &c->counted;
  int status = FLOWLUA_OK;
  if (*s) {
    sqlite3_reset(*s);
    sqlite3_clear_bindings(*s);
  } else {
    status = fl__store_prepare(
        st,
        counts_json ? "SELECT key, value FROM json_each(CASE WHEN"
                      " json_valid(?2) THEN CASE WHEN json_type(?2) = 'object'"
                      " THEN ?2 END END)"
                    : FL_STORE_COUNT_TASK_RUNS_SQL,
        s, "cannot count a run's task runs");
    if (status) return status;
  }
  sqlite3_bind_int64(*s, 1, rowid);
  if (counts_json) sqlite3_bind_text(*s, 2, counts_json, -1, SQLITE_STATIC);
  int rc, rows = 0;
  while ((rc = sqlite3_step(*s)) == SQLITE_ROW) {
    rows++;
    int state = fl_store_task_state_parse((const char *)sqlite3_column_text(*s, 0));
    int64_t n = sqlite3_column_int64(*s, 1);
    if (n <= 0) continue;
    r->n_tasks += (size_t)n;
    if (state >= 0) r->by_state[state] += (size_t)n;
  }
  if (rc != SQLITE_DONE) status = fl__store_sql_err(st, rc, "cannot count a run's task runs");
  sqlite3_reset(*s); /* no read left open on the file */
  if (status == FLOWLUA_OK && counts_json && rows == 0 &&
      strcmp(counts_json, "{}") != 0)
    return read_counts(st, c, rowid, NULL, r); /* not counts: count the rows */
  return status;
}

int fl_store_list_runs(fl_store *st, const char *flow, int limit,
                       fl_store_run_list *out) {
  fl_store_run_filter f = {.flow = flow, .state = -1, .limit = limit};
  return fl_store_list_runs_where(st, &f, out);
}

/* FLOWLUA_EINVAL with a message unless `before` names a run: a page that
   starts at no run is the caller's mistake, not an empty page. */
static int check_page_start(fl_store *st, const char *before) {
  sqlite3_stmt *s = NULL;
  int status = fl__store_prepare(st, "SELECT 1 FROM flow_run WHERE run_id = ?1",
                                 &s, "cannot list runs");
  if (status) return status;
  sqlite3_bind_text(s, 1, before, -1, SQLITE_STATIC);
  int rc = sqlite3_step(s);
  sqlite3_finalize(s);
  if (rc == SQLITE_ROW) return FLOWLUA_OK;
  if (rc != SQLITE_DONE) return fl__store_sql_err(st, rc, "cannot list runs");
  return fl__store_set_err(st, FLOWLUA_EINVAL,
                           "no run '%s' to list the runs before", before);
}

int fl_store_list_runs_where(fl_store *st, const fl_store_run_filter *f,
                             fl_store_run_list *out) {
  if (st->pg) return fl__pg_store_err(st, fl__pg_list_runs_where(st->pg, f, out));
  memset(out, 0, sizeof *out);
  /* What this handle handed to its writer (a run's end) is read back. */
  int drained = fl__store_writer_drain(st);
  if (drained) return drained;
  if (!(out->arena_ = fl__store_arena_new()))
    return fl__store_oom(st, "cannot list runs");
  if (f->before) {
    int checked = check_page_start(st, f->before);
    if (checked) return checked;
  }
  sqlite3_stmt *s = NULL;
  int status = fl__store_prepare(st,
                       "SELECT " RUN_COLUMNS " FROM flow_run r"
                       " WHERE (?1 IS NULL OR r.flow = ?1)"
                       " AND (?3 IS NULL OR r.state = ?3)"
                       " AND (?4 IS NULL OR (r.started_at, r.id) <"
                       " (SELECT b.started_at, b.id FROM flow_run b"
                       " WHERE b.run_id = ?4))"
                       " AND (?5 IS NULL OR r.started_at >= ?5)"
                       " AND (?6 IS NULL OR r.started_at < ?6)"
                       " ORDER BY r.started_at DESC, r.id DESC LIMIT ?2",
                       &s, "cannot list runs");
  if (status) return status;
  sqlite3_bind_text(s, 1, f->flow, -1, SQLITE_STATIC);
  sqlite3_bind_int(s, 2, f->limit > 0 ? f->limit : -1);
  if (f->state >= 0)
    sqlite3_bind_text(s, 3, fl__store_flow_state_name(f->state), -1, SQLITE_STATIC);
  sqlite3_bind_text(s, 4, f->before, -1, SQLITE_STATIC);
  if (f->since > 0) sqlite3_bind_double(s, 5, f->since);
  if (f->until > 0) sqlite3_bind_double(s, 6, f->until);
  size_t cap = 0;
  int rc;
  counts_stmts counts = {0};
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
    if (GROW(out->rows, cap, out->n)) {
      status = fl__store_oom(st, "cannot list runs");
      break;
    }
    fl_store_run_row *r = &out->rows[out->n];
    if (!read_run_row(out->arena_, s, r)) {
      status = fl__store_oom(st, "cannot list runs");
      break;
    }
    out->n++;
    status = read_counts(st, &counts, sqlite3_column_int64(s, 0),
                         (const char *)sqlite3_column_text(s, 13), r);
    if (status) break;
  }
  if (status == FLOWLUA_OK && rc != SQLITE_DONE)
    status = fl__store_sql_err(st, rc, "cannot list runs");
  sqlite3_finalize(s);
  counts_stmts_free(&counts);
  return status;
}

int fl_store_run_mark_get(fl_store *st, const char *run_id,
                          fl_store_run_mark *out) {
  if (st->pg) return fl__pg_store_err(st, fl__pg_run_mark(st->pg, run_id, out));
  memset(out, 0, sizeof *out);
  out->state = -1;
  int status = fl__store_writer_drain(st);
  if (status) return status;
  sqlite3_stmt *s = NULL;
  /* Only while the run goes (CASE evaluates the subqueries for a Running
     run alone), and from the tables, not the view task_run, which parses
     every pack: a pack is written once and never changes, so a new one
     (a higher id) is all there is to see of them. A task_row row's
     state_seq grows with each of its changes. */
  status = fl__store_prepare(
      st,
      "SELECT r.state, r.ended_at, CASE WHEN r.state = 'Running' THEN"
      " (SELECT count(*) || ' ' || coalesce(sum(t.state_seq), 0)"
      " FROM task_row t WHERE t.run = r.id) || ' ' ||"
      " (SELECT count(*) || ' ' || coalesce(max(p.id), 0)"
      " FROM task_pack p WHERE p.run = r.id) END"
      " FROM flow_run r WHERE r.run_id = ?1",
      &s, "cannot read a run's state");
  if (status) return status;
  sqlite3_bind_text(s, 1, run_id, -1, SQLITE_STATIC);
  int rc = sqlite3_step(s);
  if (rc == SQLITE_ROW) {
    out->state = fl_store_flow_state_parse((const char *)sqlite3_column_text(s, 0));
    out->ended_at = sqlite3_column_double(s, 1);
    const char *counts = (const char *)sqlite3_column_text(s, 2);
    long long rows = 0, seqs = 0, packs = 0, last_pack = 0;
    if (counts && sscanf(counts, "%lld %lld %lld %lld", &rows, &seqs, &packs,
                         &last_pack) == 4) {
      out->task_runs = rows + packs;
      out->changes = seqs + last_pack;
    }
  } else if (rc == SQLITE_DONE) {
    status = fl__store_set_err(st, FLOWLUA_EINVAL, "no run '%s'", run_id);
  } else {
    status = fl__store_sql_err(st, rc, "cannot read the state of run '%s'", run_id);
  }
  sqlite3_finalize(s);
  return status;
}

void fl_store_run_list_free(fl_store_run_list *l) {
  free(l->rows);
  fl__store_arena_free(l->arena_);
  memset(l, 0, sizeof *l);
}

/* Finds the flow_run row that ref names: "last", a full id, or a unique
   prefix of one. 0 with *rowid set, or an error with its message. */
static int resolve_run(fl_store *st, const char *ref, const char *flow,
                       int64_t *rowid) {
  if (!ref || !*ref)
    return fl__store_set_err(st, FLOWLUA_EINVAL, "no run id given");
  int last = strcmp(ref, "last") == 0;
  sqlite3_stmt *s = NULL;
  /* An exact id wins over the ids it is a prefix of. */
  int status = fl__store_prepare(
      st,
      /* "last" of any flow is the newest run no flow called: a parent
         starts before the subflows it calls. */
      last ? "SELECT id, run_id FROM flow_run"
             " WHERE (?2 IS NULL AND parent_run IS NULL) OR flow = ?2"
             " ORDER BY started_at DESC, id DESC LIMIT 1"
           : "SELECT id, run_id FROM flow_run WHERE (?2 IS NULL OR flow = ?2)"
             " AND substr(run_id, 1, length(?1)) = ?1"
             " ORDER BY run_id = ?1 DESC, started_at DESC LIMIT 6",
      &s, "cannot look up a run");
  if (status) return status;
  sqlite3_bind_text(s, 1, ref, -1, SQLITE_STATIC);
  sqlite3_bind_text(s, 2, flow, -1, SQLITE_STATIC);
  fl_buf matches = FL_BUF_INIT;
  int n = 0, rc, exact = 0;
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
    const char *id = (const char *)sqlite3_column_text(s, 1);
    if (n == 0) {
      *rowid = sqlite3_column_int64(s, 0);
      exact = last || (id && strcmp(id, ref) == 0);
    }
    if (n < 5) fl_buf_addf(&matches, "%s%s", n ? ", " : "", id ? id : "?");
    n++;
    if (exact) break;
  }
  if (rc != SQLITE_DONE && rc != SQLITE_ROW)
    status = fl__store_sql_err(st, rc, "cannot look up run '%s'", ref);
  else if (n == 0 && last)
    status = fl__store_set_err(st, FLOWLUA_EINVAL, "no run%s%s%s is recorded",
                     flow ? " of flow '" : "", flow ? flow : "", flow ? "'" : "");
  else if (n == 0)
    status = fl__store_set_err(st, FLOWLUA_EINVAL, "no run%s%s%s has an id starting with '%s'",
                     flow ? " of flow '" : "", flow ? flow : "", flow ? "'" : "",
                     ref);
  else if (n > 1 && !exact)
    status = fl__store_set_err(st, FLOWLUA_EINVAL,
                     "run id '%s' is ambiguous: it starts %s%d ids (%s%s); give "
                     "more of it",
                     ref, n > 5 ? "more than " : "", n > 5 ? 5 : n,
                     fl_buf_str(&matches), n > 5 ? ", ..." : "");
  fl_buf_free(&matches);
  sqlite3_finalize(s);
  return status;
}

static int load_graph(fl_store *st, fl__store_detail *x, int64_t rowid) {
  sqlite3_stmt *s = NULL;
  int status = fl__store_prepare(st,
                       "SELECT j.value FROM run_graph g, json_each(g.keys) j"
                       " WHERE g.run = ?1 ORDER BY j.key",
                       &s, "cannot read a run's graph");
  if (status) return status;
  sqlite3_bind_int64(s, 1, rowid);
  size_t cap = 0;
  int rc, ok = 1;
  while (ok && (rc = sqlite3_step(s)) == SQLITE_ROW) {
    if (GROW(x->graph, cap, x->pub.n_graph_keys)) {
      ok = 0;
      break;
    }
    const char *k = col_str(x->arena, s, 0, &ok);
    x->graph[x->pub.n_graph_keys++] = k ? k : "";
  }
  if (!ok)
    status = fl__store_oom(st, "cannot read a run's graph");
  else if (rc != SQLITE_DONE)
    status = fl__store_sql_err(st, rc, "cannot read a run's graph");
  sqlite3_finalize(s);
  x->pub.graph_keys = x->graph;
  return status;
}

/* Whether the run recorded edges, and whether their form can be used: the
   database may come from elsewhere, so an edge is checked before it is
   believed. That each end indexes a key is checked in load_edges, in C:
   json_array_length(keys) here was parsed again for every edge, which made
   a 100,000-task run's page take 40 s. */
static int edges_state(fl_store *st, int64_t rowid, int *state) {
  sqlite3_stmt *s = NULL;
  int status = fl__store_prepare(
      st,
      "SELECT edges IS NOT NULL, CASE WHEN json_valid(edges) AND"
      " json_type(edges) = 'array' THEN NOT EXISTS (SELECT 1 FROM"
      " json_each(edges) e WHERE e.type <> 'array'"
      " OR json_array_length(e.value) <> 3"
      " OR typeof(e.value ->> 0) <> 'integer'"
      " OR typeof(e.value ->> 1) <> 'integer')"
      " ELSE 0 END FROM run_graph WHERE run = ?1",
      &s, "cannot read a run's graph");
  if (status) return status;
  sqlite3_bind_int64(s, 1, rowid);
  int rc = sqlite3_step(s);
  *state = FL_STORE_EDGES_NONE;
  if (rc == SQLITE_ROW && sqlite3_column_int(s, 0))
    *state = sqlite3_column_int(s, 1) ? FL_STORE_EDGES_RECORDED
                                      : FL_STORE_EDGES_DAMAGED;
  if (rc != SQLITE_ROW && rc != SQLITE_DONE)
    status = fl__store_sql_err(st, rc, "cannot read a run's graph");
  sqlite3_finalize(s);
  return status;
}

/* The edges by SQL alone, whatever their form. */
static int edges_by_sql(fl_store *st, fl__store_detail *x, int64_t rowid) {
  int state = FL_STORE_EDGES_NONE;
  int status = edges_state(st, rowid, &state);
  x->pub.edges_state = state;
  if (status || state != FL_STORE_EDGES_RECORDED) return status;
  sqlite3_stmt *s = NULL;
  status = fl__store_prepare(st,
                             "SELECT e.value ->> 0, e.value ->> 1,"
                             " e.value ->> 2 FROM run_graph g,"
                             " json_each(g.edges) e WHERE g.run = ?1"
                             " ORDER BY e.key",
                             &s, "cannot read a run's graph");
  if (status) return status;
  sqlite3_bind_int64(s, 1, rowid);
  size_t cap = 0;
  int rc, ok = 1;
  int64_t n_keys = (int64_t)x->pub.n_graph_keys; /* load_graph came first */
  int in_range = 1;
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
    int64_t from = sqlite3_column_int64(s, 0), to = sqlite3_column_int64(s, 1);
    if (from < 0 || from >= n_keys || to < 0 || to >= n_keys) {
      in_range = 0;
      continue;
    }
    if (GROW(x->edges, cap, x->pub.n_edges)) {
      ok = 0;
      break;
    }
    x->edges[x->pub.n_edges++] = (fl_store_edge){
        (uint32_t)from, (uint32_t)to, sqlite3_column_int(s, 2) != 0};
  }
  if (ok && rc == SQLITE_DONE && !in_range) { /* an edge names no task */
    x->pub.edges_state = FL_STORE_EDGES_DAMAGED;
    x->pub.n_edges = 0;
  }
  if (!ok)
    status = fl__store_oom(st, "cannot read a run's graph");
  else if (rc != SQLITE_DONE)
    status = fl__store_sql_err(st, rc, "cannot read a run's graph");
  sqlite3_finalize(s);
  x->pub.edges = x->edges;
  return status;
}

/* The run's edges: their text parsed in C in the form flowlua writes
   (store_edges.c), else by SQL. */
static int load_edges(fl_store *st, fl__store_detail *x, int64_t rowid) {
  sqlite3_stmt *s = NULL;
  int status = fl__store_prepare(st, "SELECT edges FROM run_graph WHERE run = ?1",
                                 &s, "cannot read a run's graph");
  if (status) return status;
  sqlite3_bind_int64(s, 1, rowid);
  int rc = sqlite3_step(s), parsed = FL__EDGES_DONE;
  x->pub.edges_state = FL_STORE_EDGES_NONE;
  if (rc == SQLITE_ROW && sqlite3_column_type(s, 0) != SQLITE_NULL) {
    const char *text = (const char *)sqlite3_column_text(s, 0);
    parsed = text ? fl__store_parse_edges(text, (size_t)sqlite3_column_bytes(s, 0),
                                          (int64_t)x->pub.n_graph_keys, x)
                  : FL__EDGES_OOM;
  } else if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
    status = fl__store_sql_err(st, rc, "cannot read a run's graph");
  }
  sqlite3_finalize(s);
  if (status) return status;
  if (parsed == FL__EDGES_OOM) return fl__store_oom(st, "cannot read a run's graph");
  return parsed == FL__EDGES_SQL ? edges_by_sql(st, x, rowid) : FLOWLUA_OK;
}

/* A task run as loaded, before the runs are put in order. */
typedef struct loaded_task {
  fl_store_task_row row;
  uint32_t n;
  int packed; /* from task_pack: a task_row row of the same n wins */
} loaded_task;

typedef struct task_loader {
  struct fl_store_arena *arena;
  loaded_task *items;
  size_t n_items, cap;
} task_loader;

static int cmp_loaded(const void *a, const void *b) {
  const loaded_task *x = a, *y = b;
  if (x->n != y->n) return x->n < y->n ? -1 : 1;
  return x->packed - y->packed;
}

static loaded_task *loader_next(task_loader *l) {
  if (GROW(l->items, l->cap, l->n_items)) return NULL;
  loaded_task *t = &l->items[l->n_items++];
  memset(t, 0, sizeof *t);
  return t;
}

/* store_pack_fn: one packed task run into the loader (1: out of memory). */
static int load_packed(void *ctx, const store_pack_row *p) {
  task_loader *l = ctx;
  loaded_task *t = loader_next(l);
  if (!t) return 1;
  fl_store_task_row *r = &t->row;
  t->n = p->n;
  t->packed = 1;
  r->key = fl__store_arena_dup(l->arena, p->key, strlen(p->key));
  r->task = fl__store_arena_dup(l->arena, p->task, strlen(p->task));
  r->error = p->error ? fl__store_arena_dup(l->arena, p->error, strlen(p->error)) : NULL;
  r->map_index = p->map_index;
  r->state = p->state;
  r->attempts = p->attempts;
  r->started_at = p->started_at;
  r->ended_at = p->ended_at;
  r->result_kind = p->result_kind;
  if (r->result_kind == FL_STORE_RESULT_JSON && p->result) {
    r->result = fl__store_arena_dup(l->arena, p->result, p->result_len);
    r->result_len = p->result_len;
  } else if (r->result_kind == FL_STORE_RESULT_JSON) {
    r->result_kind = FL_STORE_RESULT_NONE;
  }
  return !r->key || !r->task || (p->error && !r->error) ||
         (p->result && r->result_kind == FL_STORE_RESULT_JSON && !r->result);
}

/* The run's task_row rows into the loader. */
static int load_rows(fl_store *st, task_loader *l, int64_t rowid) {
  sqlite3_stmt *s = NULL;
  int status = fl__store_prepare(st,
                       "SELECT n, key, task, map_index, state, attempts,"
                       " started_at, ended_at, error, result, result_kind"
                       " FROM task_row WHERE run = ?1",
                       &s, "cannot read a run's task runs");
  if (status) return status;
  sqlite3_bind_int64(s, 1, rowid);
  int rc, ok = 1;
  while (ok && (rc = sqlite3_step(s)) == SQLITE_ROW) {
    loaded_task *t = loader_next(l);
    if (!t) {
      ok = 0;
      break;
    }
    fl_store_task_row *r = &t->row;
    t->n = (uint32_t)sqlite3_column_int64(s, 0);
    r->key = col_str(l->arena, s, 1, &ok);
    r->task = col_str(l->arena, s, 2, &ok);
    r->map_index = sqlite3_column_int(s, 3);
    r->state = fl_store_task_state_parse((const char *)sqlite3_column_text(s, 4));
    r->attempts = sqlite3_column_int(s, 5);
    r->started_at = sqlite3_column_double(s, 6);
    r->ended_at = sqlite3_column_double(s, 7);
    r->error = col_str(l->arena, s, 8, &ok);
    r->result_kind = sqlite3_column_int(s, 10);
    if (r->result_kind == FL_STORE_RESULT_JSON) {
      r->result = col_str(l->arena, s, 9, &ok);
      r->result_len = r->result ? (size_t)sqlite3_column_bytes(s, 9) : 0;
      if (!r->result) r->result_kind = FL_STORE_RESULT_NONE;
    }
  }
  if (!ok)
    status = fl__store_oom(st, "cannot read a run's task runs");
  else if (rc != SQLITE_DONE)
    status = fl__store_sql_err(st, rc, "cannot read a run's task runs");
  sqlite3_finalize(s);
  return status;
}

/* The run's task_pack rows into the loader, parsed here (store_pack.c). */
static int load_packs(fl_store *st, task_loader *l, int64_t rowid) {
  sqlite3_stmt *s = NULL;
  int status = fl__store_prepare(st, "SELECT id, rows FROM task_pack WHERE run = ?1",
                             &s, "cannot read a run's task runs");
  if (status) return status;
  sqlite3_bind_int64(s, 1, rowid);
  fl_buf scratch = FL_BUF_INIT;
  int rc;
  while (status == FLOWLUA_OK && (rc = sqlite3_step(s)) == SQLITE_ROW) {
    const char *json = (const char *)sqlite3_column_text(s, 1);
    size_t len = (size_t)sqlite3_column_bytes(s, 1);
    int got = json ? fl__store_pack_read(json, len, &scratch, load_packed, l) : -1;
    if (got == 1 || scratch.oom)
      status = fl__store_oom(st, "cannot read a run's task runs");
    else if (got != 0)
      status = fl__store_set_err(st, FLOWLUA_EIO,
                             "task_pack row %lld is damaged: not a list of"
                             " task runs",
                             (long long)sqlite3_column_int64(s, 0));
  }
  if (status == FLOWLUA_OK && rc != SQLITE_DONE)
    status = fl__store_sql_err(st, rc, "cannot read a run's task runs");
  fl_buf_free(&scratch);
  sqlite3_finalize(s);
  return status;
}

/* Where each task run's latest attempt ran, for those that ran in a
   worker (attempt_worker); ns[i] is the number of d's task run i, in
   ascending order. */
static int load_workers(fl_store *st, fl__store_detail *x, int64_t rowid,
                        const uint32_t *ns) {
  fl_store_run_detail *d = &x->pub;
  sqlite3_stmt *s = NULL;
  int status = fl__store_prepare(st,
                                 "SELECT n, attempt, host, pid FROM attempt_worker"
                                 " WHERE run = ?1 ORDER BY n, attempt",
                                 &s, "cannot read where a run's attempts ran");
  if (status) return status;
  sqlite3_bind_int64(s, 1, rowid);
  int rc, ok = 1;
  size_t i = 0;
  while (ok && (rc = sqlite3_step(s)) == SQLITE_ROW) {
    int64_t n = sqlite3_column_int64(s, 0);
    while (i < d->n_tasks && ns[i] < n) i++;
    if (i == d->n_tasks) break;
    fl_store_task_row *t = &d->tasks[i];
    if (ns[i] != n || sqlite3_column_int(s, 1) > t->attempts) continue;
    t->worker_host = col_str(x->arena, s, 2, &ok);
    t->worker_pid = sqlite3_column_int64(s, 3);
  }
  if (!ok)
    status = fl__store_oom(st, "cannot read where a run's attempts ran");
  else if (rc != SQLITE_DONE && rc != SQLITE_ROW)
    status = fl__store_sql_err(st, rc, "cannot read where a run's attempts ran");
  sqlite3_finalize(s);
  return status;
}

static int load_tasks(fl_store *st, fl__store_detail *x, int64_t rowid) {
  task_loader l = {x->arena, NULL, 0, 0};
  int status = load_rows(st, &l, rowid);
  if (status == FLOWLUA_OK) status = load_packs(st, &l, rowid);
  fl_store_run_detail *d = &x->pub;
  uint32_t *ns = NULL; /* the numbers of d->tasks */
  if (status == FLOWLUA_OK && l.n_items &&
      (!(d->tasks = malloc(l.n_items * sizeof *d->tasks)) ||
       !(ns = malloc(l.n_items * sizeof *ns))))
    status = fl__store_oom(st, "cannot read a run's task runs");
  if (status != FLOWLUA_OK) {
    free(l.items);
    free(ns);
    return status;
  }
  /* In declaration order; a task run that changed after it was packed is
     in both tables, and its task_row row is the latest. */
  if (l.n_items) qsort(l.items, l.n_items, sizeof *l.items, cmp_loaded);
  for (size_t i = 0; i < l.n_items; i++) {
    if (i && l.items[i].n == l.items[i - 1].n) continue;
    ns[d->n_tasks] = l.items[i].n;
    fl_store_task_row *t = &d->tasks[d->n_tasks++];
    *t = l.items[i].row;
    if (!t->key) t->key = "";
    if (!t->task) t->task = "";
  }
  free(l.items);
  status = d->n_tasks ? load_workers(st, x, rowid, ns) : FLOWLUA_OK;
  x->numbers = ns; /* kept: store_logs.c names task runs by number */
  if (status) return status;
  if (fl__store_detail_index(x))
    return fl__store_oom(st, "cannot read a run's task runs");
  return FLOWLUA_OK;
}

/* The runs this one called as subflows, in the order they began: one
   query on the index flow_run_by_parent. */
static int load_subflows(fl_store *st, fl__store_detail *x) {
  sqlite3_stmt *s = NULL;
  int status = fl__store_prepare(
      st,
      "SELECT parent_task, run_id, state FROM flow_run"
      " WHERE parent_run = ?1 ORDER BY started_at, id",
      &s, "cannot read a run's subflows");
  if (status) return status;
  sqlite3_bind_text(s, 1, x->pub.run.run_id, -1, SQLITE_STATIC);
  int rc;
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
    if (fl__store_detail_add_subflow(
            x, (const char *)sqlite3_column_text(s, 0),
            (size_t)sqlite3_column_bytes(s, 0),
            (const char *)sqlite3_column_text(s, 1),
            (size_t)sqlite3_column_bytes(s, 1),
            fl_store_flow_state_parse(
                (const char *)sqlite3_column_text(s, 2)))) {
      status = fl__store_oom(st, "cannot read a run's subflows");
      break;
    }
  }
  if (status == FLOWLUA_OK && rc != SQLITE_DONE)
    status = fl__store_sql_err(st, rc, "cannot read the subflows of run '%s'",
                               x->pub.run.run_id);
  sqlite3_finalize(s);
  return status;
}

int fl_store_load_run(fl_store *st, const char *ref, const char *flow,
                      fl_store_run_detail **out) {
  if (st->pg)
    return fl__pg_store_err(st, fl__pg_load_run(st->pg, ref, flow, out));
  *out = NULL;
  int64_t rowid = 0;
  int status = fl__store_writer_drain(st);
  if (status) return status;
  status = resolve_run(st, ref, flow, &rowid);
  if (status) return status;
  fl__store_detail *x = fl__store_detail_new();
  if (!x) return fl__store_oom(st, "cannot read a run");
  sqlite3_stmt *s = NULL;
  const char *counts = NULL; /* recorded at the run's end */
  status = fl__store_prepare(st, "SELECT " RUN_COLUMNS " FROM flow_run r WHERE r.id = ?1",
                   &s, "cannot read a run");
  if (status == FLOWLUA_OK) {
    sqlite3_bind_int64(s, 1, rowid);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
      int ok = 1;
      counts = col_str(x->arena, s, 13, &ok);
      if (!ok || !read_run_row(x->arena, s, &x->pub.run))
        status = fl__store_oom(st, "cannot read a run");
    } else if (rc == SQLITE_DONE) {
      status = fl__store_set_err(st, FLOWLUA_EINVAL, "run '%s' was deleted while read",
                       ref);
    } else {
      status = fl__store_sql_err(st, rc, "cannot read run '%s'", ref);
    }
    sqlite3_finalize(s);
  }
  if (status == FLOWLUA_OK) status = load_graph(st, x, rowid);
  if (status == FLOWLUA_OK) status = load_edges(st, x, rowid);
  if (status == FLOWLUA_OK) status = load_tasks(st, x, rowid);
  if (status == FLOWLUA_OK) status = load_subflows(st, x);
  /* Counted as runs lists them: the engine's counts recorded at the end,
     else by the same rule as FL_STORE_COUNT_TASK_RUNS_SQL. */
  counts_stmts stmts = {0};
  if (status == FLOWLUA_OK && counts)
    status = read_counts(st, &stmts, rowid, counts, &x->pub.run);
  else if (status == FLOWLUA_OK && fl__store_detail_count(x))
    status = fl__store_oom(st, "cannot count a run's task runs");
  counts_stmts_free(&stmts);
  if (status) {
    fl_store_run_detail_free(&x->pub);
    return status;
  }
  *out = &x->pub;
  return FLOWLUA_OK;
}

int fl_store_task_reusable(const fl_store_task_row *t) {
  return t && (t->state == FLOWLUA_TASK_SUCCESS || t->state == FLOWLUA_TASK_CACHED) &&
         (t->result_kind == FL_STORE_RESULT_JSON ||
          t->result_kind == FL_STORE_RESULT_NONE);
}

static int cmp_str_ptr(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Marks in only_a[] the keys of a (in a's order) that b lacks. */
static int keys_missing(const char *const *a, size_t na, const char *const *b,
                        size_t nb, unsigned char *only_a) {
  const char **sorted = malloc((nb ? nb : 1) * sizeof *sorted);
  if (!sorted) return -1;
  if (nb) {
    memcpy(sorted, b, nb * sizeof *sorted);
    qsort(sorted, nb, sizeof *sorted, cmp_str_ptr);
  }
  for (size_t i = 0; i < na; i++)
    only_a[i] = !bsearch(&a[i], sorted, nb, sizeof *sorted, cmp_str_ptr);
  free(sorted);
  return 0;
}

/* Appends "N task(s) <verb>: 'a', 'b' ... and K more". */
static void list_keys(fl_buf *msg, const char *const *keys, size_t n,
                      const unsigned char *mark, size_t count,
                      const char *verb) {
  fl_buf_addf(msg, "%zu task%s %s: ", count, count == 1 ? "" : "s", verb);
  size_t shown = 0;
  for (size_t i = 0; i < n && shown < 10; i++) {
    if (!mark[i]) continue;
    fl_buf_addf(msg, "%s'%s'", shown ? ", " : "", keys[i]);
    shown++;
  }
  if (count > shown) fl_buf_addf(msg, " and %zu more", count - shown);
}

int fl_store_check_resume(const fl_store_run_detail *d, const char *flow,
                          const char *const *keys, size_t n, int force,
                          fl_buf *msg) {
  fl_buf scratch = FL_BUF_INIT;
  if (!msg) msg = &scratch;
  const fl_store_run_row *r = &d->run;
  int status = FLOWLUA_OK;
  if (flow && strcmp(r->flow, flow) != 0) {
    fl_buf_addf(msg, "run %s is a run of flow '%s', not of '%s'", r->run_id,
                r->flow, flow);
    status = FLOWLUA_ESTATE;
  } else if (r->state == FLOWLUA_FLOW_RUNNING) {
    fl_buf_addf(msg,
                "run %s is still running (pid %lld on host '%s'); only a "
                "Failed, Cancelled or Crashed run can be resumed",
                r->run_id, (long long)r->owner_pid,
                r->owner_host ? r->owner_host : "?");
    status = FLOWLUA_ESTATE;
  } else if (r->state != FLOWLUA_FLOW_FAILED &&
             r->state != FLOWLUA_FLOW_CANCELLED &&
             r->state != FLOWLUA_FLOW_CRASHED) {
    fl_buf_addf(msg,
                "run %s ended %s; only a Failed, Cancelled or Crashed run "
                "can be resumed",
                r->run_id, fl__store_flow_state_name(r->state));
    status = FLOWLUA_ESTATE;
  }
  if (status) goto done;
  unsigned char *added = calloc(n ? n : 1, 1);
  unsigned char *gone = calloc(d->n_graph_keys ? d->n_graph_keys : 1, 1);
  if (!added || !gone || keys_missing(keys, n, d->graph_keys, d->n_graph_keys, added) ||
      keys_missing(d->graph_keys, d->n_graph_keys, keys, n, gone)) {
    free(added);
    free(gone);
    fl_buf_adds(msg, "out of memory comparing graphs");
    status = FLOWLUA_ENOMEM;
    goto done;
  }
  size_t n_added = 0, n_gone = 0;
  for (size_t i = 0; i < n; i++) n_added += added[i];
  for (size_t i = 0; i < d->n_graph_keys; i++) n_gone += gone[i];
  if (n_added || n_gone) {
    fl_buf_addf(msg, "the graph of flow '%s' no longer matches run %s: ",
                r->flow, r->run_id);
    if (n_added) list_keys(msg, keys, n, added, n_added, "added");
    if (n_added && n_gone) fl_buf_adds(msg, "; ");
    if (n_gone) list_keys(msg, d->graph_keys, d->n_graph_keys, gone, n_gone, "removed");
    if (!force) status = FLOWLUA_EBUILD;
  }
  free(added);
  free(gone);
done:
  fl_buf_free(&scratch);
  return status;
}

/* ---- a run's attempts (the report's timeline) ---------------------------- */

void fl_store_attempt_list_free(fl_store_attempt_list *l) {
  free(l->items);
  fl__store_arena_free(l->arena_);
  memset(l, 0, sizeof *l);
}

typedef fl__store_task_number task_number;

/* One state change of a task run, as the view task_history gives it. */
typedef struct change {
  int64_t n, seq;
  double at;
  int state, attempt;
  const char *error; /* in the attempt list's arena */
} change;

typedef struct change_list {
  change *items;
  size_t n, cap;
} change_list;

static int cmp_change(const void *a, const void *b) {
  const change *x = a, *y = b;
  if (x->n != y->n) return x->n < y->n ? -1 : 1;
  return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static int add_change(change_list *l, change c) {
  if (GROW(l->items, l->cap, l->n)) return -1;
  l->items[l->n++] = c;
  return 0;
}

/* A task run's latest change and first Running, as task_row or a pack
   holds them, with its place in the detail (SIZE_MAX: none). */
typedef struct raw_task {
  uint32_t n;
  int packed; /* a task_row row of the same n wins, as in the view */
  int state, attempts;
  int64_t state_seq, started_seq; /* started_seq 0: none */
  double state_at, started_at;
  const char *error; /* in the attempt list's arena */
  size_t index;
} raw_task;

typedef struct raw_reader {
  const fl_store_run_detail *d;
  struct fl_store_arena *arena;
  raw_task *items;
  size_t n, cap;
} raw_reader;

static int cmp_raw(const void *a, const void *b) {
  const raw_task *x = a, *y = b;
  if (x->n != y->n) return x->n < y->n ? -1 : 1;
  return x->packed - y->packed;
}

/* Adds a task run; 1 when out of memory. */
static int raw_add(raw_reader *r, raw_task t, const char *key, const char *error) {
  const fl_store_task_row *row = key ? fl_store_detail_find(r->d, key) : NULL;
  t.index = row ? (size_t)(row - r->d->tasks) : SIZE_MAX;
  t.error = NULL;
  if (error && !(t.error = fl__store_arena_dup(r->arena, error, strlen(error))))
    return 1;
  if (GROW(r->items, r->cap, r->n)) return 1;
  r->items[r->n++] = t;
  return 0;
}

/* store_pack_fn: a packed task run. */
static int raw_packed(void *ctx, const store_pack_row *p) {
  return raw_add(ctx, (raw_task){.n = p->n, .packed = 1, .state = p->state,
                                 .attempts = p->attempts,
                                 .state_seq = p->state_seq,
                                 .started_seq = p->started_seq,
                                 .state_at = p->state_at,
                                 .started_at = p->started_at},
                 p->key, p->error);
}

/* Every task run's row, from task_row and from the packs, parsed here as
   load_tasks does (the view task_run parses each pack's JSON in SQL, for
   every column). */
static int read_raw(fl_store *st, int64_t rowid, raw_reader *r) {
  static const char *const what = "cannot read a run's attempts";
  sqlite3_stmt *s = NULL;
  int status = fl__store_prepare(st,
                                 "SELECT n, key, state, state_at, state_seq,"
                                 " attempts, error, started_at, started_seq"
                                 " FROM task_row WHERE run = ?1",
                                 &s, what);
  if (status) return status;
  sqlite3_bind_int64(s, 1, rowid);
  int rc, oom = 0;
  while (!oom && (rc = sqlite3_step(s)) == SQLITE_ROW)
    oom = raw_add(r, (raw_task){.n = (uint32_t)sqlite3_column_int64(s, 0),
                                .state = fl_store_task_state_parse(
                                    (const char *)sqlite3_column_text(s, 2)),
                                .state_at = sqlite3_column_double(s, 3),
                                .state_seq = sqlite3_column_int64(s, 4),
                                .attempts = sqlite3_column_int(s, 5),
                                .started_at = sqlite3_column_double(s, 7),
                                .started_seq = sqlite3_column_int64(s, 8)},
                  (const char *)sqlite3_column_text(s, 1),
                  (const char *)sqlite3_column_text(s, 6));
  if (!oom && rc != SQLITE_DONE) status = fl__store_sql_err(st, rc, "%s", what);
  sqlite3_finalize(s);
  if (oom) return fl__store_oom(st, what);
  if (status) return status;
  status = fl__store_prepare(st, "SELECT id, rows FROM task_pack WHERE run = ?1",
                             &s, what);
  if (status) return status;
  sqlite3_bind_int64(s, 1, rowid);
  fl_buf scratch = FL_BUF_INIT;
  while (status == FLOWLUA_OK && (rc = sqlite3_step(s)) == SQLITE_ROW) {
    const char *json = (const char *)sqlite3_column_text(s, 1);
    size_t len = (size_t)sqlite3_column_bytes(s, 1);
    int got = json ? fl__store_pack_read(json, len, &scratch, raw_packed, r) : -1;
    if (got == 1 || scratch.oom)
      status = fl__store_oom(st, what);
    else if (got != 0)
      status = fl__store_set_err(st, FLOWLUA_EIO, "task_pack row %lld is damaged:"
                                 " not a list of task runs",
                                 (long long)sqlite3_column_int64(s, 0));
  }
  if (status == FLOWLUA_OK && rc != SQLITE_DONE)
    status = fl__store_sql_err(st, rc, "%s", what);
  fl_buf_free(&scratch);
  sqlite3_finalize(s);
  return status;
}

/*
 * Every state change of d's task runs, sorted by task run and seq, with
 * the numbers of d's task runs (sorted) in *numbers: what the view
 * task_history gives, built here from the rows (as load_tasks reads them)
 * and task_event. The view, sorted, parsed the packed task runs in SQL
 * twice and sorted all their changes there: 1.8 s for a 100,000-task run,
 * which the web UI's timeline waits for.
 */
static int read_changes(fl_store *st, const fl_store_run_detail *d,
                        struct fl_store_arena *arena, change_list *out,
                        task_number **numbers, size_t *n_numbers) {
  static const char *const what = "cannot read a run's attempts";
  sqlite3_stmt *s = NULL;
  int status = fl__store_prepare(st, "SELECT id FROM flow_run WHERE run_id = ?1",
                                 &s, what);
  if (status) return status;
  sqlite3_bind_text(s, 1, d->run.run_id, -1, SQLITE_STATIC);
  int rc = sqlite3_step(s);
  int64_t rowid = rc == SQLITE_ROW ? sqlite3_column_int64(s, 0) : -1;
  sqlite3_finalize(s);
  if (rc != SQLITE_ROW && rc != SQLITE_DONE)
    return fl__store_sql_err(st, rc, "%s", what);
  raw_reader raw = {d, arena, NULL, 0, 0};
  if (rowid >= 0) status = read_raw(st, rowid, &raw);
  qsort(raw.items, raw.n, sizeof *raw.items, cmp_raw);
  size_t cap = 0;
  int ok = 1;
  for (size_t k = 0; status == FLOWLUA_OK && ok && k < raw.n; k++) {
    const raw_task *t = &raw.items[k];
    if ((k && raw.items[k - 1].n == t->n) || t->index == SIZE_MAX) continue;
    if (GROW(*numbers, cap, *n_numbers)) {
      ok = 0;
      break;
    }
    (*numbers)[(*n_numbers)++] = (task_number){t->n, t->index};
    /* The first Running, when a later change is the row's latest. */
    if (t->started_seq > 0 && t->started_seq != t->state_seq &&
        add_change(out, (change){t->n, t->started_seq, t->started_at,
                                 FLOWLUA_TASK_RUNNING, 1, NULL}))
      ok = 0;
    if (ok && t->state_seq > 0 &&
        add_change(out, (change){t->n, t->state_seq, t->state_at, t->state,
                                 t->attempts, t->error}))
      ok = 0;
  }
  free(raw.items);
  if (!ok) return fl__store_oom(st, what);
  if (status) return status;
  /* The changes a row does not tell, in the key's order: few or none. */
  status = fl__store_prepare(st,
                             "SELECT e.n, e.seq, e.at, e.state, e.attempt,"
                             " e.error FROM task_event e WHERE e.run = ?1",
                             &s, what);
  if (status) return status;
  sqlite3_bind_int64(s, 1, rowid);
  while (ok && (rc = sqlite3_step(s)) == SQLITE_ROW) {
    const char *error = col_str(arena, s, 5, &ok);
    if (ok && add_change(out, (change){sqlite3_column_int64(s, 0),
                                       sqlite3_column_int64(s, 1),
                                       sqlite3_column_double(s, 2),
                                       fl_store_task_state_parse(
                                           (const char *)sqlite3_column_text(s, 3)),
                                       sqlite3_column_int(s, 4), error}))
      ok = 0;
  }
  if (ok && rc != SQLITE_DONE) status = fl__store_sql_err(st, rc, "%s", what);
  sqlite3_finalize(s);
  if (!ok) return fl__store_oom(st, what);
  if (status) return status;
  qsort(out->items, out->n, sizeof *out->items, cmp_change);
  qsort(*numbers, *n_numbers, sizeof **numbers, fl__store_cmp_task_number);
  return FLOWLUA_OK;
}

/* Where each attempt of out ran, for those that ran in a worker. */
static int attempt_workers(fl_store *st, const fl_store_run_detail *d,
                           const task_number *numbers, size_t n_numbers,
                           fl_store_attempt_list *out) {
  sqlite3_stmt *s = NULL;
  int status = fl__store_prepare(st,
                                 "SELECT w.n, w.attempt, w.host, w.pid"
                                 " FROM flow_run r JOIN attempt_worker w"
                                 " ON w.run = r.id WHERE r.run_id = ?1",
                                 &s, "cannot read where a run's attempts ran");
  if (status) return status;
  sqlite3_bind_text(s, 1, d->run.run_id, -1, SQLITE_STATIC);
  int rc, ok = 1;
  while (ok && (rc = sqlite3_step(s)) == SQLITE_ROW) {
    task_number want = {sqlite3_column_int64(s, 0), 0};
    const task_number *task = bsearch(&want, numbers, n_numbers,
                                      sizeof *numbers, fl__store_cmp_task_number);
    if (!task) continue;
    fl_store_attempt key = {.task = task->index,
                            .attempt = sqlite3_column_int(s, 1)};
    fl_store_attempt *a = out->n ? bsearch(&key, out->items, out->n,
                                           sizeof *out->items, fl__store_cmp_attempt)
                                 : NULL;
    if (!a) continue;
    a->worker_host = col_str(out->arena_, s, 2, &ok);
    a->worker_pid = sqlite3_column_int64(s, 3);
  }
  if (!ok)
    status = fl__store_oom(st, "cannot read where a run's attempts ran");
  else if (rc != SQLITE_DONE)
    status = fl__store_sql_err(st, rc, "cannot read where a run's attempts ran");
  sqlite3_finalize(s);
  return status;
}

int fl_store_load_attempts(fl_store *st, const fl_store_run_detail *d,
                           fl_store_attempt_list *out) {
  if (st->pg)
    return fl__pg_store_err(st, fl__pg_load_attempts(st->pg, d, out));
  memset(out, 0, sizeof *out);
  if (!(out->arena_ = fl__store_arena_new()))
    return fl__store_oom(st, "cannot read a run's attempts");
  task_number *numbers = NULL;
  size_t n_numbers = 0;
  change_list changes = {0};
  int status = read_changes(st, d, out->arena_, &changes, &numbers, &n_numbers);
  /* Every change of every task run, in order: a Running opens an attempt,
     the next change of the same task run closes it. */
  size_t cap = 0;
  const task_number *task = NULL;
  fl_store_attempt *open = NULL; /* the attempt the next change ends */
  int ok = 1;
  for (size_t k = 0; status == FLOWLUA_OK && ok && k < changes.n; k++) {
    const change *c = &changes.items[k];
    task_number want = {c->n, 0};
    if (!task || task->n != want.n) {
      task = bsearch(&want, numbers, n_numbers, sizeof *numbers,
                     fl__store_cmp_task_number);
      open = NULL;
    }
    if (!task) continue;
    if (open) {
      open->ended_at = c->at;
      open->state = c->state;
      open->error = c->error;
      open = NULL;
    }
    if (c->state != FLOWLUA_TASK_RUNNING || c->attempt < 1 ||
        c->attempt > d->tasks[task->index].attempts)
      continue;
    if (GROW(out->items, cap, out->n)) {
      ok = 0;
      break;
    }
    open = &out->items[out->n++];
    *open = (fl_store_attempt){.task = task->index,
                               .attempt = c->attempt,
                               .state = FLOWLUA_TASK_RUNNING,
                               .started_at = c->at};
  }
  free(changes.items);
  if (!ok) status = fl__store_oom(st, "cannot read a run's attempts");
  if (status == FLOWLUA_OK)
    status = attempt_workers(st, d, numbers, n_numbers, out);
  free(numbers);
  return status;
}

int fl_store_succeeded_fires(fl_store *st, const char *flow, double from,
                             double to, double **out, size_t *n) {
  if (st->pg)
    return fl__pg_store_err(
        st, fl__pg_succeeded_fires(st->pg, flow, from, to, out, n));
  *out = NULL;
  *n = 0;
  int status = fl__store_writer_drain(st);
  if (status) return status;
  sqlite3_stmt *s = NULL;
  status = fl__store_prepare(st,
                             "SELECT DISTINCT scheduled_at FROM flow_run"
                             " WHERE flow = ?1 AND state = 'Success' AND"
                             " scheduled_at BETWEEN ?2 AND ?3"
                             " ORDER BY scheduled_at",
                             &s, "cannot read the runs of a flow");
  if (status) return status;
  sqlite3_bind_text(s, 1, flow, -1, SQLITE_STATIC);
  sqlite3_bind_double(s, 2, from);
  sqlite3_bind_double(s, 3, to);
  size_t cap = 0;
  int rc;
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
    if (GROW(*out, cap, *n)) {
      status = fl__store_oom(st, "cannot read the runs of a flow");
      break;
    }
    (*out)[(*n)++] = sqlite3_column_double(s, 0);
  }
  if (status == FLOWLUA_OK && rc != SQLITE_DONE)
    status = fl__store_sql_err(st, rc, "cannot read the runs of flow '%s'", flow);
  sqlite3_finalize(s);
  return status;
}
