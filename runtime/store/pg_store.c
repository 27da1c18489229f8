/*
 * pg_store.c — the store on PostgreSQL: opening a history there, writing
 * frozen batches (pg_write.c) through a server restart, a run's start and
 * the lease its driver holds on it, fire claims and events, the cache's
 * reads, and crash detection by lease.
 *
 * Durability. There is no journal in front of PostgreSQL: the engine sees
 * fl_store_journalled() == 0 and flushes, waiting for the commit, before a
 * dependent task starts, so a Success is as durable as the server's
 * commit. A write that finds the server gone reconnects with backoff and
 * writes the same batches again, for up to retry_seconds; the batches are
 * idempotent upserts, so a COMMIT whose answer was lost costs nothing.
 *
 * Leases. A driver cannot be told alive by its pid from another host, so
 * each run it drives carries a lease (flow_run.lease_owner, lease_until,
 * in the server's clock, so that hosts need not agree on the time),
 * renewed by a thread with a connection of its own every third of the
 * lease, whatever the engine's thread is doing (a task may run for an
 * hour). A Running run whose lease lapsed is Crashed, and any host may
 * resume it.
 */
#define _GNU_SOURCE
#include "pg_store.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pg_api.h"

/* How long opening waits for a server that does not answer. */
#define CONNECT_SECONDS 10.0
/* A run's lease, and how long a write waits for a server that went away
   before the run fails (Crashed, resumable once the server is back):
   defaults, which FLOWLUA_PG_LEASE and FLOWLUA_PG_RETRY (seconds) change. */
#define LEASE_SECONDS 30.0

/* The server's clock, in seconds since the epoch, as the history's times. */
#define PG_NOW "extract(epoch FROM clock_timestamp())::float8"

/* The task runs' counts by state as a jsonb object, as the SQLite store's
   FL_STORE_COUNT_TASK_RUNS_SQL counts them; $1 is the run's id. */
#define PG_COUNTS_SQL                                                        \
  "(SELECT coalesce(jsonb_object_agg(state, n), '{}'::jsonb) FROM"          \
  " (SELECT state, count(*) AS n FROM task_run WHERE run = $1 AND"          \
  " (map_index > 0 OR key NOT IN (SELECT substr(key, 1, length(key) -"      \
  " length(map_index::text) - 2) FROM task_run WHERE run = $1 AND"          \
  " map_index > 0)) GROUP BY state) c)"

typedef struct pg_keeper {
  char *conninfo;   /* holds the password: never shown */
  char owner[400];  /* this process's lease token: host/pid/start */
  double lease, retry;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  pthread_t thread;
  int started, stop;
  int64_t *runs; /* the runs this process drives */
  size_t n_runs, cap_runs;
  fl_pg *conn;   /* the thread's own */
} pg_keeper;

int fl__pg_store_err(fl_store *st, int status) {
  if (status == FLOWLUA_OK) return status;
  fl_buf_reset(&st->err);
  st->err_busy = 0;
  fl_buf_adds(&st->err, fl_pg_errmsg(st->pg));
  if (st->err.oom) fl_buf_reset(&st->err);
  return status;
}

static void fmt_double(char *out, size_t n, double v) {
  snprintf(out, n, "%.17g", v);
}

/* ---- connection loss ---------------------------------------------------------- */

/* After a statement on c failed: whether to try it again, having
   reconnected (the connection was lost and came back before deadline).
   The error stays the statement's when the server stays away. */
static int reconnected_conn(fl_pg *c, double deadline, double retry) {
  if (!fl_pg_lost(c)) return 0;
  double left = deadline - fl__store_mono_now();
  if (left <= 0) return 0;
  fl_buf keep = FL_BUF_INIT;
  fl_buf_adds(&keep, fl_pg_errmsg(c));
  if (fl_pg_reconnect(c, left) == FLOWLUA_OK) {
    fl_buf_free(&keep);
    return 1;
  }
  /* Say what failed first, then why it could not be mended (keep holds
     the name already: the rest of the message follows it). */
  const char *head = fl_buf_str(&keep);
  size_t skip = strlen("state store '") + strlen(fl_pg_name(c)) + strlen("': ");
  fl_pg_set_err(c, FLOWLUA_EIO, "%s; reconnecting for %.0f s failed",
                strlen(head) > skip ? head + skip : head, retry);
  fl_buf_free(&keep);
  return 0;
}

static int reconnected(fl_store *st, double deadline) {
  return reconnected_conn(st->pg, deadline, st->pg_keeper->retry);
}

/* A statement that lost its connection: the whole time since it began
   (t0), the wait for a server going down included, is time waited for
   the state database (fl_store_busy_seconds), so that a serving loop that
   was held up says so, and does not blame the machine. */
static void count_wait(fl_store *st, double t0) {
  __atomic_fetch_add(&st->busy_ns,
                     (uint64_t)((fl__store_mono_now() - t0) * 1e9),
                     __ATOMIC_RELAXED);
}

/* One statement, again after a reconnect when the server went away; the
   statement must be one that may run twice. NULL on failure, with the
   error set. */
PGresult *fl__pg_query_retry(fl_store *st, const char *what, const char *sql,
                             int n, const char *const *params) {
  double t0 = fl__store_mono_now(), deadline = t0 + st->pg_keeper->retry;
  for (int tries = 0;; tries++) {
    PGresult *r = fl_pg_query(st->pg, what, sql, n, params);
    int lost = !r && fl_pg_lost(st->pg);
    if (r || !reconnected(st, deadline)) {
      if (tries || lost) count_wait(st, t0);
      return r;
    }
  }
}

/* A transaction of fn's statements, all again after a reconnect. fn must
   leave the same rows when it runs again after a commit whose answer was
   lost. */
typedef int (*tx_fn)(fl_store *st, void *ctx);
static int run_tx(fl_store *st, const char *what, tx_fn fn, void *ctx) {
  double t0 = fl__store_mono_now(), deadline = t0 + st->pg_keeper->retry;
  for (int tries = 0;; tries++) {
    int status = fl_pg_exec(st->pg, "BEGIN", what);
    if (status == FLOWLUA_OK) status = fn(st, ctx);
    if (status == FLOWLUA_OK) status = fl_pg_exec(st->pg, "COMMIT", what);
    int lost = status != FLOWLUA_OK && fl_pg_lost(st->pg);
    if (!lost && status != FLOWLUA_OK)
      /* Straight to libpq: fl_pg_exec would put the rollback's message
         in place of the failure's. */
      fl_pq()->clear(fl_pq()->exec(fl_pg_conn(st->pg), "ROLLBACK"));
    if (!lost || !reconnected(st, deadline)) {
      if (tries || lost) count_wait(st, t0);
      return status;
    }
  }
}

/* ---- the lease keeper ------------------------------------------------------------ */

/* "{1,2,3}": the runs, for = ANY($1::bigint[]). Under k->mu. */
static int runs_literal(const pg_keeper *k, fl_buf *out) {
  fl_buf_addc(out, '{');
  for (size_t i = 0; i < k->n_runs; i++)
    fl_buf_addf(out, "%s%" PRId64, i ? "," : "", k->runs[i]);
  fl_buf_addc(out, '}');
  return out->oom ? -1 : 0;
}

static void renew(pg_keeper *k, const char *runs) {
  char lease[40];
  fmt_double(lease, sizeof lease, k->lease);
  const char *params[3] = {runs, k->owner, lease};
  static const char sql[] =
      "UPDATE flow_run SET lease_until = " PG_NOW " + $3::float8"
      " WHERE id = ANY($1::bigint[]) AND lease_owner = $2"
      " AND state = 'Running'";
  if (!k->conn) {
    char err[512];
    if (fl_pg_connect(k->conninfo, k->lease / 3, &k->conn, err, sizeof err))
      return; /* the next turn tries again; the lease lapses meanwhile */
  }
  PGresult *r = fl_pg_query(k->conn, "cannot renew a run's lease", sql, 3,
                            params);
  if (r) {
    fl_pq()->clear(r);
  } else if (fl_pg_lost(k->conn)) {
    (void)fl_pg_reconnect(k->conn, k->lease / 3);
  }
}

static void *keeper_main(void *arg) {
  pg_keeper *k = arg;
  pthread_mutex_lock(&k->mu);
  while (!k->stop) {
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    double step = k->lease / 3;
    until.tv_sec += (time_t)step;
    until.tv_nsec += (long)((step - (double)(time_t)step) * 1e9);
    if (until.tv_nsec >= 1000000000L) {
      until.tv_sec++;
      until.tv_nsec -= 1000000000L;
    }
    while (!k->stop && pthread_cond_timedwait(&k->cv, &k->mu, &until) == 0) {
    }
    if (k->stop || !k->n_runs) continue;
    fl_buf runs = FL_BUF_INIT;
    int ok = runs_literal(k, &runs) == 0;
    pthread_mutex_unlock(&k->mu);
    if (ok) renew(k, fl_buf_str(&runs));
    fl_buf_free(&runs);
    pthread_mutex_lock(&k->mu);
  }
  pthread_mutex_unlock(&k->mu);
  return NULL;
}

static int keeper_add(fl_store *st, int64_t rowid) {
  pg_keeper *k = st->pg_keeper;
  pthread_mutex_lock(&k->mu);
  int status = FLOWLUA_OK;
  if (GROW(k->runs, k->cap_runs, k->n_runs))
    status = FLOWLUA_ENOMEM;
  else
    k->runs[k->n_runs++] = rowid;
  if (status == FLOWLUA_OK && !k->started) {
    /* Signals are for the engine's thread (flowlua_stop from a handler). */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    if (pthread_create(&k->thread, NULL, keeper_main, k) == 0)
      k->started = 1;
    else
      status = FLOWLUA_EIO;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
  }
  pthread_mutex_unlock(&k->mu);
  if (status == FLOWLUA_ENOMEM) return fl__store_oom(st, "cannot hold the run's lease");
  if (status)
    return fl__store_set_err(st, status,
                             "cannot start the thread that renews the runs' "
                             "leases");
  return FLOWLUA_OK;
}

void fl__pg_run_forget(fl_store *st, int64_t rowid) {
  pg_keeper *k = st->pg_keeper;
  pthread_mutex_lock(&k->mu);
  for (size_t i = 0; i < k->n_runs; i++)
    if (k->runs[i] == rowid) {
      k->runs[i] = k->runs[--k->n_runs];
      break;
    }
  pthread_mutex_unlock(&k->mu);
}

static void keeper_free(pg_keeper *k) {
  if (!k) return;
  if (k->started) {
    pthread_mutex_lock(&k->mu);
    k->stop = 1;
    pthread_cond_signal(&k->cv);
    pthread_mutex_unlock(&k->mu);
    pthread_join(k->thread, NULL);
  }
  pthread_mutex_destroy(&k->mu);
  pthread_cond_destroy(&k->cv);
  fl_pg_close(k->conn);
  if (k->conninfo) explicit_bzero(k->conninfo, strlen(k->conninfo));
  free(k->conninfo);
  free(k->runs);
  free(k);
}

/* ---- opening and closing ---------------------------------------------------------- */

int fl__pg_store_open(fl_store *st, const char *conninfo) {
  pg_keeper *k = calloc(1, sizeof *k);
  if (!k || !(k->conninfo = strdup(conninfo))) {
    free(k);
    return fl__store_oom(st, "cannot open it");
  }
  pthread_mutex_init(&k->mu, NULL);
  pthread_cond_init(&k->cv, NULL);
  k->lease = fl_pg_env_seconds("FLOWLUA_PG_LEASE", LEASE_SECONDS);
  k->retry = fl_pg_retry_seconds();
  snprintf(k->owner, sizeof k->owner, "%s/%" PRId64 "/%" PRId64, st->self.host,
           st->self.pid, st->self.start_time);
  st->pg_keeper = k;
  char err[1024];
  int status = fl_pg_connect(conninfo, CONNECT_SECONDS, &st->pg, err, sizeof err);
  if (status != FLOWLUA_OK) {
    /* err names the server, redacted, and says why. */
    fl_buf_reset(&st->err);
    fl_buf_adds(&st->err, err);
    return status;
  }
  int version = 0;
  status = fl_pg_schema_version(st->pg, &version);
  if (status == FLOWLUA_OK && version == 0 && st->opts.must_exist)
    return FLOWLUA_OK; /* nothing recorded yet: the caller sees no store */
  /* Migrating reads the version again, under its lock: only when there
     is something to do (a round trip less at every start). */
  if (status == FLOWLUA_OK && version != FL_PG_SCHEMA_VERSION)
    status = fl_pg_migrate(st->pg);
  return fl__pg_store_err(st, status);
}

int fl__pg_store_empty(const fl_store *st) {
  int version = 0;
  return fl_pg_schema_version(st->pg, &version) == FLOWLUA_OK && version == 0;
}

void fl__pg_store_close(fl_store *st) {
  keeper_free(st->pg_keeper);
  st->pg_keeper = NULL;
  fl_pg_close(st->pg);
  st->pg = NULL;
}

/* ---- writing batches ----------------------------------------------------------------- */

int fl__pg_write_chain(fl_pg *c, const fbatch *b, double retry) {
  double deadline = fl__store_mono_now() + retry;
  for (;;) {
    int status = fl__pg_write_batches(c, b);
    if (status == FLOWLUA_OK || !reconnected_conn(c, deadline, retry))
      return status;
  }
}

int fl__pg_write_queue(fl_store *st) {
  double t0 = fl__store_mono_now(), deadline = t0 + st->pg_keeper->retry;
  for (int tries = 0;; tries++) {
    int status = fl__pg_write_batches(st->pg, st->mem_head);
    int lost = status != FLOWLUA_OK && fl_pg_lost(st->pg);
    if (status == FLOWLUA_OK || !reconnected(st, deadline)) {
      if (tries || lost) count_wait(st, t0);
      return fl__pg_store_err(st, status);
    }
  }
}

int fl__pg_writer_connect(fl_store *st, fl_pg **out, double *retry) {
  char err[1024];
  *retry = st->pg_keeper->retry;
  int status = fl_pg_connect(st->pg_keeper->conninfo, CONNECT_SECONDS, out,
                             err, sizeof err);
  if (status != FLOWLUA_OK) {
    fl_buf_reset(&st->err);
    fl_buf_adds(&st->err, err);
  }
  return status;
}

/* ---- a run's start ------------------------------------------------------------------- */

typedef struct begin_tx {
  store_begin *b;
  const char *owner;
  double lease;
} begin_tx;

/* The runs of the chain of resumes that holds resumed_from (back to the
   first, and every run resuming one of them) that are Running under a
   live lease: a resume is refused while one is (the SQLite store's
   claim_resumed_run, by lease). $1 the run resumed. */
static const char claim_sql[] =
    "WITH RECURSIVE up(id, depth) AS (SELECT $1::text, 0"
    "  UNION ALL SELECT r.resumed_from, up.depth + 1 FROM flow_run r, up"
    "  WHERE r.run_id = up.id AND r.resumed_from IS NOT NULL"
    "  AND up.depth < 10000),"
    " root(id) AS (SELECT id FROM up ORDER BY depth DESC LIMIT 1),"
    " family(id) AS (SELECT id FROM root"
    "  UNION SELECT r.run_id FROM flow_run r, family"
    "  WHERE r.resumed_from = family.id)"
    " SELECT r.run_id, r.owner_host, r.owner_pid FROM flow_run r, family"
    " WHERE r.run_id = family.id AND r.state = 'Running'"
    " AND coalesce(r.lease_until, 0) >= " PG_NOW;

static int claim_resumed(fl_store *st, const char *resumed_from) {
  const char *what = "cannot claim the run";
  /* Resumes are few: one at a time in the whole database, so that two
     started at once cannot both find the chain free. */
  int status = fl_pg_exec(st->pg,
                          "SELECT pg_advisory_xact_lock(28829673625253218)",
                          what);
  if (status) return status;
  const char *params[1] = {resumed_from};
  PGresult *r = fl_pg_query(st->pg, what, claim_sql, 1, params);
  if (!r) return FLOWLUA_EIO;
  const fl_pq_api *pq = fl_pq();
  if (pq->ntuples(r) > 0) {
    const char *host = pq->getvalue(r, 0, 1);
    status = fl_pg_set_err(
        st->pg, FLOWLUA_ESTATE,
        "run %s is already being resumed by pid %s on %s%s%s (run %s); wait "
        "for that run to end",
        resumed_from, pq->getvalue(r, 0, 2),
        strcmp(host, st->self.host) == 0 ? "this host" : "host '",
        strcmp(host, st->self.host) == 0 ? "" : host,
        strcmp(host, st->self.host) == 0 ? "" : "'", pq->getvalue(r, 0, 0));
  }
  pq->clear(r);
  return status;
}

static int insert_begin(fl_store *st, void *ctx) {
  begin_tx *t = ctx;
  store_begin *b = t->b;
  const char *run_id = b->str[JB_RUN_ID];
  if (b->str[JB_RESUMED]) {
    int status = claim_resumed(st, b->str[JB_RESUMED]);
    if (status) return status;
  }
  char scheduled[40], started[40], pid[32], lease[40], start[32];
  fmt_double(scheduled, sizeof scheduled, b->scheduled_at);
  fmt_double(started, sizeof started, b->started_at);
  snprintf(pid, sizeof pid, "%" PRId64, b->pid);
  fmt_double(lease, sizeof lease, t->lease);
  snprintf(start, sizeof start, "%" PRId64, b->start);
  const char *params[15] = {
      run_id,           b->str[JB_FLOW],   b->str[JB_SCRIPT],
      b->str[JB_PARAMS], b->scheduled_at > 0 ? scheduled : NULL,
      started,          b->str[JB_RESUMED], b->str[JB_HOST] ? b->str[JB_HOST] : "",
      pid,              t->owner,          lease,
      b->str[JB_BOOT],  start,             b->str[JB_PARENT],
      b->str[JB_PARENT_TASK]};
  /* A start whose COMMIT was sent but not answered is found again, ours
     by its lease token and still Running, when the transaction runs a
     second time; any other row with the id is another run's. */
  PGresult *r = fl_pg_query(
      st->pg, "cannot record the run",
      "WITH ins AS (INSERT INTO flow_run(run_id, flow, script, params, state,"
      " scheduled_at, started_at, resumed_from, owner_host, owner_pid,"
      " lease_owner, lease_until, owner_boot, owner_start, parent_run,"
      " parent_task) VALUES ($1, $2,"
      " $3, $4, 'Running', $5::float8, $6::float8, $7, $8, $9::bigint, $10,"
      " " PG_NOW " + $11::float8, $12, $13::bigint, $14, $15)"
      " ON CONFLICT (run_id) DO NOTHING RETURNING id)"
      " SELECT id, 1 FROM ins UNION ALL SELECT id, 0 FROM flow_run"
      " WHERE run_id = $1 AND lease_owner = $10 AND state = 'Running'",
      15, params);
  if (!r) return FLOWLUA_EIO;
  const fl_pq_api *pq = fl_pq();
  int n = pq->ntuples(r);
  int status = FLOWLUA_OK;
  if (n == 0)
    status = fl_pg_set_err(st->pg, FLOWLUA_EINVAL,
                           "run id '%s' is already recorded", run_id);
  else
    b->rowid = strtoll(pq->getvalue(r, 0, 0), NULL, 10);
  pq->clear(r);
  if (status) return status;
  char id[32];
  snprintf(id, sizeof id, "%" PRId64, b->rowid);
  const char *gparams[3] = {id, b->str[JB_GRAPH] ? b->str[JB_GRAPH] : "[]",
                            b->str[JB_EDGES]};
  r = fl_pg_query(st->pg, "cannot record the run's graph",
                  "INSERT INTO run_graph(run, keys, edges) VALUES ($1::bigint,"
                  " $2::jsonb, $3::jsonb) ON CONFLICT (run) DO NOTHING",
                  3, gparams);
  if (!r) return FLOWLUA_EIO;
  pq->clear(r);
  return FLOWLUA_OK;
}

int fl__pg_run_begin(fl_store *st, store_begin *b) {
  begin_tx t = {b, st->pg_keeper->owner, st->pg_keeper->lease};
  int status = run_tx(st, "cannot record the run", insert_begin, &t);
  if (status) return fl__pg_store_err(st, status);
  return keeper_add(st, b->rowid);
}

/* ---- crash detection -------------------------------------------------------------------- */

typedef struct crashed {
  double now; /* the caller's: the Crashed changes' time */
  int64_t *ids;
  size_t n, cap;
} crashed;

/* Ends one run whose lease lapsed as Crashed, with its task runs caught
   on the way: $1 the run, $2 now, $3 the error, $4 its last sign of
   life. As the SQLite store's mark_one_crashed. */
static const char *const crash_sql[] = {
    "INSERT INTO task_event(run, n, seq, at, state, attempt, error)"
    " SELECT run, n, state_seq, state_at, state, attempts, error"
    " FROM task_run WHERE run = $1::bigint"
    " AND state IN ('Pending', 'Running', 'Retrying') AND state_seq > 0"
    " AND state_seq IS DISTINCT FROM started_seq"
    " AND $2::float8 IS NOT NULL AND $3::text IS NOT NULL"
    " AND $4::float8 IS NOT NULL ON CONFLICT DO NOTHING",
    "UPDATE task_run SET state = 'Crashed', state_at = $2::float8,"
    " state_seq = state_seq + 1, error = $3, ended_at = $4::float8"
    " WHERE run = $1::bigint AND state IN ('Pending', 'Running', 'Retrying')",
    "UPDATE flow_run SET state = 'Crashed', ended_at = $4::float8,"
    " error = $3, lease_owner = NULL, task_counts = " PG_COUNTS_SQL
    " WHERE id = $1::bigint AND state = 'Running' AND $2::float8 IS NOT NULL",
};

static int mark_crashed_tx(fl_store *st, void *ctx) {
  crashed *c = ctx;
  c->n = 0;
  const char *what = "cannot mark crashed runs";
  /* The runs whose lease lapsed, and the Running runs of this host, whose
     driver is known gone at once when it is (its pid, boot id and start
     time, as on SQLite). SKIP LOCKED: two processes looking at once each
     take their own. */
  const char *host[1] = {st->self.host};
  PGresult *r = fl_pg_query(
      st->pg, what,
      "SELECT id, owner_host, owner_pid, greatest(started_at, (SELECT"
      " max(state_at) FROM task_run t WHERE t.run = r.id)),"
      " coalesce(lease_until, 0) < " PG_NOW ", coalesce(owner_boot, ''),"
      " coalesce(owner_start, 0) FROM flow_run r WHERE state = 'Running'"
      " AND (coalesce(lease_until, 0) < " PG_NOW " OR owner_host = $1)"
      " FOR UPDATE OF r SKIP LOCKED",
      1, host);
  if (!r) return FLOWLUA_EIO;
  const fl_pq_api *pq = fl_pq();
  int status = FLOWLUA_OK;
  char now[40];
  fmt_double(now, sizeof now, c->now);
  for (int i = 0; status == FLOWLUA_OK && i < pq->ntuples(r); i++) {
    const char *id = pq->getvalue(r, i, 0);
    int lapsed = strcmp(pq->getvalue(r, i, 4), "t") == 0;
    int64_t pid = strtoll(pq->getvalue(r, i, 2), NULL, 10);
    if (!lapsed &&
        !fl__store_owner_gone(&st->self, pq->getvalue(r, i, 1),
                              pq->getvalue(r, i, 5), pid,
                              strtoll(pq->getvalue(r, i, 6), NULL, 10)))
      continue;
    char error[600];
    snprintf(error, sizeof error,
             lapsed ? "the process that ran it (pid %s on host '%s') stopped "
                      "renewing the run's lease before the run ended"
                    : "the process that ran it (pid %s on host '%s') died "
                      "before the run ended",
             pq->getvalue(r, i, 2), pq->getvalue(r, i, 1));
    const char *params[4] = {id, now, error, pq->getvalue(r, i, 3)};
    for (size_t s = 0; status == FLOWLUA_OK && s < 3; s++) {
      PGresult *q = fl_pg_query(st->pg, what, crash_sql[s], 4, params);
      if (!q) status = FLOWLUA_EIO;
      fl_pq()->clear(q);
    }
    if (status == FLOWLUA_OK) {
      if (GROW(c->ids, c->cap, c->n))
        status = fl_pg_set_err(st->pg, FLOWLUA_ENOMEM, "%s: out of memory", what);
      else
        c->ids[c->n++] = strtoll(id, NULL, 10);
    }
  }
  pq->clear(r);
  return status;
}

/* Whether any run may need marking (a lease lapsed, or a Running run of
   this host, whose driver may be gone): one read, and the transaction
   with its row locks only when there is one. 1, 0, or a status < 0. */
static int any_candidate(fl_store *st) {
  const char *host[1] = {st->self.host};
  PGresult *r = fl__pg_query_retry(
      st, "cannot look for crashed runs",
      "SELECT EXISTS (SELECT 1 FROM flow_run WHERE state = 'Running' AND"
      " (coalesce(lease_until, 0) < " PG_NOW " OR owner_host = $1))",
      1, host);
  if (!r) return fl__pg_store_err(st, FLOWLUA_EIO);
  int any = strcmp(fl_pq()->getvalue(r, 0, 0), "t") == 0;
  fl_pq()->clear(r);
  return any;
}

int fl__pg_mark_crashed(fl_store *st, double now, size_t *n_marked) {
  crashed c = {now, NULL, 0, 0};
  int any = any_candidate(st);
  if (any <= 0) return any;
  int status = run_tx(st, "cannot mark crashed runs", mark_crashed_tx, &c);
  if (status == FLOWLUA_OK && n_marked) *n_marked = c.n;
  free(c.ids);
  return fl__pg_store_err(st, status);
}

/* ---- fire times ------------------------------------------------------------------------ */

int fl__pg_claim_fire(fl_store *st, const char *flow, int64_t ms, double now) {
  char ms_s[32], at[40], pid[32];
  snprintf(ms_s, sizeof ms_s, "%" PRId64, ms);
  fmt_double(at, sizeof at, now);
  snprintf(pid, sizeof pid, "%" PRId64, st->self.pid);
  const char *params[5] = {flow, ms_s, at, st->self.host, pid};
  /* The key makes the claim once, whichever host gets there first; a
     claim whose answer was lost is found again as ours. */
  PGresult *r = fl__pg_query_retry(
      st, "cannot claim a scheduled fire",
      "WITH ins AS (INSERT INTO fire(flow, scheduled_ms, claimed_at,"
      " owner_host, owner_pid) VALUES ($1, $2::bigint, $3::float8, $4,"
      " $5::bigint) ON CONFLICT DO NOTHING RETURNING 1)"
      " SELECT EXISTS (SELECT 1 FROM ins) OR EXISTS (SELECT 1 FROM fire"
      " WHERE flow = $1 AND scheduled_ms = $2::bigint AND owner_host = $4"
      " AND owner_pid = $5::bigint AND claimed_at = $3::float8)",
      5, params);
  if (!r) return fl__pg_store_err(st, FLOWLUA_EIO);
  int claimed = strcmp(fl_pq()->getvalue(r, 0, 0), "t") == 0;
  fl_pq()->clear(r);
  return claimed;
}

int fl__pg_last_fire(fl_store *st, const char *flow, double *out) {
  const char *params[1] = {flow};
  PGresult *r = fl__pg_query_retry(st, "cannot read the last fire time",
                            "SELECT max(scheduled_ms) FROM fire WHERE flow = $1",
                            1, params);
  if (!r) return fl__pg_store_err(st, FLOWLUA_EIO);
  int found = !fl_pq()->getisnull(r, 0, 0);
  if (found) *out = (double)strtoll(fl_pq()->getvalue(r, 0, 0), NULL, 10) / 1000.0;
  fl_pq()->clear(r);
  return found;
}

int fl__pg_fire_event(fl_store *st, const char *flow, const char *outcome,
                      double first, double last, size_t count,
                      const char *detail, double now) {
  char first_s[40], last_s[40], count_s[32], at[40], pid[32];
  fmt_double(first_s, sizeof first_s, first);
  fmt_double(last_s, sizeof last_s, last);
  snprintf(count_s, sizeof count_s, "%zu", count);
  fmt_double(at, sizeof at, now);
  snprintf(pid, sizeof pid, "%" PRId64, st->self.pid);
  const char *params[9] = {flow,   outcome, first_s, last > 0 ? last_s : NULL,
                           count_s, detail, at,      pid,
                           st->self.host};
  /* Written again after a lost answer, it stays one row. */
  PGresult *r = fl__pg_query_retry(
      st, "cannot record what became of a fire time",
      "INSERT INTO fire_event(flow, outcome, scheduled_at, last_at, count,"
      " detail, at, owner_pid, owner_host) SELECT $1, $2, $3::float8,"
      " $4::float8, $5::int, $6, $7::float8, $8::bigint, $9 WHERE NOT EXISTS"
      " (SELECT 1 FROM fire_event WHERE flow = $1 AND scheduled_at ="
      " $3::float8 AND outcome = $2 AND at = $7::float8 AND owner_pid ="
      " $8::bigint AND owner_host = $9)",
      9, params);
  if (!r) return fl__pg_store_err(st, FLOWLUA_EIO);
  fl_pq()->clear(r);
  return FLOWLUA_OK;
}

/* ---- the cache ------------------------------------------------------------------------------ */

int fl__pg_cache_get(fl_store *st, const char *task, const char *key,
                     double *stored_at, fl_buf *json) {
  const char *params[2] = {task, key};
  PGresult *r = fl__pg_query_retry(st, "cannot read the cache",
                            "SELECT result, stored_at FROM cache WHERE task = $1"
                            " AND key = $2",
                            2, params);
  if (!r) return fl__pg_store_err(st, FLOWLUA_EIO);
  int found = fl_pq()->ntuples(r) > 0;
  if (found) {
    fl_buf_reset(json);
    fl_buf_adds(json, fl_pq()->getvalue(r, 0, 0));
    *stored_at = strtod(fl_pq()->getvalue(r, 0, 1), NULL);
  }
  fl_pq()->clear(r);
  if (found && json->oom) return fl__store_oom(st, "cannot read a cached result");
  return found;
}
