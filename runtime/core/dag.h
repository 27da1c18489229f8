/*
 * dag.h — the task graph: nodes, upstream edges, validation and order.
 *
 * Plain C, no Lua. Nodes are numbered from 0 in creation order; edges are
 * collected while a flow body runs and frozen by fl_dag_finalize() into
 * compact adjacency arrays (upstream and downstream lists per node).
 */
#ifndef FL_DAG_H
#define FL_DAG_H

#include <stddef.h>
#include <stdint.h>

enum { FL_EDGE_DATA = 1, FL_EDGE_ORDER = 2 };

typedef struct fl_edge {
  uint32_t from, to; /* from runs before to */
  uint8_t kind;      /* FL_EDGE_DATA | FL_EDGE_ORDER */
} fl_edge;

typedef struct fl_dag {
  uint32_t n_nodes;
  fl_edge *edges; /* while building */
  size_t n_edges, cap_edges;
  /* after finalize: edges grouped per node, duplicates merged */
  uint32_t *up_off, *up;     /* up[up_off[i] .. up_off[i+1]) */
  uint8_t *up_kind;
  uint32_t *down_off, *down; /* down[down_off[i] .. down_off[i+1]) */
  int finalized;
} fl_dag;

void fl_dag_init(fl_dag *d);
void fl_dag_free(fl_dag *d);

/* Adds one node; returns its index, or -1 when out of memory or full. */
int64_t fl_dag_add_node(fl_dag *d);

/* Records that `from` must finish before `to`. 0, or FLOWLUA_ENOMEM. */
int fl_dag_add_edge(fl_dag *d, uint32_t from, uint32_t to, int kind);

/*
 * Freezes the graph. Returns 0; FLOWLUA_ENOMEM; or FLOWLUA_EBUILD when there
 * is a cycle, with *cycle set to a malloc'd list of the nodes on one cycle in
 * run order (the first node repeated at the end) and *cycle_len its length.
 * The caller frees *cycle.
 */
int fl_dag_finalize(fl_dag *d, uint32_t **cycle, size_t *cycle_len);

static inline uint32_t fl_dag_n_up(const fl_dag *d, uint32_t i) {
  return d->up_off[i + 1] - d->up_off[i];
}
static inline uint32_t fl_dag_n_down(const fl_dag *d, uint32_t i) {
  return d->down_off[i + 1] - d->down_off[i];
}

/* Writes a topological order of a finalized, acyclic graph into out[n_nodes]
   (breadth first: the roots in index order, then each node as soon as its
   last upstream is placed). 0, or FLOWLUA_ENOMEM. */
int fl_dag_topo_order(const fl_dag *d, uint32_t *out);

#endif
