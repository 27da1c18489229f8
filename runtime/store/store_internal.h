/*
 * store_internal.h — what the state store's files share: the handle, the
 * buffered batch, journal records, and the helpers each file uses. Only
 * store*.c include it; store.h is the contract.
 *
 *   store.c          opening and the schema, errors and transactions, the
 *                    buffered batch, runs, task runs, the cache
 *   store_batch.c    freezing the buffered changes into a batch
 *   store_sqlite_write.c  writing batches to the file, in a transaction
 *   store_write.c    flushes and the writer thread that writes batches
 *   store_begin.c    run ids in blocks; a serving process's run start
 *   store_claims.c   the fire claims file
 *   store_replay.c   crash detection, fire claims and events, replaying a
 *                    dead process's journal
 *   store_read.c     reading runs back (runs, show, resume)
 *   store_arena.c    the strings of what the readers hand back
 *   store_detail.c   a loaded run: its layout, index and counts (shared
 *                    with pg_read.c)
 *   store_log.c      task runs' log lines: bounded, buffered, frozen
 *   store_logs.c     reading log lines and a task run's state changes
 *                    back (both backends)
 */
#ifndef FL_STORE_INTERNAL_H
#define FL_STORE_INTERNAL_H

#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "journal.h"
#include "store.h"

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
  uint8_t written;          /* a flushed batch holds its row: later
                               batches update it */
  uint8_t packed;           /* that row went into a task_pack row */
  uint8_t in_set;           /* its key is in run->slots (not an element's) */
  uint32_t jgen;            /* the journal generation that declares it */
  uint8_t result_kind;      /* a result set since the last flush, or 0 */
  struct task_logs *logs;   /* its log lines' bounds (store_log.c), NULL
                               until it logs: most task runs never do */
} task_entry;

/* What the store knows of a task run's log lines as it records them
   (store_log.c): the lengths of the lines kept, in a ring, so that the
   bounds (FL_STORE_LOG_LINES, FL_STORE_LOG_BYTES) are kept without
   reading the file back. */
typedef struct task_logs {
  uint32_t *len;           /* the kept lines' lengths, oldest at head */
  uint32_t cap, head, count;
  int64_t next_seq;        /* the seq of the next line (1-based) */
  uint64_t kept_bytes;
  int64_t dropped_lines, dropped_bytes;
  int64_t trimmed_lines, trimmed_bytes; /* the drops a batch last wrote */
  uint64_t trim_batch;     /* the batch that trimmed last (its seq) */
  int closed;              /* the task run ended: len freed, no more lines */
} task_logs;

/* The seq of a task run's oldest kept line. */
static inline int64_t task_logs_first(const task_logs *l) {
  return l->next_seq - (int64_t)l->count;
}

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
  uint32_t n_bracketed; /* keys in the set that hold a '[' */
  /* The task runs' counts by state as the engine counted them
     (fl_store_run_counts), recorded at the run's end; else counted there
     by FL_STORE_COUNT_TASK_RUNS_SQL. */
  size_t counts[FL_STORE_TASK_STATES];
  int has_counts;
  /* In a replay that starts from the file (store_replay.c): the task
     numbers a record may name are below this (0: no bound). */
  uint32_t restore_limit;
};

/* Whether the process recorded as a run's owner (host, boot id, pid, start
   time) is certainly gone; a process on another host is never known gone. */
int fl__store_owner_gone(const fl_store_owner *self, const char *host,
                         const char *boot, int64_t pid, int64_t start);

/* The task runs a run counts, by state, as the engine counts them (see
   "Counting task runs" in docs/manual/history.md): every element of a map,
   and every other task run but a map that has elements, which is a group
   counted by its elements. ?1 is the run's rowid. Rows (state, n). */
#define FL_STORE_COUNT_TASK_RUNS_SQL                                         \
  "SELECT state, count(*) AS n FROM task_run WHERE run = ?1 AND"             \
  " (map_index > 0 OR key NOT IN (SELECT substr(key, 1, length(key) -"       \
  " length(map_index) - 2) FROM task_run WHERE run = ?1 AND map_index > 0))" \
  " GROUP BY state"

/* Journal records: a head, fixed fields, then strings. Native byte order:
   a journal is replayed on the machine that wrote it. */
enum { J_ADD = 'A', J_ADDS = 'N', J_STATE = 'S', J_RESULT = 'R', J_END = 'E',
       J_FIRE = 'F', J_BEGIN = 'B', J_CLAIM = 'C', J_COUNT = 'K',
       J_WORKER = 'W', J_LOG = 'L', J_BEGIN_CHILD = 'P' };
/* J_COUNT (no fields): at the start of a journal's turn, how many task
   runs the head's run has declared so far (head's task). A replay bounds
   the task numbers the journal may name with it: a turned journal does not
   hold the declarations of task runs that never changed, so numbers past
   any declared in it are legitimate up to this count, and no further. */
#define J_NONE UINT32_MAX /* a string that is NULL */

/* The strings of a run's start (J_BEGIN, pending_begin), in this order.
   A subflow's link to its parent (JB_PARENT, JB_PARENT_TASK) came last,
   and only a subflow's start journals it (J_BEGIN_CHILD): every other
   start is a J_BEGIN record as a flowlua before the link wrote it, so
   journals left by either version replay in the other. */
enum { JB_RUN_ID, JB_FLOW, JB_SCRIPT, JB_PARAMS, JB_RESUMED, JB_GRAPH,
       JB_EDGES, JB_HOST, JB_BOOT, JB_PARENT, JB_PARENT_TASK,
       J_BEGIN_STRINGS };
#define J_BEGIN_PLAIN_STRINGS JB_PARENT /* the strings a J_BEGIN holds */

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

/* A run's end, buffered like a task run's change (journalled first: see
   fl_store_run_end) and written by the batch that holds it, after the
   run's task runs. */
typedef struct pending_end {
  int64_t rowid;
  int32_t state;     /* flowlua_flow_state */
  double ended_at;
  size_t err_off;    /* in st->batch; SIZE_MAX = no error */
  size_t counts_off; /* in st->batch; SIZE_MAX = count the rows */
} pending_end;

/* What became of a fire time (fl_store_fire_event), buffered like a run's
   end; its strings in st->batch. */
typedef struct pending_fire {
  size_t flow_off, outcome_off, detail_off; /* detail_off SIZE_MAX: none */
  double first, last, at;
  uint64_t count;
} pending_fire;

/* A run's start in a serving process (store.c, "run ids"), buffered like
   a run's end and written first by the batch that holds it; its strings in
   st->batch, SIZE_MAX for NULL. */
typedef struct pending_begin {
  int64_t rowid, pid, start;
  double scheduled_at, started_at;
  size_t str_off[J_BEGIN_STRINGS];
} pending_begin;

/* A fire time this process claimed (fl_store_claim_fire_within) in the
   claims file, for the writer to record in the fire table. */
typedef struct pending_claim {
  size_t flow_off; /* in st->batch */
  int64_t ms;
  double at;
} pending_claim;

/* Where an attempt of a worker task ran (fl_store_task_worker), for the
   writer to record in attempt_worker; its host in st->batch. */
typedef struct pending_worker {
  int64_t rowid, pid;
  uint32_t task;
  int32_t attempt;
  size_t host_off;
} pending_worker;

/* The longest host name a worker record keeps (a replay refuses longer:
   a damaged record). */
#define FL_STORE_MAX_HOST 255

/* A task run's log line (fl_store_task_log), buffered; its text in
   st->log_text while buffered, in the frozen batch's strings after. */
typedef struct pending_log {
  fl_store_run *run; /* only while buffered: a frozen batch uses rowid */
  int64_t rowid, seq;
  uint32_t task;
  int32_t attempt, level;
  double at;
  size_t text_off, text_len;
} pending_log;

/* Where a task run's kept lines now start, and what it dropped so far:
   the writer deletes its lines before first_seq and records the counts
   (both idempotent: a batch written again does the same). */
typedef struct pending_trim {
  int64_t rowid, first_seq, lines, bytes;
  uint32_t task;
} pending_trim;

typedef struct touched_task {
  fl_store_run *run;
  uint32_t task;
} touched_task;

typedef struct pending_put {
  size_t task_off, key_off, json_off, json_len; /* in st->batch */
  double at;
} pending_put;

/* PRAGMA journal_size_limit of a handle's connection: a WAL file is cut
   back to this at each reset, so that it does not stay huge after a big
   run (a prune sets less while it goes). */
#define FL_STORE_WAL_LIMIT "67108864"

/* Statements of the handle's connection, prepared once. */
enum { S_BEGIN, S_COMMIT, S_ROLLBACK, S_CACHE_GET, S_JSON_VALID, S_COUNT };


/* A connection's busy wait (fl__store_busy_install, below). */
typedef struct store_busy {
  fl_store *st;
  double started; /* when the current wait began (monotonic) */
  int limit_ms;   /* > 0: waits this long, not the busy timeout (set and
                     read on the connection's own thread only) */
} store_busy;

struct fl_store {
  sqlite3 *db;      /* NULL when the history is in PostgreSQL: */
  struct fl_pg *pg; /* its connection (pg_store.h), else NULL, */
  struct pg_keeper *pg_keeper; /* and what holds the runs' leases */
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
  pending_end *ends;
  size_t n_ends, cap_ends;
  pending_fire *fires;
  size_t n_fires, cap_fires;
  pending_begin *begins;
  size_t n_begins, cap_begins;
  pending_claim *claims;
  size_t n_claims, cap_claims;
  pending_worker *workers;
  size_t n_workers, cap_workers;
  pending_log *logs;
  size_t n_logs, cap_logs;
  fl_buf log_text;    /* the buffered lines' text (store_log.c) */
  size_t log_compact; /* buffered lines at which dropped ones are purged */
  fl_buf batch;      /* the batch's strings, NUL-terminated, by offset */
  fl_buf cache_json; /* the last cache hit, for fl_store_cache_get */
  /* Every change to a task run, as it happens (journal.h): durable at
     once, so a flush is only needed to keep the file itself current. NULL
     for ":memory:". */
  fl_journal *journal;
  /* Two journals take turns (store.c, "the journal"), so that neither
     grows with a run: the spare, once every batch holding its records is
     committed, is reset and becomes the active one at a later flush. */
  fl_journal *spare;
  uint64_t spare_cover;  /* the spare's records are all in batches up to
                            this one (see batch_seq); 0: it is empty */
  uint32_t journal_gen;  /* the active journal's generation */
  uint64_t batch_seq;    /* of the last batch frozen */
  uint64_t mem_committed; /* of the last batch this connection wrote */
  int replaying; /* replaying a dead process's journal: do not journal */
  int read_only;  /* opened SQLITE_OPEN_READONLY (opts.reading) */
  store_busy busy_main; /* st->db's busy handler */
  uint64_t busy_ns;     /* waited for other processes' locks (atomic) */
  int err_busy;   /* the last failure was another process's lock */
  int db_damaged; /* PRAGMA quick_check found the file damaged */
  fl_buf notices; /* what the user should hear of, one per line (replays,
                     checks at open): fl_store_notices */
  /* FLOWLUA_STORE_STATS set: counts printed to stderr at close, for the
     benchmarks. */
  int stats;
  size_t n_flushes, n_rows, n_events_written;
  double flush_seconds;
  /* Flushed batches are written by a thread with a connection of its own
     (file stores, from the first flush that does not wait), or on this
     handle's connection, with a queue of their own in case one fails. */
  struct writer *writer;
  int writer_used;  /* a writer thread ran: this process wrote a big run */
  int background;   /* fl_store_write_in_background: starts and ends of
                       runs, fire claims and events go to the writer thread */
  /* Run ids handed out to this process and not used yet: ids_next up to
     ids_end (excluded). A serving process starts a run with one of them
     without a transaction of its own; the writer thread reserves the next
     block ahead of need (fl__store_take_ids). */
  int64_t ids_next, ids_end;
  /* The fire claims file (store_claims.c), opened on first use; -1 when
     not open. */
  int claims_fd;
  int claims_failed; /* it could not be opened: claims use the database */
  int wal_frames;   /* in the WAL after this connection's last commit */
  int defer_checkpoints; /* a prune is going: it checkpoints between its
                            steps, not in the commit hook (store_prune.c) */
  struct wconn *mem_conn;
  struct fbatch *mem_head, *mem_tail;
};


/* ---- frozen batches (store_batch.c) -------------------------------------- */

/* A flush freezes the batch: the touched task runs' rows are copied out of
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
  int packed;          /* fresh and ended: written into a task_pack row */
  int was_packed;      /* an earlier batch packed it: it changed after it
                          ended, so task_row takes over, result included */
  double state_at, started, ended;
  size_t key_off, task_off, err_off, res_off, res_len; /* SIZE_MAX: NULL */
} frow;

typedef struct fbatch {
  struct fbatch *next;
  uint64_t seq; /* st->batch_seq when it was frozen */
  frow *rows;
  size_t n_rows;
  pending_event *events; /* their rowid, never their run pointer, is used */
  size_t n_events;
  pending_put *puts;
  size_t n_puts;
  pending_end *ends; /* after the rows: a run's end follows its tasks */
  size_t n_ends;
  pending_fire *fires;
  size_t n_fires;
  pending_begin *begins; /* before the rows: a run starts before its tasks */
  size_t n_begins;
  pending_claim *claims;
  size_t n_claims;
  pending_worker *workers;
  size_t n_workers;
  pending_log *logs; /* text in strings */
  size_t n_logs;
  pending_trim *trims; /* after the logs: a trim may delete them */
  size_t n_trims;
  fl_buf strings;
} fbatch;

/* Moves everything buffered into a frozen batch, which owns every byte it
   writes (NULL when out of memory, the buffer then unchanged). */
fbatch *fl__store_freeze(fl_store *st);
void fl__store_fbatch_free(fbatch *b);
/* The changes b holds, as fl_store_pending counts them. */
size_t fl__store_fbatch_size(const fbatch *b);

/* store_log.c: moves the buffered log lines that are still kept into b
   (their text into b->strings) with a trim for each task run that dropped
   lines since its last; 0, or -1 when out of memory (b and the buffer
   then unchanged). Called by fl__store_freeze once nothing else can fail:
   it cannot fail after it changed anything. */
int fl__store_freeze_logs(fl_store *st, fbatch *b);
/* Forgets the buffered lines of run (about to be freed) and frees its
   task runs' bounds. */
void fl__store_logs_drop_run(fl_store *st, fl_store_run *run);
/* The task run ended: its ring goes (a map of 10,000 elements that each
   logged 1,000 lines would keep 40 MB of lengths), its counts stay for
   the lines still buffered. */
void fl__store_logs_close(task_logs *l);
void fl__store_logs_free(fl_store *st);

/* ---- writing batches to the file (store_sqlite_write.c) ------------------ */

/* A connection that writes batches, with its prepared statements. */
typedef struct wconn wconn;

/* Writes the batches from b on (b->next...) in one transaction on w, and
   with want_ids reserves that many run ids in it (the first in
   *ids_first): SQLITE_DONE, or the SQLite result code with err holding
   what failed and why, the transaction rolled back. */
int fl__wconn_write(wconn *w, const fbatch *b, int64_t want_ids,
                    int64_t *ids_first, fl_buf *err);
/* A connection of its own to st's file, for the writer thread, which
   tells *wal_frames the WAL's size after each commit. */
int fl__wconn_open(fl_store *st, wconn **out, int *wal_frames);
/* A writer on st's own connection (":memory:", or before the thread). */
int fl__wconn_borrow(fl_store *st, wconn **out);
/* Copies the WAL into the file as far as nobody is in the way. */
void fl__wconn_checkpoint(wconn *w);
/* NULL is allowed. */
void fl__wconn_free(wconn *w);

typedef struct j_head {
  int64_t run; /* flow_run.id */
  uint32_t task;
  uint32_t type;
} j_head;
typedef struct j_add {
  int32_t map_index;
  uint32_t key_len, task_len, pad;
} j_add;
/* J_ADDS: `count` task runs numbered from the head's task, then 2 * count
   uint32_t (each one's key length and task name length), then each one's
   key and task name, NUL-terminated. */
typedef struct j_adds {
  uint32_t count, pad;
} j_adds;
typedef struct j_state {
  double at;
  int32_t state, attempt;
  uint32_t err_len;
  uint32_t seq; /* the task run's count of changes with this one: a replay
                   skips what the file already holds */
} j_state;
typedef struct j_result {
  uint32_t len, kind;
} j_result;
/* J_END: the run's end, then its error and its counts (JSON) when their
   lengths are not J_NONE. Written before the end reaches the file, so a
   replay records it. A J_END without these fields (an older flowlua's,
   written once the end was committed) says only that the run is all in
   the file. */
/* J_FIRE (head's run 0): what became of a fire time, then the flow's name
   and the outcome (s1, flow_len + outcome_len bytes) and the detail (s2,
   J_NONE: none). */
typedef struct j_fire {
  double first, last, at;
  uint64_t count;
  int64_t pid; /* the process that recorded it (fire_event.owner_pid) */
  uint32_t flow_len, outcome_len, detail_len, pad;
} j_fire;
/* J_BEGIN (head's run: the run's id): a run's start, journalled before
   the writer inserts its flow_run row; then the strings of JB_*, their
   lengths in len (J_NONE: NULL), one after another. */
typedef struct j_begin {
  double scheduled_at, started_at;
  int64_t pid, start; /* the owner's; its host and boot id are strings */
  uint32_t len[J_BEGIN_STRINGS];
} j_begin;
/* J_BEGIN's fixed fields are j_begin's up to len[J_BEGIN_PLAIN_STRINGS]:
   this layout, whose size (padding included) is what a J_BEGIN holds.
   J_BEGIN_CHILD (a subflow's start) holds a whole j_begin. */
typedef struct j_begin_plain {
  double scheduled_at, started_at;
  int64_t pid, start;
  uint32_t len[J_BEGIN_PLAIN_STRINGS];
} j_begin_plain;
_Static_assert(offsetof(j_begin_plain, len) == offsetof(j_begin, len) &&
                   sizeof(j_begin_plain) <= sizeof(j_begin),
               "a J_BEGIN's fields are the head of a J_BEGIN_CHILD's");
/* J_WORKER: attempt `attempt` of the head's task run runs in worker pid,
   then its host (host_len bytes). */
typedef struct j_worker {
  int64_t pid;
  int32_t attempt;
  uint32_t host_len;
} j_worker;
/* J_LOG: a task run's log line (store_log.c), then its text (len bytes),
   with where its kept lines start and what was dropped once it was
   recorded, so that a replay writes the line, the trim and the counts as
   the dead process would have. */
typedef struct j_log {
  double at;
  int64_t seq, first_seq, dropped_lines, dropped_bytes;
  int32_t attempt, level;
  uint32_t len, pad;
} j_log;
/* store_log.c: a task run's log line bounded and buffered (what
   fl_store_task_log does but the journal, which store.c writes): 1 with
   *jl describing it (its text is text[0..jl->len), cut to the bound), 0
   when the task run has ended (the line is not kept), or a negative
   status. */
int fl__store_log_buffer(fl_store_run *run, uint32_t task, int attempt,
                         int level, double at, const char *text, size_t len,
                         j_log *jl);
/* A replay's J_LOG: the line buffered at its own seq, and the task run's
   bounds set from the record (no ring: a replayed run logs no more). */
int fl__store_log_restore(fl_store_run *run, uint32_t task, const j_log *jl,
                          const char *text);
/* J_CLAIM (head's run 0): a fire time claimed in the claims file, then
   the flow's name (flow_len bytes). */
typedef struct j_claim {
  int64_t ms, pid;
  double at;
  uint32_t flow_len, pad;
} j_claim;
typedef struct j_end {
  double ended_at;
  int32_t state;
  uint32_t err_len, counts_len, pad;
} j_end;


/* ---- shared helpers --------------------------------------------------------- */

/* Pending, Running and Retrying are on the way; every other state ends a
   task run. */
static inline int store_is_final_state(int s) {
  return s != FLOWLUA_TASK_PENDING && s != FLOWLUA_TASK_RUNNING &&
         s != FLOWLUA_TASK_RETRYING;
}

/* store_states.c */
extern const char *const fl__store_task_state_names[FL_STORE_TASK_STATES];
const char *fl__store_flow_state_name(int state);

/* store_sql.c. Errors: the handle's message is "state store 'PATH': ...". */
int fl__store_status_of(int sqlite_rc);
int fl__store_set_err(fl_store *st, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int fl__store_sql_err(fl_store *st, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int fl__store_oom(fl_store *st, const char *what);
/* Appends s[0..n) and a NUL to the batch buffer, *off its offset there;
   out of memory, the buffer stays as it was and the error says `what`. */
int fl__store_batch_str(fl_store *st, const char *s, size_t n, size_t *off,
                        const char *what);
int fl__store_exec(fl_store *st, sqlite3_stmt *s, const char *what);
int fl__store_exec_sql(fl_store *st, const char *sql, const char *what);
int fl__store_prepare(fl_store *st, const char *sql, sqlite3_stmt **s, const char *what);
int fl__store_tx_begin(fl_store *st, const char *what);
int fl__store_tx_commit(fl_store *st, const char *what);
void fl__store_tx_rollback(fl_store *st);
void fl__store_bind_opt_double(sqlite3_stmt *s, int i, double v);
void fl__store_bind_text(sqlite3_stmt *s, int i, const char *v, size_t n);
double fl__store_mono_now(void);

/* SQLite's busy handling, counted: a connection given one waits for
   another process's lock up to opts.busy_timeout_ms, in steps of at most
   5 ms (SQLite's own handler sleeps up to 100 ms at a time, so a lock
   released after 10 ms could cost 100), and adds the time it waited to
   the handle's busy_ns: fl_store_busy_seconds. One per connection. */
void fl__store_busy_install(fl_store *st, sqlite3 *db, store_busy *b);
/* store.c */
void fl__store_free_run(fl_store_run *run);
/* The fire_event insert, of the writer and of a replay: ?1 flow, ?2
   outcome, ?3 first, ?4 last, ?5 count, ?6 detail, ?7 at, ?8 pid. It
   writes nothing when the row is there already (a replay of a journal
   whose records were committed). */
extern const char fl__store_fire_event_sql[];

/* items with room for element n (moved when it had to grow), or NULL
   when out of memory, items then being unchanged. */
static inline void *store_grow(void *items, size_t *cap, size_t n, size_t size) {
  if (n < *cap) return items;
  size_t c = *cap ? *cap * 2 : 64;
  void *p = realloc(items, c * size);
  if (p) *cap = c;
  return p;
}

/* GROW(array, cap, n): 0 when array has room for element n, -1 when memory
   ran out. */
#define GROW(array, cap, n)                                                    \
  (store_grow_into((void *)&(array), store_grow((array), &(cap), (n), sizeof *(array))))
static inline int store_grow_into(void *slot, void *grown) {
  if (!grown) return -1;
  memcpy(slot, &grown, sizeof grown);
  return 0;
}


/* store_write.c: a fl__store_flush (freeze the batch, write it: on the writer
   thread, waiting for it when `wait`), one with an extra write after it
   in its own transaction, and the writer's lifetime. */
typedef int (*fl__store_extra_write)(fl_store *st, void *ctx);
int fl__store_flush_with(fl_store *st, const char *what, fl__store_extra_write extra, void *ctx);
int fl__store_flush(fl_store *st, const char *what);
int fl__store_writer_drain(fl_store *st);
size_t fl__store_queued_changes(const fl_store *st);
int fl__store_mem_conn_open(fl_store *st);
void fl__store_mem_queue_free(fl_store *st);
/* Forgets the batches that wait for this connection (a replay that failed:
   they would fail again at every later flush). */
void fl__store_drop_queued(fl_store *st);
/* store_wal.c: FLOWLUA_OK unless the store's -wal file holds committed
   transactions SQLite would silently drop (a frame damaged before them):
   then FLOWLUA_EIO with a message naming the file, what is lost and what to
   do. Reads the file only; run before SQLite opens the database. */
int fl__store_check_wal(fl_store *st);
/* Adds a line to what fl_store_notices returns. */
void fl__store_notice(void *st, const char *message);
void fl__store_writer_stop(fl_store *st);

/* store_pack.c: the task_pack format, many ended task runs to a row. */
typedef struct store_pack_row {
  uint32_t n, state_seq, started_seq; /* started_seq 0: none */
  int32_t map_index, attempts, result_kind;
  int state; /* -1 when read back and unknown */
  double state_at, started_at, ended_at; /* 0: none */
  const char *key, *task, *error;
  const char *result; /* JSON text (result_len bytes), or NULL */
  size_t result_len;
} store_pack_row;

/* A pack is built in j by one begin, adds, and one end. */
void fl__store_pack_begin(fl_buf *j);
void fl__store_pack_add(fl_buf *j, const store_pack_row *r);
void fl__store_pack_end(fl_buf *j);

/* Calls fn for each task run of the pack json[0..len) (its strings valid
   during the call only, kept in scratch): 0; -1 for text that is not a
   pack; or the first non-zero value fn returned. */
typedef int (*store_pack_fn)(void *ctx, const store_pack_row *row);
int fl__store_pack_read(const char *json, size_t len, fl_buf *scratch,
                    store_pack_fn fn, void *ctx);

/* store_begin.c: a run's start (see the file's comment, "Run ids"). */
typedef struct store_begin {
  int64_t rowid, pid, start; /* the run's id; its owner's pid, start time */
  double scheduled_at, started_at;
  const char *str[J_BEGIN_STRINGS]; /* JB_*; NULL for none */
  size_t len[J_BEGIN_STRINGS];
} store_begin;
/* The flow_run and run_graph inserts of a run's start; a start already in
   the file is left as it is (a replay of a start the writer wrote). */
extern const char fl__store_run_insert_sql[];
extern const char fl__store_graph_insert_sql[];
/* The fire table's insert of a claimed fire time: ?1 flow, ?2 ms, ?3 at,
   ?4 host, ?5 pid; a claim the file holds already is left. */
extern const char fl__store_claim_insert_sql[];
/* Hands out n run ids on db, in the caller's transaction: the first in
   *first. The SQLite result code (SQLITE_DONE on success). */
int fl__store_reserve_ids(sqlite3 *db, int64_t n, int64_t *first);
/* Inserts a run's start with the two statements (of fl__store_run_insert_sql
   and fl__store_graph_insert_sql), reset after: SQLITE_DONE or the code. */
int fl__store_insert_begin(sqlite3_stmt *run, sqlite3_stmt *graph,
                           const store_begin *b);
/* A serving process's run start: journalled, and buffered for the writer
   thread; run->rowid is b->rowid (an id of the process's block). */
int fl__store_begin_in_background(fl_store *st, fl_store_run *run,
                                  const store_begin *b);
/* store_write.c: moves the block of ids the writer reserved into the pool
   when the pool is empty, and asks the writer for the next block when the
   pool runs low. */
void fl__store_refill_ids(fl_store *st);
/* Run ids reserved at a time by a serving process, and when the writer
   reserves the next block. */
#define FL_STORE_ID_BLOCK 64
#define FL_STORE_ID_LOW 16

/* store_claims.c: the fire claims file, "<state>.flowlua-fires": which fire
   times processes on this file claimed lately, so that a claim needs no
   lock on the database (see the file's comment). */
/* Takes the file's lock, waiting at most max_wait_ms: FLOWLUA_OK;
   FLOWLUA_EIO with err_busy set when another process held it all that
   time; FLOWLUA_EIO with st->claims_failed set when the file cannot be
   used (claims then go to the database alone). */
int fl__store_claims_lock(fl_store *st, int max_wait_ms);
void fl__store_claims_unlock(fl_store *st);
/* With the lock: whether flow's fire time ms is in the file (1 or 0), and
   adding it. */
int fl__store_claims_find(fl_store *st, const char *flow, int64_t ms);
int fl__store_claims_add(fl_store *st, const char *flow, int64_t ms);
/* The latest fire time of flow in the file: 1 with *ms, 0 when none, or a
   negative status. Takes the lock itself. */
int fl__store_claims_last(fl_store *st, const char *flow, int64_t *ms);
void fl__store_claims_close(fl_store *st);

/* store_open.c: the SQL that takes a store from schema version v to v + 1, or
   NULL; for tests that build a file as an older flowlua left it. */
const char *fl__store_migration_sql(int v);

/* store_write.c: resets the journals once everything in them is in the file;
   lets the journals take turns after batch `frozen` was frozen. */
void fl__store_journal_settled(fl_store *st);
void fl__store_journal_turn(fl_store *st, uint64_t frozen);

/* store_write.c: the last batch the file holds (0: none yet). */
uint64_t fl__store_committed_seq(fl_store *st);

/* store.c, for a replay that starts from what the file holds: puts a task
   run at number n of run (numbers below it nothing declared stay void);
   `fields` gives its state as read back, its strings aside. */
int fl__store_run_restore(fl_store_run *run, uint32_t n, const char *key,
                      const char *task, const task_entry *fields,
                      const char *error);
/* Whether task n of run is declared (not void). */
int fl__store_task_known(const fl_store_run *run, uint32_t n);

/* ---- what readers hand back (store_arena.c, store_detail.c) ---------------
 *
 * Shared by the SQLite readers (store_read.c) and the PostgreSQL ones
 * (pg_read.c), so that a list or a detail from either is freed, and a
 * detail searched, by the same code. */

/* Strings of a query's result, in blocks that never move, freed at once:
   the private arena_ of fl_store_run_list and fl_store_attempt_list, and a
   detail's. */
typedef struct fl__store_arena_block {
  struct fl__store_arena_block *next;
  size_t used, cap;
  char data[];
} fl__store_arena_block;

struct fl_store_arena {
  fl__store_arena_block *head;
};

/* An empty arena, or NULL when out of memory. */
struct fl_store_arena *fl__store_arena_new(void);
/* Frees a and every string in it. NULL-safe. */
void fl__store_arena_free(struct fl_store_arena *a);
/* size bytes from a new block (fl__store_arena_dup when the current block
   is full), or NULL when out of memory. */
char *fl__store_arena_alloc(struct fl_store_arena *a, size_t size);

/* A NUL-terminated copy of s[0..n), or NULL when out of memory. Inline:
   a 100,000-task run's load copies some 300,000 strings. */
static inline char *fl__store_arena_dup(struct fl_store_arena *a,
                                        const char *s, size_t n) {
  fl__store_arena_block *b = a->head;
  char *p;
  if (b && b->cap - b->used >= n + 1) {
    p = b->data + b->used;
    b->used += n + 1;
  } else if (!(p = fl__store_arena_alloc(a, n + 1))) {
    return NULL;
  }
  memcpy(p, s, n);
  p[n] = '\0';
  return p;
}

typedef struct fl__store_key_index {
  const char *key;
  uint32_t i;
} fl__store_key_index;

/* A loaded run (fl_store_run_detail) with what its caller does not see;
   fl_store_run_detail_free and fl_store_detail_find rely on this layout.
   A reader fills pub (its strings in arena, graph_keys in graph, edges in
   edges, tasks malloc'd), then calls fl__store_detail_index. */
typedef struct fl__store_detail {
  fl_store_run_detail pub;
  struct fl_store_arena *arena;
  const char **graph;
  fl_store_edge *edges;
  fl__store_key_index *by_key; /* tasks sorted by key, for fl_store_detail_find */
  /* Each task run's number in the history (task_run.n), ascending with
     the tasks' order, so that what names a task run by number (its log
     lines) finds it without reading the task runs again; NULL when the
     reader did not keep them. */
  uint32_t *numbers;
  size_t cap_subflows;
} fl__store_detail;

/* Appends a subflow the run called (pub.subflows), its strings copied
   into the arena; the readers add them in the order they are shown. NULL
   strings read as "". 0, or -1 when out of memory. */
int fl__store_detail_add_subflow(fl__store_detail *x, const char *task,
                                 size_t task_len, const char *run_id,
                                 size_t run_id_len, int state);
/* An empty detail with its arena, or NULL when out of memory. Freed with
   fl_store_run_detail_free(&x->pub). */
fl__store_detail *fl__store_detail_new(void);
/* Builds the index fl_store_detail_find searches, once pub.tasks is
   complete. 0, or -1 when out of memory. */
int fl__store_detail_index(fl__store_detail *x);
/* Adds to pub.run's counts the task runs loaded, by the rule of
   FL_STORE_COUNT_TASK_RUNS_SQL: every element of a map, and every other
   task run but a map that has elements (for a run without recorded
   counts). After fl__store_detail_index. 0, or -1 when out of memory. */
int fl__store_detail_count(fl__store_detail *x);

/* store_detail.c: a task run's number in its run (task_run.n) and its
   index in a detail (the history names task runs by number, a detail by
   key), ordered by number; attempts ordered as an attempt list is (by
   task run, then attempt). For qsort and bsearch, in both backends. */
typedef struct fl__store_task_number {
  int64_t n;
  size_t index;
} fl__store_task_number;
int fl__store_cmp_task_number(const void *a, const void *b);
int fl__store_cmp_attempt(const void *a, const void *b);

/* store_edges.c: a run's edges parsed from their text (a JSON array of
   [from, to, ordering]) against n_keys keys into x: FL__EDGES_DONE with
   x->pub.edges_state RECORDED (and the edges) or DAMAGED; FL__EDGES_SQL
   for a form left to the store's SQL route (x untouched but for its
   edges freed); FL__EDGES_OOM. */
enum { FL__EDGES_SQL = 0, FL__EDGES_DONE = 1, FL__EDGES_OOM = -1 };
int fl__store_parse_edges(const char *text, size_t len, int64_t n_keys,
                          fl__store_detail *x);
/* A JSON scalar read as an integer, as SQLite's column_int64 reads what
   json_each hands it: true is 1, a number is truncated (and saturated), a
   string is read for a leading number, anything else is 0. */
int64_t fl__store_json_int(const char *v);

#endif
