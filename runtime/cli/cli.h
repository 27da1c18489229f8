/*
 * cli.h — the flowlua command line, parsed into a struct.
 *
 * Pure parsing: no I/O, no runtime. Options may come before or after the
 * script path, as "--opt value" or "--opt=value"; "--" ends the options.
 */
#ifndef FL_CLI_H
#define FL_CLI_H

#include <stddef.h>

typedef enum cli_command {
  CLI_RUN,   /* flowlua script.lua */
  CLI_CHECK, /* flowlua check script.lua */
  CLI_NEXT,  /* flowlua next script.lua: the next fire times */
  CLI_RUNS,  /* flowlua runs: the run history */
  CLI_SHOW,  /* flowlua show RUN_ID|last: one run, task by task */
  CLI_GRAPH, /* flowlua graph script.lua: the task graph as text */
  CLI_REPORT, /* flowlua report RUN_ID|last --html PATH: a run as HTML */
  CLI_PRUNE,  /* flowlua prune --older-than 30d: delete old runs */
  CLI_BACKFILL, /* flowlua backfill script.lua --from T1 --to T2 */
  CLI_STATE_COPY, /* flowlua state copy FROM TO: a history copied whole */
  CLI_WORKER,  /* flowlua worker SCRIPT...: serve PostgreSQL queues */
  CLI_WORKERS, /* flowlua workers: the live workers */
  CLI_PAUSE,   /* flowlua pause FLOW: its schedule off, through the history */
  CLI_UNPAUSE, /* flowlua unpause FLOW: its schedule on again */
  CLI_SERVE,   /* flowlua serve PATH...: every scheduled flow, one process */
  CLI_HELP,
  CLI_VERSION
} cli_command;

typedef struct cli_param {
  const char *name; /* points into argv */
  size_t name_len;
  const char *value;
} cli_param;

typedef struct cli_args {
  cli_command command;
  const char *script;
  const char *run_ref; /* show, report: RUN_ID or "last" */
  const char *html;    /* report: --html PATH, the page to write */
  const char *flow;    /* --flow NAME; pause, unpause: FLOW */
  const char *state;   /* --state PATH; NULL = the default */
  const char *resume;  /* --resume RUN_ID|last */
  const char *from_task;
  const char *run_id;  /* --run-id UUID: the next run's id */
  int force, json;
  int limit;           /* runs: at most this many (default 20) */
  const char *format;  /* graph: "dot" (default) or "mermaid" */
  const char *run;     /* graph: colour by this stored run */
  int once, quiet;
  int no_status;    /* --no-status: no live status on a terminal */
  int concurrency;  /* 0 = not given */
  int workers;      /* --workers; 0 = not given (the CPUs); -1 = none
                       (--workers 0) */
  int max_runs;     /* 0 = not given */
  int count;        /* next: how many fire times (default 10) */
  const char *from; /* next: ISO 8601 time to count from; NULL = now;
                       backfill: the range's start */
  const char *to;   /* backfill: the range's end */
  int log_level;    /* flowlua_log_level; -1 = not given */
  int log_format;   /* flowlua_log_format; -1 = not given */
  size_t memory_limit; /* --memory-limit, in bytes; 0 = not given */
  double older_than;   /* prune: --older-than, seconds; -1 = not given */
  double retention;    /* serving: --retention, seconds; 0 = not given */
  int keep_failed;     /* prune: --keep-failed */
  int vacuum;          /* prune: --vacuum */
  const char *copy_from, *copy_to; /* state copy FROM TO */
  /* worker, serve: its scripts (owned array; serve: files and folders), --queue (owned array), --slots,
     --lease (seconds; 0 = not given) */
  const char **scripts;
  size_t n_scripts;
  const char **queues;
  size_t n_queues;
  int slots;
  double lease;
  cli_param *params; /* owned: free with cli_args_free */
  size_t n_params;
} cli_args;

/*
 * Parses argv. Returns 0, or -1 with a one-line reason in err ("unknown
 * option '--foo'"). Strings in *out point into argv.
 */
int cli_parse(int argc, char **argv, cli_args *out, char *err, size_t errlen);
void cli_args_free(cli_args *a);

/* The --help text. */
const char *cli_usage(void);

#endif
