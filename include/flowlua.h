/*
 * flowlua.h — the public interface of the flowlua workflow runtime.
 *
 * This header is the specification: every function says what it does, what it
 * returns and who owns each pointer that crosses it. A program that embeds
 * flowlua needs nothing else.
 *
 * Model: a `flowlua` handle is one runtime — its own Lua state, event loop and
 * log sink. Handles share nothing, so several can live in one process, one per
 * thread. A handle itself is not thread-safe: call it from one thread at a
 * time, except flowlua_stop(), which may be called from any thread or from a
 * signal handler. From a host function or callback running inside a call on
 * a handle, calls that would change that handle (load, check, run, resume,
 * start, step, serve, graph, set_param, register_function) return
 * FLOWLUA_ESTATE; docs/manual/embedding.md lists what is allowed.
 *
 * Typical use:
 *
 *     flowlua_options opts;
 *     flowlua_options_init(&opts);
 *     flowlua *rt = NULL;
 *     if (flowlua_new(&opts, &rt) != FLOWLUA_OK) ...;
 *     if (flowlua_load_file(rt, "etl.lua") != FLOWLUA_OK)
 *         fprintf(stderr, "%s\n", flowlua_errmsg(rt));
 *     flowlua_outcome out;
 *     flowlua_run(rt, NULL, &out);
 *     flowlua_free(rt);
 */
#ifndef FLOWLUA_H
#define FLOWLUA_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__) && !defined(FLOWLUA_STATIC_BUILD)
#define FLOWLUA_API __attribute__((visibility("default")))
#else
#define FLOWLUA_API
#endif

#define FLOWLUA_VERSION_MAJOR 0
#define FLOWLUA_VERSION_MINOR 6
#define FLOWLUA_VERSION_PATCH 0
#define FLOWLUA_VERSION "0.6.0"
/* One number that grows with every release: 0xMMmmpp. */
#define FLOWLUA_VERSION_NUMBER                                                 \
  ((FLOWLUA_VERSION_MAJOR << 16) | (FLOWLUA_VERSION_MINOR << 8) |              \
   FLOWLUA_VERSION_PATCH)

/* The version of the library actually linked, e.g. "0.1.0". Static string. */
FLOWLUA_API const char *flowlua_version(void);
/* The same as a number (FLOWLUA_VERSION_NUMBER of the library linked), to
   compare with the header's at run time: a program built against 0.6 and
   run with 0.5 can tell. */
FLOWLUA_API int flowlua_version_number(void);

/*
 * Status codes. Every function that can fail returns one of these; 0 is
 * success, every failure is negative. flowlua_strstatus() names them.
 */
#define FLOWLUA_STATUS_MAP(X)                                                  \
  X(OK, 0, "success")                                                          \
  X(ENOMEM, -1, "out of memory")                                               \
  X(EINVAL, -2, "invalid argument")                                            \
  X(ELOAD, -3, "the script could not be loaded")                               \
  X(EBUILD, -4, "the flow graph could not be built")                           \
  X(ENOFLOW, -5, "no such flow")                                               \
  X(EPARAM, -6, "bad flow parameter")                                          \
  X(ESTATE, -7, "not allowed in the runtime's current state")                  \
  X(EIO, -8, "input/output error")

typedef enum flowlua_status {
#define FLOWLUA_STATUS_ENUM(name, code, text) FLOWLUA_##name = (code),
  FLOWLUA_STATUS_MAP(FLOWLUA_STATUS_ENUM)
#undef FLOWLUA_STATUS_ENUM
} flowlua_status;

/* A short static description of a status code ("out of memory"). */
FLOWLUA_API const char *flowlua_strstatus(int status);
/* The status code's own name, "FLOWLUA_ENOFLOW" for FLOWLUA_ENOFLOW, as
   logs and tests spell it; "unknown" for any other value. Static string. */
FLOWLUA_API const char *flowlua_status_name(int status);

/* Task run states (DESIGN.md "States"). */
#define FLOWLUA_TASK_STATE_MAP(X)                                              \
  X(PENDING, "Pending")                                                        \
  X(RUNNING, "Running")                                                        \
  X(SUCCESS, "Success")                                                        \
  X(FAILED, "Failed")                                                          \
  X(RETRYING, "Retrying")                                                      \
  X(TIMED_OUT, "TimedOut")                                                     \
  X(SKIPPED, "Skipped")                                                        \
  X(TRIGGER_FAILED, "TriggerFailed")                                           \
  X(CANCELLED, "Cancelled")                                                    \
  X(CACHED, "Cached")

typedef enum flowlua_task_state {
#define FLOWLUA_TASK_STATE_ENUM(name, text) FLOWLUA_TASK_##name,
  FLOWLUA_TASK_STATE_MAP(FLOWLUA_TASK_STATE_ENUM)
#undef FLOWLUA_TASK_STATE_ENUM
  FLOWLUA_TASK_STATE_COUNT
} flowlua_task_state;

/* Flow run states. */
#define FLOWLUA_FLOW_STATE_MAP(X)                                              \
  X(SCHEDULED, "Scheduled")                                                    \
  X(RUNNING, "Running")                                                        \
  X(SUCCESS, "Success")                                                        \
  X(FAILED, "Failed")                                                          \
  X(CANCELLED, "Cancelled")                                                    \
  X(CRASHED, "Crashed")

typedef enum flowlua_flow_state {
#define FLOWLUA_FLOW_STATE_ENUM(name, text) FLOWLUA_FLOW_##name,
  FLOWLUA_FLOW_STATE_MAP(FLOWLUA_FLOW_STATE_ENUM)
#undef FLOWLUA_FLOW_STATE_ENUM
  FLOWLUA_FLOW_STATE_COUNT
} flowlua_flow_state;

/* Static names ("TimedOut", "Success"); "?" for a value out of range. */
FLOWLUA_API const char *flowlua_task_state_name(int state);
FLOWLUA_API const char *flowlua_flow_state_name(int state);

typedef enum flowlua_log_level {
  FLOWLUA_LOG_DEBUG,
  FLOWLUA_LOG_INFO,
  FLOWLUA_LOG_WARN,
  FLOWLUA_LOG_ERROR,
  FLOWLUA_LOG_OFF /* as a threshold: log nothing */
} flowlua_log_level;

/* The level named "debug", "info", "warn" (or "warning") or "error", as
   --log-level takes it; -1 for any other name or NULL. */
FLOWLUA_API int flowlua_log_level_parse(const char *name);

typedef enum flowlua_log_format {
  FLOWLUA_LOG_TEXT, /* "2026-11-28 16:10:01.123 INFO  ..." */
  FLOWLUA_LOG_JSON  /* one JSON object per line */
} flowlua_log_format;

/*
 * Structs that grow. Those the caller allocates (flowlua_options,
 * flowlua_outcome, flowlua_task_info, flowlua_serve_result) begin with
 * `size`, the sizeof the caller was compiled with: a later flowlua that
 * appends fields knows from it how much room the caller has, so the
 * structs grow without a new SONAME. Declare them with FLOWLUA_INIT:
 *
 *     flowlua_outcome out = FLOWLUA_INIT(flowlua_outcome);
 *
 * (in C++: `flowlua_outcome out{}; out.size = sizeof out;`). A call given
 * one whose size it does not know returns FLOWLUA_EINVAL and writes
 * nothing. The structs the runtime hands to callbacks (flowlua_event,
 * flowlua_log_record) carry the size it filled: check it before reading a
 * field newer than the library may be.
 */
#define FLOWLUA_INIT(type) ((type){.size = sizeof(type)})

/*
 * One log record. Every pointer is owned by the runtime and valid only during
 * the callback that receives the record; copy what you keep. Fields that do
 * not apply are NULL, or -1 for numbers.
 */
typedef struct flowlua_log_record {
  size_t size;          /* sizeof the record as the runtime filled it */
  int level;            /* flowlua_log_level */
  double time;          /* wall clock, seconds since the epoch */
  const char *flow;     /* flow name */
  const char *run_id;   /* flow run id */
  const char *task;     /* task key, e.g. "fetch", "fetch#2", "fetch[3]" */
  int attempt;          /* 1-based attempt number */
  int task_state;       /* flowlua_task_state of a task state change */
  int flow_state;       /* flowlua_flow_state of a flow state change */
  double duration;      /* seconds, for a finished attempt or run */
  const char *error;    /* error message with traceback, if any */
  const char *message;  /* the human-readable text of the record */
  const char *line;     /* the record formatted in the runtime's log format,
                           without a trailing newline */
} flowlua_log_record;

/* Receives every log record at or above the threshold. It runs on the thread
   that drives the runtime and must not call back into the same runtime. */
typedef void (*flowlua_log_fn)(void *userdata, const flowlua_log_record *rec);

/*
 * One state change of a task run or a flow run, as it happens. Every
 * pointer is owned by the runtime and valid only during the callback.
 */
typedef struct flowlua_event {
  size_t size;         /* sizeof the event as the runtime filled it */
  double time;         /* wall clock, seconds since the epoch */
  const char *flow;    /* flow name */
  const char *run_id;  /* flow run id */
  const char *task;    /* task key ("fetch", "fetch#2", "fetch[3]"); NULL
                          for a change of the flow run itself */
  int task_state;      /* flowlua_task_state, or -1 for a flow run */
  int flow_state;      /* flowlua_flow_state, or -1 for a task run */
  int attempt;         /* 1-based attempt; 0 when none ran */
  const char *error;   /* the error, secrets masked; NULL if none */
  double retry_delay;  /* Retrying: seconds until the next attempt starts
                          (retry_delay, backoff, jitter, Retry-After
                          applied); 0 otherwise */
  /* Since 0.6 (check size): Running of a worker task's attempt, the pid of
     the worker process it runs in; 0 otherwise. A worker task's attempt
     is Running from when a worker takes it, not while it waits for one. */
  long worker_pid;
} flowlua_event;

/* Receives every state change. It runs on the thread that drives the
   runtime; calls that would change the same runtime are refused from it
   (FLOWLUA_ESTATE; see the model above). */
typedef void (*flowlua_event_fn)(void *userdata, const flowlua_event *ev);

/*
 * Options for a new runtime. Always start from flowlua_options_init(), then
 * set what you need: fields added in later versions keep working defaults.
 * New fields are only ever appended, and `size` tells the library which of
 * them the caller knows (see FLOWLUA_INIT).
 */
typedef struct flowlua_options {
  size_t size;            /* set by flowlua_options_init */
  int concurrency;        /* tasks running at once; 0 = the flow's own (32) */
  int log_level;          /* threshold, flowlua_log_level; default INFO */
  int log_format;         /* flowlua_log_format; default TEXT */
  flowlua_log_fn log_fn;  /* NULL: each record's line goes to stderr */
  void *log_userdata;     /* passed to log_fn, never touched */
  /* The run history (SQLite): NULL or ":memory:" keeps none; the CLI's
     default is ".flowlua/state.db". Copied by flowlua_new. The file is
     opened on the first run, resume or report, not before. */
  const char *state_path;
  flowlua_event_fn event_fn; /* NULL: no state-change callback */
  void *event_userdata;      /* passed to event_fn, never touched */
  /* The most memory the runtime's Lua heap may hold, in bytes (0, the
     default: no limit; otherwise at least 1 MiB, else flowlua_new returns
     FLOWLUA_EINVAL). It counts every Lua value of the scripts and the
     engine, and the scheduler's per-task records; not SQLite's, libcurl's
     or the host's own memory. An allocation past it fails: inside a task,
     that attempt fails ("memory limit of 256 MiB reached in task 'x'") and
     is retried like any error; while loading or building, that call fails
     with the same words. */
  size_t memory_limit;
  /* Worker processes for the attempts of worker tasks (task option
     `worker = true` or `queue`): at most this many at once (0, the
     default: the number of online CPUs). They are started when the first
     worker task is ready and reused across attempts and runs. With a
     PostgreSQL state they are one local `flowlua worker` serving the
     queues, and a negative number starts none (`--workers 0`: other
     hosts' `flowlua worker` processes run the jobs). */
  int workers;
  /* The program a worker process runs: the flowlua executable, started as
     `PROGRAM __worker SCRIPT` (NULL, the default: the environment's
     FLOWLUA_WORKER_PROGRAM; the CLI sets its own path). Copied by
     flowlua_new. A worker task fails, naming this option, when it is
     unset or cannot be run. */
  const char *worker_program;
  /* Serving (flowlua_serve): every run that ended longer ago than this
     many seconds is deleted from the history at the start and once a day,
     as flowlua_prune does, a short transaction at a time between the
     loop's events (0, the default: never). */
  double retention;
} flowlua_options;

/* Fills *opts with the defaults and its size: the sizeof the caller was
   compiled with, which flowlua_options_init passes. flowlua_new refuses
   options whose size it does not know (FLOWLUA_EINVAL). */
FLOWLUA_API void flowlua_options_init_size(flowlua_options *opts, size_t size);
#define flowlua_options_init(opts) \
  flowlua_options_init_size((opts), sizeof *(opts))

typedef struct flowlua flowlua;

/*
 * Creates a runtime. opts may be NULL for the defaults; it is copied, so the
 * caller keeps ownership. On success *out owns the new handle (free it with
 * flowlua_free). Returns FLOWLUA_ENOMEM or FLOWLUA_EINVAL on failure, with
 * *out set to NULL.
 */
FLOWLUA_API int flowlua_new(const flowlua_options *opts, flowlua **out);

/* Frees the runtime and everything it owns. NULL is allowed. */
FLOWLUA_API void flowlua_free(flowlua *rt);

/* Frees a string the API handed out (flowlua_report_runs, _report_run,
   _graph, _report_html), with the allocator that made it: a host whose own
   malloc is another must use this, not free(). NULL is allowed. (The name
   flowlua_free is the runtime's.) */
FLOWLUA_API void flowlua_string_free(char *s);

/*
 * The message of the last failure on this handle: what failed, where and why.
 * Owned by the runtime; valid until the next call on the handle. Never NULL
 * ("" when nothing failed).
 */
FLOWLUA_API const char *flowlua_errmsg(const flowlua *rt);

/*
 * Loads a flow script from a file, or from a string (chunkname names it in
 * messages; NULL means "=(string)"). The script runs once and must return a
 * flow or a table of flows. A runtime holds one script; loading again
 * replaces it. FLOWLUA_ELOAD on syntax or runtime errors, or a bad return.
 * The caller keeps ownership of every argument.
 */
FLOWLUA_API int flowlua_load_file(flowlua *rt, const char *path);
FLOWLUA_API int flowlua_load_string(flowlua *rt, const char *source,
                                    const char *chunkname);

/* Number of flows the loaded script defines, and the name of flow i
   (owned by the runtime, valid until the next load or free). */
FLOWLUA_API size_t flowlua_flow_count(const flowlua *rt);
FLOWLUA_API const char *flowlua_flow_name(const flowlua *rt, size_t i);

/*
 * The params of the loaded flow flow_name (NULL: the only one) as
 * `flowlua script.lua --help` lists them: one line per param, by name,
 * "  NAME  TYPE, default VALUE (JSON) or required, CONSTRAINTS\n"
 * ("  n  integer, default 5, >= 1"); empty for a flow without params;
 * secrets (flow.secret) masked as in log lines. On
 * success *out is a NUL-terminated string the caller frees with
 * flowlua_string_free(). Runs nothing of the flow: no body, no task.
 */
FLOWLUA_API int flowlua_flow_params_text(flowlua *rt, const char *flow_name,
                                         char **out);

/*
 * Sets a parameter override for the next runs, as text ("--param k=v"). It is
 * converted to the type of the flow's default (or by a typed param's rules,
 * flow.param.*) when the flow is built; a name the flow does not declare, or
 * a value it refuses, is FLOWLUA_EPARAM then. Both strings are copied.
 */
/*
 * The id the next run started on rt (flowlua_run, flowlua_start, a resume,
 * a served run) gets instead of a new random UUID, for a caller that must
 * name the run before it is recorded (flowlua ui starts runs so). Used
 * once. It must be a UUID in lower-case hex, 8-4-4-4-12 digits
 * (flowlua_run_id_valid says whether it is), else FLOWLUA_EINVAL. A run id
 * the history already holds fails that run's start (FLOWLUA_EINVAL).
 */
FLOWLUA_API int flowlua_set_run_id(flowlua *rt, const char *run_id);
FLOWLUA_API int flowlua_run_id_valid(const char *run_id);

FLOWLUA_API int flowlua_set_param(flowlua *rt, const char *name,
                                  const char *value);
/* Forgets every parameter override. */
FLOWLUA_API void flowlua_clear_params(flowlua *rt);

/*
 * Builds and validates a flow's graph without running any task: parameters,
 * the body, cycles. flow_name may be NULL when the script defines one flow.
 * On success the graph's tasks are readable through flowlua_task_count/get
 * (all Pending).
 */
FLOWLUA_API int flowlua_check(flowlua *rt, const char *flow_name);

typedef struct flowlua_outcome {
  size_t size;        /* sizeof (flowlua_outcome): see FLOWLUA_INIT */
  int state;          /* flowlua_flow_state: SUCCESS, FAILED or CANCELLED */
  double duration;    /* seconds */
  size_t tasks;       /* task runs, map elements included */
  size_t by_state[FLOWLUA_TASK_STATE_COUNT]; /* task runs per final state */
  char run_id[40];
} flowlua_outcome;

/*
 * Runs a flow once, to the end: builds its graph, runs its tasks on the
 * event loop, and fills *out (may be NULL). Returns FLOWLUA_OK when the run
 * took place, whatever its outcome — a run that failed is out->state ==
 * FLOWLUA_FLOW_FAILED — and an error code when it could not start (no such
 * flow, bad parameter, a body that errors, a cycle).
 */
FLOWLUA_API int flowlua_run(flowlua *rt, const char *flow_name,
                            flowlua_outcome *out);

/*
 * Resumes a stored run that ended Failed, Cancelled or Crashed: builds the
 * flow again with the params stored for that run (overrides set with
 * flowlua_set_param are an error here), keeps the stored results of the
 * tasks that succeeded — they do not run again — and runs the rest, as a
 * new run that records which one it resumes. run_ref is a run id, an
 * unambiguous prefix of one, or "last" (the flow's newest run). When the
 * graph no longer has the same task keys the resume is refused with
 * FLOWLUA_EBUILD and a message saying what differs, unless force (then the
 * tasks whose keys match keep their results). from_task (may be NULL):
 * that task and everything downstream of it run again even if they had
 * succeeded. The resume claims the run as it records itself: while another
 * resume of it (or of a run of the same chain of resumes) is going in a
 * live process, it is refused with FLOWLUA_ESTATE ("... is already being
 * resumed by pid N on this host") before any task runs. Needs a state
 * store (options.state_path). Returns and fills *out as flowlua_run does.
 */
FLOWLUA_API int flowlua_resume(flowlua *rt, const char *flow_name,
                               const char *run_ref, int force,
                               const char *from_task, flowlua_outcome *out);

/*
 * Reports from the run history, as `flowlua runs` and `flowlua show` print
 * them: a table of runs (newest first; of one flow when flow is not NULL;
 * at most limit, <= 0 for all) or one run with each task's state, attempts,
 * duration and error; with json, JSON instead of text. On success *out is a
 * NUL-terminated string the caller frees with flowlua_string_free(). A
 * store that does not exist yet holds no runs: the list is empty and a run
 * is not found.
 */
FLOWLUA_API int flowlua_report_runs(flowlua *rt, const char *flow, int limit,
                                    int json, char **out);
FLOWLUA_API int flowlua_report_run(flowlua *rt, const char *run_ref, int json,
                                   char **out);
/* flowlua_report_run among the runs of one flow (NULL: every flow): "last"
   is that flow's newest run, a subflow's included (without a flow, "last"
   is the newest run no flow called as a subflow), and a prefix matches its
   runs only. */
FLOWLUA_API int flowlua_report_flow_run(flowlua *rt, const char *run_ref,
                                        const char *flow, int json,
                                        char **out);

/*
 * One task run of a stored run as JSON, for the web UI and other
 * programs: the fields a task has in flowlua_report_run's JSON ("key",
 * "task", "map_index", "state", "attempts", "started_at", "ended_at",
 * "duration", "error", "worker", "resumable", "logs" and, when its bounds
 * dropped some, "logs_dropped": {"lines": N, "bytes": N}), then "run": the
 * run's id, and "events": every state change in order, [{"seq", "at",
 * "state", "attempt", "error", "worker"}] (worker: {"host", "pid"} of the
 * worker process its attempt ran in, or null). "logs" are the task run's
 * kept log lines, [{"at", "attempt", "level", "line"}], masked as the log
 * printed them. run_ref is as for flowlua_report_run; task_key is a task
 * key as `show` lists it ("fetch", "fetch#2", "fetch[3]"). An unknown run
 * or task key is FLOWLUA_EINVAL with a message naming it. The caller frees
 * *out with flowlua_string_free(). Reading runs no script.
 */
FLOWLUA_API int flowlua_report_task_run(flowlua *rt, const char *run_ref,
                                        const char *task_key, char **out);

/*
 * One page of the runs list as JSON, for the web UI and other programs:
 * {"runs": [...], "next_before": ID or null}, each run as
 * flowlua_report_runs gives it, newest first, of one flow (NULL: all),
 * in one state (-1: any), after the run `before` names in that order
 * (NULL: from the newest), at most limit (<= 0: all). next_before is the
 * last run's id when more runs follow: pass it as `before` for the next
 * page. FLOWLUA_EINVAL, with the message set, for a state out of range or
 * a `before` that names no run. The caller frees *out with
 * flowlua_string_free(). Reading runs no script.
 */
typedef struct flowlua_runs_query {
  const char *flow;
  int state; /* flowlua_flow_state, or -1 */
  const char *before;
  int limit;
  /* Runs that started at or after since and before until, in seconds
     since the epoch (0: no bound). */
  double since, until;
} flowlua_runs_query;
FLOWLUA_API int flowlua_report_runs_page(flowlua *rt,
                                         const flowlua_runs_query *q,
                                         char **out);

/*
 * Keeps the run history open for reading until flowlua_free: the reports
 * (flowlua_report_*, flowlua_run_view_open, flowlua_run_mark_get) then
 * read through it instead of opening the history at each call, which is
 * what a server answering many requests needs (the web UI: a PostgreSQL
 * history costs a connection per open). Runs of processes that are gone
 * are still marked Crashed, at most a second after a report first sees
 * them. FLOWLUA_EINVAL when there is
 * no history yet (no file: run a flow first), FLOWLUA_EIO when it cannot
 * be opened; the message says why. Calling it again does nothing.
 */
FLOWLUA_API int flowlua_history_keep_open(flowlua *rt);

/*
 * One stored run, loaded once and read in parts: what the web UI's page
 * of a run asks for, a piece at a time, without sending a 100,000-task
 * run whole. flowlua_run_view_open loads the run (run_ref: an id, an
 * unambiguous prefix, or "last"), its task runs and the graph stored
 * with it; FLOWLUA_EINVAL when no run matches. The view is a
 * snapshot: it holds what it read and reads the history again only for
 * the attempts, on the first timeline (open another view to see later
 * changes; flowlua_run_mark_get says when there are any). It does not refer to rt after open returns, but
 * like rt it is used by one thread at a time. Each part is JSON in *out,
 * which the caller frees with flowlua_string_free(); FLOWLUA_ENOMEM (the
 * message on rt) is their only failure. Reading runs no script.
 */
typedef struct flowlua_run_view flowlua_run_view;
FLOWLUA_API int flowlua_run_view_open(flowlua *rt, const char *run_ref,
                                      flowlua_run_view **out);
/* NULL is allowed. */
FLOWLUA_API void flowlua_run_view_free(flowlua_run_view *v);
/* The run's full id (owned by the view) and its flowlua_flow_state (-1
   for a state this flowlua does not know). */
FLOWLUA_API const char *flowlua_run_view_id(const flowlua_run_view *v);
FLOWLUA_API int flowlua_run_view_state(const flowlua_run_view *v);

/* The run as `flowlua show --json` prints it, without "tasks" (whose
   count is "task_runs"), with "graph": {"tasks": N, "edges": E}. */
FLOWLUA_API int flowlua_run_view_summary(flowlua *rt,
                                         const flowlua_run_view *v,
                                         char **out);

/* Which task runs flowlua_run_view_tasks lists: those in one state
   (flowlua_task_state, -1: any), from the offset-th of them (0-based, in
   the order the run declared them), at most limit (0: none, which still
   counts them). */
typedef struct flowlua_tasks_query {
  int state;
  size_t offset, limit;
} flowlua_tasks_query;
/* {"total": matching task runs, "offset": o, "tasks": [each as `show
   --json` prints a task run]}. FLOWLUA_EINVAL for a state out of range. */
FLOWLUA_API int flowlua_run_view_tasks(flowlua *rt, const flowlua_run_view *v,
                                       const flowlua_tasks_query *q,
                                       char **out);

/* The graph laid out in layers, each node with its task run's state;
   beyond max_nodes nodes, counts by layer and state instead. The shape is
   in docs/manual/ui.md ("GET /api/runs/ID/graph"). Made once per
   max_nodes and kept by the view. */
FLOWLUA_API int flowlua_run_view_graph(flowlua *rt, flowlua_run_view *v,
                                       size_t max_nodes, char **out);

/* The timeline: rows offset..offset+limit of the task runs, each with one
   bar per attempt in seconds from the run's start (docs/manual/ui.md,
   "GET /api/runs/ID/timeline"). The attempts are read from rt's history
   on the first call (they cost more than the run: every state change),
   so this one may also fail as flowlua_run_view_open does. */
FLOWLUA_API int flowlua_run_view_timeline(flowlua *rt, flowlua_run_view *v,
                                          size_t offset, size_t limit,
                                          char **out);

/*
 * What changes whenever a stored run or one of its task runs does,
 * read without loading the run: its state, its end, and two counters
 * that grow with every task run recorded and every change of one while
 * the run goes (0 once it has ended: an ended run changes no more). Two
 * marks that differ mean the run changed in between; equal marks, that it
 * did not. The counters' values are the history's own, not counts to
 * show (SQLite and PostgreSQL store task runs differently). run_id is a
 * full id. FLOWLUA_EINVAL when no run has it. Cheap enough to ask a few
 * times a second, however large the run (the web UI's live page).
 */
typedef struct flowlua_run_mark {
  size_t size; /* sizeof (flowlua_run_mark): see FLOWLUA_INIT */
  int state;   /* flowlua_flow_state, -1 unknown */
  double ended_at;
  long long task_runs, changes;
} flowlua_run_mark;
FLOWLUA_API int flowlua_run_mark_get(flowlua *rt, const char *run_id,
                                     flowlua_run_mark *out);

/*
 * The flows the history knows, as JSON (*out, free with
 * flowlua_string_free): {"flows": [{"name", "script", "host",
 * "script_sha256", "params" (the defaults; a required typed param, which
 * has none, is absent), "param_types" (each param by name: {"type":
 * "integer"|"number"|"string"|"boolean"|"date"|"enum"|"json",
 * "default": value or "required": true, and "min", "max", "choices" when
 * the flow.param gave them; null for a flow recorded before flowlua
 * described them), "schedule" (an object with
 * "kind", "text" and its fields, or null), "updated_at", "next_fires"
 * (the next 5 fire times, ISO 8601 in the schedule's zone; or
 * "next_fires_error"), "recent_runs" (the last 10, as `runs --json`),
 * "fire_events" (the last 10 fire times that started no run: "outcome"
 * skipped, missed, paused, ..., "scheduled_at", "count", "detail", "at"),
 * "paused" (true or false: flowlua_pause_flow), and when paused
 * "paused_since" and "paused_by"}]}, by
 * name. A flow is known once a process ran or served its script with this
 * history (its definition is recorded then), or by its runs alone ("script"
 * null). Never runs a script.
 */
FLOWLUA_API int flowlua_report_flows(flowlua *rt, char **out);

/*
 * The script file the history records for flow_name (*script, free with
 * flowlua_string_free): FLOWLUA_ENOFLOW when none is recorded,
 * FLOWLUA_ESTATE when it was recorded on another host.
 */
FLOWLUA_API int flowlua_flow_script(flowlua *rt, const char *flow_name,
                                    char **script);

/*
 * Asks the process running run run_ref (an id, a prefix of one, or "last")
 * to cancel it, through the history: that process looks about once a
 * second and cancels that run only, as its first SIGINT would (a task
 * busy in Lua code is stopped when it yields or ends). `by` names who asks
 * (kept in the history). FLOWLUA_EINVAL: no such run; FLOWLUA_ESTATE: it is
 * not Running.
 */
FLOWLUA_API int flowlua_request_cancel(flowlua *rt, const char *run_ref,
                                       const char *by);

/*
 * Pauses (paused 1) or unpauses (paused 0) flow_name's schedule through the
 * history (`flowlua pause` / `flowlua unpause`): a process serving the flow
 * on this history, on any host, reads it at each fire time; while paused,
 * each fire time is recorded as a fire event with outcome "paused" and
 * starts no run (a run already going goes on). After an unpause the next
 * fire time runs; those that passed while paused are not caught up.
 * `by` names who asks (kept in the history). *changed (may be NULL) is 1
 * when this changed the flow, 0 when it already was so (a second pause
 * keeps the first one's time and author). FLOWLUA_ENOFLOW: the history
 * knows no such flow (no recorded definition, no run).
 */
FLOWLUA_API int flowlua_pause_flow(flowlua *rt, const char *flow_name,
                                   int paused, const char *by, int *changed);

/*
 * Deletes old runs from the run history (`flowlua prune`): every run that
 * ended more than older_than seconds ago — never one still Running — with
 * its task runs, state changes and graph; fire events and fire claims as
 * old (each flow's newest claim stays); then gives the space back to the
 * file system (files created by flowlua 0.6 and later; an older file with
 * vacuum = 1 is VACUUMed, which holds the lock for as long as that takes).
 * The work goes in short transactions (about 15 ms each), so flows writing
 * to the same history meanwhile wait no longer than one. keep_failed keeps
 * every run that did not end Success; flow (NULL: all) keeps other flows'.
 * out (may be NULL) says what was deleted. FLOWLUA_ESTATE without a
 * history (":memory:"); a history that does not exist yet has nothing to
 * delete.
 */
typedef struct flowlua_prune_options {
  size_t size;       /* sizeof (flowlua_prune_options): see FLOWLUA_INIT */
  double older_than; /* seconds */
  int keep_failed;
  const char *flow;
  int vacuum;
} flowlua_prune_options;

typedef struct flowlua_prune_result {
  size_t size;        /* sizeof (flowlua_prune_result): see FLOWLUA_INIT */
  size_t runs, task_runs, fire_events, fire_claims;
  double longest_step; /* seconds the longest transaction held the lock */
  long long bytes_before, bytes_after; /* the file's size */
  size_t free_pages_kept; /* freed pages the file keeps for later writes */
} flowlua_prune_result;

FLOWLUA_API int flowlua_prune(flowlua *rt, const flowlua_prune_options *opts,
                              flowlua_prune_result *out);

/*
 * Copies a whole run history from one state to another (`flowlua state
 * copy FROM TO`): from a SQLite file into PostgreSQL (a postgresql://
 * URI), back into a new SQLite file, or between two SQLite files. Every
 * run (params, graph, owner, resumed_from, a subflow's parent, error,
 * counts), its task runs
 * with their results, state changes and worker attempts, every fire claim,
 * fire event and cached result; run ids are kept. One transaction on TO,
 * from one snapshot of FROM; the counts of both sides are compared before
 * it commits, and a difference fails the copy with nothing kept
 * (FLOWLUA_EIO, "copied N of M task runs").
 * Refused, with nothing written to TO: FROM with no history
 * (FLOWLUA_EINVAL); a run still Running in FROM (FLOWLUA_ESTATE: a live
 * driver would go on writing there; runs whose driver is gone are marked
 * Crashed first, as `runs` does); TO holding runs already (FLOWLUA_ESTATE).
 * A password in either URI never appears in a message. from and to are
 * the caller's; out (may be NULL) says what was copied. The runtime's own
 * state (flowlua_options.state_path) plays no part.
 */
typedef struct flowlua_state_copy_result {
  size_t size; /* sizeof (flowlua_state_copy_result): see FLOWLUA_INIT */
  size_t runs, task_runs, state_changes, fire_claims, fire_events;
  size_t cache_entries;
  size_t cache_skipped; /* cached values PostgreSQL cannot hold (bytes that
                           are not UTF-8): left out, a miss there */
  double seconds;       /* how long the copy took */
  /* FROM and TO as messages name them (a password masked as ***),
     truncated to fit. */
  char from_name[512], to_name[512];
} flowlua_state_copy_result;

FLOWLUA_API int flowlua_state_copy(flowlua *rt, const char *from,
                                   const char *to,
                                   flowlua_state_copy_result *out);

/*
 * Driving a run from the host's own event loop (libuv, epoll, a GUI loop),
 * without a thread:
 *   flowlua_start(rt, flow) starts a run and returns at once;
 *   the host waits until flowlua_fd(rt) is readable or flowlua_timeout_ms(rt)
 *   has passed, then calls flowlua_step(rt, &out), which does all the work
 *   that needs no waiting and returns 1 when the run has ended (out filled,
 *   as by flowlua_run), 0 while it goes on, or a negative status.
 * flowlua_fd is one descriptor for everything the runtime waits on (its
 * epoll set: transfers, child processes, flowlua_stop's wake-up); owned by
 * the runtime, valid until flowlua_free. flowlua_timeout_ms is the longest
 * the host may wait before the next step: 0 when a step has work that
 * needs no waiting (right after flowlua_start, the first tasks; once the
 * run has ended, the step that reports it), else the milliseconds to the
 * next timer, or -1 for no limit (nothing is timed: only the descriptor
 * can wake the run); -1 also when no run was started. So the loop
 *     flowlua_start(rt, NULL);
 *     do poll({flowlua_fd(rt), POLLIN}, 1, flowlua_timeout_ms(rt));
 *     while (flowlua_step(rt, &out) == 0);
 * never waits while there is work. flowlua_run, flowlua_serve and
 * flowlua_resume must not be called while a started run goes on
 * (FLOWLUA_ESTATE).
 */
FLOWLUA_API int flowlua_start(flowlua *rt, const char *flow_name);
/* Starts a resume (as flowlua_resume, with the same arguments and errors)
   and returns at once; step it like a started run. */
FLOWLUA_API int flowlua_start_resume(flowlua *rt, const char *flow_name,
                                     const char *run_ref, int force,
                                     const char *from_task);
FLOWLUA_API int flowlua_fd(const flowlua *rt);
FLOWLUA_API int flowlua_timeout_ms(flowlua *rt);
FLOWLUA_API int flowlua_step(flowlua *rt, flowlua_outcome *out);

/*
 * The flow's task graph as text: format "dot" (Graphviz) or "mermaid".
 * Data edges are solid, ordering edges (node:after) dashed; a mapped task
 * is one node. With run_ref (a run id, a prefix, or "last"; may be NULL)
 * each node is coloured by its final state in that stored run and a map
 * shows its element count. When rt has no script loaded and run_ref is
 * given, the graph is the one stored with that run (flow_name, may be NULL,
 * then only picks among that flow's runs): no script is loaded or run; a
 * run recorded by a flowlua before 0.6.0 stored none (FLOWLUA_EINVAL). On
 * success *out is a NUL-terminated string the caller frees with
 * flowlua_string_free().
 */
FLOWLUA_API int flowlua_graph(flowlua *rt, const char *flow_name,
                              const char *format, const char *run_ref,
                              char **out);

/*
 * A stored run as one self-contained HTML page (`flowlua report`): its
 * summary, its task graph, a timeline with one bar per attempt coloured by
 * how it ended, and every failure's message. run_ref is a run id, an
 * unambiguous prefix of one, or "last". Everything comes from the history
 * alone, the graph from the edges stored with the run: no script is loaded
 * or run (the history may come from elsewhere). A run recorded by a
 * flowlua before 0.6.0 stored no edges: the page shows its tasks without
 * edges and says the graph is unavailable. The page fetches nothing and
 * runs no script. On success *out is a
 * NUL-terminated string the caller frees with flowlua_string_free().
 */
FLOWLUA_API int flowlua_report_html(flowlua *rt, const char *run_ref,
                                    char **out);

/*
 * The same page written to path whole or not at all (a temporary file
 * beside it, renamed over it): FLOWLUA_EIO, with the path and the reason
 * in the message, when it cannot be written.
 */
FLOWLUA_API int flowlua_report_html_write(flowlua *rt, const char *run_ref,
                                          const char *path);

/*
 * Whether the flow has a schedule: 1 yes, 0 no, or a negative status
 * (FLOWLUA_ENOFLOW) when there is no such flow.
 */
FLOWLUA_API int flowlua_flow_scheduled(flowlua *rt, const char *flow_name);

typedef struct flowlua_serve_result {
  size_t size;      /* sizeof (flowlua_serve_result): see FLOWLUA_INIT */
  size_t runs;      /* runs started */
  size_t failed;    /* runs that ended Failed */
  size_t cancelled; /* runs that ended Cancelled */
  size_t skipped;   /* fire times skipped because a run was still going */
  size_t queued;    /* fire times that waited for a run to end, then ran */
  size_t missed;    /* fire times passed unseen: a clock jump, a suspend */
} flowlua_serve_result;

/*
 * Serves a scheduled flow: waits for each fire time, runs the flow, and
 * goes on until flowlua_stop() (the run in progress finishes first) or
 * flowlua_cancel() (it is cancelled), or until max_runs runs (0: no limit).
 * A fire time that comes due while a run is still going is handled by the
 * schedule's overlap policy (skipped, queued, or the run cancelled), and
 * logged.
 * When rt loaded a script file (flowlua_load_file), the file is looked at
 * before each fire time (a stat, then its SHA-256): new text is loaded
 * into a new runtime made like rt (its options, params and host
 * functions), which runs that fire time and the next ones, on its
 * schedule, once it still defines the flow with a schedule; runs going on
 * the earlier version finish there, and the runtimes this call made are
 * freed before it returns (rt stays the caller's, with the version it
 * loaded). New text that does not load, or lacks the flow or its
 * schedule, is logged as an error once and the served version goes on.
 * flowlua_stop and flowlua_cancel on rt reach the reloaded runtimes.
 * Returns FLOWLUA_OK when serving ended normally, with *out (may be NULL)
 * filled; an error code when the flow cannot be served.
 */
FLOWLUA_API int flowlua_serve(flowlua *rt, const char *flow_name, int max_runs,
                              flowlua_serve_result *out);

/*
 * Backfills a scheduled flow (`flowlua backfill`): runs every fire time of
 * its schedule from `from` to `to` (epoch seconds, both included), oldest
 * first, up to concurrency runs at once, each recorded with its
 * scheduled_at as a served run is. A fire time for which a run of the flow
 * already succeeded is left alone, so backfilling a range again runs only
 * what did not succeed. flowlua_stop() starts no more runs (those going
 * finish); flowlua_cancel() cancels them. Returns FLOWLUA_OK when the
 * backfill went through (runs may have failed: *out says), or an error
 * (no schedule, more than 100,000 fire times, a bad range).
 */
typedef struct flowlua_backfill_result {
  size_t size;             /* sizeof (flowlua_backfill_result): FLOWLUA_INIT */
  size_t fire_times;       /* in the range */
  size_t succeeded_before; /* left alone: a run of theirs had succeeded */
  size_t runs;             /* started and ended */
  size_t failed, cancelled; /* of those runs */
  size_t not_started;      /* stopped before their turn */
} flowlua_backfill_result;

FLOWLUA_API int flowlua_backfill(flowlua *rt, const char *flow_name,
                                 double from, double to, int concurrency,
                                 flowlua_backfill_result *out);

/*
 * Serves worker jobs (docs/manual/workers.md) on fd, a connected
 * SOCK_STREAM socket (a socketpair's end, say), for the script
 * already loaded into rt (flowlua_load_file; its tasks are found by name).
 * This is what `flowlua __worker SCRIPT` does on the descriptor its driver
 * gave it; an embedder that starts its own workers calls it the same way.
 * It sends HELLO (the protocol version, the pid, the SHA-256 of the script
 * file as loaded), then for each JOB, or each job of a JOBS frame in turn,
 * runs one attempt of the task's body and answers with its log lines, the
 * secrets it read and its RESULT. A job's failure (an error, flow.fail,
 * a timeout, a CANCEL, the memory limit) is its RESULT, never the end of
 * serving. fd is made non-blocking while it serves (its flags are restored
 * after); the caller keeps ownership of it.
 * Returns FLOWLUA_OK when the driver sends BYE or closes the connection
 * between frames (a job in progress then is stopped and not answered, and
 * jobs not started are not run),
 * and after flowlua_stop() or flowlua_cancel() (which also stops the job
 * in progress) at the next job; FLOWLUA_EIO, with the error set, on a
 * protocol or input/output error (bytes that are not frames, a message
 * out of place, the connection failing); FLOWLUA_ESTATE when no script is
 * loaded.
 */
FLOWLUA_API int flowlua_worker_serve(flowlua *rt, int fd);

/*
 * `flowlua worker` (docs/manual/many-machines.md): serves the PostgreSQL
 * queues of worker tasks with the scripts of rts[0..n), each a runtime
 * whose state is the same PostgreSQL history and which loaded one script
 * from a file (a job runs only where its script version, the SHA-256 of
 * the script text, was loaded). Jobs run on each runtime's worker
 * processes (flowlua_options.worker_program). Returns after
 * flowlua_stop(rts[0]) once the jobs in hand are finished (FLOWLUA_OK);
 * FLOWLUA_EINVAL for a state that is not PostgreSQL, a script not loaded
 * from a file, slots < 1 or lease <= 0; FLOWLUA_EIO, with rts[0]'s error
 * set, when the database stays away longer than FLOWLUA_PG_RETRY.
 */
typedef struct flowlua_queue_options {
  const char *const *queues; /* the queues served; none (0): every queue */
  size_t n_queues;
  int slots;    /* jobs run at once; >= 1 */
  double lease; /* seconds a job's lease lasts unrenewed; > 0 */
} flowlua_queue_options;
FLOWLUA_API int flowlua_serve_queues(flowlua *const *rts, size_t n,
                                     const flowlua_queue_options *opts);

/* `flowlua workers`: the live `flowlua worker` processes of rt's
   PostgreSQL history (host, pid, queues, script versions, slots in use,
   last heartbeat), as text or JSON, in *out (flowlua_string_free). */
FLOWLUA_API int flowlua_report_workers(flowlua *rt, int json, char **out);

/*
 * The next fire times of the flow's schedule strictly after `after` (epoch
 * seconds), into times[0..count). Returns how many were written (fewer
 * than count when the schedule ends, by its `until`), or a negative status
 * with the error set: FLOWLUA_EINVAL when the flow has no schedule.
 */
FLOWLUA_API int flowlua_next_fires(flowlua *rt, const char *flow_name,
                                   double after, double *times, int count);

/*
 * Time text for the flow's schedule: ISO 8601 with the UTC offset, in the
 * schedule's zone (a cron schedule's `tz`; local time otherwise).
 * flowlua_format_time writes t into buf (len >= 40 is enough; the caller
 * owns buf). flowlua_parse_time reads text such as
 * "2026-03-29T01:30:00+01:00", "2026-03-29T01:30" or "2026-03-29" (without
 * an offset: a time in the schedule's zone) into *out. Both return
 * FLOWLUA_OK or a status with the error set.
 */
FLOWLUA_API int flowlua_format_time(flowlua *rt, const char *flow_name,
                                    double t, char *buf, size_t len);
FLOWLUA_API int flowlua_parse_time(flowlua *rt, const char *flow_name,
                                   const char *text, double *out);

/*
 * Stopping. Both are async-signal-safe and callable from any thread: they
 * only set a flag and wake the event loop.
 * flowlua_stop: stop serving — start no new run; the run in progress
 * finishes. flowlua_run is not affected.
 * flowlua_cancel: cancel the run in progress — its running tasks end
 * Cancelled, pending ones never start — and stop serving.
 * Flags stay set (later runs are cancelled at once) until
 * flowlua_reset_stop().
 */
FLOWLUA_API void flowlua_stop(flowlua *rt);
FLOWLUA_API void flowlua_cancel(flowlua *rt);
FLOWLUA_API void flowlua_reset_stop(flowlua *rt);

/*
 * For a process about to exit while a task is stuck in one C call that
 * never returns (a backtracking string.find: no timeout or cancel can reach
 * it). Called from ANOTHER thread than the runtime's, never from a signal
 * handler (the CLI's second SIGINT wakes a thread of its own for it): when
 * the runtime's thread is inside a task's code (or enters one within 5 s:
 * the call waits for it), records every run in
 * progress, and its task runs not ended, as Cancelled with the error `why`,
 * and returns FLOWLUA_OK; the runtime's thread then stops for good if the
 * call ever returns, and the caller must exit the process (_exit). Else
 * FLOWLUA_ESTATE and nothing is recorded (the next `runs`/`show` marks the
 * run Crashed once the process is gone). The runtime cannot be used again.
 */
FLOWLUA_API int flowlua_abandon(flowlua *rt, const char *why);

typedef struct flowlua_task_info {
  size_t size;        /* sizeof (flowlua_task_info): see FLOWLUA_INIT */
  const char *key;    /* stable key: "name", "name#2" for the 2nd call,
                         "name[3]" for element 3 of a map */
  const char *task;   /* the task's name */
  int state;          /* flowlua_task_state */
  int attempts;       /* attempts started */
  double duration;    /* seconds from first start to the end; 0 if never run */
  const char *error;  /* last error, NULL if none */
  int map_size;       /* for a map's node: its elements; -1 otherwise */
  int map_index;      /* for one element of a map: 1-based; 0 otherwise */
} flowlua_task_info;

/*
 * Task runs of the last run or check, in graph order with each map's
 * elements after its node. Strings are owned by the runtime and valid until
 * the next load, run, check or free. out->size must be set (FLOWLUA_INIT).
 */
FLOWLUA_API size_t flowlua_task_count(flowlua *rt);
FLOWLUA_API int flowlua_task_get(flowlua *rt, size_t i,
                                 flowlua_task_info *out);

struct lua_State;

/*
 * Adds a C function to the `flowlua` Lua module, as flow.NAME, for the
 * scripts loaded after (and the one loaded now, if it has required the
 * module). fn follows the lua_CFunction convention (flowlua.h does not
 * include lua.h; include <lua.h> to write one). NAME must be a Lua
 * identifier that is not already a field of the module (FLOWLUA_EINVAL,
 * with the error set). The caller keeps ownership of name.
 */
FLOWLUA_API int flowlua_register_function(flowlua *rt, const char *name,
                                          int (*fn)(struct lua_State *L));

/*
 * The runtime's Lua state, for embedders that need to go further than this
 * API. Owned by the runtime: do not close it, and leave its stack balanced.
 */
struct lua_State;
FLOWLUA_API struct lua_State *flowlua_lua_state(flowlua *rt);

#ifdef __cplusplus
}
#endif
#endif /* FLOWLUA_H */
