/*
 * dag.c — building, validating and ordering the task graph.
 *
 * Edges arrive in any order while the flow body runs (node:after() may point
 * at a node created later), so they are kept as a flat list and turned into
 * per-node arrays once, by counting sorts. Cycle detection is Kahn's algorithm;
 * a cycle is then reconstructed by walking upstream among the nodes Kahn could
 * not order, so the error can name every task on it.
 */
#include "dag.h"

#include <stdlib.h>
#include <string.h>

#include "flowlua.h"

void fl_dag_init(fl_dag *d) { memset(d, 0, sizeof *d); }

void fl_dag_free(fl_dag *d) {
  free(d->edges);
  free(d->up_off);
  free(d->up);
  free(d->up_kind);
  free(d->down_off);
  free(d->down);
  fl_dag_init(d);
}

int64_t fl_dag_add_node(fl_dag *d) {
  if (d->finalized || d->n_nodes == UINT32_MAX - 1) return -1;
  return (int64_t)d->n_nodes++;
}

int fl_dag_add_edge(fl_dag *d, uint32_t from, uint32_t to, int kind) {
  if (d->finalized || from >= d->n_nodes || to >= d->n_nodes)
    return FLOWLUA_EINVAL;
  if (d->n_edges == d->cap_edges) {
    size_t cap = d->cap_edges ? d->cap_edges * 2 : 64;
    fl_edge *e = realloc(d->edges, cap * sizeof *e);
    if (!e) return FLOWLUA_ENOMEM;
    d->edges = e;
    d->cap_edges = cap;
  }
  d->edges[d->n_edges++] = (fl_edge){from, to, (uint8_t)kind};
  return 0;
}

/* Stable counting sort of n edges from src into dst by the `to` end when
   by_to, else by the `from` end; count has room for nodes + 1 entries. */
static void count_sort(const fl_edge *src, fl_edge *dst, size_t n,
                       uint32_t nodes, uint32_t *count, int by_to) {
  memset(count, 0, ((size_t)nodes + 1) * sizeof *count);
  for (size_t i = 0; i < n; i++) count[(by_to ? src[i].to : src[i].from) + 1]++;
  for (uint32_t i = 0; i < nodes; i++) count[i + 1] += count[i];
  for (size_t i = 0; i < n; i++)
    dst[count[by_to ? src[i].to : src[i].from]++] = src[i];
}

/* Sorts edges by (to, from) — two counting sorts, linear in nodes plus
   edges — and merges duplicates (kinds are OR-ed). */
static int merge_duplicate_edges(fl_dag *d) {
  if (d->n_edges == 0) return 0;
  fl_edge *tmp = malloc(d->n_edges * sizeof *tmp);
  uint32_t *count = malloc(((size_t)d->n_nodes + 1) * sizeof *count);
  if (!tmp || !count) {
    free(tmp);
    free(count);
    return FLOWLUA_ENOMEM;
  }
  count_sort(d->edges, tmp, d->n_edges, d->n_nodes, count, 0);
  count_sort(tmp, d->edges, d->n_edges, d->n_nodes, count, 1);
  free(tmp);
  free(count);
  size_t w = 0;
  for (size_t r = 1; r < d->n_edges; r++) {
    if (d->edges[r].to == d->edges[w].to &&
        d->edges[r].from == d->edges[w].from)
      d->edges[w].kind |= d->edges[r].kind;
    else
      d->edges[++w] = d->edges[r];
  }
  d->n_edges = w + 1;
  return 0;
}

static int build_adjacency(fl_dag *d) {
  uint32_t n = d->n_nodes;
  size_t m = d->n_edges;
  d->up_off = calloc((size_t)n + 1, sizeof *d->up_off);
  d->down_off = calloc((size_t)n + 1, sizeof *d->down_off);
  d->up = malloc((m ? m : 1) * sizeof *d->up);
  d->up_kind = malloc(m ? m : 1);
  d->down = malloc((m ? m : 1) * sizeof *d->down);
  if (!d->up_off || !d->down_off || !d->up || !d->up_kind || !d->down)
    return FLOWLUA_ENOMEM;

  /* Edges are sorted by (to, from): the upstream lists come out in order. */
  for (size_t i = 0; i < m; i++) {
    d->up_off[d->edges[i].to + 1]++;
    d->down_off[d->edges[i].from + 1]++;
  }
  for (uint32_t i = 0; i < n; i++) {
    d->up_off[i + 1] += d->up_off[i];
    d->down_off[i + 1] += d->down_off[i];
  }
  uint32_t *fill = malloc((size_t)(n ? n : 1) * sizeof *fill);
  if (!fill) return FLOWLUA_ENOMEM;
  memcpy(fill, d->down_off, (size_t)n * sizeof *fill);
  for (size_t i = 0; i < m; i++) {
    d->up[i] = d->edges[i].from;
    d->up_kind[i] = d->edges[i].kind;
    d->down[fill[d->edges[i].from]++] = d->edges[i].to;
  }
  free(fill);
  return 0;
}

/*
 * Kahn's algorithm. `order` receives the nodes it could order; returns how
 * many. Nodes left out are on a cycle or downstream of one.
 */
static uint32_t kahn(const fl_dag *d, uint32_t *order, uint32_t *indeg) {
  uint32_t n = d->n_nodes, head = 0, tail = 0;
  for (uint32_t i = 0; i < n; i++) {
    indeg[i] = fl_dag_n_up(d, i);
    if (indeg[i] == 0) order[tail++] = i;
  }
  while (head < tail) {
    uint32_t v = order[head++];
    for (uint32_t k = d->down_off[v]; k < d->down_off[v + 1]; k++)
      if (--indeg[d->down[k]] == 0) order[tail++] = d->down[k];
  }
  return tail;
}

/*
 * Every node Kahn left has indeg > 0, so it has an upstream that was also
 * left: walking upstream must revisit a node, and the walk between the two
 * visits is a cycle.
 */
static int extract_cycle(const fl_dag *d, const uint32_t *indeg,
                         uint32_t **cycle, size_t *cycle_len) {
  uint32_t n = d->n_nodes, start = 0;
  while (start < n && indeg[start] == 0) start++;
  uint32_t *pos = malloc((size_t)n * sizeof *pos); /* step + 1, 0 = unseen */
  uint32_t *walk = malloc(((size_t)n + 1) * sizeof *walk);
  if (!pos || !walk) {
    free(pos);
    free(walk);
    return FLOWLUA_ENOMEM;
  }
  memset(pos, 0, (size_t)n * sizeof *pos);
  uint32_t steps = 0, v = start;
  while (!pos[v]) {
    pos[v] = ++steps;
    walk[steps - 1] = v;
    uint32_t next = v;
    for (uint32_t k = d->up_off[v]; k < d->up_off[v + 1]; k++)
      if (indeg[d->up[k]] > 0) {
        next = d->up[k];
        break;
      }
    v = next;
  }
  /* walk[pos[v]-1 .. steps-1] goes upstream around the cycle; reverse it so
     the list reads in run order, and close it with its first node. */
  size_t len = steps - (pos[v] - 1);
  uint32_t *out = malloc((len + 1) * sizeof *out);
  if (!out) {
    free(pos);
    free(walk);
    return FLOWLUA_ENOMEM;
  }
  /* Start at the lowest node, so the same graph always reads the same. */
  size_t lowest = 0;
  for (size_t i = 1; i < len; i++)
    if (walk[steps - 1 - i] < walk[steps - 1 - lowest]) lowest = i;
  for (size_t i = 0; i < len; i++)
    out[i] = walk[steps - 1 - (lowest + i) % len];
  out[len] = out[0];
  *cycle = out;
  *cycle_len = len + 1;
  free(pos);
  free(walk);
  return 0;
}

/* Undoes build_adjacency, so a failed finalize leaves the edge list as is. */
static void drop_adjacency(fl_dag *d) {
  free(d->up_off);
  free(d->up);
  free(d->up_kind);
  free(d->down_off);
  free(d->down);
  d->up_off = d->up = d->down_off = d->down = NULL;
  d->up_kind = NULL;
}

int fl_dag_finalize(fl_dag *d, uint32_t **cycle, size_t *cycle_len) {
  if (cycle) *cycle = NULL;
  if (cycle_len) *cycle_len = 0;
  if (d->finalized) return 0;
  int rc = merge_duplicate_edges(d);
  if (rc == 0) rc = build_adjacency(d);
  if (rc) {
    drop_adjacency(d);
    return rc;
  }

  uint32_t n = d->n_nodes;
  uint32_t *order = malloc((size_t)(n ? n : 1) * sizeof *order);
  uint32_t *indeg = malloc((size_t)(n ? n : 1) * sizeof *indeg);
  if (!order || !indeg) {
    free(order);
    free(indeg);
    drop_adjacency(d);
    return FLOWLUA_ENOMEM;
  }
  uint32_t ordered = kahn(d, order, indeg);
  rc = 0;
  if (ordered < n) {
    rc = FLOWLUA_EBUILD;
    if (cycle && cycle_len) {
      int erc = extract_cycle(d, indeg, cycle, cycle_len);
      if (erc) rc = erc;
    }
  }
  free(order);
  free(indeg);
  if (rc != 0) {
    drop_adjacency(d);
  } else {
    free(d->edges);
    d->edges = NULL;
    d->n_edges = d->cap_edges = 0;
    d->finalized = 1;
  }
  return rc;
}

int fl_dag_topo_order(const fl_dag *d, uint32_t *out) {
  uint32_t *indeg = malloc((size_t)(d->n_nodes ? d->n_nodes : 1) * sizeof *indeg);
  if (!indeg) return FLOWLUA_ENOMEM;
  uint32_t got = kahn(d, out, indeg);
  free(indeg);
  return got == d->n_nodes ? 0 : FLOWLUA_EBUILD;
}
