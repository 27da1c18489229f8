/*
 * ui_main.c — the `flowlua ui` command: its options, the checks before
 * listening (a token beyond loopback, a history that can be read), then the
 * server until a signal.
 *
 * Everything that can be refused is refused before the socket is bound,
 * and the line "flowlua ui: listening on URL" comes only once requests are
 * answered: scripts and tests wait for it.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "flowlua.h"
#include "ui.h"
#include "ui_listen.h"
#include "ui_server.h"

enum { UI_OK = 0, UI_FAILED = 1, UI_USAGE = 2 };

typedef struct ui_args {
  const char *state, *listen, *token;
} ui_args;

static const char usage[] =
    "usage: flowlua ui [--state PATH|URL] [--listen ADDR:PORT] [--token T]\n"
    "\n"
    "Serves a read-only web UI and JSON API over the run history.\n"
    "  --state PATH|URL   the history (default: FLOWLUA_STATE, else\n"
    "                     .flowlua/state.db)\n"
    "  --listen ADDR:PORT where to listen (default 127.0.0.1:8080; port 0:\n"
    "                     one the system picks, printed once listening)\n"
    "  --token T          required beyond loopback (or FLOWLUA_UI_TOKEN)\n";

/* "--opt value" or "--opt=value" at argv[*i]; NULL when argv[*i] is not
   opt. *missing is set when opt has no value. */
static const char *option(int argc, char **argv, int *i, const char *opt,
                          int *missing) {
  size_t n = strlen(opt);
  if (strncmp(argv[*i], opt, n) != 0) return NULL;
  if (argv[*i][n] == '=') return argv[*i] + n + 1;
  if (argv[*i][n] != '\0') return NULL;
  if (*i + 1 >= argc) {
    *missing = 1;
    return NULL;
  }
  return argv[++*i];
}

/* 0, -1 on bad usage (said), 1 for --help (printed). */
static int parse_args(int argc, char **argv, ui_args *a) {
  for (int i = 2; i < argc; i++) {
    int missing = 0;
    const char *v;
    if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
      fputs(usage, stdout);
      return 1;
    } else if ((v = option(argc, argv, &i, "--state", &missing))) {
      a->state = v;
    } else if ((v = option(argc, argv, &i, "--listen", &missing))) {
      a->listen = v;
    } else if ((v = option(argc, argv, &i, "--token", &missing))) {
      a->token = v;
    } else {
      fprintf(stderr, missing ? "flowlua ui: %s needs a value\n%s"
                              : "flowlua ui: unexpected argument '%s'\n%s",
              argv[i], usage);
      return -1;
    }
  }
  return 0;
}

static const char *env_or(const char *given, const char *env,
                          const char *fallback) {
  if (given) return given;
  const char *v = getenv(env);
  return v && *v ? v : fallback;
}

static int is_url(const char *state) {
  return strncmp(state, "postgresql://", 13) == 0 ||
         strncmp(state, "postgres://", 11) == 0;
}

/* The runtime over the history, or NULL once said why not: a file that is
   not there is refused here (reading alone would show an empty list), and
   a file that is not a history by the first read. */
static flowlua *open_history(const char *state) {
  if (!is_url(state) && access(state, R_OK) != 0) {
    fprintf(stderr, "flowlua ui: cannot read the history %s: %s (run a "
                    "flow first, or name the history with --state)\n",
            state, strerror(errno));
    return NULL;
  }
  flowlua_options opts;
  flowlua_options_init(&opts);
  opts.state_path = state;
  opts.log_level = FLOWLUA_LOG_WARN;
  flowlua *rt = NULL;
  int rc = flowlua_new(&opts, &rt);
  if (rc != FLOWLUA_OK) {
    fprintf(stderr, "flowlua ui: cannot start the runtime: %s\n",
            flowlua_strstatus(rc));
    return NULL;
  }
  flowlua_runs_query probe = {.state = -1, .limit = 1};
  char *text = NULL;
  /* Kept open: every request reads through the same handle (under the
     server's lock), not a new connection or file handle each. */
  if (flowlua_history_keep_open(rt) != FLOWLUA_OK ||
      flowlua_report_runs_page(rt, &probe, &text) != FLOWLUA_OK) {
    fprintf(stderr, "flowlua ui: cannot read the history: %s\n",
            flowlua_errmsg(rt));
    flowlua_free(rt);
    return NULL;
  }
  flowlua_string_free(text);
  return rt;
}

/* Waits for SIGINT, SIGTERM or SIGHUP, which `stop` holds blocked: the
   server's thread was started with them blocked too, so they come here. */
static void wait_for_stop(const sigset_t *stop) {
  int sig;
  while (sigwait(stop, &sig) != 0) {
  }
}

static int serve(flowlua *rt, fl_ui_actions *actions, const fl_ui_addr *addr) {
  char err[512];
  int fd = fl_ui_listen(addr, err, sizeof err);
  if (fd < 0) {
    fprintf(stderr, "flowlua ui: %s\n", err);
    return UI_FAILED;
  }
  char url[128];
  fl_ui_url(fd, url, sizeof url);
  sigset_t stop, old;
  sigemptyset(&stop);
  sigaddset(&stop, SIGINT);
  sigaddset(&stop, SIGTERM);
  sigaddset(&stop, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &stop, &old);
  fl_ui_server *server = NULL;
  if (fl_ui_server_start(rt, actions, fd, &server, err, sizeof err) != 0) {
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    fprintf(stderr, "flowlua ui: %s\n", err);
    return UI_FAILED;
  }
  fprintf(stderr, "flowlua ui: listening on %s\n", url);
  fflush(stderr);
  wait_for_stop(&stop);
  fl_ui_server_stop(server);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  fprintf(stderr, "flowlua ui: stopped\n");
  return UI_OK;
}

int fl_ui_main(int argc, char **argv) {
  ui_args a = {0};
  int parsed = parse_args(argc, argv, &a);
  if (parsed) return parsed > 0 ? UI_OK : UI_USAGE;
  const char *listen = a.listen ? a.listen : "127.0.0.1:8080";
  const char *token = env_or(a.token, "FLOWLUA_UI_TOKEN", NULL);
  const char *state = env_or(a.state, "FLOWLUA_STATE", ".flowlua/state.db");
  fl_ui_addr addr;
  char err[512];
  if (fl_ui_addr_parse(listen, &addr, err, sizeof err) != 0) {
    fprintf(stderr, "flowlua ui: %s\n", err);
    return UI_USAGE;
  }
  if (!addr.loopback && (!token || !*token)) {
    fprintf(stderr,
            "flowlua ui: refusing to listen on %s without a token: other "
            "hosts could reach it. Give --token T (or FLOWLUA_UI_TOKEN), or "
            "listen on 127.0.0.1\n", listen);
    return UI_USAGE;
  }
  signal(SIGPIPE, SIG_IGN); /* a client gone mid-answer is not our death */
  flowlua *rt = open_history(state);
  if (!rt) return UI_FAILED;
  fl_ui_actions *actions = NULL;
  if (fl_ui_actions_new(state, token, &actions, err, sizeof err) != 0) {
    fprintf(stderr, "flowlua ui: %s\n", err);
    flowlua_free(rt);
    return UI_FAILED;
  }
  int code = serve(rt, actions, &addr);
  fl_ui_actions_free(actions);
  flowlua_free(rt);
  return code;
}
