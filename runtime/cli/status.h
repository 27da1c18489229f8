/*
 * status.h — the live status of a run on a terminal, for the flowlua command.
 *
 * Two halves, both over the public API only:
 *
 * - The model (status.c): what each task run is doing, fed with the
 *   runtime's state-change events (flowlua_event), and written out as a few
 *   lines of text for a given time and terminal width. Pure: no I/O and no
 *   clock of its own, so a unit test can check the text.
 * - The region (status_term.c): those lines kept at the bottom of a
 *   terminal, redrawn in place at most ten times a second and only when the
 *   text changed, erased before each log line and drawn again after it, and
 *   erased for good when the run ends.
 */
#ifndef FL_STATUS_H
#define FL_STATUS_H

#include <stddef.h>

#include "buf.h"
#include "flowlua.h"

/* ---- the model ----------------------------------------------------------- */

typedef struct fl_status fl_status;

/* A new, empty status; NULL when out of memory. */
fl_status *fl_status_new(void);
/* NULL is allowed. */
void fl_status_free(fl_status *st);

/*
 * Takes one state change in. now is the caller's monotonic clock, in
 * seconds: elapsed times and countdowns are measured on it (the event's
 * wall-clock time could jump). A flow run that starts running forgets the
 * previous run's tasks. Returns 0, or -1 when out of memory (the change is
 * then not shown; nothing else is lost).
 */
int fl_status_event(fl_status *st, const flowlua_event *ev, double now);

/* Whether a run is going: between its Running event and its final one. */
int fl_status_running(const fl_status *st);

/* Task runs now in a state, map elements counted and maps' own nodes not
   (as flowlua_outcome counts them); Pending runs are never seen. */
size_t fl_status_count(const fl_status *st, int task_state);

typedef struct fl_status_layout {
  int width;     /* columns; every line is cut to fit */
  int max_lines; /* lines in all, the header included (at least 1) */
  int color;     /* ANSI colours (bold header, Retrying in yellow) */
} fl_status_layout;

/*
 * Appends the status as lines of text, each ending in '\n': a header (the
 * flow, its elapsed time, how many task runs are in each state), then one
 * line per retry waiting with its countdown and per task running now with
 * its elapsed time (retries first, then each longest waiting first), and
 * "... and K more" when they do not all fit. Returns the number of lines
 * (0 when no run is going).
 */
int fl_status_render(const fl_status *st, double now,
                     const fl_status_layout *layout, fl_buf *out);

/* How many bytes of s (n bytes of UTF-8) fit in `columns` columns, one per
   character; a sequence is never cut in the middle. */
size_t fl_status_fit(const char *s, size_t n, int columns);

/* ---- the region on a terminal ------------------------------------------ */

typedef struct fl_status_term fl_status_term;

typedef struct fl_status_term_options {
  int fd;    /* the terminal (stderr) */
  int color; /* 0 with NO_COLOR */
  /* The monotonic clock, in seconds; NULL for CLOCK_MONOTONIC. Tests set
     their own. */
  double (*clock)(void);
} fl_status_term_options;

/* A region on a terminal; NULL when out of memory. Draws nothing yet. */
fl_status_term *fl_status_term_new(const fl_status_term_options *opts);
/* Erases the region if it is drawn, then frees. NULL is allowed. */
void fl_status_term_free(fl_status_term *t);

/* The flowlua_event_fn to install (userdata: the fl_status_term). A run's
   final event erases the region for good. */
void fl_status_term_on_event(void *userdata, const flowlua_event *ev);
/* The flowlua_log_fn to install: the record's line goes above the region,
   whole and on its own line. */
void fl_status_term_on_log(void *userdata, const flowlua_log_record *rec);
/* Writes text (whole lines) above the region, as a log line is. */
void fl_status_term_print(fl_status_term *t, const char *text);

/* Redraws the region when its text changed and the last redraw is at least
   a tenth of a second old. */
void fl_status_term_tick(fl_status_term *t);
/* How long the caller may wait before the next tick is due, in
   milliseconds: -1 when no run is going (nothing on screen moves). */
int fl_status_term_wait_ms(const fl_status_term *t);
/* Erases the region for good (before the summary). */
void fl_status_term_clear(fl_status_term *t);
/* No status from now on (serving a schedule): log lines are written as
   the runtime's own sink writes them. */
void fl_status_term_disable(fl_status_term *t);

/*
 * Whether a live status suits this terminal: fd is a terminal and TERM is
 * set and not "dumb" (the region needs cursor movement). The caller adds
 * its own conditions (--quiet, --no-status, JSON logs).
 */
int fl_status_term_usable(int fd);

#endif
