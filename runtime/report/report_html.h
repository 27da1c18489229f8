/*
 * report_html.h — one stored run as a self-contained HTML page: its
 * summary, its task graph and a timeline of every attempt (both inline
 * SVG), each failure's message, and each task run's log lines.
 *
 * Formatting only: no SQLite, no Lua, no I/O. report.c gathers what is
 * drawn (the run, its attempts, the graph stored with it) into an
 * fl_report; the page fetches nothing (its Content-Security-Policy forbids
 * it) and runs no script.
 */
#ifndef FL_REPORT_HTML_H
#define FL_REPORT_HTML_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "store.h"

/* An edge of the task graph between two of the run's graph keys, as the
   history stores it. */
typedef fl_store_edge fl_report_edge;

typedef struct fl_report {
  const fl_store_run_detail *run;
  const fl_store_attempt_list *attempts;
  /* The graph over run->graph_keys: the edges stored with the run, else
     NULL with graph_note saying why. */
  const fl_report_edge *edges;
  size_t n_edges;
  const char *graph_note;
  double now; /* wall clock: where the timeline of an unfinished run ends */
  /* The task runs' kept log lines (NULL: no Log section). */
  const fl_store_log_list *logs;
} fl_report;

/* Appends the page to out (check out->oom once at the end). */
void fl_report_html(fl_buf *out, const fl_report *r);

/*
 * The layered layout of a graph of n nodes: layer[i] is the longest path
 * from a root to node i, and row[i] its place within its layer (ordered
 * by the mean row of its upstream nodes, so that edges cross less).
 * Without edges (NULL) the nodes fill a grid of `columns` layers. Returns
 * the number of layers, or -1 when out of memory or the edges make a
 * cycle (a stored graph is acyclic; the caller then draws no edges).
 */
long fl_report_layout(size_t n, const fl_report_edge *edges, size_t n_edges,
                      size_t columns, uint32_t *layer, uint32_t *row);

#endif
