/*
 * tasks.c — the public API's view of the task runs of the last run, or of
 * the nodes of the last check (flowlua_task_count, flowlua_task_get).
 */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <string.h>

#include "api.h"

/* Lists the task runs of the last run (or the nodes of the last check). */
static int index_tasks(flowlua *rt) {
  fl_sched *s = rt->sched;
  fl_graph *g = s ? s->g : rt->graph;
  if (rt->task_keys || !g) return 0;
  size_t n = g->n;
  if (s) n = s->total_runs;
  rt->task_keys = calloc(n ? n : 1, sizeof *rt->task_keys);
  rt->task_runs = calloc(n ? n : 1, sizeof *rt->task_runs);
  if (!rt->task_keys || !rt->task_runs) {
    fl_forget_tasks(rt);
    return FLOWLUA_ENOMEM;
  }
  fl_buf key = FL_BUF_INIT;
  size_t k = 0;
  for (uint32_t i = 0; i < g->n && k < n; i++) {
    fl_buf_reset(&key);
    fl_graph_add_key(&key, g, i);
    rt->task_runs[k] = s ? &s->runs[i] : NULL;
    rt->task_keys[k++] = strdup(fl_buf_str(&key));
    fl_taskrun *r = s ? &s->runs[i] : NULL;
    for (uint32_t c = 0; r && r->map && c < r->map->n && k < n; c++) {
      fl_buf_reset(&key);
      fl_taskrun_add_key(&key, &r->map->children[c]);
      rt->task_runs[k] = &r->map->children[c];
      rt->task_keys[k++] = strdup(fl_buf_str(&key));
    }
  }
  rt->n_task_keys = k;
  fl_buf_free(&key);
  for (size_t i = 0; i < k; i++)
    if (!rt->task_keys[i]) {
      fl_forget_tasks(rt);
      return FLOWLUA_ENOMEM;
    }
  return 0;
}

size_t flowlua_task_count(flowlua *rt) {
  if (!rt || index_tasks(rt) != 0) return 0;
  return rt->n_task_keys;
}

int flowlua_task_get(flowlua *rt, size_t i, flowlua_task_info *out) {
  if (!rt || !out) return FLOWLUA_EINVAL;
  if (!FL_API_SIZED(rt, "flowlua_task_get", out)) return FLOWLUA_EINVAL;
  int rc = index_tasks(rt);
  if (rc) return rc;
  if (i >= rt->n_task_keys) return FLOWLUA_EINVAL;
  const fl_taskrun *r = rt->task_runs[i];
  *out = (flowlua_task_info){.size = sizeof *out,
                             .key = rt->task_keys[i],
                             .state = FLOWLUA_TASK_PENDING,
                             .map_size = -1};
  if (!r) { /* a checked graph: the node at that position, never run */
    out->task = rt->graph->nodes[i].def->name;
    return FLOWLUA_OK;
  }
  out->task = r->sched->g->nodes[r->node].def->name;
  out->state = r->state;
  out->attempts = r->attempts;
  if (r->first_start > 0 && r->ended >= r->first_start)
    out->duration = r->ended - r->first_start;
  out->error = r->error;
  if (r->map) out->map_size = (int)r->map->n;
  out->map_index = r->map_index;
  return FLOWLUA_OK;
}
