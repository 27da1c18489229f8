/*
 * graphout.c — flowlua_graph: a flow's task graph as Graphviz DOT or
 * Mermaid text, optionally coloured by the states of a stored run. The
 * graph comes from the loaded script, or, when none is loaded, from the
 * keys and edges stored with the run: reading a history runs no script.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

#include "api.h"
#include "store.h"

/* Fill colours by final state; white for anything else. */
static const char *state_colour(int state) {
  switch (state) {
  case FLOWLUA_TASK_SUCCESS: return "#c8e6c9";
  case FLOWLUA_TASK_CACHED: return "#bbdefb";
  case FLOWLUA_TASK_FAILED:
  case FLOWLUA_TASK_TIMED_OUT: return "#ffcdd2";
  case FLOWLUA_TASK_TRIGGER_FAILED: return "#ffe0b2";
  case FLOWLUA_TASK_SKIPPED: return "#eeeeee";
  case FLOWLUA_TASK_CANCELLED: return "#e0e0e0";
  case FL_STORE_TASK_CRASHED: return "#f8bbd0";
  default: return "#ffffff";
  }
}

/* The graph to draw, from a built fl_graph or from a stored run. */
typedef struct graph_src {
  const char *name; /* the flow's */
  uint32_t n;
  const char *const *keys;
  const fl_store_edge *edges;
  size_t n_edges;
  uint8_t *is_map; /* n flags, owned */
} graph_src;

/* What a stored run says of one node. */
typedef struct node_view {
  int state;         /* -1: not in the run */
  size_t map_count;  /* elements of a mapped node in the run */
} node_view;

/* The elements of the map with this key in the run. */
static size_t count_elements(const fl_store_run_detail *d, const char *key) {
  size_t len = strlen(key), n = 0;
  for (size_t k = 0; k < d->n_tasks; k++)
    if (d->tasks[k].map_index > 0 && strncmp(d->tasks[k].key, key, len) == 0 &&
        d->tasks[k].key[len] == '[')
      n++;
  return n;
}

static void view_nodes(const graph_src *g, const fl_store_run_detail *d,
                       node_view *v) {
  for (uint32_t i = 0; i < g->n; i++) {
    const fl_store_task_row *t = d ? fl_store_detail_find(d, g->keys[i]) : NULL;
    v[i].state = t ? t->state : -1;
    v[i].map_count = d && g->is_map[i] ? count_elements(d, g->keys[i]) : 0;
  }
}

/* A node's label: its key, "(map)" or "(map of N)", and its state. */
static void add_label(fl_buf *b, const graph_src *g, uint32_t i,
                      const node_view *v, int have_run) {
  fl_buf_adds(b, g->keys[i]);
  if (g->is_map[i]) {
    if (v->map_count)
      fl_buf_addf(b, " (map of %zu)", v->map_count);
    else
      fl_buf_adds(b, " (map)");
  }
  if (have_run)
    fl_buf_addf(b, "\\n%s", v->state >= 0
                                ? fl_store_task_state_name(v->state)
                                : "not run");
}

/* "text" with " and \ escaped, for DOT. */
static void add_dot_string(fl_buf *b, const char *s) {
  fl_buf_addc(b, '"');
  for (; *s; s++) {
    if (*s == '"' || (*s == '\\' && s[1] != 'n')) fl_buf_addc(b, '\\');
    fl_buf_addc(b, *s);
  }
  fl_buf_addc(b, '"');
}

static void write_dot(fl_buf *b, const graph_src *g, const node_view *v,
                      int have_run) {
  const char *const *keys = g->keys;
  fl_buf label = FL_BUF_INIT;
  fl_buf_adds(b, "digraph ");
  add_dot_string(b, g->name);
  fl_buf_adds(b, " {\n  rankdir=LR;\n  node [shape=box, style=\"rounded,filled\","
                 " fillcolor=\"#ffffff\", fontname=\"sans-serif\"];\n");
  for (uint32_t i = 0; i < g->n; i++) {
    fl_buf_reset(&label);
    add_label(&label, g, i, &v[i], have_run);
    fl_buf_adds(b, "  ");
    add_dot_string(b, keys[i]);
    fl_buf_adds(b, " [label=");
    add_dot_string(b, fl_buf_str(&label));
    if (g->is_map[i]) fl_buf_adds(b, ", peripheries=2");
    if (have_run)
      fl_buf_addf(b, ", fillcolor=\"%s\"",
                  state_colour(v[i].state >= 0 ? v[i].state : -1));
    fl_buf_adds(b, "];\n");
  }
  for (size_t k = 0; k < g->n_edges; k++) {
    fl_buf_adds(b, "  ");
    add_dot_string(b, keys[g->edges[k].from]);
    fl_buf_adds(b, " -> ");
    add_dot_string(b, keys[g->edges[k].to]);
    fl_buf_adds(b, g->edges[k].ordering ? " [style=dashed];\n" : ";\n");
  }
  fl_buf_adds(b, "}\n");
  fl_buf_free(&label);
}

/* Mermaid labels go in quotes; a quote is written #quot;. */
static void add_mermaid_label(fl_buf *b, const char *s) {
  fl_buf_addc(b, '"');
  for (; *s; s++) {
    if (*s == '"')
      fl_buf_adds(b, "#quot;");
    else if (*s == '\\' && s[1] == 'n') {
      fl_buf_adds(b, "<br/>");
      s++;
    } else
      fl_buf_addc(b, *s);
  }
  fl_buf_addc(b, '"');
}

static void write_mermaid(fl_buf *b, const graph_src *g, const node_view *v,
                          int have_run) {
  fl_buf label = FL_BUF_INIT;
  fl_buf_adds(b, "flowchart LR\n");
  for (uint32_t i = 0; i < g->n; i++) {
    fl_buf_reset(&label);
    add_label(&label, g, i, &v[i], have_run);
    fl_buf_addf(b, "  n%u", (unsigned)i);
    fl_buf_adds(b, g->is_map[i] ? "[[" : "[");
    add_mermaid_label(b, fl_buf_str(&label));
    fl_buf_adds(b, g->is_map[i] ? "]]\n" : "]\n");
  }
  for (size_t k = 0; k < g->n_edges; k++)
    fl_buf_addf(b, "  n%u %s n%u\n", (unsigned)g->edges[k].from,
                g->edges[k].ordering ? "-.->" : "-->",
                (unsigned)g->edges[k].to);
  if (have_run) {
    for (int st = 0; st < FL_STORE_TASK_STATES; st++)
      fl_buf_addf(b, "  classDef s%d fill:%s\n", st, state_colour(st));
    for (uint32_t i = 0; i < g->n; i++)
      if (v[i].state >= 0)
        fl_buf_addf(b, "  class n%u s%d\n", (unsigned)i, v[i].state);
  }
  fl_buf_free(&label);
}

/* The graph the loaded script builds for flow_name. Fills g (keys,
   edges and is_map owned by the caller: free_src). */
static int src_from_script(flowlua *rt, const char *flow_name, graph_src *g) {
  int rc = flowlua_check(rt, flow_name);
  if (rc != FLOWLUA_OK) return rc;
  const fl_graph *built = rt->graph;
  g->name = built->flow->name;
  g->n = built->n;
  g->keys = fl_graph_keys(built);
  g->edges = fl_graph_edges(built, &g->n_edges);
  g->is_map = calloc(built->n ? built->n : 1, 1);
  if (!g->keys || !g->edges || !g->is_map) return FLOWLUA_ENOMEM;
  for (uint32_t i = 0; i < built->n; i++)
    g->is_map[i] = (built->nodes[i].flags & FL_NODE_MAP) != 0;
  return FLOWLUA_OK;
}

/* The graph stored with run d: its keys and edges, a map being a node with
   elements in the run (a map that never had any is drawn as a task). */
static int src_from_run(flowlua *rt, const fl_store_run_detail *d,
                        graph_src *g) {
  if (d->edges_state != FL_STORE_EDGES_RECORDED) {
    fl_set_error(rt, "run %s has no stored graph (%s): give the script, "
                     "flowlua graph SCRIPT --run %s",
                 d->run.run_id,
                 d->edges_state == FL_STORE_EDGES_DAMAGED
                     ? "its stored edges are damaged"
                     : "recorded by a flowlua older than 0.6.0",
                 d->run.run_id);
    return FLOWLUA_EINVAL;
  }
  g->name = d->run.flow;
  g->n = (uint32_t)d->n_graph_keys;
  g->is_map = calloc(g->n ? g->n : 1, 1);
  if (!g->is_map) return FLOWLUA_ENOMEM;
  g->keys = d->graph_keys;
  g->edges = d->edges;
  g->n_edges = d->n_edges;
  for (uint32_t i = 0; i < g->n; i++)
    g->is_map[i] = count_elements(d, g->keys[i]) > 0;
  return FLOWLUA_OK;
}

/* The stored run run_ref (of flow_name when not NULL) into *d. */
static int load_stored_run(flowlua *rt, const char *flow_name,
                           const char *run_ref, fl_store_run_detail **d) {
  fl_store *st = NULL, *tmp = NULL;
  int rc = fl_history_open(rt, &st, &tmp);
  if (rc == FLOWLUA_OK && !st) {
    fl_set_error(rt, "no run '%s': no runs recorded yet", run_ref);
    rc = FLOWLUA_EINVAL;
  }
  if (rc == FLOWLUA_OK) {
    rc = fl_store_load_run(st, run_ref, flow_name, d);
    if (rc != FLOWLUA_OK) fl_set_error(rt, "%s", fl_store_errmsg(st));
  }
  fl_store_close(tmp);
  return rc;
}

int flowlua_graph(flowlua *rt, const char *flow_name, const char *format,
                  const char *run_ref, char **out) {
  if (!rt || !out) return FLOWLUA_EINVAL;
  *out = NULL;
  if (fl_api_reentered(rt, "flowlua_graph")) return FLOWLUA_ESTATE;
  int dot = !format || strcmp(format, "dot") == 0;
  if (!dot && strcmp(format, "mermaid") != 0) {
    fl_set_error(rt, "flowlua_graph: format must be dot or mermaid, not '%s'",
                 format);
    return FLOWLUA_EINVAL;
  }
  /* Without a script, the graph stored with the run: nothing is run. */
  int from_script = rt->flows_ref != LUA_NOREF || !run_ref;
  graph_src g = {0};
  fl_store_run_detail *d = NULL;
  int rc = from_script ? src_from_script(rt, flow_name, &g) : FLOWLUA_OK;
  if (rc == FLOWLUA_OK && run_ref)
    rc = load_stored_run(rt, from_script ? g.name : flow_name, run_ref, &d);
  if (rc == FLOWLUA_OK && !from_script) rc = src_from_run(rt, d, &g);
  node_view *v = rc == FLOWLUA_OK ? calloc(g.n ? g.n : 1, sizeof *v) : NULL;
  fl_buf b = FL_BUF_INIT;
  if (v) {
    view_nodes(&g, d, v);
    if (dot)
      write_dot(&b, &g, v, d != NULL);
    else
      write_mermaid(&b, &g, v, d != NULL);
    if (!b.oom) {
      *out = b.data ? b.data : strdup("");
      b.data = NULL;
    }
  }
  if (rc == FLOWLUA_OK && !*out) {
    rc = FLOWLUA_ENOMEM;
  }
  if (rc == FLOWLUA_ENOMEM) fl_set_error(rt, "flowlua_graph: out of memory");
  fl_buf_free(&b);
  free(v);
  if (from_script) {
    free((void *)g.keys);
    free((void *)g.edges);
  }
  free(g.is_map);
  fl_store_run_detail_free(d);
  return rc;
}
