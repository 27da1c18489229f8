/*
 * test_dag.c — the task graph: adjacency after finalize, topological order,
 * cycle reports, and a large random graph.
 */
#include <stdint.h>
#include <stdlib.h>

#include "check.h"
#include "dag.h"
#include "flowlua.h"

/* Adds n nodes numbered 0..n-1. */
static void add_nodes(fl_dag *d, uint32_t n) {
  for (uint32_t i = 0; i < n; i++)
    CHECK_EQ_INT(fl_dag_add_node(d), i);
}

/* Finalizes a graph expected to be acyclic and checks its order equals
   want[0..n). */
static void check_order(fl_dag *d, const uint32_t *want, uint32_t n) {
  uint32_t *cycle = NULL;
  size_t len = 99;
  CHECK_EQ_INT(fl_dag_finalize(d, &cycle, &len), 0);
  CHECK(cycle == NULL);
  CHECK_EQ_INT(len, 0);
  uint32_t *order = malloc((n ? n : 1) * sizeof *order);
  CHECK_EQ_INT(fl_dag_topo_order(d, order), 0);
  for (uint32_t i = 0; i < n; i++)
    CHECK_EQ_INT(order[i], want[i]);
  free(order);
}

/* Finalizes a graph expected to have a cycle and checks the report. */
static void check_cycle(fl_dag *d, const uint32_t *want, size_t want_len) {
  uint32_t *cycle = NULL;
  size_t len = 0;
  CHECK_EQ_INT(fl_dag_finalize(d, &cycle, &len), FLOWLUA_EBUILD);
  CHECK(!d->finalized);
  CHECK(cycle != NULL);
  CHECK_EQ_INT(len, want_len);
  for (size_t i = 0; cycle && i < len && i < want_len; i++)
    CHECK_EQ_INT(cycle[i], want[i]);
  free(cycle);
}

/* 0 → 1 → 2 → 3, with the edges given backwards so that finalize, not the
   insertion order, produces the order. */
static void test_chain(void) {
  fl_dag d;
  fl_dag_init(&d);
  add_nodes(&d, 4);
  CHECK_EQ_INT(fl_dag_add_edge(&d, 2, 3, FL_EDGE_DATA), 0);
  CHECK_EQ_INT(fl_dag_add_edge(&d, 1, 2, FL_EDGE_DATA), 0);
  CHECK_EQ_INT(fl_dag_add_edge(&d, 0, 1, FL_EDGE_DATA), 0);
  static const uint32_t want[] = {0, 1, 2, 3};
  check_order(&d, want, 4);
  CHECK(d.finalized);
  CHECK_EQ_INT(fl_dag_n_up(&d, 0), 0);
  CHECK_EQ_INT(fl_dag_n_down(&d, 3), 0);
  for (uint32_t i = 1; i < 4; i++) {
    CHECK_EQ_INT(fl_dag_n_up(&d, i), 1);
    CHECK_EQ_INT(d.up[d.up_off[i]], i - 1);
    CHECK_EQ_INT(fl_dag_n_down(&d, i - 1), 1);
    CHECK_EQ_INT(d.down[d.down_off[i - 1]], i);
  }
  fl_dag_free(&d);
}

/* A chain whose node numbers run against the edges: 3 → 2 → 1 → 0. */
static void test_chain_reversed_numbers(void) {
  fl_dag d;
  fl_dag_init(&d);
  add_nodes(&d, 4);
  for (uint32_t i = 3; i > 0; i--)
    CHECK_EQ_INT(fl_dag_add_edge(&d, i, i - 1, FL_EDGE_ORDER), 0);
  static const uint32_t want[] = {3, 2, 1, 0};
  check_order(&d, want, 4);
  fl_dag_free(&d);
}

/* 0 → {1..5} → 6: the middle runs in node order, the sink has 5 upstreams. */
static void test_fan_out_fan_in(void) {
  enum { N = 5 };
  fl_dag d;
  fl_dag_init(&d);
  add_nodes(&d, N + 2);
  for (uint32_t i = 1; i <= N; i++) {
    CHECK_EQ_INT(fl_dag_add_edge(&d, i, N + 1, FL_EDGE_DATA), 0);
    CHECK_EQ_INT(fl_dag_add_edge(&d, 0, i, FL_EDGE_DATA), 0);
  }
  static const uint32_t want[] = {0, 1, 2, 3, 4, 5, 6};
  check_order(&d, want, N + 2);
  CHECK_EQ_INT(fl_dag_n_down(&d, 0), N);
  CHECK_EQ_INT(fl_dag_n_up(&d, N + 1), N);
  /* Upstream lists come out sorted by node. */
  for (uint32_t k = 0; k < N; k++)
    CHECK_EQ_INT(d.up[d.up_off[N + 1] + k], k + 1);
  fl_dag_free(&d);
}

/* 0 → 1, 0 → 2, 1 → 3, 2 → 3. */
static void test_diamond(void) {
  fl_dag d;
  fl_dag_init(&d);
  add_nodes(&d, 4);
  CHECK_EQ_INT(fl_dag_add_edge(&d, 1, 3, FL_EDGE_DATA), 0);
  CHECK_EQ_INT(fl_dag_add_edge(&d, 2, 3, FL_EDGE_DATA), 0);
  CHECK_EQ_INT(fl_dag_add_edge(&d, 0, 2, FL_EDGE_DATA), 0);
  CHECK_EQ_INT(fl_dag_add_edge(&d, 0, 1, FL_EDGE_DATA), 0);
  static const uint32_t want[] = {0, 1, 2, 3};
  check_order(&d, want, 4);
  CHECK_EQ_INT(fl_dag_n_up(&d, 3), 2);
  CHECK_EQ_INT(d.up[d.up_off[3]], 1);
  CHECK_EQ_INT(d.up[d.up_off[3] + 1], 2);
  CHECK_EQ_INT(fl_dag_n_down(&d, 0), 2);
  fl_dag_free(&d);
}

/* A task used both as an argument and in after() gives two edges between the
   same pair: they become one edge carrying both kinds. */
static void test_duplicate_edges_merge(void) {
  fl_dag d;
  fl_dag_init(&d);
  add_nodes(&d, 3);
  CHECK_EQ_INT(fl_dag_add_edge(&d, 0, 2, FL_EDGE_DATA), 0);
  CHECK_EQ_INT(fl_dag_add_edge(&d, 1, 2, FL_EDGE_ORDER), 0);
  CHECK_EQ_INT(fl_dag_add_edge(&d, 0, 2, FL_EDGE_ORDER), 0);
  CHECK_EQ_INT(fl_dag_add_edge(&d, 0, 2, FL_EDGE_DATA), 0);
  CHECK_EQ_INT(fl_dag_add_edge(&d, 1, 2, FL_EDGE_ORDER), 0);
  static const uint32_t want[] = {0, 1, 2};
  check_order(&d, want, 3);

  CHECK_EQ_INT(fl_dag_n_up(&d, 2), 2);
  CHECK_EQ_INT(d.up[d.up_off[2]], 0);
  CHECK_EQ_INT(d.up_kind[d.up_off[2]], FL_EDGE_DATA | FL_EDGE_ORDER);
  CHECK_EQ_INT(d.up[d.up_off[2] + 1], 1);
  CHECK_EQ_INT(d.up_kind[d.up_off[2] + 1], FL_EDGE_ORDER);
  CHECK_EQ_INT(fl_dag_n_down(&d, 0), 1);
  CHECK_EQ_INT(d.down[d.down_off[0]], 2);
  CHECK_EQ_INT(fl_dag_n_down(&d, 1), 1);
  CHECK_EQ_INT(d.down[d.down_off[1]], 2);
  CHECK_EQ_INT(fl_dag_n_down(&d, 2), 0);
  CHECK_EQ_INT(fl_dag_n_up(&d, 0), 0);
  CHECK_EQ_INT(fl_dag_n_up(&d, 1), 0);
  fl_dag_free(&d);
}

static void test_self_edge_is_cycle(void) {
  fl_dag d;
  fl_dag_init(&d);
  add_nodes(&d, 2);
  CHECK_EQ_INT(fl_dag_add_edge(&d, 0, 1, FL_EDGE_DATA), 0);
  CHECK_EQ_INT(fl_dag_add_edge(&d, 1, 1, FL_EDGE_ORDER), 0);
  static const uint32_t want[] = {1, 1};
  check_cycle(&d, want, 2);
  fl_dag_free(&d);
}

/* 2 → 0 → 1 → 2: reported in run order from its lowest node, closed. */
static void test_three_cycle(void) {
  fl_dag d;
  fl_dag_init(&d);
  add_nodes(&d, 3);
  CHECK_EQ_INT(fl_dag_add_edge(&d, 1, 2, FL_EDGE_DATA), 0);
  CHECK_EQ_INT(fl_dag_add_edge(&d, 2, 0, FL_EDGE_DATA), 0);
  CHECK_EQ_INT(fl_dag_add_edge(&d, 0, 1, FL_EDGE_DATA), 0);
  static const uint32_t want[] = {0, 1, 2, 0};
  check_cycle(&d, want, 4);
  fl_dag_free(&d);
}

/* 0 → 1 → 2 → 3 → 1: node 0 is fine and must not appear in the report. */
static void test_cycle_after_good_prefix(void) {
  fl_dag d;
  fl_dag_init(&d);
  add_nodes(&d, 4);
  CHECK_EQ_INT(fl_dag_add_edge(&d, 0, 1, FL_EDGE_DATA), 0);
  CHECK_EQ_INT(fl_dag_add_edge(&d, 1, 2, FL_EDGE_DATA), 0);
  CHECK_EQ_INT(fl_dag_add_edge(&d, 2, 3, FL_EDGE_DATA), 0);
  CHECK_EQ_INT(fl_dag_add_edge(&d, 3, 1, FL_EDGE_DATA), 0);
  static const uint32_t want[] = {1, 2, 3, 1};
  check_cycle(&d, want, 4);
  fl_dag_free(&d);
}

/* A node downstream of a cycle, numbered lower than the cycle, is left out
   by Kahn too; the walk upstream from it must still end on the cycle alone:
   2 → 3 → 2, 3 → 0. */
static void test_cycle_with_lower_numbered_tail(void) {
  fl_dag d;
  fl_dag_init(&d);
  add_nodes(&d, 4);
  CHECK_EQ_INT(fl_dag_add_edge(&d, 3, 0, FL_EDGE_DATA), 0);
  CHECK_EQ_INT(fl_dag_add_edge(&d, 2, 3, FL_EDGE_DATA), 0);
  CHECK_EQ_INT(fl_dag_add_edge(&d, 3, 2, FL_EDGE_DATA), 0);
  CHECK_EQ_INT(fl_dag_add_edge(&d, 1, 2, FL_EDGE_DATA), 0);
  static const uint32_t want[] = {2, 3, 2};
  check_cycle(&d, want, 3);
  fl_dag_free(&d);
}

/* Without a place to put the cycle, finalize still fails. */
static void test_cycle_without_report(void) {
  fl_dag d;
  fl_dag_init(&d);
  add_nodes(&d, 2);
  CHECK_EQ_INT(fl_dag_add_edge(&d, 0, 1, FL_EDGE_DATA), 0);
  CHECK_EQ_INT(fl_dag_add_edge(&d, 1, 0, FL_EDGE_DATA), 0);
  CHECK_EQ_INT(fl_dag_finalize(&d, NULL, NULL), FLOWLUA_EBUILD);
  CHECK(!d.finalized);
  fl_dag_free(&d);
}

static void test_empty_graph(void) {
  fl_dag d;
  fl_dag_init(&d);
  uint32_t *cycle = NULL;
  size_t len = 7;
  CHECK_EQ_INT(fl_dag_finalize(&d, &cycle, &len), 0);
  CHECK(cycle == NULL);
  CHECK_EQ_INT(len, 0);
  CHECK(d.finalized);
  uint32_t out[1] = {42};
  CHECK_EQ_INT(fl_dag_topo_order(&d, out), 0);
  CHECK_EQ_INT(out[0], 42); /* nothing written */
  fl_dag_free(&d);
}

/* A failed finalize leaves the edge list for the caller to free; freeing the
   graph must release everything (the sanitizer build checks for leaks). A
   second finalize of the same graph reports the same cycle. */
static void test_failed_finalize_frees(void) {
  fl_dag d;
  fl_dag_init(&d);
  add_nodes(&d, 3);
  for (int rep = 0; rep < 100; rep++) /* enough edges to grow the list */
    CHECK_EQ_INT(fl_dag_add_edge(&d, (uint32_t)rep % 3, (uint32_t)(rep + 1) % 3,
                                 FL_EDGE_DATA),
                 0);
  static const uint32_t want[] = {0, 1, 2, 0};
  check_cycle(&d, want, 4);
  CHECK(d.up_off == NULL && d.up == NULL && d.down == NULL);
  check_cycle(&d, want, 4);
  fl_dag_free(&d);
  CHECK(d.edges == NULL);
  CHECK_EQ_INT(d.n_nodes, 0);
}

static void test_edge_out_of_range(void) {
  fl_dag d;
  fl_dag_init(&d);
  CHECK_EQ_INT(fl_dag_add_edge(&d, 0, 0, FL_EDGE_DATA), FLOWLUA_EINVAL);
  add_nodes(&d, 2);
  CHECK_EQ_INT(fl_dag_add_edge(&d, 0, 2, FL_EDGE_DATA), FLOWLUA_EINVAL);
  CHECK_EQ_INT(fl_dag_add_edge(&d, 2, 0, FL_EDGE_DATA), FLOWLUA_EINVAL);
  CHECK_EQ_INT(fl_dag_add_edge(&d, UINT32_MAX, 1, FL_EDGE_DATA),
               FLOWLUA_EINVAL);
  CHECK_EQ_INT(d.n_edges, 0); /* rejected edges are not recorded */
  CHECK_EQ_INT(fl_dag_add_edge(&d, 0, 1, FL_EDGE_DATA), 0);
  static const uint32_t want[] = {0, 1};
  check_order(&d, want, 2);
  /* A frozen graph takes no more nodes or edges. */
  CHECK_EQ_INT(fl_dag_add_node(&d), -1);
  CHECK_EQ_INT(fl_dag_add_edge(&d, 0, 1, FL_EDGE_DATA), FLOWLUA_EINVAL);
  fl_dag_free(&d);
}

/* xorshift64*: a fixed sequence on every platform, unlike rand(). */
static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint32_t rng_below(uint32_t n) {
  rng_state ^= rng_state >> 12;
  rng_state ^= rng_state << 25;
  rng_state ^= rng_state >> 27;
  return (uint32_t)((rng_state * 0x2545F4914F6CDD1Dull) >> 32) % n;
}

/*
 * 100,000 nodes in 1,000 layers of 100; each node past the first layer gets
 * two random parents in the layer before (sometimes the same one twice, which
 * must merge). Node numbers are shuffled across layers, so node order says
 * nothing about run order and the check is not satisfied by accident.
 */
static void test_large_random_dag(void) {
  enum { LAYERS = 1000, WIDTH = 100, N = LAYERS * WIDTH };
  uint32_t *id = malloc(N * sizeof *id); /* layer slot -> node number */
  uint32_t(*edges)[2] = malloc(2 * (size_t)N * sizeof *edges);
  uint32_t *order = malloc(N * sizeof *order);
  uint32_t *pos = malloc(N * sizeof *pos);
  CHECK(id && edges && order && pos);
  if (!id || !edges || !order || !pos)
    goto out;

  for (uint32_t i = 0; i < N; i++)
    id[i] = i;
  for (uint32_t i = N - 1; i > 0; i--) { /* Fisher-Yates */
    uint32_t j = rng_below(i + 1), t = id[i];
    id[i] = id[j];
    id[j] = t;
  }

  fl_dag d;
  fl_dag_init(&d);
  int bad_add = 0;
  for (uint32_t i = 0; i < N; i++)
    if (fl_dag_add_node(&d) != (int64_t)i)
      bad_add++;
  size_t m = 0;
  for (uint32_t layer = 1; layer < LAYERS; layer++)
    for (uint32_t k = 0; k < WIDTH; k++)
      for (int p = 0; p < 2; p++) {
        uint32_t from = id[(layer - 1) * WIDTH + rng_below(WIDTH)];
        uint32_t to = id[layer * WIDTH + k];
        edges[m][0] = from;
        edges[m][1] = to;
        m++;
        if (fl_dag_add_edge(&d, from, to, FL_EDGE_DATA) != 0)
          bad_add++;
      }
  CHECK_EQ_INT(bad_add, 0);

  uint32_t *cycle = NULL;
  size_t len = 0;
  CHECK_EQ_INT(fl_dag_finalize(&d, &cycle, &len), 0);
  CHECK(cycle == NULL);
  CHECK_EQ_INT(fl_dag_topo_order(&d, order), 0);

  /* The order is a permutation of the nodes... */
  for (uint32_t i = 0; i < N; i++)
    pos[i] = UINT32_MAX;
  int dup = 0;
  for (uint32_t i = 0; i < N; i++) {
    if (order[i] >= N || pos[order[i]] != UINT32_MAX)
      dup++;
    else
      pos[order[i]] = i;
  }
  CHECK_EQ_INT(dup, 0);
  /* ...and every generated edge, and every edge in the adjacency, points
     forward in it. */
  size_t backwards = 0, adj_edges = 0;
  for (size_t e = 0; e < m && !dup; e++)
    if (pos[edges[e][0]] >= pos[edges[e][1]])
      backwards++;
  for (uint32_t v = 0; v < N && !dup; v++)
    for (uint32_t k = d.up_off[v]; k < d.up_off[v + 1]; k++, adj_edges++)
      if (pos[d.up[k]] >= pos[v])
        backwards++;
  CHECK_EQ_INT(backwards, 0);
  /* Merging only removed repeated parents: between m/2 and m edges remain,
     and each non-root node has one or two upstreams. */
  CHECK(adj_edges > m / 2 && adj_edges <= m);
  CHECK_EQ_INT(d.up_off[N], adj_edges);
  CHECK_EQ_INT(d.down_off[N], adj_edges);
  int bad_up = 0;
  for (uint32_t slot = 0; slot < N; slot++) {
    uint32_t n_up = fl_dag_n_up(&d, id[slot]);
    if (slot < WIDTH ? n_up != 0 : (n_up < 1 || n_up > 2))
      bad_up++;
  }
  CHECK_EQ_INT(bad_up, 0);
  fl_dag_free(&d);
out:
  free(id);
  free(edges);
  free(order);
  free(pos);
}

int main(void) {
  RUN(test_chain);
  RUN(test_chain_reversed_numbers);
  RUN(test_fan_out_fan_in);
  RUN(test_diamond);
  RUN(test_duplicate_edges_merge);
  RUN(test_self_edge_is_cycle);
  RUN(test_three_cycle);
  RUN(test_cycle_after_good_prefix);
  RUN(test_cycle_with_lower_numbered_tail);
  RUN(test_cycle_without_report);
  RUN(test_empty_graph);
  RUN(test_failed_finalize_frees);
  RUN(test_edge_out_of_range);
  RUN(test_large_random_dag);
  return check_summary();
}
