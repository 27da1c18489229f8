/*
 * pg_read.c — reading runs back from a PostgreSQL history: the twins of
 * store_read.c's fl_store_list_runs, fl_store_load_run,
 * fl_store_load_attempts and fl_store_succeeded_fires, with the same
 * results, the same order and the same messages (pg_store.h). The lists
 * and details they fill are the SQLite readers' own (store_arena.c,
 * store_detail.c), freed by the same calls.
 *
 * One statement per table and none per row: a 100,000-task run is a few
 * round trips. Values come back as text and are taken by their length
 * (PQgetlength), never scanned twice: results and params byte for byte as
 * the engine stored them, times as PostgreSQL's shortest exact form of a
 * double (read back to the same double).
 */
#define _GNU_SOURCE
#include "pg_store.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flowlua.h"
#include "pg_api.h"

/* ---- a statement's rows -------------------------------------------------- */

/* A result being read, with libpq's table at hand (fl_pq() once, not per
   value). */
typedef struct res {
  const fl_pq_api *pq;
  PGresult *r;
  int rows;
} res;

/* Runs sql with its text parameters into q. 0, or FLOWLUA_EIO with the
   message fl_pg_query set ("what: the server's reason"). */
static int query(fl_pg *c, res *q, const char *what, const char *sql, int n,
                 const char *const *params) {
  q->pq = fl_pq(); /* loaded: c connected */
  q->r = fl_pg_query(c, what, sql, n, params);
  q->rows = q->r ? q->pq->ntuples(q->r) : 0;
  return q->r ? FLOWLUA_OK : FLOWLUA_EIO;
}

static void res_clear(res *q) {
  if (q->r) q->pq->clear(q->r);
  q->r = NULL;
}

static int is_null(const res *q, int row, int col) {
  return q->pq->getisnull(q->r, row, col);
}

static const char *col_text(const res *q, int row, int col) {
  return is_null(q, row, col) ? NULL : q->pq->getvalue(q->r, row, col);
}

/* A double column; 0 for SQL NULL, as sqlite3_column_double. */
static double col_double(const res *q, int row, int col) {
  const char *v = col_text(q, row, col);
  return v ? strtod(v, NULL) : 0;
}

static int64_t col_int64(const res *q, int row, int col) {
  const char *v = col_text(q, row, col);
  return v ? strtoll(v, NULL, 10) : 0;
}

/* A JSON scalar read as an integer, as SQLite's column_int64 reads it
   (store_edges.c). */
#define json_int fl__store_json_int

/* A text column copied into the arena, by its length; NULL for SQL NULL.
   *ok is cleared when memory runs out. */
static const char *col_str(struct fl_store_arena *a, const res *q, int row,
                           int col, int *ok) {
  if (is_null(q, row, col)) return NULL;
  const char *v = q->pq->getvalue(q->r, row, col);
  char *p = fl__store_arena_dup(a, v, (size_t)q->pq->getlength(q->r, row, col));
  if (!p) *ok = 0;
  return p;
}

/* Whether s is valid UTF-8 (no overlong form, no surrogate, at most
   U+10FFFF), as the server checks text. A name that is not can match no
   stored one: the readers answer "none" as SQLite does, where the server
   would refuse the statement. */
static int valid_utf8(const char *s) {
  const unsigned char *p = (const unsigned char *)s;
  while (*p) {
    unsigned c = *p++;
    int more = c < 0x80 ? 0 : c >= 0xc2 && c <= 0xdf ? 1
             : c >= 0xe0 && c <= 0xef ? 2 : c >= 0xf0 && c <= 0xf4 ? 3 : -1;
    if (more < 0) return 0;
    unsigned cp = more ? c & (0x3fu >> more) : c;
    for (int i = 0; i < more; i++, p++) {
      if ((*p & 0xc0) != 0x80) return 0;
      cp = cp << 6 | (*p & 0x3fu);
    }
    if ((more == 2 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
        (more == 3 && (cp < 0x10000 || cp > 0x10ffff)))
      return 0;
  }
  return 1;
}

static int oom(fl_pg *c, const char *what) {
  return fl_pg_set_err(c, FLOWLUA_ENOMEM, "%s: out of memory", what);
}

/* ---- runs ---------------------------------------------------------------- */

/* The columns of flow_run every reader wants, in the order read_run_row
   reads them; the last says whether task_counts holds an object of counts
   (else the run's task runs are counted, as store_read.c does). */
#define RUN_COLUMNS                                                            \
  "r.id, r.run_id, r.flow, r.script, r.params, r.state, r.scheduled_at,"       \
  " r.started_at, r.ended_at, r.error, r.resumed_from, r.owner_pid,"           \
  " r.owner_host, jsonb_typeof(r.task_counts) = 'object', r.parent_run,"   \
  " r.parent_task"
enum { COL_ID = 0, COL_RUN_ID = 1, COL_HAS_COUNTS = 13 };

static int read_run_row(struct fl_store_arena *a, const res *q, int i,
                        fl_store_run_row *r) {
  int ok = 1;
  memset(r, 0, sizeof *r);
  r->run_id = col_str(a, q, i, 1, &ok);
  r->flow = col_str(a, q, i, 2, &ok);
  r->script = col_str(a, q, i, 3, &ok);
  r->params_json = col_str(a, q, i, 4, &ok);
  r->state = fl_store_flow_state_parse(col_text(q, i, 5));
  r->scheduled_at = col_double(q, i, 6);
  r->started_at = col_double(q, i, 7);
  r->ended_at = col_double(q, i, 8);
  r->error = col_str(a, q, i, 9, &ok);
  r->resumed_from = col_str(a, q, i, 10, &ok);
  r->owner_pid = col_int64(q, i, 11);
  r->owner_host = col_str(a, q, i, 12, &ok);
  r->parent_run_id = col_str(a, q, i, 14, &ok);
  r->parent_task = col_str(a, q, i, 15, &ok);
  return ok;
}

static int has_counts(const res *q, int i) {
  const char *v = col_text(q, i, COL_HAS_COUNTS);
  return v && v[0] == 't';
}

/* A listed run: its flow_run.id and its place in the list. */
typedef struct run_ref {
  int64_t id;
  size_t index;
} run_ref;

static int cmp_run_ref(const void *a, const void *b) {
  int64_t x = ((const run_ref *)a)->id, y = ((const run_ref *)b)->id;
  return (x > y) - (x < y);
}

/*
 * The counts of task runs by state of the runs refs names (sorted by id;
 * ids is the same as a PostgreSQL array), added to rows[ref.index]: from
 * the counts recorded at a run's end when they are an object; else, when
 * count_rows, by counting the run's task runs by the rule of
 * FL_STORE_COUNT_TASK_RUNS_SQL (every element of a map, and every other
 * task run but a map that has elements). All the runs in one statement.
 */
static int read_counts(fl_pg *c, const char *ids, int count_rows,
                       const run_ref *refs, size_t n, fl_store_run_row *rows) {
  static const char *const what = "cannot count a run's task runs";
  const char *params[] = {ids, count_rows ? "t" : "f"};
  res q;
  int status = query(
      c, &q, what,
      /* The parents of map elements as a join, not a NOT EXISTS per task
         run: the planner costs that one as 100,000 subplans, and JIT
         compiling it takes longer than counting. */
      "WITH r AS (SELECT id, task_counts FROM flow_run"
      " WHERE id = ANY($1::bigint[])),"
      " c AS (SELECT id FROM r WHERE $2::boolean"
      " AND jsonb_typeof(task_counts) IS DISTINCT FROM 'object'),"
      " p AS (SELECT DISTINCT e.run, left(e.key, length(e.key)"
      " - length(e.map_index::text) - 2) AS key FROM task_run e"
      " JOIN c ON c.id = e.run WHERE e.map_index > 0)"
      " SELECT r.id, e.key, e.value FROM r, jsonb_each_text(CASE WHEN"
      " jsonb_typeof(r.task_counts) = 'object' THEN r.task_counts END) e"
      " UNION ALL"
      " SELECT t.run, t.state, count(*)::text FROM task_run t"
      " JOIN c ON c.id = t.run LEFT JOIN p ON p.run = t.run"
      " AND p.key = t.key AND t.map_index <= 0 WHERE p.key IS NULL"
      " GROUP BY t.run, t.state",
      2, params);
  if (status) return status;
  for (int i = 0; i < q.rows; i++) {
    run_ref want = {col_int64(&q, i, 0), 0};
    const run_ref *ref = bsearch(&want, refs, n, sizeof *refs, cmp_run_ref);
    int64_t count = json_int(col_text(&q, i, 2));
    if (!ref || count <= 0) continue;
    fl_store_run_row *r = &rows[ref->index];
    int state = fl_store_task_state_parse(col_text(&q, i, 1));
    r->n_tasks += (size_t)count;
    if (state >= 0) r->by_state[state] += (size_t)count;
  }
  res_clear(&q);
  return FLOWLUA_OK;
}

/* The listed runs' ids, sorted, and as a PostgreSQL array in ids. */
static int list_refs(const res *q, run_ref **refs, fl_buf *ids) {
  *refs = malloc((q->rows > 0 ? (size_t)q->rows : 1) * sizeof **refs);
  if (!*refs) return -1;
  fl_buf_addc(ids, '{');
  for (int i = 0; i < q->rows; i++) {
    (*refs)[i] = (run_ref){col_int64(q, i, COL_ID), (size_t)i};
    fl_buf_addf(ids, "%s%lld", i ? "," : "", (long long)(*refs)[i].id);
  }
  fl_buf_addc(ids, '}');
  qsort(*refs, (size_t)q->rows, sizeof **refs, cmp_run_ref);
  return ids->oom ? -1 : 0;
}

/* store_read.c's check_page_start: `before` must name a run. */
static int check_page_start(fl_pg *c, const char *before) {
  static const char *const what = "cannot list runs";
  if (valid_utf8(before)) {
    res q;
    const char *params[] = {before};
    int status = query(c, &q, what, "SELECT 1 FROM flow_run WHERE run_id = $1",
                       1, params);
    if (status) return status;
    int found = q.rows > 0;
    res_clear(&q);
    if (found) return FLOWLUA_OK;
  }
  return fl_pg_set_err(c, FLOWLUA_EINVAL,
                       "no run '%s' to list the runs before", before);
}

int fl__pg_list_runs(fl_pg *c, const char *flow, int limit,
                     fl_store_run_list *out) {
  fl_store_run_filter f = {.flow = flow, .state = -1, .limit = limit};
  return fl__pg_list_runs_where(c, &f, out);
}

int fl__pg_list_runs_where(fl_pg *c, const fl_store_run_filter *f,
                           fl_store_run_list *out) {
  static const char *const what = "cannot list runs";
  memset(out, 0, sizeof *out);
  if (!(out->arena_ = fl__store_arena_new())) return oom(c, what);
  if (f->before) {
    int checked = check_page_start(c, f->before);
    if (checked) return checked;
  }
  if (f->flow && !valid_utf8(f->flow)) return FLOWLUA_OK; /* no such flow */
  char lim[32];
  snprintf(lim, sizeof lim, "%d", f->limit);
  char since[40], until[40];
  snprintf(since, sizeof since, "%.17g", f->since);
  snprintf(until, sizeof until, "%.17g", f->until);
  const char *params[] = {f->flow, f->limit > 0 ? lim : NULL, /* NULL: LIMIT ALL */
                          f->state >= 0 ? fl__store_flow_state_name(f->state) : NULL,
                          f->before, f->since > 0 ? since : NULL,
                          f->until > 0 ? until : NULL};
  res q;
  int status = query(c, &q, what,
                     "SELECT " RUN_COLUMNS " FROM flow_run r"
                     " WHERE ($1::text IS NULL OR r.flow = $1)"
                     " AND ($3::text IS NULL OR r.state = $3)"
                     " AND ($4::text IS NULL OR (r.started_at, r.id) <"
                     " (SELECT b.started_at, b.id FROM flow_run b"
                     " WHERE b.run_id = $4))"
                     " AND ($5::float8 IS NULL OR r.started_at >= $5::float8)"
                     " AND ($6::float8 IS NULL OR r.started_at < $6::float8)"
                     " ORDER BY r.started_at DESC, r.id DESC LIMIT $2::bigint",
                     6, params);
  if (status) return status;
  if (q.rows && !(out->rows = calloc((size_t)q.rows, sizeof *out->rows)))
    status = oom(c, what);
  for (int i = 0; status == FLOWLUA_OK && i < q.rows; i++) {
    if (!read_run_row(out->arena_, &q, i, &out->rows[i]))
      status = oom(c, what);
    else
      out->n++;
  }
  run_ref *refs = NULL;
  fl_buf ids = FL_BUF_INIT;
  if (status == FLOWLUA_OK && q.rows && list_refs(&q, &refs, &ids))
    status = oom(c, what);
  res_clear(&q);
  if (status == FLOWLUA_OK && out->n)
    status = read_counts(c, fl_buf_str(&ids), 1, refs, out->n, out->rows);
  free(refs);
  fl_buf_free(&ids);
  return status;
}

/* store_read.c's message for a ref that matches no run. */
static int no_match(fl_pg *c, int last, const char *ref, const char *flow) {
  if (last)
    return fl_pg_set_err(c, FLOWLUA_EINVAL, "no run%s%s%s is recorded",
                         flow ? " of flow '" : "", flow ? flow : "",
                         flow ? "'" : "");
  return fl_pg_set_err(c, FLOWLUA_EINVAL,
                       "no run%s%s%s has an id starting with '%s'",
                       flow ? " of flow '" : "", flow ? flow : "",
                       flow ? "'" : "", ref);
}

/*
 * Finds the run ref names ("last", a full id, or a unique prefix of one)
 * and leaves its flow_run row (RUN_COLUMNS) as row 0 of q. 0, or an error
 * with store_read.c's message.
 */
static int resolve_run(fl_pg *c, const char *ref, const char *flow, res *q) {
  q->r = NULL;
  if (!ref || !*ref) return fl_pg_set_err(c, FLOWLUA_EINVAL, "no run id given");
  int last = strcmp(ref, "last") == 0;
  if (!valid_utf8(ref) || (flow && !valid_utf8(flow)))
    return no_match(c, last, ref, flow);
  fl_buf what = FL_BUF_INIT;
  fl_buf_addf(&what, "cannot look up run '%s'", ref);
  const char *params[] = {ref, flow};
  /* An exact id wins over the ids it is a prefix of. */
  int status =
      last ? query(c, q, fl_buf_str(&what),
                   "SELECT " RUN_COLUMNS " FROM flow_run r"
                   " WHERE ($1::text IS NULL AND r.parent_run IS NULL)"
                   " OR r.flow = $1"
                   " ORDER BY r.started_at DESC, r.id DESC LIMIT 1",
                   1, params + 1)
           : query(c, q, fl_buf_str(&what),
                   "SELECT " RUN_COLUMNS " FROM flow_run r"
                   " WHERE ($2::text IS NULL OR r.flow = $2)"
                   " AND left(r.run_id, length($1::text)) = $1"
                   " ORDER BY r.run_id = $1 DESC, r.started_at DESC,"
                   " r.id DESC LIMIT 6",
                   2, params);
  fl_buf_free(&what);
  if (status) return status;
  fl_buf matches = FL_BUF_INIT;
  int n = 0, exact = 0;
  for (int i = 0; i < q->rows && !exact; i++) {
    const char *id = col_text(q, i, COL_RUN_ID);
    if (i == 0) exact = last || (id && strcmp(id, ref) == 0);
    if (n < 5) fl_buf_addf(&matches, "%s%s", n ? ", " : "", id ? id : "?");
    n++;
  }
  if (n == 0)
    status = no_match(c, last, ref, flow);
  else if (n > 1 && !exact)
    status = fl_pg_set_err(c, FLOWLUA_EINVAL,
                           "run id '%s' is ambiguous: it starts %s%d ids"
                           " (%s%s); give more of it",
                           ref, n > 5 ? "more than " : "", n > 5 ? 5 : n,
                           fl_buf_str(&matches), n > 5 ? ", ..." : "");
  fl_buf_free(&matches);
  if (status) res_clear(q);
  return status;
}

/* ---- a run's graph ------------------------------------------------------- */

/* The graph's keys, each put at its place (k.i) rather than sorted by
   the server: a sort of 100,000 keys would cost more than reading them. */
static int load_graph(fl_pg *c, fl__store_detail *x, const char *rowid) {
  static const char *const what = "cannot read a run's graph";
  res q;
  int status = query(c, &q, what,
                     "SELECT k.i, k.value FROM run_graph g,"
                     " jsonb_array_elements_text(g.keys) WITH ORDINALITY"
                     " k(value, i) WHERE g.run = $1::bigint",
                     1, &rowid);
  if (status) return status;
  size_t n = q.rows > 0 ? (size_t)q.rows : 0;
  int ok = 1;
  if (n && !(x->graph = malloc(n * sizeof *x->graph))) ok = 0;
  for (size_t i = 0; ok && i < n; i++) x->graph[i] = "";
  for (int row = 0; ok && row < q.rows; row++) {
    int64_t i = col_int64(&q, row, 0) - 1;
    const char *k = col_str(x->arena, &q, row, 1, &ok);
    if (i >= 0 && (size_t)i < n && k) x->graph[i] = k;
  }
  res_clear(&q);
  x->pub.graph_keys = x->graph;
  x->pub.n_graph_keys = n;
  return ok ? FLOWLUA_OK : oom(c, what);
}

/* ---- a run's edges: the common form is parsed by store_edges.c -------- */

/* Whether the run recorded edges, and whether they can be used, by SQL:
   the database may have been written by anyone, so an edge is checked
   against the keys before it is believed (store_read.c's rule). */
static int edges_state(fl_pg *c, const char *rowid, int *state) {
  res q;
  int status = query(
      c, &q, "cannot read a run's graph",
      /* The keys' count once (MATERIALIZED), not per edge: each use of
         g.keys would read all of it back from TOAST. */
      "WITH g AS MATERIALIZED (SELECT edges, jsonb_array_length(keys) - 1"
      " AS last FROM run_graph WHERE run = $1::bigint)"
      " SELECT g.edges IS NOT NULL, CASE WHEN jsonb_typeof(g.edges) = 'array'"
      " THEN NOT EXISTS (SELECT 1 FROM jsonb_array_elements(g.edges) e"
      " WHERE CASE WHEN jsonb_typeof(e) <> 'array' THEN true"
      " WHEN jsonb_array_length(e) <> 3 THEN true"
      " WHEN jsonb_typeof(e -> 0) <> 'number'"
      " OR jsonb_typeof(e -> 1) <> 'number' THEN true"
      " WHEN (e ->> 0) !~ '^-?[0-9]+$' OR (e ->> 1) !~ '^-?[0-9]+$' THEN true"
      " ELSE (e ->> 0)::numeric NOT BETWEEN 0 AND g.last"
      " OR (e ->> 1)::numeric NOT BETWEEN 0 AND g.last"
      " END) ELSE false END FROM g",
      1, &rowid);
  if (status) return status;
  *state = FL_STORE_EDGES_NONE;
  if (q.rows > 0 && col_text(&q, 0, 0)[0] == 't') {
    const char *usable = col_text(&q, 0, 1);
    *state = usable && usable[0] == 't' ? FL_STORE_EDGES_RECORDED
                                        : FL_STORE_EDGES_DAMAGED;
  }
  res_clear(&q);
  return FLOWLUA_OK;
}

/* The edges by SQL alone, whatever their form. */
static int edges_by_sql(fl_pg *c, fl__store_detail *x, const char *rowid) {
  static const char *const what = "cannot read a run's graph";
  int state = FL_STORE_EDGES_NONE;
  int status = edges_state(c, rowid, &state);
  x->pub.edges_state = state;
  if (status || state != FL_STORE_EDGES_RECORDED) return status;
  res q;
  status = query(c, &q, what,
                 "SELECT x.i, e ->> 0, e ->> 1, e ->> 2 FROM run_graph g,"
                 " jsonb_array_elements(g.edges) WITH ORDINALITY x(e, i)"
                 " WHERE g.run = $1::bigint",
                 1, &rowid);
  if (status) return status;
  size_t n = q.rows > 0 ? (size_t)q.rows : 0;
  if (n && !(x->edges = calloc(n, sizeof *x->edges))) status = oom(c, what);
  for (int row = 0; status == FLOWLUA_OK && row < q.rows; row++) {
    int64_t i = col_int64(&q, row, 0) - 1;
    if (i < 0 || (size_t)i >= n) continue;
    x->edges[i] = (fl_store_edge){(uint32_t)col_int64(&q, row, 1),
                                  (uint32_t)col_int64(&q, row, 2),
                                  json_int(col_text(&q, row, 3)) != 0};
  }
  if (status == FLOWLUA_OK) x->pub.n_edges = n;
  res_clear(&q);
  x->pub.edges = x->edges;
  return status;
}

/* The edges: none recorded, or parsed here, or read by SQL. After
   load_graph: the edges index its keys. */
static int load_edges(fl_pg *c, fl__store_detail *x, const char *rowid) {
  static const char *const what = "cannot read a run's graph";
  res q;
  int status = query(c, &q, what,
                     "SELECT edges::text FROM run_graph"
                     " WHERE run = $1::bigint AND edges IS NOT NULL",
                     1, &rowid);
  if (status) return status;
  x->pub.edges_state = FL_STORE_EDGES_NONE;
  int parsed = FL__EDGES_DONE;
  if (q.rows > 0)
    parsed = fl__store_parse_edges(q.pq->getvalue(q.r, 0, 0),
                         (size_t)q.pq->getlength(q.r, 0, 0),
                         (int64_t)x->pub.n_graph_keys, x);
  res_clear(&q);
  if (parsed == FL__EDGES_OOM) return oom(c, what);
  return parsed == FL__EDGES_SQL ? edges_by_sql(c, x, rowid) : FLOWLUA_OK;
}

/* ---- a run's task runs --------------------------------------------------- */

/* Where each task run's latest attempt ran, for those that ran in a
   worker (attempt_worker); ns[i] is the number of d's task run i, in
   ascending order. */
static int load_workers(fl_pg *c, fl__store_detail *x, const char *rowid,
                        const uint32_t *ns) {
  static const char *const what = "cannot read where a run's attempts ran";
  fl_store_run_detail *d = &x->pub;
  res q;
  int status = query(c, &q, what,
                     "SELECT n, attempt, host, pid FROM attempt_worker"
                     " WHERE run = $1::bigint ORDER BY n, attempt",
                     1, &rowid);
  if (status) return status;
  int ok = 1;
  size_t i = 0;
  for (int row = 0; ok && row < q.rows; row++) {
    int64_t n = col_int64(&q, row, 0);
    while (i < d->n_tasks && ns[i] < n) i++;
    if (i == d->n_tasks) break;
    fl_store_task_row *t = &d->tasks[i];
    if (ns[i] != n || col_int64(&q, row, 1) > t->attempts) continue;
    t->worker_host = col_str(x->arena, &q, row, 2, &ok);
    t->worker_pid = col_int64(&q, row, 3);
  }
  res_clear(&q);
  return ok ? FLOWLUA_OK : oom(c, what);
}

/* One task_run row into t. 0, or -1 when out of memory. */
static int read_task_row(struct fl_store_arena *a, const res *q, int i,
                         fl_store_task_row *t) {
  int ok = 1;
  memset(t, 0, sizeof *t);
  t->key = col_str(a, q, i, 1, &ok);
  t->task = col_str(a, q, i, 2, &ok);
  t->map_index = (int)col_int64(q, i, 3);
  t->state = fl_store_task_state_parse(col_text(q, i, 4));
  t->attempts = (int)col_int64(q, i, 5);
  t->started_at = col_double(q, i, 6);
  t->ended_at = col_double(q, i, 7);
  t->error = col_str(a, q, i, 8, &ok);
  t->result_kind = (int)col_int64(q, i, 10);
  if (t->result_kind == FL_STORE_RESULT_JSON) {
    t->result = col_str(a, q, i, 9, &ok);
    t->result_len = t->result ? (size_t)q->pq->getlength(q->r, i, 9) : 0;
    if (!t->result) t->result_kind = FL_STORE_RESULT_NONE;
  }
  if (!t->key) t->key = "";
  if (!t->task) t->task = "";
  return ok ? 0 : -1;
}

/* The run's task runs in declaration order (every one a task_run row: no
   task_pack here), where their latest attempts ran, and the index by key. */
static int load_tasks(fl_pg *c, fl__store_detail *x, const char *rowid) {
  static const char *const what = "cannot read a run's task runs";
  fl_store_run_detail *d = &x->pub;
  res q;
  int status = query(c, &q, what,
                     "SELECT n, key, task, map_index, state, attempts,"
                     " started_at, ended_at, error, result, result_kind"
                     " FROM task_run WHERE run = $1::bigint ORDER BY n",
                     1, &rowid);
  if (status) return status;
  uint32_t *ns = NULL; /* the numbers of d->tasks */
  if (q.rows && (!(d->tasks = malloc((size_t)q.rows * sizeof *d->tasks)) ||
                 !(ns = malloc((size_t)q.rows * sizeof *ns))))
    status = oom(c, what);
  for (int i = 0; status == FLOWLUA_OK && i < q.rows; i++) {
    ns[i] = (uint32_t)col_int64(&q, i, 0);
    if (read_task_row(x->arena, &q, i, &d->tasks[i]))
      status = oom(c, what);
    else
      d->n_tasks++;
  }
  res_clear(&q);
  if (status == FLOWLUA_OK && d->n_tasks)
    status = load_workers(c, x, rowid, ns);
  x->numbers = ns; /* kept: store_logs.c names task runs by number */
  if (status == FLOWLUA_OK && fl__store_detail_index(x))
    status = oom(c, what);
  return status;
}

/* The runs this one called as subflows, in the order they began: one
   query on the index flow_run_by_parent (as store_read.c's). */
static int load_subflows(fl_pg *c, fl__store_detail *x) {
  res q;
  const char *id = x->pub.run.run_id;
  int status = query(c, &q, "cannot read a run's subflows",
                     "SELECT parent_task, run_id, state FROM flow_run"
                     " WHERE parent_run = $1 ORDER BY started_at, id",
                     1, &id);
  if (status) return status;
  for (int i = 0; status == FLOWLUA_OK && i < q.rows; i++) {
    const char *task = col_text(&q, i, 0), *run_id = col_text(&q, i, 1);
    if (fl__store_detail_add_subflow(
            x, task, task ? (size_t)q.pq->getlength(q.r, i, 0) : 0, run_id,
            run_id ? (size_t)q.pq->getlength(q.r, i, 1) : 0,
            fl_store_flow_state_parse(col_text(&q, i, 2))))
      status = oom(c, "cannot read a run's subflows");
  }
  res_clear(&q);
  return status;
}

int fl__pg_load_run(fl_pg *c, const char *ref, const char *flow,
                    fl_store_run_detail **out) {
  *out = NULL;
  res q;
  int status = resolve_run(c, ref, flow, &q);
  if (status) return status;
  fl__store_detail *x = fl__store_detail_new();
  char rowid[32];
  snprintf(rowid, sizeof rowid, "%lld", (long long)col_int64(&q, 0, COL_ID));
  int counts = has_counts(&q, 0); /* recorded at the run's end */
  if (!x || !read_run_row(x->arena, &q, 0, &x->pub.run))
    status = oom(c, "cannot read a run");
  res_clear(&q);
  if (status == FLOWLUA_OK) status = load_graph(c, x, rowid);
  if (status == FLOWLUA_OK) status = load_edges(c, x, rowid);
  if (status == FLOWLUA_OK) status = load_tasks(c, x, rowid);
  if (status == FLOWLUA_OK) status = load_subflows(c, x);
  /* Counted as runs lists them: the engine's counts recorded at the end,
     else by the same rule as FL_STORE_COUNT_TASK_RUNS_SQL, from the task
     runs just loaded. */
  if (status == FLOWLUA_OK && counts) {
    char ids[40];
    snprintf(ids, sizeof ids, "{%s}", rowid);
    run_ref one = {strtoll(rowid, NULL, 10), 0};
    status = read_counts(c, ids, 0, &one, 1, &x->pub.run);
  } else if (status == FLOWLUA_OK && fl__store_detail_count(x)) {
    status = oom(c, "cannot count a run's task runs");
  }
  if (status) {
    if (x) fl_store_run_detail_free(&x->pub);
    return status;
  }
  *out = &x->pub;
  return FLOWLUA_OK;
}

/* ---- a run's attempts (the report's timeline) ---------------------------- */

typedef fl__store_task_number task_number;

/* The numbers of d's task runs, sorted, in *out (*count of them). The
   history names task runs by number, the detail by key. */
static int number_tasks(fl_pg *c, const fl_store_run_detail *d,
                        const char *rowid, task_number **out, size_t *count) {
  *out = NULL;
  *count = 0;
  fl_buf what = FL_BUF_INIT;
  fl_buf_addf(&what, "cannot read the task runs of run %s", d->run.run_id);
  res q;
  int status = query(c, &q, fl_buf_str(&what),
                     "SELECT n, key FROM task_run WHERE run = $1::bigint"
                     " ORDER BY n",
                     1, &rowid);
  fl_buf_free(&what);
  if (status) return status;
  if (q.rows && !(*out = malloc((size_t)q.rows * sizeof **out)))
    status = oom(c, "cannot read a run's task runs");
  for (int i = 0; status == FLOWLUA_OK && i < q.rows; i++) {
    const char *key = col_text(&q, i, 1);
    const fl_store_task_row *t = key ? fl_store_detail_find(d, key) : NULL;
    if (!t) continue; /* written since the detail was read */
    (*out)[(*count)++] = (task_number){col_int64(&q, i, 0),
                                       (size_t)(t - d->tasks)};
  }
  res_clear(&q);
  return status;
}

/* Where each attempt of out ran, for those that ran in a worker. */
static int attempt_workers(fl_pg *c, const char *rowid,
                           const task_number *numbers, size_t n_numbers,
                           fl_store_attempt_list *out) {
  static const char *const what = "cannot read where a run's attempts ran";
  res q;
  int status = query(c, &q, what,
                     "SELECT n, attempt, host, pid FROM attempt_worker"
                     " WHERE run = $1::bigint",
                     1, &rowid);
  if (status) return status;
  int ok = 1;
  for (int i = 0; ok && i < q.rows; i++) {
    task_number want = {col_int64(&q, i, 0), 0};
    const task_number *task = n_numbers ? bsearch(&want, numbers, n_numbers,
                                                  sizeof *numbers,
                                                  fl__store_cmp_task_number)
                                        : NULL;
    if (!task) continue;
    fl_store_attempt key = {.task = task->index,
                            .attempt = (int)col_int64(&q, i, 1)};
    fl_store_attempt *a = out->n ? bsearch(&key, out->items, out->n,
                                           sizeof *out->items, fl__store_cmp_attempt)
                                 : NULL;
    if (!a) continue;
    a->worker_host = col_str(out->arena_, &q, i, 2, &ok);
    a->worker_pid = col_int64(&q, i, 3);
  }
  res_clear(&q);
  return ok ? FLOWLUA_OK : oom(c, what);
}

/* The attempts read from every change of every task run, in order: a
   Running opens an attempt, the next change of the same task run closes
   it. */
static int read_attempts(fl_pg *c, const fl_store_run_detail *d,
                         const char *rowid, const task_number *numbers,
                         size_t n_numbers, fl_store_attempt_list *out) {
  fl_buf what = FL_BUF_INIT;
  fl_buf_addf(&what, "cannot read the attempts of run %s", d->run.run_id);
  res q;
  int status = query(c, &q, fl_buf_str(&what),
                     "SELECT n, at, state, attempt, error FROM task_history"
                     " WHERE run = $1::bigint ORDER BY n, seq",
                     1, &rowid);
  fl_buf_free(&what);
  if (status) return status;
  size_t cap = 0;
  const task_number *task = NULL;
  size_t open = SIZE_MAX; /* the attempt the next change ends */
  int ok = 1;
  for (int i = 0; ok && i < q.rows; i++) {
    task_number want = {col_int64(&q, i, 0), 0};
    if (!task || task->n != want.n) {
      task = n_numbers ? bsearch(&want, numbers, n_numbers, sizeof *numbers,
                                 fl__store_cmp_task_number)
                       : NULL;
      open = SIZE_MAX;
    }
    if (!task) continue;
    double at = col_double(&q, i, 1);
    int state = fl_store_task_state_parse(col_text(&q, i, 2));
    int64_t attempt = col_int64(&q, i, 3);
    if (open != SIZE_MAX) {
      fl_store_attempt *a = &out->items[open];
      a->ended_at = at;
      a->state = state;
      a->error = col_str(out->arena_, &q, i, 4, &ok);
      open = SIZE_MAX;
    }
    if (state != FLOWLUA_TASK_RUNNING || attempt < 1 ||
        attempt > d->tasks[task->index].attempts)
      continue;
    if (GROW(out->items, cap, out->n)) {
      ok = 0;
      break;
    }
    open = out->n++;
    out->items[open] = (fl_store_attempt){.task = task->index,
                                          .attempt = (int)attempt,
                                          .state = FLOWLUA_TASK_RUNNING,
                                          .started_at = at};
  }
  res_clear(&q);
  return ok ? FLOWLUA_OK : oom(c, "cannot read a run's attempts");
}

/* The flow_run.id of run_id, as text, for the statements that follow to
   name the run by its key: task_history is a view of a UNION, which a
   join on flow_run would read whole. */
static int run_rowid(fl_pg *c, const char *run_id, char *rowid, size_t size,
                     int *found) {
  fl_buf what = FL_BUF_INIT;
  fl_buf_addf(&what, "cannot read the attempts of run %s", run_id);
  res q;
  int status = query(c, &q, fl_buf_str(&what),
                     "SELECT id FROM flow_run WHERE run_id = $1", 1, &run_id);
  fl_buf_free(&what);
  if (status) return status;
  *found = q.rows > 0;
  if (*found) snprintf(rowid, size, "%lld", (long long)col_int64(&q, 0, 0));
  res_clear(&q);
  return FLOWLUA_OK;
}

int fl__pg_load_attempts(fl_pg *c, const fl_store_run_detail *d,
                         fl_store_attempt_list *out) {
  memset(out, 0, sizeof *out);
  if (!(out->arena_ = fl__store_arena_new()))
    return oom(c, "cannot read a run's attempts");
  char rowid[32];
  int found = 0;
  int status = run_rowid(c, d->run.run_id, rowid, sizeof rowid, &found);
  if (status || !found) return status; /* deleted since: no attempts */
  task_number *numbers = NULL;
  size_t n_numbers = 0;
  status = number_tasks(c, d, rowid, &numbers, &n_numbers);
  if (status == FLOWLUA_OK)
    status = read_attempts(c, d, rowid, numbers, n_numbers, out);
  if (status == FLOWLUA_OK)
    status = attempt_workers(c, rowid, numbers, n_numbers, out);
  free(numbers);
  return status;
}

/* ---- fire times ---------------------------------------------------------- */

/* A time as a float8 parameter, exact (17 digits), infinities by name. */
static void time_param(double t, char *buf, size_t size) {
  if (isinf(t))
    snprintf(buf, size, "%s", t > 0 ? "Infinity" : "-Infinity");
  else
    snprintf(buf, size, "%.17g", t);
}

int fl__pg_succeeded_fires(fl_pg *c, const char *flow, double from, double to,
                           double **out, size_t *n) {
  *out = NULL;
  *n = 0;
  if (!flow || !valid_utf8(flow)) return FLOWLUA_OK; /* no such flow */
  char a[40], b[40];
  time_param(from, a, sizeof a);
  time_param(to, b, sizeof b);
  const char *params[] = {flow, a, b};
  fl_buf what = FL_BUF_INIT;
  fl_buf_addf(&what, "cannot read the runs of flow '%s'", flow);
  res q;
  int status = query(c, &q, fl_buf_str(&what),
                     "SELECT DISTINCT scheduled_at FROM flow_run"
                     " WHERE flow = $1 AND state = 'Success' AND"
                     " scheduled_at BETWEEN $2::float8 AND $3::float8"
                     " ORDER BY scheduled_at",
                     3, params);
  fl_buf_free(&what);
  if (status) return status;
  if (q.rows && !(*out = malloc((size_t)q.rows * sizeof **out)))
    status = oom(c, "cannot read the runs of a flow");
  for (int i = 0; status == FLOWLUA_OK && i < q.rows; i++)
    (*out)[(*n)++] = col_double(&q, i, 0);
  res_clear(&q);
  return status;
}

/* store_read.c's fl_store_run_mark_get: the task runs are counted only
   while the run goes. */
int fl__pg_run_mark(fl_pg *c, const char *run_id, fl_store_run_mark *out) {
  static const char *const what = "cannot read a run's state";
  memset(out, 0, sizeof *out);
  out->state = -1;
  int found = 0;
  if (valid_utf8(run_id)) {
    res q;
    const char *params[] = {run_id};
    int status = query(c, &q, what,
                       "SELECT r.state, r.ended_at, CASE WHEN r.state ="
                       " 'Running' THEN (SELECT count(*) || ' ' ||"
                       " coalesce(sum(t.state_seq), 0) FROM task_run t"
                       " WHERE t.run = r.id) END FROM flow_run r"
                       " WHERE r.run_id = $1",
                       1, params);
    if (status) return status;
    if ((found = q.rows > 0)) {
      out->state = fl_store_flow_state_parse(col_text(&q, 0, 0));
      out->ended_at = col_double(&q, 0, 1);
      const char *counts = col_text(&q, 0, 2);
      long long n = 0, sum = 0;
      if (counts && sscanf(counts, "%lld %lld", &n, &sum) == 2) {
        out->task_runs = n;
        out->changes = sum;
      }
    }
    res_clear(&q);
  }
  return found ? FLOWLUA_OK
               : fl_pg_set_err(c, FLOWLUA_EINVAL, "no run '%s'", run_id);
}
