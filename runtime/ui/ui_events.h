/*
 * ui_events.h — GET /api/runs/ID/events: a run's changes as server-sent
 * events (text/event-stream), so that a running run's page updates
 * within a second without a reload.
 *
 * Each stream is an HTTP response whose body never ends while the run
 * goes: libmicrohttpd runs each connection on a thread of its own
 * (ui_server.c says why), and the stream's reader waits on that thread,
 * reading the run's mark (flowlua_run_mark_get) a few times a second
 * under the server's lock and sending an event when it changed.
 */
#ifndef FL_UI_EVENTS_H
#define FL_UI_EVENTS_H

#include <pthread.h>

#include "flowlua.h"
#include "ui_mhd.h"
#include "ui_reply.h"

typedef struct fl_ui_streams {
  pthread_mutex_t *lock; /* the server's: guards rt and open */
  flowlua *rt;
  int stop_fd;           /* readable once the server stops: streams end */
  int open, max;         /* streams open now, and at most */
} fl_ui_streams;

/* The stream of run_id's changes (a full id: the page has it from the
   summary). Called with s->lock held. NULL with the answer in r: 404 no
   such run, 503 too many streams open, 500 out of memory. */
struct MHD_Response *fl_ui_events_response(fl_ui_streams *s,
                                           struct MHD_Connection *c,
                                           const char *run_id,
                                           fl_ui_reply *r);

#endif
