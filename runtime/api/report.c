/*
 * report.c — flowlua_report_html: one stored run as a self-contained HTML
 * page. Gathers what report_html.c draws: the run and every attempt from
 * the history, and the run's graph, rebuilt from the script it recorded
 * when that script still builds the same task keys.
 *
 * The graph is rebuilt in a runtime of its own (no history, no log), so
 * the caller's runtime keeps the script it holds, and with the params
 * stored for the run, since a flow body may build different tasks for
 * different params.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api.h"
#include "fsutil.h"
#include "report_html.h"
#include "store.h"

/* Why the graph could not be rebuilt goes into why; 0 when *edges holds
   it (possibly none at all), -1 otherwise. */
static int edges_from_graph(const fl_graph *g, const fl_store_run_detail *d,
                            fl_report_edge **edges, size_t *n_edges,
                            fl_buf *why) {
  const char **keys = fl_graph_keys(g);
  if (!keys) {
    fl_buf_adds(why, "out of memory comparing the graphs");
    return -1;
  }
  size_t n_run = d->n_graph_keys, same = 0;
  while (same < g->n && same < n_run &&
         strcmp(keys[same], d->graph_keys[same]) == 0)
    same++;
  if (same < g->n || same < n_run) {
    fl_buf_addf(why, "its script now builds another graph (%u tasks, the run "
                     "had %zu",
                (unsigned)g->n, n_run);
    if (same < g->n && same < n_run)
      fl_buf_addf(why, "; task %zu is now '%s', it was '%s'", same + 1,
                  keys[same], d->graph_keys[same]);
    fl_buf_addc(why, ')');
    free(keys);
    return -1;
  }
  free(keys);
  size_t n = g->dag.up_off[g->n];
  *edges = malloc((n ? n : 1) * sizeof **edges);
  if (!*edges) {
    fl_buf_adds(why, "out of memory reading the graph's edges");
    return -1;
  }
  *n_edges = 0;
  for (uint32_t i = 0; i < g->n; i++)
    for (uint32_t k = g->dag.up_off[i]; k < g->dag.up_off[i + 1]; k++)
      (*edges)[(*n_edges)++] = (fl_report_edge){
          g->dag.up[k], i, !(g->dag.up_kind[k] & FL_EDGE_DATA)};
  return 0;
}

static int rebuild_edges(fl_store *st, const fl_store_run_detail *d,
                         fl_report_edge **edges, size_t *n_edges,
                         fl_buf *why) {
  const char *script = d->run.script;
  if (!script || !*script) {
    fl_buf_adds(why, "the run did not record its script");
    return -1;
  }
  if (access(script, R_OK) != 0) {
    fl_buf_addf(why, "its script %s cannot be read now (%s)%s", script,
                strerror(errno),
                script[0] == '/' ? ""
                                 : "; the path is relative to the folder the "
                                   "run was started in");
    return -1;
  }
  flowlua_options o;
  flowlua_options_init(&o);
  o.log_level = FLOWLUA_LOG_OFF;
  flowlua *scratch = NULL;
  fl_store_run_detail *params = NULL;
  if (flowlua_new(&o, &scratch) != FLOWLUA_OK) {
    fl_buf_adds(why, "out of memory starting a runtime to build it");
    return -1;
  }
  int rc = -1;
  if (flowlua_load_file(scratch, script) != FLOWLUA_OK) {
    fl_buf_addf(why, "its script no longer loads: %s", flowlua_errmsg(scratch));
    goto done;
  }
  /* The build takes the run's params as a resume would: from the stored
     run, which the build frees. */
  if (fl_store_load_run(st, d->run.run_id, NULL, &params) != FLOWLUA_OK) {
    fl_buf_addf(why, "%s", fl_store_errmsg(st));
    goto done;
  }
  scratch->resume = params;
  if (flowlua_check(scratch, d->run.flow) != FLOWLUA_OK) {
    fl_buf_addf(why, "its script no longer builds flow '%s': %s", d->run.flow,
                flowlua_errmsg(scratch));
    goto done;
  }
  rc = edges_from_graph(scratch->graph, d, edges, n_edges, why);
done:
  flowlua_free(scratch);
  return rc;
}

int flowlua_report_html(flowlua *rt, const char *run_ref, char **out) {
  if (!rt || !out) return FLOWLUA_EINVAL;
  *out = NULL;
  fl_store *st, *tmp;
  int rc = fl_history_open_run(rt, "flowlua_report_html", run_ref, &st, &tmp);
  if (rc) return rc;
  fl_store_run_detail *d = NULL;
  fl_store_attempt_list attempts = {0};
  fl_report report = {.attempts = &attempts, .now = fl_wall_time()};
  fl_report_edge *edges = NULL;
  fl_buf why = FL_BUF_INIT, page = FL_BUF_INIT;
  rc = fl_store_load_run(st, run_ref, NULL, &d);
  if (rc == FLOWLUA_OK) rc = fl_store_load_attempts(st, d, &attempts);
  if (rc != FLOWLUA_OK) {
    fl_set_error(rt, "%s", fl_store_errmsg(st));
    goto done;
  }
  report.run = d;
  if (rebuild_edges(st, d, &edges, &report.n_edges, &why) == 0)
    report.edges = edges;
  else
    report.graph_note = fl_buf_str(&why);
  fl_report_html(&page, &report);
  if (page.oom || why.oom) {
    fl_set_error(rt, "out of memory writing the report of run %s", d->run.run_id);
    rc = FLOWLUA_ENOMEM;
    goto done;
  }
  *out = page.data;
  page.data = NULL;
done:
  fl_buf_free(&page);
  fl_buf_free(&why);
  free(edges);
  fl_store_attempt_list_free(&attempts);
  fl_store_run_detail_free(d);
  fl_store_close(tmp);
  return rc;
}

int flowlua_report_html_write(flowlua *rt, const char *run_ref,
                              const char *path) {
  if (!rt) return FLOWLUA_EINVAL;
  if (!path || !*path) {
    fl_set_error(rt, "flowlua_report_html_write: a path is required");
    return FLOWLUA_EINVAL;
  }
  char *html = NULL;
  int rc = flowlua_report_html(rt, run_ref, &html);
  if (rc != FLOWLUA_OK) return rc;
  char why[FL_FS_WHY_SIZE];
  if (fl_write_file_atomic_why(path, html, strlen(html), why, sizeof why) != 0) {
    fl_set_error(rt, "cannot write the report to %s: %s", path, why);
    rc = FLOWLUA_EIO;
  }
  free(html);
  return rc;
}
