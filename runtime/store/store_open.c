/*
 * store_open.c — opening a state store: the schema and its migrations,
 * what a file must hold before a byte is written to it, the folder's lock,
 * SQLite's configuration, and closing.
 *
 * What it must not do: write a single byte to a file before knowing it is
 * a flowlua store (or a new one).
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
    /* 3 -> 4: the graph's edges are stored with the run ([[from, to,
       ordering], ...] over the indexes of keys), so that a report is drawn
       from the history alone, never by running the script the run names.
       Runs recorded before have none (NULL): their graph is unavailable.
       Resumes of a run are found by resumed_from, to claim a run once. */
    "ALTER TABLE run_graph ADD COLUMN edges TEXT;"
    "CREATE INDEX flow_run_by_resumed ON flow_run(resumed_from)"
    "  WHERE resumed_from IS NOT NULL;",
    /* 4 -> 5: run ids are handed out from here, in blocks (store.c, "run
       ids"), so that a serving process records a run's start without
       waiting for another process's lock: it takes an id of its block,
       journals the start, and its writer thread inserts the row. Every
       insert takes its id from here; `next` was never handed out. */
    "CREATE TABLE run_ids (next INTEGER NOT NULL);"
    "INSERT INTO run_ids(next) SELECT coalesce(max(id), 0) + 1 FROM flow_run;",
    /* 5 -> 6: where the attempts of worker tasks ran (host and pid of the
       worker process), for `show` and the report. A row per attempt that
       ran in a worker, none for the others: inline tasks, the bulk of a
       large run, cost nothing. Written when the worker takes the job, so a
       run that crashed mid-attempt still tells where it was running. */
    "CREATE TABLE attempt_worker ("
    "  run     INTEGER NOT NULL REFERENCES flow_run(id) ON DELETE CASCADE,"
    "  n       INTEGER NOT NULL,"
    "  attempt INTEGER NOT NULL,"
    "  host    TEXT NOT NULL,"
    "  pid     INTEGER NOT NULL,"
    "  PRIMARY KEY (run, n, attempt)"
    ") WITHOUT ROWID;",
    /* 6 -> 7: task runs' log lines (what flow.log.* wrote inside them,
       masked), the last FL_STORE_LOG_LINES and FL_STORE_LOG_BYTES of each
       (store_log.c), and what those bounds dropped. seq counts a task
       run's lines from 1, dropped ones included; level is DEBUG, INFO,
       WARN or ERROR. Rows only for task runs that logged. */
    "CREATE TABLE task_log ("
    "  run     INTEGER NOT NULL REFERENCES flow_run(id) ON DELETE CASCADE,"
    "  n       INTEGER NOT NULL,"
    "  seq     INTEGER NOT NULL,"
    "  attempt INTEGER NOT NULL,"
    "  at      REAL NOT NULL,"
    "  level   TEXT NOT NULL,"
    "  line    TEXT NOT NULL,"
    "  PRIMARY KEY (run, n, seq)"
    ") WITHOUT ROWID;"
    "CREATE TABLE task_log_dropped ("
    "  run     INTEGER NOT NULL REFERENCES flow_run(id) ON DELETE CASCADE,"
    "  n       INTEGER NOT NULL,"
    "  lines   INTEGER NOT NULL,"
    "  bytes   INTEGER NOT NULL,"
    "  PRIMARY KEY (run, n)"
    ") WITHOUT ROWID;"
    /* Also 6 -> 7: what `flowlua ui` reads and asks for without a script.
       flow_def: each flow as its script last defined it, written when a
       process opens the history to run or serve it, so that the history
       alone shows its schedule and params (a flows page, a start form).
       run_cancel: a cancel asked for by another process; the process
       running the run polls for it (record.c) and cancels that run only.
       flow_pause: a flow whose schedule is switched off (flowlua pause):
       a serving process reads it at each fire time and records the fire
       as paused instead of running it. Per flow, not per run: prune
       leaves it, state copy copies it. */
    "CREATE TABLE flow_def ("
    "  flow          TEXT PRIMARY KEY,"
    "  script        TEXT NOT NULL," /* an absolute path on host */
    "  host          TEXT NOT NULL,"
    "  script_sha256 TEXT NOT NULL,"
    "  params        TEXT NOT NULL CHECK (json_valid(params)),"
    "  schedule      TEXT CHECK (schedule IS NULL OR json_valid(schedule)),"
    "  updated_at    REAL NOT NULL"
    ") WITHOUT ROWID;"
    "CREATE TABLE run_cancel ("
    "  run          INTEGER PRIMARY KEY REFERENCES flow_run(id) ON DELETE CASCADE,"
    "  requested_at REAL NOT NULL,"
    "  requested_by TEXT NOT NULL"
    ");"
    "CREATE TABLE flow_pause ("
    "  flow      TEXT PRIMARY KEY,"
    "  paused_at REAL NOT NULL,"
    "  paused_by TEXT NOT NULL"
    ") WITHOUT ROWID;",
    /* 7 -> 8: each param's type, default and constraints beside params
       (which stays the defaults alone, as the start form reads it), so
       that a reader shows typed params (flow.param.*) as such. NULL for a
       flow recorded before. */
    "ALTER TABLE flow_def ADD COLUMN param_types TEXT"
    "  CHECK (param_types IS NULL OR json_valid(param_types));",
    /* 8 -> 9: a subflow's run is linked to the run that called it: the
       parent's run id and the key of the parent's task run that made the
       call ("child", "child#2", "child[3]"); NULL for every other run.
       Text, as resumed_from, not a foreign key: a child is a run of its
       own, pruned by its own age, and keeps naming a parent pruned before
       it. The index finds a parent's subflows (show) without a scan of
       every run. */
    "ALTER TABLE flow_run ADD COLUMN parent_run TEXT;"
    "ALTER TABLE flow_run ADD COLUMN parent_task TEXT;"
    "CREATE INDEX flow_run_by_parent ON flow_run(parent_run)"
    "  WHERE parent_run IS NOT NULL;",
};

_Static_assert(sizeof migrations / sizeof migrations[0] ==
                   FL_STORE_SCHEMA_VERSION,
               "one migration step per schema version");

const char *fl__store_migration_sql(int v) {
  return v >= 0 && v < FL_STORE_SCHEMA_VERSION ? migrations[v] : NULL;
}

static const char *const stmt_sql[S_COUNT] = {
    [S_BEGIN] = "BEGIN IMMEDIATE",
    [S_COMMIT] = "COMMIT",
    [S_ROLLBACK] = "ROLLBACK",
    [S_CACHE_GET] = "SELECT result, stored_at FROM cache"
                    " WHERE task = ?1 AND key = ?2",
    [S_JSON_VALID] = "SELECT json_valid(?1)",
};


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
  if (rc != SQLITE_OK) return fl__store_sql_err(st, rc, "cannot read it");
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
  if (rc != SQLITE_OK) return fl__store_sql_err(st, rc, "cannot read its tables");
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
      return fl__store_set_err(st, FLOWLUA_EIO,
                     "written by a newer flowlua (schema version %lld; this "
                     "one knows up to %d); refusing to touch it",
                     (long long)id->version, FL_STORE_SCHEMA_VERSION);
    if (id->version == 0 && id->n_tables > 0)
      return fl__store_set_err(st, FLOWLUA_EIO,
                     "marked as a flowlua store but without a schema version, "
                     "and it has tables (%s); refusing to touch it",
                     id->tables);
    return FLOWLUA_OK;
  }
  if (id->app_id != 0)
    return fl__store_set_err(st, FLOWLUA_EIO,
                   "not a flowlua state store: a SQLite database of another "
                   "application (application_id 0x%08llx); refusing to touch "
                   "it",
                   (unsigned long long)(uint32_t)id->app_id);
  if (id->n_tables > 0)
    return fl__store_set_err(st, FLOWLUA_EIO,
                   "not a flowlua state store: a SQLite database with tables "
                   "of its own (%s); refusing to touch it",
                   id->tables);
  if (id->version != 0)
    return fl__store_set_err(st, FLOWLUA_EIO,
                   "not a flowlua state store: an empty SQLite database with "
                   "user_version %lld set by another program; refusing to "
                   "touch it",
                   (long long)id->version);
  return FLOWLUA_OK; /* an empty database: ours to set up */
}

/* The URI of the file at path with the query (SQLite's URI parameters). */
static void file_uri(fl_buf *uri, const char *path, const char *query) {
  fl_buf_adds(uri, "file:");
  for (const unsigned char *p = (const unsigned char *)path; *p; p++) {
    if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
        (*p >= '0' && *p <= '9') || strchr("/._-~", *p))
      fl_buf_addc(uri, (char)*p);
    else
      fl_buf_addf(uri, "%%%02X", *p);
  }
  fl_buf_addf(uri, "?%s", query);
}

/*
 * Reads the first n bytes of the database file through SQLite's own VFS,
 * never with open() and close() of our own: closing any descriptor of a
 * file drops every POSIX lock the process holds on it, and another store
 * of this process (a second handle on the same history: `flowlua serve`,
 * a reloaded script, an embedder's threads) holds SQLite's. Its writer
 * then lost its locks behind SQLite's back and stalled, and runs' ends
 * never reached the file. SQLite's unix VFS defers such a close while the
 * file is locked. Returns the bytes read (fewer at the end of the file),
 * or -1 with errno set.
 */
static ssize_t read_head(const char *path, unsigned char *buf, size_t n) {
  sqlite3_vfs *vfs = sqlite3_vfs_find(NULL);
  sqlite3_file *f = vfs ? calloc(1, (size_t)vfs->szOsFile) : NULL;
  if (!f) {
    errno = ENOMEM;
    return -1;
  }
  int flags = 0;
  errno = 0;
  if (vfs->xOpen(vfs, path, f, SQLITE_OPEN_READONLY | SQLITE_OPEN_MAIN_DB,
                 &flags) != SQLITE_OK) {
    if (!errno) errno = EIO;
    int saved = errno;
    if (f->pMethods) f->pMethods->xClose(f);
    free(f);
    errno = saved;
    return -1;
  }
  sqlite3_int64 size = 0;
  ssize_t got = -1;
  if (f->pMethods->xFileSize(f, &size) == SQLITE_OK) {
    size_t want = size < (sqlite3_int64)n ? (size_t)size : n;
    errno = 0;
    got = want == 0 || f->pMethods->xRead(f, buf, (int)want, 0) == SQLITE_OK
              ? (ssize_t)want : -1;
    if (got < 0 && !errno) errno = EIO;
  } else if (!errno) {
    errno = EIO;
  }
  int saved = errno;
  f->pMethods->xClose(f);
  free(f);
  errno = saved;
  return got;
}

/* Checks an existing, non-empty file without writing to it: its first bytes
   must be SQLite's, and its identity acceptable. */
static int inspect_file(fl_store *st) {
  unsigned char head[100]; /* SQLite's file header */
  if (access(st->path, R_OK) != 0)
    return fl__store_set_err(st, FLOWLUA_EIO, "cannot open it: %s", strerror(errno));
  ssize_t n = read_head(st->path, head, sizeof head);
  if (n < 0)
    return fl__store_set_err(st, FLOWLUA_EIO, "cannot read it: %s", strerror(errno));
  if (n < (ssize_t)sizeof head || memcmp(head, "SQLite format 3", 16) != 0)
    return fl__store_set_err(st, FLOWLUA_EIO,
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
  file_uri(&uri, st->path, has_wal ? "mode=ro" : "immutable=1");
  if (uri.oom) {
    fl_buf_free(&uri);
    return fl__store_oom(st, "cannot open it");
  }
  int rc = sqlite3_open_v2(uri.data, &st->db,
                           SQLITE_OPEN_READONLY | SQLITE_OPEN_URI, NULL);
  fl_buf_free(&uri);
  int status = rc == SQLITE_OK ? FLOWLUA_OK : fl__store_sql_err(st, rc, "cannot open it");
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
   mistyped --state path is reported rather than built. The folder is the
   owner's alone (0700): it holds params and results. An existing folder
   keeps its mode. */
static int make_parent(fl_store *st) {
  const char *slash = strrchr(st->path, '/');
  if (!slash || slash == st->path) return FLOWLUA_OK;
  char *dir = strndup(st->path, (size_t)(slash - st->path));
  if (!dir) return fl__store_oom(st, "cannot create its folder");
  int status = FLOWLUA_OK;
  struct stat sb;
  if (stat(dir, &sb) == 0) {
    if (!S_ISDIR(sb.st_mode))
      status = fl__store_set_err(st, FLOWLUA_EIO, "'%s' is not a folder", dir);
  } else if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
    status = fl__store_set_err(st, FLOWLUA_EIO, "cannot create folder '%s': %s", dir,
                     errno == ENOENT ? "its parent folder does not exist"
                                     : strerror(errno));
  }
  free(dir);
  return status;
}

/* Creates a new, empty database file readable by its owner only (0600,
   whatever the umask): SQLite would create it 0644, and its -wal and -shm
   files take the database's mode. O_EXCL|O_NOFOLLOW: a file or a symbolic
   link that appeared since stat() looked is not followed nor truncated; the
   file found there is then inspected like any existing one. */
static int create_private_file(fl_store *st) {
  int fd = open(st->path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                0600);
  if (fd >= 0) {
    close(fd);
    return FLOWLUA_OK;
  }
  if (errno == EEXIST) { /* another process was first */
    struct stat sb;
    if (lstat(st->path, &sb) != 0) return FLOWLUA_OK; /* and gone again */
    if (S_ISLNK(sb.st_mode))
      return fl__store_set_err(st, FLOWLUA_EIO,
                               "a symbolic link appeared at its path while "
                               "it was being created; refusing to follow it");
    return sb.st_size > 0 ? inspect_file(st) : FLOWLUA_OK;
  }
  return fl__store_set_err(st, FLOWLUA_EIO, "cannot create it: %s",
                           strerror(errno));
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
  if (!dir) return fl__store_oom(st, "cannot lock its folder"), -1;
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) {
    fl__store_set_err(st, FLOWLUA_EIO, "cannot open its folder '%s': %s", dir,
                  strerror(errno));
    free(dir);
    return -1;
  }
  double give_up = fl__store_mono_now() + st->opts.busy_timeout_ms / 1000.0;
  while (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    if (errno != EWOULDBLOCK || fl__store_mono_now() > give_up) {
      fl__store_set_err(st, FLOWLUA_EIO,
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
  if (frames >= MAIN_CHECKPOINT_FRAMES && !((fl_store *)ctx)->defer_checkpoints)
    sqlite3_wal_checkpoint_v2(db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
  return SQLITE_OK;
}

static int configure(fl_store *st, int memory) {
  fl__store_busy_install(st, st->db, &st->busy_main);
  sqlite3_extended_result_codes(st->db, 1);
  if (!memory) {
    /* A new file gives the pages of pruned runs back to the file system
       (store_prune.c): the mode can only be chosen before the first table,
       and before WAL mode writes the file's header. */
    sqlite3_stmt *s = NULL;
    int status = fl__store_prepare(st, "PRAGMA page_count", &s,
                                   "cannot read its size");
    if (status) return status;
    int empty = sqlite3_step(s) == SQLITE_ROW && sqlite3_column_int64(s, 0) == 0;
    sqlite3_finalize(s);
    s = NULL;
    if (empty && !st->opts.reading)
      status = fl__store_exec_sql(st, "PRAGMA auto_vacuum = INCREMENTAL",
                                  "cannot set it up");
    if (status) return status;
    status = fl__store_prepare(st, "PRAGMA journal_mode = WAL", &s,
                         "cannot switch it to WAL mode");
    if (status) return status;
    int rc = sqlite3_step(s);
    const char *mode = rc == SQLITE_ROW
                           ? (const char *)sqlite3_column_text(s, 0) : NULL;
    if (rc != SQLITE_ROW)
      status = fl__store_sql_err(st, rc, "cannot switch it to WAL mode");
    else if (!mode || strcmp(mode, "wal") != 0)
      status = fl__store_set_err(st, FLOWLUA_EIO,
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
           " PRAGMA cache_size = -16384; PRAGMA journal_size_limit = " FL_STORE_WAL_LIMIT ";"
           " PRAGMA temp_store = MEMORY;",
           st->opts.sync == FL_STORE_SYNC_FULL ? "FULL" : "NORMAL");
  return fl__store_exec_sql(st, sql, "cannot configure it");
}

/* Brings the schema to FL_STORE_SCHEMA_VERSION in one transaction. The file
   is checked again inside it: another process may have created it since
   inspect_file looked. */
static int migrate(fl_store *st) {
  identity id;
  /* A store at this version needs nothing: no write lock is taken, so a
     process that only reads (or starts while another writes) never waits
     here. (A version only grows, so what this read sees stays true.) */
  if (read_identity(st, &id) == FLOWLUA_OK &&
      id.app_id == FL_STORE_APPLICATION_ID &&
      id.version == FL_STORE_SCHEMA_VERSION)
    return FLOWLUA_OK;
  int status = fl__store_exec_sql(st, "BEGIN IMMEDIATE", "cannot set up its schema");
  if (status) return status;
  status = read_identity(st, &id);
  if (status == FLOWLUA_OK) status = check_identity(st, &id);
  for (int64_t v = id.version; status == FLOWLUA_OK && v < FL_STORE_SCHEMA_VERSION;
       v++) {
    int rc = sqlite3_exec(st->db, migrations[v], NULL, NULL, NULL);
    if (rc != SQLITE_OK)
      status = fl__store_sql_err(st, rc, "cannot migrate it from schema version %lld",
                       (long long)v);
  }
  if (status == FLOWLUA_OK && id.version < FL_STORE_SCHEMA_VERSION) {
    char sql[128];
    snprintf(sql, sizeof sql,
             "PRAGMA application_id = %d; PRAGMA user_version = %d;",
             FL_STORE_APPLICATION_ID, FL_STORE_SCHEMA_VERSION);
    status = fl__store_exec_sql(st, sql, "cannot record its schema version");
  }
  if (status == FLOWLUA_OK)
    status = fl__store_exec_sql(st, "COMMIT", "cannot commit its schema");
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


/* ---- reading a history that cannot be written ---------------------------- */

/* Whether this process may write the database and create files beside it
   (its journal, SQLite's -shm): no on a read-only mount (EROFS), for a
   file or folder of another user (EACCES). */
static int can_write_beside(const char *path) {
  if (access(path, W_OK) != 0) return 0;
  const char *slash = strrchr(path, '/');
  if (!slash) return access(".", W_OK) == 0;
  char *dir = strndup(path, (size_t)(slash - path) + (slash == path));
  int ok = dir && access(dir, W_OK) == 0;
  free(dir);
  return ok;
}

/* The size of the file at path plus suffix; -1 when there is none. */
static long long size_beside(const char *path, const char *suffix) {
  char name[4096];
  struct stat sb;
  snprintf(name, sizeof name, "%s%s", path, suffix);
  return stat(name, &sb) == 0 ? (long long)sb.st_size : -1;
}

/* Opens the store for reading only (SQLITE_OPEN_READONLY: nothing is
   created or written). SQLite reads a WAL database read-only when its -shm
   file exists or can be created; failing that, with no WAL content, the
   main file holds everything and is opened immutable. A WAL holding
   changes without a -shm on a read-only folder cannot be read whole: an
   error, rather than a history with runs missing. */
static int open_read_only(fl_store *st) {
  long long wal = size_beside(st->path, "-wal");
  int has_shm = size_beside(st->path, "-shm") >= 0;
  const char *query = has_shm || wal > 0 ? "mode=ro" : "immutable=1";
  if (!has_shm && wal > 0 && access(st->path, F_OK) == 0) {
    const char *slash = strrchr(st->path, '/');
    char *dir = slash ? strndup(st->path, (size_t)(slash - st->path) +
                                              (slash == st->path))
                      : strdup(".");
    int dir_writable = dir && access(dir, W_OK) == 0;
    free(dir);
    if (!dir_writable)
      return fl__store_set_err(
          st, FLOWLUA_EIO,
          "cannot read it where it is: its folder cannot be written, and its "
          "-wal file holds changes with no -shm file beside it to read them "
          "by (copy the folder somewhere writable, or open it once with "
          "write access)");
  }
  fl_buf uri = FL_BUF_INIT;
  file_uri(&uri, st->path, query);
  if (uri.oom) {
    fl_buf_free(&uri);
    return fl__store_oom(st, "cannot open it");
  }
  int rc = sqlite3_open_v2(uri.data, &st->db,
                           SQLITE_OPEN_READONLY | SQLITE_OPEN_URI |
                               SQLITE_OPEN_NOMUTEX,
                           NULL);
  fl_buf_free(&uri);
  if (rc != SQLITE_OK) return fl__store_sql_err(st, rc, "cannot open it read-only");
  sqlite3_busy_timeout(st->db, st->opts.busy_timeout_ms);
  sqlite3_extended_result_codes(st->db, 1);
  identity id;
  int status = read_identity(st, &id);
  if (status == FLOWLUA_OK) status = check_identity(st, &id);
  if (status == FLOWLUA_OK && id.version != FL_STORE_SCHEMA_VERSION)
    status = fl__store_set_err(
        st, FLOWLUA_EIO,
        "written by an older flowlua (schema version %lld) and read-only "
        "here, so it cannot be migrated: open it once with write access",
        (long long)id.version);
  if (status == FLOWLUA_OK)
    status = fl__store_exec_sql(st, "PRAGMA foreign_keys = ON;"
                                    " PRAGMA temp_store = MEMORY;",
                                "cannot configure it");
  return status;
}

/* Frees the handle without flushing; the journal file is kept (its
   records are not all in the file) unless the caller closed it. */
static void destroy(fl_store *st) {
  fl__store_writer_stop(st);
  fl__store_mem_queue_free(st);
  while (st->runs) fl__store_free_run(st->runs);
  fl__pg_store_close(st);
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
  free(st->ends);
  free(st->fires);
  free(st->begins);
  free(st->claims);
  free(st->workers);
  fl__store_logs_free(st);
  fl__store_claims_close(st);
  fl_buf_free(&st->batch);
  fl_buf_free(&st->cache_json);
  fl_buf_free(&st->err);
  fl_buf_free(&st->notices);
  free(st->path);
  free(st);
}

/* A history in PostgreSQL (pg_store.c): the handle's path is the URI
   with its password masked, for every message that names the store. */
static int open_pg(const char *conninfo, const fl_store_options *opts,
                   fl_store **out, char *err, size_t errlen) {
  fl_buf name = FL_BUF_INIT;
  fl_pg_redact(conninfo, &name);
  fl_store *st = calloc(1, sizeof *st);
  if (!st || name.oom || !(st->path = strdup(fl_buf_str(&name)))) {
    if (errlen) snprintf(err, errlen, "state store: out of memory");
    fl_buf_free(&name);
    free(st);
    return FLOWLUA_ENOMEM;
  }
  fl_buf_free(&name);
  if (opts)
    st->opts = *opts;
  else
    fl_store_options_init(&st->opts);
  fl_store_owner_self(&st->self);
  st->claims_fd = -1;
  st->stats = getenv("FLOWLUA_STORE_STATS") != NULL;
  int status = fl__pg_store_open(st, conninfo);
  if (status != FLOWLUA_OK) {
    if (errlen) snprintf(err, errlen, "%s", fl_store_errmsg(st));
    destroy(st);
    return status;
  }
  if (st->opts.must_exist && fl__pg_store_empty(st)) {
    destroy(st);
    return FLOWLUA_OK; /* nothing recorded yet: *out stays NULL */
  }
  *out = st;
  return FLOWLUA_OK;
}

int fl_store_open(const char *path, const fl_store_options *opts,
                  fl_store **out, char *err, size_t errlen) {
  *out = NULL;
  if (errlen) err[0] = '\0';
  if (!path || !*path) {
    if (errlen) snprintf(err, errlen, "state store: no path given");
    return FLOWLUA_EINVAL;
  }
  if (fl_pg_is_uri(path)) return open_pg(path, opts, out, err, errlen);
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
  st->claims_fd = -1;
  st->stats = getenv("FLOWLUA_STORE_STATS") != NULL;

  int memory = strcmp(path, ":memory:") == 0;
  int status = FLOWLUA_OK;
  if (!memory) {
    struct stat sb;
    if (stat(path, &sb) == 0) {
      if (S_ISDIR(sb.st_mode))
        status = fl__store_set_err(st, FLOWLUA_EIO, "is a folder, not a file");
      else if (sb.st_size > 0)
        status = inspect_file(st);
    } else if (errno != ENOENT) {
      status = fl__store_set_err(st, FLOWLUA_EIO, "%s", strerror(errno));
    } else if (st->opts.must_exist) {
      destroy(st);
      return FLOWLUA_OK; /* nothing recorded yet: *out stays NULL */
    } else {
      status = make_parent(st);
      if (status == FLOWLUA_OK) status = create_private_file(st);
    }
  }
  /* Before SQLite reads the WAL and keeps what precedes a damaged frame. */
  if (status == FLOWLUA_OK && !memory) status = fl__store_check_wal(st);
  /* A reader that cannot write (a read-only mount, another user's
     history) reads without writing a byte. */
  st->read_only = status == FLOWLUA_OK && !memory && st->opts.reading &&
                  !can_write_beside(path);
  int folder_lock = -1;
  if (status == FLOWLUA_OK && !memory && !st->read_only) {
    folder_lock = lock_folder(st);
    if (folder_lock < 0) status = FLOWLUA_EIO;
  }
  if (status == FLOWLUA_OK && st->read_only) {
    status = open_read_only(st);
  } else if (status == FLOWLUA_OK) {
    int rc = sqlite3_open_v2(path, &st->db,
                             SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
                                 SQLITE_OPEN_NOMUTEX,
                             NULL);
    if (rc != SQLITE_OK) status = fl__store_sql_err(st, rc, "cannot open it");
    if (status == FLOWLUA_OK) status = configure(st, memory);
    if (status == FLOWLUA_OK) status = migrate(st);
  }
  /* A reader records nothing: no journal. */
  if (status == FLOWLUA_OK && !memory && !st->opts.reading) {
    char jerr[512];
    if (fl_journal_create(path, &st->journal, jerr, sizeof jerr) != 0)
      status = fl__store_set_err(st, FLOWLUA_EIO, "%s", jerr);
  }
  for (int i = 0; status == FLOWLUA_OK && i < S_COUNT; i++) {
    int rc = sqlite3_prepare_v3(st->db, stmt_sql[i], -1,
                                SQLITE_PREPARE_PERSISTENT, &st->stmt[i], NULL);
    if (rc != SQLITE_OK) status = fl__store_sql_err(st, rc, "cannot prepare its queries");
  }
  if (status == FLOWLUA_OK)
    status = fl__store_mem_conn_open(st);
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
  if (fl__store_flush(st, "cannot write its last changes") == FLOWLUA_OK) {
    fl_journal_close(st->journal, 1);
    fl_journal_close(st->spare, 1);
    st->journal = st->spare = NULL;
  }
  fl__store_writer_stop(st);
  if (!st->writer_used && st->wal_frames >= CLOSE_CHECKPOINT_FRAMES) {
    /* See "Checkpoints" above. Never waits: if another process is using
       the WAL, it stays for a later close. */
    sqlite3_busy_timeout(st->db, 0);
    sqlite3_wal_checkpoint_v2(st->db, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL,
                              NULL);
  }
  destroy(st);
}

