/*
 * keys.c — the keys that name task runs in logs, events and the history:
 * "fetch" for a graph node, "fetch#2" for a task's second call in the
 * body, "fetch[3]" for the third element of a map. A resume matches
 * stored task runs to the graph by these keys, so they must not change.
 */
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "store.h"

void fl_graph_add_key(fl_buf *b, const fl_graph *g, uint32_t node) {
  const fl_node *n = &g->nodes[node];
  fl_buf_adds(b, n->def->name);
  if (n->ordinal > 1) {
    fl_buf_addc(b, '#');
    fl_buf_addu(b, n->ordinal);
  }
}

const char **fl_graph_keys(const fl_graph *g) {
  /* The keys are built in a buffer (whose block moves as it grows), then
     copied behind the pointer array, so one free() releases both. */
  fl_buf text = FL_BUF_INIT;
  size_t *offs = malloc((g->n ? g->n : 1) * sizeof *offs);
  for (uint32_t i = 0; offs && i < g->n; i++) {
    offs[i] = text.len;
    fl_graph_add_key(&text, g, i);
    fl_buf_addc(&text, '\0');
  }
  size_t ptr_bytes = (size_t)g->n * sizeof(char *);
  const char **keys = offs && !text.oom ? malloc(ptr_bytes + text.len + 1) : NULL;
  if (keys) {
    char *block = (char *)keys + ptr_bytes;
    if (text.len) memcpy(block, text.data, text.len);
    for (uint32_t i = 0; i < g->n; i++) keys[i] = block + offs[i];
  }
  free(offs);
  fl_buf_free(&text);
  return keys;
}

void fl_taskrun_add_key(fl_buf *b, const fl_taskrun *r) {
  fl_graph_add_key(b, r->sched->g, r->node);
  if (r->map_index) { /* 1-based: never negative */
    fl_buf_addc(b, '[');
    fl_buf_addu(b, (unsigned long long)r->map_index);
    fl_buf_addc(b, ']');
  }
}

fl_store_edge *fl_graph_edges(const fl_graph *g, size_t *n_out) {
  size_t n = g->n ? g->dag.up_off[g->n] : 0;
  fl_store_edge *edges = malloc((n ? n : 1) * sizeof *edges);
  *n_out = 0;
  if (!edges) return NULL;
  for (uint32_t i = 0; i < g->n; i++)
    for (uint32_t k = g->dag.up_off[i]; k < g->dag.up_off[i + 1]; k++)
      edges[(*n_out)++] = (fl_store_edge){
          g->dag.up[k], i, !(g->dag.up_kind[k] & FL_EDGE_DATA)};
  return edges;
}
