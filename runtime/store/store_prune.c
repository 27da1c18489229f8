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

#include "store_internal.h"

/* How long one step should hold the write lock, and the bounds of its
   budget (rows deleted per step). */
#define STEP_TARGET 0.015
#define BUDGET_MIN 256
#define BUDGET_MAX (1 << 20)
/* Pages given back per incremental vacuum step. */
#define VACUUM_PAGES 2048

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

/* Deletes up to *left rows of run p->current's task runs, state changes
   and workers; *whole is set when none are left. */
static int delete_children(fl_store_prune *p, int64_t *left, int *whole) {
  int status = FLOWLUA_OK;
  int64_t id = p->current, n;
  *whole = 0;
  /* Smaller tables first, task runs last: a run on its way out keeps its
     task runs longest, for whoever still reads it. */
  n = run_sql(p,
              "DELETE FROM task_event WHERE (run, n, seq) IN (SELECT run, n, seq"
              " FROM task_event WHERE run = ?1 LIMIT ?2)",
              id, *left, NULL, &status);
  if (status) return status;
  *left -= n;
  if (*left <= 0) return FLOWLUA_OK;
  n = run_sql(p,
              "DELETE FROM attempt_worker WHERE (run, n, attempt) IN (SELECT"
              " run, n, attempt FROM attempt_worker WHERE run = ?1 LIMIT ?2)",
              id, *left, NULL, &status);
  if (status) return status;
  *left -= n;
  if (*left <= 0) return FLOWLUA_OK;
  /* A packed row holds up to 1,024 task runs; it is counted by them, and
     costs its budget by its size. */
  int64_t packed = 0, pack_limit = *left / 64 + 1;
  run_sql(p,
          "SELECT coalesce(sum(CASE WHEN json_valid(rows) THEN"
          " json_array_length(rows) ELSE 0 END), 0) FROM (SELECT rows FROM"
          " task_pack WHERE run = ?1 LIMIT ?2)",
          id, pack_limit, &packed, &status);
  if (status) return status;
  n = run_sql(p,
              "DELETE FROM task_pack WHERE id IN (SELECT id FROM task_pack"
              " WHERE run = ?1 LIMIT ?2)",
              id, pack_limit, NULL, &status);
  if (status) return status;
  p->r.task_runs += (size_t)packed;
  *left -= n + packed / 64;
  if (n == pack_limit || *left <= 0) return FLOWLUA_OK;
  n = run_sql(p,
              "DELETE FROM task_row WHERE (run, n) IN (SELECT run, n FROM"
              " task_row WHERE run = ?1 LIMIT ?2)",
              id, *left, NULL, &status);
  if (status) return status;
  p->r.task_runs += (size_t)n;
  *left -= n;
  if (*left <= 0) return FLOWLUA_OK;
  *whole = 1;
  return FLOWLUA_OK;
}

/* Deletes run p->current itself, once it has nothing left. */
static int delete_run(fl_store_prune *p) {
  int status;
  run_sql(p, "DELETE FROM run_graph WHERE run = ?1", p->current, 0,
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

static int step_runs(fl_store_prune *p) {
  int64_t left = p->budget;
  while (left > 0) {
    if (!p->current) {
      int64_t id = 0;
      int status = next_run(p, &id);
      if (status) return status;
      if (!id) {
        p->phase = P_FIRE_EVENTS;
        return FLOWLUA_OK;
      }
      p->current = id;
    }
    int whole = 0;
    int status = delete_children(p, &left, &whole);
    if (status == FLOWLUA_OK && whole) status = delete_run(p);
    if (status) return status;
    left--;
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
    snprintf(sql, sizeof sql, "PRAGMA incremental_vacuum(%d)", VACUUM_PAGES);
    status = fl__store_exec_sql(p->st, sql, "cannot give its free space back");
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
  p->budget = 4096;
  *out = p;
  return FLOWLUA_OK;
}

int fl_store_prune_step(fl_store_prune *p) {
  fl_store *st = p->st;
  if (p->phase == P_DONE) return 0;
  /* What this process buffered goes first: a run it just ended is in the
     file before the prune looks. */
  int status = fl__store_writer_drain(st);
  if (status) return status;
  if (p->phase == P_CHECKPOINT) {
    /* The WAL the deletes grew is cut back (a reader in the way: later). */
    sqlite3_wal_checkpoint_v2(st->db, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL,
                              NULL);
    p->phase = P_DONE;
    return 0;
  }
  if (p->phase == P_SPACE) {
    status = step_space(p);
    return status ? status : 1;
  }
  double t0 = fl__store_mono_now();
  status = fl__store_tx_begin(st, "cannot prune it");
  if (status == FLOWLUA_OK)
    status = p->phase == P_RUNS ? step_runs(p) : step_fires(p);
  if (status == FLOWLUA_OK) status = fl__store_tx_commit(st, "cannot prune it");
  if (status != FLOWLUA_OK) {
    fl__store_tx_rollback(st);
    return status;
  }
  p->r.steps++;
  double took = fl__store_mono_now() - t0;
  if (took > p->r.longest_step) p->r.longest_step = took;
  if (took < STEP_TARGET / 2 && p->budget < BUDGET_MAX)
    p->budget *= 2;
  else if (took > STEP_TARGET * 2 && p->budget > BUDGET_MIN)
    p->budget /= 2;
  return 1;
}

const fl_store_prune_result *fl_store_prune_done(const fl_store_prune *p) {
  return &p->r;
}

void fl_store_prune_free(fl_store_prune *p) {
  if (!p) return;
  free(p->flow);
  free(p);
}
