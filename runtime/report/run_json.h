/*
 * run_json.h — a stored run's graph and timeline as JSON, for the web UI,
 * which draws them on a canvas: the same data report_html.c draws as SVG
 * (layout from fl_report_layout, one bar per attempt), in a form a page
 * can draw without being handed markup.
 *
 * Formatting only: no SQLite, no Lua, no I/O. The caller loads the run,
 * its attempts and its edges (runtime/api/runview.c).
 */
#ifndef FL_RUN_JSON_H
#define FL_RUN_JSON_H

#include <stddef.h>

#include "report_html.h"

/*
 * {"tasks": N, "edges_count": E, "note": null|"why no edges",
 *  "layers": L, "aggregated": false,
 *  "nodes": [{"key", "state", "layer", "row", "map": elements}],
 *  "edges": [[from, to, ordering 0|1]]}
 * or, beyond max_nodes graph keys, one entry per layer instead of nodes
 * and edges (a page cannot draw 100,000 nodes usefully):
 *  "aggregated": true, "by_layer": [{"tasks": n, "states": {"Success": n}}].
 * A node's state is its task run's (a map's own row), "Pending" when no
 * task run has its key. edges NULL: none can be drawn (note says why).
 * Returns -1 when out of memory (out may hold a part), else 0.
 */
int fl_run_json_graph(fl_buf *out, const fl_store_run_detail *d,
                      const fl_report_edge *edges, size_t n_edges,
                      const char *note, size_t max_nodes);

/*
 * {"t0": ISO, "span": seconds, "rows_total": N, "offset": o,
 *  "attempts": A,
 *  "rows": [{"key", "state", "bars": [[from, to, "state"], ...]}]}
 * Rows are task runs in the order they were declared, offset..offset+
 * limit of them; a bar is one attempt, from and to in seconds after t0
 * (to is the end of the span while nothing ended it). t0..t0+span covers
 * the run, to `now` while it is Running.
 */
void fl_run_json_timeline(fl_buf *out, const fl_store_run_detail *d,
                          const fl_store_attempt_list *a, double now,
                          size_t offset, size_t limit);

#endif
