/*
 * store_prune.c — deleting old runs (`flowlua prune`, a serving process's
 * `--retention`), and giving their space back, a short transaction at a
 * time.
 *
 * A prune is a sequence of steps, each one transaction that holds the
 * write lock for about STEP_TARGET: a serving process runs them between
 * the events of its loop, and `flowlua prune` beside running flows never
 * keeps their writers waiting long. A step deletes what it can of the runs
 * in id order within its budget of rows — a big run's task runs over as
 * many steps as they take, its flow_run row last — so a prune killed
 * between two steps leaves every run either whole or on its way out, and
 * the next prune goes on from there. The budget adapts to how long the
 * last step took.
 *
 * Fire events and fire claims older than the cut go too, but for each
 * flow's newest claim (a serving process's catch-up starts from it). The
 * space comes back to the file system with incremental vacuum, in steps,
 * when the file has auto_vacuum = INCREMENTAL (every file created since
 * schema 6); an older file keeps the pages for later writes unless the
 * prune is asked to VACUUM it (one long step), which also converts it.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pg_store.h"

/* How long one step should hold the write lock, and the bounds of its
   budget (rows deleted per step). */
#define STEP_TARGET 0.004
#define BUDGET_MIN 256
#define BUDGET_MAX (1 << 20)
/* Pages given back per incremental vacuum step, at first (it adapts like
   the budget), and the bounds. */
#define VACUUM_PAGES 256
/* The WAL a prune lets grow before it copies it into the file, and the
   size its file is cut back to when it starts again from the beginning. */
#define PRUNE_CHECKPOINT_FRAMES 1024
#define PRUNE_WAL_LIMIT "4194304"
#define VACUUM_PAGES_MAX 65536

enum { P_RUNS, P_FIRE_EVENTS, P_CLAIMS, P_SPACE, P_CHECKPOINT, P_DONE };

struct fl_store_prune {
  fl_store *st;
  fl_store_prune_opts o;
  char *flow;          /* o.flow, copied */
  double cutoff;       /* runs ended before this (wall clock) go */
  int phase;
  int64_t after;       /* runs up to this id are done */
  int64_t current;     /* the run being deleted, 0: none */
  int64_t budget;      /* rows per step */
  int64_t vacuum_pages; /* pages per incremental vacuum step */
  int checkpoints;      /* tries at the end to copy the whole WAL */
  double rate[6];       /* rows per second each kind of child is deleted at
                           (delete_children's K_*), as measured */
  fl_store_prune_result r;
};

/* ---- running one statement ------------------------------------------------ */

/* Prepares sql, binds ?1 = a, ?2 = b (int64), ?3 = the flow (NULL: none),
   ?4 = the cutoff, steps it once: the changes it made (>= 0), or a status
   (< 0 after fl__store_*_err) via *status. A SELECT's first column, when
   it returns a row, goes to *col (when not NULL). */
static int64_t run_sql(fl_store_prune *p, const char *sql, int64_t a, int64_t b,
                       int64_t *col, int *status) {
  fl_store *st = p->st;
  sqlite3_stmt *s = NULL;
  *status = fl__store_prepare(st, sql, &s, "cannot prune it");
  if (*status) return 0;
  sqlite3_bind_int64(s, 1, a);
  sqlite3_bind_int64(s, 2, b);
  if (p->flow) sqlite3_bind_text(s, 3, p->flow, -1, SQLITE_STATIC);
  sqlite3_bind_double(s, 4, p->cutoff);
  int rc = sqlite3_step(s);
  int64_t changes = 0;
  if (rc == SQLITE_ROW) {
    if (col) *col = sqlite3_column_type(s, 0) == SQLITE_NULL
                        ? 0 : sqlite3_column_int64(s, 0);
  } else if (rc == SQLITE_DONE) {
    if (col) *col = 0;
    changes = sqlite3_changes64(st->db);
  } else {
    *status = fl__store_sql_err(st, rc, "cannot prune it");
  }
  sqlite3_finalize(s);
  return changes;
}

/* ---- the runs ----------------------------------------------------------------- */

/* The next run to delete after p->after, or 0: ended before the cut, not
   Running, of the flow asked for, and Success only when failed runs are
   kept. */
static int next_run(fl_store_prune *p, int64_t *id) {
  char sql[512];
  snprintf(sql, sizeof sql,
           "SELECT id FROM flow_run WHERE id > ?1"
           " AND state <> 'Running' AND coalesce(ended_at, started_at) < ?4"
           "%s%s ORDER BY id LIMIT 1",
           p->flow ? " AND flow = ?3" : "",
           p->o.keep_failed ? " AND state = 'Success'" : "");
  int status;
  run_sql(p, sql, p->after, 0, id, &status);
  return status;
}

/* What a step deletes of a run, smaller tables first and task runs last
   (a run on its way out keeps its task runs longest, for whoever still
   reads it), each at its own rate: a packed row (up to 1,024 task runs in
   some 100 KB of JSON, whose pages are freed one by one) costs a hundred
   times a row. */
enum { K_EVENT, K_WORKER, K_LOG, K_LOG_DROPPED, K_PACK, K_ROW, K_COUNT };
static const char *const child_sql[K_COUNT] = {
    [K_EVENT] = "DELETE FROM task_event WHERE (run, n, seq) IN (SELECT run, n,"
                " seq FROM task_event WHERE run = ?1 LIMIT ?2)",
    [K_WORKER] = "DELETE FROM attempt_worker WHERE (run, n, attempt) IN"
                 " (SELECT run, n, attempt FROM attempt_worker WHERE run = ?1"
                 " LIMIT ?2)",
    [K_LOG] = "DELETE FROM task_log WHERE (run, n, seq) IN (SELECT run, n,"
              " seq FROM task_log WHERE run = ?1 LIMIT ?2)",
    [K_LOG_DROPPED] = "DELETE FROM task_log_dropped WHERE (run, n) IN"
                      " (SELECT run, n FROM task_log_dropped WHERE run = ?1"
                      " LIMIT ?2)",
    [K_PACK] = "DELETE FROM task_pack WHERE id IN (SELECT id FROM task_pack"
               " WHERE run = ?1 LIMIT ?2)",
    [K_ROW] = "DELETE FROM task_row WHERE (run, n) IN (SELECT run, n FROM"
              " task_row WHERE run = ?1 LIMIT ?2)"};
_Static_assert(K_COUNT == sizeof ((fl_store_prune *)0)->rate /
                              sizeof ((fl_store_prune *)0)->rate[0],
               "a rate for each kind of child");
/* Rows per second to start from, before a step has measured them. */
static const double start_rate[K_COUNT] = {50000, 50000, 20000, 50000, 500,
                                           50000};

/* Deletes what fits before the step's deadline of run p->current's
   children; *whole once none are left. */
static int delete_children(fl_store_prune *p, double deadline, int *whole) {
  *whole = 0;
  for (int k = 0; k < K_COUNT; k++) {
    for (;;) {
      double now = fl__store_mono_now();
      if (now >= deadline) return FLOWLUA_OK;
      double limit_d = p->rate[k] * (deadline - now);
      int64_t limit = limit_d < 8 ? 8 : limit_d > 1e6 ? 1000000 : (int64_t)limit_d;
      int status;
      int64_t n = run_sql(p, child_sql[k], p->current, limit, NULL, &status);
      if (status) return status;
      double took = fl__store_mono_now() - now;
      if (n > 0 && took > 0) /* the rate measured, smoothed */
        p->rate[k] = 0.5 * p->rate[k] + 0.5 * ((double)n / took);
      if (n < limit) break; /* none of this kind left */
    }
  }
  *whole = 1;
  return FLOWLUA_OK;
}

/* Counts run p->current's task runs into the result as it is picked: the
   counts its end recorded (a map counted by its elements, as `runs` shows
   them), else its rows and packed rows counted in SQL. */
static int count_tasks(fl_store_prune *p) {
  int status;
  int64_t n = 0;
  run_sql(p,
          "SELECT coalesce((SELECT sum(value) FROM flow_run r,"
          " json_each(r.task_counts) WHERE r.id = ?1 AND"
          " json_valid(r.task_counts)), (SELECT count(*) FROM task_run"
          " WHERE run = ?1))",
          p->current, 0, &n, &status);
  if (status == FLOWLUA_OK) p->r.task_runs += (size_t)n;
  return status;
}

/* Deletes run p->current itself, once it has nothing left. */
static int delete_run(fl_store_prune *p) {
  int status;
  run_sql(p, "DELETE FROM run_graph WHERE run = ?1", p->current, 0,
          NULL, &status);
  if (status == FLOWLUA_OK)
    run_sql(p, "DELETE FROM run_cancel WHERE run = ?1", p->current, 0,
            NULL, &status);
  if (status == FLOWLUA_OK)
    run_sql(p, "DELETE FROM flow_run WHERE id = ?1", p->current, 0,
            NULL, &status);
  if (status == FLOWLUA_OK) {
    p->r.runs++;
    p->after = p->current;
    p->current = 0;
  }
  return status;
}

static int step_runs(fl_store_prune *p, double deadline) {
  while (fl__store_mono_now() < deadline) {
    int status;
    if (!p->current) {
      int64_t id = 0;
      status = next_run(p, &id);
      if (status) return status;
      if (!id) {
        p->phase = P_FIRE_EVENTS;
        return FLOWLUA_OK;
      }
      p->current = id;
      status = count_tasks(p);
      if (status) return status;
    }
    int whole = 0;
    status = delete_children(p, deadline, &whole);
    if (status == FLOWLUA_OK && whole) status = delete_run(p);
    if (status) return status;
  }
  return FLOWLUA_OK;
}

/* ---- fire events and claims ------------------------------------------------- */

static int step_fires(fl_store_prune *p) {
  int status;
  if (p->phase == P_FIRE_EVENTS) {
    char sql[256];
    snprintf(sql, sizeof sql,
             "DELETE FROM fire_event WHERE id IN (SELECT id FROM fire_event"
             " WHERE at < ?4%s LIMIT ?2)",
             p->flow ? " AND flow = ?3" : "");
    int64_t n = run_sql(p, sql, 0, p->budget, NULL, &status);
    p->r.fire_events += (size_t)n;
    if (status == FLOWLUA_OK && n < p->budget) p->phase = P_CLAIMS;
    return status;
  }
  /* Each flow's newest claim stays: where its catch-up starts. */
  char sql[512];
  snprintf(sql, sizeof sql,
           "DELETE FROM fire WHERE (flow, scheduled_ms) IN (SELECT flow,"
           " scheduled_ms FROM fire f WHERE claimed_at < ?4%s"
           " AND scheduled_ms < (SELECT max(scheduled_ms) FROM fire g"
           " WHERE g.flow = f.flow) LIMIT ?2)",
           p->flow ? " AND flow = ?3" : "");
  int64_t n = run_sql(p, sql, 0, p->budget, NULL, &status);
  p->r.fire_claims += (size_t)n;
  if (status == FLOWLUA_OK && n < p->budget) p->phase = P_SPACE;
  return status;
}

/* Records a step's time, and adapts its size (*size, within lo..hi) to
   STEP_TARGET. */
static void note_step(fl_store_prune *p, double took, int64_t *size,
                      int64_t lo, int64_t hi) {
  p->r.steps++;
  if (took > p->r.longest_step) p->r.longest_step = took;
  if (took < STEP_TARGET / 2 && *size < hi)
    *size *= 2;
  else if (took > STEP_TARGET * 2 && *size > lo)
    *size /= 2;
}

/* ---- the space ----------------------------------------------------------------- */

static int64_t pragma_int(fl_store_prune *p, const char *sql, int *status) {
  int64_t v = 0;
  run_sql(p, sql, 0, 0, &v, status);
  return v;
}

/* One step of giving pages back: incremental vacuum on a file made for it;
   VACUUM when asked (converting the file); else nothing (the free pages
   are reused by later writes). Not in a transaction of its own. */
static int step_space(fl_store_prune *p) {
  int status = FLOWLUA_OK;
  int64_t mode = pragma_int(p, "PRAGMA auto_vacuum", &status);
  int64_t free_pages = status ? 0 : pragma_int(p, "PRAGMA freelist_count", &status);
  if (status) return status;
  if (free_pages == 0) {
    p->phase = P_CHECKPOINT;
  } else if (mode == 2) { /* INCREMENTAL */
    char sql[64];
    snprintf(sql, sizeof sql, "PRAGMA incremental_vacuum(%lld)",
             (long long)p->vacuum_pages);
    double t0 = fl__store_mono_now();
    status = fl__store_exec_sql(p->st, sql, "cannot give its free space back");
    note_step(p, fl__store_mono_now() - t0, &p->vacuum_pages, 16,
              VACUUM_PAGES_MAX);
  } else if (p->o.vacuum) {
    status = fl__store_exec_sql(p->st,
                                "PRAGMA auto_vacuum = INCREMENTAL; VACUUM",
                                "cannot VACUUM it");
    p->r.vacuumed = status == FLOWLUA_OK;
    p->phase = P_CHECKPOINT;
  } else {
    p->r.free_pages_kept = (size_t)free_pages;
    p->phase = P_CHECKPOINT;
  }
  return status;
}

/* ---- the steps ----------------------------------------------------------------- */

int fl_store_prune_begin(fl_store *st, const fl_store_prune_opts *o,
                         double now, fl_store_prune **out) {
  *out = NULL;
  if (!(o->older_than >= 0))
    return fl__store_set_err(st, FLOWLUA_EINVAL,
                             "prune: the age of the runs to delete must be 0 "
                             "or more seconds");
  fl_store_prune *p = calloc(1, sizeof *p);
  if (!p || (o->flow && !(p->flow = strdup(o->flow)))) {
    free(p);
    return fl__store_oom(st, "cannot prune it");
  }
  p->st = st;
  p->o = *o;
  p->o.flow = p->flow;
  p->cutoff = now - o->older_than;
  p->phase = P_RUNS;
  if (st->pg) {
    p->phase = 0; /* pg_prune.c's own phases */
    *out = p;
    return FLOWLUA_OK;
  }
  /* Its checkpoints are its own, between steps (fl_store_prune_step); and
     the WAL is cut back to a few MB at each of its resets, a little at a
     time, not all at the end while every writer waits. */
  st->defer_checkpoints = 1;
  sqlite3_exec(st->db, "PRAGMA journal_size_limit = " PRUNE_WAL_LIMIT, NULL,
               NULL, NULL);
  p->budget = 1024;
  p->vacuum_pages = VACUUM_PAGES;
  for (int k = 0; k < K_COUNT; k++) p->rate[k] = start_rate[k];
  *out = p;
  return FLOWLUA_OK;
}

int fl_store_prune_step(fl_store_prune *p) {
  fl_store *st = p->st;
  if (st->pg) return fl__pg_prune_step(st, &p->o, p->cutoff, &p->phase, &p->r);
  if (p->phase == P_DONE) return 0;
  /* No wait for this process's writer thread (a serving process's runs
     go on beside its prune): what it has not written yet is of runs that
     are Running in the file, which a prune never touches. */
  int status;
  /* The WAL the last steps grew is copied into the file between two steps,
     where it keeps no writer waiting (PASSIVE); not in the commit hook
     (see fl_store_prune_begin), where it would lengthen the step that
     every writer waits for. */
  if (st->wal_frames >= PRUNE_CHECKPOINT_FRAMES || p->phase == P_CHECKPOINT) {
    int log = 0, copied = 0;
    sqlite3_wal_checkpoint_v2(st->db, NULL, SQLITE_CHECKPOINT_PASSIVE, &log,
                              &copied);
    st->wal_frames = 0;
    if (p->phase == P_CHECKPOINT) {
      /* Done once the whole WAL is in the file (which a checkpoint then
         cuts to its new size). No TRUNCATE checkpoint: it would hold every
         writer off while the file system frees the pages (60 ms for
         100 MB here); the WAL file is already small (PRUNE_WAL_LIMIT). */
      if ((log >= 0 && copied == log) || ++p->checkpoints >= 20) {
        p->phase = P_DONE;
        return 0;
      }
      return 1;
    }
  }
  if (p->phase == P_SPACE) {
    status = step_space(p);
    return status ? status : 1;
  }
  double t0 = fl__store_mono_now();
  status = fl__store_tx_begin(st, "cannot prune it");
  if (status == FLOWLUA_OK)
    status = p->phase == P_RUNS ? step_runs(p, t0 + STEP_TARGET)
                                : step_fires(p);
  if (status == FLOWLUA_OK) status = fl__store_tx_commit(st, "cannot prune it");
  if (status != FLOWLUA_OK) {
    fl__store_tx_rollback(st);
    return status;
  }
  note_step(p, fl__store_mono_now() - t0, &p->budget, BUDGET_MIN, BUDGET_MAX);
  return 1;
}

const fl_store_prune_result *fl_store_prune_done(const fl_store_prune *p) {
  return &p->r;
}

void fl_store_prune_free(fl_store_prune *p) {
  if (!p) return;
  p->st->defer_checkpoints = 0;
  if (p->st->db)
    sqlite3_exec(p->st->db, "PRAGMA journal_size_limit = " FL_STORE_WAL_LIMIT,
                 NULL, NULL, NULL);
  free(p->flow);
  free(p);
}
