/*
 * graphout.c — flowlua_graph: a flow's task graph as Graphviz DOT or
 * Mermaid text, optionally coloured by the states of a stored run.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <string.h>

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

/* What a stored run says of one node. */
typedef struct node_view {
  int state;         /* -1: not in the run */
  size_t map_count;  /* elements of a mapped node in the run */
} node_view;

static void view_nodes(const fl_graph *g, const char *const *keys,
                       const fl_store_run_detail *d, node_view *v) {
  for (uint32_t i = 0; i < g->n; i++) {
    const fl_store_task_row *t = d ? fl_store_detail_find(d, keys[i]) : NULL;
    v[i].state = t ? t->state : -1;
    v[i].map_count = 0;
    if (!d || !(g->nodes[i].flags & FL_NODE_MAP)) continue;
    size_t len = strlen(keys[i]);
    for (size_t k = 0; k < d->n_tasks; k++)
      if (d->tasks[k].map_index > 0 &&
          strncmp(d->tasks[k].key, keys[i], len) == 0 &&
          d->tasks[k].key[len] == '[')
        v[i].map_count++;
  }
}

/* A node's label: its key, "(map)" or "(map of N)", and its state. */
static void add_label(fl_buf *b, const fl_graph *g, uint32_t i,
                      const char *key, const node_view *v, int have_run) {
  fl_buf_adds(b, key);
  if (g->nodes[i].flags & FL_NODE_MAP) {
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

static void write_dot(fl_buf *b, const fl_graph *g, const char *const *keys,
                      const node_view *v, int have_run) {
  fl_buf label = FL_BUF_INIT;
  fl_buf_adds(b, "digraph ");
  add_dot_string(b, g->flow->name);
  fl_buf_adds(b, " {\n  rankdir=LR;\n  node [shape=box, style=\"rounded,filled\","
                 " fillcolor=\"#ffffff\", fontname=\"sans-serif\"];\n");
  for (uint32_t i = 0; i < g->n; i++) {
    fl_buf_reset(&label);
    add_label(&label, g, i, keys[i], &v[i], have_run);
    fl_buf_adds(b, "  ");
    add_dot_string(b, keys[i]);
    fl_buf_adds(b, " [label=");
    add_dot_string(b, fl_buf_str(&label));
    if (g->nodes[i].flags & FL_NODE_MAP) fl_buf_adds(b, ", peripheries=2");
    if (have_run)
      fl_buf_addf(b, ", fillcolor=\"%s\"",
                  state_colour(v[i].state >= 0 ? v[i].state : -1));
    fl_buf_adds(b, "];\n");
  }
  for (uint32_t i = 0; i < g->n; i++)
    for (uint32_t k = g->dag.up_off[i]; k < g->dag.up_off[i + 1]; k++) {
      fl_buf_adds(b, "  ");
      add_dot_string(b, keys[g->dag.up[k]]);
      fl_buf_adds(b, " -> ");
      add_dot_string(b, keys[i]);
      fl_buf_adds(b, g->dag.up_kind[k] & FL_EDGE_DATA ? ";\n"
                                                      : " [style=dashed];\n");
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

static void write_mermaid(fl_buf *b, const fl_graph *g,
                          const char *const *keys, const node_view *v,
                          int have_run) {
  fl_buf label = FL_BUF_INIT;
  fl_buf_adds(b, "flowchart LR\n");
  for (uint32_t i = 0; i < g->n; i++) {
    fl_buf_reset(&label);
    add_label(&label, g, i, keys[i], &v[i], have_run);
    fl_buf_addf(b, "  n%u", (unsigned)i);
    fl_buf_adds(b, g->nodes[i].flags & FL_NODE_MAP ? "[[" : "[");
    add_mermaid_label(b, fl_buf_str(&label));
    fl_buf_adds(b, g->nodes[i].flags & FL_NODE_MAP ? "]]\n" : "]\n");
  }
  for (uint32_t i = 0; i < g->n; i++)
    for (uint32_t k = g->dag.up_off[i]; k < g->dag.up_off[i + 1]; k++)
      fl_buf_addf(b, "  n%u %s n%u\n", (unsigned)g->dag.up[k],
                  g->dag.up_kind[k] & FL_EDGE_DATA ? "-->" : "-.->",
                  (unsigned)i);
  if (have_run) {
    for (int st = 0; st < FL_STORE_TASK_STATES; st++)
      fl_buf_addf(b, "  classDef s%d fill:%s\n", st, state_colour(st));
    for (uint32_t i = 0; i < g->n; i++)
      if (v[i].state >= 0)
        fl_buf_addf(b, "  class n%u s%d\n", (unsigned)i, v[i].state);
  }
  fl_buf_free(&label);
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
  int rc = flowlua_check(rt, flow_name);
  if (rc != FLOWLUA_OK) return rc;
  fl_graph *g = rt->graph;
  fl_store *st = NULL, *tmp = NULL;
  fl_store_run_detail *d = NULL;
  if (run_ref) {
    rc = fl_history_open(rt, &st, &tmp);
    if (rc == FLOWLUA_OK && !st) {
      fl_set_error(rt, "no run '%s': no runs recorded yet", run_ref);
      rc = FLOWLUA_EINVAL;
    }
    if (rc == FLOWLUA_OK) {
      rc = fl_store_load_run(st, run_ref, g->flow->name, &d);
      if (rc != FLOWLUA_OK) fl_set_error(rt, "%s", fl_store_errmsg(st));
    }
    if (rc != FLOWLUA_OK) {
      fl_store_close(tmp);
      return rc;
    }
  }
  const char **keys = fl_graph_keys(g);
  node_view *v = calloc(g->n ? g->n : 1, sizeof *v);
  fl_buf b = FL_BUF_INIT;
  if (keys && v) {
    view_nodes(g, keys, d, v);
    if (dot)
      write_dot(&b, g, keys, v, d != NULL);
    else
      write_mermaid(&b, g, keys, v, d != NULL);
  }
  rc = keys && v && !b.oom ? FLOWLUA_OK : FLOWLUA_ENOMEM;
  if (rc == FLOWLUA_OK) {
    *out = b.data ? b.data : strdup("");
    b.data = NULL;
    if (!*out) rc = FLOWLUA_ENOMEM;
  }
  if (rc != FLOWLUA_OK) fl_set_error(rt, "flowlua_graph: out of memory");
  fl_buf_free(&b);
  free(v);
  free(keys);
  fl_store_run_detail_free(d);
  fl_store_close(tmp);
  return rc;
}
