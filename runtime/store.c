/*
 * store.c — the state store on SQLite; see store.h for the contract.
 *
 * What it must not do: decide anything about a run (the engine does), touch
 * Lua, or write a single byte to a file before knowing it is a flowlua store.
 * Printing lives in store_print.c.
 */
#define _GNU_SOURCE
#include "store.h"
#include "journal.h"

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
};

_Static_assert(sizeof migrations / sizeof migrations[0] ==
                   FL_STORE_SCHEMA_VERSION,
               "one migration step per schema version");

/* ---- state names ---------------------------------------------------------- */

#define FL_STATE_TEXT(name, text) text,
static const char *const task_state_names[FL_STORE_TASK_STATES] = {
    FLOWLUA_TASK_STATE_MAP(FL_STATE_TEXT) "Crashed"};
static const char *const flow_state_names[FLOWLUA_FLOW_STATE_COUNT] = {
    FLOWLUA_FLOW_STATE_MAP(FL_STATE_TEXT)};
#undef FL_STATE_TEXT

const char *fl_store_task_state_name(int state) {
  return state >= 0 && state < FL_STORE_TASK_STATES ? task_state_names[state]
                                                    : "?";
}

static const char *flow_state_name(int state) {
  return state >= 0 && state < FLOWLUA_FLOW_STATE_COUNT
             ? flow_state_names[state]
             : "?";
}

int fl_store_task_state_parse(const char *name) {
  for (int i = 0; name && i < FL_STORE_TASK_STATES; i++)
    if (strcmp(name, task_state_names[i]) == 0) return i;
  return -1;
}

int fl_store_flow_state_parse(const char *name) {
  for (int i = 0; name && i < FLOWLUA_FLOW_STATE_COUNT; i++)
    if (strcmp(name, flow_state_names[i]) == 0) return i;
  return -1;
}

/* Pending, Running and Retrying are on the way; every other state ends a
   task run. */
static int is_final_task_state(int s) {
  return s != FLOWLUA_TASK_PENDING && s != FLOWLUA_TASK_RUNNING &&
         s != FLOWLUA_TASK_RETRYING;
}

/* ---- the handle ------------------------------------------------------------ */

/* A task run of an open run, as this process knows it: what its task_run
   row holds. Its strings live in the run's `names` buffer (offsets, since
   the buffer moves as it grows). */
typedef struct task_entry {
  size_t key_off, task_off; /* in run->names */
  size_t result_off, result_len; /* in st->batch, when result_kind != 0 */
  double started, ended;    /* 0 = not yet */
  double state_at;          /* the latest change... */
  char *error;              /* ...its error, malloc'd, or NULL... */
  int32_t state_attempt;    /* ...and its attempt */
  int32_t map_index, attempts;
  uint32_t n_changes;       /* state changes so far: the latest's seq */
  uint32_t started_seq;     /* seq of the first Running; 0 = none */
  int8_t state;
  uint8_t touched;          /* listed in st->touched */
  uint8_t written;          /* its row exists in the file */
  uint8_t writing;          /* its row is inserted by the flush in progress */
  uint8_t result_kind;      /* a result set since the last flush, or 0 */
} task_entry;

struct fl_store_run {
  fl_store *st;
  fl_store_run *prev, *next; /* the store's open runs */
  int64_t rowid;             /* flow_run.id */
  char *run_id;
  task_entry *tasks;
  uint32_t n_tasks, cap_tasks;
  fl_buf names;    /* "key\0task\0" per task run */
  /* The keys, for fl_store_task_add to refuse a duplicate: open addressing,
     a slot holding hash << 32 | (task index + 1), 0 when free. The hash in
     the slot spares most string compares and the cache misses they cost. */
  uint64_t *slots;
  uint32_t n_slots;
};

/* One buffered state change for task_event: a change that stopped being
   its task run's latest. */
typedef struct pending_event {
  fl_store_run *run; /* only while buffered: a frozen batch uses rowid */
  int64_t rowid;
  uint32_t task, seq;
  int32_t attempt;
  int32_t state;
  size_t err_off; /* in st->batch; SIZE_MAX = no error */
  double at;
} pending_event;

typedef struct touched_task {
  fl_store_run *run;
  uint32_t task;
} touched_task;

typedef struct pending_put {
  size_t task_off, key_off, json_off, json_len; /* in st->batch */
  double at;
} pending_put;

/* New task runs are inserted TASK_ROWS at a time: most of the cost of a row
   is its statement's (binding, stepping, resetting), not the B-tree's. */
#define TASK_ROWS 32
#define TASK_COLS 15

/* The columns of a task_run row, in the order of the parameters that
   bind_row() binds (the writer makes it an upsert of many rows). */
static const char task_insert_sql[] =
    "INSERT INTO task_run(run, n, key, task, map_index, state, state_at,"
    " state_seq, attempts, error, started_at, started_seq, ended_at,"
    " result_kind, result) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9,"
    " ?10, ?11, ?12, ?13, ?14, ?15)";
static const char event_insert_sql[] =
    "INSERT INTO task_event(run, n, seq, at, state, attempt, error)"
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";
static const char cache_put_sql[] =
    "INSERT OR REPLACE INTO cache(task, key, result, stored_at)"
    " VALUES (?1, ?2, ?3, ?4)";

/* Statements of the handle's connection, prepared once. */
enum { S_BEGIN, S_COMMIT, S_ROLLBACK, S_CACHE_GET, S_COUNT };

static const char *const stmt_sql[S_COUNT] = {
    [S_BEGIN] = "BEGIN IMMEDIATE",
    [S_COMMIT] = "COMMIT",
    [S_ROLLBACK] = "ROLLBACK",
    [S_CACHE_GET] = "SELECT result, stored_at FROM cache"
                    " WHERE task = ?1 AND key = ?2",
};

struct fl_store {
  sqlite3 *db;
  char *path;
  fl_store_options opts;
  fl_buf err;
  sqlite3_stmt *stmt[S_COUNT];
  fl_store_owner self;
  fl_store_run *runs; /* open runs */
  /* The batch: everything buffered since the last flush. */
  pending_event *events;
  size_t n_events, cap_events;
  touched_task *touched;
  size_t n_touched, cap_touched;
  pending_put *puts;
  size_t n_puts, cap_puts;
  fl_buf batch;      /* the batch's strings, NUL-terminated, by offset */
  fl_buf cache_json; /* the last cache hit, for fl_store_cache_get */
  /* Every change to a task run, as it happens (journal.h): durable at
     once, so a flush is only needed to keep the file itself current. NULL
     for ":memory:". */
  fl_journal *journal;
  int replaying; /* replaying a dead process's journal: do not journal */
  /* FLOWLUA_STORE_STATS set: counts printed to stderr at close, for the
     benchmarks. */
  int stats;
  size_t n_flushes, n_rows, n_events_written;
  double flush_seconds;
  /* Flushed batches are written by a thread with a connection of its own
     (file stores, from the first flush that does not wait), or on this
     handle's connection, with a queue of their own in case one fails. */
  struct writer *writer;
  struct wconn *mem_conn;
  struct fbatch *mem_head, *mem_tail;
};

/* ---- errors ---------------------------------------------------------------- */

static int status_of(int sqlite_rc) {
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

static void set_errv(fl_store *st, const char *fmt, va_list ap) {
  fl_buf_reset(&st->err);
  fl_buf_addf(&st->err, "state store '%s': ", st->path);
  fl_buf_addvf(&st->err, fmt, ap);
}

static int set_err(fl_store *st, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int set_err(fl_store *st, int status, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  set_errv(st, fmt, ap);
  va_end(ap);
  return status;
}

/* "state store 'p': <what>: <SQLite's reason>", plus a hint when the cause
   is another process holding the lock. Returns the FLOWLUA_* status. */
static int sql_err(fl_store *st, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int sql_err(fl_store *st, int rc, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  set_errv(st, fmt, ap);
  va_end(ap);
  const char *why = st->db ? sqlite3_errmsg(st->db) : sqlite3_errstr(rc);
  fl_buf_addf(&st->err, ": %s", why);
  if ((rc & 0xff) == SQLITE_BUSY || (rc & 0xff) == SQLITE_LOCKED)
    fl_buf_addf(&st->err,
                " (another process kept it locked for more than %d ms)",
                st->opts.busy_timeout_ms);
  return status_of(rc) ? status_of(rc) : FLOWLUA_EIO;
}

static int oom(fl_store *st, const char *what) {
  return set_err(st, FLOWLUA_ENOMEM, "%s: out of memory", what);
}

const char *fl_store_errmsg(const fl_store *st) {
  return st && st->err.data ? st->err.data : "";
}

const char *fl_store_path(const fl_store *st) { return st->path; }

/* Steps a statement that returns no rows and resets it. */
static int exec_stmt(fl_store *st, sqlite3_stmt *s, const char *what) {
  int rc = sqlite3_step(s);
  int status = FLOWLUA_OK;
  if (rc != SQLITE_DONE && rc != SQLITE_ROW) status = sql_err(st, rc, "%s", what);
  sqlite3_reset(s);
  return status;
}

static int exec_sql(fl_store *st, const char *sql, const char *what) {
  int rc = sqlite3_exec(st->db, sql, NULL, NULL, NULL);
  return rc == SQLITE_OK ? FLOWLUA_OK : sql_err(st, rc, "%s", what);
}

static int prepare(fl_store *st, const char *sql, sqlite3_stmt **s,
                   const char *what) {
  int rc = sqlite3_prepare_v2(st->db, sql, -1, s, NULL);
  return rc == SQLITE_OK ? FLOWLUA_OK : sql_err(st, rc, "%s", what);
}

/* ---- transactions ---------------------------------------------------------- */

static int tx_begin(fl_store *st, const char *what) {
  return exec_stmt(st, st->stmt[S_BEGIN], what);
}

static int tx_commit(fl_store *st, const char *what) {
  return exec_stmt(st, st->stmt[S_COMMIT], what);
}

/* Harmless when no transaction is open (SQLite may already have rolled back
   after an I/O error). Keeps the error message of the failure that led here. */
static void tx_rollback(fl_store *st) {
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
  if (rc != SQLITE_OK) return sql_err(st, rc, "cannot read it");
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
  if (rc != SQLITE_OK) return sql_err(st, rc, "cannot read its tables");
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
      return set_err(st, FLOWLUA_EIO,
                     "written by a newer flowlua (schema version %lld; this "
                     "one knows up to %d); refusing to touch it",
                     (long long)id->version, FL_STORE_SCHEMA_VERSION);
    if (id->version == 0 && id->n_tables > 0)
      return set_err(st, FLOWLUA_EIO,
                     "marked as a flowlua store but without a schema version, "
                     "and it has tables (%s); refusing to touch it",
                     id->tables);
    return FLOWLUA_OK;
  }
  if (id->app_id != 0)
    return set_err(st, FLOWLUA_EIO,
                   "not a flowlua state store: a SQLite database of another "
                   "application (application_id 0x%08llx); refusing to touch "
                   "it",
                   (unsigned long long)(uint32_t)id->app_id);
  if (id->n_tables > 0)
    return set_err(st, FLOWLUA_EIO,
                   "not a flowlua state store: a SQLite database with tables "
                   "of its own (%s); refusing to touch it",
                   id->tables);
  if (id->version != 0)
    return set_err(st, FLOWLUA_EIO,
                   "not a flowlua state store: an empty SQLite database with "
                   "user_version %lld set by another program; refusing to "
                   "touch it",
                   (long long)id->version);
  return FLOWLUA_OK; /* an empty database: ours to set up */
}

/* Checks an existing, non-empty file without writing to it: its first bytes
   must be SQLite's, and its identity acceptable. */
static int inspect_file(fl_store *st) {
  unsigned char head[16];
  int fd = open(st->path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return set_err(st, FLOWLUA_EIO, "cannot open it: %s", strerror(errno));
  ssize_t n = read(fd, head, sizeof head);
  int saved = errno;
  close(fd);
  if (n < 0)
    return set_err(st, FLOWLUA_EIO, "cannot read it: %s", strerror(saved));
  if (n < (ssize_t)sizeof head || memcmp(head, "SQLite format 3", 16) != 0)
    return set_err(st, FLOWLUA_EIO,
                   "not a flowlua state store: the file is not a SQLite "
                   "database; refusing to touch it");
  /* Read-only, so that even SQLite cannot change a file that turns out not
     to be ours; and immutable unless a WAL file is beside it, because a
     read-only connection to a WAL database leaves empty -wal and -shm files
     behind. Without a WAL file the main file holds everything there is. */
  char wal[4096];
  snprintf(wal, sizeof wal, "%s-wal", st->path);
  fl_buf uri = FL_BUF_INIT;
  fl_buf_adds(&uri, "file:");
  for (const unsigned char *p = (const unsigned char *)st->path; *p; p++) {
    if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
        (*p >= '0' && *p <= '9') || strchr("/._-~", *p))
      fl_buf_addc(&uri, (char)*p);
    else
      fl_buf_addf(&uri, "%%%02X", *p);
  }
  fl_buf_adds(&uri, access(wal, F_OK) == 0 ? "?mode=ro" : "?immutable=1");
  if (uri.oom) {
    fl_buf_free(&uri);
    return oom(st, "cannot open it");
  }
  int rc = sqlite3_open_v2(uri.data, &st->db,
                           SQLITE_OPEN_READONLY | SQLITE_OPEN_URI, NULL);
  fl_buf_free(&uri);
  int status = rc == SQLITE_OK ? FLOWLUA_OK : sql_err(st, rc, "cannot open it");
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
  if (!dir) return oom(st, "cannot create its folder");
  int status = FLOWLUA_OK;
  struct stat sb;
  if (stat(dir, &sb) == 0) {
    if (!S_ISDIR(sb.st_mode))
      status = set_err(st, FLOWLUA_EIO, "'%s' is not a folder", dir);
  } else if (mkdir(dir, 0777) != 0 && errno != EEXIST) {
    status = set_err(st, FLOWLUA_EIO, "cannot create folder '%s': %s", dir,
                     errno == ENOENT ? "its parent folder does not exist"
                                     : strerror(errno));
  }
  free(dir);
  return status;
}

/* journal mode, durability, foreign keys: per connection, outside any
   transaction. */
static int configure(fl_store *st, int memory) {
  sqlite3_busy_timeout(st->db, st->opts.busy_timeout_ms);
  sqlite3_extended_result_codes(st->db, 1);
  if (!memory) {
    sqlite3_stmt *s = NULL;
    int status = prepare(st, "PRAGMA journal_mode = WAL", &s,
                         "cannot switch it to WAL mode");
    if (status) return status;
    int rc = sqlite3_step(s);
    const char *mode = rc == SQLITE_ROW
                           ? (const char *)sqlite3_column_text(s, 0) : NULL;
    if (rc != SQLITE_ROW)
      status = sql_err(st, rc, "cannot switch it to WAL mode");
    else if (!mode || strcmp(mode, "wal") != 0)
      status = set_err(st, FLOWLUA_EIO,
                       "cannot switch it to WAL mode (it stays in '%s' mode; "
                       "is the folder on a file system without shared "
                       "memory?)",
                       mode ? mode : "?");
    sqlite3_finalize(s);
    if (status) return status;
  }
  /* A larger page cache keeps the indexes of a 100,000-task run in memory;
     the WAL is trimmed after big runs so it does not stay huge. */
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
      status = sql_err(st, rc, "cannot migrate it from schema version %lld",
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
  return status;
}

static void free_run(fl_store_run *run);
static void writer_stop(fl_store *st);
static int writer_start(fl_store *st);
static void mem_queue_free(fl_store *st);
static int mem_conn_open(fl_store *st);

/* Frees the handle without flushing; the journal file is kept (its
   records are not all in the file) unless the caller closed it. */
static void destroy(fl_store *st) {
  writer_stop(st);
  mem_queue_free(st);
  while (st->runs) free_run(st->runs);
  fl_journal_close(st->journal, 0);
  for (int i = 0; i < S_COUNT; i++) sqlite3_finalize(st->stmt[i]);
  /* No checkpoint at close: it would cost every flowlua process two
     fsyncs (2 ms of a 6.6 ms one-task run). The WAL keeps what was
     committed, readers read through it, and the writers' automatic
     checkpoints (every 1000 pages) keep it small. Hence `.flowlua` is
     copied whole, state.db with its -wal file. */
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
        status = set_err(st, FLOWLUA_EIO, "is a folder, not a file");
      else if (sb.st_size > 0)
        status = inspect_file(st);
    } else if (errno != ENOENT) {
      status = set_err(st, FLOWLUA_EIO, "%s", strerror(errno));
    } else if (st->opts.must_exist) {
      destroy(st);
      return FLOWLUA_OK; /* nothing recorded yet: *out stays NULL */
    } else {
      status = make_parent(st);
    }
  }
  if (status == FLOWLUA_OK) {
    int rc = sqlite3_open_v2(path, &st->db,
                             SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
                                 SQLITE_OPEN_NOMUTEX,
                             NULL);
    if (rc != SQLITE_OK) status = sql_err(st, rc, "cannot open it");
  }
  if (status == FLOWLUA_OK) status = configure(st, memory);
  if (status == FLOWLUA_OK) status = migrate(st);
  if (status == FLOWLUA_OK && !memory) {
    char jerr[512];
    if (fl_journal_create(path, &st->journal, jerr, sizeof jerr) != 0)
      status = set_err(st, FLOWLUA_EIO, "%s", jerr);
  }
  for (int i = 0; status == FLOWLUA_OK && i < S_COUNT; i++) {
    int rc = sqlite3_prepare_v3(st->db, stmt_sql[i], -1,
                                SQLITE_PREPARE_PERSISTENT, &st->stmt[i], NULL);
    if (rc != SQLITE_OK) status = sql_err(st, rc, "cannot prepare its queries");
  }
  if (status == FLOWLUA_OK)
    status = mem_conn_open(st);
  if (status != FLOWLUA_OK) {
    if (errlen) snprintf(err, errlen, "%s", fl_store_errmsg(st));
    destroy(st);
    return status;
  }
  *out = st;
  return FLOWLUA_OK;
}

static int flush(fl_store *st, const char *what);

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
  if (flush(st, "cannot write its last changes") == FLOWLUA_OK) {
    fl_journal_close(st->journal, 1);
    st->journal = NULL;
  }
  destroy(st);
}

/* ---- the batch --------------------------------------------------------------- */

/* Copies n bytes and a NUL into the batch's strings; *off is where. */
static int batch_str(fl_store *st, const char *s, size_t n, size_t *off) {
  if (fl_buf_reserve(&st->batch, n + 1) != 0) {
    st->batch.oom = 0; /* the buffer is intact: a later call may succeed */
    return oom(st, "cannot buffer a change");
  }
  *off = st->batch.len;
  memcpy(st->batch.data + st->batch.len, s, n);
  st->batch.data[st->batch.len + n] = '\0';
  st->batch.len += n + 1;
  return FLOWLUA_OK;
}

/* items with room for element n (moved when it had to grow), or NULL
   when out of memory, items then being unchanged. */
static void *grow(void *items, size_t *cap, size_t n, size_t size) {
  if (n < *cap) return items;
  size_t c = *cap ? *cap * 2 : 64;
  void *p = realloc(items, c * size);
  if (p) *cap = c;
  return p;
}

/* GROW(array, cap, n): 0 when array has room for element n, -1 when memory
   ran out. */
#define GROW(array, cap, n)                                                    \
  (grow_into((void *)&(array), grow((array), &(cap), (n), sizeof *(array))))
static int grow_into(void *slot, void *grown) {
  if (!grown) return -1;
  memcpy(slot, &grown, sizeof grown);
  return 0;
}

static int touch(fl_store *st, fl_store_run *run, uint32_t task) {
  task_entry *e = &run->tasks[task];
  if (e->touched) return FLOWLUA_OK;
  if (GROW(st->touched, st->cap_touched, st->n_touched))
    return oom(st, "cannot buffer a change");
  st->touched[st->n_touched++] = (touched_task){run, task};
  e->touched = 1;
  return FLOWLUA_OK;
}

int fl_store_journalled(const fl_store *st) { return st->journal != NULL; }

static size_t queued_changes(const fl_store *st);

size_t fl_store_buffered(const fl_store *st) {
  return st->n_events + st->n_puts + st->n_touched;
}

size_t fl_store_pending(const fl_store *st) {
  return st->n_events + st->n_puts + st->n_touched + queued_changes(st);
}

static void bind_opt_double(sqlite3_stmt *s, int i, double v) {
  if (v > 0)
    sqlite3_bind_double(s, i, v);
  else
    sqlite3_bind_null(s, i);
}

/* Binds NULL for a NULL string: sqlite3_bind_text does too, but says so. */
static void bind_text(sqlite3_stmt *s, int i, const char *v, size_t n) {
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


static double mono_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- writing a batch ---------------------------------------------------------

   A flush freezes the batch: the touched task runs' rows are copied out of
   their entries (which the engine goes on changing) into a frozen batch
   that owns every byte it writes, strings included. The frozen batch is
   then written by the writer thread on a connection of its own, so that
   the engine's thread never waits for SQLite while a run goes (the
   journal, not the file, is what makes a change durable), or, for
   ":memory:" (one connection only), at once on the handle's connection.
   Rows are upserts: a task run's row is inserted by the first batch that
   holds it and updated by later ones, whatever became of earlier batches,
   and a batch that failed is written again, whole, in order. */

/* One task run's row, frozen. Strings are offsets into the batch's. */
typedef struct frow {
  int64_t run;
  uint32_t n, n_changes, started_seq;
  int32_t map_index, attempts, state;
  int32_t result_kind; /* FL_STORE_RESULT_*, or -1: keep the stored one */
  int fresh;           /* no batch before this one holds the row */
  double state_at, started, ended;
  size_t key_off, task_off, err_off, res_off, res_len; /* SIZE_MAX: NULL */
} frow;

typedef struct fbatch {
  struct fbatch *next;
  frow *rows;
  size_t n_rows;
  pending_event *events; /* their rowid, never their run pointer, is used */
  size_t n_events;
  pending_put *puts;
  size_t n_puts;
  fl_buf strings;
} fbatch;

static void fbatch_free(fbatch *b) {
  if (!b) return;
  free(b->rows);
  free(b->events);
  free(b->puts);
  fl_buf_free(&b->strings);
  free(b);
}

static size_t fbatch_size(const fbatch *b) {
  return b->n_rows + b->n_events + b->n_puts;
}

/* Statements of a connection that writes batches. */
enum {
  W_BEGIN, W_COMMIT, W_ROLLBACK,
  W_INSERT, W_INSERT_MANY, /* a row's first write */
  W_UPSERT,               /* a row a batch before wrote, or will */
  W_EVENT, W_PUT, W_COUNT
};

#define UPSERT_TAIL                                                            \
  " ON CONFLICT(run, n) DO UPDATE SET state = excluded.state,"                 \
  " state_at = excluded.state_at, state_seq = excluded.state_seq,"             \
  " attempts = excluded.attempts, error = excluded.error,"                     \
  " started_at = excluded.started_at, started_seq = excluded.started_seq,"     \
  " ended_at = excluded.ended_at,"                                             \
  " result = CASE WHEN excluded.result_kind < 0 THEN task_run.result"          \
  " ELSE excluded.result END,"                                                 \
  " result_kind = CASE WHEN excluded.result_kind < 0 THEN task_run.result_kind" \
  " ELSE excluded.result_kind END"

/* A connection, its statements and its last error: the writer thread's,
   or the handle's own for ":memory:". */
typedef struct wconn {
  sqlite3 *db;
  sqlite3_stmt *stmt[W_COUNT];
  int owned; /* db is this struct's to close */
} wconn;

/* The task_run insert for rows rows, as an upsert when `upsert`;
   malloc'd or NULL. */
static char *row_sql(int rows, int upsert) {
  const char *one = task_insert_sql;
  fl_buf b = FL_BUF_INIT;
  fl_buf_add(&b, one, (size_t)(strstr(one, " VALUES") - one));
  fl_buf_adds(&b, " VALUES ");
  for (int r = 0; r < rows; r++) {
    fl_buf_adds(&b, r ? ", (" : "(");
    for (int c = 1; c <= TASK_COLS; c++)
      fl_buf_addf(&b, "%s?%d", c > 1 ? ", " : "", r * TASK_COLS + c);
    fl_buf_addc(&b, ')');
  }
  if (upsert) fl_buf_adds(&b, UPSERT_TAIL);
  if (b.oom) {
    fl_buf_free(&b);
    return NULL;
  }
  return b.data;
}

static int wconn_prepare(wconn *w) {
  char *one = row_sql(1, 0), *many = row_sql(TASK_ROWS, 0);
  char *ups = row_sql(1, 1);
  const char *sql[W_COUNT] = {
      [W_BEGIN] = "BEGIN IMMEDIATE", [W_COMMIT] = "COMMIT",
      [W_ROLLBACK] = "ROLLBACK", [W_INSERT] = one, [W_INSERT_MANY] = many,
      [W_UPSERT] = ups, [W_EVENT] = event_insert_sql, [W_PUT] = cache_put_sql};
  int rc = one && many && ups ? SQLITE_OK : SQLITE_NOMEM;
  for (int i = 0; rc == SQLITE_OK && i < W_COUNT; i++)
    rc = sqlite3_prepare_v3(w->db, sql[i], -1, SQLITE_PREPARE_PERSISTENT,
                            &w->stmt[i], NULL);
  free(one);
  free(many);
  free(ups);
  return rc;
}

static void wconn_close(wconn *w) {
  for (int i = 0; i < W_COUNT; i++) sqlite3_finalize(w->stmt[i]);
  if (w->owned) sqlite3_close(w->db);
  memset(w, 0, sizeof *w);
}

static const char *fstr(const fbatch *b, size_t off) {
  return off == SIZE_MAX ? NULL : b->strings.data + off;
}

static void bind_row(sqlite3_stmt *s, int base, const fbatch *b,
                     const frow *r) {
  const char *state = task_state_names[r->state];
  sqlite3_bind_int64(s, base + 1, r->run);
  sqlite3_bind_int64(s, base + 2, r->n);
  bind_text(s, base + 3, fstr(b, r->key_off), strlen(fstr(b, r->key_off)));
  bind_text(s, base + 4, fstr(b, r->task_off), strlen(fstr(b, r->task_off)));
  sqlite3_bind_int(s, base + 5, r->map_index);
  bind_text(s, base + 6, state, strlen(state));
  bind_opt_double(s, base + 7, r->state_at);
  sqlite3_bind_int64(s, base + 8, r->n_changes);
  sqlite3_bind_int(s, base + 9, r->attempts);
  const char *err = fstr(b, r->err_off);
  bind_text(s, base + 10, err, err ? strlen(err) : 0);
  bind_opt_double(s, base + 11, r->started);
  if (r->started_seq)
    sqlite3_bind_int64(s, base + 12, r->started_seq);
  else
    sqlite3_bind_null(s, base + 12);
  bind_opt_double(s, base + 13, r->ended);
  sqlite3_bind_int(s, base + 14, r->result_kind);
  bind_text(s, base + 15, fstr(b, r->res_off), r->res_len);
}

/* Steps and resets s: the SQLite result code. */
static int wstep(sqlite3_stmt *s) {
  int rc = sqlite3_step(s);
  sqlite3_reset(s);
  sqlite3_clear_bindings(s);
  return rc == SQLITE_ROW ? SQLITE_DONE : rc;
}

/* Writes one batch inside the caller's transaction. */
static int write_one(wconn *w, const fbatch *b, const char **what) {
  int rc;
  *what = "cannot record a task run";
  /* New rows are inserted TASK_ROWS to a statement (most of a row's cost
     is its statement's); rows an earlier batch wrote are upserted. */
  const frow *chunk[TASK_ROWS];
  int in_chunk = 0;
  size_t i;
  for (i = 0; i < b->n_rows; i++) {
    const frow *r = &b->rows[i];
    if (!r->fresh) {
      bind_row(w->stmt[W_UPSERT], 0, b, r);
      if ((rc = wstep(w->stmt[W_UPSERT])) != SQLITE_DONE) goto fail;
      continue;
    }
    chunk[in_chunk++] = r;
    if (in_chunk < TASK_ROWS) continue;
    for (int k = 0; k < TASK_ROWS; k++)
      bind_row(w->stmt[W_INSERT_MANY], k * TASK_COLS, b, chunk[k]);
    if ((rc = wstep(w->stmt[W_INSERT_MANY])) != SQLITE_DONE) goto fail;
    in_chunk = 0;
  }
  for (int k = 0; k < in_chunk; k++) {
    bind_row(w->stmt[W_INSERT], 0, b, chunk[k]);
    if ((rc = wstep(w->stmt[W_INSERT])) != SQLITE_DONE) goto fail;
  }
  *what = "cannot record a task state change";
  sqlite3_stmt *s = w->stmt[W_EVENT];
  for (i = 0; i < b->n_events; i++) {
    const pending_event *ev = &b->events[i];
    const char *err = fstr(b, ev->err_off);
    const char *state = task_state_names[ev->state];
    sqlite3_bind_int64(s, 1, ev->rowid);
    sqlite3_bind_int64(s, 2, ev->task);
    sqlite3_bind_int64(s, 3, ev->seq);
    sqlite3_bind_double(s, 4, ev->at);
    bind_text(s, 5, state, strlen(state));
    sqlite3_bind_int(s, 6, ev->attempt);
    bind_text(s, 7, err, err ? strlen(err) : 0);
    if ((rc = wstep(s)) != SQLITE_DONE) goto fail;
  }
  *what = "cannot store a cached result";
  s = w->stmt[W_PUT];
  for (i = 0; i < b->n_puts; i++) {
    const pending_put *p = &b->puts[i];
    bind_text(s, 1, fstr(b, p->task_off), strlen(fstr(b, p->task_off)));
    bind_text(s, 2, fstr(b, p->key_off), strlen(fstr(b, p->key_off)));
    bind_text(s, 3, fstr(b, p->json_off), p->json_len);
    sqlite3_bind_double(s, 4, p->at);
    if ((rc = wstep(s)) != SQLITE_DONE) goto fail;
  }
  return SQLITE_DONE;
fail:
  return rc;
}

/* Writes the batches from b on, in one transaction on w: the SQLite result
   code; on failure, the transaction is rolled back and err holds what
   failed and why. */
static int write_fbatches(wconn *w, const fbatch *b, fl_buf *err) {
  const char *what = "cannot write the run's changes";
  int rc = wstep(w->stmt[W_BEGIN]);
  for (; rc == SQLITE_DONE && b; b = b->next) rc = write_one(w, b, &what);
  if (rc == SQLITE_DONE) {
    what = "cannot write the run's changes";
    rc = wstep(w->stmt[W_COMMIT]);
  }
  if (rc == SQLITE_DONE) return rc;
  fl_buf_reset(err);
  fl_buf_addf(err, "%s: %s", what, sqlite3_errmsg(w->db));
  if (!sqlite3_get_autocommit(w->db)) wstep(w->stmt[W_ROLLBACK]);
  return rc;
}

/* Copies s (n bytes) and a NUL into b's strings. */
static size_t fb_str(fbatch *b, const char *s, size_t n) {
  size_t off = b->strings.len;
  fl_buf_add(&b->strings, s, n);
  fl_buf_addc(&b->strings, '\0');
  return off;
}

/* Moves everything buffered into a frozen batch (NULL when out of memory,
   the buffer then unchanged). */
static fbatch *freeze(fl_store *st) {
  fbatch *b = calloc(1, sizeof *b);
  frow *rows = malloc((st->n_touched ? st->n_touched : 1) * sizeof *rows);
  if (!b || !rows) {
    free(b);
    free(rows);
    return NULL;
  }
  b->rows = rows;
  b->strings = st->batch; /* results, cached results, event errors */
  size_t keep = b->strings.len;
  for (size_t i = 0; i < st->n_touched; i++) {
    const fl_store_run *run = st->touched[i].run;
    uint32_t n = st->touched[i].task;
    const task_entry *e = &run->tasks[n];
    const char *key = run->names.data + e->key_off;
    const char *task = run->names.data + e->task_off;
    frow *r = &rows[i];
    *r = (frow){.run = run->rowid, .n = n, .n_changes = e->n_changes,
                .started_seq = e->started_seq, .map_index = e->map_index,
                .attempts = e->attempts, .state = e->state,
                .fresh = !e->written,
                .result_kind = e->result_kind ? e->result_kind
                               : e->written   ? -1
                                              : 0,
                .state_at = e->state_at, .started = e->started,
                .ended = e->ended, .err_off = SIZE_MAX, .res_off = SIZE_MAX};
    r->key_off = fb_str(b, key, strlen(key));
    r->task_off = fb_str(b, task, strlen(task));
    if (e->error) r->err_off = fb_str(b, e->error, strlen(e->error));
    if (e->result_kind == FL_STORE_RESULT_JSON) {
      r->res_off = e->result_off;
      r->res_len = e->result_len;
    }
  }
  if (b->strings.oom) {
    b->strings.len = keep;
    b->strings.oom = 0;
    st->batch = b->strings;
    free(rows);
    free(b);
    return NULL;
  }
  b->n_rows = st->n_touched;
  for (size_t i = 0; i < st->n_touched; i++) {
    task_entry *e = &st->touched[i].run->tasks[st->touched[i].task];
    e->touched = e->result_kind = 0;
    e->written = 1; /* its row is in this batch: later ones update it */
    e->result_off = e->result_len = 0;
  }
  b->events = st->events;
  b->n_events = st->n_events;
  b->puts = st->puts;
  b->n_puts = st->n_puts;
  st->events = NULL;
  st->puts = NULL;
  st->cap_events = st->cap_puts = 0;
  st->n_touched = st->n_events = st->n_puts = 0;
  st->batch = (fl_buf)FL_BUF_INIT;
  if (st->stats) {
    st->n_flushes++;
    st->n_rows += b->n_rows;
    st->n_events_written += b->n_events;
  }
  return b;
}

/* ---- the writer thread ---------------------------------------------------------- */

/* Frozen batches waiting to be written, in order, and the thread that
   writes them. The engine's thread only ever touches the queue under mu. */
typedef struct writer {
  pthread_t thread;
  pthread_mutex_t mu;
  pthread_cond_t wake; /* to the thread: a batch, a retry, or stop */
  pthread_cond_t idle; /* from the thread: the queue moved or failed */
  fbatch *head, *tail;
  size_t queued;  /* changes in the queue */
  int busy;       /* writing the head now */
  int failed;     /* the head failed; not retried until asked */
  int stop;
  int status;     /* FLOWLUA_* of the last failure, until reported */
  fl_buf err;     /* its message */
  wconn conn;     /* the thread's own */
  const char *path;
  int busy_ms;
} writer;

/* "state store 'p': <what>: <SQLite's reason>", plus a hint when the
   cause is another process holding the lock. */
static void format_failure(fl_buf *out, const char *path, int rc,
                           const fl_buf *why, int busy_ms) {
  fl_buf_reset(out);
  fl_buf_addf(out, "state store '%s': %s", path, fl_buf_str((fl_buf *)why));
  if ((rc & 0xff) == SQLITE_BUSY || (rc & 0xff) == SQLITE_LOCKED)
    fl_buf_addf(out, " (another process kept it locked for more than %d ms)",
                busy_ms);
}

static void *writer_main(void *arg) {
  writer *w = arg;
  pthread_mutex_lock(&w->mu);
  for (;;) {
    while (!w->stop && (!w->head || w->failed))
      pthread_cond_wait(&w->wake, &w->mu);
    if (!w->head || w->failed) break; /* stopping, nothing to write */
    /* Everything queued now, in one transaction: the batches are detached
       from the queue meanwhile, so the engine can queue more. */
    fbatch *b = w->head;
    size_t n = w->queued;
    w->head = w->tail = NULL;
    w->busy = 1;
    pthread_mutex_unlock(&w->mu);
    fl_buf why = FL_BUF_INIT;
    int rc = write_fbatches(&w->conn, b, &why);
    pthread_mutex_lock(&w->mu);
    w->busy = 0;
    if (rc == SQLITE_DONE) {
      w->queued -= n;
      while (b) {
        fbatch *next = b->next;
        fbatch_free(b);
        b = next;
      }
    } else {
      /* Back in front of whatever came meanwhile, for a retry when asked. */
      fbatch *last = b;
      while (last->next) last = last->next;
      last->next = w->head;
      if (!w->head) w->tail = last;
      w->head = b;
      format_failure(&w->err, w->path, rc, &why, w->busy_ms);
      w->status = status_of(rc);
      w->failed = 1;
    }
    fl_buf_free(&why);
    pthread_cond_broadcast(&w->idle);
  }
  pthread_mutex_unlock(&w->mu);
  return NULL;
}

static int writer_start(fl_store *st) {
  writer *w = calloc(1, sizeof *w);
  if (!w) return oom(st, "cannot start its writer");
  w->path = st->path;
  w->busy_ms = st->opts.busy_timeout_ms;
  w->conn.owned = 1;
  int rc = sqlite3_open_v2(st->path, &w->conn.db,
                           SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
  if (rc == SQLITE_OK) {
    sqlite3_busy_timeout(w->conn.db, st->opts.busy_timeout_ms);
    sqlite3_extended_result_codes(w->conn.db, 1);
    /* No foreign key checks on this connection: it only writes rows of
       runs it was given (their flow_run rows exist) and events of rows
       written by the same or an earlier batch, so the checks would only
       cost a lookup per row. Deletes, with their cascades, happen on the
       handle's own connection, where the keys are enforced. */
    char sql[160];
    snprintf(sql, sizeof sql,
             "PRAGMA synchronous = %s; PRAGMA foreign_keys = OFF;"
             " PRAGMA cache_size = -16384; PRAGMA temp_store = MEMORY;",
             st->opts.sync == FL_STORE_SYNC_FULL ? "FULL" : "NORMAL");
    rc = sqlite3_exec(w->conn.db, sql, NULL, NULL, NULL);
  }
  if (rc == SQLITE_OK) rc = wconn_prepare(&w->conn);
  if (rc != SQLITE_OK) {
    int status = set_err(st, status_of(rc),
                         "cannot open a second connection to it: %s",
                         w->conn.db ? sqlite3_errmsg(w->conn.db)
                                    : sqlite3_errstr(rc));
    wconn_close(&w->conn);
    free(w);
    return status;
  }
  pthread_mutex_init(&w->mu, NULL);
  pthread_cond_init(&w->wake, NULL);
  pthread_cond_init(&w->idle, NULL);
  /* Signals are for the engine's thread (flowlua_stop from a handler). */
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  int err = pthread_create(&w->thread, NULL, writer_main, w);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  if (err != 0) {
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->wake);
    pthread_cond_destroy(&w->idle);
    wconn_close(&w->conn);
    free(w);
    return set_err(st, FLOWLUA_EIO, "cannot start its writer thread: %s",
                   strerror(err));
  }
  st->writer = w;
  return FLOWLUA_OK;
}

/* Stops the thread once the queue is written or has failed, and frees it
   with whatever could not be written. */
static void writer_stop(fl_store *st) {
  writer *w = st->writer;
  if (!w) return;
  pthread_mutex_lock(&w->mu);
  w->stop = 1;
  pthread_cond_signal(&w->wake);
  pthread_mutex_unlock(&w->mu);
  pthread_join(w->thread, NULL);
  while (w->head) {
    fbatch *b = w->head;
    w->head = b->next;
    fbatch_free(b);
  }
  pthread_mutex_destroy(&w->mu);
  pthread_cond_destroy(&w->wake);
  pthread_cond_destroy(&w->idle);
  wconn_close(&w->conn);
  fl_buf_free(&w->err);
  free(w);
  st->writer = NULL;
}

/* Takes over a failure of the writer as the handle's error (once). */
static int writer_take_error(fl_store *st) {
  writer *w = st->writer;
  if (!w->status) return FLOWLUA_OK;
  int status = w->status;
  fl_buf_reset(&st->err);
  fl_buf_adds(&st->err, fl_buf_str(&w->err));
  w->status = FLOWLUA_OK;
  return status;
}

/* Hands b to the writer (after the batches before it); with wait, returns
   once the queue is written, or has failed. */
static int writer_submit(fl_store *st, fbatch *b, int wait) {
  writer *w = st->writer;
  pthread_mutex_lock(&w->mu);
  if (b) {
    if (w->tail)
      w->tail->next = b;
    else
      w->head = b;
    w->tail = b;
    w->queued += fbatch_size(b);
  }
  if (w->failed && (b || wait)) w->failed = 0; /* asked again: retry */
  pthread_cond_signal(&w->wake);
  while (wait && (w->head || w->busy) && !w->failed)
    pthread_cond_wait(&w->idle, &w->mu);
  int status = writer_take_error(st);
  if (wait && w->head && status == FLOWLUA_OK) status = FLOWLUA_EIO;
  pthread_mutex_unlock(&w->mu);
  return status;
}

/* Batches are written on the handle's own connection until the writer
   thread starts (never, for ":memory:", whose one connection is the
   database). */
static int mem_conn_open(fl_store *st) {
  st->mem_conn = calloc(1, sizeof *st->mem_conn);
  if (!st->mem_conn) return oom(st, "cannot prepare its queries");
  st->mem_conn->db = st->db;
  int rc = wconn_prepare(st->mem_conn);
  return rc == SQLITE_OK ? FLOWLUA_OK
                         : sql_err(st, rc, "cannot prepare its queries");
}

static void mem_queue_free(fl_store *st) {
  while (st->mem_head) {
    fbatch *b = st->mem_head;
    st->mem_head = b->next;
    fbatch_free(b);
  }
  st->mem_tail = NULL;
  if (st->mem_conn) wconn_close(st->mem_conn);
  free(st->mem_conn);
  st->mem_conn = NULL;
}

/* Changes handed over to be written and not yet in the file. */
static size_t queued_changes(const fl_store *st) {
  size_t n = 0;
  if (st->writer) {
    pthread_mutex_lock(&st->writer->mu);
    n = st->writer->queued;
    pthread_mutex_unlock(&st->writer->mu);
  }
  for (const fbatch *b = st->mem_head; b; b = b->next) n += fbatch_size(b);
  return n;
}

/* Waits until every batch handed to the writer is in the file. */
static int writer_drain(fl_store *st) {
  return st->writer ? writer_submit(st, NULL, 1) : FLOWLUA_OK;
}

/* A flush: freezes the batch and writes it — on the writer thread, waiting
   for it when `wait` (and for every batch before it), or at once on the
   handle's connection for ":memory:". */
static int flush_batch(fl_store *st, const char *what, int wait) {
  double t0 = st->stats ? mono_now() : 0;
  fbatch *b = NULL;
  if (st->n_touched + st->n_events + st->n_puts) {
    b = freeze(st);
    if (!b) return oom(st, what);
  }
  /* The writer thread starts with the first flush that does not wait:
     a short run (and `runs`, `show`, a resume's checks) never needs it. */
  if (!wait && !st->writer && st->journal && !st->mem_head &&
      writer_start(st) != FLOWLUA_OK)
    fl_buf_reset(&st->err); /* then this connection writes, as before */
  int status;
  if (st->writer) {
    status = !b && !wait ? FLOWLUA_OK : writer_submit(st, b, wait);
  } else {
    /* One connection: write now; a failed batch stays first in line. */
    if (b) {
      if (st->mem_tail)
        st->mem_tail->next = b;
      else
        st->mem_head = b;
      st->mem_tail = b;
    }
    status = FLOWLUA_OK;
    if (st->mem_head) {
      fl_buf why = FL_BUF_INIT;
      int rc = write_fbatches(st->mem_conn, st->mem_head, &why);
      if (rc != SQLITE_DONE) {
        format_failure(&st->err, st->path, rc, &why, st->opts.busy_timeout_ms);
        status = status_of(rc);
      } else {
        while (st->mem_head) {
          fbatch *done = st->mem_head;
          st->mem_head = done->next;
          fbatch_free(done);
        }
        st->mem_tail = NULL;
      }
      fl_buf_free(&why);
    }
  }
  if (st->stats) st->flush_seconds += mono_now() - t0;
  return status;
}

/* One flush, then an extra write (run begin or end) in a transaction of
   its own on the handle's connection. */
typedef int (*extra_write)(fl_store *st, void *ctx);

static int flush_with(fl_store *st, const char *what, extra_write extra,
                      void *ctx) {
  int status = flush_batch(st, what, 1);
  if (status || !extra) return status;
  status = tx_begin(st, what);
  if (status) return status;
  status = extra(st, ctx);
  if (status == FLOWLUA_OK) status = tx_commit(st, what);
  if (status != FLOWLUA_OK) tx_rollback(st);
  return status;
}

static int flush(fl_store *st, const char *what) {
  return flush_with(st, what, NULL, NULL);
}

static void journal_settled(fl_store *st);

int fl_store_flush(fl_store *st) {
  int status = flush(st, "cannot write the run's changes");
  if (status == FLOWLUA_OK) journal_settled(st);
  return status;
}

int fl_store_flush_async(fl_store *st) {
  return flush_batch(st, "cannot write the run's changes", 0);
}

/* ---- the journal ------------------------------------------------------------ */

/* Journal records: a head, fixed fields, then strings. Native byte order:
   a journal is replayed on the machine that wrote it. */
enum { J_ADD = 'A', J_STATE = 'S', J_RESULT = 'R', J_END = 'E' };
#define J_NONE UINT32_MAX /* a string that is NULL */

typedef struct j_head {
  int64_t run; /* flow_run.id */
  uint32_t task;
  uint32_t type;
} j_head;
typedef struct j_add {
  int32_t map_index;
  uint32_t key_len, task_len, pad;
} j_add;
typedef struct j_state {
  double at;
  int32_t state, attempt;
  uint32_t err_len, pad;
} j_state;
typedef struct j_result {
  uint32_t len, kind;
} j_result;

static int journal(fl_store *st, j_head h, const void *fixed, size_t fixed_len,
                   const char *s1, size_t n1, const char *s2, size_t n2) {
  if (!st->journal || st->replaying) return FLOWLUA_OK;
  fl_journal_part parts[4] = {{&h, sizeof h}, {fixed, fixed_len},
                              {s1, s1 ? n1 : 0}, {s2, s2 ? n2 : 0}};
  if (fl_journal_append(st->journal, parts, 4) != 0)
    return set_err(st, FLOWLUA_EIO, "cannot write its journal: %s",
                   strerror(errno));
  return FLOWLUA_OK;
}

/* The journal's records are all in the file once no run is open and
   nothing is buffered. */
static void journal_settled(fl_store *st) {
  if (!st->runs && fl_store_pending(st) == 0) fl_journal_reset(st->journal);
}

/* ---- runs -------------------------------------------------------------------- */

const char *fl_store_run_id(const fl_store_run *run) { return run->run_id; }

static void free_run(fl_store_run *run) {
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
  int status = prepare(
      st,
      "INSERT INTO flow_run(run_id, flow, script, params, state, scheduled_at,"
      " started_at, graph, resumed_from, owner_host, owner_boot, owner_pid,"
      " owner_start) VALUES (?1, ?2, ?3, ?4, 'Running', ?5, ?6, ?7, ?8, ?9,"
      " ?10, ?11, ?12)",
      &s, "cannot record the run");
  if (status) return status;
  sqlite3_bind_text(s, 1, in->run_id, -1, SQLITE_STATIC);
  sqlite3_bind_text(s, 2, in->flow, -1, SQLITE_STATIC);
  sqlite3_bind_text(s, 3, in->script, -1, SQLITE_STATIC);
  sqlite3_bind_text(s, 4, in->params_json, -1, SQLITE_STATIC);
  bind_opt_double(s, 5, in->scheduled_at);
  sqlite3_bind_double(s, 6, in->started_at);
  sqlite3_bind_text64(s, 7, c->graph, c->graph_len, SQLITE_STATIC, SQLITE_UTF8);
  sqlite3_bind_text(s, 8, in->resumed_from, -1, SQLITE_STATIC);
  sqlite3_bind_text(s, 9, c->owner->host, -1, SQLITE_STATIC);
  sqlite3_bind_text(s, 10, c->owner->boot_id, -1, SQLITE_STATIC);
  sqlite3_bind_int64(s, 11, c->owner->pid);
  sqlite3_bind_int64(s, 12, c->owner->start_time);
  int rc = sqlite3_step(s);
  if (rc == SQLITE_CONSTRAINT_UNIQUE)
    status = set_err(st, FLOWLUA_EINVAL, "run id '%s' is already recorded",
                     in->run_id);
  else if (rc == SQLITE_CONSTRAINT_CHECK)
    status = set_err(st, FLOWLUA_EINVAL,
                     "the params of run '%s' are not valid JSON", in->run_id);
  else if (rc != SQLITE_DONE)
    status = sql_err(st, rc, "cannot record run '%s'", in->run_id);
  else
    c->run->rowid = sqlite3_last_insert_rowid(st->db);
  sqlite3_finalize(s);
  return status;
}

int fl_store_run_begin(fl_store *st, const fl_store_run_info *info,
                       fl_store_run **out) {
  *out = NULL;
  if (!info->run_id || !*info->run_id || !info->flow || !*info->flow)
    return set_err(st, FLOWLUA_EINVAL,
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
  int status = flush_with(st, "cannot record the run", insert_run, &ctx);
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
  return oom(st, "cannot record the run");
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
  int status = prepare(st,
                       "UPDATE flow_run SET state = ?2, ended_at = ?3,"
                       " error = ?4, task_counts = ?5 WHERE id = ?1",
                       &s, "cannot record the end of the run");
  if (status) return status;
  sqlite3_bind_int64(s, 1, c->run->rowid);
  sqlite3_bind_text(s, 2, flow_state_name(c->state), -1, SQLITE_STATIC);
  bind_opt_double(s, 3, c->ended_at);
  sqlite3_bind_text(s, 4, c->error, -1, SQLITE_STATIC);
  sqlite3_bind_text(s, 5, c->counts, -1, SQLITE_STATIC);
  status = exec_stmt(st, s, "cannot record the end of the run");
  sqlite3_finalize(s);
  return status;
}

int fl_store_run_end(fl_store_run *run, int state, double ended_at,
                     const char *error) {
  fl_store *st = run->st;
  int status;
  fl_buf counts = FL_BUF_INIT;
  if (state < 0 || state >= FLOWLUA_FLOW_STATE_COUNT) {
    status = set_err(st, FLOWLUA_EINVAL,
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
    fl_buf_addf(&counts, "%s\"%s\":%zu", first ? "" : ",", task_state_names[i],
                by_state[i]);
    first = 0;
  }
  fl_buf_addc(&counts, '}');
  if (counts.oom) {
    status = oom(st, "cannot record the end of the run");
    goto done;
  }
  end_ctx ctx = {run, state, ended_at, error, counts.data};
  status = flush_with(st, "cannot record the end of the run", update_run_end,
                      &ctx);
  if (status == FLOWLUA_OK)
    status = journal(st, (j_head){run->rowid, 0, J_END}, NULL, 0, NULL, 0,
                     NULL, 0);
done:
  fl_buf_free(&counts);
  free_run(run);
  if (status == FLOWLUA_OK) journal_settled(st);
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

/* Keeps the set at most half full. */
static int grow_slots(fl_store_run *run) {
  if ((uint64_t)(run->n_tasks + 1) * 2 <= run->n_slots) return 0;
  uint32_t n = run->n_slots ? run->n_slots * 2 : 1024;
  uint64_t *old = run->slots;
  uint32_t old_n = run->n_slots;
  if (n < run->n_slots || !(run->slots = calloc(n, sizeof *run->slots))) {
    run->slots = old;
    return -1;
  }
  run->n_slots = n;
  uint32_t mask = n - 1;
  for (uint32_t i = 0; i < old_n; i++) {
    if (!old[i]) continue;
    uint32_t j = (uint32_t)(old[i] >> 32) & mask;
    while (run->slots[j]) j = (j + 1) & mask;
    run->slots[j] = old[i];
  }
  free(old);
  return 0;
}

int fl_store_task_add(fl_store_run *run, const char *key, const char *task,
                      int map_index, uint32_t *task_out) {
  fl_store *st = run->st;
  if (!key || !*key)
    return set_err(st, FLOWLUA_EINVAL, "run '%s': a task run needs a key",
                   run->run_id);
  if (!task) task = key;
  if (run->n_tasks == UINT32_MAX - 1)
    return set_err(st, FLOWLUA_EINVAL, "run '%s': too many task runs",
                   run->run_id);
  if (grow_slots(run)) return oom(st, "cannot add a task run");
  uint32_t h = hash_key(key);
  uint64_t *slot = find_slot(run, key, h);
  if (*slot)
    return set_err(st, FLOWLUA_EINVAL, "run '%s': task key '%s' is used twice",
                   run->run_id, key);
  if (run->n_tasks == run->cap_tasks) {
    uint32_t cap = run->cap_tasks ? run->cap_tasks * 2 : 256;
    task_entry *t = realloc(run->tasks, (size_t)cap * sizeof *t);
    if (!t) return oom(st, "cannot add a task run");
    run->tasks = t;
    run->cap_tasks = cap;
  }
  size_t key_len = strlen(key), task_len = strlen(task);
  if (fl_buf_reserve(&run->names, key_len + task_len + 2) != 0) {
    run->names.oom = 0;
    return oom(st, "cannot add a task run");
  }
  task_entry *e = &run->tasks[run->n_tasks];
  *e = (task_entry){.map_index = map_index, .state = FLOWLUA_TASK_PENDING};
  e->key_off = run->names.len;
  memcpy(run->names.data + run->names.len, key, key_len + 1);
  e->task_off = e->key_off + key_len + 1;
  memcpy(run->names.data + e->task_off, task, task_len + 1);
  run->names.len += key_len + task_len + 2;
  *slot = (uint64_t)h << 32 | (run->n_tasks + 1);
  *task_out = run->n_tasks++;
  j_add a = {map_index, (uint32_t)key_len, (uint32_t)task_len, 0};
  return journal(st, (j_head){run->rowid, *task_out, J_ADD}, &a, sizeof a, key,
                 key_len, task, task_len);
}

int fl_store_task_state(fl_store_run *run, uint32_t task, int state,
                        int attempt, double at, const char *error) {
  fl_store *st = run->st;
  if (task >= run->n_tasks)
    return set_err(st, FLOWLUA_EINVAL, "run '%s': no task run number %u",
                   run->run_id, task);
  if (state < 0 || state >= FL_STORE_TASK_STATES)
    return set_err(st, FLOWLUA_EINVAL, "run '%s': no task state number %d",
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
    return oom(st, "cannot buffer a change");
  if (demote && e->error &&
      batch_str(st, e->error, strlen(e->error), &err_off))
    return FLOWLUA_ENOMEM;
  if ((error && !(err_copy = strdup(error))) || touch(st, run, task)) {
    st->batch.len = batch_len;
    free(err_copy);
    return oom(st, "cannot buffer a change");
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
  if (is_final_task_state(state)) e->ended = at;
  size_t err_len = error ? strlen(error) : 0;
  j_state js = {at, state, attempt, error ? (uint32_t)err_len : J_NONE, 0};
  return journal(st, (j_head){run->rowid, task, J_STATE}, &js, sizeof js,
                 error, err_len, NULL, 0);
}

int fl_store_task_result(fl_store_run *run, uint32_t task, const char *json,
                         size_t len) {
  fl_store *st = run->st;
  if (task >= run->n_tasks)
    return set_err(st, FLOWLUA_EINVAL, "run '%s': no task run number %u",
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
    return set_err(st, FLOWLUA_EINVAL, "run '%s': a result of 4 GiB or more",
                   run->run_id);
  return journal(st, (j_head){run->rowid, task, J_RESULT}, &jr, sizeof jr,
                 json, len, NULL, 0);
}

/* ---- cache --------------------------------------------------------------------- */

int fl_store_cache_put(fl_store *st, const char *task, const char *key,
                       const char *json, size_t len, double at) {
  if (!task || !key || !json)
    return set_err(st, FLOWLUA_EINVAL,
                   "a cache entry needs a task, a key and a result");
  if (GROW(st->puts, st->cap_puts, st->n_puts))
    return oom(st, "cannot buffer a cache entry");
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
  if (st->cache_json.oom) return oom(st, "cannot read a cached result");
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
  int drained = writer_drain(st);
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
    status = sql_err(st, rc, "cannot read the cache of task '%s'", task);
  }
  sqlite3_reset(s);
  return status;
}

/* ---- crash detection and fires --------------------------------------------------- */

/* Whether the process recorded as a run's owner is certainly gone. */
static int owner_gone(const fl_store_owner *self, const char *host,
                      const char *boot, int64_t pid, int64_t start) {
  if (strcmp(host, self->host) != 0) return 0; /* cannot see it from here */
  if (*boot && *self->boot_id && strcmp(boot, self->boot_id) != 0) return 1;
  fl_store_owner now;
  if (pid <= 0 || fl_store_owner_of((pid_t)pid, &now) != 0) return 1;
  /* The pid lives, but if it started at another time it is another process
     that got the same pid. */
  return start && now.start_time && start != now.start_time;
}

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
      " FROM task_run WHERE run = ?1"
      " AND state IN ('Pending', 'Running', 'Retrying') AND state_seq > 0"
      " AND state_seq IS NOT started_seq",
      /* ...and its new latest change is Crashed, ending it at the last sign
         of life of the run... */
      "UPDATE task_run SET state = 'Crashed', state_at = ?2,"
      " state_seq = state_seq + 1, error = ?3, ended_at = ?4"
      " WHERE run = ?1 AND state IN ('Pending', 'Running', 'Retrying')",
      /* ...and the run's, with its counts. */
      "UPDATE flow_run SET state = 'Crashed', ended_at = ?4, error = ?3,"
      " task_counts = (SELECT json_group_object(state, n) FROM (SELECT state,"
      " count(*) AS n FROM task_run WHERE run = ?1 GROUP BY state))"
      " WHERE id = ?1 AND state = 'Running'",
  };
  for (size_t i = 0; i < sizeof sql / sizeof sql[0]; i++) {
    sqlite3_stmt *s = NULL;
    int status = prepare(st, sql[i], &s, "cannot mark a crashed run");
    if (status) return status;
    sqlite3_bind_int64(s, 1, c->rowid);
    sqlite3_bind_double(s, 2, now);
    sqlite3_bind_text(s, 3, error, -1, SQLITE_TRANSIENT);
    sqlite3_bind_double(s, 4, c->last);
    status = exec_stmt(st, s, "cannot mark a crashed run");
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
    j_state state;
    j_result result;
  } u;
  const char *s1, *s2; /* not NUL-terminated */
  size_t n1, n2;
} j_record;

/* Decodes rec[0..len); -1 for a record this code cannot read. */
static int j_decode(const unsigned char *rec, size_t len, j_record *r) {
  if (len < sizeof r->h) return -1;
  memcpy(&r->h, rec, sizeof r->h);
  rec += sizeof r->h;
  len -= sizeof r->h;
  r->s1 = r->s2 = NULL;
  r->n1 = r->n2 = 0;
  size_t fixed = r->h.type == J_ADD      ? sizeof r->u.add
                 : r->h.type == J_STATE  ? sizeof r->u.state
                 : r->h.type == J_RESULT ? sizeof r->u.result
                 : r->h.type == J_END    ? 0
                                         : SIZE_MAX;
  if (fixed == SIZE_MAX || len < fixed) return -1;
  memcpy(&r->u, rec, fixed);
  rec += fixed;
  len -= fixed;
  uint32_t n1 = r->h.type == J_ADD      ? r->u.add.key_len
                : r->h.type == J_STATE  ? r->u.state.err_len
                : r->h.type == J_RESULT ? r->u.result.len
                                        : J_NONE;
  uint32_t n2 = r->h.type == J_ADD ? r->u.add.task_len : J_NONE;
  size_t need = (n1 == J_NONE ? 0 : n1) + (n2 == J_NONE ? 0 : n2);
  if (need != len) return -1;
  if (n1 != J_NONE) r->s1 = (const char *)rec, r->n1 = n1;
  if (n2 != J_NONE) r->s2 = (const char *)rec + r->n1, r->n2 = n2;
  return 0;
}

/* Applies one decoded record to the run being rebuilt. */
static int j_apply(fl_store *st, fl_store_run *run, const j_record *r) {
  fl_buf a = FL_BUF_INIT, b = FL_BUF_INIT;
  int status = FLOWLUA_OK;
  uint32_t n;
  switch (r->h.type) {
  case J_ADD:
    fl_buf_add(&a, r->s1, r->n1);
    fl_buf_add(&b, r->s2, r->n2);
    if (a.oom || b.oom) {
      status = oom(st, "cannot replay a journal");
    } else {
      status = fl_store_task_add(run, fl_buf_str(&a), fl_buf_str(&b),
                                 r->u.add.map_index, &n);
      if (status == FLOWLUA_OK && n != r->h.task)
        status = set_err(st, FLOWLUA_EIO, "journal out of order");
    }
    break;
  case J_STATE:
    if (r->s1) fl_buf_add(&a, r->s1, r->n1);
    status = a.oom ? oom(st, "cannot replay a journal")
                   : fl_store_task_state(run, r->h.task, r->u.state.state,
                                         r->u.state.attempt, r->u.state.at,
                                         r->s1 ? fl_buf_str(&a) : NULL);
    break;
  case J_RESULT:
    status = fl_store_task_result(run, r->h.task, r->s1 ? r->s1 : NULL,
                                  r->s1 ? r->n1 : 0);
    break;
  default:
    break;
  }
  fl_buf_free(&a);
  fl_buf_free(&b);
  return status;
}

/* Runs the statement sql with ?1 = rowid. */
static int exec_with_rowid(fl_store *st, const char *sql, int64_t rowid,
                           const char *what) {
  sqlite3_stmt *s = NULL;
  int status = prepare(st, sql, &s, what);
  if (status) return status;
  sqlite3_bind_int64(s, 1, rowid);
  status = exec_stmt(st, s, what);
  sqlite3_finalize(s);
  return status;
}

/* Rebuilds the task runs of one run from its journal records: the rows in
   the file are dropped and every change is applied again, in order, so
   the result is the same however much of it had been flushed. */
static int replay_run(fl_store *st, int64_t rowid, const unsigned char *data,
                      size_t len) {
  const char *what = "cannot replay a journal";
  sqlite3_stmt *s = NULL;
  int status = prepare(st, "SELECT run_id FROM flow_run WHERE id = ?1", &s,
                       what);
  if (status) return status;
  sqlite3_bind_int64(s, 1, rowid);
  char *run_id = NULL;
  if (sqlite3_step(s) == SQLITE_ROW)
    run_id = strdup((const char *)sqlite3_column_text(s, 0));
  sqlite3_finalize(s);
  if (!run_id) return FLOWLUA_OK; /* not in this file (any more) */
  fl_store_run *run = calloc(1, sizeof *run);
  if (!run) {
    free(run_id);
    return oom(st, what);
  }
  run->st = st;
  run->rowid = rowid;
  run->run_id = run_id;
  run->next = st->runs;
  if (st->runs) st->runs->prev = run;
  st->runs = run;
  status = tx_begin(st, what);
  if (status == FLOWLUA_OK)
    status = exec_with_rowid(st, "DELETE FROM task_event WHERE run = ?1",
                             rowid, what);
  if (status == FLOWLUA_OK)
    status = exec_with_rowid(st, "DELETE FROM task_run WHERE run = ?1", rowid,
                             what);
  if (status == FLOWLUA_OK) status = tx_commit(st, what);
  if (status != FLOWLUA_OK) tx_rollback(st);
  size_t pos = 0, n;
  const unsigned char *rec;
  while (status == FLOWLUA_OK && (rec = fl_journal_next(data, len, &pos, &n))) {
    j_record r;
    if (j_decode(rec, n, &r) != 0) break; /* a newer format: keep what we have */
    if (r.h.run == rowid) status = j_apply(st, run, &r);
  }
  if (status == FLOWLUA_OK) status = flush(st, what);
  free_run(run);
  return status;
}

static int replay_journal(void *ctx, const char *path,
                          const unsigned char *data, size_t len) {
  fl_store *st = ctx;
  (void)path;
  /* The runs it holds that did not end (an ended run is all in the file). */
  int64_t *runs = NULL;
  size_t n_runs = 0, cap_runs = 0, pos = 0, n;
  const unsigned char *rec;
  int status = FLOWLUA_OK;
  while ((rec = fl_journal_next(data, len, &pos, &n))) {
    j_record r;
    if (j_decode(rec, n, &r) != 0) break;
    size_t i = 0;
    while (i < n_runs && runs[i] != r.h.run) i++;
    if (r.h.type == J_END) {
      if (i < n_runs) runs[i] = runs[--n_runs];
      continue;
    }
    if (i == n_runs) {
      if (GROW(runs, cap_runs, n_runs)) {
        status = oom(st, "cannot replay a journal");
        break;
      }
      runs[n_runs++] = r.h.run;
    }
  }
  st->replaying = 1;
  for (size_t i = 0; status == FLOWLUA_OK && i < n_runs; i++)
    status = replay_run(st, runs[i], data, len);
  st->replaying = 0;
  free(runs);
  return status == FLOWLUA_OK ? 0 : -1;
}

int fl_store_mark_crashed(fl_store *st, double now, size_t *n_marked) {
  if (n_marked) *n_marked = 0;
  /* First what dead processes had journalled but not written here. */
  if (strcmp(st->path, ":memory:") != 0 &&
      fl_journal_replay_dead(st->path, replay_journal, st) != 0)
    return FLOWLUA_EIO;
  crashed_run *dead = NULL;
  size_t n_dead = 0, cap_dead = 0;
  sqlite3_stmt *s = NULL;
  int status = tx_begin(st, "cannot look for crashed runs");
  if (status) return status;
  /* The run's end is its last sign of life: the latest state change of
     any of its task runs, or its start. */
  status = prepare(st,
                   "SELECT r.id, r.owner_host, r.owner_boot, r.owner_pid,"
                   " r.owner_start, max(r.started_at, coalesce((SELECT"
                   " max(t.state_at) FROM task_run t WHERE t.run = r.id), 0))"
                   " FROM flow_run r WHERE r.state = 'Running'",
                   &s, "cannot look for crashed runs");
  int rc = SQLITE_OK;
  while (status == FLOWLUA_OK && (rc = sqlite3_step(s)) == SQLITE_ROW) {
    const char *host = (const char *)sqlite3_column_text(s, 1);
    const char *boot = (const char *)sqlite3_column_text(s, 2);
    int64_t pid = sqlite3_column_int64(s, 3);
    if (!owner_gone(&st->self, host ? host : "", boot ? boot : "", pid,
                    sqlite3_column_int64(s, 4)))
      continue;
    if (GROW(dead, cap_dead, n_dead)) {
      status = oom(st, "cannot look for crashed runs");
      break;
    }
    dead[n_dead++] = (crashed_run){sqlite3_column_int64(s, 0), pid,
                                   sqlite3_column_double(s, 5)};
  }
  if (status == FLOWLUA_OK && rc != SQLITE_DONE)
    status = sql_err(st, rc, "cannot look for crashed runs");
  sqlite3_finalize(s);
  for (size_t i = 0; status == FLOWLUA_OK && i < n_dead; i++)
    status = mark_one_crashed(st, &dead[i], now);
  if (status == FLOWLUA_OK)
    status = tx_commit(st, "cannot mark crashed runs");
  if (status != FLOWLUA_OK)
    tx_rollback(st);
  else if (n_marked)
    *n_marked = n_dead;
  free(dead);
  return status;
}

int fl_store_claim_fire(fl_store *st, const char *flow, double scheduled_at,
                        double now) {
  sqlite3_stmt *s = NULL;
  int status = tx_begin(st, "cannot claim a scheduled fire");
  if (status) return status;
  status = prepare(st,
                   "INSERT INTO fire(flow, scheduled_ms, claimed_at, owner_host,"
                   " owner_pid) VALUES (?1, ?2, ?3, ?4, ?5)"
                   " ON CONFLICT DO NOTHING",
                   &s, "cannot claim a scheduled fire");
  if (status == FLOWLUA_OK) {
    sqlite3_bind_text(s, 1, flow, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, llround(scheduled_at * 1000.0));
    sqlite3_bind_double(s, 3, now);
    sqlite3_bind_text(s, 4, st->self.host, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 5, st->self.pid);
    status = exec_stmt(st, s, "cannot claim a scheduled fire");
  }
  int claimed = status == FLOWLUA_OK && sqlite3_changes(st->db) == 1;
  sqlite3_finalize(s);
  if (status == FLOWLUA_OK) status = tx_commit(st, "cannot claim a scheduled fire");
  if (status != FLOWLUA_OK) {
    tx_rollback(st);
    return status;
  }
  return claimed;
}

int fl_store_fire_event(fl_store *st, const char *flow, const char *outcome,
                        double first, double last, size_t count,
                        const char *detail, double now) {
  const char *what = "cannot record what became of a fire time";
  sqlite3_stmt *s = NULL;
  int status = tx_begin(st, what);
  if (status) return status;
  status = prepare(st,
                   "INSERT INTO fire_event(flow, outcome, scheduled_at, last_at,"
                   " count, detail, at, owner_pid) VALUES (?1, ?2, ?3, ?4, ?5,"
                   " ?6, ?7, ?8)",
                   &s, what);
  if (status == FLOWLUA_OK) {
    sqlite3_bind_text(s, 1, flow, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, outcome, -1, SQLITE_STATIC);
    sqlite3_bind_double(s, 3, first);
    bind_opt_double(s, 4, last);
    sqlite3_bind_int64(s, 5, (sqlite3_int64)count);
    sqlite3_bind_text(s, 6, detail, -1, SQLITE_STATIC);
    sqlite3_bind_double(s, 7, now);
    sqlite3_bind_int64(s, 8, st->self.pid);
    status = exec_stmt(st, s, what);
  }
  sqlite3_finalize(s);
  if (status == FLOWLUA_OK) status = tx_commit(st, what);
  if (status != FLOWLUA_OK) tx_rollback(st);
  return status;
}

int fl_store_last_fire(fl_store *st, const char *flow, double *out) {
  sqlite3_stmt *s = NULL;
  int status = prepare(st,
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
    found = set_err(st, FLOWLUA_EIO, "cannot read the last fire time: %s",
                    sqlite3_errmsg(st->db));
  }
  sqlite3_finalize(s);
  return found;
}

/* ---- reading back ------------------------------------------------------------------ */

/* Strings of a query's result, in blocks that never move, freed at once. */
typedef struct arena_block {
  struct arena_block *next;
  size_t used, cap;
  char data[];
} arena_block;

struct fl_store_arena {
  arena_block *head;
};

static void arena_free(struct fl_store_arena *a) {
  if (!a) return;
  while (a->head) {
    arena_block *next = a->head->next;
    free(a->head);
    a->head = next;
  }
  free(a);
}

/* A NUL-terminated copy of s[0..n), or NULL when out of memory. */
static char *arena_dup(struct fl_store_arena *a, const char *s, size_t n) {
  arena_block *b = a->head;
  if (!b || b->cap - b->used < n + 1) {
    size_t cap = n + 1 > 65536 ? n + 1 : 65536;
    arena_block *nb = malloc(sizeof *nb + cap);
    if (!nb) return NULL;
    nb->used = 0;
    nb->cap = cap;
    /* A big string gets a block of its own, behind the current one, so the
       current block's free space is not wasted. */
    if (b && cap > 65536) {
      nb->next = b->next;
      b->next = nb;
    } else {
      nb->next = b;
      a->head = nb;
    }
    b = nb;
  }
  char *p = b->data + b->used;
  memcpy(p, s, n);
  p[n] = '\0';
  b->used += n + 1;
  return p;
}

/* Column i as a string copied into the arena; NULL for SQL NULL. *ok is
   cleared when memory runs out. */
static const char *col_str(struct fl_store_arena *a, sqlite3_stmt *s, int i,
                           int *ok) {
  const char *v = (const char *)sqlite3_column_text(s, i);
  if (!v) return NULL;
  char *p = arena_dup(a, v, (size_t)sqlite3_column_bytes(s, i));
  if (!p) *ok = 0;
  return p;
}

/* The columns of flow_run every reader wants, in the order read_run_row
   reads them. */
#define RUN_COLUMNS                                                            \
  "r.id, r.run_id, r.flow, r.script, r.params, r.state, r.scheduled_at,"       \
  " r.started_at, r.ended_at, r.error, r.resumed_from, r.owner_pid,"           \
  " r.owner_host, r.task_counts"

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
  return ok;
}

/* Fills the counts of task runs by state: from the counts recorded at the
   run's end, or, for a run without them (still running), by counting. */
static int read_counts(fl_store *st, int64_t rowid, const char *counts_json,
                       fl_store_run_row *r) {
  sqlite3_stmt *s = NULL;
  int status = prepare(
      st,
      counts_json ? "SELECT key, value FROM json_each(?2)"
                  : "SELECT state, count(*) FROM task_run WHERE run = ?1"
                    " GROUP BY state",
      &s, "cannot count a run's task runs");
  if (status) return status;
  sqlite3_bind_int64(s, 1, rowid);
  if (counts_json) sqlite3_bind_text(s, 2, counts_json, -1, SQLITE_STATIC);
  int rc;
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
    int state = fl_store_task_state_parse((const char *)sqlite3_column_text(s, 0));
    size_t n = (size_t)sqlite3_column_int64(s, 1);
    r->n_tasks += n;
    if (state >= 0) r->by_state[state] += n;
  }
  if (rc != SQLITE_DONE) status = sql_err(st, rc, "cannot count a run's task runs");
  sqlite3_finalize(s);
  return status;
}

int fl_store_list_runs(fl_store *st, const char *flow, int limit,
                       fl_store_run_list *out) {
  memset(out, 0, sizeof *out);
  if (!(out->arena_ = calloc(1, sizeof *out->arena_)))
    return oom(st, "cannot list runs");
  sqlite3_stmt *s = NULL;
  int status = prepare(st,
                       "SELECT " RUN_COLUMNS " FROM flow_run r"
                       " WHERE ?1 IS NULL OR r.flow = ?1"
                       " ORDER BY r.started_at DESC, r.id DESC LIMIT ?2",
                       &s, "cannot list runs");
  if (status) return status;
  sqlite3_bind_text(s, 1, flow, -1, SQLITE_STATIC);
  sqlite3_bind_int(s, 2, limit > 0 ? limit : -1);
  size_t cap = 0;
  int rc;
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
    if (GROW(out->rows, cap, out->n)) {
      status = oom(st, "cannot list runs");
      break;
    }
    fl_store_run_row *r = &out->rows[out->n];
    if (!read_run_row(out->arena_, s, r)) {
      status = oom(st, "cannot list runs");
      break;
    }
    out->n++;
    status = read_counts(st, sqlite3_column_int64(s, 0),
                         (const char *)sqlite3_column_text(s, 13), r);
    if (status) break;
  }
  if (status == FLOWLUA_OK && rc != SQLITE_DONE)
    status = sql_err(st, rc, "cannot list runs");
  sqlite3_finalize(s);
  return status;
}

void fl_store_run_list_free(fl_store_run_list *l) {
  free(l->rows);
  arena_free(l->arena_);
  memset(l, 0, sizeof *l);
}

typedef struct key_index {
  const char *key;
  uint32_t i;
} key_index;

/* The detail with what the caller does not see. */
typedef struct detail_impl {
  fl_store_run_detail pub;
  struct fl_store_arena *arena;
  const char **graph;
  key_index *by_key; /* tasks sorted by key, for fl_store_detail_find */
} detail_impl;

void fl_store_run_detail_free(fl_store_run_detail *d) {
  if (!d) return;
  detail_impl *x = (detail_impl *)d;
  free(x->by_key);
  free(x->graph);
  free(x->pub.tasks);
  arena_free(x->arena);
  free(x);
}

static int cmp_key_index(const void *a, const void *b) {
  return strcmp(((const key_index *)a)->key, ((const key_index *)b)->key);
}

/* Finds the flow_run row that ref names: "last", a full id, or a unique
   prefix of one. 0 with *rowid set, or an error with its message. */
static int resolve_run(fl_store *st, const char *ref, const char *flow,
                       int64_t *rowid) {
  if (!ref || !*ref)
    return set_err(st, FLOWLUA_EINVAL, "no run id given");
  int last = strcmp(ref, "last") == 0;
  sqlite3_stmt *s = NULL;
  /* An exact id wins over the ids it is a prefix of. */
  int status = prepare(
      st,
      last ? "SELECT id, run_id FROM flow_run WHERE ?2 IS NULL OR flow = ?2"
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
    status = sql_err(st, rc, "cannot look up run '%s'", ref);
  else if (n == 0 && last)
    status = set_err(st, FLOWLUA_EINVAL, "no run%s%s%s is recorded",
                     flow ? " of flow '" : "", flow ? flow : "", flow ? "'" : "");
  else if (n == 0)
    status = set_err(st, FLOWLUA_EINVAL, "no run%s%s%s has an id starting with '%s'",
                     flow ? " of flow '" : "", flow ? flow : "", flow ? "'" : "",
                     ref);
  else if (n > 1 && !exact)
    status = set_err(st, FLOWLUA_EINVAL,
                     "run id '%s' is ambiguous: it starts %s%d ids (%s%s); give "
                     "more of it",
                     ref, n > 5 ? "more than " : "", n > 5 ? 5 : n,
                     fl_buf_str(&matches), n > 5 ? ", ..." : "");
  fl_buf_free(&matches);
  sqlite3_finalize(s);
  return status;
}

static int load_graph(fl_store *st, detail_impl *x, int64_t rowid) {
  sqlite3_stmt *s = NULL;
  int status = prepare(st,
                       "SELECT j.value FROM flow_run r, json_each(r.graph) j"
                       " WHERE r.id = ?1 ORDER BY j.key",
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
    status = oom(st, "cannot read a run's graph");
  else if (rc != SQLITE_DONE)
    status = sql_err(st, rc, "cannot read a run's graph");
  sqlite3_finalize(s);
  x->pub.graph_keys = x->graph;
  return status;
}

static int load_tasks(fl_store *st, detail_impl *x, int64_t rowid) {
  sqlite3_stmt *s = NULL;
  int status = prepare(st,
                       "SELECT key, task, map_index, state, attempts,"
                       " started_at, ended_at, error, result, result_kind"
                       " FROM task_run WHERE run = ?1 ORDER BY n",
                       &s, "cannot read a run's task runs");
  if (status) return status;
  sqlite3_bind_int64(s, 1, rowid);
  size_t cap = 0;
  int rc, ok = 1;
  fl_store_run_detail *d = &x->pub;
  while (ok && (rc = sqlite3_step(s)) == SQLITE_ROW) {
    if (GROW(d->tasks, cap, d->n_tasks)) {
      ok = 0;
      break;
    }
    fl_store_task_row *t = &d->tasks[d->n_tasks++];
    memset(t, 0, sizeof *t);
    t->key = col_str(x->arena, s, 0, &ok);
    t->task = col_str(x->arena, s, 1, &ok);
    t->map_index = sqlite3_column_int(s, 2);
    t->state = fl_store_task_state_parse((const char *)sqlite3_column_text(s, 3));
    t->attempts = sqlite3_column_int(s, 4);
    t->started_at = sqlite3_column_double(s, 5);
    t->ended_at = sqlite3_column_double(s, 6);
    t->error = col_str(x->arena, s, 7, &ok);
    t->result_kind = sqlite3_column_int(s, 9);
    if (t->result_kind == FL_STORE_RESULT_JSON) {
      t->result = col_str(x->arena, s, 8, &ok);
      t->result_len = t->result ? (size_t)sqlite3_column_bytes(s, 8) : 0;
      if (!t->result) t->result_kind = FL_STORE_RESULT_NONE;
    }
    if (!t->key) t->key = "";
    if (!t->task) t->task = "";
  }
  if (!ok)
    status = oom(st, "cannot read a run's task runs");
  else if (rc != SQLITE_DONE)
    status = sql_err(st, rc, "cannot read a run's task runs");
  sqlite3_finalize(s);
  if (status) return status;
  /* The counts of a loaded run are what was loaded. */
  d->run.n_tasks = d->n_tasks;
  memset(d->run.by_state, 0, sizeof d->run.by_state);
  for (size_t i = 0; i < d->n_tasks; i++)
    if (d->tasks[i].state >= 0) d->run.by_state[d->tasks[i].state]++;
  if (d->n_tasks) {
    if (!(x->by_key = malloc(d->n_tasks * sizeof *x->by_key)))
      return oom(st, "cannot read a run's task runs");
    for (size_t i = 0; i < d->n_tasks; i++)
      x->by_key[i] = (key_index){d->tasks[i].key, (uint32_t)i};
    qsort(x->by_key, d->n_tasks, sizeof *x->by_key, cmp_key_index);
  }
  return FLOWLUA_OK;
}

int fl_store_load_run(fl_store *st, const char *ref, const char *flow,
                      fl_store_run_detail **out) {
  *out = NULL;
  int64_t rowid = 0;
  int status = resolve_run(st, ref, flow, &rowid);
  if (status) return status;
  detail_impl *x = calloc(1, sizeof *x);
  if (!x || !(x->arena = calloc(1, sizeof *x->arena))) {
    free(x);
    return oom(st, "cannot read a run");
  }
  sqlite3_stmt *s = NULL;
  status = prepare(st, "SELECT " RUN_COLUMNS " FROM flow_run r WHERE r.id = ?1",
                   &s, "cannot read a run");
  if (status == FLOWLUA_OK) {
    sqlite3_bind_int64(s, 1, rowid);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
      if (!read_run_row(x->arena, s, &x->pub.run))
        status = oom(st, "cannot read a run");
    } else if (rc == SQLITE_DONE) {
      status = set_err(st, FLOWLUA_EINVAL, "run '%s' was deleted while read",
                       ref);
    } else {
      status = sql_err(st, rc, "cannot read run '%s'", ref);
    }
    sqlite3_finalize(s);
  }
  if (status == FLOWLUA_OK) status = load_graph(st, x, rowid);
  if (status == FLOWLUA_OK) status = load_tasks(st, x, rowid);
  if (status) {
    fl_store_run_detail_free(&x->pub);
    return status;
  }
  *out = &x->pub;
  return FLOWLUA_OK;
}

const fl_store_task_row *fl_store_detail_find(const fl_store_run_detail *d,
                                              const char *key) {
  const detail_impl *x = (const detail_impl *)d;
  if (!x->by_key) return NULL;
  key_index want = {key, 0};
  const key_index *k = bsearch(&want, x->by_key, d->n_tasks, sizeof *x->by_key,
                               cmp_key_index);
  return k ? &d->tasks[k->i] : NULL;
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
  memcpy(sorted, b, nb * sizeof *sorted);
  qsort(sorted, nb, sizeof *sorted, cmp_str_ptr);
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
                r->run_id, flow_state_name(r->state));
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
