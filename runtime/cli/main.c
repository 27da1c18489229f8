/*
 * main.c — the flowlua command: a thin user of the public API.
 *
 * Parses the command line, turns SIGINT/SIGTERM/SIGHUP into flowlua_stop(),
 * runs or checks the flow, prints the end-of-run summary and maps the
 * outcome to the exit codes of DESIGN.md. Nothing here is out of an embedder's reach.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "flowlua.h"
#include "status.h"
#include "termtext.h"
#include "utf8.h"
#include "ui.h"
#include "serve_cmd.h"
#include "worker_cmd.h"

enum { EXIT_OK = 0, EXIT_RUN_FAILED = 1, EXIT_USAGE = 2, EXIT_CANCELLED = 130 };

static flowlua *volatile g_runtime;
static volatile sig_atomic_t g_signals;
static volatile sig_atomic_t g_serving;
static volatile sig_atomic_t g_quiet; /* --quiet */
/* The live status is on screen: the loop that redraws it says what a
   signal did, above the status, instead of the handler. */
static volatile sig_atomic_t g_status_says;

static const char msg_stopping[] = "flowlua: stopping after the run in "
                                   "progress (signal again to cancel it)\n";
static const char msg_worker_stopping[] =
    "flowlua: stopping: taking no more jobs, finishing the ones in hand (a "
    "second signal abandons them)\n";
static const char msg_worker_abandoning[] =
    "flowlua: abandoning the jobs in hand: their leases lapse and their "
    "drivers retry them elsewhere\n";
static const char msg_cancelling[] =
    "flowlua: cancelling the run (signal again to force the exit)\n";
static const char msg_forcing[] =
    "flowlua: forcing the exit: the run is recorded Cancelled\n";
static const char msg_forced_unrecorded[] =
    "flowlua: forcing the exit: the run could not be recorded now (it will "
    "show as Crashed)\n";

/* The signal that forces the exit wakes this pipe's reader, a thread of
   ours: recording the run is no work for a signal handler. */
static int g_force_pipe[2] = {-1, -1};

static void say(const char *text) {
  if (g_status_says) return;
  ssize_t w = write(2, text, strlen(text));
  (void)w;
}

/* Serving: the first signal lets the run in progress finish, the second
   cancels it. A single run: the first signal cancels it. The next one
   forces the exit (130), even when a task is stuck in a C call that no
   cancel reaches: the forcing thread records the run Cancelled first. One
   more kills flowlua at once. */
static void on_signal(int sig) {
  int n = ++g_signals, cancel_at = g_serving ? 2 : 1;
  if (n < cancel_at) {
    /* A driver's own worker is told to stop at every driver's end: it
       runs with --quiet, and says nothing then. */
    if (g_serving != 2 || !g_quiet) say(g_serving == 2 ? msg_worker_stopping : msg_stopping);
    if (g_runtime) flowlua_stop(g_runtime);
  } else if (n == cancel_at) {
    say(g_serving == 2 ? msg_worker_abandoning : msg_cancelling);
    if (g_runtime) flowlua_cancel(g_runtime);
  } else if (n == cancel_at + 1 && g_force_pipe[1] >= 0) {
    ssize_t w = write(g_force_pipe[1], "!", 1);
    (void)w;
  } else {
    signal(sig, SIG_DFL);
    raise(sig);
  }
}

static void *force_exit_thread(void *unused) {
  (void)unused;
  char c;
  while (read(g_force_pipe[0], &c, 1) < 0 && errno == EINTR) {
  }
  flowlua *rt = g_runtime;
  int recorded = rt && flowlua_abandon(rt, "cancelled: flowlua was forced "
                                           "to exit (a second signal) while "
                                           "a task was busy") == FLOWLUA_OK;
  /* Straight to stderr: the status line's owner is the stuck thread. */
  const char *text = recorded ? msg_forcing : msg_forced_unrecorded;
  ssize_t w = write(2, text, strlen(text));
  (void)w;
  _exit(EXIT_CANCELLED);
  return NULL;
}

/* Without the thread, a forcing signal kills flowlua as the next one. */
static void start_force_exit_thread(void) {
  if (pipe(g_force_pipe) != 0) return;
  fcntl(g_force_pipe[0], F_SETFD, FD_CLOEXEC); /* not for flow.shell's children */
  fcntl(g_force_pipe[1], F_SETFD, FD_CLOEXEC);
  pthread_t t;
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, &old); /* signals stay with main */
  int failed = pthread_create(&t, NULL, force_exit_thread, NULL);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  if (failed) {
    close(g_force_pipe[0]);
    close(g_force_pipe[1]);
    g_force_pipe[0] = g_force_pipe[1] = -1;
    return;
  }
  pthread_detach(t);
}

/* SIGHUP (the terminal closed, the ssh session dropped) ends the run as
   SIGTERM does: cancelled, children killed, recorded as it ended. Under
   nohup it stays ignored, as asked. SIGPIPE is ignored: a log reader that
   went away (`flowlua x.lua 2>&1 | head -1`) only costs the log lines,
   never the run (the library's own log writes are safe either way). */
static void install_signal_handlers(void) {
  start_force_exit_thread();
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  struct sigaction hup;
  if (sigaction(SIGHUP, NULL, &hup) == 0 && hup.sa_handler != SIG_IGN)
    sigaction(SIGHUP, &sa, NULL);
  signal(SIGPIPE, SIG_IGN);
}

/* "flowlua: MESSAGE" on stderr. A message may quote what a script or a
   server said (a script that fails while loading): on a terminal its
   control characters are escaped. */
static void say_error(const char *msg) {
  fl_buf safe = FL_BUF_INIT;
  if (isatty(2) && fl_term_needs_escape(msg, strlen(msg))) {
    fl_term_escape(&safe, msg, strlen(msg));
    msg = safe.oom ? "(a message that could not be shown: out of memory)"
                   : fl_buf_str(&safe);
  }
  fprintf(stderr, "flowlua: %s\n", msg);
  fl_buf_free(&safe);
}

static int status_exit_code(int status) {
  return status == FLOWLUA_ENOMEM || status == FLOWLUA_EIO ? EXIT_RUN_FAILED
                                                           : EXIT_USAGE;
}

/* ---- the summary --------------------------------------------------------- */

/* s in cols columns of a terminal, cut at a character and padded with
   spaces: a task's name may be UTF-8, and printf pads by bytes. */
static void put_cell(FILE *f, const char *s, int cols) {
  int used;
  size_t n = fl_utf8_fit(s, strlen(s), cols, &used);
  fwrite(s, 1, n, f);
  fprintf(f, "%*s", cols - used, "");
}

static void print_state_counts(const size_t *by_state) {
  int first = 1;
  for (int st = 0; st < FLOWLUA_TASK_STATE_COUNT; st++) {
    if (!by_state[st]) continue;
    fprintf(stderr, "%s%zu %s", first ? "" : ", ", by_state[st],
            flowlua_task_state_name(st));
    first = 0;
  }
}

/* The first line of s, cut to fit buf. On a terminal its control
   characters are escaped: an error may quote a hostile server's reply. */
static const char *first_line(const char *s, char *buf, size_t len) {
  if (!s) return "";
  size_t n = strcspn(s, "\n");
  fl_buf safe = FL_BUF_INIT;
  if (isatty(2) && fl_term_needs_escape(s, n)) {
    fl_term_escape(&safe, s, n);
    if (safe.oom) {
      fl_buf_free(&safe);
      return "";
    }
    s = fl_buf_str(&safe);
    n = safe.len;
  }
  if (n >= len) n = len - 4, snprintf(buf, len, "%.*s...", (int)n, s);
  else snprintf(buf, len, "%.*s", (int)n, s);
  fl_buf_free(&safe);
  return buf;
}

/* One row per task call (a map is one row with its elements' states), or,
   for big flows, one row per task name, so it stays one screen. */
static void print_summary(flowlua *rt, const char *flow,
                          const flowlua_outcome *out) {
  size_t n = flowlua_task_count(rt), rows = 0;
  flowlua_task_info info = FLOWLUA_INIT(flowlua_task_info);
  for (size_t i = 0; i < n; i++)
    if (flowlua_task_get(rt, i, &info) == FLOWLUA_OK && info.map_index == 0)
      rows++;

  fprintf(stderr, "\nflow '%s' %s in %.3f s (run %s): %zu task run%s — ", flow,
          flowlua_flow_state_name(out->state), out->duration, out->run_id,
          out->tasks, out->tasks == 1 ? "" : "s");
  print_state_counts(out->by_state);
  fputc('\n', stderr);
  if (rows > 30) {
    /* Group by task name, in first-seen order. */
    fprintf(stderr, "  %-32s %7s %9s  %s\n", "TASK", "RUNS", "ATTEMPTS",
            "STATES");
    char **names = calloc(n, sizeof *names);
    size_t n_names = 0;
    for (size_t i = 0; names && i < n; i++) {
      if (flowlua_task_get(rt, i, &info) != FLOWLUA_OK || info.map_size >= 0)
        continue;
      size_t k = 0;
      while (k < n_names && strcmp(names[k], info.task) != 0) k++;
      if (k < n_names) continue;
      names[n_names++] = (char *)info.task;
      size_t runs = 0, attempts = 0, by_state[FLOWLUA_TASK_STATE_COUNT] = {0};
      for (size_t j = i; j < n; j++) {
        flowlua_task_info t = FLOWLUA_INIT(flowlua_task_info);
        if (flowlua_task_get(rt, j, &t) != FLOWLUA_OK || t.map_size >= 0 ||
            strcmp(t.task, info.task) != 0)
          continue;
        runs++;
        attempts += (size_t)t.attempts;
        by_state[t.state]++;
      }
      fputs("  ", stderr);
      put_cell(stderr, info.task, 32);
      fprintf(stderr, " %7zu %9zu  ", runs, attempts);
      print_state_counts(by_state);
      fputc('\n', stderr);
      if (n_names == 20) {
        fprintf(stderr, "  ...\n");
        break;
      }
    }
    free(names);
    return;
  }
  fprintf(stderr, "  %-32s %-14s %8s %10s\n", "TASK", "STATE", "ATTEMPTS",
          "DURATION");
  for (size_t i = 0; i < n; i++) {
    if (flowlua_task_get(rt, i, &info) != FLOWLUA_OK || info.map_index) continue;
    char err[100];
    if (info.map_size >= 0) {
      size_t by_state[FLOWLUA_TASK_STATE_COUNT] = {0}, attempts = 0;
      for (size_t j = i + 1; j < n; j++) {
        flowlua_task_info c = FLOWLUA_INIT(flowlua_task_info);
        if (flowlua_task_get(rt, j, &c) != FLOWLUA_OK || !c.map_index) break;
        by_state[c.state]++;
        attempts += (size_t)c.attempts;
      }
      char label[256];
      snprintf(label, sizeof label, "%s [map of %d]", info.key, info.map_size);
      fputs("  ", stderr);
      put_cell(stderr, label, 32);
      fprintf(stderr, " %-14s %8zu %8.3f s  ",
              flowlua_task_state_name(info.state), attempts, info.duration);
      print_state_counts(by_state);
      fputc('\n', stderr);
      continue;
    }
    fputs("  ", stderr);
    put_cell(stderr, info.key, 32);
    fprintf(stderr, " %-14s %8d %8.3f s  %s\n",
            flowlua_task_state_name(info.state), info.attempts, info.duration,
            info.state == FLOWLUA_TASK_SUCCESS
                ? ""
                : first_line(info.error, err, sizeof err));
  }
}

/* ---- commands ------------------------------------------------------------ */

static int check_one(flowlua *rt, const char *name) {
  if (flowlua_check(rt, name) != FLOWLUA_OK) {
    say_error(flowlua_errmsg(rt));
    return EXIT_USAGE;
  }
  printf("ok: flow '%s' (%zu tasks)\n", name, flowlua_task_count(rt));
  return EXIT_OK;
}

/* Builds and validates the chosen flow, or every flow of the script. */
/* flowlua next: the schedule's next fire times, one per line on stdout. */
static int cmd_next(flowlua *rt, const cli_args *args) {
  double from = 0;
  if (args->from) {
    if (flowlua_parse_time(rt, args->flow, args->from, &from) != FLOWLUA_OK) {
      fprintf(stderr, "flowlua: --from: %s\n", flowlua_errmsg(rt));
      return EXIT_USAGE;
    }
  } else {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    from = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
  }
  double *times = malloc((size_t)args->count * sizeof *times);
  if (!times) {
    fprintf(stderr, "flowlua: out of memory\n");
    return EXIT_RUN_FAILED;
  }
  int n = flowlua_next_fires(rt, args->flow, from, times, args->count);
  if (n < 0) {
    say_error(flowlua_errmsg(rt));
    free(times);
    return EXIT_USAGE;
  }
  int code = EXIT_OK;
  for (int i = 0; i < n; i++) {
    char text[64];
    if (flowlua_format_time(rt, args->flow, times[i], text, sizeof text) !=
        FLOWLUA_OK) {
      say_error(flowlua_errmsg(rt));
      code = EXIT_USAGE;
      break;
    }
    puts(text);
  }
  if (n < args->count && code == EXIT_OK)
    fprintf(stderr, "flowlua: the schedule ends after %d fire time(s)\n", n);
  free(times);
  return code;
}

static int set_params(flowlua *rt, const cli_args *args);

static int cmd_check(flowlua *rt, const cli_args *args) {
  /* --param values are checked too, and reach a body that needs them
     (a required param has none otherwise). */
  if (set_params(rt, args) != 0) return EXIT_USAGE;
  if (args->flow) return check_one(rt, args->flow);
  int code = EXIT_OK;
  for (size_t i = 0; i < flowlua_flow_count(rt); i++)
    if (check_one(rt, flowlua_flow_name(rt, i)) != EXIT_OK) code = EXIT_USAGE;
  return code;
}

/* After one run (or resume): the summary and the exit code. */
static int finish_once(flowlua *rt, const cli_args *args,
                       const flowlua_outcome *out) {
  const char *flow = args->flow;
  if (!flow && flowlua_flow_count(rt) == 1) flow = flowlua_flow_name(rt, 0);
  /* JSON logs stay one object per line: the run's final record is there. */
  if (!args->quiet && args->log_format != FLOWLUA_LOG_JSON)
    print_summary(rt, flow ? flow : "?", out);
  switch (out->state) {
  case FLOWLUA_FLOW_SUCCESS: return EXIT_OK;
  case FLOWLUA_FLOW_CANCELLED: return EXIT_CANCELLED;
  default: return EXIT_RUN_FAILED;
  }
}

/* ---- the live status ----------------------------------------------------- */

/* A live status for this command, or NULL: only for running a script with
   a terminal on stderr, and not with --quiet, --no-status or JSON logs
   (every stderr line is then an object). NO_COLOR drops the colours. */
static fl_status_term *status_for(const cli_args *args) {
  if (args->command != CLI_RUN || args->quiet || args->no_status ||
      args->log_format == FLOWLUA_LOG_JSON || !fl_status_term_usable(2))
    return NULL;
  const char *no_color = getenv("NO_COLOR");
  fl_status_term_options opts = {2, !(no_color && *no_color), NULL};
  return fl_status_term_new(&opts); /* out of memory: plain lines */
}

/* Says, above the status, what the signals that came since the last call
   did (the handler keeps quiet while the status is on screen). */
static void say_signals(fl_status_term *status, int *said) {
  for (; *said < g_signals && *said < 2; (*said)++)
    fl_status_term_print(status, msg_cancelling);
}

/* A single run or resume under the live status: started, then stepped from
   this loop, which also wakes when the status is due for a redraw. Returns
   as flowlua_run does. */
static int run_with_status(flowlua *rt, const cli_args *args,
                           fl_status_term *status, flowlua_outcome *out) {
  int rc = args->resume
               ? flowlua_start_resume(rt, args->flow, args->resume,
                                      args->force, args->from_task)
               : flowlua_start(rt, args->flow);
  if (rc != FLOWLUA_OK) return rc;
  g_status_says = 1;
  int said = 0;        /* signals whose message is out */
  int poll_failed = 0; /* then the run is cancelled, and stepped to its end */
  struct pollfd runtime_fd = {.fd = flowlua_fd(rt), .events = POLLIN};
  while ((rc = flowlua_step(rt, out)) == 0) {
    say_signals(status, &said);
    fl_status_term_tick(status);
    int wait = flowlua_timeout_ms(rt);
    int redraw = fl_status_term_wait_ms(status);
    if (redraw >= 0 && (wait < 0 || redraw < wait)) wait = redraw;
    if (poll(&runtime_fd, 1, wait) < 0 && errno != EINTR && !poll_failed) {
      /* Cannot wait: end the run rather than spin on a broken poll. */
      char why[160];
      snprintf(why, sizeof why, "flowlua: waiting for the run failed (poll: "
               "%s); cancelling it\n", strerror(errno));
      fl_status_term_print(status, why);
      poll_failed = 1;
      flowlua_cancel(rt);
    }
  }
  fl_status_term_clear(status);
  say_signals(status, &said);
  g_status_says = 0;
  return rc < 0 ? rc : FLOWLUA_OK;
}

/* The --param values, set on rt: 0, or -1 after saying why. */
static int set_params(flowlua *rt, const cli_args *args) {
  for (size_t i = 0; i < args->n_params; i++) {
    char name[256];
    snprintf(name, sizeof name, "%.*s", (int)args->params[i].name_len,
             args->params[i].name);
    if (flowlua_set_param(rt, name, args->params[i].value) != FLOWLUA_OK) {
      say_error(flowlua_errmsg(rt));
      return -1;
    }
  }
  return 0;
}

static int cmd_run(flowlua *rt, const cli_args *args,
                   fl_status_term *status) {
  if (set_params(rt, args) != 0) return EXIT_USAGE;
  if (args->run_id && flowlua_set_run_id(rt, args->run_id) != FLOWLUA_OK) {
    say_error(flowlua_errmsg(rt));
    return EXIT_USAGE;
  }
  int scheduled = flowlua_flow_scheduled(rt, args->flow);
  if (scheduled < 0) {
    say_error(flowlua_errmsg(rt));
    return EXIT_USAGE;
  }
  if (scheduled && !args->once && !args->resume && status)
    fl_status_term_disable(status); /* serving: a log, run after run */
  else if (status) {
    flowlua_outcome out = FLOWLUA_INIT(flowlua_outcome);
    int rc = run_with_status(rt, args, status, &out);
    if (rc != FLOWLUA_OK) {
      say_error(flowlua_errmsg(rt));
      return status_exit_code(rc);
    }
    return finish_once(rt, args, &out);
  }
  if (args->resume) {
    flowlua_outcome out = FLOWLUA_INIT(flowlua_outcome);
    int rc = flowlua_resume(rt, args->flow, args->resume, args->force,
                            args->from_task, &out);
    if (rc != FLOWLUA_OK) {
      say_error(flowlua_errmsg(rt));
      return status_exit_code(rc);
    }
    return finish_once(rt, args, &out);
  }
  if (scheduled && !args->once) {
    g_serving = 1;
    flowlua_serve_result res = FLOWLUA_INIT(flowlua_serve_result);
    int rc = flowlua_serve(rt, args->flow, args->max_runs, &res);
    g_serving = 0;
    if (rc != FLOWLUA_OK) {
      say_error(flowlua_errmsg(rt));
      return status_exit_code(rc);
    }
    if (!args->quiet)
      fprintf(stderr, "flowlua: served %zu run(s): %zu failed, %zu cancelled; "
                      "fire times: %zu queued, %zu skipped, %zu missed\n",
              res.runs, res.failed, res.cancelled, res.queued, res.skipped,
              res.missed);
    /* 130 when a signal cancelled a run; a run cancelled by the overlap
       policy (cancel_other) did not succeed either, but is no interrupt. */
    if (g_signals > 1 && res.cancelled) return EXIT_CANCELLED;
    return res.failed || res.cancelled ? EXIT_RUN_FAILED : EXIT_OK;
  }
  flowlua_outcome out = FLOWLUA_INIT(flowlua_outcome);
  int rc = flowlua_run(rt, args->flow, &out);
  if (rc != FLOWLUA_OK) {
    say_error(flowlua_errmsg(rt));
    return status_exit_code(rc);
  }
  return finish_once(rt, args, &out);
}

/* A command whose result is text (graph, runs, show): on stdout, or the
   error and its exit code. status_exit_code maps the status. */
static int print_result(flowlua *rt, int rc, char *text) {
  if (rc != FLOWLUA_OK) {
    say_error(flowlua_errmsg(rt));
    return status_exit_code(rc);
  }
  fputs(text, stdout);
  flowlua_string_free(text);
  return EXIT_OK;
}

/* `flowlua graph`: the task graph. */
static int cmd_graph(flowlua *rt, const cli_args *args) {
  char *text = NULL;
  if (set_params(rt, args) != 0) return EXIT_USAGE; /* as check's */
  int rc = flowlua_graph(rt, args->flow, args->format, args->run, &text);
  return print_result(rt, rc, text);
}

/* `flowlua runs` and `flowlua show`: the report. */
static int cmd_report(flowlua *rt, const cli_args *args) {
  char *text = NULL;
  int rc = args->command == CLI_RUNS
               ? flowlua_report_runs(rt, args->flow, args->limit, args->json,
                                     &text)
               : flowlua_report_flow_run(rt, args->run_ref, args->flow,
                                         args->json, &text);
  return print_result(rt, rc, text);
}

/* `flowlua workers`: the live workers of a PostgreSQL history. */
static int cmd_workers(flowlua *rt, const cli_args *args) {
  char *text = NULL;
  int rc = flowlua_report_workers(rt, args->json, &text);
  return print_result(rt, rc, text);
}

/* `flowlua worker SCRIPT...`: one runtime per script (rt has the first),
   all serving the history's queues until a signal. */
static int cmd_worker(flowlua *rt, const cli_args *args,
                      const flowlua_options *opts) {
  size_t n = args->n_scripts;
  flowlua **rts = calloc(n, sizeof *rts);
  if (!rts) {
    say_error("out of memory");
    return EXIT_RUN_FAILED;
  }
  rts[0] = rt;
  int code = EXIT_OK;
  for (size_t i = 0; i < n && code == EXIT_OK; i++) {
    if (i > 0 && flowlua_new(opts, &rts[i]) != FLOWLUA_OK) {
      say_error("cannot start a runtime: out of memory");
      code = EXIT_RUN_FAILED;
    } else if (flowlua_load_file(rts[i], args->scripts[i]) != FLOWLUA_OK) {
      say_error(flowlua_errmsg(rts[i]));
      code = EXIT_USAGE;
    }
  }
  if (code == EXIT_OK) {
    flowlua_queue_options q = {args->queues, args->n_queues, opts->workers,
                               args->lease > 0 ? args->lease : 30.0};
    int rc = flowlua_serve_queues(rts, n, &q);
    if (rc != FLOWLUA_OK) {
      say_error(flowlua_errmsg(rt));
      code = rc == FLOWLUA_EINVAL ? EXIT_USAGE : EXIT_RUN_FAILED;
    } else if (g_signals >= 2) {
      code = EXIT_CANCELLED; /* abandoned: the jobs' leases lapse */
    }
  }
  for (size_t i = 1; i < n; i++) flowlua_free(rts[i]);
  free(rts);
  return code;
}

/* "1.2 MB" for n bytes: what a prune gave back, as people read it. */
static void print_bytes(FILE *f, long long n) {
  if (n < 10000)
    fprintf(f, "%lld bytes", n);
  else if (n < 10000000)
    fprintf(f, "%.1f kB", (double)n / 1e3);
  else if (n < 10000000000LL)
    fprintf(f, "%.1f MB", (double)n / 1e6);
  else
    fprintf(f, "%.1f GB", (double)n / 1e9);
}

/* `flowlua state copy FROM TO`: a history copied whole; what was copied
   on stdout, a failure's message on stderr and exit 1. */
static int cmd_state_copy(flowlua *rt, const cli_args *args) {
  flowlua_state_copy_result r = FLOWLUA_INIT(flowlua_state_copy_result);
  if (flowlua_state_copy(rt, args->copy_from, args->copy_to, &r) !=
      FLOWLUA_OK) {
    say_error(flowlua_errmsg(rt));
    return EXIT_RUN_FAILED;
  }
  printf("copied %zu run%s, %zu task run%s, %zu state change%s, %zu fire "
         "claim%s, %zu fire event%s, %zu cache entr%s from %s to %s in "
         "%.2f s\n",
         r.runs, r.runs == 1 ? "" : "s", r.task_runs,
         r.task_runs == 1 ? "" : "s", r.state_changes,
         r.state_changes == 1 ? "" : "s", r.fire_claims,
         r.fire_claims == 1 ? "" : "s", r.fire_events,
         r.fire_events == 1 ? "" : "s", r.cache_entries,
         r.cache_entries == 1 ? "y" : "ies", r.from_name, r.to_name,
         r.seconds);
  if (r.cache_skipped)
    printf("left out %zu cached value%s that PostgreSQL cannot hold (not "
           "UTF-8): a cache miss there\n", r.cache_skipped,
           r.cache_skipped == 1 ? "" : "s");
  return EXIT_OK;
}

/* `flowlua prune --older-than AGE`: old runs deleted, space given back;
   what was done on stdout (a line, or JSON), 130 when a signal stopped it
   (what it deleted stays deleted). */
static int cmd_prune(flowlua *rt, const cli_args *args) {
  flowlua_prune_options o = FLOWLUA_INIT(flowlua_prune_options);
  o.older_than = args->older_than;
  o.keep_failed = args->keep_failed;
  o.flow = args->flow;
  o.vacuum = args->vacuum;
  flowlua_prune_result r = FLOWLUA_INIT(flowlua_prune_result);
  int rc = flowlua_prune(rt, &o, &r);
  if (rc != FLOWLUA_OK) {
    say_error(flowlua_errmsg(rt));
    if (g_signals) return EXIT_CANCELLED;
    return status_exit_code(rc);
  }
  if (args->json) {
    printf("{\"runs\":%zu,\"task_runs\":%zu,\"fire_events\":%zu,"
           "\"fire_claims\":%zu,\"bytes_before\":%lld,\"bytes_after\":%lld,"
           "\"free_pages_kept\":%zu,\"longest_step\":%.6f}\n",
           r.runs, r.task_runs, r.fire_events, r.fire_claims, r.bytes_before,
           r.bytes_after, r.free_pages_kept, r.longest_step);
    return EXIT_OK;
  }
  printf("pruned %zu run%s (%zu task run%s), %zu fire event%s, %zu fire "
         "claim%s; ", r.runs, r.runs == 1 ? "" : "s", r.task_runs,
         r.task_runs == 1 ? "" : "s", r.fire_events,
         r.fire_events == 1 ? "" : "s", r.fire_claims,
         r.fire_claims == 1 ? "" : "s");
  printf("the history went from ");
  print_bytes(stdout, r.bytes_before);
  printf(" to ");
  print_bytes(stdout, r.bytes_after);
  if (r.free_pages_kept)
    printf(" (%zu free pages kept for later writes: this file was made "
           "before incremental vacuum; --vacuum gives them back once)",
           r.free_pages_kept);
  printf("\n");
  return EXIT_OK;
}

/* `flowlua pause FLOW` and `flowlua unpause FLOW`: the flow's schedule
   switched off or on in the history, for whichever process serves it;
   what was done on stdout. 2 for a flow the history does not know. */
static int cmd_pause(flowlua *rt, const cli_args *args) {
  int paused = args->command == CLI_PAUSE, changed = 0;
  char by[320], host[256] = "";
  const char *user = getenv("USER");
  gethostname(host, sizeof host - 1);
  if (user && *user)
    snprintf(by, sizeof by, "%s@%s (flowlua %s)", user, host,
             paused ? "pause" : "unpause");
  else
    snprintf(by, sizeof by, "flowlua %s on %s", paused ? "pause" : "unpause",
             host);
  int rc = flowlua_pause_flow(rt, args->flow, paused, by, &changed);
  if (rc != FLOWLUA_OK) {
    say_error(flowlua_errmsg(rt));
    return status_exit_code(rc);
  }
  if (paused)
    printf(changed ? "flow '%s' paused: its fire times start no run until "
                     "'flowlua unpause %s'\n"
                   : "flow '%s' was paused already (unpause with "
                     "'flowlua unpause %s')\n",
           args->flow, args->flow);
  else
    printf(changed ? "flow '%s' unpaused: it runs again from its next fire "
                     "time\n"
                   : "flow '%s' was not paused\n",
           args->flow);
  return EXIT_OK;
}

/* `flowlua backfill SCRIPT --from T1 --to T2 [--concurrency N]`: every
   fire time in the range, N runs at once; a summary on stderr. 0 when
   every run succeeded, 1 when one failed, 130 when a signal stopped it. */
static int cmd_backfill(flowlua *rt, const cli_args *args,
                        fl_status_term *status) {
  double from, to;
  if (set_params(rt, args) != 0) return EXIT_USAGE;
  /* Several runs at once: a log, run after run, as when serving (the live
     status shows one run). */
  if (status) fl_status_term_disable(status);
  if (flowlua_parse_time(rt, args->flow, args->from, &from) != FLOWLUA_OK) {
    fprintf(stderr, "flowlua: --from: %s\n", flowlua_errmsg(rt));
    return EXIT_USAGE;
  }
  if (flowlua_parse_time(rt, args->flow, args->to, &to) != FLOWLUA_OK) {
    fprintf(stderr, "flowlua: --to: %s\n", flowlua_errmsg(rt));
    return EXIT_USAGE;
  }
  g_serving = 1; /* a first signal starts no more runs */
  flowlua_backfill_result r = FLOWLUA_INIT(flowlua_backfill_result);
  int rc = flowlua_backfill(rt, args->flow, from, to,
                            args->concurrency ? args->concurrency : 1, &r);
  g_serving = 0;
  if (rc != FLOWLUA_OK) {
    say_error(flowlua_errmsg(rt));
    return status_exit_code(rc);
  }
  fprintf(stderr,
          "flowlua: backfilled %zu fire time(s) from %s to %s: %zu ran (%zu "
          "failed, %zu cancelled), %zu had succeeded before, %zu not "
          "started\n",
          r.fire_times, args->from, args->to, r.runs, r.failed, r.cancelled,
          r.succeeded_before, r.not_started);
  if (r.cancelled || r.not_started) return EXIT_CANCELLED;
  return r.failed ? EXIT_RUN_FAILED : EXIT_OK;
}

/* `flowlua report RUN_ID --html PATH`: the page, written whole or not at
   all (a temporary file beside PATH, renamed over it). */
static int cmd_report_html(flowlua *rt, const cli_args *args) {
  int rc = flowlua_report_html_write(rt, args->run_ref, args->html);
  if (rc != FLOWLUA_OK) {
    say_error(flowlua_errmsg(rt));
    return status_exit_code(rc);
  }
  return EXIT_OK;
}

/* Text from a script, for stdout: control characters made visible on a
   terminal, as log lines are. */
static void print_text(const char *text) {
  fl_buf safe = FL_BUF_INIT;
  if (isatty(1) && fl_term_needs_escape(text, strlen(text))) {
    fl_term_escape(&safe, text, strlen(text));
    if (!safe.oom) text = fl_buf_str(&safe);
  }
  fputs(text, stdout);
  fl_buf_free(&safe);
}

/* `flowlua SCRIPT.lua --help`: the usage line, then each flow's params
   (of the --flow one only, when given) with type, default and
   constraints. The script's top level runs (it defines the flows); no
   flow body, no task, no history. */
static int cmd_script_help(const cli_args *args) {
  const char *usage = cli_usage();
  printf("%.*s\n", (int)strcspn(usage, "\n"), usage);
  flowlua_options opts;
  flowlua_options_init(&opts);
  opts.state_path = ":memory:";
  opts.log_level = FLOWLUA_LOG_WARN;
  flowlua *rt = NULL;
  int rc = flowlua_new(&opts, &rt);
  if (rc != FLOWLUA_OK) {
    fprintf(stderr, "flowlua: cannot start the runtime: %s\n",
            flowlua_strstatus(rc));
    return EXIT_RUN_FAILED;
  }
  int code = EXIT_OK;
  if (flowlua_load_file(rt, args->script) != FLOWLUA_OK) {
    say_error(flowlua_errmsg(rt));
    code = EXIT_USAGE;
  }
  size_t n = code == EXIT_OK ? flowlua_flow_count(rt) : 0;
  for (size_t i = 0; i < n && code == EXIT_OK; i++) {
    const char *name = flowlua_flow_name(rt, i);
    if (args->flow && strcmp(args->flow, name) != 0) continue;
    char *text = NULL;
    if (flowlua_flow_params_text(rt, name, &text) != FLOWLUA_OK) {
      say_error(flowlua_errmsg(rt));
      code = EXIT_USAGE;
      break;
    }
    fputs("\nFlow '", stdout);
    print_text(name);
    if (*text) {
      fputs("' params (--param NAME=VALUE):\n", stdout);
      print_text(text);
    } else {
      fputs("' takes no params.\n", stdout);
    }
    flowlua_string_free(text);
  }
  if (code == EXIT_OK && args->flow) {
    int found = 0;
    for (size_t i = 0; i < n; i++)
      found |= strcmp(args->flow, flowlua_flow_name(rt, i)) == 0;
    if (!found) {
      fprintf(stderr, "flowlua: %s has no flow named '%s'\n", args->script,
              args->flow);
      code = EXIT_USAGE;
    }
  }
  flowlua_free(rt);
  return code;
}

int main(int argc, char **argv) {
  /* A worker process, before anything else (worker_cmd.c). */
  if (argc >= 2 && strcmp(argv[1], CLI_WORKER_COMMAND) == 0)
    return cli_worker_main(argc, argv);
  /* The web UI parses its own options (ui_main.c): they are its alone. */
  if (argc >= 2 && strcmp(argv[1], FL_UI_COMMAND) == 0)
    return fl_ui_main(argc, argv);
  cli_args args;
  char err[512];
  if (cli_parse(argc, argv, &args, err, sizeof err) != 0) {
    fprintf(stderr, "flowlua: %s\nTry 'flowlua --help'.\n", err);
    cli_args_free(&args);
    return EXIT_USAGE;
  }
  if (args.command == CLI_HELP && args.script) {
    int code = cmd_script_help(&args);
    cli_args_free(&args);
    return code;
  }
  if (args.command == CLI_HELP) {
    fputs(cli_usage(), stdout);
    cli_args_free(&args);
    return EXIT_OK;
  }
  if (args.command == CLI_VERSION) {
    printf("flowlua %s\n", flowlua_version());
    cli_args_free(&args);
    return EXIT_OK;
  }

  flowlua_options opts;
  flowlua_options_init(&opts);
  /* backfill's --concurrency is how many runs go at once, not tasks. */
  if (args.concurrency && args.command != CLI_BACKFILL)
    opts.concurrency = args.concurrency;
  opts.memory_limit = args.memory_limit;
  opts.workers = args.workers;
  /* A worker's slots are its pool's size; by default the CPUs. */
  if (args.command == CLI_WORKER) {
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    opts.workers = args.slots ? args.slots : cpus > 0 ? (int)cpus : 1;
    g_serving = 2;
    g_quiet = args.quiet;
  }
  opts.retention = args.retention;
  /* Workers are this program: `flowlua __worker SCRIPT`. */
  char self[4096];
  const char *from_env = getenv("FLOWLUA_WORKER_PROGRAM");
  ssize_t self_len = from_env && *from_env
                         ? -1 /* the library takes it from there */
                         : readlink("/proc/self/exe", self, sizeof self - 1);
  if (self_len > 0) {
    self[self_len] = '\0';
    opts.worker_program = self;
  }
  if (args.quiet) opts.log_level = FLOWLUA_LOG_WARN;
  if (args.log_level >= 0) opts.log_level = args.log_level;
  if (args.log_format >= 0) opts.log_format = args.log_format;
  /* --state, else FLOWLUA_STATE (so that a team points every command at
     one history once), else the default beside the working directory. */
  const char *state_env = getenv("FLOWLUA_STATE");
  opts.state_path = args.state                  ? args.state
                    : state_env && *state_env ? state_env
                                              : ".flowlua/state.db";
  if (args.command == CLI_SERVE) {
    /* Its own handles, threads and signals (serve_cmd.c). */
    int code = cli_serve(&args, &opts);
    cli_args_free(&args);
    return code;
  }
  fl_status_term *status = status_for(&args);
  if (status) {
    opts.log_fn = fl_status_term_on_log;
    opts.log_userdata = status;
    opts.event_fn = fl_status_term_on_event;
    opts.event_userdata = status;
  }

  flowlua *rt = NULL;
  int rc = flowlua_new(&opts, &rt);
  if (rc != FLOWLUA_OK) {
    fprintf(stderr, "flowlua: cannot start the runtime: %s\n",
            flowlua_strstatus(rc));
    fl_status_term_free(status);
    cli_args_free(&args);
    return EXIT_RUN_FAILED;
  }
  g_runtime = rt;
  install_signal_handlers();

  int code;
  if (args.command == CLI_RUNS || args.command == CLI_SHOW) {
    code = cmd_report(rt, &args);
  } else if (args.command == CLI_WORKERS) {
    code = cmd_workers(rt, &args);
  } else if (args.command == CLI_WORKER) {
    code = cmd_worker(rt, &args, &opts);
  } else if (args.command == CLI_PRUNE) {
    code = cmd_prune(rt, &args);
  } else if (args.command == CLI_PAUSE || args.command == CLI_UNPAUSE) {
    code = cmd_pause(rt, &args);
  } else if (args.command == CLI_STATE_COPY) {
    code = cmd_state_copy(rt, &args);
  } else if (args.command == CLI_REPORT) {
    code = cmd_report_html(rt, &args);
  } else if (args.command == CLI_GRAPH && !args.script) {
    code = cmd_graph(rt, &args); /* --run: from the history, no script */
  } else if (flowlua_load_file(rt, args.script) != FLOWLUA_OK) {
    say_error(flowlua_errmsg(rt));
    code = EXIT_USAGE;
  } else if (args.command == CLI_CHECK) {
    code = cmd_check(rt, &args);
  } else if (args.command == CLI_GRAPH) {
    code = cmd_graph(rt, &args);
  } else if (args.command == CLI_NEXT) {
    code = cmd_next(rt, &args);
  } else if (args.command == CLI_BACKFILL) {
    code = cmd_backfill(rt, &args, status);
  } else {
    code = cmd_run(rt, &args, status);
  }
  /* A signal that interrupted loading or building is a cancel too. */
  if (g_signals && code == EXIT_USAGE) code = EXIT_CANCELLED;
  g_runtime = NULL;
  flowlua_free(rt);
  fl_status_term_free(status); /* after: freeing may still log */
  cli_args_free(&args);
  return code;
}
