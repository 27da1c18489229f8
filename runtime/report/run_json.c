/*
 * run_json.c — a stored run's graph and timeline as JSON for the web UI
 * (run_json.h). The page draws them on one <canvas>, so a 100,000-task
 * run costs the page one element, not one per node or bar; beyond a size
 * the graph is summed by layer here, so the answer stays small too.
 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "run_json.h"

static void add_seconds(fl_buf *b, double s) {
  char num[FL_JSON_NUMBER_MAX];
  fl_json_format_double(round(s * 1000.0) / 1000.0, num);
  fl_buf_adds(b, num);
}

static const char *node_state(const fl_store_run_detail *d, const char *key) {
  const fl_store_task_row *t = fl_store_detail_find(d, key);
  return t ? fl_store_task_state_name(t->state) : "Pending";
}

/* A graph key and its index, sorted by key to find a map element's map. */
typedef struct key_index {
  const char *key;
  size_t i;
} key_index;

static int cmp_key_index(const void *a, const void *b) {
  return strcmp(((const key_index *)a)->key, ((const key_index *)b)->key);
}

/* The graph key index whose key is the first len bytes of key, or
   SIZE_MAX. */
static size_t find_key(const key_index *sorted, size_t n, const char *key,
                       size_t len) {
  size_t lo = 0, hi = n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    const char *k = sorted[mid].key;
    int c = strncmp(k, key, len);
    if (c == 0 && k[len] != '\0') c = 1; /* longer sorts after */
    if (c == 0) return sorted[mid].i;
    if (c < 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  return SIZE_MAX;
}

/* How many elements each graph key's map has (0: not a map): task runs
   "KEY[i]" with map_index > 0 are the elements of the map KEY. */
static size_t *count_elements(const fl_store_run_detail *d) {
  size_t n = d->n_graph_keys;
  size_t *count = calloc(n ? n : 1, sizeof *count);
  key_index *sorted = malloc((n ? n : 1) * sizeof *sorted);
  if (!count || !sorted) {
    free(count);
    free(sorted);
    return NULL;
  }
  for (size_t k = 0; k < n; k++) sorted[k] = (key_index){d->graph_keys[k], k};
  qsort(sorted, n, sizeof *sorted, cmp_key_index);
  for (size_t i = 0; i < d->n_tasks; i++) {
    const fl_store_task_row *t = &d->tasks[i];
    const char *bracket = t->map_index > 0 ? strrchr(t->key, '[') : NULL;
    if (!bracket) continue;
    size_t k = find_key(sorted, n, t->key, (size_t)(bracket - t->key));
    if (k != SIZE_MAX) count[k]++;
  }
  free(sorted);
  return count;
}

static void add_nodes(fl_buf *b, const fl_store_run_detail *d,
                      const uint32_t *layer, const uint32_t *row,
                      const size_t *elements) {
  fl_buf_adds(b, ",\"aggregated\":false,\"nodes\":[");
  for (size_t i = 0; i < d->n_graph_keys; i++) {
    fl_buf_adds(b, i ? ",{\"key\":" : "{\"key\":");
    fl_buf_add_json_string(b, d->graph_keys[i]);
    fl_buf_adds(b, ",\"state\":");
    fl_buf_add_json_string(b, node_state(d, d->graph_keys[i]));
    fl_buf_addf(b, ",\"layer\":%u,\"row\":%u,\"map\":%zu}", layer[i], row[i],
                elements ? elements[i] : 0);
  }
  fl_buf_addc(b, ']');
}

static void add_edges(fl_buf *b, const fl_report_edge *edges, size_t n) {
  fl_buf_adds(b, ",\"edges\":[");
  for (size_t k = 0; k < n; k++)
    fl_buf_addf(b, "%s[%u,%u,%d]", k ? "," : "", edges[k].from, edges[k].to,
                edges[k].ordering ? 1 : 0);
  fl_buf_addc(b, ']');
}

/* Per layer, how many nodes and how many in each state. */
static int add_layers(fl_buf *b, const fl_store_run_detail *d,
                      const uint32_t *layer, long layers) {
  size_t n_layers = layers > 0 ? (size_t)layers : 1;
  size_t *by = calloc(n_layers * (FL_STORE_TASK_STATES + 1), sizeof *by);
  if (!by) return -1;
  for (size_t i = 0; i < d->n_graph_keys; i++) {
    const fl_store_task_row *t = fl_store_detail_find(d, d->graph_keys[i]);
    int st = t && t->state >= 0 ? t->state : FL_STORE_TASK_STATES; /* Pending */
    if (!t) st = FLOWLUA_TASK_PENDING;
    by[layer[i] * (FL_STORE_TASK_STATES + 1) + (size_t)st]++;
  }
  fl_buf_adds(b, ",\"aggregated\":true,\"by_layer\":[");
  for (size_t l = 0; l < n_layers; l++) {
    const size_t *c = &by[l * (FL_STORE_TASK_STATES + 1)];
    size_t total = 0;
    for (int s = 0; s <= FL_STORE_TASK_STATES; s++) total += c[s];
    fl_buf_addf(b, "%s{\"tasks\":%zu,\"states\":{", l ? "," : "", total);
    int any = 0;
    for (int s = 0; s <= FL_STORE_TASK_STATES; s++) {
      if (!c[s]) continue;
      fl_buf_addf(b, "%s\"%s\":%zu", any ? "," : "",
                  s < FL_STORE_TASK_STATES ? fl_store_task_state_name(s) : "?",
                  c[s]);
      any = 1;
    }
    fl_buf_adds(b, "}}");
  }
  fl_buf_addc(b, ']');
  free(by);
  return 0;
}

int fl_run_json_graph(fl_buf *b, const fl_store_run_detail *d,
                      const fl_report_edge *edges, size_t n_edges,
                      const char *note, size_t max_nodes) {
  size_t n = d->n_graph_keys;
  uint32_t *layer = malloc((n ? n : 1) * sizeof *layer);
  uint32_t *row = malloc((n ? n : 1) * sizeof *row);
  size_t *elements = NULL;
  long layers = -1;
  if (layer && row) {
    /* 20 columns when there are no edges to lay out: a grid. */
    layers = fl_report_layout(n, edges, edges ? n_edges : 0, 20, layer, row);
    if (layers < 0 && edges) { /* a cycle cannot be stored: draw no edges */
      edges = NULL;
      note = "the graph could not be laid out (its edges make a cycle)";
      layers = fl_report_layout(n, NULL, 0, 20, layer, row);
    }
  }
  int aggregated = n > max_nodes;
  if (layers >= 0 && !aggregated) elements = count_elements(d);
  int rc = 0;
  if (layers < 0 || (!aggregated && !elements)) {
    rc = -1;
  } else {
    fl_buf_addf(b, "{\"tasks\":%zu,\"edges_count\":%zu,\"layers\":%ld,"
                   "\"note\":", n, edges ? n_edges : 0, layers);
    if (note)
      fl_buf_add_json_string(b, note);
    else
      fl_buf_adds(b, "null");
    if (aggregated) {
      rc = add_layers(b, d, layer, layers);
    } else {
      add_nodes(b, d, layer, row, elements);
      add_edges(b, edges, edges ? n_edges : 0);
    }
    fl_buf_adds(b, "}\n");
  }
  free(elements);
  free(layer);
  free(row);
  return rc || b->oom ? -1 : 0;
}

/* The span the timeline covers: the run's start to its end, or to the
   last thing seen (to now while it runs). */
static void span_of(const fl_store_run_detail *d, const fl_store_attempt_list *a,
                    double now, double *t0_out, double *t1_out) {
  double t0 = d->run.started_at, t1 = d->run.ended_at, last = t0;
  for (size_t j = 0; j < a->n; j++) {
    const fl_store_attempt *at = &a->items[j];
    if (t0 <= 0 || at->started_at < t0) t0 = at->started_at;
    if (at->ended_at > last) last = at->ended_at;
    if (at->started_at > last) last = at->started_at;
  }
  for (size_t i = 0; i < d->n_tasks; i++)
    if (d->tasks[i].ended_at > last) last = d->tasks[i].ended_at;
  if (d->run.state == FLOWLUA_FLOW_RUNNING && now > last) last = now;
  if (!(t1 > t0)) t1 = last;
  *t0_out = t0;
  *t1_out = t1 > t0 ? t1 : t0 + 0.001;
}

/* The first attempt of task run i in a (grouped by task run, in order). */
static size_t first_attempt(const fl_store_attempt_list *a, size_t i) {
  size_t lo = 0, hi = a->n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (a->items[mid].task < i)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo;
}

void fl_run_json_timeline(fl_buf *b, const fl_store_run_detail *d,
                          const fl_store_attempt_list *a, double now,
                          size_t offset, size_t limit) {
  double t0, t1;
  span_of(d, a, now, &t0, &t1);
  fl_buf_adds(b, "{\"t0\":");
  fl_store_add_json_time(b, t0);
  fl_buf_adds(b, ",\"span\":");
  add_seconds(b, t1 - t0);
  fl_buf_addf(b, ",\"rows_total\":%zu,\"offset\":%zu,\"attempts\":%zu,"
                 "\"rows\":[", d->n_tasks, offset, a->n);
  size_t end = offset < d->n_tasks ? offset + limit : offset;
  if (end > d->n_tasks) end = d->n_tasks;
  for (size_t i = offset; i < end; i++) {
    const fl_store_task_row *t = &d->tasks[i];
    fl_buf_adds(b, i > offset ? ",\n{\"key\":" : "\n{\"key\":");
    fl_buf_add_json_string(b, t->key);
    fl_buf_adds(b, ",\"state\":");
    fl_buf_add_json_string(b, fl_store_task_state_name(t->state));
    fl_buf_adds(b, ",\"bars\":[");
    int any = 0;
    for (size_t j = first_attempt(a, i); j < a->n && a->items[j].task == i; j++) {
      const fl_store_attempt *at = &a->items[j];
      double to = at->ended_at > 0 ? at->ended_at : t1;
      fl_buf_adds(b, any ? ",[" : "[");
      add_seconds(b, at->started_at - t0);
      fl_buf_addc(b, ',');
      add_seconds(b, to - t0);
      fl_buf_addc(b, ',');
      fl_buf_add_json_string(b, at->state >= 0
                                    ? fl_store_task_state_name(at->state)
                                    : "?");
      fl_buf_addc(b, ']');
      any = 1;
    }
    fl_buf_adds(b, "]}");
  }
  fl_buf_adds(b, "]}\n");
}
