/*
 * report_layout.c — where the report draws each task of the graph: a
 * layered layout (layer = longest path from a root), rows ordered by the
 * mean row of each node's upstream nodes. See fl_report_layout in
 * report_html.h. Plain arithmetic: no drawing, no I/O.
 */
#include <stdlib.h>

#include "report_html.h"

/* A node and what orders it within its layer. */
typedef struct placed {
  double key;
  uint32_t node;
} placed;

static int cmp_placed(const void *a, const void *b) {
  const placed *x = a, *y = b;
  if (x->key != y->key) return x->key < y->key ? -1 : 1;
  return x->node < y->node ? -1 : x->node > y->node;
}

/* Edges grouped by one end: list[off[i] .. off[i+1]) are the other ends of
   node i's edges. by_to: grouped by the downstream end (upstream lists). */
static int group_edges(size_t n, const fl_report_edge *e, size_t n_edges,
                       int by_to, uint32_t **off_out, uint32_t **list_out) {
  uint32_t *off = calloc(n + 1, sizeof *off);
  uint32_t *list = malloc((n_edges ? n_edges : 1) * sizeof *list);
  if (!off || !list) {
    free(off);
    free(list);
    return -1;
  }
  for (size_t k = 0; k < n_edges; k++) off[(by_to ? e[k].to : e[k].from) + 1]++;
  for (size_t i = 0; i < n; i++) off[i + 1] += off[i];
  uint32_t *fill = malloc((n ? n : 1) * sizeof *fill);
  if (!fill) {
    free(off);
    free(list);
    return -1;
  }
  for (size_t i = 0; i < n; i++) fill[i] = off[i];
  for (size_t k = 0; k < n_edges; k++) {
    uint32_t at = by_to ? e[k].to : e[k].from;
    list[fill[at]++] = by_to ? e[k].from : e[k].to;
  }
  free(fill);
  *off_out = off;
  *list_out = list;
  return 0;
}

/* layer[i] = longest path from a root, in topological order (Kahn). 0, or
   -1 for a cycle. */
static int assign_layers(size_t n, const uint32_t *down_off,
                         const uint32_t *down, const uint32_t *up_off,
                         uint32_t *layer, uint32_t *queue) {
  uint32_t *waiting = malloc((n ? n : 1) * sizeof *waiting);
  if (!waiting) return -1;
  size_t head = 0, tail = 0;
  for (size_t i = 0; i < n; i++) {
    layer[i] = 0;
    waiting[i] = up_off[i + 1] - up_off[i];
    if (!waiting[i]) queue[tail++] = (uint32_t)i;
  }
  while (head < tail) {
    uint32_t v = queue[head++];
    for (uint32_t k = down_off[v]; k < down_off[v + 1]; k++) {
      uint32_t w = down[k];
      if (layer[w] < layer[v] + 1) layer[w] = layer[v] + 1;
      if (--waiting[w] == 0) queue[tail++] = w;
    }
  }
  free(waiting);
  return tail == n ? 0 : -1;
}

long fl_report_layout(size_t n, const fl_report_edge *edges, size_t n_edges,
                      size_t columns, uint32_t *layer, uint32_t *row) {
  if (n == 0) return 0;
  if (!edges) {
    if (columns == 0) columns = 1;
    for (size_t i = 0; i < n; i++) {
      layer[i] = (uint32_t)(i % columns);
      row[i] = (uint32_t)(i / columns);
    }
    return (long)(n < columns ? n : columns);
  }
  for (size_t k = 0; k < n_edges; k++)
    if (edges[k].from >= n || edges[k].to >= n) return -1;
  uint32_t *up_off = NULL, *up = NULL, *down_off = NULL, *down = NULL;
  uint32_t *queue = malloc(n * sizeof *queue);
  placed *in_layer = malloc(n * sizeof *in_layer);
  long layers = -1;
  if (!queue || !in_layer || group_edges(n, edges, n_edges, 1, &up_off, &up) ||
      group_edges(n, edges, n_edges, 0, &down_off, &down) ||
      assign_layers(n, down_off, down, up_off, layer, queue))
    goto done;
  /* The topological order in queue lists every upstream node before its
     downstream ones; grouping it by layer keeps that, so each layer's
     upstream rows are known when it is ordered. */
  uint32_t top = 0;
  for (size_t i = 0; i < n; i++)
    if (layer[i] > top) top = layer[i];
  for (uint32_t l = 0; l <= top; l++) {
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
      uint32_t v = queue[i];
      if (layer[v] != l) continue;
      double sum = 0;
      uint32_t count = up_off[v + 1] - up_off[v];
      for (uint32_t k = up_off[v]; k < up_off[v + 1]; k++) sum += row[up[k]];
      in_layer[m++] = (placed){count ? sum / count : (double)v, v};
    }
    qsort(in_layer, m, sizeof *in_layer, cmp_placed);
    for (size_t r = 0; r < m; r++) row[in_layer[r].node] = (uint32_t)r;
  }
  layers = (long)top + 1;
done:
  free(up_off);
  free(up);
  free(down_off);
  free(down);
  free(queue);
  free(in_layer);
  return layers;
}
