/*
 * worker_cmd.h — `flowlua __worker SCRIPT` (worker_cmd.c), the process a
 * driver starts to run worker tasks. Hidden: not in the usage, since only
 * flowlua itself starts it, with its connection on descriptor 3.
 */
#ifndef FL_WORKER_CMD_H
#define FL_WORKER_CMD_H

/* The word that selects the command, as argv[1]. */
#define CLI_WORKER_COMMAND "__worker"

/* Runs the worker command with main's arguments; returns the exit code:
   0 the driver said BYE or closed the connection, 1 the driver was gone
   at start or the connection failed, 2 bad usage or a script that does
   not load. */
int cli_worker_main(int argc, char **argv);

#endif
