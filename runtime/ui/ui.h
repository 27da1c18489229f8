/*
 * ui.h — `flowlua ui`, the web UI over the run history: what main.c calls.
 */
#ifndef FL_UI_H
#define FL_UI_H

/* The word that selects the command, as argv[1]. */
#define FL_UI_COMMAND "ui"

/* Runs `flowlua ui [--state PATH|URL] [--listen ADDR:PORT] [--token T]`
   with main's arguments until SIGINT or SIGTERM. Returns the exit code:
   0 stopped by a signal, 1 the history cannot be read or the port not
   listened on, 2 bad usage (a token missing beyond loopback included). */
int fl_ui_main(int argc, char **argv);

#endif
