/*
 * ui_spawn.h — the runs the web UI starts: each a `flowlua` process of its
 * own, in a session of its own, so that it goes on when the UI stops, and
 * is a run like any other in the history.
 */
#ifndef FL_UI_SPAWN_H
#define FL_UI_SPAWN_H

#include <pthread.h>
#include <stddef.h>
#include <sys/types.h>

#include "flowlua.h"

/* How long a start may take before the run is in the history: a script
   that loads slowly, a history that is busy. */
#define FL_UI_START_SECONDS 30

typedef struct fl_ui_children fl_ui_children;

/* The processes started so far, reaped as they end. */
fl_ui_children *fl_ui_children_new(void);
void fl_ui_children_free(fl_ui_children *k);

/*
 * Runs the flowlua program `exe` with argv (argv[0] included; NULL-ended)
 * and the history `state` in its environment (FLOWLUA_STATE: a URI's
 * password stays out of the process list), then waits until run run_id is
 * in the history read through rt. 0 with *pid set once it is; -1 with why
 * in msg (the process's own message when it ended first, with its stderr,
 * cut to msglen). The process is not stopped on a timeout: it may still
 * record its run, which the message says. Called holding lock (the
 * server's, which guards rt and k; may be NULL), which is released while
 * it sleeps between two looks.
 */
int fl_ui_spawn_run(fl_ui_children *k, flowlua *rt, pthread_mutex_t *lock,
                    const char *exe, const char *state, char *const argv[],
                    const char *run_id, pid_t *pid, char *msg, size_t msglen);

#endif
