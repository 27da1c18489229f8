/*
 * ui_actions.h — what the web UI does rather than reads: start a run of a
 * recorded flow, resume a run, cancel a running one (POST /api/...).
 *
 * Every action is checked before it is looked at:
 *   - a token, when the server has one (--token, FLOWLUA_UI_TOKEN; always
 *     beyond loopback): "Authorization: Bearer TOKEN";
 *   - the server's CSRF token (GET /api/session gives it to the pages,
 *     which a page of another site cannot read) in the form's field
 *     "csrf", and an Origin, when the browser sends one, that is this
 *     server's own;
 *   - a form (application/x-www-form-urlencoded) of bounded size.
 * A started run is a `flowlua` process of its own (ui_spawn.c), not a
 * thread of the UI: it goes on when the UI stops, and writes the history
 * as any run does.
 */
#ifndef FL_UI_ACTIONS_H
#define FL_UI_ACTIONS_H

#include <pthread.h>

#include <microhttpd.h>

#include "flowlua.h"
#include "ui_reply.h"

typedef struct fl_ui_actions fl_ui_actions;

/* The server's action settings: state (as `flowlua --state` takes it),
   token (NULL or "": none needed, which the caller allows on loopback
   only). 0, or -1 with the reason in err. */
int fl_ui_actions_new(const char *state, const char *token,
                      fl_ui_actions **out, char *err, size_t errlen);
void fl_ui_actions_free(fl_ui_actions *a);
/* The lock the server holds around every action (it guards the flowlua
   handle): released while a start waits for its run to be recorded. */
void fl_ui_actions_set_lock(fl_ui_actions *a, pthread_mutex_t *lock);

/* GET /api/session: {"csrf": ..., "token_required": bool, "host": ...}. */
void fl_ui_actions_session(fl_ui_actions *a, fl_ui_reply *r);

/*
 * A POST, piece by piece as libmicrohttpd hands it over (req is the
 * request's own pointer, upload and upload_size its body's next piece).
 * Returns 0 while more of the body is expected, 1 when r holds the answer.
 * fl_ui_action_done frees what the request holds (libmicrohttpd's
 * "completed" notice, whether or not an answer was sent).
 */
int fl_ui_action_step(fl_ui_actions *a, flowlua *rt, struct MHD_Connection *c,
                      const char *url, const char *upload,
                      size_t *upload_size, void **req, fl_ui_reply *r);
void fl_ui_action_done(void *req);

#endif
