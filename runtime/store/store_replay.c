/*
 * store_replay.c — the store's view of other processes: runs whose
 * process died (marked Crashed, after replaying what its journal holds),
 * scheduled fire times claimed across processes, and what became of fire
 * times that did not start a run.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pg_store.h"

/* ---- crash detection and fires --------------------------------------------------- */

typedef struct crashed_run {
  int64_t rowid, pid;
  double last;
} crashed_run;

static int mark_one_crashed(fl_store *st, const crashed_run *c, double now) {
  char error[400];
  snprintf(error, sizeof error,
           "the process that ran it (pid %lld on host '%s') died before "
           "the run ended",
           (long long)c->pid, st->self.host);
  static const char *const sql[] = {
      /* The latest change of every task run caught on the way goes to the
         history (unless it is the first Running, which the row tells)... */
      "INSERT INTO task_event(run, n, seq, at, state, attempt, error)"
      " SELECT run, n, state_seq, state_at, state, attempts, error"
      " FROM task_row WHERE run = ?1" /* never packed: not ended */
      " AND state IN ('Pending', 'Running', 'Retrying') AND state_seq > 0"
      " AND state_seq IS NOT started_seq",
      /* ...and its new latest change is Crashed, ending it at the last sign
         of life of the run... */
      "UPDATE task_row SET state = 'Crashed', state_at = ?2,"
      " state_seq = state_seq + 1, error = ?3, ended_at = ?4"
      " WHERE run = ?1 AND state IN ('Pending', 'Running', 'Retrying')",
      /* ...and the run's, with its counts. */
      "UPDATE flow_run SET state = 'Crashed', ended_at = ?4, error = ?3,"
      " task_counts = (SELECT json_group_object(state, n) FROM ("
      FL_STORE_COUNT_TASK_RUNS_SQL "))"
      " WHERE id = ?1 AND state = 'Running'",
  };
  for (size_t i = 0; i < sizeof sql / sizeof sql[0]; i++) {
    sqlite3_stmt *s = NULL;
    int status = fl__store_prepare(st, sql[i], &s, "cannot mark a crashed run");
    if (status) return status;
    sqlite3_bind_int64(s, 1, c->rowid);
    sqlite3_bind_double(s, 2, now);
    sqlite3_bind_text(s, 3, error, -1, SQLITE_TRANSIENT);
    sqlite3_bind_double(s, 4, c->last);
    status = fl__store_exec(st, s, "cannot mark a crashed run");
    sqlite3_finalize(s);
    if (status) return status;
  }
  return FLOWLUA_OK;
}

/* ---- replaying the journal of a dead process ----------------------------- */

/* One record, decoded; strings point into the mapped journal. */
typedef struct j_record {
  j_head h;
  union {
    j_add add;
    j_adds adds;
    j_state state;
    j_result result;
    j_end end;
    j_fire fire;
    j_begin begin;
    j_claim claim;
    j_worker worker;
    j_log log;
  } u;
  const char *s1, *s2; /* not NUL-terminated */
  size_t n1, n2;
} j_record;

/* A time a record may hold: seconds since the epoch, finite, not before
   it and not past the year 5000 (the store keeps times as microseconds in
   64 bits; a damaged one must not overflow that). */
static int sane_time(double t) { return isfinite(t) && t >= 0 && t < 1e11; }

/* Whether the fixed fields of a decoded record hold times a writer of
   this code could have put there. */
static int times_sane(const j_record *r) {
  switch (r->h.type) {
  case J_STATE:
    return sane_time(r->u.state.at);
  case J_END:
    return sane_time(r->u.end.ended_at);
  case J_FIRE:
    return sane_time(r->u.fire.first) && sane_time(r->u.fire.last) &&
           sane_time(r->u.fire.at);
  case J_BEGIN:
    return sane_time(r->u.begin.scheduled_at) &&
           sane_time(r->u.begin.started_at);
  case J_CLAIM:
    return sane_time(r->u.claim.at);
  case J_LOG:
    return sane_time(r->u.log.at);
  default:
    return 1;
  }
}

/* Decodes rec[0..len); -1 for a record this code cannot read. */
static int j_decode(const unsigned char *rec, size_t len, j_record *r) {
  if (len < sizeof r->h) return -1;
  memcpy(&r->h, rec, sizeof r->h);
  rec += sizeof r->h;
  len -= sizeof r->h;
  r->s1 = r->s2 = NULL;
  r->n1 = r->n2 = 0;
  size_t fixed = r->h.type == J_ADD      ? sizeof r->u.add
                 : r->h.type == J_ADDS   ? sizeof r->u.adds
                 : r->h.type == J_STATE  ? sizeof r->u.state
                 : r->h.type == J_RESULT ? sizeof r->u.result
                 : r->h.type == J_END    ? (len ? sizeof r->u.end : 0)
                 : r->h.type == J_FIRE   ? sizeof r->u.fire
                 : r->h.type == J_BEGIN  ? sizeof(j_begin_plain)
                 : r->h.type == J_BEGIN_CHILD ? sizeof r->u.begin
                 : r->h.type == J_CLAIM  ? sizeof r->u.claim
                 : r->h.type == J_WORKER ? sizeof r->u.worker
                 : r->h.type == J_LOG    ? sizeof r->u.log
                 : r->h.type == J_COUNT  ? 0
                                         : SIZE_MAX;
  if (fixed == SIZE_MAX || len < fixed) return -1;
  memcpy(&r->u, rec, fixed);
  if (r->h.type == J_BEGIN) /* no link to a parent: not a subflow's */
    for (int i = J_BEGIN_PLAIN_STRINGS; i < J_BEGIN_STRINGS; i++)
      r->u.begin.len[i] = J_NONE;
  /* Read alike from here: a subflow's start is a start with its link. */
  if (r->h.type == J_BEGIN_CHILD) r->h.type = J_BEGIN;
  if (!times_sane(r)) return -1;
  rec += fixed;
  len -= fixed;
  if (r->h.type == J_ADDS) { /* checked whole by adds_apply */
    r->s1 = (const char *)rec, r->n1 = len;
    return 0;
  }
  if (r->h.type == J_BEGIN) { /* its strings, one after another */
    size_t need = 0;
    for (int i = 0; i < J_BEGIN_STRINGS; i++)
      need += r->u.begin.len[i] == J_NONE ? 0 : r->u.begin.len[i];
    if (need != len) return -1;
    r->s1 = (const char *)rec, r->n1 = len;
    return 0;
  }
  int full_end = r->h.type == J_END && fixed;
  uint32_t n1 = r->h.type == J_ADD      ? r->u.add.key_len
                : r->h.type == J_STATE  ? r->u.state.err_len
                : r->h.type == J_RESULT ? r->u.result.len
                : full_end              ? r->u.end.err_len
                : r->h.type == J_FIRE
                    ? r->u.fire.flow_len + r->u.fire.outcome_len
                : r->h.type == J_CLAIM ? r->u.claim.flow_len
                : r->h.type == J_WORKER ? r->u.worker.host_len
                : r->h.type == J_LOG    ? r->u.log.len
                    : J_NONE;
  uint32_t n2 = r->h.type == J_ADD ? r->u.add.task_len
                : full_end         ? r->u.end.counts_len
                : r->h.type == J_FIRE ? r->u.fire.detail_len
                                   : J_NONE;
  size_t need = (n1 == J_NONE ? 0 : n1) + (n2 == J_NONE ? 0 : n2);
  if (need != len) return -1;
  if (n1 != J_NONE) r->s1 = (const char *)rec, r->n1 = n1;
  if (n2 != J_NONE) r->s2 = (const char *)rec + r->n1, r->n2 = n2;
  return 0;
}

/* How many changes task n of run has had so far. */
static uint32_t run_task_changes(const fl_store_run *run, uint32_t n) {
  return run->tasks[n].n_changes;
}

/* store_pack_fn for load_known: one packed task run into the run. */
static int restore_packed(void *ctx, const store_pack_row *p) {
  fl_store_run *run = ctx;
  if (p->state < 0) return 0; /* a state this code does not know: left */
  task_entry f = {.map_index = p->map_index, .state = (int8_t)p->state,
                  .state_at = p->state_at, .state_attempt = p->attempts,
                  .attempts = p->attempts, .n_changes = p->state_seq,
                  .started_seq = p->started_seq, .started = p->started_at,
                  .ended = p->ended_at, .written = 1, .packed = 1};
  return fl__store_run_restore(run, p->n, p->key, p->task, &f, p->error) ? 2 : 0;
}

/* The task runs the file holds for run, as they stand there: a journal
   that took turns (store.c) holds only what came after. */
static int load_known(fl_store *st, fl_store_run *run) {
  const char *what = "cannot replay a journal";
  sqlite3_stmt *s = NULL;
  int status = fl__store_prepare(st,
                             "SELECT n, key, task, map_index, state, state_at,"
                             " state_seq, attempts, error, started_at,"
                             " started_seq, ended_at FROM task_row"
                             " WHERE run = ?1",
                             &s, what);
  if (status) return status;
  sqlite3_bind_int64(s, 1, run->rowid);
  int rc;
  while (status == FLOWLUA_OK && (rc = sqlite3_step(s)) == SQLITE_ROW) {
    int state = fl_store_task_state_parse((const char *)sqlite3_column_text(s, 4));
    const char *key = (const char *)sqlite3_column_text(s, 1);
    const char *task = (const char *)sqlite3_column_text(s, 2);
    if (state < 0 || !key || !task) continue;
    task_entry f = {.map_index = sqlite3_column_int(s, 3), .state = (int8_t)state,
                    .state_at = sqlite3_column_double(s, 5),
                    .n_changes = (uint32_t)sqlite3_column_int64(s, 6),
                    .attempts = sqlite3_column_int(s, 7),
                    .state_attempt = sqlite3_column_int(s, 7),
                    .started = sqlite3_column_double(s, 9),
                    .started_seq = (uint32_t)sqlite3_column_int64(s, 10),
                    .ended = sqlite3_column_double(s, 11), .written = 1};
    status = fl__store_run_restore(run, (uint32_t)sqlite3_column_int64(s, 0), key,
                               task, &f, (const char *)sqlite3_column_text(s, 8));
  }
  if (status == FLOWLUA_OK && rc != SQLITE_DONE)
    status = fl__store_sql_err(st, rc, "%s", what);
  sqlite3_finalize(s);
  if (status) return status;
  status = fl__store_prepare(st, "SELECT rows FROM task_pack WHERE run = ?1", &s,
                         what);
  if (status) return status;
  sqlite3_bind_int64(s, 1, run->rowid);
  fl_buf scratch = FL_BUF_INIT;
  while (status == FLOWLUA_OK && (rc = sqlite3_step(s)) == SQLITE_ROW) {
    const char *json = (const char *)sqlite3_column_text(s, 0);
    int got = json ? fl__store_pack_read(json, (size_t)sqlite3_column_bytes(s, 0),
                                     &scratch, restore_packed, run)
                   : 0;
    if (got == 2) status = FLOWLUA_ENOMEM; /* its message is set */
    /* A damaged pack (-1) loses its task runs' rows to nothing: the
       journal's records of them still apply. */
  }
  if (status == FLOWLUA_OK && rc != SQLITE_DONE)
    status = fl__store_sql_err(st, rc, "%s", what);
  fl_buf_free(&scratch);
  sqlite3_finalize(s);
  return status;
}

/* Declares the task runs of a J_ADDS record, once its lengths are checked
   against its bytes: every key and name where the lengths say, each
   followed by its NUL, and nothing after the last. */
static int adds_apply(fl_store *st, fl_store_run *run, const j_record *r,
                      int merge) {
  uint32_t count = r->u.adds.count;
  size_t table = (size_t)count * 2 * sizeof(uint32_t);
  if (count == 0 || r->n1 < table)
    return fl__store_set_err(st, FLOWLUA_EIO, "a journal record is damaged");
  const char *text = r->s1 + table;
  size_t text_len = r->n1 - table, at = 0;
  const char **keys = malloc((size_t)count * 2 * sizeof *keys);
  if (!keys) return fl__store_oom(st, "cannot replay a journal");
  const char **tasks = keys + count;
  int status = FLOWLUA_OK;
  for (uint32_t i = 0; status == FLOWLUA_OK && i < 2 * count; i++) {
    uint32_t n;
    memcpy(&n, r->s1 + (size_t)i * sizeof n, sizeof n);
    if (at >= text_len || n >= text_len - at || text[at + n] != '\0') {
      status = fl__store_set_err(st, FLOWLUA_EIO, "a journal record is damaged");
      break;
    }
    (i % 2 ? tasks : keys)[i / 2] = text + at;
    at += (size_t)n + 1;
  }
  if (status == FLOWLUA_OK && at != text_len)
    status = fl__store_set_err(st, FLOWLUA_EIO, "a journal record is damaged");
  uint32_t first;
  task_entry pending = {.state = FLOWLUA_TASK_PENDING};
  if (status == FLOWLUA_OK && merge) {
    for (uint32_t i = 0; status == FLOWLUA_OK && i < count; i++)
      status = fl__store_run_restore(run, r->h.task + i, keys[i], tasks[i],
                                 &pending, NULL);
  } else if (status == FLOWLUA_OK) {
    status = fl_store_task_add_many(run, keys, tasks, count, &first);
    if (status == FLOWLUA_OK && first != r->h.task)
      status = fl__store_set_err(st, FLOWLUA_EIO, "journal out of order");
  }
  free(keys);
  return status;
}

/* Whether text[0..len) is JSON, as SQLite reads it. */
static int json_valid(fl_store *st, const char *text, size_t len) {
  sqlite3_stmt *s = st->stmt[S_JSON_VALID];
  fl__store_bind_text(s, 1, text, len);
  int valid = sqlite3_step(s) == SQLITE_ROW && sqlite3_column_int(s, 0) == 1;
  sqlite3_reset(s);
  sqlite3_clear_bindings(s);
  return valid;
}

/* A log line (J_LOG). One a writer of this code could not have made (a
   damaged record), or of a task run nothing declared, is dropped: a log
   line is worth no failed replay. A line the file holds already (the same
   seq) is left as it is by the writer. */
static int log_apply(fl_store *st, fl_store_run *run, const j_record *r) {
  const j_log *l = &r->u.log;
  if (!fl__store_task_known(run, r->h.task) || l->level < FLOWLUA_LOG_DEBUG ||
      l->level > FLOWLUA_LOG_ERROR || l->attempt < 0 || l->seq < 1 ||
      l->seq > ((int64_t)1 << 53) || /* next_seq = seq + 1 must not wrap */
      l->first_seq < 1 || l->first_seq > l->seq ||
      l->seq - l->first_seq >= FL_STORE_LOG_LINES || l->dropped_lines < 0 ||
      l->dropped_bytes < 0 || l->len > FL_STORE_LOG_BYTES || r->n1 != l->len)
    return FLOWLUA_OK;
  (void)st;
  return fl__store_log_restore(run, r->h.task, l, r->s1 ? r->s1 : "");
}

/* Applies one decoded record to the run being rebuilt. With `merge`, the
   run starts from what the file holds (load_known) and the record may be
   one the file holds already: a declaration of a known task run, or a
   change whose place in its history (seq) is not past the file's, is
   skipped; and a change to a task run nothing declared (a damaged or
   partly reset journal) is dropped rather than failing every later open. */
static int j_apply(fl_store *st, fl_store_run *run, const j_record *r,
                   int merge) {
  fl_buf a = FL_BUF_INIT, b = FL_BUF_INIT;
  int status = FLOWLUA_OK;
  uint32_t n;
  if (merge &&
      (r->h.type == J_STATE || r->h.type == J_RESULT || r->h.type == J_WORKER) &&
      !fl__store_task_known(run, r->h.task))
    return FLOWLUA_OK;
  if (r->h.type == J_LOG) return log_apply(st, run, r);
  switch (r->h.type) {
  case J_ADD:
    fl_buf_add(&a, r->s1, r->n1);
    fl_buf_add(&b, r->s2, r->n2);
    if (a.oom || b.oom) {
      status = fl__store_oom(st, "cannot replay a journal");
    } else if (merge) {
      task_entry fields = {.map_index = r->u.add.map_index,
                           .state = FLOWLUA_TASK_PENDING};
      status = fl__store_run_restore(run, r->h.task, fl_buf_str(&a),
                                 fl_buf_str(&b), &fields, NULL);
    } else {
      status = fl_store_task_add(run, fl_buf_str(&a), fl_buf_str(&b),
                                 r->u.add.map_index, &n);
      if (status == FLOWLUA_OK && n != r->h.task)
        status = fl__store_set_err(st, FLOWLUA_EIO, "journal out of order");
    }
    break;
  case J_ADDS:
    status = adds_apply(st, run, r, merge);
    break;
  case J_STATE:
    if (merge && r->u.state.seq <= run_task_changes(run, r->h.task)) break;
    if (r->s1) fl_buf_add(&a, r->s1, r->n1);
    status = a.oom ? fl__store_oom(st, "cannot replay a journal")
                   : fl_store_task_state(run, r->h.task, r->u.state.state,
                                         r->u.state.attempt, r->u.state.at,
                                         r->s1 ? fl_buf_str(&a) : NULL);
    break;
  case J_RESULT:
    /* A result that is not JSON (a damaged record) is recorded as one
       that could not be kept: a resume runs the task again. */
    status = fl_store_task_result(run, r->h.task,
                                  r->s1 && json_valid(st, r->s1, r->n1) ? r->s1
                                                                       : NULL,
                                  r->s1 ? r->n1 : 0);
    break;
  case J_WORKER:
    /* One a writer of this code could not have made (a damaged record)
       is dropped: where an attempt ran is worth no failed replay. */
    if (r->u.worker.attempt < 1 || r->u.worker.pid <= 0 || r->n1 == 0 ||
        r->n1 > FL_STORE_MAX_HOST)
      break;
    fl_buf_add(&a, r->s1, r->n1);
    status = a.oom ? fl__store_oom(st, "cannot replay a journal")
             : memchr(r->s1, 0, r->n1)
                 ? FLOWLUA_OK
                 : fl_store_task_worker(run, r->h.task, r->u.worker.attempt,
                                        fl_buf_str(&a), r->u.worker.pid);
    break;
  default:
    break;
  }
  fl_buf_free(&a);
  fl_buf_free(&b);
  return status;
}

/* The bound on the task numbers a replay from the file may meet for run
   (fl_store_run.restore_limit): the task runs the file holds, the count
   its journal's turn recorded (J_COUNT), and those the journal declares.
   Numbers are handed out densely, so no honest record names one past it;
   a forged one must not make the replay allocate for billions. */
static int restore_limit(fl_store *st, fl_store_run *run,
                         const unsigned char *data, size_t len) {
  sqlite3_stmt *s = NULL;
  int status = fl__store_prepare(
      st,
      "SELECT (SELECT count(*) FROM task_row WHERE run = ?1) +"
      " (SELECT coalesce(sum(CASE WHEN json_valid(rows)"
      "  THEN json_array_length(rows) END), 0) FROM task_pack WHERE run = ?1)",
      &s, "cannot replay a journal");
  if (status) return status;
  sqlite3_bind_int64(s, 1, run->rowid);
  int rc = sqlite3_step(s);
  uint64_t limit = rc == SQLITE_ROW ? (uint64_t)sqlite3_column_int64(s, 0) : 0;
  sqlite3_finalize(s);
  if (rc != SQLITE_ROW)
    return fl__store_sql_err(st, rc, "cannot replay a journal");
  uint64_t counted = 0, declared = 0;
  size_t pos = 0, n;
  const unsigned char *rec;
  while ((rec = fl_journal_next(data, len, &pos, &n))) {
    j_record r;
    if (j_decode(rec, n, &r) != 0) break;
    if (r.h.run != run->rowid) continue;
    if (r.h.type == J_COUNT && r.h.task > counted) counted = r.h.task;
    if (r.h.type == J_ADD) declared++;
    if (r.h.type == J_ADDS) declared += r.u.adds.count;
  }
  limit += counted + declared + 1;
  run->restore_limit = limit < UINT32_MAX - 1 ? (uint32_t)limit : UINT32_MAX - 1;
  return FLOWLUA_OK;
}

/* Runs the statement sql with ?1 = rowid. */
static int exec_with_rowid(fl_store *st, const char *sql, int64_t rowid,
                           const char *what) {
  sqlite3_stmt *s = NULL;
  int status = fl__store_prepare(st, sql, &s, what);
  if (status) return status;
  sqlite3_bind_int64(s, 1, rowid);
  status = fl__store_exec(st, s, what);
  sqlite3_finalize(s);
  return status;
}

/* Rebuilds the task runs of one run from its journal records. A complete
   journal (one that never took turns) holds every change of the run: the
   rows in the file are dropped and every change is applied again, in
   order, so the result is the same however much of it had been flushed.
   Otherwise the run starts from what the file holds, and what the journal
   holds beyond it is applied (j_apply's `merge`). */
/* The journal `path` holds changes of run `rowid`, which the database does
   not have: runs are never deleted, so the file lost it (a damaged WAL
   whose later frames SQLite dropped, a file restored from an older copy).
   PRAGMA quick_check tells a damaged file, which stops here with an error
   (the journal is kept for when it is repaired), from a sound one whose
   loss is reported and the changes dropped. */
static int run_missing(fl_store *st, const char *path, int64_t rowid) {
  sqlite3_stmt *s = NULL;
  int status = fl__store_prepare(st, "PRAGMA quick_check(1)", &s,
                                 "cannot check it");
  if (status) return status;
  int rc = sqlite3_step(s);
  const char *verdict = rc == SQLITE_ROW ? (const char *)sqlite3_column_text(s, 0)
                                         : sqlite3_errmsg(st->db);
  char msg[1024];
  if (rc == SQLITE_ROW && verdict && strcmp(verdict, "ok") == 0) {
    snprintf(msg, sizeof msg,
             "the journal '%s' of a process that died holds changes of run "
             "#%lld, which the database does not hold (it lost them: a "
             "damaged WAL, or a copy older than the journal; PRAGMA "
             "quick_check finds the file sound): those changes were dropped",
             path, (long long)rowid);
    fl__store_notice(st, msg);
  } else {
    char what[256]; /* its report on one line */
    snprintf(what, sizeof what, "%s", verdict ? verdict : "?");
    for (char *c = what; *c; c++)
      if (*c == '\n') *c = ' ';
    st->db_damaged = 1;
    status = fl__store_set_err(
        st, FLOWLUA_EIO,
        "the journal '%s' of a process that died holds changes of run #%lld, "
        "which the database does not hold, and PRAGMA quick_check finds it "
        "damaged (%s); nothing was changed: restore the folder from a "
        "backup, or repair it (sqlite3 .recover) and run again",
        path, (long long)rowid, what);
  }
  sqlite3_finalize(s);
  return status;
}

/* A run's end as its J_END record holds it (the process died before its
   writer committed it; or after, and this writes the same again). */
static int apply_end(fl_store *st, int64_t rowid, const j_record *r) {
  const char *what = "cannot replay the end of a run";
  if (r->u.end.state < 0 || r->u.end.state >= FLOWLUA_FLOW_STATE_COUNT)
    return FLOWLUA_OK; /* not a state this code knows: left Running */
  sqlite3_stmt *s = NULL;
  int status = fl__store_tx_begin(st, what);
  if (status == FLOWLUA_OK)
    status = fl__store_prepare(
        st,
        "UPDATE flow_run SET state = ?2, ended_at = ?3, error = ?4,"
        " task_counts = coalesce(CASE WHEN json_valid(?5) THEN ?5 END,"
        " (SELECT json_group_object(state, n) FROM"
        " (" FL_STORE_COUNT_TASK_RUNS_SQL "))) WHERE id = ?1",
        &s, what);
  if (status == FLOWLUA_OK) {
    const char *state = fl__store_flow_state_name(r->u.end.state);
    sqlite3_bind_int64(s, 1, rowid);
    fl__store_bind_text(s, 2, state, strlen(state));
    fl__store_bind_opt_double(s, 3, r->u.end.ended_at);
    fl__store_bind_text(s, 4, r->s1, r->n1);
    fl__store_bind_text(s, 5, r->s2, r->n2);
    status = fl__store_exec(st, s, what);
  }
  sqlite3_finalize(s);
  if (status == FLOWLUA_OK) status = fl__store_tx_commit(st, what);
  if (status != FLOWLUA_OK) fl__store_tx_rollback(st);
  return status;
}

static int replay_run(fl_store *st, const char *path, int64_t rowid,
                      const unsigned char *data, size_t len, int complete) {
  const char *what = "cannot replay a journal";
  sqlite3_stmt *s = NULL;
  int status = fl__store_prepare(st, "SELECT run_id FROM flow_run WHERE id = ?1", &s,
                       what);
  if (status) return status;
  sqlite3_bind_int64(s, 1, rowid);
  char *run_id = NULL;
  if (sqlite3_step(s) == SQLITE_ROW)
    run_id = strdup((const char *)sqlite3_column_text(s, 0));
  sqlite3_finalize(s);
  if (!run_id) return run_missing(st, path, rowid);
  fl_store_run *run = calloc(1, sizeof *run);
  if (!run) {
    free(run_id);
    return fl__store_oom(st, what);
  }
  run->st = st;
  run->rowid = rowid;
  run->run_id = run_id;
  run->next = st->runs;
  if (st->runs) st->runs->prev = run;
  st->runs = run;
  if (complete) {
    status = fl__store_tx_begin(st, what);
    if (status == FLOWLUA_OK)
      status = exec_with_rowid(st, "DELETE FROM task_event WHERE run = ?1",
                               rowid, what);
    if (status == FLOWLUA_OK)
      status = exec_with_rowid(st, "DELETE FROM task_row WHERE run = ?1",
                               rowid, what);
    if (status == FLOWLUA_OK)
      status = exec_with_rowid(st, "DELETE FROM task_pack WHERE run = ?1",
                               rowid, what);
    if (status == FLOWLUA_OK) status = fl__store_tx_commit(st, what);
    if (status != FLOWLUA_OK) fl__store_tx_rollback(st);
  } else {
    status = restore_limit(st, run, data, len);
    if (status == FLOWLUA_OK) status = load_known(st, run);
  }
  size_t pos = 0, n;
  const unsigned char *rec;
  j_record end = {.h.type = 0};
  while (status == FLOWLUA_OK && (rec = fl_journal_next(data, len, &pos, &n))) {
    j_record r;
    if (j_decode(rec, n, &r) != 0) break; /* a newer format: keep what we have */
    if (r.h.run != rowid) continue;
    if (r.h.type == J_END)
      end = r;
    else
      status = j_apply(st, run, &r, !complete);
  }
  if (status == FLOWLUA_OK) status = fl__store_flush(st, what);
  if (status == FLOWLUA_OK && end.h.type == J_END)
    status = apply_end(st, rowid, &end);
  fl__store_free_run(run);
  return status;
}

/* Writes what became of the fire times the journal records (those the
   file holds already are left: the insert is idempotent). */
static int replay_fires(fl_store *st, const unsigned char *data, size_t len) {
  const char *what = "cannot replay what became of a fire time";
  size_t pos = 0, n;
  const unsigned char *rec;
  sqlite3_stmt *s = NULL, *claim = NULL;
  int status = FLOWLUA_OK, open = 0;
  while (status == FLOWLUA_OK && (rec = fl_journal_next(data, len, &pos, &n))) {
    j_record r;
    if (j_decode(rec, n, &r) != 0) break;
    if ((r.h.type != J_FIRE && r.h.type != J_CLAIM) || !r.s1) continue;
    if (!open) {
      status = fl__store_tx_begin(st, what);
      if (status == FLOWLUA_OK)
        status = fl__store_prepare(st, fl__store_fire_event_sql, &s, what);
      if (status == FLOWLUA_OK)
        status = fl__store_prepare(st, fl__store_claim_insert_sql, &claim,
                                   what);
      open = 1;
      if (status) break;
    }
    if (r.h.type == J_CLAIM) {
      fl__store_bind_text(claim, 1, r.s1, r.n1);
      sqlite3_bind_int64(claim, 2, r.u.claim.ms);
      sqlite3_bind_double(claim, 3, r.u.claim.at);
      /* A journal is replayed on its own host (store.h: the owner is gone
         only when seen from the same host). */
      sqlite3_bind_text(claim, 4, st->self.host, -1, SQLITE_STATIC);
      sqlite3_bind_int64(claim, 5, r.u.claim.pid);
      status = fl__store_exec(st, claim, what);
      continue;
    }
    fl__store_bind_text(s, 1, r.s1, r.u.fire.flow_len);
    fl__store_bind_text(s, 2, r.s1 + r.u.fire.flow_len, r.u.fire.outcome_len);
    sqlite3_bind_double(s, 3, r.u.fire.first);
    fl__store_bind_opt_double(s, 4, r.u.fire.last);
    sqlite3_bind_int64(s, 5, (sqlite3_int64)r.u.fire.count);
    fl__store_bind_text(s, 6, r.s2, r.n2);
    sqlite3_bind_double(s, 7, r.u.fire.at);
    sqlite3_bind_int64(s, 8, r.u.fire.pid);
    status = fl__store_exec(st, s, what);
  }
  sqlite3_finalize(s);
  sqlite3_finalize(claim);
  if (open && status == FLOWLUA_OK) status = fl__store_tx_commit(st, what);
  if (open && status != FLOWLUA_OK) fl__store_tx_rollback(st);
  return status;
}

/* Whether a journalled start holds what the engine writes: its graph a
   JSON array of strings, its edges (when any) an array, its params (when
   any) an object.
   A damaged record must not put text in the file that every later read
   of the run trips on. */
static const char start_check_sql[] =
    "SELECT CASE WHEN json_valid(?1) AND (?2 IS NULL OR json_valid(?2))"
    " AND (?3 IS NULL OR json_valid(?3)) THEN"
    "  json_type(?1) = 'array' AND (?2 IS NULL OR json_type(?2) = 'array')"
    "  AND (?3 IS NULL OR json_type(?3) = 'object')"
    "  AND NOT EXISTS (SELECT 1 FROM json_each(CASE WHEN json_valid(?1)"
    "    THEN ?1 END) WHERE type <> 'text')"
    " ELSE 0 END";

static int start_is_sound(fl_store *st, sqlite3_stmt *check,
                          const store_begin *b) {
  fl__store_bind_text(check, 1, b->str[JB_GRAPH], b->len[JB_GRAPH]);
  fl__store_bind_text(check, 2, b->str[JB_EDGES], b->len[JB_EDGES]);
  fl__store_bind_text(check, 3, b->str[JB_PARAMS], b->len[JB_PARAMS]);
  int rc = sqlite3_step(check);
  int sound = rc == SQLITE_ROW && sqlite3_column_int(check, 0) == 1;
  sqlite3_reset(check);
  if (rc != SQLITE_ROW)
    return fl__store_sql_err(st, rc, "cannot replay the start of a run");
  return sound;
}

/* Inserts the runs whose start the journal holds (J_BEGIN: a serving
   process's, which its writer may not have written), before their task
   runs are replayed; a start the file holds is left as it is. */
static int replay_begins(fl_store *st, const unsigned char *data, size_t len) {
  const char *what = "cannot replay the start of a run";
  size_t pos = 0, n;
  const unsigned char *rec;
  sqlite3_stmt *run = NULL, *graph = NULL, *check = NULL;
  int status = FLOWLUA_OK, open = 0;
  while (status == FLOWLUA_OK && (rec = fl_journal_next(data, len, &pos, &n))) {
    j_record r;
    if (j_decode(rec, n, &r) != 0) break;
    if (r.h.type != J_BEGIN) continue;
    if (!open) {
      open = 1;
      status = fl__store_tx_begin(st, what);
      if (status == FLOWLUA_OK)
        status = fl__store_prepare(st, start_check_sql, &check, what);
      if (status == FLOWLUA_OK)
        status = fl__store_prepare(st, fl__store_run_insert_sql, &run, what);
      if (status == FLOWLUA_OK)
        status = fl__store_prepare(st, fl__store_graph_insert_sql, &graph, what);
      if (status) break;
    }
    store_begin b = {r.h.run, r.u.begin.pid, r.u.begin.start,
                     r.u.begin.scheduled_at, r.u.begin.started_at, {0}, {0}};
    size_t at = 0;
    for (int i = 0; i < J_BEGIN_STRINGS; i++) {
      if (r.u.begin.len[i] == J_NONE) continue;
      b.str[i] = r.s1 + at;
      b.len[i] = r.u.begin.len[i];
      at += b.len[i];
    }
    if (!b.str[JB_RUN_ID] || !b.str[JB_FLOW] || !b.str[JB_GRAPH])
      continue; /* not a start this code wrote: nothing to insert */
    int sound = start_is_sound(st, check, &b);
    if (sound < 0) {
      status = sound;
      break;
    }
    if (!sound) continue; /* damaged: its changes find no run (run_missing) */
    int rc = fl__store_insert_begin(run, graph, &b);
    if (rc != SQLITE_DONE)
      status = fl__store_sql_err(st, rc, "%s #%lld", what, (long long)r.h.run);
  }
  sqlite3_finalize(run);
  sqlite3_finalize(graph);
  sqlite3_finalize(check);
  if (open && status == FLOWLUA_OK) status = fl__store_tx_commit(st, what);
  if (open && status != FLOWLUA_OK) fl__store_tx_rollback(st);
  return status;
}

static int replay_journal(void *ctx, const fl_journal_file *file) {
  fl_store *st = ctx;
  const unsigned char *data = file->data;
  size_t len = file->len;
  /* The runs it holds, but those an older flowlua ended (all in the
     file); a J_END of this one may not be in the file yet. */
  int64_t *runs = NULL;
  size_t n_runs = 0, cap_runs = 0, pos = 0, n;
  const unsigned char *rec;
  int status = FLOWLUA_OK;
  while ((rec = fl_journal_next(data, len, &pos, &n))) {
    j_record r;
    if (j_decode(rec, n, &r) != 0) break;
    if (r.h.type == J_FIRE || r.h.type == J_CLAIM) continue; /* replay_fires */
    size_t i = 0;
    while (i < n_runs && runs[i] != r.h.run) i++;
    if (r.h.type == J_END && n == sizeof r.h) {
      /* An older flowlua's end: written once the run was all in the file. */
      if (i < n_runs) runs[i] = runs[--n_runs];
      continue;
    }
    if (i == n_runs) {
      if (GROW(runs, cap_runs, n_runs)) {
        status = fl__store_oom(st, "cannot replay a journal");
        break;
      }
      runs[n_runs++] = r.h.run;
    }
  }
  st->replaying = 1;
  if (status == FLOWLUA_OK) status = replay_begins(st, data, len);
  for (size_t i = 0; status == FLOWLUA_OK && i < n_runs; i++)
    status = replay_run(st, file->path, runs[i], data, len, file->complete);
  if (status == FLOWLUA_OK) status = replay_fires(st, data, len);
  st->replaying = 0;
  free(runs);
  if (status == FLOWLUA_OK) return FL_JOURNAL_DONE;
  if (status == FLOWLUA_ENOMEM || st->err_busy || st->db_damaged)
    return FL_JOURNAL_KEEP; /* may well work next time, or once repaired */
  /* Its records cannot be applied: retrying at every open would fail every
     open after this one. What it could not write is lost; the runs it held
     are marked Crashed like any run of a dead process. */
  fl__store_drop_queued(st);
  char msg[1024];
  snprintf(msg, sizeof msg,
           "the journal '%s' of a process that died could not be replayed "
           "(%s): the last changes of its runs are lost",
           file->path, fl_store_errmsg(st));
  fl__store_notice(st, msg);
  fl_buf_reset(&st->err);
  return FL_JOURNAL_SET_ASIDE;
}

const char *fl_store_notices(const fl_store *st) {
  return st && st->notices.len ? st->notices.data : "";
}

void fl_store_notices_clear(fl_store *st) {
  if (st) fl_buf_reset(&st->notices);
}

/* The runs marked Running, with their owners and, as the end of a crashed
   one, its last sign of life: the latest state change of any of its task
   runs, or its start. (Preparing it also finds a schema with a table
   gone.) */
static const char running_runs_sql[] =
    "SELECT r.id, r.owner_host, r.owner_boot, r.owner_pid,"
    " r.owner_start, max(r.started_at, coalesce((SELECT"
    " max(t.state_at) FROM task_run t WHERE t.run = r.id), 0))"
    " FROM flow_run r WHERE r.state = 'Running'";

/* 1 when a Running run's process is gone, 0 when none is; -1 (message
   set) when the file cannot be read. Outside any write transaction. */
static int any_dead_owner(fl_store *st) {
  sqlite3_stmt *s = NULL;
  if (fl__store_prepare(st, running_runs_sql, &s, "cannot look for crashed runs"))
    return -1;
  int rc, found = 0;
  while (!found && (rc = sqlite3_step(s)) == SQLITE_ROW) {
    const char *host = (const char *)sqlite3_column_text(s, 1);
    const char *boot = (const char *)sqlite3_column_text(s, 2);
    found = fl__store_owner_gone(&st->self, host ? host : "", boot ? boot : "",
                                 sqlite3_column_int64(s, 3), sqlite3_column_int64(s, 4));
  }
  if (!found && rc != SQLITE_DONE) {
    fl__store_sql_err(st, rc, "cannot look for crashed runs");
    found = -1;
  }
  sqlite3_finalize(s);
  return found;
}

int fl_store_mark_crashed(fl_store *st, double now, size_t *n_marked) {
  if (n_marked) *n_marked = 0;
  if (st->pg) return fl__pg_mark_crashed(st, now, n_marked);
  /* Read-only: what the file holds is shown as it is (a run whose process
     died still reads Running), which beats not reading it at all. */
  if (st->read_only) return FLOWLUA_OK;
  /* First what dead processes had journalled but not written here. */
  if (strcmp(st->path, ":memory:") != 0 &&
      fl_journal_replay_dead(st->path, replay_journal, fl__store_notice,
                             st) != 0)
    return FLOWLUA_EIO;
  /* Usually no run is Running, or only runs of live processes: then no
     write lock is taken, so `runs` and `show` never wait for (nor make
     wait) a process that writes. */
  int status = any_dead_owner(st);
  if (status <= 0) return status < 0 ? FLOWLUA_EIO : FLOWLUA_OK;
  sqlite3_stmt *s = NULL;
  int rc;
  crashed_run *dead = NULL;
  size_t n_dead = 0, cap_dead = 0;
  status = fl__store_tx_begin(st, "cannot look for crashed runs");
  if (status) return status;
  /* The run's end is its last sign of life: the latest state change of
     any of its task runs, or its start. */
  status = fl__store_prepare(st, running_runs_sql, &s,
                             "cannot look for crashed runs");
  rc = SQLITE_OK;
  while (status == FLOWLUA_OK && (rc = sqlite3_step(s)) == SQLITE_ROW) {
    const char *host = (const char *)sqlite3_column_text(s, 1);
    const char *boot = (const char *)sqlite3_column_text(s, 2);
    int64_t pid = sqlite3_column_int64(s, 3);
    if (!fl__store_owner_gone(&st->self, host ? host : "", boot ? boot : "", pid,
                    sqlite3_column_int64(s, 4)))
      continue;
    if (GROW(dead, cap_dead, n_dead)) {
      status = fl__store_oom(st, "cannot look for crashed runs");
      break;
    }
    dead[n_dead++] = (crashed_run){sqlite3_column_int64(s, 0), pid,
                                   sqlite3_column_double(s, 5)};
  }
  if (status == FLOWLUA_OK && rc != SQLITE_DONE)
    status = fl__store_sql_err(st, rc, "cannot look for crashed runs");
  sqlite3_finalize(s);
  for (size_t i = 0; status == FLOWLUA_OK && i < n_dead; i++)
    status = mark_one_crashed(st, &dead[i], now);
  if (status == FLOWLUA_OK)
    status = fl__store_tx_commit(st, "cannot mark crashed runs");
  if (status != FLOWLUA_OK)
    fl__store_tx_rollback(st);
  else if (n_marked)
    *n_marked = n_dead;
  free(dead);
  return status;
}

int fl_store_claim_fire(fl_store *st, const char *flow, double scheduled_at,
                        double now) {
  return fl_store_claim_fire_within(st, flow, scheduled_at, now, 0);
}

/* The claim in the database, in its own transaction (a ":memory:" store,
   or a file whose claims file cannot be used): 1 when this call inserted
   the row, 0 when it was there, or a negative status. */
static int claim_in_database(fl_store *st, const char *flow, int64_t ms,
                             double now, int max_wait_ms) {
  sqlite3_stmt *s = NULL;
  /* Only the transaction's start waits for another process's lock: once
     it has begun, this connection holds the write lock. */
  st->busy_main.limit_ms = max_wait_ms > 0 && max_wait_ms < st->opts.busy_timeout_ms
                               ? max_wait_ms
                               : 0;
  int status = fl__store_tx_begin(st, "cannot claim a scheduled fire");
  st->busy_main.limit_ms = 0;
  if (status) return status;
  status = fl__store_prepare(st, fl__store_claim_insert_sql, &s,
                             "cannot claim a scheduled fire");
  if (status == FLOWLUA_OK) {
    sqlite3_bind_text(s, 1, flow, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, ms);
    sqlite3_bind_double(s, 3, now);
    sqlite3_bind_text(s, 4, st->self.host, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 5, st->self.pid);
    status = fl__store_exec(st, s, "cannot claim a scheduled fire");
  }
  int claimed = status == FLOWLUA_OK && sqlite3_changes(st->db) == 1;
  sqlite3_finalize(s);
  if (status == FLOWLUA_OK) status = fl__store_tx_commit(st, "cannot claim a scheduled fire");
  if (status != FLOWLUA_OK) {
    fl__store_tx_rollback(st);
    return status;
  }
  return claimed;
}

/* Whether the fire table holds flow's fire time ms: 1, 0, or a negative
   status. A read: in WAL mode no writer holds it up. */
static int claimed_in_database(fl_store *st, const char *flow, int64_t ms) {
  sqlite3_stmt *s = NULL;
  int status = fl__store_prepare(st,
                                 "SELECT 1 FROM fire WHERE flow = ?1"
                                 " AND scheduled_ms = ?2",
                                 &s, "cannot claim a scheduled fire");
  if (status) return status;
  sqlite3_bind_text(s, 1, flow, -1, SQLITE_STATIC);
  sqlite3_bind_int64(s, 2, ms);
  int rc = sqlite3_step(s);
  int found = rc == SQLITE_ROW ? 1
              : rc == SQLITE_DONE
                  ? 0
                  : fl__store_sql_err(st, rc, "cannot claim a scheduled fire");
  sqlite3_finalize(s);
  return found;
}

/* The claim, recorded once the claims file decided it: journalled and
   left to the writer thread (a serving process), or written at once. */
static int record_claim(fl_store *st, const char *flow, int64_t ms,
                        double now) {
  const char *what = "cannot claim a scheduled fire";
  if (!st->background && !st->writer) {
    int got = claim_in_database(st, flow, ms, now, 0);
    return got < 0 ? got : FLOWLUA_OK;
  }
  size_t flow_len = strlen(flow);
  if (flow_len >= J_NONE)
    return fl__store_set_err(st, FLOWLUA_EINVAL, "%s: its name is too long",
                             what);
  if (GROW(st->claims, st->cap_claims, st->n_claims))
    return fl__store_oom(st, what);
  pending_claim p = {0, ms, now};
  size_t keep = st->batch.len;
  int status = fl__store_batch_str(st, flow, flow_len, &p.flow_off, what);
  if (status) return status;
  j_head h = {0, 0, J_CLAIM};
  j_claim c = {ms, st->self.pid, now, (uint32_t)flow_len, 0};
  fl_journal_part parts[3] = {{&h, sizeof h}, {&c, sizeof c}, {flow, flow_len}};
  if (fl_journal_append(st->journal, parts, 3) != 0) {
    st->batch.len = keep;
    return fl__store_set_err(st, FLOWLUA_EIO, "cannot write its journal: %s",
                             strerror(errno));
  }
  st->claims[st->n_claims++] = p;
  /* An earlier background write's failure is reported by the run's own
     flushes; the claim itself is made. */
  (void)fl_store_flush_async(st);
  return FLOWLUA_OK;
}

int fl_store_claim_fire_within(fl_store *st, const char *flow,
                               double scheduled_at, double now,
                               int max_wait_ms) {
  int64_t ms = llround(scheduled_at * 1000.0);
  if (st->pg) return fl__pg_claim_fire(st, flow, ms, now);
  if (!st->journal || st->claims_failed)
    return claim_in_database(st, flow, ms, now, max_wait_ms);
  int status = fl__store_claims_lock(st, max_wait_ms);
  if (status) {
    if (!st->claims_failed) return status; /* busy: the caller reports it */
    fl__store_notice(st, fl_store_errmsg(st));
    return claim_in_database(st, flow, ms, now, max_wait_ms);
  }
  int taken = fl__store_claims_find(st, flow, ms);
  if (taken == 0) taken = claimed_in_database(st, flow, ms);
  if (taken == 0) taken = fl__store_claims_add(st, flow, ms);
  fl__store_claims_unlock(st);
  if (taken != 0) return taken < 0 ? taken : 0;
  status = record_claim(st, flow, ms, now);
  return status ? status : 1;
}

/* Copies s (n bytes) and a NUL into the batch's strings; *off is where. */
static int fire_str(fl_store *st, const char *s, size_t n, size_t *off) {
  return fl__store_batch_str(st, s, n, off,
                             "cannot record what became of a fire time");
}

/* A fire event in a journalled store: journalled (a replay writes it if
   this process dies first), then written by the writer thread, so that a
   serving loop recording a missed or skipped fire time never waits for
   another process's lock on the database. */
static int fire_event_in_background(fl_store *st, const char *flow,
                                    const char *outcome, double first,
                                    double last, size_t count,
                                    const char *detail, double now) {
  const char *what = "cannot record what became of a fire time";
  size_t flow_len = strlen(flow), outcome_len = strlen(outcome);
  size_t detail_len = detail ? strlen(detail) : 0;
  if (flow_len + outcome_len >= J_NONE || detail_len >= J_NONE)
    return fl__store_set_err(st, FLOWLUA_EINVAL, "%s: its detail is too long",
                             what);
  j_head h = {0, 0, J_FIRE};
  j_fire f = {first, last, now, count, st->self.pid, (uint32_t)flow_len,
              (uint32_t)outcome_len, detail ? (uint32_t)detail_len : J_NONE, 0};
  fl_journal_part parts[5] = {{&h, sizeof h}, {&f, sizeof f},
                              {flow, flow_len}, {outcome, outcome_len},
                              {detail, detail_len}};
  if (fl_journal_append(st->journal, parts, 5) != 0)
    return fl__store_set_err(st, FLOWLUA_EIO, "cannot write its journal: %s",
                             strerror(errno));
  if (GROW(st->fires, st->cap_fires, st->n_fires))
    return fl__store_oom(st, what);
  pending_fire p = {0, 0, SIZE_MAX, first, last, now, count};
  size_t keep = st->batch.len;
  int status = fire_str(st, flow, flow_len, &p.flow_off);
  if (status == FLOWLUA_OK)
    status = fire_str(st, outcome, outcome_len, &p.outcome_off);
  if (status == FLOWLUA_OK && detail)
    status = fire_str(st, detail, detail_len, &p.detail_off);
  if (status != FLOWLUA_OK) {
    st->batch.len = keep;
    return status;
  }
  st->fires[st->n_fires++] = p;
  return fl_store_flush_async(st);
}

int fl_store_fire_event(fl_store *st, const char *flow, const char *outcome,
                        double first, double last, size_t count,
                        const char *detail, double now) {
  if (st->pg)
    return fl__pg_fire_event(st, flow, outcome, first, last, count, detail,
                             now);
  if (st->journal && (st->background || st->writer))
    return fire_event_in_background(st, flow, outcome, first, last, count,
                                    detail, now);
  const char *what = "cannot record what became of a fire time";
  sqlite3_stmt *s = NULL;
  int status = fl__store_tx_begin(st, what);
  if (status) return status;
  status = fl__store_prepare(st, fl__store_fire_event_sql, &s, what);
  if (status == FLOWLUA_OK) {
    sqlite3_bind_text(s, 1, flow, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, outcome, -1, SQLITE_STATIC);
    sqlite3_bind_double(s, 3, first);
    fl__store_bind_opt_double(s, 4, last);
    sqlite3_bind_int64(s, 5, (sqlite3_int64)count);
    sqlite3_bind_text(s, 6, detail, -1, SQLITE_STATIC);
    sqlite3_bind_double(s, 7, now);
    sqlite3_bind_int64(s, 8, st->self.pid);
    status = fl__store_exec(st, s, what);
  }
  sqlite3_finalize(s);
  if (status == FLOWLUA_OK) status = fl__store_tx_commit(st, what);
  if (status != FLOWLUA_OK) fl__store_tx_rollback(st);
  return status;
}

int fl_store_last_fire(fl_store *st, const char *flow, double *out) {
  if (st->pg) return fl__pg_last_fire(st, flow, out);
  sqlite3_stmt *s = NULL;
  int status = fl__store_prepare(st,
                       "SELECT max(scheduled_ms) FROM fire WHERE flow = ?1",
                       &s, "cannot read the last fire time");
  if (status) return status;
  sqlite3_bind_text(s, 1, flow, -1, SQLITE_STATIC);
  int rc = sqlite3_step(s);
  int found = 0;
  if (rc == SQLITE_ROW && sqlite3_column_type(s, 0) != SQLITE_NULL) {
    *out = (double)sqlite3_column_int64(s, 0) / 1000.0;
    found = 1;
  } else if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
    found = fl__store_set_err(st, FLOWLUA_EIO, "cannot read the last fire time: %s",
                    sqlite3_errmsg(st->db));
  }
  sqlite3_finalize(s);
  /* Claims not yet in the fire table (the writer waits for a lock). */
  int64_t ring_ms;
  if (found >= 0 && st->journal && !st->claims_failed &&
      fl__store_claims_last(st, flow, &ring_ms) == 1 &&
      (!found || (double)ring_ms / 1000.0 > *out)) {
    *out = (double)ring_ms / 1000.0;
    found = 1;
  }
  return found;
}

