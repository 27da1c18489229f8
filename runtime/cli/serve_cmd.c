/*
 * serve_cmd.c — `flowlua serve PATH...`: every scheduled flow of the given
 * scripts and folders served by one process, into one history.
 *
 * One thread and one flowlua handle per served flow, each calling
 * flowlua_serve() as `flowlua SCRIPT.lua` does. Why threads rather than
 * one loop multiplexing the flows: flowlua_serve owns its loop until it
 * returns, and a handle is one Lua state driven by one thread; a handle
 * per flow keeps the flows' Lua states, overlap policies, reloads and
 * failures apart (a flow stuck in a long C call delays no other flow's
 * fire times), and needs nothing from the library that an embedder lacks.
 * A script that defines two scheduled flows is loaded once per flow, so
 * its top level runs once per flow it serves.
 *
 * Signals: SIGINT, SIGTERM and SIGHUP (unless ignored, as under nohup) and
 * SIGUSR1 are blocked before the first thread starts, so every thread
 * inherits the mask and they all come to the main thread's sigwait(): no
 * handler runs on a serving thread. The first stops every flow
 * (flowlua_stop, documented thread-safe: runs in progress finish), the
 * second cancels them (flowlua_cancel), the third exits at once (130).
 * SIGUSR1 is the threads' own: the last one to end sends it to the main
 * thread, so that it stops waiting.
 *
 * What it must not do: reach past include/flowlua.h (the layers' rule for
 * the CLI), or serve anything when one script of the start is bad.
 */
#define _XOPEN_SOURCE 700 /* realpath */
#include "serve_cmd.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum { EXIT_OK = 0, EXIT_RUN_FAILED = 1, EXIT_USAGE = 2, EXIT_CANCELLED = 130 };

/* A served flow: its handle, and what its thread reports when it ends. */
typedef struct served {
  flowlua *rt;
  const char *script; /* borrowed from the script list */
  char *flow;         /* owned */
  pthread_t thread;
  int running;        /* the thread was created (and not joined yet) */
  int rc;             /* flowlua_serve's status */
  flowlua_serve_result res;
  struct server *owner;
} served;

typedef struct server {
  const cli_args *args;
  flowlua_options opts;
  char **scripts; /* owned: the files to serve, in order */
  size_t n_scripts;
  served *flows;
  size_t n_flows, cap_flows;
  pthread_t main_thread;
  pthread_mutex_t lock;
  size_t ended; /* threads that returned, under lock */
} server;

static void say(const server *sv, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* An informational line of the command's own (not --quiet). */
static void say(const server *sv, const char *fmt, ...) {
  if (sv->args->quiet) return;
  va_list ap;
  va_start(ap, fmt);
  fputs("flowlua: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
}

/* ---- the scripts --------------------------------------------------------- */

static int has_lua_suffix(const char *name) {
  size_t n = strlen(name);
  return n > 4 && strcmp(name + n - 4, ".lua") == 0;
}

static int by_name(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Adds path unless the same file (by its real path) is there already: a
   script named and also found in a named folder is served once. 0, or -1
   out of memory. */
static int add_script(server *sv, const char *path) {
  char real[PATH_MAX], other[PATH_MAX];
  if (!realpath(path, real)) snprintf(real, sizeof real, "%s", path);
  for (size_t i = 0; i < sv->n_scripts; i++)
    if (realpath(sv->scripts[i], other) && strcmp(other, real) == 0) return 0;
  char **v = realloc(sv->scripts, (sv->n_scripts + 1) * sizeof *v);
  if (!v) return -1;
  sv->scripts = v;
  if (!(v[sv->n_scripts] = strdup(path))) return -1;
  sv->n_scripts++;
  return 0;
}

/* The *.lua regular files directly in folder dir (not in its
   subfolders: a folder of flows may keep modules they require in a
   subfolder, which are no flows), sorted by name. 0, or -1 after saying
   why. */
static int add_folder(server *sv, const char *dir) {
  DIR *d = opendir(dir);
  if (!d) {
    fprintf(stderr, "flowlua: serve: cannot read the folder %s: %s\n", dir,
            strerror(errno));
    return -1;
  }
  char **names = NULL;
  size_t n = 0;
  int rc = 0;
  struct dirent *e;
  while (rc == 0 && (e = readdir(d))) {
    if (!has_lua_suffix(e->d_name)) continue;
    size_t len = strlen(dir) + strlen(e->d_name) + 2;
    char *path = malloc(len), **grown = realloc(names, (n + 1) * sizeof *names);
    if (grown) names = grown;
    if (!path || !grown) {
      free(path);
      rc = -1;
      break;
    }
    snprintf(path, len, "%s/%s", dir, e->d_name);
    struct stat st;
    if (stat(path, &st) == 0 && S_ISREG(st.st_mode))
      names[n++] = path;
    else
      free(path);
  }
  closedir(d);
  if (rc == 0) qsort(names, n, sizeof *names, by_name);
  if (rc == 0 && n == 0)
    say(sv, "serve: the folder %s holds no *.lua script", dir);
  for (size_t i = 0; i < n; i++) {
    if (rc == 0 && add_script(sv, names[i]) != 0) rc = -1;
    free(names[i]);
  }
  free(names);
  if (rc != 0) fprintf(stderr, "flowlua: serve: out of memory\n");
  return rc;
}

/* The command line's paths, folders expanded. 0, or -1 after saying why. */
static int collect_scripts(server *sv) {
  for (size_t i = 0; i < sv->args->n_scripts; i++) {
    const char *path = sv->args->scripts[i];
    struct stat st;
    if (stat(path, &st) != 0) {
      fprintf(stderr, "flowlua: serve: cannot serve %s: %s\n", path,
              strerror(errno));
      return -1;
    }
    if (S_ISDIR(st.st_mode)) {
      if (add_folder(sv, path) != 0) return -1;
    } else if (add_script(sv, path) != 0) {
      fprintf(stderr, "flowlua: serve: out of memory\n");
      return -1;
    }
  }
  return 0;
}

/* ---- the flows ----------------------------------------------------------- */

/* A second flow of this name, in another script: the history keys flows
   by name, so two of them would share runs, fire claims and a pause. */
static const served *same_name(const server *sv, const char *flow) {
  for (size_t i = 0; i < sv->n_flows; i++)
    if (strcmp(sv->flows[i].flow, flow) == 0) return &sv->flows[i];
  return NULL;
}

static served *add_flow(server *sv, const char *script, const char *flow) {
  if (sv->n_flows == sv->cap_flows) {
    size_t cap = sv->cap_flows ? 2 * sv->cap_flows : 8;
    served *v = realloc(sv->flows, cap * sizeof *v);
    if (!v) return NULL;
    sv->flows = v;
    sv->cap_flows = cap;
  }
  served *f = &sv->flows[sv->n_flows];
  *f = (served){.script = script, .flow = strdup(flow)};
  if (!f->flow) return NULL;
  sv->n_flows++;
  return f;
}

/* A handle with the script loaded, or NULL after saying why (*code set).
   Only the first handle prunes (--retention): one history, one prune. */
static flowlua *open_script(server *sv, const char *script, int *code) {
  flowlua_options o = sv->opts;
  if (sv->n_flows > 0) o.retention = 0;
  flowlua *rt = NULL;
  int rc = flowlua_new(&o, &rt);
  if (rc != FLOWLUA_OK) {
    fprintf(stderr, "flowlua: cannot start the runtime: %s\n",
            flowlua_strstatus(rc));
    *code = EXIT_RUN_FAILED;
    return NULL;
  }
  if (flowlua_load_file(rt, script) != FLOWLUA_OK) {
    fprintf(stderr, "flowlua: serve: %s (nothing is served: fix the script "
                    "or leave it out)\n",
            flowlua_errmsg(rt));
    flowlua_free(rt);
    *code = EXIT_USAGE;
    return NULL;
  }
  return rt;
}

/* Loads one script: each of its scheduled flows gets a handle of its own
   (the first reuses the one that listed them); a flow without a schedule
   is said and left. EXIT_OK, or the exit code after saying why. */
static int load_script(server *sv, const char *script) {
  int code = EXIT_OK, lister_given = 0;
  flowlua *lister = open_script(sv, script, &code);
  if (!lister) return code;
  size_t n = flowlua_flow_count(lister);
  for (size_t i = 0; i < n && code == EXIT_OK; i++) {
    const char *name = flowlua_flow_name(lister, i);
    const served *twin = same_name(sv, name);
    if (twin) {
      fprintf(stderr, "flowlua: serve: %s and %s both define a flow named "
                      "'%s' (the history keys flows by name: rename one); "
                      "nothing is served\n",
              twin->script, script, name);
      code = EXIT_USAGE;
      break;
    }
    if (flowlua_flow_scheduled(lister, name) != 1) {
      say(sv, "serve: flow '%s' of %s has no schedule: not served", name,
          script);
      continue;
    }
    flowlua *rt = lister_given ? open_script(sv, script, &code) : lister;
    if (!rt) break;
    served *f = add_flow(sv, script, name);
    if (!f) {
      if (rt != lister) flowlua_free(rt);
      fprintf(stderr, "flowlua: serve: out of memory\n");
      code = EXIT_RUN_FAILED;
      break;
    }
    f->rt = rt;
    f->owner = sv;
    lister_given = 1;
  }
  if (!lister_given) flowlua_free(lister);
  return code;
}

/* ---- serving ------------------------------------------------------------- */

/* A flow's thread: serves it until it is stopped or done, then tells the
   main thread when it is the last to end. */
static void *serve_thread(void *arg) {
  served *f = arg;
  server *sv = f->owner;
  f->res = (flowlua_serve_result){.size = sizeof f->res};
  f->rc = flowlua_serve(f->rt, f->flow, sv->args->max_runs, &f->res);
  /* Said now, not at the exit: the other flows go on being served, and a
     flow that stopped must not go unnoticed until then. */
  if (f->rc != FLOWLUA_OK)
    fprintf(stderr, "flowlua: flow '%s' (%s) is no longer served: %s\n",
            f->flow, f->script, flowlua_errmsg(f->rt));
  pthread_mutex_lock(&sv->lock);
  int last = ++sv->ended == sv->n_flows;
  pthread_mutex_unlock(&sv->lock);
  if (last) pthread_kill(sv->main_thread, SIGUSR1);
  return NULL;
}

/* Starts a thread per flow. 0, or -1 after saying why (the threads started
   are stopped and joined by the caller). */
static int start_threads(server *sv) {
  for (size_t i = 0; i < sv->n_flows; i++) {
    served *f = &sv->flows[i];
    int err = pthread_create(&f->thread, NULL, serve_thread, f);
    if (err) {
      fprintf(stderr, "flowlua: serve: cannot start a thread for flow '%s': "
                      "%s\n",
              f->flow, strerror(err));
      /* The ones started must still see the count reach the total. */
      pthread_mutex_lock(&sv->lock);
      sv->ended += sv->n_flows - i;
      pthread_mutex_unlock(&sv->lock);
      return -1;
    }
    f->running = 1;
  }
  return 0;
}

static void stop_all(server *sv, int cancel) {
  for (size_t i = 0; i < sv->n_flows; i++)
    if (sv->flows[i].running) {
      if (cancel)
        flowlua_cancel(sv->flows[i].rt);
      else
        flowlua_stop(sv->flows[i].rt);
    }
}

static int all_ended(server *sv) {
  pthread_mutex_lock(&sv->lock);
  int done = sv->ended == sv->n_flows;
  pthread_mutex_unlock(&sv->lock);
  return done;
}

/* The main thread's wait: signals, until every thread has ended. Returns
   how many stopping signals came. */
static int wait_for_threads(server *sv, const sigset_t *set) {
  int signals = 0;
  while (!all_ended(sv)) {
    int sig;
    if (sigwait(set, &sig) != 0 || sig == SIGUSR1) continue;
    signals++;
    if (signals == 1) {
      fputs("flowlua: stopping after the runs in progress (signal again to "
            "cancel them)\n", stderr);
      stop_all(sv, 0);
    } else if (signals == 2) {
      fputs("flowlua: cancelling the runs in progress (signal again to force "
            "the exit)\n", stderr);
      stop_all(sv, 1);
    } else {
      /* A task stuck in a C call no cancel reaches: its run is marked
         Crashed by the next flowlua that opens the history. */
      fputs("flowlua: forcing the exit: runs still going are left for the "
            "next 'flowlua runs' to mark Crashed\n", stderr);
      _exit(EXIT_CANCELLED);
    }
  }
  return signals;
}

/* The summary line of each flow, and the exit code of them all. */
static int finish(server *sv, int signals) {
  int code = EXIT_OK, cancelled_by_signal = 0;
  for (size_t i = 0; i < sv->n_flows; i++) {
    served *f = &sv->flows[i];
    if (f->rc != FLOWLUA_OK) { /* said by its thread */
      int c = f->rc == FLOWLUA_ENOMEM || f->rc == FLOWLUA_EIO
                  ? EXIT_RUN_FAILED : EXIT_USAGE;
      if (c > code) code = c;
      continue;
    }
    say(sv, "flow '%s' (%s): served %zu run(s): %zu failed, %zu cancelled; "
            "fire times: %zu queued, %zu skipped, %zu missed",
        f->flow, f->script, f->res.runs, f->res.failed, f->res.cancelled,
        f->res.queued, f->res.skipped, f->res.missed);
    if (signals > 1 && f->res.cancelled) cancelled_by_signal = 1;
    if ((f->res.failed || f->res.cancelled) && code < EXIT_RUN_FAILED)
      code = EXIT_RUN_FAILED;
  }
  if (cancelled_by_signal && code != EXIT_USAGE) code = EXIT_CANCELLED;
  return code;
}

static int serve_all(server *sv) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGUSR1);
  struct sigaction hup;
  if (sigaction(SIGHUP, NULL, &hup) == 0 && hup.sa_handler != SIG_IGN)
    sigaddset(&set, SIGHUP); /* under nohup it stays ignored */
  signal(SIGPIPE, SIG_IGN);
  pthread_sigmask(SIG_BLOCK, &set, NULL);
  sv->main_thread = pthread_self();
  for (size_t i = 0; i < sv->n_flows; i++)
    say(sv, "serve: flow '%s' of %s", sv->flows[i].flow,
        sv->flows[i].script);
  int started = start_threads(sv) == 0;
  if (!started) stop_all(sv, 1);
  int signals = wait_for_threads(sv, &set);
  for (size_t i = 0; i < sv->n_flows; i++)
    if (sv->flows[i].running) {
      pthread_join(sv->flows[i].thread, NULL);
      sv->flows[i].running = 0;
    }
  /* The mask stays: a signal now (the process is about to exit) or the
     last thread's SIGUSR1 still pending must not kill it. */
  int code = finish(sv, signals);
  return started ? code : EXIT_RUN_FAILED;
}

int cli_serve(const cli_args *args, const flowlua_options *opts) {
  server sv = {.args = args, .opts = *opts};
  pthread_mutex_init(&sv.lock, NULL);
  int code = collect_scripts(&sv) == 0 ? EXIT_OK : EXIT_USAGE;
  for (size_t i = 0; i < sv.n_scripts && code == EXIT_OK; i++)
    code = load_script(&sv, sv.scripts[i]);
  if (code == EXIT_OK && sv.n_flows == 0) {
    fprintf(stderr, "flowlua: serve: nothing to serve: no flow of the %zu "
                    "script(s) given has a schedule\n",
            sv.n_scripts);
    code = EXIT_USAGE;
  }
  if (code == EXIT_OK) code = serve_all(&sv);
  for (size_t i = 0; i < sv.n_flows; i++) {
    flowlua_free(sv.flows[i].rt);
    free(sv.flows[i].flow);
  }
  free(sv.flows);
  for (size_t i = 0; i < sv.n_scripts; i++) free(sv.scripts[i]);
  free(sv.scripts);
  pthread_mutex_destroy(&sv.lock);
  return code;
}
