/*
 * store.c — the state store on SQLite; see store.h for the contract.
 *
 * What it must not do: decide anything about a run (the engine does), touch
 * Lua, or write a single byte to a file before knowing it is a flowlua store.
 * Printing lives in store_print.c.
 */
#define _GNU_SOURCE
#include "store_internal.h"

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

/* ---- schema ---------------------------------------------------------------
 *
 * migrations[v] takes a store from version v to v + 1. They run in one
 * transaction with the version bump, so a store is always at one version.
 * Never edit a step that has shipped: add one.
 *
 * States are stored by name, not by enum value, so adding a state to the
 * engine never needs a migration, and the file reads well in sqlite3.
 * Times are wall-clock seconds since the epoch (REAL).
 */
static const char *const migrations[] = {
    /* 0 -> 1: the first schema. */
    "CREATE TABLE flow_run ("
    "  id           INTEGER PRIMARY KEY,"
    "  run_id       TEXT NOT NULL UNIQUE,"
    "  flow         TEXT NOT NULL,"
    "  script       TEXT,"
    "  params       TEXT CHECK (params IS NULL OR json_valid(params)),"
    "  state        TEXT NOT NULL,"
    "  scheduled_at REAL,"
    "  started_at   REAL NOT NULL,"
    "  ended_at     REAL,"
    "  error        TEXT,"
    "  graph        TEXT NOT NULL DEFAULT '[]'," /* JSON array of task keys */
    "  task_counts  TEXT,"        /* JSON object state -> count, once ended */
    "  resumed_from TEXT,"
    "  owner_host   TEXT NOT NULL DEFAULT '',"
    "  owner_boot   TEXT NOT NULL DEFAULT '',"
    "  owner_pid    INTEGER NOT NULL DEFAULT 0,"
    "  owner_start  INTEGER NOT NULL DEFAULT 0"
    ");"
    "CREATE INDEX flow_run_by_flow ON flow_run(flow, started_at);"
    "CREATE INDEX flow_run_by_start ON flow_run(started_at);"
    "CREATE INDEX flow_run_running ON flow_run(state) WHERE state = 'Running';"
    /* A task run is numbered n within its run (from 0, in the order the
       engine declared it), so its rows are appended in key order and found
       by a range of the primary key: no secondary index to maintain. */
    "CREATE TABLE task_run ("
    "  run         INTEGER NOT NULL REFERENCES flow_run(id) ON DELETE CASCADE,"
    "  n           INTEGER NOT NULL,"
    "  key         TEXT NOT NULL,"
    "  task        TEXT NOT NULL,"
    "  map_index   INTEGER NOT NULL DEFAULT 0,"
    "  state       TEXT NOT NULL," /* the latest state change: */
    "  state_at    REAL,"
    "  state_seq   INTEGER NOT NULL DEFAULT 0," /* its place in the history */
    "  attempts    INTEGER NOT NULL DEFAULT 0,"
    "  error       TEXT,"          /* the latest change's error */
    "  started_at  REAL,"          /* the first Running (attempt 1) */
    "  started_seq INTEGER,"
    "  ended_at    REAL,"
    "  result      TEXT,"
    "  result_kind INTEGER NOT NULL DEFAULT 0," /* FL_STORE_RESULT_* */
    "  PRIMARY KEY (run, n)"
    ") WITHOUT ROWID;"
    /* The state changes a task_run row does not already tell: all but its
       first Running and its latest change. A task that ran once and
       succeeded has none, which is what keeps a 100,000-task run cheap. */
    "CREATE TABLE task_event ("
    "  run     INTEGER NOT NULL,"
    "  n       INTEGER NOT NULL,"
    "  seq     INTEGER NOT NULL,"
    "  at      REAL NOT NULL,"
    "  state   TEXT NOT NULL,"
    "  attempt INTEGER NOT NULL,"
    "  error   TEXT,"
    "  PRIMARY KEY (run, n, seq),"
    "  FOREIGN KEY (run, n) REFERENCES task_run(run, n) ON DELETE CASCADE"
    ") WITHOUT ROWID;"
    /* Every state change of every task run, in order of seq. */
    "CREATE VIEW task_history(run, n, seq, at, state, attempt, error) AS"
    "  SELECT run, n, seq, at, state, attempt, error FROM task_event"
    "  UNION ALL SELECT run, n, started_seq, started_at, 'Running', 1, NULL"
    "    FROM task_run WHERE started_seq IS NOT NULL"
    "    AND started_seq <> state_seq"
    "  UNION ALL SELECT run, n, state_seq, state_at, state, attempts, error"
    "    FROM task_run WHERE state_seq > 0;"
    "CREATE TABLE cache ("
    "  task      TEXT NOT NULL,"
    "  key       TEXT NOT NULL,"
    "  result    TEXT NOT NULL,"
    "  stored_at REAL NOT NULL,"
    "  PRIMARY KEY (task, key)"
    ") WITHOUT ROWID;"
    "CREATE TABLE fire ("
    "  flow         TEXT NOT NULL,"
    "  scheduled_ms INTEGER NOT NULL," /* milliseconds: no float equality */
    "  claimed_at   REAL NOT NULL,"
    "  owner_host   TEXT NOT NULL,"
    "  owner_pid    INTEGER NOT NULL,"
    "  PRIMARY KEY (flow, scheduled_ms)"
    ") WITHOUT ROWID;",
    /* 1 -> 2: what became of fire times that did not start a run. */
    "CREATE TABLE fire_event ("
    "  id           INTEGER PRIMARY KEY,"
    "  flow         TEXT NOT NULL,"
    "  outcome      TEXT NOT NULL," /* skipped, queued, missed, dropped, taken */
    "  scheduled_at REAL NOT NULL," /* the fire time, or the first of count */
    "  last_at      REAL,"          /* the last of count */
    "  count        INTEGER NOT NULL DEFAULT 1,"
    "  detail       TEXT,"          /* the message that was logged */
    "  at           REAL NOT NULL,"
    "  owner_pid    INTEGER NOT NULL"
    ");"
    "CREATE INDEX fire_event_by_flow ON fire_event(flow, scheduled_at);",
    /* 2 -> 3: task runs that end in the batch that first writes them (the
       bulk of a large run: a task that ran and ended between two flushes)
       are written many to a row, as a JSON array in task_pack, which costs
       a fraction of a row each. task_row holds the others, and the view
       task_run shows both as before; a task_row row wins over a packed one
       of the same task run, should a packed one ever change again. Packed
       times are integer microseconds since the epoch; packed results are
       JSON strings holding the result's JSON text, so it reads back to the
       byte. task_event no longer refers to a row (its row may be packed). */
    "DROP VIEW task_history;"
    "ALTER TABLE task_run RENAME TO task_row;"
    "CREATE TABLE task_event_v3 ("
    "  run     INTEGER NOT NULL REFERENCES flow_run(id) ON DELETE CASCADE,"
    "  n       INTEGER NOT NULL,"
    "  seq     INTEGER NOT NULL,"
    "  at      REAL NOT NULL,"
    "  state   TEXT NOT NULL,"
    "  attempt INTEGER NOT NULL,"
    "  error   TEXT,"
    "  PRIMARY KEY (run, n, seq)"
    ") WITHOUT ROWID;"
    "INSERT INTO task_event_v3 SELECT run, n, seq, at, state, attempt, error"
    "  FROM task_event;"
    "DROP TABLE task_event;"
    "ALTER TABLE task_event_v3 RENAME TO task_event;"
    "CREATE TABLE task_pack ("
    "  id   INTEGER PRIMARY KEY,"
    "  run  INTEGER NOT NULL REFERENCES flow_run(id) ON DELETE CASCADE,"
    "  rows TEXT NOT NULL" /* [[n, key, task, map_index, state, state_at,
                              state_seq, attempts, error, started_at,
                              started_seq, ended_at, result_kind, result]] */
    ");"
    "CREATE INDEX task_pack_by_run ON task_pack(run);"
    "CREATE VIEW task_run(run, n, key, task, map_index, state, state_at,"
    "  state_seq, attempts, error, started_at, started_seq, ended_at, result,"
    "  result_kind) AS"
    "  SELECT run, n, key, task, map_index, state, state_at, state_seq,"
    "    attempts, error, started_at, started_seq, ended_at, result,"
    "    result_kind FROM task_row"
    "  UNION ALL"
    "  SELECT p.run, t.value ->> 0, t.value ->> 1, t.value ->> 2,"
    "    t.value ->> 3, t.value ->> 4, (t.value ->> 5) / 1e6, t.value ->> 6,"
    "    t.value ->> 7, t.value ->> 8, (t.value ->> 9) / 1e6, t.value ->> 10,"
    "    (t.value ->> 11) / 1e6, t.value ->> 13, t.value ->> 12"
    "  FROM task_pack p, json_each(p.rows) t"
    "  WHERE NOT EXISTS (SELECT 1 FROM task_row r"
    "    WHERE r.run = p.run AND r.n = t.value ->> 0);"
    /* The graph's keys move to a table of their own: the end of a run
       updates its flow_run row, and SQLite writes a row whole, so a
       100,000-task graph made every run end write a megabyte again. */
    "CREATE TABLE run_graph ("
    "  run  INTEGER PRIMARY KEY REFERENCES flow_run(id) ON DELETE CASCADE,"
    "  keys TEXT NOT NULL" /* JSON array of task keys */
    ");"
    "INSERT INTO run_graph(run, keys) SELECT id, graph FROM flow_run;"
    "ALTER TABLE flow_run DROP COLUMN graph;"
    "CREATE VIEW task_history(run, n, seq, at, state, attempt, error) AS"
    "  SELECT run, n, seq, at, state, attempt, error FROM task_event"
    "  UNION ALL SELECT run, n, started_seq, started_at, 'Running', 1, NULL"
    "    FROM task_run WHERE started_seq IS NOT NULL"
    "    AND started_seq <> state_seq"
    "  UNION ALL SELECT run, n, state_seq, state_at, state, attempts, error"
    "    FROM task_run WHERE state_seq > 0;",
};

_Static_assert(sizeof migrations / sizeof migrations[0] ==
                   FL_STORE_SCHEMA_VERSION,
               "one migration step per schema version");

const char *store_migration_sql(int v) {
  return v >= 0 && v < FL_STORE_SCHEMA_VERSION ? migrations[v] : NULL;
}

/* ---- state names ---------------------------------------------------------- */

#define FL_STATE_TEXT(name, text) text,
const char *const store_task_state_names[FL_STORE_TASK_STATES] = {
    FLOWLUA_TASK_STATE_MAP(FL_STATE_TEXT) "Crashed"};
static const char *const flow_state_names[FLOWLUA_FLOW_STATE_COUNT] = {
    FLOWLUA_FLOW_STATE_MAP(FL_STATE_TEXT)};
#undef FL_STATE_TEXT

const char *fl_store_task_state_name(int state) {
  return state >= 0 && state < FL_STORE_TASK_STATES ? store_task_state_names[state]
                                                    : "?";
}

const char *store_flow_state_name(int state) {
  return state >= 0 && state < FLOWLUA_FLOW_STATE_COUNT
             ? flow_state_names[state]
             : "?";
}

int fl_store_task_state_parse(const char *name) {
  for (int i = 0; name && i < FL_STORE_TASK_STATES; i++)
    if (strcmp(name, store_task_state_names[i]) == 0) return i;
  return -1;
}

int fl_store_flow_state_parse(const char *name) {
  for (int i = 0; name && i < FLOWLUA_FLOW_STATE_COUNT; i++)
    if (strcmp(name, flow_state_names[i]) == 0) return i;
  return -1;
}


static const char *const stmt_sql[S_COUNT] = {
    [S_BEGIN] = "BEGIN IMMEDIATE",
    [S_COMMIT] = "COMMIT",
    [S_ROLLBACK] = "ROLLBACK",
    [S_CACHE_GET] = "SELECT result, stored_at FROM cache"
                    " WHERE task = ?1 AND key = ?2",
};

/* ---- errors ---------------------------------------------------------------- */

int store_status_of(int sqlite_rc) {
  switch (sqlite_rc & 0xff) {
  case SQLITE_OK:
  case SQLITE_DONE:
  case SQLITE_ROW:
    return FLOWLUA_OK;
  case SQLITE_NOMEM:
    return FLOWLUA_ENOMEM;
  case SQLITE_CONSTRAINT:
  case SQLITE_MISUSE:
  case SQLITE_RANGE:
    return FLOWLUA_EINVAL;
  default:
    return FLOWLUA_EIO;
  }
}

static void store_set_errv(fl_store *st, const char *fmt, va_list ap) {
  fl_buf_reset(&st->err);
  fl_buf_addf(&st->err, "state store '%s': ", st->path);
  fl_buf_addvf(&st->err, fmt, ap);
}

int store_set_err(fl_store *st, int status, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  store_set_errv(st, fmt, ap);
  va_end(ap);
  return status;
}

/* "state store 'p': <what>: <SQLite's reason>", plus a hint when the cause
   is another process holding the lock. Returns the FLOWLUA_* status. */
int store_sql_err(fl_store *st, int rc, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  store_set_errv(st, fmt, ap);
  va_end(ap);
  const char *why = st->db ? sqlite3_errmsg(st->db) : sqlite3_errstr(rc);
  fl_buf_addf(&st->err, ": %s", why);
  if ((rc & 0xff) == SQLITE_BUSY || (rc & 0xff) == SQLITE_LOCKED)
    fl_buf_addf(&st->err,
                " (another process kept it locked for more than %d ms)",
                st->opts.busy_timeout_ms);
  return store_status_of(rc) ? store_status_of(rc) : FLOWLUA_EIO;
}

int store_oom(fl_store *st, const char *what) {
  return store_set_err(st, FLOWLUA_ENOMEM, "%s: out of memory", what);
}

const char *fl_store_errmsg(const fl_store *st) {
  return st && st->err.data ? st->err.data : "";
}

const char *fl_store_path(const fl_store *st) { return st->path; }

/* Steps a statement that returns no rows and resets it. */
int store_exec(fl_store *st, sqlite3_stmt *s, const char *what) {
  int rc = sqlite3_step(s);
  int status = FLOWLUA_OK;
  if (rc != SQLITE_DONE && rc != SQLITE_ROW) status = store_sql_err(st, rc, "%s", what);
  sqlite3_reset(s);
  return status;
}

static int exec_sql(fl_store *st, const char *sql, const char *what) {
  int rc = sqlite3_exec(st->db, sql, NULL, NULL, NULL);
  return rc == SQLITE_OK ? FLOWLUA_OK : store_sql_err(st, rc, "%s", what);
}

int store_prepare(fl_store *st, const char *sql, sqlite3_stmt **s,
                   const char *what) {
  int rc = sqlite3_prepare_v2(st->db, sql, -1, s, NULL);
  return rc == SQLITE_OK ? FLOWLUA_OK : store_sql_err(st, rc, "%s", what);
}

/* ---- transactions ---------------------------------------------------------- */

int store_tx_begin(fl_store *st, const char *what) {
  return store_exec(st, st->stmt[S_BEGIN], what);
}

int store_tx_commit(fl_store *st, const char *what) {
  return store_exec(st, st->stmt[S_COMMIT], what);
}

/* Harmless when no transaction is open (SQLite may already have rolled back
   after an I/O error). Keeps the error message of the failure that led here. */
void store_tx_rollback(fl_store *st) {
  if (!sqlite3_get_autocommit(st->db)) {
    sqlite3_step(st->stmt[S_ROLLBACK]);
    sqlite3_reset(st->stmt[S_ROLLBACK]);
  }
}

/* ---- process identity ------------------------------------------------------ */

/* Reads field 3 (state) and field 22 (start time) of /proc/PID/stat. The
   command name (field 2) may hold spaces and ')', so fields are counted
   from its last ')'. 0, or -1 when the process does not exist. */
static int read_proc_stat(pid_t pid, char *state, int64_t *start_time) {
  char path[64], buf[1024];
  snprintf(path, sizeof path, "/proc/%ld/stat", (long)pid);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0) return -1;
  buf[n] = '\0';
  const char *p = strrchr(buf, ')');
  if (!p) return -1;
  p++;
  *state = '?';
  *start_time = 0;
  for (int field = 3; *p && field <= 22; field++) {
    while (*p == ' ') p++;
    if (field == 3) *state = *p;
    if (field == 22) *start_time = strtoll(p, NULL, 10);
    while (*p && *p != ' ') p++;
  }
  return 0;
}

static void read_line_file(const char *path, char *out, size_t size) {
  out[0] = '\0';
  FILE *f = fopen(path, "re");
  if (!f) return;
  if (fgets(out, (int)size, f)) out[strcspn(out, "\n")] = '\0';
  fclose(f);
}

void fl_store_owner_self(fl_store_owner *o) {
  memset(o, 0, sizeof *o);
  if (gethostname(o->host, sizeof o->host - 1) != 0) o->host[0] = '\0';
  read_line_file("/proc/sys/kernel/random/boot_id", o->boot_id,
                 sizeof o->boot_id);
  o->pid = getpid();
  char state;
  if (read_proc_stat(getpid(), &state, &o->start_time) != 0) o->start_time = 0;
}

int fl_store_owner_of(pid_t pid, fl_store_owner *o) {
  if (pid <= 0) return -1;
  fl_store_owner_self(o);
  o->pid = pid;
  char state;
  if (read_proc_stat(pid, &state, &o->start_time) == 0)
    return state == 'Z' || state == 'X' ? -1 : 0;
  /* No /proc entry: gone, unless /proc itself is missing (not Linux, or not
     mounted), where kill(pid, 0) is all there is. */
  o->start_time = 0;
  if (access("/proc/self/stat", R_OK) == 0) return -1;
  return kill(pid, 0) == 0 || errno == EPERM ? 0 : -1;
}

/* ---- opening --------------------------------------------------------------- */

void fl_store_options_init(fl_store_options *o) {
  *o = (fl_store_options){.sync = FL_STORE_SYNC_NORMAL,
                          .busy_timeout_ms = 5000, .must_exist = 0};
}

/* What a database file holds, read without writing. */
typedef struct identity {
  int64_t app_id, version;
  char tables[200]; /* the first few table names, for messages */
  int n_tables;
} identity;

static int read_identity(fl_store *st, identity *id) {
  memset(id, 0, sizeof *id);
  sqlite3_stmt *s = NULL;
  int rc = sqlite3_prepare_v2(st->db,
                              "SELECT (SELECT application_id FROM"
                              " pragma_application_id),"
                              " (SELECT user_version FROM pragma_user_version)",
                              -1, &s, NULL);
  if (rc == SQLITE_OK && (rc = sqlite3_step(s)) == SQLITE_ROW) {
    id->app_id = sqlite3_column_int64(s, 0);
    id->version = sqlite3_column_int64(s, 1);
    rc = SQLITE_OK;
  }
  sqlite3_finalize(s);
  if (rc != SQLITE_OK) return store_sql_err(st, rc, "cannot read it");
  rc = sqlite3_prepare_v2(st->db,
                          "SELECT name FROM sqlite_schema WHERE type = 'table'"
                          " AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'"
                          " ORDER BY name",
                          -1, &s, NULL);
  size_t used = 0;
  while (rc == SQLITE_OK && (rc = sqlite3_step(s)) == SQLITE_ROW) {
    const char *name = (const char *)sqlite3_column_text(s, 0);
    if (id->n_tables < 5 && name && used + strlen(name) + 8 < sizeof id->tables)
      used += (size_t)snprintf(id->tables + used, sizeof id->tables - used,
                               "%s'%s'", id->n_tables ? ", " : "", name);
    id->n_tables++;
    rc = SQLITE_OK;
  }
  if (rc == SQLITE_DONE) rc = SQLITE_OK;
  sqlite3_finalize(s);
  if (rc != SQLITE_OK) return store_sql_err(st, rc, "cannot read its tables");
  if (id->n_tables > 5)
    snprintf(id->tables + used, sizeof id->tables - used, " and %d more",
             id->n_tables - 5);
  return FLOWLUA_OK;
}

/* Whether a file with this identity may be used: ours at a version we know,
   or an empty database. */
static int check_identity(fl_store *st, const identity *id) {
  if (id->app_id == FL_STORE_APPLICATION_ID) {
    if (id->version > FL_STORE_SCHEMA_VERSION)
      return store_set_err(st, FLOWLUA_EIO,
                     "written by a newer flowlua (schema version %lld; this "
                     "one knows up to %d); refusing to touch it",
                     (long long)id->version, FL_STORE_SCHEMA_VERSION);
    if (id->version == 0 && id->n_tables > 0)
      return store_set_err(st, FLOWLUA_EIO,
                     "marked as a flowlua store but without a schema version, "
                     "and it has tables (%s); refusing to touch it",
                     id->tables);
    return FLOWLUA_OK;
  }
  if (id->app_id != 0)
    return store_set_err(st, FLOWLUA_EIO,
                   "not a flowlua state store: a SQLite database of another "
                   "application (application_id 0x%08llx); refusing to touch "
                   "it",
                   (unsigned long long)(uint32_t)id->app_id);
  if (id->n_tables > 0)
    return store_set_err(st, FLOWLUA_EIO,
                   "not a flowlua state store: a SQLite database with tables "
                   "of its own (%s); refusing to touch it",
                   id->tables);
  if (id->version != 0)
    return store_set_err(st, FLOWLUA_EIO,
                   "not a flowlua state store: an empty SQLite database with "
                   "user_version %lld set by another program; refusing to "
                   "touch it",
                   (long long)id->version);
  return FLOWLUA_OK; /* an empty database: ours to set up */
}

/* Checks an existing, non-empty file without writing to it: its first bytes
   must be SQLite's, and its identity acceptable. */
static int inspect_file(fl_store *st) {
  unsigned char head[100]; /* SQLite's file header */
  int fd = open(st->path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return store_set_err(st, FLOWLUA_EIO, "cannot open it: %s", strerror(errno));
  ssize_t n = read(fd, head, sizeof head);
  int saved = errno;
  close(fd);
  if (n < 0)
    return store_set_err(st, FLOWLUA_EIO, "cannot read it: %s", strerror(saved));
  if (n < (ssize_t)sizeof head || memcmp(head, "SQLite format 3", 16) != 0)
    return store_set_err(st, FLOWLUA_EIO,
                   "not a flowlua state store: the file is not a SQLite "
                   "database; refusing to touch it");
  char wal[4096];
  snprintf(wal, sizeof wal, "%s-wal", st->path);
  int has_wal = access(wal, F_OK) == 0;
  /* The short way, taken by a store in use: the header says flowlua's
     (application_id, bytes 68-71, big-endian; nothing else sets it so) at
     a version this code knows (user_version, bytes 60-63), and a WAL file
     is beside it, so opening it for writing creates nothing; migrate()
     checks again, with what the WAL holds, before anything is written.
     This spares every start a second connection, which would read the
     whole WAL to index it. Anything else takes the long way below
     (migrate() checkpoints new stores, so their header is soon current). */
  uint32_t app_id = (uint32_t)head[68] << 24 | (uint32_t)head[69] << 16 |
                    (uint32_t)head[70] << 8 | head[71];
  uint32_t version = (uint32_t)head[60] << 24 | (uint32_t)head[61] << 16 |
                     (uint32_t)head[62] << 8 | head[63];
  if (app_id == FL_STORE_APPLICATION_ID && version <= FL_STORE_SCHEMA_VERSION &&
      has_wal)
    return FLOWLUA_OK;
  /* Read-only, so that even SQLite cannot change a file that turns out not
     to be ours; and immutable unless a WAL file is beside it, because a
     read-only connection to a WAL database leaves empty -wal and -shm files
     behind. Without a WAL file the main file holds everything there is. */
  fl_buf uri = FL_BUF_INIT;
  fl_buf_adds(&uri, "file:");
  for (const unsigned char *p = (const unsigned char *)st->path; *p; p++) {
    if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
        (*p >= '0' && *p <= '9') || strchr("/._-~", *p))
      fl_buf_addc(&uri, (char)*p);
    else
      fl_buf_addf(&uri, "%%%02X", *p);
  }
  fl_buf_adds(&uri, has_wal ? "?mode=ro" : "?immutable=1");
  if (uri.oom) {
    fl_buf_free(&uri);
    return store_oom(st, "cannot open it");
  }
  int rc = sqlite3_open_v2(uri.data, &st->db,
                           SQLITE_OPEN_READONLY | SQLITE_OPEN_URI, NULL);
  fl_buf_free(&uri);
  int status = rc == SQLITE_OK ? FLOWLUA_OK : store_sql_err(st, rc, "cannot open it");
  if (status == FLOWLUA_OK) {
    sqlite3_busy_timeout(st->db, st->opts.busy_timeout_ms);
    identity id;
    status = read_identity(st, &id);
    if (status == FLOWLUA_OK) status = check_identity(st, &id);
  }
  sqlite3_close(st->db);
  st->db = NULL;
  return status;
}

/* Creates the file's folder when it is missing — one level only, so that a
   mistyped --state path is reported rather than built. */
static int make_parent(fl_store *st) {
  const char *slash = strrchr(st->path, '/');
  if (!slash || slash == st->path) return FLOWLUA_OK;
  char *dir = strndup(st->path, (size_t)(slash - st->path));
  if (!dir) return store_oom(st, "cannot create its folder");
  int status = FLOWLUA_OK;
  struct stat sb;
  if (stat(dir, &sb) == 0) {
    if (!S_ISDIR(sb.st_mode))
      status = store_set_err(st, FLOWLUA_EIO, "'%s' is not a folder", dir);
  } else if (mkdir(dir, 0777) != 0 && errno != EEXIST) {
    status = store_set_err(st, FLOWLUA_EIO, "cannot create folder '%s': %s", dir,
                     errno == ENOENT ? "its parent folder does not exist"
                                     : strerror(errno));
  }
  free(dir);
  return status;
}

/* Two processes opening a new store at once race to switch it to WAL
   mode, which SQLite answers with "database is locked" at once, without
   waiting. Opening is therefore one process at a time: an flock on the
   store's folder, held while opening. (Not on the file itself: closing
   any descriptor of it would drop SQLite's own fcntl locks.) Returns the
   locked descriptor, or -1 with the error set. */
static int lock_folder(fl_store *st) {
  const char *slash = strrchr(st->path, '/');
  char *dir = slash ? strndup(st->path, (size_t)(slash - st->path) +
                                            (slash == st->path))
                    : strdup(".");
  if (!dir) return store_oom(st, "cannot lock its folder"), -1;
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) {
    store_set_err(st, FLOWLUA_EIO, "cannot open its folder '%s': %s", dir,
                  strerror(errno));
    free(dir);
    return -1;
  }
  double give_up = store_mono_now() + st->opts.busy_timeout_ms / 1000.0;
  while (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    if (errno != EWOULDBLOCK || store_mono_now() > give_up) {
      store_set_err(st, FLOWLUA_EIO,
                    "cannot lock its folder '%s' to open it: %s", dir,
                    errno == EWOULDBLOCK ? "another process kept it longer "
                                           "than the busy timeout"
                                         : strerror(errno));
      close(fd);
      free(dir);
      return -1;
    }
    struct timespec ms = {0, 1000000};
    nanosleep(&ms, NULL);
  }
  free(dir);
  return fd;
}

/* journal mode, durability, foreign keys: per connection, outside any
   transaction. */
/* Checkpoints, and what they cost whom.

   SQLite checkpoints on the commit that takes the WAL past 1,000 frames;
   a flowlua store does it differently, because of who would wait:
   - the writer thread checkpoints when its queue is empty (store_write.c),
     while the engine works;
   - this connection, which commits the end of every run, only when the
     WAL reached MAIN_CHECKPOINT_FRAMES without that (note_wal_size): the
     end of a big run must not copy its whole WAL into the file while the
     run waits;
   - a process that wrote no big run truncates the WAL when it closes, if
     it holds CLOSE_CHECKPOINT_FRAMES or more (fl_store_close): the next
     process to open the file reads the whole WAL to index it, so a WAL
     grown by many small runs would slow every start. */
#define MAIN_CHECKPOINT_FRAMES 4096
#define CLOSE_CHECKPOINT_FRAMES 128

/* The WAL hook of this connection (instead of SQLite's automatic
   checkpoint, which is also a WAL hook). */
static int note_wal_size(void *ctx, sqlite3 *db, const char *name, int frames) {
  (void)name;
  ((fl_store *)ctx)->wal_frames = frames;
  if (frames >= MAIN_CHECKPOINT_FRAMES)
    sqlite3_wal_checkpoint_v2(db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
  return SQLITE_OK;
}

static int configure(fl_store *st, int memory) {
  sqlite3_busy_timeout(st->db, st->opts.busy_timeout_ms);
  sqlite3_extended_result_codes(st->db, 1);
  if (!memory) {
    sqlite3_stmt *s = NULL;
    int status = store_prepare(st, "PRAGMA journal_mode = WAL", &s,
                         "cannot switch it to WAL mode");
    if (status) return status;
    int rc = sqlite3_step(s);
    const char *mode = rc == SQLITE_ROW
                           ? (const char *)sqlite3_column_text(s, 0) : NULL;
    if (rc != SQLITE_ROW)
      status = store_sql_err(st, rc, "cannot switch it to WAL mode");
    else if (!mode || strcmp(mode, "wal") != 0)
      status = store_set_err(st, FLOWLUA_EIO,
                       "cannot switch it to WAL mode (it stays in '%s' mode; "
                       "is the folder on a file system without shared "
                       "memory?)",
                       mode ? mode : "?");
    sqlite3_finalize(s);
    if (status) return status;
  }
  /* A larger page cache keeps the indexes of a 100,000-task run in memory;
     the WAL is trimmed after big runs so it does not stay huge. */
  if (!memory) sqlite3_wal_hook(st->db, note_wal_size, st);
  char sql[256];
  snprintf(sql, sizeof sql,
           "PRAGMA synchronous = %s; PRAGMA foreign_keys = ON;"
           " PRAGMA cache_size = -16384; PRAGMA journal_size_limit = 67108864;"
           " PRAGMA temp_store = MEMORY;",
           st->opts.sync == FL_STORE_SYNC_FULL ? "FULL" : "NORMAL");
  return exec_sql(st, sql, "cannot configure it");
}

/* Brings the schema to FL_STORE_SCHEMA_VERSION in one transaction. The file
   is checked again inside it: another process may have created it since
   inspect_file looked. */
static int migrate(fl_store *st) {
  int status = exec_sql(st, "BEGIN IMMEDIATE", "cannot set up its schema");
  if (status) return status;
  identity id;
  status = read_identity(st, &id);
  if (status == FLOWLUA_OK) status = check_identity(st, &id);
  for (int64_t v = id.version; status == FLOWLUA_OK && v < FL_STORE_SCHEMA_VERSION;
       v++) {
    int rc = sqlite3_exec(st->db, migrations[v], NULL, NULL, NULL);
    if (rc != SQLITE_OK)
      status = store_sql_err(st, rc, "cannot migrate it from schema version %lld",
                       (long long)v);
  }
  if (status == FLOWLUA_OK && id.version < FL_STORE_SCHEMA_VERSION) {
    char sql[128];
    snprintf(sql, sizeof sql,
             "PRAGMA application_id = %d; PRAGMA user_version = %d;",
             FL_STORE_APPLICATION_ID, FL_STORE_SCHEMA_VERSION);
    status = exec_sql(st, sql, "cannot record its schema version");
  }
  if (status == FLOWLUA_OK)
    status = exec_sql(st, "COMMIT", "cannot commit its schema");
  if (status != FLOWLUA_OK && !sqlite3_get_autocommit(st->db))
    sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
  /* A new or migrated schema goes into the file itself at once, so the
     header shows the store's identity to inspect_file. Best effort. */
  if (status == FLOWLUA_OK && id.version < FL_STORE_SCHEMA_VERSION &&
      strcmp(st->path, ":memory:") != 0)
    sqlite3_wal_checkpoint_v2(st->db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL,
                              NULL);
  return status;
}


/* Frees the handle without flushing; the journal file is kept (its
   records are not all in the file) unless the caller closed it. */
static void destroy(fl_store *st) {
  store_writer_stop(st);
  store_mem_queue_free(st);
  while (st->runs) store_free_run(st->runs);
  fl_journal_close(st->journal, 0);
  fl_journal_close(st->spare, 0);
  for (int i = 0; i < S_COUNT; i++) sqlite3_finalize(st->stmt[i]);
  /* No checkpoint by SQLite at close: it would cost every flowlua process
     two fsyncs (2 ms of a 6.6 ms one-task run). The WAL keeps what was
     committed, readers read through it, and the checkpoints above
     (configure) keep it small. Hence `.flowlua` is copied whole, state.db
     with its -wal file. */
  if (st->db) sqlite3_db_config(st->db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, NULL);
  sqlite3_close(st->db);
  free(st->events);
  free(st->touched);
  free(st->puts);
  fl_buf_free(&st->batch);
  fl_buf_free(&st->cache_json);
  fl_buf_free(&st->err);
  free(st->path);
  free(st);
}

int fl_store_open(const char *path, const fl_store_options *opts,
                  fl_store **out, char *err, size_t errlen) {
  *out = NULL;
  if (errlen) err[0] = '\0';
  if (!path || !*path) {
    if (errlen) snprintf(err, errlen, "state store: no path given");
    return FLOWLUA_EINVAL;
  }
  fl_store *st = calloc(1, sizeof *st);
  if (!st || !(st->path = strdup(path))) {
    if (errlen) snprintf(err, errlen, "state store '%s': out of memory", path);
    free(st);
    return FLOWLUA_ENOMEM;
  }
  if (opts)
    st->opts = *opts;
  else
    fl_store_options_init(&st->opts);
  if (st->opts.busy_timeout_ms < 0) st->opts.busy_timeout_ms = 0;
  fl_store_owner_self(&st->self);
  st->stats = getenv("FLOWLUA_STORE_STATS") != NULL;

  int memory = strcmp(path, ":memory:") == 0;
  int status = FLOWLUA_OK;
  if (!memory) {
    struct stat sb;
    if (stat(path, &sb) == 0) {
      if (S_ISDIR(sb.st_mode))
        status = store_set_err(st, FLOWLUA_EIO, "is a folder, not a file");
      else if (sb.st_size > 0)
        status = inspect_file(st);
    } else if (errno != ENOENT) {
      status = store_set_err(st, FLOWLUA_EIO, "%s", strerror(errno));
    } else if (st->opts.must_exist) {
      destroy(st);
      return FLOWLUA_OK; /* nothing recorded yet: *out stays NULL */
    } else {
      status = make_parent(st);
    }
  }
  int folder_lock = -1;
  if (status == FLOWLUA_OK && !memory) {
    folder_lock = lock_folder(st);
    if (folder_lock < 0) status = FLOWLUA_EIO;
  }
  if (status == FLOWLUA_OK) {
    int rc = sqlite3_open_v2(path, &st->db,
                             SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
                                 SQLITE_OPEN_NOMUTEX,
                             NULL);
    if (rc != SQLITE_OK) status = store_sql_err(st, rc, "cannot open it");
  }
  if (status == FLOWLUA_OK) status = configure(st, memory);
  if (status == FLOWLUA_OK) status = migrate(st);
  if (status == FLOWLUA_OK && !memory) {
    char jerr[512];
    if (fl_journal_create(path, &st->journal, jerr, sizeof jerr) != 0)
      status = store_set_err(st, FLOWLUA_EIO, "%s", jerr);
  }
  for (int i = 0; status == FLOWLUA_OK && i < S_COUNT; i++) {
    int rc = sqlite3_prepare_v3(st->db, stmt_sql[i], -1,
                                SQLITE_PREPARE_PERSISTENT, &st->stmt[i], NULL);
    if (rc != SQLITE_OK) status = store_sql_err(st, rc, "cannot prepare its queries");
  }
  if (status == FLOWLUA_OK)
    status = store_mem_conn_open(st);
  if (folder_lock >= 0) close(folder_lock); /* releases the flock */
  if (status != FLOWLUA_OK) {
    if (errlen) snprintf(err, errlen, "%s", fl_store_errmsg(st));
    fl_journal_close(st->journal, 1); /* nothing recorded in it yet */
    st->journal = NULL;
    destroy(st);
    return status;
  }
  *out = st;
  return FLOWLUA_OK;
}


void fl_store_close(fl_store *st) {
  if (!st) return;
  if (st->stats)
    fprintf(stderr,
            "store stats: %zu flushes, %zu task rows, %zu history rows, "
            "%.3f s flushing, journal %zu bytes\n",
            st->n_flushes, st->n_rows, st->n_events_written,
            st->flush_seconds, fl_journal_used(st->journal));
  /* Open runs stay Running in the file (fl_store_mark_crashed finds them
     once this process is gone), with every change the journal holds. */
  if (store_flush(st, "cannot write its last changes") == FLOWLUA_OK) {
    fl_journal_close(st->journal, 1);
    fl_journal_close(st->spare, 1);
    st->journal = st->spare = NULL;
  }
  store_writer_stop(st);
  if (!st->writer_used && st->wal_frames >= CLOSE_CHECKPOINT_FRAMES) {
    /* See "Checkpoints" above. Never waits: if another process is using
       the WAL, it stays for a later close. */
    sqlite3_busy_timeout(st->db, 0);
    sqlite3_wal_checkpoint_v2(st->db, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL,
                              NULL);
  }
  destroy(st);
}

/* ---- the batch --------------------------------------------------------------- */

/* Copies n bytes and a NUL into the batch's strings; *off is where. */
static int batch_str(fl_store *st, const char *s, size_t n, size_t *off) {
  if (fl_buf_reserve(&st->batch, n + 1) != 0) {
    st->batch.oom = 0; /* the buffer is intact: a later call may succeed */
    return store_oom(st, "cannot buffer a change");
  }
  *off = st->batch.len;
  memcpy(st->batch.data + st->batch.len, s, n);
  st->batch.data[st->batch.len + n] = '\0';
  st->batch.len += n + 1;
  return FLOWLUA_OK;
}

static int touch(fl_store *st, fl_store_run *run, uint32_t task) {
  task_entry *e = &run->tasks[task];
  if (e->touched) return FLOWLUA_OK;
  if (GROW(st->touched, st->cap_touched, st->n_touched))
    return store_oom(st, "cannot buffer a change");
  st->touched[st->n_touched++] = (touched_task){run, task};
  e->touched = 1;
  return FLOWLUA_OK;
}

int fl_store_journalled(const fl_store *st) { return st->journal != NULL; }


size_t fl_store_buffered(const fl_store *st) {
  return st->n_events + st->n_puts + st->n_touched;
}

size_t fl_store_pending(const fl_store *st) {
  return st->n_events + st->n_puts + st->n_touched + store_queued_changes(st);
}

void store_bind_opt_double(sqlite3_stmt *s, int i, double v) {
  if (v > 0)
    sqlite3_bind_double(s, i, v);
  else
    sqlite3_bind_null(s, i);
}

/* Binds NULL for a NULL string: sqlite3_bind_text does too, but says so. */
void store_bind_text(sqlite3_stmt *s, int i, const char *v, size_t n) {
  sqlite3_bind_text64(s, i, v, v ? n : 0, SQLITE_STATIC, SQLITE_UTF8);
}

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
}


double store_mono_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- the journal ------------------------------------------------------------ */

static int journal(fl_store *st, j_head h, const void *fixed, size_t fixed_len,
                   const char *s1, size_t n1, const char *s2, size_t n2) {
  if (!st->journal || st->replaying) return FLOWLUA_OK;
  fl_journal_part parts[4] = {{&h, sizeof h}, {fixed, fixed_len},
                              {s1, s1 ? n1 : 0}, {s2, s2 ? n2 : 0}};
  if (fl_journal_append(st->journal, parts, 4) != 0)
    return store_set_err(st, FLOWLUA_EIO, "cannot write its journal: %s",
                   strerror(errno));
  return FLOWLUA_OK;
}

/* The journals' records are all in the file once no run is open and
   nothing is buffered. */
void store_journal_settled(fl_store *st) {
  if (st->runs || fl_store_pending(st) != 0) return;
  fl_journal_reset(st->journal);
  fl_journal_reset(st->spare);
  st->spare_cover = 0;
}

/* A journal takes its turn once it holds this much: short runs keep one. */
#define TURN_BYTES (1u << 20)

/* The journals take turns, so that a run's journal holds what the file
   does not yet, not the whole run (a 1,000,000-element map wrote 265 MB).
   At a flush, every record of the active journal is in a batch frozen so
   far (but the declarations of task runs that did not change since, which
   the next journal declares again: redeclare()); so once the batches up
   to this one are committed, none of its records is needed any more. The
   spare, when its own records are all committed, is reset and made the
   active one, with the next generation, which orders the two for a
   replay. If it is not yet (the writer is behind), the active journal
   goes on, and turns at a later flush. */
void store_journal_turn(fl_store *st, uint64_t frozen) {
  if (!st->journal || st->replaying) return;
  if (st->spare_cover && store_committed_seq(st) >= st->spare_cover) {
    fl_journal_reset(st->spare);
    st->spare_cover = 0;
  }
  if (st->spare_cover || fl_journal_used(st->journal) < TURN_BYTES) return;
  if (!st->spare) {
    char err[512];
    /* Without a spare the active journal goes on growing, as it did. */
    if (fl_journal_create(st->path, &st->spare, err, sizeof err) != 0) return;
  }
  fl_journal *was = st->journal;
  st->journal = st->spare;
  st->spare = was;
  st->spare_cover = frozen;
  fl_journal_set_generation(st->journal, ++st->journal_gen);
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

void store_free_run(fl_store_run *run) {
  fl_store *st = run->st;
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
  const char *graph;
  size_t graph_len;
  const fl_store_owner *owner;
} begin_ctx;

static int insert_run(fl_store *st, void *ctx_) {
  begin_ctx *c = ctx_;
  const fl_store_run_info *in = c->info;
  sqlite3_stmt *s = NULL;
  int status = store_prepare(
      st,
      "INSERT INTO flow_run(run_id, flow, script, params, state, scheduled_at,"
      " started_at, resumed_from, owner_host, owner_boot, owner_pid,"
      " owner_start) VALUES (?1, ?2, ?3, ?4, 'Running', ?5, ?6, ?8, ?9,"
      " ?10, ?11, ?12)",
      &s, "cannot record the run");
  if (status) return status;
  sqlite3_bind_text(s, 1, in->run_id, -1, SQLITE_STATIC);
  sqlite3_bind_text(s, 2, in->flow, -1, SQLITE_STATIC);
  sqlite3_bind_text(s, 3, in->script, -1, SQLITE_STATIC);
  sqlite3_bind_text(s, 4, in->params_json, -1, SQLITE_STATIC);
  store_bind_opt_double(s, 5, in->scheduled_at);
  sqlite3_bind_double(s, 6, in->started_at);
  sqlite3_bind_text(s, 8, in->resumed_from, -1, SQLITE_STATIC);
  sqlite3_bind_text(s, 9, c->owner->host, -1, SQLITE_STATIC);
  sqlite3_bind_text(s, 10, c->owner->boot_id, -1, SQLITE_STATIC);
  sqlite3_bind_int64(s, 11, c->owner->pid);
  sqlite3_bind_int64(s, 12, c->owner->start_time);
  int rc = sqlite3_step(s);
  if (rc == SQLITE_CONSTRAINT_UNIQUE)
    status = store_set_err(st, FLOWLUA_EINVAL, "run id '%s' is already recorded",
                     in->run_id);
  else if (rc == SQLITE_CONSTRAINT_CHECK)
    status = store_set_err(st, FLOWLUA_EINVAL,
                     "the params of run '%s' are not valid JSON", in->run_id);
  else if (rc != SQLITE_DONE)
    status = store_sql_err(st, rc, "cannot record run '%s'", in->run_id);
  else
    c->run->rowid = sqlite3_last_insert_rowid(st->db);
  sqlite3_finalize(s);
  if (status) return status;
  status = store_prepare(st, "INSERT INTO run_graph(run, keys) VALUES (?1, ?2)",
                         &s, "cannot record the run's graph");
  if (status) return status;
  sqlite3_bind_int64(s, 1, c->run->rowid);
  sqlite3_bind_text64(s, 2, c->graph, c->graph_len, SQLITE_STATIC, SQLITE_UTF8);
  status = store_exec(st, s, "cannot record the run's graph");
  sqlite3_finalize(s);
  return status;
}

int fl_store_run_begin(fl_store *st, const fl_store_run_info *info,
                       fl_store_run **out) {
  *out = NULL;
  if (!info->run_id || !*info->run_id || !info->flow || !*info->flow)
    return store_set_err(st, FLOWLUA_EINVAL,
                   "cannot record a run without a run id and a flow name");
  fl_store_run *run = calloc(1, sizeof *run);
  fl_buf graph = FL_BUF_INIT;
  if (!run || !(run->run_id = strdup(info->run_id))) goto fail_nomem;
  run->st = st;
  fl_buf_addc(&graph, '[');
  for (size_t i = 0; i < info->n_keys; i++) {
    if (i) fl_buf_addc(&graph, ',');
    fl_buf_add_json_string(&graph, info->keys[i]);
  }
  fl_buf_addc(&graph, ']');
  if (graph.oom) goto fail_nomem;
  begin_ctx ctx = {run, info, graph.data, graph.len,
                   info->owner ? info->owner : &st->self};
  int status = store_flush_with(st, "cannot record the run", insert_run, &ctx);
  fl_buf_free(&graph);
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
  if (run) free(run->run_id);
  free(run);
  return store_oom(st, "cannot record the run");
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
  int status = store_prepare(st,
                       "UPDATE flow_run SET state = ?2, ended_at = ?3,"
                       " error = ?4, task_counts = ?5 WHERE id = ?1",
                       &s, "cannot record the end of the run");
  if (status) return status;
  sqlite3_bind_int64(s, 1, c->run->rowid);
  sqlite3_bind_text(s, 2, store_flow_state_name(c->state), -1, SQLITE_STATIC);
  store_bind_opt_double(s, 3, c->ended_at);
  sqlite3_bind_text(s, 4, c->error, -1, SQLITE_STATIC);
  sqlite3_bind_text(s, 5, c->counts, -1, SQLITE_STATIC);
  status = store_exec(st, s, "cannot record the end of the run");
  sqlite3_finalize(s);
  return status;
}

int fl_store_run_end(fl_store_run *run, int state, double ended_at,
                     const char *error) {
  fl_store *st = run->st;
  int status;
  fl_buf counts = FL_BUF_INIT;
  if (state < 0 || state >= FLOWLUA_FLOW_STATE_COUNT) {
    status = store_set_err(st, FLOWLUA_EINVAL,
                     "run '%s' cannot end in state number %d", run->run_id,
                     state);
    goto done;
  }
  /* Counted here from what this process knows, which is what the flush
     below leaves in the file: no query over the run's task rows. A task run
     declared but never changed has no row, so it is not counted. */
  size_t by_state[FL_STORE_TASK_STATES] = {0};
  for (uint32_t i = 0; i < run->n_tasks; i++)
    if (run->tasks[i].written || run->tasks[i].touched)
      by_state[run->tasks[i].state]++;
  fl_buf_addc(&counts, '{');
  for (int i = 0, first = 1; i < FL_STORE_TASK_STATES; i++) {
    if (!by_state[i]) continue;
    fl_buf_addf(&counts, "%s\"%s\":%zu", first ? "" : ",", store_task_state_names[i],
                by_state[i]);
    first = 0;
  }
  fl_buf_addc(&counts, '}');
  if (counts.oom) {
    status = store_oom(st, "cannot record the end of the run");
    goto done;
  }
  end_ctx ctx = {run, state, ended_at, error, counts.data};
  status = store_flush_with(st, "cannot record the end of the run", update_run_end,
                      &ctx);
  if (status == FLOWLUA_OK)
    status = journal(st, (j_head){run->rowid, 0, J_END}, NULL, 0, NULL, 0,
                     NULL, 0);
done:
  fl_buf_free(&counts);
  store_free_run(run);
  if (status == FLOWLUA_OK) store_journal_settled(st);
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
      return store_set_err(run->st, FLOWLUA_EINVAL,
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

int store_task_known(const fl_store_run *run, uint32_t n) {
  return n < run->n_tasks && run->tasks[n].key_off != SIZE_MAX;
}

int store_run_restore(fl_store_run *run, uint32_t n, const char *key,
                      const char *task, const task_entry *fields,
                      const char *error) {
  fl_store *st = run->st;
  if (store_task_known(run, n)) return FLOWLUA_OK; /* said before */
  if (n >= UINT32_MAX - 1)
    return store_set_err(st, FLOWLUA_EIO, "run '%s': task run number %u",
                         run->run_id, n);
  size_t key_len = strlen(key), task_len = strlen(task);
  uint32_t more = n >= run->n_tasks ? n + 1 - run->n_tasks : 0;
  char *err_copy = error ? strdup(error) : NULL;
  if ((error && !err_copy) || reserve_tasks(run, more, key_len + task_len + 2)) {
    free(err_copy);
    return store_oom(st, "cannot replay a journal");
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
  return FLOWLUA_OK;
}

static int task_add(fl_store_run *run, const char *key, const char *task,
                    int map_index, uint32_t *task_out, int element) {
  fl_store *st = run->st;
  if (!key || !*key)
    return store_set_err(st, FLOWLUA_EINVAL, "run '%s': a task run needs a key",
                   run->run_id);
  if (!task) task = key;
  if (run->n_tasks == UINT32_MAX - 1)
    return store_set_err(st, FLOWLUA_EINVAL, "run '%s': too many task runs",
                   run->run_id);
  size_t key_len = strlen(key), task_len = strlen(task);
  if (reserve_tasks(run, 1, key_len + task_len + 2))
    return store_oom(st, "cannot add a task run");
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
  if (!lens) return store_oom(st, "cannot journal the task runs");
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
    return store_set_err(st, FLOWLUA_EIO, "cannot write its journal: %s",
                         strerror(errno));
  return FLOWLUA_OK;
}

int fl_store_task_add_many(fl_store_run *run, const char *const *keys,
                           const char *const *tasks, uint32_t n,
                           uint32_t *first_out) {
  fl_store *st = run->st;
  if (n > UINT32_MAX - 1 - run->n_tasks)
    return store_set_err(st, FLOWLUA_EINVAL, "run '%s': too many task runs",
                         run->run_id);
  size_t bytes = 0;
  for (uint32_t i = 0; i < n; i++) {
    if (!keys[i] || !*keys[i])
      return store_set_err(st, FLOWLUA_EINVAL,
                           "run '%s': a task run needs a key", run->run_id);
    bytes += strlen(keys[i]) + strlen(tasks[i] ? tasks[i] : keys[i]) + 2;
  }
  if (reserve_tasks(run, n, bytes))
    return store_oom(st, "cannot add the task runs");
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
  if (!store_task_known(run, task))
    return store_set_err(st, FLOWLUA_EINVAL, "run '%s': no task run number %u",
                   run->run_id, task);
  if (state < 0 || state >= FL_STORE_TASK_STATES)
    return store_set_err(st, FLOWLUA_EINVAL, "run '%s': no task state number %d",
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
    return store_oom(st, "cannot buffer a change");
  if (demote && e->error &&
      batch_str(st, e->error, strlen(e->error), &err_off))
    return FLOWLUA_ENOMEM;
  if ((error && !(err_copy = strdup(error))) || touch(st, run, task)) {
    st->batch.len = batch_len;
    free(err_copy);
    return store_oom(st, "cannot buffer a change");
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
  if (store_is_final_state(state)) e->ended = at;
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
  if (!store_task_known(run, task))
    return store_set_err(st, FLOWLUA_EINVAL, "run '%s': no task run number %u",
                   run->run_id, task);
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
  if (json && len >= J_NONE)
    return store_set_err(st, FLOWLUA_EINVAL, "run '%s': a result of 4 GiB or more",
                   run->run_id);
  int status = redeclare(st, run, task);
  if (status) return status;
  return journal(st, (j_head){run->rowid, task, J_RESULT}, &jr, sizeof jr,
                 json, len, NULL, 0);
}

/* ---- cache --------------------------------------------------------------------- */

int fl_store_cache_put(fl_store *st, const char *task, const char *key,
                       const char *json, size_t len, double at) {
  if (!task || !key || !json)
    return store_set_err(st, FLOWLUA_EINVAL,
                   "a cache entry needs a task, a key and a result");
  if (GROW(st->puts, st->cap_puts, st->n_puts))
    return store_oom(st, "cannot buffer a cache entry");
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
  if (st->cache_json.oom) return store_oom(st, "cannot read a cached result");
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
  int drained = store_writer_drain(st);
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
    status = store_sql_err(st, rc, "cannot read the cache of task '%s'", task);
  }
  sqlite3_reset(s);
  return status;
}

