/*
 * store.h — the durable state store: flow runs, task runs, every state
 * change, results, the cache and scheduled-fire claims, in one SQLite file.
 *
 * Plain C, no Lua, no scheduler. The engine tells the store what happened;
 * the store never decides anything about a run.
 *
 * Threading: a handle is used from one thread (the event loop's); it
 * starts one thread of its own, with its own connection, that writes
 * flushed batches (fl_store_flush_async) while the caller goes on. Several
 * handles — in one process or in several — may share a file: SQLite's WAL
 * mode and a busy timeout serialise their writes, and every write is one
 * IMMEDIATE transaction, so a second process waits instead of corrupting.
 *
 * Cost model, which is what makes a 100,000-task flow affordable:
 *  - fl_store_task_add/_state/_result and fl_store_cache_put only append to
 *    in-memory buffers (no I/O; no allocation per call in the steady state,
 *    but for a copy of an error message);
 *  - fl_store_flush writes everything buffered in ONE transaction, with
 *    statements prepared once for the handle's life; a task run's row is
 *    written once per flush however many changes it had, new rows 32 to a
 *    statement, and a task that runs once and succeeds costs that one row;
 *  - a flush with nothing buffered costs nothing.
 *
 * Durability (what "durable before any dependent starts" means here): when
 * fl_store_flush returns 0 the transaction is committed to the WAL file.
 *  - FL_STORE_SYNC_NORMAL (default): committed with write(2), not fsync. It
 *    survives the death of this process at any point (SIGKILL, a crash, the
 *    OOM killer) — the failures that crash detection and resume exist for.
 *    A power loss or kernel crash may lose the last flushes, never corrupt
 *    the file, and never reorder them: what survives is a prefix of the
 *    flush history, so the store never shows a task started while the
 *    upstream it depended on is not Success.
 *  - FL_STORE_SYNC_FULL: each commit is also fsynced, so it survives a power
 *    loss too, at one fsync per flush (about 0.3 ms on this project's
 *    machines; in a 100,000-task chain, where every task waits for the flush
 *    of its upstream, that is 30 s against a 0.2 s run).
 * The journal (journal.h): every task_add, task_state and task_result is
 * also appended to this process's journal file, a shared memory mapping,
 * as it is recorded: durable against the death of the process at once,
 * without a commit. The first fl_store_mark_crashed after the process died
 * writes its journal's changes into the file (replay). So with a journal
 * (every store but ":memory:") the engine flushes only to keep the file
 * current — when the loop waits, or a batch is big — and a chain of tasks
 * does not pay a commit per task.
 * Without a journal, the rule is: flush before starting a task whose
 * upstream changed state since the last flush.
 *
 * Error handling: functions return FLOWLUA_OK (0) or a negative FLOWLUA_*
 * status; the message — what failed, in which file, and SQLite's reason —
 * is then in fl_store_errmsg(). Nothing leaks on any error path.
 */
#ifndef FL_STORE_H
#define FL_STORE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "buf.h"
#include "flowlua.h"

/* The schema this code writes; older files are migrated on open, newer ones
   refused. */
#define FL_STORE_SCHEMA_VERSION 9
/* PRAGMA application_id of a flowlua store: "flLS" in ASCII. */
#define FL_STORE_APPLICATION_ID 0x666c4c53

/* The default location, relative to the working directory. */
#define FL_STORE_DEFAULT_PATH ".flowlua/state.db"

/*
 * A task state that exists only in the store: the task was Pending, Running
 * or Retrying when the process that ran it died (fl_store_mark_crashed).
 * Task states in this API are flowlua_task_state values or this one.
 */
#define FL_STORE_TASK_CRASHED FLOWLUA_TASK_STATE_COUNT
#define FL_STORE_TASK_STATES (FLOWLUA_TASK_STATE_COUNT + 1)

/* Static names: "Success", ..., "Crashed"; "?" out of range. */
const char *fl_store_task_state_name(int state);
/* The inverse of the name functions; -1 for an unknown name. */
int fl_store_task_state_parse(const char *name);
int fl_store_flow_state_parse(const char *name);
/* A log level (FLOWLUA_LOG_DEBUG..ERROR) as task_log stores it: "DEBUG",
   "INFO", "WARN", "ERROR"; "?" out of range. The parse: -1 unknown. */
const char *fl_store_log_level_name(int level);
int fl_store_log_level_parse(const char *name);

typedef struct fl_store fl_store;

enum { FL_STORE_SYNC_NORMAL = 0, FL_STORE_SYNC_FULL = 1 };

typedef struct fl_store_options {
  int sync;            /* FL_STORE_SYNC_*; default NORMAL (see above) */
  int busy_timeout_ms; /* how long a write waits for another process's
                          transaction before failing; default 5000 */
  int must_exist;      /* 1: do not create a missing file (for `runs` and
                          `show`): fl_store_open returns FLOWLUA_OK with
                          *out = NULL. Default 0. */
  int reading;         /* 1: for reading only (`runs`, `show`, `report`):
                          no journal is created, and when the file or its
                          folder cannot be written (a read-only mount,
                          another user's history) the file is opened
                          read-only: nothing is created or written, and
                          fl_store_mark_crashed does nothing. Default 0. */
} fl_store_options;

void fl_store_options_init(fl_store_options *o);

/*
 * Opens (or creates) the store at path. ":memory:" is a private in-memory
 * store (`--state :memory:`). Otherwise a missing parent folder is created
 * (one level: ".flowlua", not a whole mistyped path) and the file is checked
 * BEFORE anything is written to it:
 *   - a file that is not SQLite, a SQLite database of another application
 *     (application_id) or with tables of its own, and one written by a newer
 *     flowlua (user_version above FL_STORE_SCHEMA_VERSION) are refused with
 *     FLOWLUA_EIO and a message naming the file and the reason, and left
 *     byte for byte as they were;
 *   - an empty file, or an empty SQLite database, becomes a new store;
 *   - an older store is migrated, all steps in one transaction.
 * opts may be NULL for the defaults; it is copied. path is copied.
 * On success *out owns the handle (fl_store_close). On failure *out is NULL
 * and err (errlen bytes, may be 0) holds the message.
 */
int fl_store_open(const char *path, const fl_store_options *opts,
                  fl_store **out, char *err, size_t errlen);

/*
 * Flushes what is buffered (best effort: call fl_store_flush first to see a
 * failure), ends every run handle still open without changing its recorded
 * state (a run left Running is found by fl_store_mark_crashed once this
 * process is gone), and frees everything. NULL is allowed.
 */
void fl_store_close(fl_store *st);

/* What the user should be told of that is not a failure, one message per
   line ("" if none): a journal of a dead process that could not be
   replayed and was set aside, a file with a journal's name that was not
   touched (a symbolic link, another user's). Set by fl_store_open and
   fl_store_mark_crashed; the caller logs them as warnings, then clears. */
const char *fl_store_notices(const fl_store *st);
void fl_store_notices_clear(fl_store *st);

/* Seconds this handle's connections have waited, in all, for locks other
   processes held on the database (SQLite's busy waits): what lets a caller
   tell "blocked by the state database" from other stalls. */
double fl_store_busy_seconds(const fl_store *st);

/* The message of the last failure on this handle; "" if none. Owned by the
   handle, valid until the next call on it. */
const char *fl_store_errmsg(const fl_store *st);
/* The path given to fl_store_open. Owned by the handle. */
const char *fl_store_path(const fl_store *st);

/* ---- who owns a run ------------------------------------------------------ */

/*
 * A process, identified so that a reused pid is not mistaken for the owner:
 * the host, the kernel's boot id (a pid and a start time mean nothing across
 * a reboot), the pid, and the process's start time in clock ticks since boot
 * (/proc/PID/stat field 22). Fields that cannot be read are empty or 0.
 */
typedef struct fl_store_owner {
  char host[256];
  char boot_id[40];
  int64_t pid;
  int64_t start_time;
} fl_store_owner;

/* Fills *o for the calling process. Never fails (unreadable parts stay
   empty). */
void fl_store_owner_self(fl_store_owner *o);
/* Fills *o for process pid on this host: 0, or -1 when there is no such
   process (or it is a zombie, which will never finish a run). */
int fl_store_owner_of(pid_t pid, fl_store_owner *o);

/* ---- writing a run ------------------------------------------------------- */

/* A run being written by this handle. Owned by the store; freed by
   fl_store_run_end or fl_store_close. */
typedef struct fl_store_run fl_store_run;

/* An edge of a run's task graph, between two of its graph keys. Stored
   with the run, so that reading a history never needs the script. */
typedef struct fl_store_edge {
  uint32_t from, to; /* indexes into the graph keys; from runs first */
  int ordering;      /* 1: node:after (no data), 0: a data edge */
} fl_store_edge;

typedef struct fl_store_run_info {
  const char *run_id;      /* required, unique: the engine's UUID */
  const char *flow;        /* required: the flow's name */
  const char *script;      /* the script's path, or NULL */
  const char *params_json; /* the params as a JSON object (masked), or NULL */
  double scheduled_at;     /* wall clock, seconds since the epoch; 0 = not a
                              scheduled fire */
  double started_at;       /* wall clock */
  /* The graph's task keys ("fetch", "fetch#2"; not map elements), in graph
     order: what resume compares the current graph with. May be empty. */
  const char *const *keys;
  size_t n_keys;
  /* The graph's edges between those keys (may be none). */
  const fl_store_edge *edges;
  size_t n_edges;
  const char *resumed_from; /* the run id this run resumes, or NULL */
  /* A subflow's run: the run id of the flow run that called it and the key
     of that run's task run that made the call ("child", "child#2",
     "child[3]"). Both NULL for every other run; both or neither. */
  const char *parent_run_id;
  const char *parent_task;
  /* Who runs it; NULL = this process. Tests pass another owner. */
  const fl_store_owner *owner;
} fl_store_run_info;

/*
 * Records a new flow run in state Running and commits it — together with
 * anything already buffered — before returning, so the run and its owner
 * are on disk before any of its tasks starts. Every string is copied.
 * On success *out is the run's handle. A run id already in the store is
 * FLOWLUA_EINVAL. In a store that writes in the background
 * (fl_store_write_in_background), a run that resumes none and has this
 * process as its owner is journalled instead (as durable: a replay inserts
 * it) and inserted by the writer thread, with an id from the block the
 * process reserved: no wait for another process's lock.
 */
int fl_store_run_begin(fl_store *st, const fl_store_run_info *info,
                       fl_store_run **out);

/* The run id given to fl_store_run_begin. Owned by the run handle. */
const char *fl_store_run_id(const fl_store_run *run);

/*
 * Declares a task run: the stable key of one task call ("fetch", "fetch#2"
 * for the 2nd call, "fetch[3]" for element 3 of a map), its task name, and
 * its 1-based map index (0 when it is not a map element). Buffered: nothing
 * is written until its first state change is flushed. Both strings are
 * copied. *task_out is the task run's number in this run, for the calls
 * below. A key declared twice in one run is FLOWLUA_EINVAL.
 */
int fl_store_task_add(fl_store_run *run, const char *key, const char *task,
                      int map_index, uint32_t *task_out);

/*
 * Declares a map element, as fl_store_task_add does, for a caller that
 * knows its key is new: its map's key with "[i]" appended, unique among
 * the map's elements and the other maps' by construction. Only keys
 * declared with fl_store_task_add(_many) that hold a '[' could equal it,
 * and only those are compared with it: a 1,000,000-element map spends no
 * time in a set of a million keys.
 */
int fl_store_task_add_element(fl_store_run *run, const char *key,
                              const char *task, int map_index,
                              uint32_t *task_out);

/*
 * Declares n task runs at once, as n calls of fl_store_task_add with map
 * index 0 would (tasks[i] NULL: the key is the task name), numbered from
 * *first_out on; far cheaper for a graph of many tasks. On failure (a key
 * used twice, among them or with one declared before) none is declared.
 */
int fl_store_task_add_many(fl_store_run *run, const char *const *keys,
                           const char *const *tasks, uint32_t n,
                           uint32_t *first_out);

/*
 * Records a state change of a task run at wall-clock time `at`: the new
 * state (a flowlua_task_state), the attempt it belongs to (1-based; 0 when
 * no attempt ran, e.g. Skipped or Cached), and its error (NULL if none; the
 * caller masks secrets). Buffered; copied. The first Running sets the task
 * run's start, a final state (anything but Pending, Running and Retrying)
 * its end; its error, as `show` prints it, is its latest change's.
 *
 * In the file, a task_run row holds its first Running and its latest
 * change; task_event holds the changes in between, and the view
 * task_history lists them all. A task that runs once and succeeds thus
 * costs one row, however many changes it had.
 */
int fl_store_task_state(fl_store_run *run, uint32_t task, int state,
                        int attempt, double at, const char *error);

/*
 * Records a task run's result as JSON text (len bytes; copied). json NULL
 * means the result could not be serialised: the task run is then recorded
 * as not resumable, and a resume runs it again. Buffered. A result over
 * FL_STORE_MAX_RESULT bytes is refused (FLOWLUA_EINVAL) before it reaches
 * the journal: packed, it could exceed what one SQLite value may hold, and
 * neither the run's end nor a replay could write it.
 */
#define FL_STORE_MAX_RESULT ((size_t)256 << 20)
int fl_store_task_result(fl_store_run *run, uint32_t task, const char *json,
                         size_t len);

/*
 * Records that attempt `attempt` (1-based) of a task run runs in the worker
 * process pid on host (NULL: this process's host), for `show` and the
 * report: a worker task's attempt, recorded when a worker takes it, so a
 * run that crashes mid-attempt still tells where it ran. Buffered and
 * journalled like a state change; a later call for the same attempt
 * replaces it.
 */
int fl_store_task_worker(fl_store_run *run, uint32_t task, int attempt,
                         const char *host, int64_t pid);

/*
 * Log lines a task run keeps in the history (table task_log): the last
 * FL_STORE_LOG_LINES of them, and of those only the latest that fit in
 * FL_STORE_LOG_BYTES bytes of text. Bounded so that a task that logs in a
 * loop costs the history (and `show`, and the UI's pages) what one page
 * of text costs, not its whole output; the last lines, because the end
 * of a log is what tells why a task failed. What is dropped is counted
 * (lines and bytes, table task_log_dropped). A single line longer than
 * the byte bound keeps its first FL_STORE_LOG_BYTES bytes; the rest of it
 * counts as dropped bytes.
 */
#define FL_STORE_LOG_LINES 1000
#define FL_STORE_LOG_BYTES (64 * 1024)

/*
 * Records a log line of a task run (what flow.log.* wrote inside it):
 * its attempt (1-based), its time, its level (a FLOWLUA_LOG_* value), and
 * its text (len bytes, already masked by the caller: a secret never
 * reaches the store). Buffered and written with the task run's changes by
 * the same batches, and journalled as they are (a process killed before a
 * flush leaves its lines to the replay: they are often what says why it
 * died). Lines that the bounds above push out are dropped from the buffer
 * too, so a task that logs a million lines between two flushes holds no
 * more memory than the bound (its journal holds them until the next
 * flush). A run that logs nothing costs nothing. A line recorded after
 * the task run's final state (nothing in the engine does) is not kept.
 */
int fl_store_task_log(fl_store_run *run, uint32_t task, int attempt,
                      int level, double at, const char *text, size_t len);

/* 1 when every change is durable as soon as it is recorded (a journal:
   see "Durability"), so fl_store_flush only keeps the file current; 0
   for ":memory:". */
int fl_store_journalled(const fl_store *st);

/* Changes buffered and not yet handed to a flush (fl_store_pending also
   counts those handed over and not yet written). Cheap: no lock. */
size_t fl_store_buffered(const fl_store *st);

/* How many writes are buffered: task runs whose row changed, state changes
   for the history, cache entries. 0: a flush would do nothing. */
size_t fl_store_pending(const fl_store *st);

/*
 * Writes everything buffered, of every open run, in one transaction, and
 * commits it (see "Durability" above). 0 at once when nothing is buffered.
 * On failure the transaction is rolled back and everything stays buffered,
 * so a later flush retries it.
 */
int fl_store_flush(fl_store *st);

/*
 * The same, without waiting: the batch is handed to the store's writer
 * thread, which commits it (with any others queued) in the background.
 * The engine's way to keep the file current while a run goes, since the
 * journal has made every change durable already; in a PostgreSQL history
 * (no journal) nothing handed over is durable until a fl_store_flush has
 * waited for it. Returns a failure of an
 * earlier background write, if one is not reported yet (the failed batch
 * is written again by the next flush). For ":memory:" it is fl_store_flush.
 */
int fl_store_flush_async(fl_store *st);

/*
 * Asks for runs' starts and ends (fl_store_run_begin, fl_store_run_end),
 * fire claims and fire events (fl_store_claim_fire, fl_store_fire_event)
 * to be journalled and written by the writer thread,
 * so that none of them waits for another process's lock on the database: what
 * a serving process wants. Without it they are written before returning
 * (cheaper for a process that runs once and exits: no writer thread to
 * start), unless the writer thread runs already. No effect on ":memory:".
 */
void fl_store_write_in_background(fl_store *st);

/*
 * Gives the run's task runs' counts by state (indexed as
 * fl_store_task_state_name; n_states of them), as the engine counted them
 * for its summary, for fl_store_run_end to record: the summary, runs, show
 * and report then give the same numbers. Without it, fl_store_run_end
 * counts the recorded task runs the same way (a map with elements is
 * counted by its elements, not as a task run of its own).
 */
void fl_store_run_counts(fl_store_run *run, const size_t *by_state,
                         size_t n_states);

/*
 * Ends a run: records its final state (a flowlua_flow_state), end time,
 * error (NULL if none) and its task runs' counts by state (see
 * fl_store_run_counts). With a journal (every store but ":memory:"), when
 * fl_store_write_in_background was called or the writer thread runs, the
 * end is journalled — durable: if this process dies before the file holds
 * it, the replay (fl_store_mark_crashed) records it — and handed to the
 * writer thread with the run's last changes, without waiting for the
 * database: another process holding its lock does not hold up the caller
 * (a serving loop). The file shows the run Running until the writer has
 * committed the end; this handle's own reads (fl_store_list_runs,
 * fl_store_load_run) and fl_store_flush wait for it. Otherwise it flushes
 * and commits before returning. The handle is freed whatever the
 * outcome; on failure the run stays Running in the file until
 * fl_store_mark_crashed finds this process gone.
 */
int fl_store_run_end(fl_store_run *run, int state, double ended_at,
                     const char *error);

/* ---- crash detection and scheduled fires --------------------------------- */

/*
 * Marks Crashed every run recorded as Running on this host whose owner is
 * gone: no such pid, a zombie, the same pid with another start time (the pid
 * was reused), or another boot. Their task runs still Pending, Running or
 * Retrying become Crashed too: a state change at `now`, and an end at the
 * run's last sign of life (its latest recorded state change), which is
 * also the run's end. Runs of other hosts are left alone: their processes
 * cannot be seen from here. *n_marked (may be NULL) counts the runs marked.
 * Call it at start-up (and before `runs`/`show`, so they show the truth),
 * before resolving a run to resume. Safe against a second process doing
 * the same at the same time.
 */
int fl_store_mark_crashed(fl_store *st, double now, size_t *n_marked);

/*
 * Claims the fire of `flow` at `scheduled_at` (wall clock; compared to the
 * millisecond) for this process: 1 when this call got it, 0 when some
 * process (this one included) claimed it before, or a negative status. Two
 * processes serving one flow on one file therefore never both run the same
 * scheduled time. A file store decides in its claims file (store_claims.c)
 * and the fire table, under a lock held for microseconds, and records the
 * claim in the fire table (by the writer thread, when writing in the
 * background); ":memory:" in its own transaction. A fire claimed by a
 * process that died before starting its run stays claimed: at most once,
 * not at least.
 */
int fl_store_claim_fire(fl_store *st, const char *flow, double scheduled_at,
                        double now);

/*
 * The same, waiting for another process's lock (on the claims file, or on
 * the database when that file cannot be used) at most max_wait_ms (<= 0,
 * or more than the busy timeout: the busy timeout).
 * When it is still held after that, a negative status with
 * fl_store_lock_busy(st) = 1, and nothing is claimed: a serving loop bounds
 * its wait by its next fire time, so that a lock held for long costs fire
 * times it reports one by one, on time, instead of stalling the loop.
 */
int fl_store_claim_fire_within(fl_store *st, const char *flow,
                               double scheduled_at, double now,
                               int max_wait_ms);

/* 1 when the last failure on st was another process holding a lock on the
   database for longer than the call would wait. */
int fl_store_lock_busy(const fl_store *st);

/*
 * The latest fire time of `flow` claimed by any process (what a serving
 * process catches up from): 1 with *out set, 0 when none was ever claimed,
 * or a negative status.
 */
int fl_store_last_fire(fl_store *st, const char *flow, double *out);

/*
 * Records what became of fire times that did not simply start a run:
 * `outcome` is "skipped" (overlap), "queued", "missed" (passed unseen, or
 * beyond catchup_window), "dropped" (still queued when serving stopped),
 * "taken" (another process on this file ran it) or "paused" (the flow is
 * paused: flowlua pause); `first` is the fire time (the first of `count`,
 * `last` the last, 0 for one), `detail` the message
 * that was logged. Written at once, in its own transaction.
 */
int fl_store_fire_event(fl_store *st, const char *flow, const char *outcome,
                        double first, double last, size_t count,
                        const char *detail, double now);

/* ---- cache (cache_key / cache_for) --------------------------------------- */

/*
 * Looks up the stored result of task `task` for cache key `key`: 1 on a hit
 * — a result stored at or after now - max_age (max_age < 0: any age) — with
 * *json and *len set
 * (owned by the handle, valid until the next fl_store_cache_get or close);
 * 0 on a miss; or a negative status. Sees puts not yet flushed.
 */
int fl_store_cache_get(fl_store *st, const char *task, const char *key,
                       double now, double max_age, const char **json,
                       size_t *len);

/* Stores (replacing) the result of `task` for `key`, at time `at`. Buffered
   and flushed with the task's state changes. Everything is copied. */
int fl_store_cache_put(fl_store *st, const char *task, const char *key,
                       const char *json, size_t len, double at);

/* ---- flows and cancels asked for from outside (store_flows.c) ------------ */

/* A flow as its script defines it: what the history alone tells of it
   (flowlua ui's flows page and start form). Strings are owned by whoever
   fills the struct: the caller for fl_store_put_flows, the list for
   fl_store_list_flows. */
typedef struct fl_store_flow_def {
  const char *flow;
  const char *script;        /* absolute path, on host */
  const char *host;          /* where the script was loaded */
  const char *script_sha256; /* of the script's bytes */
  const char *params_json;   /* the flow's defaults, masked: a JSON object */
  const char *schedule_json; /* the schedule as JSON, or NULL: none */
  double updated_at;         /* wall clock */
  /* Each param described, a JSON object by name: {"n": {"type":
     "integer", "default": 5, "min": 1}, "day": {"type": "date",
     "required": true}}, masked; NULL when recorded by a flowlua that did
     not describe them (before schema 8). */
  const char *param_types_json;
  /* Read back only (fl_store_list_flows): the schedule's fields, taken
     out of schedule_json by the database, NULL / 0 when absent. */
  struct {
    const char *kind, *cron, *timezone, *dst_missing, *dst_repeated;
    double every, start, until;
  } sched;
} fl_store_flow_def;

typedef struct fl_store_flow_list {
  fl_store_flow_def *items;
  size_t n;
  char *strings; /* what items' strings point into */
} fl_store_flow_list;

/* Records (replacing) the definitions of n flows in one transaction.
   Written directly, not buffered: call it before
   fl_store_write_in_background. */
int fl_store_put_flows(fl_store *st, const fl_store_flow_def *defs, size_t n);

/* Every recorded flow, by name. *out is zeroed first; free it with
   fl_store_flow_list_free (also after a failure). */
int fl_store_list_flows(fl_store *st, fl_store_flow_list *out);
void fl_store_flow_list_free(fl_store_flow_list *l);

/* The names of the flows that have runs, in order (a flow run by an older
   flowlua, or from a script given as a string, has no definition). */
typedef struct fl_store_name_list {
  char **names;
  size_t n;
} fl_store_name_list;
int fl_store_run_flows(fl_store *st, fl_store_name_list *out);
void fl_store_name_list_free(fl_store_name_list *l);

/* What became of flow's latest fire times that started no run (skipped,
   missed, ...), newest first, at most limit. */
typedef struct fl_store_fire_event_row {
  char *outcome, *detail;
  double scheduled_at, last_at, at;
  int64_t count;
} fl_store_fire_event_row;
typedef struct fl_store_fire_event_list {
  fl_store_fire_event_row *rows;
  size_t n;
} fl_store_fire_event_list;
int fl_store_fire_events(fl_store *st, const char *flow, int limit,
                         fl_store_fire_event_list *out);
void fl_store_fire_event_list_free(fl_store_fire_event_list *l);

/* Asks the process running run `run_id` (a full id) to cancel it: 0 when
   asked (again: the first time stays), FLOWLUA_EINVAL when there is no such
   run, FLOWLUA_ESTATE when it is not Running (the message says its state).
   `by` says who asked ("flowlua ui on HOST"). */
int fl_store_request_cancel(fl_store *st, const char *run_id, const char *by,
                            double now);

/* Which of the n runs (full ids) someone asked to cancel: asked[i] set to
   1 or 0. For the process running them, which looks about once a second. */
int fl_store_cancel_requests(fl_store *st, const char *const *run_ids,
                             size_t n, unsigned char *asked);

/* ---- paused flows (store_pause.c) ------------------------------------------ */

/* A flow's pause as the history holds it; by is owned (fl_store_pause_clear). */
typedef struct fl_store_pause {
  int paused;
  double since; /* when it was paused (the first pause of several) */
  char *by;     /* who paused it ("ann@host") */
} fl_store_pause;

/* Pauses (paused 1) or unpauses (0) flow's schedule: *changed 1 when that
   changed something, 0 when the flow already was so. A second pause keeps
   the first one's time and author. Per flow, not per run: prune leaves it. */
int fl_store_set_pause(fl_store *st, const char *flow, int paused,
                       const char *by, double now, int *changed);

/* Whether flow is paused (out->paused 0 when not), for the serving process
   at each fire time and for the flows report. */
int fl_store_get_pause(fl_store *st, const char *flow, fl_store_pause *out);
void fl_store_pause_clear(fl_store_pause *p);

/* ---- reading runs back (runs, show, resume) ------------------------------- */

/* One flow run. Every string is owned by the list or detail that holds it;
   NULL when not recorded. Times are wall clock; 0 = not recorded. */
typedef struct fl_store_run_row {
  const char *run_id, *flow, *script, *params_json, *error, *resumed_from;
  /* A subflow's run: its parent's run id and the parent's task run that
     called it (fl_store_run_info); both NULL for every other run. The
     parent may have been pruned since: the id is kept as text. */
  const char *parent_run_id, *parent_task;
  int state; /* flowlua_flow_state, or -1 for a name this code does not know */
  double scheduled_at, started_at, ended_at;
  size_t n_tasks;                          /* task runs recorded */
  size_t by_state[FL_STORE_TASK_STATES];   /* task runs per state */
  int64_t owner_pid;
  const char *owner_host;
} fl_store_run_row;

typedef struct fl_store_run_list {
  fl_store_run_row *rows; /* newest first */
  size_t n;
  struct fl_store_arena *arena_; /* private: holds the rows' strings */
} fl_store_run_list;

/*
 * Lists runs, newest first: of one flow (NULL = all), at most `limit`
 * (<= 0 = no limit). *out is overwritten; free it with
 * fl_store_run_list_free even on failure.
 */
int fl_store_list_runs(fl_store *st, const char *flow, int limit,
                       fl_store_run_list *out);

/* Which runs fl_store_list_runs_where lists (the web UI's filters). */
typedef struct fl_store_run_filter {
  const char *flow;   /* NULL: every flow */
  int state;          /* flowlua_flow_state, or -1: any state */
  const char *before; /* a full run id: only the runs listed after it in
                         the newest-first order (older, or as old with a
                         lower row id); NULL: from the newest */
  int limit;          /* <= 0: no limit */
  /* Runs that started at or after since and before until (wall clock;
     0: no bound). */
  double since, until;
} fl_store_run_filter;

/*
 * fl_store_list_runs with a state and a page: FLOWLUA_EINVAL, with a
 * message, when `before` names no run. Pages by (started_at, row id), so
 * runs that started in the same instant are neither lost nor repeated.
 */
int fl_store_list_runs_where(fl_store *st, const fl_store_run_filter *f,
                             fl_store_run_list *out);
void fl_store_run_list_free(fl_store_run_list *l);

/* What changes when a run or any of its task runs changes: what a watcher
   (the web UI's live page) compares to learn that something did, without
   loading the run. The two counters grow with every change while the run
   goes; their values are each backend's own (compare marks, do not read
   them): PostgreSQL counts task_run rows and sums their state_seq (each
   change of a task run adds one to it); SQLite does the same over
   task_row and adds the packs' count and highest id (a pack is written
   once, never changed: parsing them, as the view task_run does, would
   cost a 100,000-task run a good part of a second at each look). */
typedef struct fl_store_run_mark {
  int state;             /* flowlua_flow_state, or -1 unknown */
  double ended_at;       /* 0 while it runs */
  int64_t task_runs;     /* grows as task runs are recorded */
  int64_t changes;       /* grows with every change of them */
} fl_store_run_mark;

/*
 * The mark of the run with this full id: FLOWLUA_EINVAL, with a message,
 * when no run has it. A run that has ended changes no more (a resume is a
 * new run), so only a Running one costs a pass over its task runs.
 */
int fl_store_run_mark_get(fl_store *st, const char *run_id,
                          fl_store_run_mark *out);

enum {
  FL_STORE_RESULT_NONE = 0,   /* none recorded: a task that succeeded
                                 returned nothing (nil) */
  FL_STORE_RESULT_JSON = 1,   /* result holds JSON text */
  FL_STORE_RESULT_OPAQUE = 2  /* could not be serialised: not resumable */
};

/* One task run of a stored run. Strings owned by the detail. */
typedef struct fl_store_task_row {
  const char *key, *task, *error;
  const char *result;  /* JSON text when result_kind is JSON, else NULL */
  size_t result_len;
  int map_index;
  int state;           /* as in fl_store_task_state_name; -1 unknown */
  int attempts;
  int result_kind;     /* FL_STORE_RESULT_* */
  double started_at, ended_at;
  /* The worker process its latest attempt ran in (fl_store_task_worker):
     worker_pid 0 and worker_host NULL when it ran in the driver. */
  const char *worker_host;
  int64_t worker_pid;
} fl_store_task_row;

enum {
  FL_STORE_EDGES_NONE = 0,     /* recorded by a flowlua before 0.6.0 */
  FL_STORE_EDGES_RECORDED = 1,
  FL_STORE_EDGES_DAMAGED = 2   /* not JSON, or an edge names no graph key */
};

/* A run that a run called as a subflow (fl_store_run_info.parent_*). */
typedef struct fl_store_subflow {
  const char *task;   /* the calling run's task run key ("child#2") */
  const char *run_id; /* the subflow's own run */
  int state;          /* its flowlua_flow_state, or -1 unknown */
} fl_store_subflow;

typedef struct fl_store_run_detail {
  fl_store_run_row run;
  const char *const *graph_keys; /* as given to fl_store_run_begin */
  size_t n_graph_keys;
  /* The graph's edges, as given to fl_store_run_begin, when edges_state is
     FL_STORE_EDGES_RECORDED; else none. */
  const fl_store_edge *edges;
  size_t n_edges;
  int edges_state; /* FL_STORE_EDGES_* */
  fl_store_task_row *tasks;      /* in the order they were declared */
  size_t n_tasks;
  /* The runs this one called as subflows, by the child's started_at then
     its row id (the order they began). Strings owned by the detail. */
  fl_store_subflow *subflows;
  size_t n_subflows;
  /* The run this one resumes, when the caller loaded it too (a resume of
     a resume that crashed before recording what it kept); owned, and
     freed with this one. NULL otherwise. */
  struct fl_store_run_detail *resumed;
} fl_store_run_detail;

/*
 * Loads one run with its task runs. ref is a full run id, an unambiguous
 * prefix of one, or "last" (the newest run); with flow non-NULL only that
 * flow's runs are considered. No match and an ambiguous prefix are
 * FLOWLUA_EINVAL with a message that says so (listing the candidates).
 * On success *out owns the detail (fl_store_run_detail_free).
 */
int fl_store_load_run(fl_store *st, const char *ref, const char *flow,
                      fl_store_run_detail **out);
void fl_store_run_detail_free(fl_store_run_detail *d);

/* The task run with this key, or NULL. O(log n). */
const fl_store_task_row *fl_store_detail_find(const fl_store_run_detail *d,
                                              const char *key);

/* One attempt of a task run, read back from its state changes (the
   report's timeline). */
typedef struct fl_store_attempt {
  size_t task;       /* its task run: an index into the detail's tasks */
  int attempt;       /* 1-based */
  int state;         /* the change that ended it: Success, Failed, Retrying
                        (failed, and retried), TimedOut, Cancelled, Crashed;
                        Running when nothing ended it yet; -1 unknown */
  double started_at; /* its Running */
  double ended_at;   /* 0 when nothing ended it yet */
  const char *error; /* the ending change's error, or NULL */
  const char *worker_host; /* where it ran, for a worker task's attempt */
  int64_t worker_pid;      /* (fl_store_task_worker); else NULL and 0 */
} fl_store_attempt;

typedef struct fl_store_attempt_list {
  fl_store_attempt *items; /* by task run (the detail's order), then attempt */
  size_t n;
  struct fl_store_arena *arena_; /* private: holds the errors */
} fl_store_attempt_list;

/*
 * Reads every attempt of the run d holds, from its task runs' state
 * changes: attempt k of a task run starts at its k-th Running and ends at
 * the change after it. Only attempts 1..attempts of each task run count
 * (a map's own row goes Running while its elements run, but is no
 * attempt). *out is overwritten; free it with fl_store_attempt_list_free
 * even on failure.
 */
int fl_store_load_attempts(fl_store *st, const fl_store_run_detail *d,
                           fl_store_attempt_list *out);
void fl_store_attempt_list_free(fl_store_attempt_list *l);

/* ---- a task run's log lines and state changes (store_logs.c) ------------- */

/* One kept log line of a task run. */
typedef struct fl_store_log_line {
  size_t task;       /* its task run: an index into the detail's tasks */
  int64_t seq;       /* 1-based, in the task run's order, dropped included */
  int attempt;       /* 1-based */
  int level;         /* FLOWLUA_LOG_*; -1 for a name this code does not know */
  double at;         /* wall clock */
  const char *line;  /* masked when it was recorded */
} fl_store_log_line;

/* What a task run's bounds dropped (none listed when nothing was). */
typedef struct fl_store_log_drop {
  size_t task;
  int64_t lines, bytes;
} fl_store_log_drop;

typedef struct fl_store_log_list {
  fl_store_log_line *lines; /* by task run (the detail's order), then seq */
  size_t n;
  fl_store_log_drop *drops; /* by task run */
  size_t n_drops;
  struct fl_store_arena *arena_; /* private: holds the lines' text */
} fl_store_log_list;

/*
 * Reads the kept log lines of the run d holds, of one task run (key) or,
 * with key NULL, of all. A key the run does not have reads as none.
 * *out is overwritten; free it with fl_store_log_list_free even on
 * failure.
 */
int fl_store_load_logs(fl_store *st, const fl_store_run_detail *d,
                       const char *key, fl_store_log_list *out);
void fl_store_log_list_free(fl_store_log_list *l);
/* The lines of task run `task` in l (a run of *n lines, or NULL with *n 0)
   and its drop (NULL when nothing was dropped). */
const fl_store_log_line *fl_store_log_lines_of(const fl_store_log_list *l,
                                               size_t task, size_t *n);
const fl_store_log_drop *fl_store_log_drop_of(const fl_store_log_list *l,
                                              size_t task);

/* One state change of a task run (the view task_history). */
typedef struct fl_store_task_event {
  int64_t seq;
  double at;
  int state;          /* as in fl_store_task_state_name; -1 unknown */
  int attempt;        /* 0 when no attempt ran (Skipped, Cached) */
  const char *error;  /* NULL when none */
  const char *worker_host; /* where its attempt ran, for a worker task's */
  int64_t worker_pid;      /* (fl_store_task_worker); else NULL and 0 */
} fl_store_task_event;

typedef struct fl_store_event_list {
  fl_store_task_event *items; /* in order (seq) */
  size_t n;
  struct fl_store_arena *arena_;
} fl_store_event_list;

/* Reads every state change of task run `key` of the run d holds, in
   order. A key the run does not have reads as none. *out is overwritten;
   free it with fl_store_event_list_free even on failure. */
int fl_store_load_task_events(fl_store *st, const fl_store_run_detail *d,
                              const char *key, fl_store_event_list *out);
void fl_store_event_list_free(fl_store_event_list *l);

/* Whether a resume may keep this task run's result instead of running it:
   it ended Success or Cached with a JSON result, or with none recorded,
   which is nil (the engine records no result for nil: most tasks that
   write files return nothing, and this spares them the cost). */
int fl_store_task_reusable(const fl_store_task_row *t);

/*
 * Checks that stored run d may be resumed as a run of `flow` whose graph
 * has keys[0..n): the run ended Failed, Cancelled or Crashed, belongs to
 * that flow, and its graph has the same task keys. On a mismatch of the
 * keys, msg gets exactly what differs ("task 'load' was added; task 'fetch'
 * is gone"). Returns 0 when it may be resumed; FLOWLUA_ESTATE for a run
 * that did not end so, or of another flow; FLOWLUA_EBUILD when the graph
 * differs — unless `force`, when it returns 0 and msg still describes the
 * difference. msg (may be NULL) is appended to.
 */
int fl_store_check_resume(const fl_store_run_detail *d, const char *flow,
                          const char *const *keys, size_t n, int force,
                          fl_buf *msg);

/* The fire times (scheduled_at) in [from, to] for which a run of `flow`
   ended Success, ascending, in *out (malloc'd; free it) and their number
   in *n: what a backfill leaves alone. */
int fl_store_succeeded_fires(fl_store *st, const char *flow, double from,
                             double to, double **out, size_t *n);

/* ---- deleting old runs (store_prune.c) ------------------------------------ */

typedef struct fl_store_prune_opts {
  double older_than; /* seconds: runs that ended longer ago than this go */
  int keep_failed;   /* 1: only runs that ended Success go */
  const char *flow;  /* only this flow's runs; NULL: every flow's */
  int vacuum;        /* 1: VACUUM a file without incremental vacuum */
} fl_store_prune_opts;

typedef struct fl_store_prune_result {
  size_t runs, task_runs;     /* deleted */
  size_t fire_events, fire_claims;
  size_t steps;               /* transactions */
  double longest_step;        /* seconds the longest one held the lock */
  size_t free_pages_kept;     /* pages freed but kept in the file (no
                                 incremental vacuum, no VACUUM asked) */
  int vacuumed;               /* a VACUUM ran */
} fl_store_prune_result;

typedef struct fl_store_prune fl_store_prune;

/*
 * Deletes the runs (their task runs, state changes, workers and graphs)
 * that ended more than o->older_than seconds before now, never a Running
 * one; fire events and fire claims older than that too, but each flow's
 * newest claim; then gives the space back (see store_prune.c). The work
 * is done by fl_store_prune_step, a transaction of about 15 ms a call, so
 * that other writers wait no longer than that: 1 while there is more, 0
 * when done, or a FLOWLUA_* status (the step rolled back; the next call
 * tries it again). fl_store_prune_done tells what was done so far.
 */
int fl_store_prune_begin(fl_store *st, const fl_store_prune_opts *o,
                         double now, fl_store_prune **out);
int fl_store_prune_step(fl_store_prune *p);
const fl_store_prune_result *fl_store_prune_done(const fl_store_prune *p);
void fl_store_prune_free(fl_store_prune *p);

/* ---- copying a whole history (store_copy.c) -------------------------------- */

/* What a copy moved: the source's counts, which the target's matched. */
typedef struct fl_store_copy_counts {
  size_t runs, task_runs, state_changes, fire_claims, fire_events;
  size_t log_lines, log_drops; /* task_log and task_log_dropped rows */
  size_t cache_entries, flow_defs;
  size_t cache_skipped; /* cached values PostgreSQL cannot hold as text (not
                           UTF-8): left out, a cache miss there */
} fl_store_copy_counts;

/*
 * Copies every run of `from` (with its params, graph and edges, owner,
 * task runs, state changes and where worker attempts ran), every fire
 * claim, fire event and cached result into `to`, SQLite or PostgreSQL on
 * either side, in one transaction on `to`, from one snapshot of `from`.
 * Run ids are kept; row ids are moved past `to`'s own. Refused, with
 * nothing written: a run Running in `from` (FLOWLUA_ESTATE), runs in `to`
 * (FLOWLUA_ESTATE). After the rows, both sides are counted, and a
 * difference fails the copy (FLOWLUA_EIO, "copied N of M task runs") with
 * nothing kept. *out (may be NULL) gets the counts. The message of any
 * failure, either side's, is in fl_store_errmsg(to).
 */
int fl_store_copy(fl_store *from, fl_store *to, fl_store_copy_counts *out);

/* How many runs st records as Running (what a copy refuses). */
int fl_store_running_runs(fl_store *st, size_t *n);

/* The state as messages name it (malloc'd; NULL when out of memory):
   a PostgreSQL URI with its password masked, a file's path as it is. */
char *fl_store_display_name(const char *path);

/* ---- printing (store_print.c) -------------------------------------------- */

/*
 * `flowlua runs`: a text table (ID prefix, FLOW, STATE, STARTED in local
 * time, DURATION, TASKS by state) or, with json, an array of objects with
 * full ids and UTC ISO 8601 times. Appends to out; ends with a newline.
 */
void fl_store_print_runs(fl_buf *out, const fl_store_run_list *l, int json);

/* `flowlua show`: the run's header and one line per task run (state,
   attempts, duration, first line of its error), each followed by its kept
   log lines when logs is not NULL (indented, with what was dropped), or
   one JSON object (each task with "logs" and, when some were dropped,
   "logs_dropped"). */
void fl_store_print_run(fl_buf *out, const fl_store_run_detail *d,
                        const fl_store_log_list *logs, int json);

/* One task run as a JSON object, as `show --json` lists it (logs may be
   NULL: no "logs"); `more` (may be NULL) is appended inside the object,
   after a comma: the caller's extra fields. */
void fl_store_print_task_json(fl_buf *out, const fl_store_run_detail *d,
                              size_t task, const fl_store_log_list *logs,
                              const char *more);

/* A time as JSON: an ISO 8601 UTC string with milliseconds, or null for
   0. */
void fl_store_add_json_time(fl_buf *out, double t);

/* The run's object as `show --json` prints it, without its task runs and
   without the closing brace (the caller adds fields, then '}'): the web
   UI's summary of a run. */
void fl_store_print_run_head(fl_buf *out, const fl_store_run_detail *d);

/* A worker as `show` and the report name it: its pid, after "host:" when
   its host is not run_host (the run's driver's). With term, the host is
   escaped for a terminal; else the caller escapes what it appends. */
void fl_store_add_worker(fl_buf *out, const char *host, int64_t pid,
                         const char *run_host, int term);

#endif
