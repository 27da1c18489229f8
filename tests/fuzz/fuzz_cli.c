/*
 * fuzz_cli.c — the command line parser (cli.c).
 *
 * Input: the arguments after argv[0], separated by NUL bytes.
 *
 * Properties:
 *  - a refusal comes with a message; an acceptance leaves every string it
 *    set pointing into argv, numbers within their documented ranges, a
 *    script for the commands that run one, and each --param split at its
 *    first '=' into a non-empty name and a value;
 *  - "--opt value" and "--opt=value" mean the same: joining every valued
 *    option with its value gives the same result or the same message.
 */
#include "cli.h"
#include "fuzz.h"

#define MAX_ARGS 64

static const char *const valued[] = {
    "--param",  "--flow",   "--concurrency", "--max-runs", "--log-level",
    "--log-format", "--count", "--from", "--state", "--resume", "--from-task",
    "--limit", "--format", "--run", "--memory-limit", "--html", "--workers",
    "--older-than", "--retention", "--to", "--queue", "--slots", "--lease",
    "--run-id", NULL};

static int is_valued(const char *arg) {
  for (int i = 0; valued[i]; i++)
    if (strcmp(arg, valued[i]) == 0) return 1;
  return 0;
}

static int points_into_argv(const char *s, int argc, char **argv) {
  if (!s) return 1;
  for (int i = 1; i < argc; i++)
    if (s >= argv[i] && s <= argv[i] + strlen(argv[i])) return 1;
  return 0;
}

/* A string field of cli_args for comparison: NULL and its text differ. */
static int same_str(const char *a, const char *b) {
  return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static void check_accepted(const cli_args *a, int argc, char **argv) {
  const char *strs[] = {a->script, a->run_ref, a->html,      a->flow,
                        a->state,  a->resume,  a->from_task, a->format,
                        a->run,    a->from,    a->to,        a->copy_from,
                        a->copy_to};
  for (size_t i = 0; i < sizeof strs / sizeof *strs; i++)
    FUZZ_CHECK(points_into_argv(strs[i], argc, argv),
               "string %zu of the result is not in argv", i);
  /* A help with a script (its params are listed) read the script before
     the -h/--help: nothing after a help is read. */
  if (a->command == CLI_HELP && a->script) {
    int help_at = -1, script_at = -1;
    for (int i = 1; i < argc; i++) {
      if (argv[i] == a->script) script_at = i;
      if (script_at > 0 && (strcmp(argv[i], "-h") == 0 ||
                            strcmp(argv[i], "--help") == 0))
        help_at = i; /* a help after the script */
    }
    FUZZ_CHECK(script_at > 0 && help_at > script_at,
               "help's script (argv[%d]) is not before a help", script_at);
  }
  if (a->command == CLI_HELP || a->command == CLI_VERSION) return;
  /* Reading a history needs no script; nor does the graph stored with a
     run (graph --run RUN_ID). */
  FUZZ_CHECK(a->script || a->command == CLI_RUNS || a->command == CLI_SHOW ||
                 a->command == CLI_REPORT || a->command == CLI_PRUNE ||
                 a->command == CLI_STATE_COPY || a->command == CLI_WORKERS ||
                 ((a->command == CLI_WORKER || a->command == CLI_SERVE) &&
                  a->n_scripts > 0) ||
                 (a->command == CLI_GRAPH && a->run) ||
                 ((a->command == CLI_PAUSE || a->command == CLI_UNPAUSE) &&
                  a->flow),
             "command %d accepted without a script", (int)a->command);
  /* worker: its scripts, queues, slots and lease, and those only there. */
  FUZZ_CHECK(a->command == CLI_WORKER ||
                 ((!a->n_scripts || a->command == CLI_SERVE) && !a->n_queues &&
                  !a->slots && a->lease == 0),
             "worker's options accepted with command %d", (int)a->command);
  /* serve: its paths, none of a single run's options (each flow runs with
     its own defaults, on its schedule). */
  FUZZ_CHECK(a->command != CLI_SERVE ||
                 (a->n_scripts > 0 && !a->script && !a->n_params && !a->flow &&
                  !a->resume && !a->once && !a->run_id && !a->json &&
                  !a->from),
             "serve accepted without a path, or with an option of another "
             "command");
  FUZZ_CHECK(a->slots >= 0 && a->lease >= 0 && a->lease <= 86400 &&
                 a->workers >= -1,
             "slots %d, lease %g, workers %d", a->slots, a->lease, a->workers);
  for (size_t i = 0; i < a->n_scripts; i++)
    FUZZ_CHECK(points_into_argv(a->scripts[i], argc, argv), "script %zu", i);
  for (size_t i = 0; i < a->n_queues; i++)
    FUZZ_CHECK(points_into_argv(a->queues[i], argc, argv) && a->queues[i][0],
               "queue %zu", i);
  /* backfill: a script and both ends of the range; --to nowhere else. */
  FUZZ_CHECK(a->command != CLI_BACKFILL || (a->script && a->from && a->to),
             "backfill accepted without its script or range");
  FUZZ_CHECK(!a->to || a->command == CLI_BACKFILL, "--to accepted with command %d",
             (int)a->command);
  /* state copy: FROM and TO, no script, no --state; the two only there. */
  FUZZ_CHECK(a->command != CLI_STATE_COPY ||
                 (a->copy_from && a->copy_to && !a->script && !a->state),
             "state copy accepted without FROM and TO, or with a script");
  FUZZ_CHECK(a->command == CLI_STATE_COPY || (!a->copy_from && !a->copy_to),
             "state copy's FROM and TO set with command %d", (int)a->command);
  /* pause, unpause: a flow name, no script, none of running's options. */
  FUZZ_CHECK((a->command != CLI_PAUSE && a->command != CLI_UNPAUSE) ||
                 (a->flow && !a->script && !a->n_params && !a->resume &&
                  !a->once && !a->max_runs && !a->json && !a->run_id),
             "pause or unpause accepted without a flow, or with a script or "
             "an option of another command");
  /* prune: an age, never negative or NaN; --retention only when serving. */
  FUZZ_CHECK(a->command != CLI_PRUNE || (a->older_than >= 0 && !a->script),
             "prune accepted with age %g", a->older_than);
  FUZZ_CHECK(a->command == CLI_PRUNE || (a->older_than == -1 && !a->keep_failed &&
                                         !a->vacuum),
             "prune's options accepted with command %d", (int)a->command);
  FUZZ_CHECK(a->retention == 0 ||
                 (a->retention > 0 &&
                  (a->command == CLI_RUN || a->command == CLI_SERVE)),
             "retention %g with command %d", a->retention, (int)a->command);
  FUZZ_CHECK(a->count >= 1 && a->count <= 100000, "count %d", a->count);
  FUZZ_CHECK(a->limit >= 1, "limit %d", a->limit);
  FUZZ_CHECK(a->concurrency >= 0 && a->max_runs >= 0, "concurrency %d, max runs %d",
             a->concurrency, a->max_runs);
  FUZZ_CHECK(a->memory_limit == 0 || a->memory_limit >= (size_t)1 << 20,
             "memory limit %zu", a->memory_limit);
  FUZZ_CHECK(!a->format || strcmp(a->format, "dot") == 0 ||
                 strcmp(a->format, "mermaid") == 0,
             "format '%s'", a->format);
  FUZZ_CHECK(a->log_level >= -1 && a->log_format >= -1, "log level %d, format %d",
             a->log_level, a->log_format);
  FUZZ_CHECK(!(a->resume && a->n_params), "--resume accepted with --param");
  for (size_t i = 0; i < a->n_params; i++) {
    const cli_param *p = &a->params[i];
    FUZZ_CHECK(points_into_argv(p->name, argc, argv) && p->name_len > 0 &&
                   p->name[p->name_len] == '=' &&
                   memchr(p->name, '=', p->name_len) == NULL &&
                   p->value == p->name + p->name_len + 1,
               "param %zu is not split at its first '='", i);
  }
}

static void check_same_words(const char **a, size_t na, const char **b,
                             size_t nb, const char *what) {
  FUZZ_CHECK(na == nb, "%s: %zu and %zu once joined", what, na, nb);
  for (size_t i = 0; i < na; i++)
    FUZZ_CHECK(strcmp(a[i], b[i]) == 0, "%s %zu differs once joined", what, i);
}

static void check_same(const cli_args *a, const cli_args *b) {
  check_same_words(a->scripts, a->n_scripts, b->scripts, b->n_scripts, "scripts");
  check_same_words(a->queues, a->n_queues, b->queues, b->n_queues, "queues");
  FUZZ_CHECK(a->slots == b->slots && a->lease == b->lease &&
                 a->workers == b->workers,
             "worker options differ once joined");
  FUZZ_CHECK(a->command == b->command && same_str(a->script, b->script) &&
                 same_str(a->run_ref, b->run_ref) && same_str(a->html, b->html) &&
                 same_str(a->flow, b->flow) && same_str(a->state, b->state) &&
                 same_str(a->resume, b->resume) &&
                 same_str(a->from_task, b->from_task) &&
                 same_str(a->format, b->format) && same_str(a->run, b->run) &&
                 same_str(a->from, b->from) && same_str(a->to, b->to) &&
                 same_str(a->copy_from, b->copy_from) &&
                 same_str(a->copy_to, b->copy_to) &&
                 a->force == b->force &&
                 a->json == b->json && a->limit == b->limit && a->once == b->once &&
                 a->quiet == b->quiet && a->no_status == b->no_status &&
                 a->concurrency == b->concurrency && a->max_runs == b->max_runs &&
                 a->count == b->count && a->log_level == b->log_level &&
                 a->log_format == b->log_format &&
                 a->memory_limit == b->memory_limit && a->n_params == b->n_params &&
                 a->older_than == b->older_than && a->retention == b->retention &&
                 a->keep_failed == b->keep_failed && a->vacuum == b->vacuum,
             "'--opt value' and '--opt=value' parse differently");
  for (size_t i = 0; i < a->n_params; i++)
    FUZZ_CHECK(a->params[i].name_len == b->params[i].name_len &&
                   memcmp(a->params[i].name, b->params[i].name,
                          a->params[i].name_len) == 0 &&
                   strcmp(a->params[i].value, b->params[i].value) == 0,
               "param %zu differs once joined", i);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *argv[MAX_ARGS + 1], *joined[MAX_ARGS + 1];
  int argc = 1, n_joined = 1;
  argv[0] = joined[0] = "flowlua";
  fuzz_input in = {data, size};
  while (in.left && argc < MAX_ARGS) {
    argv[argc] = fuzz_take_until(&in, 0, NULL);
    if (!argv[argc]) abort();
    argc++;
  }
  argv[argc] = NULL;

  /* The same words with each "--opt value" written "--opt=value", as the
     parser walks them: nothing after "--" is an option. */
  char *owned[MAX_ARGS];
  int n_owned = 0;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--") == 0) {
      while (i < argc) joined[n_joined++] = argv[i++];
      break;
    }
    if (is_valued(argv[i]) && i + 1 < argc) {
      size_t n = strlen(argv[i]), m = strlen(argv[i + 1]);
      char *w = malloc(n + m + 2);
      if (!w) abort();
      memcpy(w, argv[i], n);
      w[n] = '=';
      memcpy(w + n + 1, argv[i + 1], m + 1);
      owned[n_owned++] = joined[n_joined++] = w;
      i++;
      continue;
    }
    joined[n_joined++] = argv[i];
  }
  joined[n_joined] = NULL;

  cli_args a, b;
  char err_a[256] = "", err_b[256] = "";
  int rc_a = cli_parse(argc, argv, &a, err_a, sizeof err_a);
  int rc_b = cli_parse(n_joined, joined, &b, err_b, sizeof err_b);
  FUZZ_CHECK(rc_a == 0 || (rc_a == -1 && err_a[0]), "result %d, message '%s'",
             rc_a, err_a);
  FUZZ_CHECK(rc_a == rc_b, "'--opt value' gives %d ('%s'), '--opt=value' %d ('%s')",
             rc_a, err_a, rc_b, err_b);
  if (rc_a == 0) {
    check_accepted(&a, argc, argv);
    check_same(&a, &b);
  } else {
    FUZZ_CHECK(strcmp(err_a, err_b) == 0, "messages differ: '%s' and '%s'",
               err_a, err_b);
  }
  cli_args_free(&a);
  cli_args_free(&b);
  for (int i = 0; i < n_owned; i++) free(owned[i]);
  for (int i = 1; i < argc; i++) free(argv[i]);
  return 0;
}
