/*
 * engine.h — the engine's shared structures: task and flow definitions,
 * the graph a flow body builds, and the scheduler's per-run state.
 *
 * Only the engine and the layers above it (lua, api) include this. Ownership in one line each:
 * a fl_taskdef lives inside its Lua userdata (freed by __gc); a fl_graph and
 * a fl_sched belong to the runtime and are replaced by the next build/run.
 */
#ifndef FL_ENGINE_H
#define FL_ENGINE_H

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>

#include <lua.h>

#include "buf.h"
#include "dag.h"
#include "flowlua.h"
#include "http.h"
#include "log.h"
#include "loop.h"
#include "memlimit.h"
#include "retry.h"
#include "trigger.h"

#define FL_TASK_MT "flowlua.task"
#define FL_FLOW_MT "flowlua.flow"
#define FL_NODE_MT "flowlua.node"
#define FL_UNMAPPED_MT "flowlua.unmapped"
#define FL_SIGNAL_MT "flowlua.signal"
/* Registry table: name -> C function added by flowlua_register_function. */
#define FL_HOST_FUNCS "flowlua.host_functions"

#define FL_DEFAULT_CONCURRENCY 32

/* ---- definitions (made by flow.task / flow.define) ---------------------- */

/* User values of a task userdata: the Lua functions a task carries. */
enum {
  FL_TASK_UV_FN = 1,
  FL_TASK_UV_RETRY_IF,
  FL_TASK_UV_TRIGGER,
  FL_TASK_UV_ON_SUCCESS,
  FL_TASK_UV_ON_FAILURE,
  FL_TASK_UV_ON_RETRY,
  FL_TASK_UV_CACHE_KEY,
  FL_TASK_NUV = FL_TASK_UV_CACHE_KEY
};

/* A task's result is stored (for resume) only when its JSON has at most
   max_result bytes: by default 64 MiB; the option goes up to 256 MiB. The
   store packs a result as a JSON string of its JSON, which may double it,
   and SQLite refuses a value over 1e9 bytes. */
#define FL_DEFAULT_MAX_RESULT ((size_t)64 << 20)
/* How long a job of a PostgreSQL queue waits for a worker by default. */
#define FL_DEFAULT_QUEUE_TIMEOUT 3600.0
#define FL_MAX_RESULT_LIMIT ((size_t)256 << 20)

typedef struct fl_taskdef {
  char *name;
  fl_retry_policy retry;
  double *delays;    /* owned; retry.delays points here */
  double timeout;    /* seconds per attempt; 0 = none */
  fl_trigger_rule trigger;
  char **tags;       /* owned */
  int n_tags;
  uint8_t has_retry_if, has_on_success, has_on_failure, has_on_retry;
  uint8_t has_cache_key;
  double cache_for;  /* seconds a cached result stays good; < 0 = forever */
  uint8_t no_store_result; /* store_result = false: never in the history */
  size_t max_result; /* bytes of JSON a stored result may have; 0 = the
                        default, FL_DEFAULT_MAX_RESULT */
  uint8_t worker;    /* worker = true (or a queue): attempts run in a worker
                        process (pool.c, worker_call.c) */
  char *queue;       /* owned; NULL = "default" */
  double queue_timeout; /* seconds a job of a PostgreSQL queue may wait for
                           a worker; 0 = FL_DEFAULT_QUEUE_TIMEOUT */
  uint32_t graph_id; /* the build `calls` counts for */
  uint32_t calls;    /* calls in that build, for stable keys */
  /* A subflow call (runtime/lua/lsubflow.c): its body runs a flow. One
     made by flow.subflow with options counts its calls with the flow's
     own subflow task (count_as, kept alive by its body's closure), so
     that both forms key their runs "child", "child#2"... */
  uint8_t subflow;
  struct fl_taskdef *count_as;
} fl_taskdef;

enum {
  FL_FLOW_UV_BODY = 1,
  FL_FLOW_UV_PARAMS,
  FL_FLOW_UV_SCHEDULE,
  FL_FLOW_UV_HOOKS, /* { on_success = fn, on_failure = fn, on_cancel = fn } */
  FL_FLOW_UV_SUBTASK, /* the task that runs it as a subflow, made on first use */
  FL_FLOW_NUV = FL_FLOW_UV_SUBTASK
};

typedef struct fl_limit {
  char *tag;
  int limit;
} fl_limit;

/* A typed parameter (flow.param.int(...), lparamlib.c): the default and
   constraints a flow's params table holds in place of a plain default.
   Its uservalue 1 is the default (nil: the param is required), 2 the
   choices of an enum (a list of strings). Checked by param_types.c. */
#define FL_PARAM_MT "flowlua.param"

typedef enum fl_param_kind {
  FL_PARAM_INT,
  FL_PARAM_NUMBER,
  FL_PARAM_STRING,
  FL_PARAM_BOOL,
  FL_PARAM_DATE,
  FL_PARAM_ENUM
} fl_param_kind;

enum { FL_PARAM_UV_DEFAULT = 1, FL_PARAM_UV_CHOICES, FL_PARAM_NUV = 2 };

typedef struct fl_paramdef {
  fl_param_kind kind;
  uint8_t has_min, has_max;
  /* Bounds of INT (exact) and NUMBER. */
  lua_Integer imin, imax;
  double min, max;
} fl_paramdef;

#define FL_SCHEDULE_MT "flowlua.schedule"

typedef struct fl_schedule fl_schedule; /* schedule.h */

typedef struct fl_flowdef {
  char *name;
  int concurrency; /* 0 = default */
  fl_limit *limits;
  int n_limits;
  /* The flow.interval / flow.cron userdata, kept alive by the flow's
     FL_FLOW_UV_SCHEDULE; NULL without a schedule. */
  const fl_schedule *schedule;
} fl_flowdef;

/* ---- the graph a flow body builds --------------------------------------- */

enum { FL_NODE_MAP = 1, FL_NODE_NESTED = 2 /* a table argument holds nodes */ };

typedef struct fl_node {
  fl_taskdef *def;
  uint32_t ordinal; /* 1 for the task's first call in the body */
  int32_t line;     /* line of the call in the script */
  uint32_t arg_at;  /* its arguments are args_ref[arg_at + 1 .. + nargs] */
  uint16_t nargs;
  uint8_t flags;
} fl_node;

typedef struct fl_graph {
  uint32_t id;
  fl_flowdef *flow;
  fl_dag dag;
  fl_node *nodes;
  uint32_t n, cap;
  /* Lua table: each task the graph calls, under the address of its
     fl_taskdef (fl_node.def): keeps the defs alive, and finds a task's
     functions. One entry per task, not per node (a 2 MB array for
     100,000 nodes, written at every call). */
  int tasks_ref;
  const fl_taskdef *last_def; /* the last task added to it */
  /* Lua table: every node's arguments in one flat list, node after node
     (fl_node.arg_at), not a table per node: one table per call was two
     allocations per task, and the collector's walk over them. */
  int args_ref;
  uint32_t n_args; /* values in it so far */
  int params_ref; /* the params table the body received */
  int hooks_ref;  /* the flow's hooks table (FL_FLOW_UV_HOOKS), or LUA_NOREF */
  int returns_ref; /* what the body returned (nodes in it resolved at the
                      end: a subflow's result), or LUA_NOREF for nil */
} fl_graph;

/* ---- a run --------------------------------------------------------------- */

enum { FL_INT_NONE, FL_INT_TIMEOUT, FL_INT_CANCEL };
/*
 * What a parked task waits on. A primitive embeds this in its own state and
 * gives it to fl_sched_park(); if the attempt is interrupted (timeout,
 * cancel) before the wait is over, the scheduler calls cancel() so the
 * primitive can stop its transfer or process. cancel may be NULL.
 */
typedef struct fl_wait fl_wait;
struct fl_wait {
  void (*cancel)(fl_wait *w);
};

typedef struct fl_sched fl_sched;
typedef struct fl_taskrun fl_taskrun;

/*
 * A worker's job (runtime/api/worker_serve.c): one attempt that a worker
 * process runs for a driver, outside any schedule of its own. While it runs
 * (rt->job set, rt->current NULL), what a task's Lua code asks of the
 * engine goes to it instead of to a task run: flow.context() reads its
 * fields, flow.log and flow.secret call its functions (which send LOG and
 * SECRET frames), and the interrupt hook stops its coroutine past its
 * deadline or when check() says so (a CANCEL from the driver). The
 * engine only reads the job; worker_serve.c owns it.
 */
typedef struct fl_job fl_job;
struct fl_job {
  lua_State *co; /* the body's coroutine */
  const char *run_id, *task_key, *task_name; /* NUL-terminated */
  const char *flow;  /* the flow's name; "" when the driver did not say */
  double scheduled_at, started_at; /* the run's, wall clock; 0: unknown */
  int64_t map_index; /* 1-based element of a map; 0 for a graph node */
  int64_t attempt;   /* 1-based */
  int params_ref;    /* registry: flow.context().params, or LUA_NOREF */
  double deadline_at; /* monotonic; 0 = no timeout */
  uint8_t interrupt;  /* FL_INT_*: why the job is being stopped */
  /* From the interrupt hook, every FL_HOOK_COUNT instructions: may set
     interrupt (it decides itself how often to look). */
  void (*check)(fl_job *j);
  void (*log)(fl_job *j, int level, const char *msg);
  void (*secret)(fl_job *j, const char *value);
};

typedef struct fl_mapinfo {
  fl_taskrun *children;
  uint32_t n, done;
  int args_ref;     /* resolved arguments */
  uint8_t *mapped;  /* per argument: 1 = iterate, 0 = pass whole */
} fl_mapinfo;

/* A task run's two timers, made when one is first armed (fl__sched_timers):
   most runs never arm one, and inline they were a third of a run's record,
   which a flow has one of per task (memory, page faults, cache). */
typedef struct fl_runtimers {
  fl_timer wake;     /* retry delay, or a parked primitive's wait */
  fl_timer deadline; /* the attempt's timeout */
} fl_runtimers;

/* Fields ordered by size, so that none is padded. */
struct fl_taskrun {
  fl_sched *sched;
  fl_taskrun *next; /* queue link */
  double first_start, attempt_start, ended; /* monotonic */
  double deadline_at; /* monotonic; 0 = no timeout */
  double retry_after; /* seconds a server asked for (Retry-After), or 0 */
  fl_wait *wait;      /* what a parked task waits on */
  lua_State *co;
  fl_runtimers *timers; /* NULL until one is armed; owned */
  char *error;       /* last error, owned */
  fl_mapinfo *map;   /* for a map node once expanded */
  char *cache_key;   /* this run's cache key (cache_key option), owned */
  /* The host of the `flowlua worker` running this attempt, for a job of a
     PostgreSQL queue (owned; NULL: this host's pool, or inline). */
  char *worker_host;
  uint32_t node;
  int32_t map_index; /* 1-based element of a map; 0 for a graph node */
  int attempts;
  int co_ref;
  uint32_t rec_id;   /* its task run in the state store */
  /* The store's flush epoch in which its final state was recorded: a
     dependent may start once the store has flushed past it (record.c). */
  uint32_t rec_epoch;
  int32_t worker_pid; /* the worker process running this attempt (pool.c),
                         named in its log lines; 0: inline */
  uint8_t state;
  uint8_t interrupt; /* FL_INT_*: set by the hook or the deadline timer */
  uint8_t parked;    /* waiting inside a primitive */
  uint8_t queued;    /* in the resume queue */
  uint8_t restored;  /* its result was kept from the run it resumes */
  uint8_t secret_result; /* its worker said the result holds a secret: not
                            stored (queue_driver.c) */
};

typedef struct fl_tagcount {
  const char *tag; /* borrowed from the flow's limits */
  int limit, running;
} fl_tagcount;

typedef struct fl_runq {
  fl_taskrun *head, *tail;
} fl_runq;

struct fl_sched {
  flowlua *rt;
  fl_graph *g;
  fl_taskrun *runs; /* one per graph node */
  uint32_t *waiting; /* upstream runs not yet final */
  uint32_t final_nodes;
  fl_runq start_q;   /* ready to start an attempt */
  fl_runq resume_q;  /* parked runs whose wait is over */
  fl_runq tag_wait;  /* ready, but a tag limit is full */
  uint32_t *settle;  /* stack of final nodes to propagate */
  uint32_t n_settle;
  int concurrency, running;
  size_t total_runs; /* graph nodes plus map elements */
  fl_tagcount *tags;
  int n_tags;
  int results_ref; /* Lua table: node+1 -> result */
  /* The body of task fn_def, in registry slot fn_ref: consecutive starts
     of one task (the common case) fetch it with one lookup, not through
     the graph's tasks (fl__sched_push_task_uv). */
  const fl_taskdef *fn_def;
  int fn_ref;
  /* Coroutines that ended cleanly, kept for the next attempts: creating
     one per attempt is most of a no-op task's cost. */
  lua_State **pool;
  int *pool_refs;
  int pool_n;
  char run_id[40];
  double started, started_wall, ended;
  double scheduled_at; /* the fire time it ran for, else started_wall */
  int cancelling;
  /* A cancel of this run only, asked for through the history by another
     process (flowlua ui) and seen by cancel_poll.c. */
  uint8_t cancel_asked;
  int state; /* flowlua_flow_state */
  /* Runs in progress are linked from rt->active (several at once when a
     schedule lets runs overlap); a run that is no longer rt->sched is an
     orphan, freed by fl_sched_collect once it has ended. */
  fl_sched *next_active;
  uint8_t active, orphan;
  void (*on_end)(fl_sched *s, void *data); /* called once it has ended */
  void *on_end_data;
  /* The state store's record of this run (NULL without a store), and the
     stored run it resumes (NULL when it resumes none). */
  struct fl_store_run *rec;
  struct fl_store_run_detail *resume;
  uint8_t *rerun; /* per node: run again even if stored Success (from_task) */
  char *store_error; /* why the store failed this run, owned */
  /* A subflow's run (subflow.c): the run whose task run called it, that
     task run's key (owned), and the call waiting for its end (NULL once
     that attempt has ended: timed out, cancelled). A run does not end
     while runs it called as subflows are going (children). */
  fl_sched *parent;
  char *parent_task;
  struct fl_subflow *subflow;
  uint32_t children;
  uint32_t depth; /* 0 for a run no flow called; a subflow's parent's + 1 */
};

/* Closes a coroutine for reuse (its to-be-closed variables run): Lua 5.4.6
   renamed lua_resetthread to lua_closethread and gave it the caller. */
#if LUA_VERSION_RELEASE_NUM >= 50406
#define fl_closethread(co, from) lua_closethread((co), (from))
#else
#define fl_closethread(co, from) ((void)(from), lua_resetthread(co))
#endif

/* worker_call.c: a worker task's attempt, run by its coroutine in place of
   the task's body (attempt.c). */
int fl_worker_call(lua_State *L);

/* ---- the runtime handle -------------------------------------------------- */

struct flowlua {
  lua_State *L;
  fl_loop loop;
  fl_http http; /* set up on the first request */
  int http_ready;
  fl_logger log;
  fl_mem mem; /* the Lua heap's count and limit (memlimit.h) */
  flowlua_options opts;
  fl_buf err;
  /* Whether the runtime's thread is inside a task's Lua code, whether
     flowlua_abandon took the runtime, and how many such calls wait for
     the first (abandon.c's FL_GATE_* bits): flowlua_abandon, from another
     thread, may record the runs' end only while the runtime's thread is
     in a task; that thread stops when it leaves the code. An atomic word,
     so that entering and leaving a task cost one atomic operation each;
     task_gate and task_entered only serve a waiting flowlua_abandon. */
  _Atomic unsigned gate;
  pthread_mutex_t task_gate;
  pthread_cond_t task_entered; /* signalled on entering a task if waited for */
  /* Set by flowlua_stop and flowlua_cancel, from a signal handler or
     another thread (`flowlua serve` stops each flow's thread from its main
     thread): lock-free atomics, safe in a handler as sig_atomic_t was and
     ordered across threads, where a volatile is a data race. */
  _Atomic int cancel_requested; /* cancel the run in progress */
  _Atomic int stop_requested;   /* start no new scheduled run */
  int cancel_current;  /* cancel the run in progress only (overlap policy) */
  /* Looks in the history, about once a second while runs are recorded,
     for cancels asked for by another process (cancel_poll.c). */
  fl_timer cancel_poll;
  uint8_t cancel_poll_ready;
  double scheduled_at; /* the fire time of the next run; 0: not scheduled */

  int flows_ref;   /* Lua list of the loaded script's flow userdatas */
  size_t n_flows;
  char *script_name;
  /* The id the next run gets (flowlua_set_run_id), used once; "" none. */
  char next_run_id[40];
  /* SHA-256 of the loaded script file's bytes, as Lua compiled them (64
     lower-case hex digits); "" when it came from a string. A worker says it
     in HELLO, and a driver sends jobs only to workers that loaded the same
     text. */
  char script_sha256[65];
  /* The script file loaded (NULL when loaded from a string): what a
     worker process loads. */
  char *script_path;
  /* Worker processes (pool.c): opened by the first worker task. */
  struct fl_pool *pool;
  struct fl_queue *queue; /* worker tasks through PostgreSQL (queue.h) */
  char *worker_program; /* owned copy of opts.worker_program, or NULL */

  char **param_names, **param_values;
  size_t n_params;

  fl_graph *building; /* set while a flow body runs */
  fl_graph *graph;    /* the last graph built */
  fl_sched *sched;    /* the last run */
  fl_sched *active;   /* runs in progress, linked by next_active */
  fl_sched *retired;  /* ended orphans, freed by fl_sched_collect */
  /* The module's metatables, for fl_testudata on hot paths. */
  const void *task_mt, *node_mt, *unmapped_mt;
  int node_mt_ref; /* registry slot of node_mt, for fl_push_node; 0: none */
  fl_taskrun *current; /* the task whose Lua code runs now */
  fl_job *job;         /* a worker's job whose Lua code runs now */
  uint32_t next_graph_id;
  uint64_t rng;

  /* The run history (record.c): opened on first use; store_state is 0
     before that, 1 open, -1 when there is none (no path, ":memory:"). */
  struct fl_store *store;
  int store_state;
  /* The history kept open for reading (flowlua_history_keep_open), which
     the reports read through when store is not open; NULL otherwise. */
  struct fl_store *history;
  double history_marked_at; /* its last fl_store_mark_crashed, wall clock */
  char *state_path;     /* owned copy of opts.state_path */
  char *state_name;     /* as messages name it: a URI's password masked */
  uint32_t flush_epoch; /* counts the store's flushes, from 1 */
  fl_buf result_json;   /* reused to encode each result for the store */
  /* The resume that the next run is (flowlua_resume), while it starts. */
  struct fl_store_run_detail *resume;
  uint8_t *resume_rerun;

  int busy;           /* public calls in progress (fl_api_enter) */
  const char *busy_doing; /* what the outermost of them is doing */
  int free_requested; /* flowlua_free was called from a callback */

  /* Subflow calls waiting for their run to start (subflow.c): started
     between tasks by fl_sched_pump_all, oldest first; and the task run
     whose call the run fl_sched_start starts now belongs to. */
  struct fl_subflow *subflow_head, *subflow_tail;
  fl_taskrun *start_parent;

  char **task_keys; /* lazily built for flowlua_task_get */
  fl_taskrun **task_runs;
  size_t n_task_keys;
};

_Static_assert(ATOMIC_INT_LOCK_FREE == 2,
               "flowlua_stop and flowlua_cancel need lock-free atomics");

/* Whether the run in progress is to be cancelled. */
static inline int fl_cancelling(const flowlua *rt) {
  return rt->cancel_requested || rt->cancel_current;
}

/* Whether run s is to be cancelled: the whole runtime is, or someone asked
   for s alone through the history. */
static inline int fl_sched_cancelling(const fl_sched *s) {
  return fl_cancelling(s->rt) || s->cancel_asked;
}

/* The runtime that owns a Lua state (kept in the state's extra space). */
static inline flowlua *fl_rt(lua_State *L) {
  return *(flowlua **)lua_getextraspace(L);
}

/* The userdata at idx if its metatable is mt (one of the cached pointers
   above), else NULL: luaL_testudata without its registry lookup by name,
   which was a tenth of the cost of building a large graph. */
static inline void *fl_testudata(lua_State *L, int idx, const void *mt) {
  void *p = lua_touserdata(L, idx);
  if (!p || !lua_getmetatable(L, idx)) return NULL;
  const void *m = lua_topointer(L, -1);
  lua_pop(L, 1);
  return m == mt ? p : NULL;
}

/* engine.c: the handle's error message (masked, so no secret leaks out),
   replaced by each call. */
void fl_set_error(flowlua *rt, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* After a call that failed for memory: when the memory limit refused, the
   message names the limit and what was going on (doing). */
void fl_name_memory_limit(flowlua *rt, const char *doing);
double fl_random(flowlua *rt); /* uniform in [0, 1) */
uint64_t fl_random_u64(flowlua *rt);
uint64_t fl_seed_random(void); /* a seed for rt->rng */
/* The name of the loaded script's flow i (from 0), or NULL. */
const char *fl_flow_name(const flowlua *rt, size_t i);
/* The hex SHA-256 of the last script loaded from a file (rt->script_sha256);
   "" when it was loaded from a string or nothing is loaded. */
const char *fl_script_sha256(flowlua *rt);
/* Drops the last run's task index (flowlua_task_get), and the last run and
   graph (they borrow from the loaded script). */
void fl_forget_tasks(flowlua *rt);
void fl_forget_run(flowlua *rt);
/* Around public calls that may run host callbacks (doing: "a run", or the
   call's name). fl_api_enter refuses a call made from inside another
   (FLOWLUA_ESTATE, error set); then nothing is counted and the caller
   returns the code at once. After fl_api_leave, rt may have been freed
   (flowlua_free from a callback): return its result at once. */
int fl_api_enter(flowlua *rt, const char *who, const char *doing);
int fl_api_leave(flowlua *rt, int rc);
/* For public calls that change the runtime but run no callback: 1, with
   the error set, when called from inside a run (or load) of rt. */
int fl_api_reentered(flowlua *rt, const char *who);
#define FL_API_RUN "a run" /* fl_api_enter's doing for runs */
/* Frees the handle and all it holds, runs left going included. */
void fl_engine_free(flowlua *rt);
/* 1, with the error set, when a run started by flowlua_start is going. */
int fl_host_run_going(flowlua *rt, const char *who);
/* Fills *out from a run that has ended. Its counts are THE count of task
   runs (docs/manual/history.md, "Counting task runs"): every element of a
   map, and every other task run but a map that has elements. The history
   records them at the run's end; the store counts runs that never ended
   the same way (FL_STORE_COUNT_TASK_RUNS_SQL). */
void fl_fill_outcome(const fl_sched *s, flowlua_outcome *out);

/* launch.c: checking, running and starting a loaded flow. */
typedef enum fl_run_mode {
  FL_RUN_CHECK, /* build and validate only */
  FL_RUN_WAIT,  /* run, and return when the run has ended */
  FL_RUN_START  /* start the run and return; it moves with fl_sched_pump_all */
} fl_run_mode;
/* Pushes the flow named name (NULL: the only one); a status, with the
   error set, when there is none. */
int fl_push_flow(flowlua *rt, const char *name);
/* Pushes the registry's weak-keyed table stored under key (a thread or a
   value it maps lives no longer than its key), making it on first use;
   1 when it was made now. */
int fl_push_weak_table(lua_State *L, const void *key);
/* Builds the flow's graph with its params, then checks, runs or starts it
   (mode); the run becomes rt->sched. */
int fl_run(flowlua *rt, const char *flow_name, fl_run_mode mode);
/* Builds and starts a run of the flow for the fire time scheduled_at, and
   returns at once (the run becomes rt->sched and moves with
   fl_sched_pump_all); on_end(s, data) is called when it has ended. */
int fl_start_run(flowlua *rt, const char *flow_name, double scheduled_at,
                 void (*on_end)(fl_sched *s, void *data), void *data);
/* backfill.c: flowlua_backfill. */
int fl_backfill(flowlua *rt, const char *flow_name, double from, double to,
                int concurrency, flowlua_backfill_result *out);
/* Loads the stored run run_ref and runs or starts its resume (who: the
   public call, for messages; force: despite a changed graph; from_task:
   run it and its downstream again). */
int fl_resume_run(flowlua *rt, const char *who, fl_run_mode mode,
                  const char *flow_name, const char *run_ref, int force,
                  const char *from_task);

/* subflow.c: the body of a subflow call's task run (its upvalue 1 is the
   child flow; lsubflow.c makes the closure): starts a run of the child with
   the params it is given and returns that run's result, or raises its
   failure. */
int fl_subflow_body(lua_State *L);

/* serve.c: serving the flow's schedule until stopped (flowlua_serve);
   ops (NULL: none) reload the script when its file changes
   (serve_reload.h). */
struct fl_reload_ops;
int fl_serve(flowlua *rt, const char *flow_name, int max_runs,
             const struct fl_reload_ops *ops, flowlua_serve_result *out);

/* errors.c: error values of Lua code. Error text longer than
   FL_ERROR_HEAD + FL_ERROR_TAIL bytes keeps only its first and last bytes
   (fl_buf_add_bounded): the history and the logs get at most that much of
   a message, and as much again of a traceback. */
#define FL_ERROR_HEAD 2048
#define FL_ERROR_TAIL 8192
/* Pushes s[0..n), bounded, and returns it. */
const char *fl_error_bounded(lua_State *L, const char *s, size_t n);
/* Pushes the error value at idx as a message string, bounded, and returns
   it. */
const char *fl_error_text(lua_State *L, int idx);
/* Pushes onto L msg, a line end and co's traceback from level (bounded),
   and returns it. */
const char *fl_error_traceback(lua_State *L, lua_State *co, const char *msg, int level);
/* Message handler for lua_pcall: message plus traceback. */
int fl_msgh(lua_State *L);
/* flow.fail / flow.skip raise a signal value (FL_SIGNAL_MT) of a kind;
   fl_signal_kind says which, with *msg set (valid while the value is
   alive), or 0 for any other error. */
enum { FL_SIGNAL_FAIL = 1, FL_SIGNAL_SKIP = 2, FL_SIGNAL_WORKER = 3 };
/* FL_SIGNAL_WORKER: a worker task's attempt failed in its worker (an error,
   or the worker died), or a subflow's run failed; the signal's message is
   the whole error text, the worker's traceback included, recorded as it is
   (retries apply). */
int fl_signal_kind(lua_State *L, int idx, const char **msg);
/* Raises a signal of that kind with text[0..n) as its message (what a
   worker's failure is raised as, and a subflow's that cannot start). */
int fl_raise_signal(lua_State *L, int kind, const char *text, size_t n);

/* value_json.c: Lua values as the history stores them. fl_json_encode_value
   appends the JSON of the value at idx to out: 0, or -1 when it cannot be
   encoded (a function, a cycle...), with the reason appended to why (may
   be NULL); it never raises. fl_json_decode_value pushes the value of
   text[0..len) (text[len] must be '\0'): 0, or -1 with the message pushed
   instead. */
int fl_json_encode_value(lua_State *L, int idx, fl_buf *out, fl_buf *why);
int fl_json_decode_value(lua_State *L, const char *text, size_t len);

/* graph.c: building the graph from a flow body */
fl_graph *fl_graph_new(flowlua *rt, fl_flowdef *flow);
void fl_graph_free(flowlua *rt, fl_graph *g);
/* Runs the flow at stack index flow_idx with the params table at params_idx
   to build rt->graph. FLOWLUA_OK, or an error set with fl_set_error. */
int fl_graph_build(flowlua *rt, int flow_idx, int params_idx);
/* Appends a node's key ("name", "name#2") to b. */
void fl_graph_add_key(fl_buf *b, const fl_graph *g, uint32_t node);
/* Every node's key, in node order: a malloc'd array of g->n pointers into
   one block, both freed by free() on the array. NULL when out of memory. */
const char **fl_graph_keys(const fl_graph *g);
/* The graph's edges over its node indexes, as the history stores them
   (node order, then each node's upstream in order): a malloc'd array, its
   length in *n. NULL when out of memory. */
struct fl_store_edge *fl_graph_edges(const fl_graph *g, size_t *n);
int fl_graph_add_node(lua_State *L, fl_graph *g, int task_idx, int first_arg,
                      int nargs, int is_map);

/* sched.c: running a built graph. A run owns its graph (taken from
   rt->graph). fl_sched_start starts a run and returns at once: its tasks
   move when fl_sched_pump_all is called (it does all the work that needs
   no waiting, for every run in progress, and returns whether it did any)
   between polls of the loop. fl_sched_run starts one and drives every run
   until that one has ended. fl_sched_stalled says whether nothing can move
   any more (a bug, reported rather than hung on). */
int fl_sched_start(flowlua *rt, fl_graph *g, fl_sched **out);
int fl_sched_run(flowlua *rt, fl_graph *g, fl_sched **out);
int fl_sched_pump_all(flowlua *rt);
int fl_sched_stalled(flowlua *rt);
/* Whether fl_sched_pump_all has work that needs no waiting (a task to
   start or resume, a run to settle or end, a cancel to act on): then the
   host loop must not wait (flowlua_timeout_ms says 0). */
int fl_sched_has_ready_work(const flowlua *rt);
void fl_sched_free(flowlua *rt, fl_sched *s);
/* Frees the orphans that have ended. */
void fl_sched_collect(flowlua *rt);
/* Appends a run's key ("fetch", "fetch[3]") to b. */
void fl_taskrun_add_key(fl_buf *b, const fl_taskrun *r);
/* Pushes flow.context() for the current task (or the run) onto L. */
void fl_sched_push_context(lua_State *L, flowlua *rt);
/* Parks the current task for `seconds`; called by flow.sleep. */
int fl_sched_sleep(lua_State *L, double seconds);
/* The task whose own coroutine L is, if it can be parked now; else NULL. */
fl_taskrun *fl_sched_parkable(lua_State *L);
/* Parks r (from fl_sched_parkable) on w and yields; when the wait is over
   (fl_sched_wake), Lua calls k(L, LUA_YIELD, ctx) to produce the results.
   Only returns through k. */
int fl_sched_park(lua_State *L, fl_taskrun *r, fl_wait *w, lua_KContext ctx,
                  lua_KFunction k);
/* The wait of a parked task is over: resume it at the next turn. */
void fl_sched_wake(fl_taskrun *r);
/* A server asked the running task to wait `seconds` before retrying. */
void fl_sched_note_retry_after(lua_State *L, double seconds);
/* Count hook: interrupts Lua code of a task past its timeout, or any Lua
   code once the runtime is asked to stop. Installed on the main thread every
   FL_HOOK_COUNT instructions and inherited by each task's coroutine. */
#define FL_HOOK_COUNT 1000
void fl_interrupt_hook(lua_State *L, lua_Debug *ar);
/* hook.c: installs fl_interrupt_hook on L and replaces debug.sethook and
   debug.gethook with versions that chain a script's hook to it, so that
   no script can remove it. fl_hook_reset gives a task's coroutine back
   the plain hook (a pooled one may carry a previous task's). */
void fl_hook_install(lua_State *L);
/* Around the runtime's thread running a task's Lua code (lua_resume):
   leaving never returns once flowlua_abandon has taken the runtime. */
/* The gate's mutex and condition variable: 0, or -1 when they cannot be
   made. */
int fl_task_gate_init(flowlua *rt);
void fl_task_gate_free(flowlua *rt);
void fl_task_gate_enter(flowlua *rt);
void fl_task_gate_leave(flowlua *rt);
/* flowlua_abandon: FLOWLUA_ESTATE (error not set: another thread) unless
   the runtime's thread is inside a task; then every run in progress and
   its task runs not ended are recorded Cancelled with `why`. */
int fl_abandon_runs(flowlua *rt, const char *why);
void fl_hook_reset(lua_State *co);
/* Logs a message from Lua under the current task (in a worker's job: a LOG
   frame for the driver, whatever the worker's own log level). */
void fl_sched_log(flowlua *rt, int level, const char *msg);
/* Whether a line at level is wanted at all: the log prints it, or the
   history keeps it (a task's line at INFO or above when the run is
   recorded, whatever --quiet or --log-level print), or a worker's job
   sends it to its driver. */
int fl_sched_log_wanted(flowlua *rt, int level);
/* flow.secret read value (already masked in rt's own log): a worker's job
   also tells its driver, so that the driver masks it everywhere. */
void fl_sched_note_secret(flowlua *rt, const char *value);

#endif
