/*
 * store_edges.c — a run's stored edges, parsed in C from their common
 * form, for both histories (store_read.c, pg_read.c).
 *
 * An edge is believed only when it is an array of three whose first two
 * elements are integers that index the run's keys (else the edges are
 * damaged). Checking that in SQL costs some 2 µs an edge, and SQLite's
 * json_each read the text twice more: three quarters of loading a
 * 100,000-task run (200,000 edges) went there. Parsed here, the text costs
 * a tenth of it. A third element this parser does not read as the SQLite
 * store's SQL would (a string, an array, an object) sends the run to each
 * store's SQL route, which reads any form.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "store_internal.h"

int64_t fl__store_json_int(const char *v) {
  if (!v) return 0;
  if (strcmp(v, "true") == 0) return 1;
  char *end;
  double x = strtod(v, &end);
  if (end == v || isnan(x)) return 0;
  if (x >= 9223372036854775807.0) return INT64_MAX;
  if (x <= -9223372036854775808.0) return INT64_MIN;
  return (int64_t)x;
}

typedef struct edge_parse {
  const char *p, *end;
} edge_parse;

static void skip_ws(edge_parse *e) {
  while (e->p < e->end && (*e->p == ' ' || *e->p == '\n' || *e->p == '\t' ||
                           *e->p == '\r'))
    e->p++;
}

static int take(edge_parse *e, char ch) {
  skip_ws(e);
  if (e->p < e->end && *e->p == ch) {
    e->p++;
    return 1;
  }
  return 0;
}

/* Whether the token at e->p ends here (a delimiter or the end). */
static int at_delim(const edge_parse *e) {
  return e->p == e->end || *e->p == ',' || *e->p == ']' || *e->p == ' ' ||
         *e->p == '\n' || *e->p == '\t' || *e->p == '\r';
}

/* An index into the keys: 1 with *v set, 0 when the element is anything
   else (not an integer, or out of range: the edges are damaged). */
static int take_index(edge_parse *e, int64_t n_keys, uint32_t *v) {
  skip_ws(e);
  int64_t n = 0;
  const char *start = e->p;
  int neg = e->p < e->end && *e->p == '-';
  if (neg) e->p++;
  while (e->p < e->end && *e->p >= '0' && *e->p <= '9') {
    if (n > n_keys) return 0; /* out of range long before it overflows */
    n = n * 10 + (*e->p++ - '0');
  }
  if (e->p == start + neg || !at_delim(e)) return 0;
  if (neg && n != 0) return 0;
  if (n >= n_keys) return 0;
  *v = (uint32_t)n;
  return 1;
}

/* The third element as SQLite's column_int reads it: 1 with *ordering
   set for true, false, null or a number; 0 for anything else. */
static int take_flag(edge_parse *e, int *ordering) {
  skip_ws(e);
  const char *start = e->p;
  while (e->p < e->end && !at_delim(e)) e->p++;
  size_t len = (size_t)(e->p - start);
  if (len == 0) return 0;
  if ((len == 4 && memcmp(start, "true", 4) == 0)) {
    *ordering = 1;
    return 1;
  }
  if ((len == 5 && memcmp(start, "false", 5) == 0) ||
      (len == 4 && memcmp(start, "null", 4) == 0)) {
    *ordering = 0;
    return 1;
  }
  if (!(*start == '-' || (*start >= '0' && *start <= '9'))) return 0;
  char num[64];
  if (len >= sizeof num) return 0;
  memcpy(num, start, len);
  num[len] = '\0';
  *ordering = fl__store_json_int(num) != 0;
  return 1;
}

/*
 * Parses edges (jsonb's text of an array) against n_keys keys into x:
 * FL__EDGES_DONE with x->pub.edges_state RECORDED (and the edges) or DAMAGED;
 * FL__EDGES_SQL for a form left to the SQL route; FL__EDGES_OOM.
 */
int fl__store_parse_edges(const char *text, size_t len, int64_t n_keys,
                          fl__store_detail *x) {
  edge_parse e = {text, text + len};
  fl_store_run_detail *d = &x->pub;
  size_t cap = 0;
  int result = FL__EDGES_SQL;
  if (!take(&e, '[')) return FL__EDGES_SQL;
  if (take(&e, ']')) {
    result = FL__EDGES_DONE; /* no edges */
  } else {
    for (;;) {
      fl_store_edge edge = {0, 0, 0};
      if (!take(&e, '[') || !take_index(&e, n_keys, &edge.from) ||
          !take(&e, ',') || !take_index(&e, n_keys, &edge.to) ||
          !take(&e, ',')) {
        result = -2; /* not an array of three that starts with two indexes */
        break;
      }
      skip_ws(&e);
      if (e.p < e.end && (*e.p == '"' || *e.p == '[' || *e.p == '{'))
        break; /* FL__EDGES_SQL */
      if (!take_flag(&e, &edge.ordering)) break;
      if (!take(&e, ']')) {
        result = -2; /* more than three */
        break;
      }
      if (GROW(x->edges, cap, d->n_edges)) {
        result = FL__EDGES_OOM;
        break;
      }
      x->edges[d->n_edges++] = edge;
      if (take(&e, ']')) {
        result = FL__EDGES_DONE;
        break;
      }
      if (!take(&e, ',')) break;
    }
  }
  skip_ws(&e);
  if (result == FL__EDGES_DONE && e.p != e.end) result = FL__EDGES_SQL;
  if (result == -2) {
    d->edges_state = FL_STORE_EDGES_DAMAGED;
    result = FL__EDGES_DONE;
  } else if (result == FL__EDGES_DONE) {
    d->edges_state = FL_STORE_EDGES_RECORDED;
  }
  if (result != FL__EDGES_DONE || d->edges_state != FL_STORE_EDGES_RECORDED) {
    free(x->edges);
    x->edges = NULL;
    d->n_edges = 0;
  }
  d->edges = x->edges;
  return result;
}
