/* cli.c — parsing the flowlua command line; see cli.h. */
#include "cli.h"

#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "duration.h"
#include "flowlua.h"

const char *cli_usage(void) {
  return "Usage: flowlua [options] SCRIPT.lua\n"
         "       flowlua check [options] SCRIPT.lua\n"
         "       flowlua next [--count N] [--from TIME] SCRIPT.lua\n"
         "       flowlua runs [--flow NAME] [--limit N] [--json]\n"
         "       flowlua show RUN_ID|last [--flow NAME] [--json]\n"
         "       flowlua graph [--format dot|mermaid] [--run RUN_ID|last] SCRIPT.lua\n"
         "       flowlua graph [--format dot|mermaid] --run RUN_ID|last\n"
         "       flowlua report RUN_ID|last --html OUT.html\n"
         "       flowlua backfill --from TIME --to TIME [--concurrency N] SCRIPT.lua\n"
         "       flowlua prune --older-than AGE [--keep-failed] [--flow NAME]\n"
         "                     [--vacuum] [--json]\n"
         "       flowlua state copy FROM TO\n"
         "       flowlua worker SCRIPT.lua... --state URL [--queue NAME]...\n"
         "                      [--slots N] [--lease SECONDS]\n"
         "       flowlua workers --state URL [--json]\n"
         "       flowlua serve PATH... [--state PATH|URL] [--max-runs N]\n"
         "       flowlua pause FLOW [--state PATH|URL]\n"
         "       flowlua unpause FLOW [--state PATH|URL]\n"
         "       flowlua ui [--state PATH|URL] [--listen ADDR:PORT] [--token T]\n"
         "\n"
         "Runs the flow that SCRIPT.lua returns (flow.define(...)): on its\n"
         "schedule until SIGINT/SIGTERM/SIGHUP (the run in progress\n"
         "finishes; a second signal cancels it, a third forces the exit), or\n"
         "once when it has no schedule (a first signal cancels the run, a\n"
         "second forces the exit).\n"
         "'check' loads the script and builds and validates every flow's\n"
         "task graph without running any task. 'next' prints the schedule's\n"
         "next fire times (ISO 8601, in the schedule's zone), one per line.\n"
         "'runs' lists the recorded runs, newest first; 'show' prints one\n"
         "run task by task (state, attempts, duration, error). 'graph' prints\n"
         "the task graph (flowlua graph x.lua | dot -Tsvg > x.svg). 'report'\n"
         "writes one run as a self-contained HTML page: its summary, graph,\n"
         "a timeline with one bar per attempt, and every failure's message.\n"
         "'backfill' runs every fire time of the schedule from --from to --to\n"
         "(oldest first, --concurrency runs at once), but those that already\n"
         "succeeded.\n"
         "'prune' deletes the runs that ended longer than AGE ago (30d, 12h,\n"
         "1d12h), never a running one, and gives their space back, in short\n"
         "transactions that flows writing meanwhile hardly notice.\n"
         "'state copy' copies a whole run history from FROM to TO (a SQLite\n"
         "file or a postgresql:// URI, either way): TO must hold no runs, and\n"
         "no run of FROM may be Running.\n"
         "'worker' runs the jobs of the scripts' worker tasks from a\n"
         "PostgreSQL history's queues (every queue, or each --queue), --slots\n"
         "at once (default: the number of CPUs), until SIGINT/SIGTERM (the\n"
         "jobs in hand finish; a second signal abandons them). 'workers'\n"
         "lists the live workers.\n"
         "'serve' serves every scheduled flow of the scripts and folders\n"
         "(each *.lua directly in a folder) in one process, each on its own\n"
         "schedule, into one history, until SIGINT/SIGTERM/SIGHUP; an\n"
         "edited script is reloaded at its flow's next fire time.\n"
         "'pause' switches a flow's schedule off through the history: the\n"
         "process serving it records each fire time as paused instead of\n"
         "running it (a run in progress goes on); 'unpause' switches it on\n"
         "again, from the next fire time.\n"
         "\n"
         "Options:\n"
         "  --once               run the flow once, now, ignoring its schedule\n"
         "  --max-runs N         stop serving after N runs\n"
         "  --count N            next: how many fire times (default 10)\n"
         "  --from TIME          next: count from this ISO 8601 time (default:\n"
         "                       now; without an offset, in the schedule's zone)\n"
         "  --param NAME=VALUE   set a flow parameter (repeatable); the value\n"
         "                       is converted to the type of its default\n"
         "  --flow NAME          the flow to use when the script defines several\n"
         "  --state PATH         the run history (default $FLOWLUA_STATE, else\n"
         "                       .flowlua/state.db; :memory: keeps none)\n"
         "  --resume RUN_ID|last run a Failed, Cancelled or Crashed run again:\n"
         "                       tasks that succeeded keep their results\n"
         "  --force              resume even though the graph has changed\n"
         "  --run-id UUID        the id of the run (or resume) to start, instead\n"
         "                       of a new one: for a caller that must know it\n"
         "                       before the run is recorded\n"
         "  --from-task NAME     with --resume: run NAME and everything\n"
         "                       downstream of it again\n"
         "  --limit N            runs: at most N runs (default 20)\n"
         "  --json               runs, show, workers: print JSON\n"
         "  --format FORMAT      graph: dot (default) or mermaid\n"
         "  --run RUN_ID|last    graph: colour each task by its state in that run\n"
         "                       (without SCRIPT: the graph stored with the run)\n"
         "  --html PATH          report: write the page to PATH (replaced whole)\n"
         "  --retention AGE      serving: prune runs that ended longer ago\n"
         "                       (30d) at the start and once a day\n"
         "  --older-than AGE     prune: the runs that ended longer ago go\n"
         "  --keep-failed        prune: keep every run that did not succeed\n"
         "  --vacuum             prune: VACUUM a history made before 0.6 once,\n"
         "                       so that it can give space back from then on\n"
         "  --concurrency N      tasks running at once (default: the flow's, 32)\n"
         "  --memory-limit SIZE  the most memory the flow's Lua heap may hold\n"
         "                       (512M, 2G, bytes; at least 1M): a task that\n"
         "                       reaches it fails (default: no limit); each\n"
         "                       worker process has the same limit\n"
         "  --workers N          worker processes for worker tasks (default:\n"
         "                       the number of CPUs; 0 with a PostgreSQL\n"
         "                       state: none here, `flowlua worker` runs them)\n"
         "  --log-level LEVEL    debug, info, warn or error (default: info)\n"
         "  --log-format FORMAT  text or json (default: text)\n"
         "  --quiet              log only warnings and errors; no summary\n"
         "  --no-status          no live status on a terminal (plain log lines)\n"
         "  -h, --help           show this help\n"
         "  -V, --version        show the version\n"
         "\n"
         "Exit status: 0 the run succeeded, 1 it failed, 2 bad usage or a\n"
         "script that cannot load or build, 130 cancelled (SIGINT, SIGTERM or\n"
         "SIGHUP).\n";
}

void cli_args_free(cli_args *a) {
  free(a->scripts);
  a->scripts = NULL;
  free(a->queues);
  a->queues = NULL;
  free(a->params);
  a->params = NULL;
  a->n_params = 0;
}

static int fail(char *err, size_t errlen, const char *fmt, const char *what) {
  snprintf(err, errlen, fmt, what);
  return -1;
}

static int parse_int(const char *s, int lo, int *out) {
  char *end;
  errno = 0;
  long v = strtol(s, &end, 10);
  if (errno || end == s || *end || v < lo || v > INT_MAX) return -1;
  *out = (int)v;
  return 0;
}

/* Options that take a value. */
static const char *const valued[] = {
    "--param",     "--flow",       "--concurrency", "--max-runs",
    "--log-level", "--log-format", "--count",       "--from",
    "--state",     "--resume",     "--from-task",   "--limit",
    "--format",    "--run",        "--memory-limit",
    "--html",      "--workers",    "--older-than", "--retention",
    "--to",        "--queue",      "--slots",      "--lease",
    "--run-id",    NULL};

static int takes_value(const char *name, size_t len) {
  for (int i = 0; valued[i]; i++)
    if (strlen(valued[i]) == len && strncmp(valued[i], name, len) == 0)
      return 1;
  return 0;
}

/* A size such as 512M, 2G, 64KiB or 1048576 (bytes); units are powers of
   1024, and a B after the unit is optional. 0, or -1 when s is not one. */
static int parse_size(const char *s, size_t *out) {
  char *end;
  errno = 0;
  if (*s < '0' || *s > '9') return -1; /* strtoull takes "-1" and " 1" */
  unsigned long long v = strtoull(s, &end, 10);
  if (errno) return -1;
  int shift = 0;
  switch (*end) {
  case 'k': case 'K': shift = 10; break;
  case 'm': case 'M': shift = 20; break;
  case 'g': case 'G': shift = 30; break;
  case 't': case 'T': shift = 40; break;
  }
  if (shift) {
    end++;
    if (*end == 'i') end++; /* KiB, MiB */
    if (*end == 'B' || *end == 'b') end++;
  }
  if (*end || v > (SIZE_MAX >> shift)) return -1;
  *out = (size_t)(v << shift);
  return 0;
}

static int add_param(cli_args *a, const char *kv, char *err, size_t errlen) {
  const char *eq = strchr(kv, '=');
  if (!eq || eq == kv)
    return fail(err, errlen, "--param expects NAME=VALUE, got '%s'", kv);
  cli_param *p = realloc(a->params, (a->n_params + 1) * sizeof *p);
  if (!p) return fail(err, errlen, "%s", "out of memory");
  a->params = p;
  a->params[a->n_params++] =
      (cli_param){kv, (size_t)(eq - kv), eq + 1};
  return 0;
}

/* Appends word to a growing array of words (scripts, queues). */
static int push_word(const char ***v, size_t *n, const char *word, char *err,
                     size_t errlen) {
  const char **p = realloc(*v, (*n + 1) * sizeof *p);
  if (!p) return fail(err, errlen, "%s", "out of memory");
  p[(*n)++] = word;
  *v = p;
  return 0;
}

static int apply(cli_args *a, const char *name, const char *value, char *err,
                 size_t errlen) {
  if (strcmp(name, "--param") == 0) return add_param(a, value, err, errlen);
  if (strcmp(name, "--flow") == 0) {
    if (!*value) return fail(err, errlen, "%s", "--flow expects a flow name");
    a->flow = value;
  } else if (strcmp(name, "--concurrency") == 0) {
    if (parse_int(value, 1, &a->concurrency) != 0)
      return fail(err, errlen,
                  "--concurrency expects a whole number >= 1, got '%s'", value);
  } else if (strcmp(name, "--workers") == 0) {
    if (parse_int(value, 0, &a->workers) != 0)
      return fail(err, errlen,
                  "--workers expects a whole number >= 0, got '%s'", value);
    if (a->workers == 0) a->workers = -1; /* none here */
  } else if (strcmp(name, "--queue") == 0) {
    if (!*value) return fail(err, errlen, "%s", "--queue expects a queue name");
    return push_word(&a->queues, &a->n_queues, value, err, errlen);
  } else if (strcmp(name, "--slots") == 0) {
    if (parse_int(value, 1, &a->slots) != 0)
      return fail(err, errlen,
                  "--slots expects a whole number >= 1, got '%s'", value);
  } else if (strcmp(name, "--lease") == 0) {
    char *end;
    errno = 0;
    double v = strtod(value, &end);
    if (errno || end == value || *end || !(v > 0) || v > 86400)
      return fail(err, errlen, "--lease expects seconds, more than 0 and at "
                               "most 86400, got '%s'", value);
    a->lease = v;
  } else if (strcmp(name, "--max-runs") == 0) {
    if (parse_int(value, 1, &a->max_runs) != 0)
      return fail(err, errlen,
                  "--max-runs expects a whole number >= 1, got '%s'", value);
  } else if (strcmp(name, "--count") == 0) {
    if (parse_int(value, 1, &a->count) != 0 || a->count > 100000)
      return fail(err, errlen,
                  "--count expects a whole number from 1 to 100000, got '%s'",
                  value);
  } else if (strcmp(name, "--from") == 0) {
    if (!*value)
      return fail(err, errlen, "%s", "--from expects an ISO 8601 time");
    a->from = value;
  } else if (strcmp(name, "--state") == 0) {
    if (!*value) return fail(err, errlen, "%s", "--state expects a path");
    a->state = value;
  } else if (strcmp(name, "--to") == 0) {
    if (!*value)
      return fail(err, errlen, "%s", "--to expects an ISO 8601 time");
    a->to = value;
  } else if (strcmp(name, "--resume") == 0) {
    if (!*value)
      return fail(err, errlen, "%s", "--resume expects a run id or 'last'");
    a->resume = value;
  } else if (strcmp(name, "--run-id") == 0) {
    if (!flowlua_run_id_valid(value))
      return fail(err, errlen, "--run-id expects a UUID in lower-case hex "
                               "(8-4-4-4-12 digits, as uuidgen prints), got "
                               "'%.80s'", value);
    a->run_id = value;
  } else if (strcmp(name, "--from-task") == 0) {
    if (!*value)
      return fail(err, errlen, "%s", "--from-task expects a task name");
    a->from_task = value;
  } else if (strcmp(name, "--limit") == 0) {
    if (parse_int(value, 1, &a->limit) != 0)
      return fail(err, errlen, "--limit expects a whole number >= 1, got '%s'",
                  value);
  } else if (strcmp(name, "--format") == 0) {
    if (strcmp(value, "dot") != 0 && strcmp(value, "mermaid") != 0)
      return fail(err, errlen, "--format expects dot or mermaid, got '%s'",
                  value);
    a->format = value;
  } else if (strcmp(name, "--run") == 0) {
    if (!*value)
      return fail(err, errlen, "%s", "--run expects a run id or 'last'");
    a->run = value;
  } else if (strcmp(name, "--html") == 0) {
    if (!*value)
      return fail(err, errlen, "%s", "--html expects the path of the page "
                                     "to write");
    a->html = value;
  } else if (strcmp(name, "--older-than") == 0) {
    char why[200];
    if (fl_duration_parse(value, &a->older_than, why, sizeof why) != 0)
      return fail(err, errlen, "--older-than: %s", why);
  } else if (strcmp(name, "--retention") == 0) {
    char why[200];
    if (fl_duration_parse(value, &a->retention, why, sizeof why) != 0)
      return fail(err, errlen, "--retention: %s", why);
    if (a->retention <= 0)
      return fail(err, errlen, "%s", "--retention must be longer than 0");
  } else if (strcmp(name, "--memory-limit") == 0) {
    if (parse_size(value, &a->memory_limit) != 0)
      return fail(err, errlen, "--memory-limit expects a size such as 512M, "
                               "2G or a number of bytes, got '%s'", value);
    if (a->memory_limit < (size_t)1 << 20)
      return fail(err, errlen, "--memory-limit must be at least 1M, got "
                               "'%s'", value);
  } else if (strcmp(name, "--log-level") == 0) {
    a->log_level = flowlua_log_level_parse(value);
    if (a->log_level < 0)
      return fail(err, errlen,
                  "--log-level expects debug, info, warn or error, got '%s'",
                  value);
  } else if (strcmp(name, "--log-format") == 0) {
    if (strcmp(value, "text") == 0)
      a->log_format = FLOWLUA_LOG_TEXT;
    else if (strcmp(value, "json") == 0)
      a->log_format = FLOWLUA_LOG_JSON;
    else
      return fail(err, errlen, "--log-format expects text or json, got '%s'",
                  value);
  }
  return 0;
}

/* The option at argv[*i] (its value may be the next argument, and *i then
   moves past it): 0 when read, 1 when it asks for help or the version
   (nothing more is read), -1 with the error in err. */
static int parse_option(int argc, char **argv, int *i, cli_args *out,
                        char *err, size_t errlen) {
  const char *arg = argv[*i];
  static const char *const flags[] = {"--once",    "--quiet",       "--force",
                                      "--no-status", "--json",      "--keep-failed",
                                      "--vacuum",  NULL};
  if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) {
    out->command = CLI_HELP;
    return 1;
  }
  if (strcmp(arg, "-V") == 0 || strcmp(arg, "--version") == 0) {
    out->command = CLI_VERSION;
    return 1;
  }
  int *flag_fields[] = {&out->once, &out->quiet,       &out->force,
                        &out->no_status, &out->json, &out->keep_failed,
                        &out->vacuum};
  if (strcmp(arg, "-q") == 0) arg = "--quiet";
  for (int f = 0; flags[f]; f++)
    if (strcmp(arg, flags[f]) == 0) {
      *flag_fields[f] = 1;
      return 0;
    }
  const char *eq = strchr(arg, '=');
  size_t len = eq ? (size_t)(eq - arg) : strlen(arg);
  if (!takes_value(arg, len)) {
    int is_flag = 0;
    for (int f = 0; eq && flags[f]; f++)
      is_flag |= strncmp(arg, flags[f], len) == 0;
    if (is_flag)
      snprintf(err, errlen, "option '%.*s' takes no value", (int)len, arg);
    else
      snprintf(err, errlen, "unknown option '%.*s'", (int)len, arg);
    return -1;
  }
  const char *value = eq ? eq + 1 : NULL;
  if (!value) {
    if (*i + 1 >= argc) {
      snprintf(err, errlen, "option '%s' needs a value", arg);
      return -1;
    }
    value = argv[++*i];
  }
  char name[32];
  snprintf(name, sizeof name, "%.*s", (int)len, arg);
  return apply(out, name, value, err, errlen) != 0 ? -1 : 0;
}

/* An argument that is not an option: the command (first), a run id (for
   show and report) or the script. 0, or -1 with the error in err. */
static int parse_positional(const char *arg, int *positional, cli_args *out,
                            char *err, size_t errlen) {
  static const struct {
    const char *name;
    cli_command command;
  } commands[] = {{"check", CLI_CHECK}, {"next", CLI_NEXT},
                  {"runs", CLI_RUNS},   {"show", CLI_SHOW},
                  {"graph", CLI_GRAPH}, {"report", CLI_REPORT},
                  {"prune", CLI_PRUNE}, {"backfill", CLI_BACKFILL},
                  {"state", CLI_STATE_COPY}, {"worker", CLI_WORKER},
                  {"workers", CLI_WORKERS}, {"pause", CLI_PAUSE},
                  {"unpause", CLI_UNPAUSE}, {"serve", CLI_SERVE}};
  for (size_t c = 0; *positional == 0 && !out->script &&
                     c < sizeof commands / sizeof commands[0];
       c++)
    if (strcmp(arg, commands[c].name) == 0) {
      out->command = commands[c].command;
      ++*positional;
      return 0;
    }
  if (out->command == CLI_STATE_COPY) {
    /* state copy FROM TO: the word "copy", then the two states. */
    if (*positional == 1 && strcmp(arg, "copy") != 0)
      return fail(err, errlen, "unknown command 'state %s' (there is "
                               "'state copy FROM TO')", arg);
    if (*positional == 2) out->copy_from = arg;
    if (*positional == 3) out->copy_to = arg;
    if (*positional > 3)
      return fail(err, errlen, "unexpected argument '%s' ('state copy' "
                               "takes FROM and TO)", arg);
    ++*positional;
    return 0;
  }
  if (out->command == CLI_WORKER || out->command == CLI_SERVE) {
    ++*positional;
    return push_word(&out->scripts, &out->n_scripts, arg, err, errlen);
  }
  if (out->command == CLI_PAUSE || out->command == CLI_UNPAUSE) {
    if (out->flow)
      return fail(err, errlen, "unexpected argument '%s' (one flow at a "
                               "time)", arg);
    out->flow = arg;
    ++*positional;
    return 0;
  }
  if (out->command == CLI_WORKERS)
    return fail(err, errlen, "unexpected argument '%s' ('workers' takes no "
                             "script)", arg);
  if (out->command == CLI_RUNS)
    return fail(err, errlen, "unexpected argument '%s' ('runs' takes no "
                             "script; --flow NAME picks a flow)", arg);
  if (out->command == CLI_PRUNE)
    return fail(err, errlen, "unexpected argument '%s' ('prune' takes no "
                             "script; --flow NAME picks a flow)", arg);
  if (out->command == CLI_SHOW || out->command == CLI_REPORT) {
    if (out->run_ref)
      return fail(err, errlen, "unexpected argument '%s' (one run at a "
                               "time)", arg);
    out->run_ref = arg;
    ++*positional;
    return 0;
  }
  if (out->script)
    return fail(err, errlen, "unexpected argument '%s' (one script at a time)",
                arg);
  out->script = arg;
  ++*positional;
  return 0;
}

/* `flowlua serve PATH...`: the options of serving that make sense for
   many flows at once. Not --param, --flow, --once, --resume or --run-id:
   each flow runs with its own defaults, on its schedule. */
static int check_serve(cli_args *out, char *err, size_t errlen) {
  if (out->n_scripts == 0)
    return fail(err, errlen, "%s", "serve needs the scripts or folders whose "
                                   "scheduled flows it serves: 'flowlua serve "
                                   "PATH...'");
  if (out->n_params || out->flow || out->resume || out->from_task ||
      out->force || out->limit || out->json || out->format || out->run ||
      out->once || out->count || out->from || out->to || out->html ||
      out->older_than >= 0 || out->keep_failed || out->vacuum ||
      out->run_id || out->n_queues || out->slots || out->lease > 0)
    return fail(err, errlen, "%s", "'flowlua serve' takes --state, "
                                   "--max-runs, --concurrency, "
                                   "--memory-limit, --workers, --retention, "
                                   "--log-level, --log-format, --quiet and "
                                   "--no-status (each flow runs with its own "
                                   "params' defaults); see --help");
  out->limit = 20;
  out->count = 10;
  return 0;
}

/* What the options mean together: each that goes with another command or
   option is an error naming both; then the defaults of --limit and
   --count. */
static int check_combinations(cli_args *out, char *err, size_t errlen) {
  if (out->command == CLI_SHOW && !out->run_ref)
    return fail(err, errlen, "%s", "show expects a run id or 'last'");
  if (out->command == CLI_STATE_COPY && !out->copy_to)
    return fail(err, errlen, "%s", "state copy expects FROM and TO: "
                                   "'flowlua state copy FROM TO'");
  if (out->command == CLI_STATE_COPY && out->state)
    return fail(err, errlen, "%s", "--state does not go with 'flowlua state "
                                   "copy' (FROM and TO name the states)");
  if (out->command == CLI_REPORT && !out->run_ref)
    return fail(err, errlen, "%s", "report expects a run id or 'last'");
  if (out->command == CLI_REPORT && !out->html)
    return fail(err, errlen, "%s", "report needs --html PATH: the file to "
                                   "write the page to");
  if (out->html && out->command != CLI_REPORT)
    return fail(err, errlen, "%s", "--html goes with 'flowlua report'");
  if (out->retention > 0 && out->command != CLI_RUN &&
      out->command != CLI_SERVE)
    return fail(err, errlen, "%s", "--retention goes with serving a script");
  if (out->command == CLI_PRUNE && out->older_than < 0)
    return fail(err, errlen, "%s", "prune needs --older-than AGE (30d, 12h): "
                                   "runs that ended longer ago go");
  if ((out->older_than >= 0 || out->keep_failed || out->vacuum) &&
      out->command != CLI_PRUNE)
    return fail(err, errlen, "%s", "--older-than, --keep-failed and --vacuum "
                                   "go with 'flowlua prune'");
  if (out->run_id && out->command != CLI_RUN)
    return fail(err, errlen, "%s", "--run-id goes with running a script");
  if (out->command == CLI_SERVE) return check_serve(out, err, errlen);
  if (out->command == CLI_WORKER && out->n_scripts == 0)
    return fail(err, errlen, "%s", "worker needs the scripts whose worker "
                                   "tasks it runs: 'flowlua worker SCRIPT... "
                                   "--state postgresql://...'");
  if ((out->n_queues || out->slots || out->lease > 0) &&
      out->command != CLI_WORKER)
    return fail(err, errlen, "%s", "--queue, --slots and --lease go with "
                                   "'flowlua worker'");
  if (out->command == CLI_WORKER || out->command == CLI_WORKERS) {
    const char *cmd = out->command == CLI_WORKER ? "worker" : "workers";
    /* Options of running, reporting and pruning mean nothing here. */
    if (out->n_params || out->flow || out->resume || out->from_task ||
        out->force || out->limit || out->format || out->run || out->once ||
        out->concurrency || out->workers || out->max_runs || out->count ||
        out->from || out->to || out->html ||
        (out->memory_limit && out->command == CLI_WORKERS) ||
        out->retention > 0 || out->older_than >= 0 || out->keep_failed ||
        out->vacuum)
      return fail(err, errlen, "'flowlua %s' takes --state, --log-level, "
                               "--log-format and --quiet, and for 'worker' "
                               "--queue, --slots, --lease and --memory-limit; "
                               "see --help", cmd);
    if (out->json && out->command == CLI_WORKER)
      return fail(err, errlen, "%s", "--json goes with 'flowlua workers'");
    if (!out->limit) out->limit = 20;
    if (!out->count) out->count = 10;
    return 0;
  }
  if (out->command == CLI_PAUSE || out->command == CLI_UNPAUSE) {
    const char *cmd = out->command == CLI_PAUSE ? "pause" : "unpause";
    if (!out->flow)
      return fail(err, errlen, out->command == CLI_PAUSE
                                   ? "%s expects a flow name: 'flowlua pause "
                                     "FLOW'"
                                   : "%s expects a flow name: 'flowlua "
                                     "unpause FLOW'",
                  cmd);
    if (out->n_params || out->resume || out->from_task || out->force ||
        out->limit || out->json || out->format || out->run || out->once ||
        out->no_status || out->concurrency || out->workers ||
        out->max_runs || out->count || out->from || out->to ||
        out->memory_limit || out->retention > 0 || out->older_than >= 0 ||
        out->keep_failed || out->vacuum || out->run_id || out->html)
      return fail(err, errlen, "'flowlua %s' takes a flow name, --state, "
                               "--log-level, --log-format and --quiet; see "
                               "--help", cmd);
    out->limit = 20;
    out->count = 10;
    return 0;
  }
  /* graph --run without a script draws the graph stored with the run. */
  if (!out->script && out->command != CLI_RUNS && out->command != CLI_SHOW &&
      out->command != CLI_PRUNE && out->command != CLI_STATE_COPY &&
      out->command != CLI_REPORT && !(out->command == CLI_GRAPH && out->run))
    return fail(err, errlen, "%s", "no script given");
  if (out->json && out->command != CLI_RUNS && out->command != CLI_SHOW &&
      out->command != CLI_PRUNE)
    return fail(err, errlen, "%s", "--json goes with 'flowlua runs', 'show', "
                                   "'prune' and 'workers'");
  if (out->limit && out->command != CLI_RUNS && out->command != CLI_SHOW)
    return fail(err, errlen, "%s", "--json and --limit go with 'flowlua runs' "
                                   "and 'flowlua show'");
  if (out->limit && out->command != CLI_RUNS)
    return fail(err, errlen, "%s", "--limit goes with 'flowlua runs'");
  if ((out->force || out->from_task) && !out->resume)
    return fail(err, errlen, "%s", "--force and --from-task go with --resume");
  if (out->resume && out->n_params)
    return fail(err, errlen, "%s", "--param cannot be given with --resume: a "
                                   "resume runs with the params stored for "
                                   "the run");
  if ((out->format || out->run) && out->command != CLI_GRAPH)
    return fail(err, errlen, "%s", "--format and --run go with 'flowlua graph'");
  if (out->resume && out->command != CLI_RUN)
    return fail(err, errlen, "%s", "--resume goes with running a script");
  if (!out->limit) out->limit = 20;
  if (out->command == CLI_BACKFILL && (!out->from || !out->to))
    return fail(err, errlen, "%s", "backfill needs --from TIME and --to TIME: "
                                   "the range of fire times to run");
  if (out->to && out->command != CLI_BACKFILL)
    return fail(err, errlen, "%s", "--to goes with 'flowlua backfill'");
  if (out->count && out->command != CLI_NEXT)
    return fail(err, errlen, "%s", "--count goes with 'flowlua next'");
  if (out->from && out->command != CLI_NEXT && out->command != CLI_BACKFILL)
    return fail(err, errlen, "%s", "--from goes with 'flowlua next' and "
                                   "'flowlua backfill'");
  if (!out->count) out->count = 10;
  return 0;
}

int cli_parse(int argc, char **argv, cli_args *out, char *err, size_t errlen) {
  *out = (cli_args){.command = CLI_RUN, .log_level = -1, .log_format = -1,
                    .older_than = -1};
  int positional = 0, options_done = 0;
  for (int i = 1; i < argc; i++) {
    const char *arg = argv[i];
    if (!options_done && strcmp(arg, "--") == 0) {
      options_done = 1;
    } else if (!options_done && arg[0] == '-' && arg[1] != '\0') {
      int rc = parse_option(argc, argv, &i, out, err, errlen);
      if (rc != 0) return rc < 0 ? -1 : 0;
    } else if (parse_positional(arg, &positional, out, err, errlen) != 0) {
      return -1;
    }
  }
  return check_combinations(out, err, errlen);
}
