/*
 * ui_server.h — the HTTP server of `flowlua ui`, on libmicrohttpd: a
 * thread per connection, and one lock over the flowlua handle it reads
 * through (ui_server.c says why).
 */
#ifndef FL_UI_SERVER_H
#define FL_UI_SERVER_H

#include <stddef.h>

#include "flowlua.h"
#include "ui_actions.h"

typedef struct fl_ui_server fl_ui_server;

/* Serves on listen_fd (ui_listen.h), which it takes over: closed by
   fl_ui_server_stop, or here on failure. 0, or -1 with the reason in err. */
int fl_ui_server_start(flowlua *rt, fl_ui_actions *actions, int listen_fd,
                       fl_ui_server **out, char *err, size_t errlen);

/* Stops answering, ends the event streams, waits for the threads,
   closes the socket. NULL is allowed. */
void fl_ui_server_stop(fl_ui_server *s);

#endif
