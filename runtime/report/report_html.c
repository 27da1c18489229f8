/*
 * report_html.c — the HTML page of one stored run (report_html.h): the
 * summary, the graph, the timeline and the failures, with inline CSS and
 * inline SVG, and no script.
 *
 * Every string that comes from the run (keys, errors, params, paths) goes
 * through add_text, which escapes it. Numbers are written with integer
 * arithmetic, so a C locale that a flow script changed cannot turn a
 * decimal point into a comma inside the SVG.
 */
#define _POSIX_C_SOURCE 200809L
#include "report_html.h"

#include "duration.h"
#include "states.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Beyond these, the page says what it left out instead of growing without
   bound: a 100,000-task run still makes a page a browser can open. */
#define MAX_GRAPH_NODES 400
#define MAX_TIMELINE_ROWS 3000
#define MAX_FAILURES 1000
/* Task runs whose log lines the page shows, at most: each keeps up to
   64 KiB, and a page of a 100,000-task run must stay a page. */
#define MAX_LOG_TASKS 200

/* Geometry, in CSS pixels. */
enum {
  NODE_W = 190, NODE_H = 42, NODE_PITCH_X = 250, NODE_PITCH_Y = 58,
  GRAPH_MARGIN = 12, GRID_COLUMNS = 5,
  LABEL_W = 230, CHART_W = 860, ROW_H = 20, AXIS_H = 26, CHART_PAD = 12
};

/* ---- text ---------------------------------------------------------------- */

/* s escaped for HTML text and attribute values; control characters other
   than tab and line feed, which HTML does not allow, become U+FFFD. At
   most max bytes of s (0: all), cut at a character boundary, with an
   ellipsis when cut. */
static void add_text_max(fl_buf *b, const char *s, size_t max) {
  if (!s) return;
  size_t n = strlen(s);
  int cut = max && n > max;
  if (cut) {
    n = max;
    while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80) n--;
  }
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    switch (c) {
    case '&': fl_buf_adds(b, "&amp;"); break;
    case '<': fl_buf_adds(b, "&lt;"); break;
    case '>': fl_buf_adds(b, "&gt;"); break;
    case '"': fl_buf_adds(b, "&quot;"); break;
    case '\'': fl_buf_adds(b, "&#39;"); break;
    default:
      if ((c < 0x20 && c != '\t' && c != '\n') || c == 0x7F)
        fl_buf_adds(b, "\xEF\xBF\xBD");
      else
        fl_buf_addc(b, (char)c);
    }
  }
  if (cut) fl_buf_adds(b, "\xE2\x80\xA6");
}

static void add_text(fl_buf *b, const char *s) { add_text_max(b, s, 0); }

/* The first line of s, escaped, at most max bytes. */
static void add_first_line(fl_buf *b, const char *s, size_t max) {
  if (!s) return;
  size_t n = strcspn(s, "\n");
  char *line = malloc(n + 1);
  if (!line) {
    b->oom = 1;
    return;
  }
  memcpy(line, s, n);
  line[n] = '\0';
  add_text_max(b, line, max);
  if (s[n] && n <= max) fl_buf_adds(b, " \xE2\x80\xA6");
  free(line);
}

/* x with one decimal. */
static void add_num(fl_buf *b, double x) {
  long long tenths = llround(x * 10.0);
  if (tenths < 0) {
    fl_buf_addc(b, '-');
    tenths = -tenths;
  }
  fl_buf_addf(b, "%lld.%lld", tenths / 10, tenths % 10);
}

/* "2026-11-28 16:10:01.123 +0100", local time; "-" when not recorded. */
static void add_time(fl_buf *b, double t) {
  if (!(t > 0)) {
    fl_buf_addc(b, '-');
    return;
  }
  long long ms = llround(t * 1000.0);
  time_t secs = (time_t)(ms / 1000);
  struct tm tm;
  char day[32], zone[16];
  localtime_r(&secs, &tm);
  strftime(day, sizeof day, "%Y-%m-%d %H:%M:%S", &tm);
  strftime(zone, sizeof zone, "%z", &tm);
  fl_buf_addf(b, "%s.%03lld %s", day, ms % 1000, zone);
}

/* ---- states -------------------------------------------------------------- */

/* The CSS class of a state: "s-Success"; a graph node the run lacks is
   "s-NotRun". */
static void add_state_class(fl_buf *b, int state) {
  fl_buf_adds(b, "s-");
  fl_buf_adds(b, state >= 0 ? fl_store_task_state_name(state) : "NotRun");
}

static const char *state_label(int state) {
  return state >= 0 ? fl_store_task_state_name(state) : "not run";
}

/* An attempt or task run that did not succeed, and whose message belongs
   among the failures. */
static int is_failure(int state) {
  return state == FLOWLUA_TASK_FAILED || state == FLOWLUA_TASK_RETRYING ||
         state == FLOWLUA_TASK_TIMED_OUT ||
         state == FLOWLUA_TASK_TRIGGER_FAILED ||
         state == FLOWLUA_TASK_CANCELLED || state == FL_STORE_TASK_CRASHED;
}

/* Bar and fill colours, one pair per state: strong for bars and badges,
   light for graph nodes. */
static const struct {
  int state;
  const char *strong, *light;
} palette[] = {
    {FLOWLUA_TASK_PENDING, "#9e9e9e", "#f5f5f5"},
    {FLOWLUA_TASK_RUNNING, "#1e88e5", "#bbdefb"},
    {FLOWLUA_TASK_SUCCESS, "#43a047", "#c8e6c9"},
    {FLOWLUA_TASK_FAILED, "#e53935", "#ffcdd2"},
    {FLOWLUA_TASK_RETRYING, "#fb8c00", "#ffe0b2"},
    {FLOWLUA_TASK_TIMED_OUT, "#8e24aa", "#e1bee7"},
    {FLOWLUA_TASK_SKIPPED, "#bdbdbd", "#eeeeee"},
    {FLOWLUA_TASK_TRIGGER_FAILED, "#f4511e", "#ffccbc"},
    {FLOWLUA_TASK_CANCELLED, "#757575", "#e0e0e0"},
    {FLOWLUA_TASK_CACHED, "#039be5", "#b3e5fc"},
    {FL_STORE_TASK_CRASHED, "#d81b60", "#f8bbd0"},
};

static void add_style(fl_buf *b) {
  fl_buf_adds(
      b,
      "<style>\n"
      "body{font:14px/1.45 system-ui,sans-serif;margin:0 auto;max-width:"
      "1200px;padding:16px 24px;color:#212121;background:#fff}\n"
      "h1{font-size:22px;margin:4px 0}h2{font-size:17px;margin:28px 0 8px;"
      "border-bottom:1px solid #e0e0e0;padding-bottom:4px}\n"
      "h3{font-size:14px;margin:0 0 4px}.sub{color:#616161}\n"
      "table.summary{border-collapse:collapse}table.summary th{text-align:"
      "left;vertical-align:top;padding:3px 16px 3px 0;color:#616161;"
      "font-weight:600;white-space:nowrap}table.summary td{padding:3px 0}\n"
      "code,pre{font:12.5px/1.4 ui-monospace,monospace}pre{white-space:"
      "pre-wrap;word-break:break-word;background:#fafafa;border:1px solid "
      "#eee;padding:8px;margin:0}\n"
      ".badge,.chip{display:inline-block;border-radius:10px;padding:0 8px;"
      "color:#fff;font-size:12px;font-weight:600;margin-right:4px}\n"
      ".note{background:#fff8e1;border-left:4px solid #ffb300;padding:6px "
      "10px}\n"
      ".scroll{overflow-x:auto}svg{display:block}svg text{font:12px "
      "system-ui,sans-serif;fill:#212121}\n"
      ".node rect{stroke-width:1.5}.node rect.inner{fill:none}.node "
      "text.state{fill:#424242;font-size:11px}\n"
      ".edge{fill:none;stroke:#757575;stroke-width:1.3}.edge.order{stroke-"
      "dasharray:5 4}#arrow path{fill:#757575}\n"
      ".stripe{fill:#f7f7f7}.tick{stroke:#e0e0e0}.axis text{fill:#757575;"
      "font-size:11px}.bar,.mark{stroke:#fff;stroke-width:.5}.span{opacity:"
      ".5}\n"
      ".failure{margin:10px 0;border-left:4px solid;padding-left:10px}\n"
      ".log{margin:10px 0}\n"
      "footer{margin-top:32px;color:#9e9e9e;font-size:12px}\n");
  for (size_t i = 0; i < sizeof palette / sizeof palette[0]; i++) {
    const char *name = fl_store_task_state_name(palette[i].state);
    fl_buf_addf(b,
                ".badge.s-%s,.chip.s-%s{background:%s}.bar.s-%s,.mark.s-%s,"
                ".span.s-%s{fill:%s}.failure.s-%s{border-color:%s}"
                ".node.s-%s rect{fill:%s;stroke:%s}\n",
                name, name, palette[i].strong, name, name, name,
                palette[i].strong, name, palette[i].strong, name,
                palette[i].light, palette[i].strong);
  }
  fl_buf_adds(b, ".node.s-NotRun rect{fill:#fff;stroke:#9e9e9e}\n"
                 ".badge.s-Scheduled,.badge.s-Running{background:#1e88e5}"
                 ".badge.s-Success{background:#43a047}"
                 ".badge.s-Failed,.badge.s-Crashed{background:#e53935}"
                 ".badge.s-Cancelled{background:#757575}\n"
                 "</style>\n");
}

/* ---- what the sections share --------------------------------------------- */

/* The run seen as the page draws it: task runs in timeline order (each
   map's elements right after it), and each task run's attempts. */
typedef struct view {
  const fl_report *r;
  const fl_store_run_detail *d;
  size_t *order;        /* task indexes in timeline order */
  size_t *att_off;      /* attempts of task i: items[att_off[i]..att_off[i+1]) */
  size_t *map_children; /* how many elements task i has (0: not a map) */
  double t0, t1;        /* the timeline's span, wall clock */
} view;

/* The task run a map element belongs to, or SIZE_MAX. */
static size_t parent_of(const fl_store_run_detail *d, size_t i) {
  const fl_store_task_row *t = &d->tasks[i];
  if (t->map_index <= 0) return SIZE_MAX;
  const char *bracket = strrchr(t->key, '[');
  if (!bracket) return SIZE_MAX;
  size_t len = (size_t)(bracket - t->key);
  char *key = malloc(len + 1);
  if (!key) return SIZE_MAX;
  memcpy(key, t->key, len);
  key[len] = '\0';
  const fl_store_task_row *p = fl_store_detail_find(d, key);
  free(key);
  return p ? (size_t)(p - d->tasks) : SIZE_MAX;
}

static int view_init(view *v, const fl_report *r) {
  const fl_store_run_detail *d = r->run;
  size_t n = d->n_tasks;
  memset(v, 0, sizeof *v);
  v->r = r;
  v->d = d;
  v->order = malloc((n ? n : 1) * sizeof *v->order);
  v->att_off = calloc(n + 1, sizeof *v->att_off);
  v->map_children = calloc(n ? n : 1, sizeof *v->map_children);
  size_t *parent = malloc((n ? n : 1) * sizeof *parent);
  size_t *first_child = calloc(n + 1, sizeof *first_child);
  size_t *children = malloc((n ? n : 1) * sizeof *children);
  int ok = v->order && v->att_off && v->map_children && parent &&
           first_child && children;
  if (ok) {
    /* Elements grouped under their map, in their own order. */
    for (size_t i = 0; i < n; i++) {
      parent[i] = parent_of(d, i);
      if (parent[i] != SIZE_MAX) v->map_children[parent[i]]++;
    }
    for (size_t i = 0; i < n; i++)
      first_child[i + 1] = first_child[i] + v->map_children[i];
    size_t *fill = v->att_off; /* borrowed as a cursor, reset below */
    for (size_t i = 0; i < n; i++) fill[i] = first_child[i];
    for (size_t i = 0; i < n; i++)
      if (parent[i] != SIZE_MAX) children[fill[parent[i]]++] = i;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
      if (parent[i] != SIZE_MAX) continue;
      v->order[k++] = i;
      for (size_t c = first_child[i]; c < first_child[i + 1]; c++)
        v->order[k++] = children[c];
    }
    /* Attempts come grouped by task run, in the detail's order. */
    memset(v->att_off, 0, (n + 1) * sizeof *v->att_off);
    const fl_store_attempt_list *a = r->attempts;
    for (size_t j = 0; j < a->n; j++) v->att_off[a->items[j].task + 1]++;
    for (size_t i = 0; i < n; i++) v->att_off[i + 1] += v->att_off[i];
  }
  free(parent);
  free(first_child);
  free(children);
  if (!ok) return -1;

  /* The span: from the run's start to its end, or to the last thing seen
     (to now while it runs). */
  const fl_store_run_row *run = &d->run;
  double t0 = run->started_at, t1 = run->ended_at;
  double last = t0;
  for (size_t j = 0; j < r->attempts->n; j++) {
    const fl_store_attempt *at = &r->attempts->items[j];
    if (t0 <= 0 || at->started_at < t0) t0 = at->started_at;
    if (at->ended_at > last) last = at->ended_at;
    if (at->started_at > last) last = at->started_at;
  }
  for (size_t i = 0; i < n; i++)
    if (d->tasks[i].ended_at > last) last = d->tasks[i].ended_at;
  if (run->state == FLOWLUA_FLOW_RUNNING && r->now > last) last = r->now;
  if (!(t1 > t0)) t1 = last;
  v->t0 = t0;
  v->t1 = t1 > t0 ? t1 : t0 + 0.001;
  return 0;
}

static void view_free(view *v) {
  free(v->order);
  free(v->att_off);
  free(v->map_children);
}

/* ---- summary ------------------------------------------------------------- */

static void row_open(fl_buf *b, const char *name) {
  fl_buf_addf(b, "<tr><th>%s</th><td>", name);
}

/* The runs a subflow link names, as text (the report is one file: no
   other run's page to link to), the summary showing this many subflows at
   most: a map over a subflow may have called thousands. */
#define SUBFLOWS_SHOWN 100

/* A subflow's run: the run and task run that called it. A run that
   called subflows: each, with the task run that called it and its state. */
static void add_links(fl_buf *b, const fl_store_run_detail *d) {
  const fl_store_run_row *run = &d->run;
  if (run->parent_run_id) {
    row_open(b, "Parent");
    fl_buf_adds(b, "<code>");
    add_text(b, run->parent_run_id);
    fl_buf_adds(b, "</code> (task <code>");
    add_text(b, run->parent_task ? run->parent_task : "?");
    fl_buf_adds(b, "</code>)</td></tr>\n");
  }
  if (d->n_subflows == 0) return;
  row_open(b, "Subflows");
  for (size_t k = 0; k < d->n_subflows && k < SUBFLOWS_SHOWN; k++) {
    const fl_store_subflow *s = &d->subflows[k];
    fl_buf_adds(b, k ? "<br>\n<code>" : "<code>");
    add_text(b, s->task);
    fl_buf_adds(b, "</code> &rarr; <code>");
    add_text(b, s->run_id);
    const char *state = s->state >= 0 ? fl_flow_state_name(s->state) : NULL;
    fl_buf_addf(b, "</code> <span class=\"badge s-%s\">%s</span>",
                state ? state : "Unknown", state ? state : "?");
  }
  if (d->n_subflows > SUBFLOWS_SHOWN)
    fl_buf_addf(b, "<br>\n&hellip; and %zu more",
                d->n_subflows - SUBFLOWS_SHOWN);
  fl_buf_adds(b, "</td></tr>\n");
}

static void add_summary(fl_buf *b, const view *v) {
  const fl_store_run_row *run = &v->d->run;
  const fl_store_attempt_list *a = v->r->attempts;
  fl_buf_adds(b, "<section id=\"summary\"><h2>Summary</h2>"
                 "<table class=\"summary\">\n");
  row_open(b, "Run");
  fl_buf_adds(b, "<code>");
  add_text(b, run->run_id);
  fl_buf_adds(b, "</code></td></tr>\n");
  row_open(b, "State");
  fl_buf_addf(b, "<span class=\"badge s-%s\">%s</span></td></tr>\n",
              run->state >= 0 ? fl_flow_state_name(run->state) : "Unknown",
              run->state >= 0 ? fl_flow_state_name(run->state) : "?");
  row_open(b, "Started");
  add_time(b, run->started_at);
  fl_buf_adds(b, "</td></tr>\n");
  row_open(b, "Ended");
  add_time(b, run->ended_at);
  if (run->ended_at > 0 && run->started_at > 0) {
    fl_buf_adds(b, " (took ");
    fl_duration_add(b, run->ended_at - run->started_at, FL_DURATION_SPACED);
    fl_buf_adds(b, ")");
  }
  fl_buf_adds(b, "</td></tr>\n");
  if (run->scheduled_at > 0) {
    row_open(b, "Scheduled for");
    add_time(b, run->scheduled_at);
    fl_buf_adds(b, "</td></tr>\n");
  }
  if (run->resumed_from) {
    row_open(b, "Resumes");
    fl_buf_adds(b, "<code>");
    add_text(b, run->resumed_from);
    fl_buf_adds(b, "</code></td></tr>\n");
  }
  add_links(b, v->d);
  row_open(b, "Script");
  fl_buf_adds(b, "<code>");
  add_text(b, run->script ? run->script : "(not recorded)");
  fl_buf_adds(b, "</code></td></tr>\n");
  row_open(b, "Params");
  fl_buf_adds(b, "<code>");
  add_text(b, run->params_json ? run->params_json : "(none)");
  fl_buf_adds(b, "</code></td></tr>\n");
  if (run->owner_pid) {
    row_open(b, "Process");
    fl_buf_addf(b, "pid %lld on ", (long long)run->owner_pid);
    add_text(b, run->owner_host ? run->owner_host : "?");
    fl_buf_adds(b, "</td></tr>\n");
  }
  row_open(b, "Task runs");
  fl_buf_addf(b, "%zu: ", run->n_tasks); /* as runs and show count them */
  for (int st = 0; st < FL_STORE_TASK_STATES; st++)
    if (run->by_state[st])
      fl_buf_addf(b, "<span class=\"chip s-%s\">%zu %s</span>",
                  fl_store_task_state_name(st), run->by_state[st],
                  fl_store_task_state_name(st));
  fl_buf_adds(b, "</td></tr>\n");
  size_t failed = 0;
  for (size_t j = 0; j < a->n; j++) failed += is_failure(a->items[j].state);
  row_open(b, "Attempts");
  fl_buf_addf(b, "%zu, of which %zu failed</td></tr>\n", a->n, failed);
  if (run->error) {
    row_open(b, "Error");
    fl_buf_adds(b, "<pre>");
    add_text(b, run->error);
    fl_buf_adds(b, "</pre></td></tr>\n");
  }
  fl_buf_adds(b, "</table></section>\n");
}

/* ---- graph --------------------------------------------------------------- */

static void add_node(fl_buf *b, const view *v, size_t i, double x, double y) {
  const fl_store_run_detail *d = v->d;
  const char *key = d->graph_keys[i];
  const fl_store_task_row *t = fl_store_detail_find(d, key);
  int state = t ? t->state : -1;
  size_t elements = t ? v->map_children[t - d->tasks] : 0;
  fl_buf_adds(b, "<g class=\"node ");
  add_state_class(b, state);
  fl_buf_adds(b, "\" data-key=\"");
  add_text(b, key);
  fl_buf_adds(b, "\"><title>");
  add_text(b, key);
  fl_buf_addf(b, ": %s", state_label(state));
  if (elements) fl_buf_addf(b, ", map of %zu", elements);
  if (t && t->attempts > 1) fl_buf_addf(b, ", %d attempts", t->attempts);
  fl_buf_adds(b, "</title><rect x=\"");
  add_num(b, x);
  fl_buf_adds(b, "\" y=\"");
  add_num(b, y);
  fl_buf_addf(b, "\" width=\"%d\" height=\"%d\" rx=\"6\"/>", NODE_W, NODE_H);
  if (elements) { /* a map: a double border, as in `flowlua graph` */
    fl_buf_adds(b, "<rect class=\"inner\" x=\"");
    add_num(b, x + 3);
    fl_buf_adds(b, "\" y=\"");
    add_num(b, y + 3);
    fl_buf_addf(b, "\" width=\"%d\" height=\"%d\" rx=\"4\"/>", NODE_W - 6,
                NODE_H - 6);
  }
  fl_buf_adds(b, "<text x=\"");
  add_num(b, x + 10);
  fl_buf_adds(b, "\" y=\"");
  add_num(b, y + 17);
  fl_buf_adds(b, "\">");
  add_text_max(b, key, 26);
  fl_buf_adds(b, "</text><text class=\"state\" x=\"");
  add_num(b, x + 10);
  fl_buf_adds(b, "\" y=\"");
  add_num(b, y + 33);
  fl_buf_addf(b, "\">%s", state_label(state));
  if (elements) fl_buf_addf(b, " \xC2\xB7 map of %zu", elements);
  if (t && t->attempts > 1) fl_buf_addf(b, " \xC2\xB7 %d attempts", t->attempts);
  fl_buf_adds(b, "</text></g>\n");
}

static void add_graph_svg(fl_buf *b, const view *v, const fl_report_edge *edges,
                          size_t n_edges, const uint32_t *layer,
                          const uint32_t *row, long layers) {
  size_t n = v->d->n_graph_keys;
  uint32_t rows = 0;
  for (size_t i = 0; i < n; i++)
    if (row[i] + 1 > rows) rows = row[i] + 1;
  long width = 2 * GRAPH_MARGIN + (layers - 1) * NODE_PITCH_X + NODE_W;
  long height = 2 * GRAPH_MARGIN + (long)(rows - 1) * NODE_PITCH_Y + NODE_H;
  fl_buf_addf(b, "<div class=\"scroll\"><svg xmlns=\"http://www.w3.org/2000/svg\""
                 " role=\"img\" aria-label=\"task graph\" width=\"%ld\" "
                 "height=\"%ld\" viewBox=\"0 0 %ld %ld\">\n",
              width, height, width, height);
  fl_buf_adds(b, "<defs><marker id=\"arrow\" viewBox=\"0 0 10 10\" refX=\"10\""
                 " refY=\"5\" markerWidth=\"7\" markerHeight=\"7\" "
                 "orient=\"auto\"><path d=\"M0 0L10 5L0 10z\"/></marker></defs>\n");
  for (size_t k = 0; k < n_edges; k++) {
    const fl_report_edge *e = &edges[k];
    double x1 = GRAPH_MARGIN + (double)layer[e->from] * NODE_PITCH_X + NODE_W;
    double y1 = GRAPH_MARGIN + (double)row[e->from] * NODE_PITCH_Y + NODE_H / 2.0;
    double x2 = GRAPH_MARGIN + (double)layer[e->to] * NODE_PITCH_X;
    double y2 = GRAPH_MARGIN + (double)row[e->to] * NODE_PITCH_Y + NODE_H / 2.0;
    double mid = (x2 - x1) / 2;
    fl_buf_addf(b, "<path class=\"edge%s\" marker-end=\"url(#arrow)\" d=\"M",
                e->ordering ? " order" : "");
    add_num(b, x1);
    fl_buf_addc(b, ' ');
    add_num(b, y1);
    fl_buf_adds(b, "C");
    add_num(b, x1 + mid);
    fl_buf_addc(b, ' ');
    add_num(b, y1);
    fl_buf_addc(b, ' ');
    add_num(b, x2 - mid);
    fl_buf_addc(b, ' ');
    add_num(b, y2);
    fl_buf_addc(b, ' ');
    add_num(b, x2);
    fl_buf_addc(b, ' ');
    add_num(b, y2);
    fl_buf_adds(b, "\"/>\n");
  }
  for (size_t i = 0; i < n; i++)
    add_node(b, v, i, GRAPH_MARGIN + (double)layer[i] * NODE_PITCH_X,
             GRAPH_MARGIN + (double)row[i] * NODE_PITCH_Y);
  fl_buf_adds(b, "</svg></div>\n");
}

static void add_graph(fl_buf *b, const view *v) {
  const fl_report *r = v->r;
  size_t n = v->d->n_graph_keys;
  fl_buf_adds(b, "<section id=\"graph\"><h2>Graph</h2>\n");
  if (n == 0) {
    fl_buf_adds(b, "<p>The run recorded no tasks in its graph.</p></section>\n");
    return;
  }
  if (n > MAX_GRAPH_NODES) {
    fl_buf_addf(b, "<p class=\"note\">The graph has %zu tasks, too many to "
                   "draw here (at most %d); <code>flowlua graph</code> writes "
                   "it for Graphviz.</p></section>\n",
                n, MAX_GRAPH_NODES);
    return;
  }
  const fl_report_edge *edges = r->edges;
  size_t n_edges = r->edges ? r->n_edges : 0;
  uint32_t *layer = malloc(n * sizeof *layer), *row = malloc(n * sizeof *row);
  long layers = -1;
  if (layer && row) {
    layers = fl_report_layout(n, edges, n_edges, GRID_COLUMNS, layer, row);
    if (layers < 0 && edges) { /* a cycle cannot be stored: draw no edges */
      edges = NULL;
      n_edges = 0;
      layers = fl_report_layout(n, NULL, 0, GRID_COLUMNS, layer, row);
    }
  }
  if (layers < 0) {
    b->oom = 1;
  } else {
    if (!edges) {
      fl_buf_adds(b, "<p class=\"note\">The tasks are shown without their "
                     "edges: ");
      add_text(b, r->graph_note ? r->graph_note
                                : "the graph could not be laid out");
      fl_buf_adds(b, ".</p>\n");
    } else {
      fl_buf_adds(b, "<p class=\"sub\">Solid arrows pass data, dashed ones "
                     "only order (<code>:after</code>); a double border is a "
                     "map. Each task is coloured by its final state.</p>\n");
    }
    add_graph_svg(b, v, edges, n_edges, layer, row, layers);
  }
  free(layer);
  free(row);
  fl_buf_adds(b, "</section>\n");
}

/* ---- timeline ------------------------------------------------------------ */

static double chart_x(const view *v, double t) {
  return LABEL_W + (t - v->t0) / (v->t1 - v->t0) * CHART_W;
}

/* A tick label: the time since the run started, in the unit of step. */
static void add_tick_label(fl_buf *b, double secs, double step) {
  if (step < 0.000999)
    fl_buf_addf(b, "%lld \xC2\xB5s", llround(secs * 1e6));
  else if (step < 0.999)
    fl_buf_addf(b, "%lld ms", llround(secs * 1000.0));
  else if (step < 59.9)
    fl_buf_addf(b, "%lld s", llround(secs));
  else if (step < 3599)
    fl_buf_addf(b, "%lld min", llround(secs / 60.0));
  else
    fl_buf_addf(b, "%lld h", llround(secs / 3600.0));
}

/* Vertical lines at round times since the start: 1, 2 or 5 times a power
   of ten, about eight of them. */
static void add_axis(fl_buf *b, const view *v, long height) {
  double span = v->t1 - v->t0;
  double raw = span / 8, mag = pow(10, floor(log10(raw))), step = mag;
  if (step < raw) step = 2 * mag;
  if (step < raw) step = 5 * mag;
  if (step < raw) step = 10 * mag;
  /* Whole minutes and hours read better than 50 or 200 seconds. */
  if (step >= 30 && step < 60) step = 60;
  else if (step > 60 && step < 3600) step = 60 * ceil(step / 60);
  fl_buf_adds(b, "<g class=\"axis\">\n");
  for (long k = 0; k * step <= span * 1.0001 && k <= 100; k++) {
    double x = chart_x(v, v->t0 + (double)k * step);
    fl_buf_adds(b, "<line class=\"tick\" x1=\"");
    add_num(b, x);
    fl_buf_adds(b, "\" x2=\"");
    add_num(b, x);
    fl_buf_addf(b, "\" y1=\"%d\" y2=\"%ld\"/><text x=\"", AXIS_H - 6, height);
    add_num(b, x + 3);
    fl_buf_addf(b, "\" y=\"%d\">", AXIS_H - 10);
    add_tick_label(b, (double)k * step, step);
    fl_buf_adds(b, "</text>\n");
  }
  fl_buf_adds(b, "</g>\n");
}

static void add_bar_geometry(fl_buf *b, const view *v, double from, double to,
                             double y, double h) {
  double x = chart_x(v, from), w = chart_x(v, to) - x;
  if (w < 2) w = 2;
  fl_buf_adds(b, " x=\"");
  add_num(b, x);
  fl_buf_adds(b, "\" y=\"");
  add_num(b, y);
  fl_buf_adds(b, "\" width=\"");
  add_num(b, w);
  fl_buf_adds(b, "\" height=\"");
  add_num(b, h);
  fl_buf_adds(b, "\"");
}

/* ", worker PID" (or HOST:PID from another host) for an attempt that ran
   in a worker process; nothing for one that ran in the driver. */
static void add_worker(fl_buf *b, const char *prefix, const fl_store_attempt *a,
                       const char *run_host) {
  if (!a || a->worker_pid <= 0) return;
  fl_buf w = FL_BUF_INIT;
  fl_store_add_worker(&w, a->worker_host, a->worker_pid, run_host, 0);
  fl_buf_adds(b, prefix);
  add_text(b, fl_buf_str(&w));
  fl_buf_free(&w);
}

/* One bar per attempt, with data-attempt (tests count these). */
static void add_attempt_bar(fl_buf *b, const view *v, const fl_store_task_row *t,
                            const fl_store_attempt *a, double y) {
  double end = a->ended_at > 0 ? a->ended_at : v->t1;
  const char *state = a->state >= 0 ? fl_store_task_state_name(a->state) : "?";
  fl_buf_adds(b, "<rect class=\"bar ");
  add_state_class(b, a->state);
  fl_buf_addf(b, "\" data-attempt=\"%d\" data-task=\"", a->attempt);
  add_text(b, t->key);
  fl_buf_addf(b, "\" data-state=\"%s\" rx=\"2\"", state);
  add_bar_geometry(b, v, a->started_at, end, y + 3, ROW_H - 6);
  fl_buf_adds(b, "><title>");
  add_text(b, t->key);
  fl_buf_addf(b, ", attempt %d of %d: %s", a->attempt, t->attempts,
              a->state == FLOWLUA_TASK_RETRYING ? "failed, retried" : state);
  fl_buf_adds(b, a->ended_at > 0 ? " after " : " for ");
  fl_duration_add(b, end - a->started_at, FL_DURATION_SPACED);
  add_worker(b, ", worker ", a, v->d->run.owner_host);
  if (a->error && is_failure(a->state)) {
    fl_buf_adds(b, "\n");
    add_first_line(b, a->error, 300);
  }
  fl_buf_adds(b, "</title></rect>\n");
}

static void add_timeline_row(fl_buf *b, const view *v, size_t k, size_t i) {
  const fl_store_task_row *t = &v->d->tasks[i];
  const fl_store_attempt_list *a = v->r->attempts;
  double y = AXIS_H + (double)k * ROW_H;
  if (k % 2 == 0) {
    fl_buf_adds(b, "<rect class=\"stripe\" x=\"0\" y=\"");
    add_num(b, y);
    fl_buf_addf(b, "\" width=\"%d\" height=\"%d\"/>", LABEL_W + CHART_W + CHART_PAD,
                ROW_H);
  }
  fl_buf_addf(b, "<text x=\"%d\" y=\"", t->map_index > 0 ? 22 : 6);
  add_num(b, y + 14);
  fl_buf_adds(b, "\"><title>");
  add_text(b, t->key);
  fl_buf_addf(b, ": %s</title>", state_label(t->state));
  add_text_max(b, t->key, t->map_index > 0 ? 30 : 32);
  fl_buf_adds(b, "</text>\n");
  for (size_t j = v->att_off[i]; j < v->att_off[i + 1]; j++)
    add_attempt_bar(b, v, t, &a->items[j], y);
  if (v->att_off[i] < v->att_off[i + 1]) return;
  if (v->map_children[i] && t->started_at > 0) {
    /* A map's own row: the span of its elements, not an attempt. */
    fl_buf_adds(b, "<rect class=\"span ");
    add_state_class(b, t->state);
    fl_buf_adds(b, "\"");
    add_bar_geometry(b, v, t->started_at, t->ended_at > 0 ? t->ended_at : v->t1,
                     y + 7, ROW_H - 14);
    fl_buf_addf(b, "><title>");
    add_text(b, t->key);
    fl_buf_addf(b, ": map of %zu, %s</title></rect>\n", v->map_children[i],
                state_label(t->state));
  } else if (t->ended_at > 0) {
    /* Ended without an attempt: Skipped, Cached, TriggerFailed. */
    fl_buf_adds(b, "<circle class=\"mark ");
    add_state_class(b, t->state);
    fl_buf_adds(b, "\" cx=\"");
    add_num(b, chart_x(v, t->ended_at));
    fl_buf_adds(b, "\" cy=\"");
    add_num(b, y + ROW_H / 2.0);
    fl_buf_adds(b, "\" r=\"4\"><title>");
    add_text(b, t->key);
    fl_buf_addf(b, ": %s, no attempt ran</title></circle>\n",
                state_label(t->state));
  }
}

static void add_legend(fl_buf *b, const view *v) {
  int seen[FL_STORE_TASK_STATES + 1] = {0};
  const fl_store_attempt_list *a = v->r->attempts;
  for (size_t j = 0; j < a->n; j++)
    if (a->items[j].state >= 0 && a->items[j].state < FL_STORE_TASK_STATES)
      seen[a->items[j].state] = 1;
  for (size_t i = 0; i < v->d->n_tasks; i++)
    if (v->d->tasks[i].state >= 0 && v->d->tasks[i].state < FL_STORE_TASK_STATES)
      seen[v->d->tasks[i].state] = 1;
  fl_buf_adds(b, "<p class=\"sub\">");
  for (int st = 0; st < FL_STORE_TASK_STATES; st++) {
    if (!seen[st]) continue;
    fl_buf_addf(b, "<span class=\"chip s-%s\">%s</span>",
                fl_store_task_state_name(st),
                st == FLOWLUA_TASK_RETRYING ? "Retrying: failed, retried"
                                            : fl_store_task_state_name(st));
  }
  fl_buf_adds(b, " One bar per attempt; a faint bar is a map's span, a dot "
                 "a task run that ended without an attempt.</p>\n");
}

static void add_timeline(fl_buf *b, const view *v) {
  const fl_store_run_detail *d = v->d;
  size_t rows = d->n_tasks < MAX_TIMELINE_ROWS ? d->n_tasks : MAX_TIMELINE_ROWS;
  fl_buf_adds(b, "<section id=\"timeline\"><h2>Timeline</h2>\n");
  if (rows == 0) {
    fl_buf_adds(b, "<p>No task ran.</p></section>\n");
    return;
  }
  fl_buf_addf(b, "<p>%zu attempt%s of %zu task run%s over ", v->r->attempts->n,
              v->r->attempts->n == 1 ? "" : "s", d->n_tasks,
              d->n_tasks == 1 ? "" : "s");
  fl_duration_add(b, v->t1 - v->t0, FL_DURATION_SPACED);
  fl_buf_adds(b, ".</p>\n");
  if (rows < d->n_tasks)
    fl_buf_addf(b, "<p class=\"note\">Only the first %zu of %zu task runs are "
                   "drawn.</p>\n",
                rows, d->n_tasks);
  add_legend(b, v);
  long width = LABEL_W + CHART_W + CHART_PAD;
  long height = AXIS_H + (long)rows * ROW_H + 4;
  fl_buf_addf(b, "<div class=\"scroll\"><svg xmlns=\"http://www.w3.org/2000/svg\""
                 " role=\"img\" aria-label=\"timeline of attempts\" width=\"%ld\""
                 " height=\"%ld\" viewBox=\"0 0 %ld %ld\">\n",
              width, height, width, height);
  add_axis(b, v, height);
  for (size_t k = 0; k < rows; k++) add_timeline_row(b, v, k, v->order[k]);
  fl_buf_adds(b, "</svg></div></section>\n");
}

/* ---- failures ------------------------------------------------------------ */

static void add_failure(fl_buf *b, const fl_store_task_row *t, int state,
                        const fl_store_attempt *a, const char *run_host) {
  fl_buf_adds(b, "<article class=\"failure ");
  add_state_class(b, state);
  fl_buf_adds(b, "\" data-task=\"");
  add_text(b, t->key);
  if (a) fl_buf_addf(b, "\" data-failed-attempt=\"%d", a->attempt);
  fl_buf_adds(b, "\"><h3><code>");
  add_text(b, t->key);
  fl_buf_adds(b, "</code> <span class=\"sub\">");
  if (a) {
    fl_buf_addf(b, "attempt %d of %d \xC2\xB7 %s \xC2\xB7 at ", a->attempt,
                t->attempts,
                state == FLOWLUA_TASK_RETRYING ? "failed, retried"
                                               : state_label(state));
    add_time(b, a->ended_at);
    fl_buf_adds(b, " after ");
    fl_duration_add(b, a->ended_at - a->started_at, FL_DURATION_SPACED);
    add_worker(b, " \xC2\xB7 worker ", a, run_host);
  } else {
    fl_buf_addf(b, "%s \xC2\xB7 at ", state_label(state));
    add_time(b, t->ended_at);
  }
  fl_buf_adds(b, "</span></h3><pre>");
  const char *error = a ? a->error : t->error;
  add_text(b, error ? error : "(no message was recorded)");
  fl_buf_adds(b, "</pre></article>\n");
}

static void add_failures(fl_buf *b, const view *v) {
  const fl_store_run_detail *d = v->d;
  const fl_store_attempt_list *a = v->r->attempts;
  size_t shown = 0, total = 0;
  fl_buf_adds(b, "<section id=\"failures\"><h2>Failures</h2>\n");
  for (size_t k = 0; k < d->n_tasks; k++) {
    size_t i = v->order[k];
    const fl_store_task_row *t = &d->tasks[i];
    int any_attempt = v->att_off[i] < v->att_off[i + 1];
    for (size_t j = v->att_off[i]; j < v->att_off[i + 1]; j++) {
      if (!is_failure(a->items[j].state)) continue;
      if (shown < MAX_FAILURES) {
        add_failure(b, t, a->items[j].state, &a->items[j],
                    d->run.owner_host);
        shown++;
      }
      total++;
    }
    /* A task run that failed without an attempt of its own: a map whose
       elements failed, a trigger rule not met. */
    if (!any_attempt && is_failure(t->state)) {
      if (shown < MAX_FAILURES) {
        add_failure(b, t, t->state, NULL, d->run.owner_host);
        shown++;
      }
      total++;
    }
  }
  if (total == 0)
    fl_buf_adds(b, "<p>None: no attempt failed.</p>\n");
  else if (shown < total)
    fl_buf_addf(b, "<p class=\"note\">%zu more failures are not shown "
                   "(<code>flowlua show</code> lists every task run).</p>\n",
                total - shown);
  fl_buf_adds(b, "</section>\n");
}

/* ---- log lines --------------------------------------------------------------- */

/* A task run's kept lines, escaped, with what its bounds dropped. */
static void add_task_log(fl_buf *b, const fl_store_task_row *t,
                         const fl_store_log_line *lines, size_t n,
                         const fl_store_log_drop *drop) {
  fl_buf_adds(b, "<article class=\"log\" data-task=\"");
  add_text(b, t->key);
  fl_buf_addf(b, "\" data-lines=\"%zu\"><h3><code>", n);
  add_text(b, t->key);
  fl_buf_addf(b, "</code> <span class=\"sub\">%zu line%s", n,
              n == 1 ? "" : "s");
  if (drop)
    fl_buf_addf(b, " \xC2\xB7 %lld earlier line%s (%lld bytes) dropped",
                (long long)drop->lines, drop->lines == 1 ? "" : "s",
                (long long)drop->bytes);
  fl_buf_adds(b, "</span></h3><pre>");
  for (size_t i = 0; i < n; i++) {
    add_time(b, lines[i].at);
    fl_buf_addf(b, " %-5s #%d  ", fl_store_log_level_name(lines[i].level),
                lines[i].attempt);
    add_text(b, lines[i].line);
    fl_buf_addc(b, '\n');
  }
  fl_buf_adds(b, "</pre></article>\n");
}

static void add_logs(fl_buf *b, const view *v) {
  const fl_store_log_list *logs = v->r->logs;
  if (!logs) return;
  const fl_store_run_detail *d = v->d;
  size_t shown = 0, total = 0;
  fl_buf_adds(b, "<section id=\"logs\"><h2>Log</h2>\n");
  for (size_t k = 0; k < d->n_tasks; k++) {
    size_t i = v->order[k], n = 0;
    const fl_store_log_line *lines = fl_store_log_lines_of(logs, i, &n);
    const fl_store_log_drop *drop = fl_store_log_drop_of(logs, i);
    if (!n && !drop) continue;
    if (shown < MAX_LOG_TASKS) {
      add_task_log(b, &d->tasks[i], lines, n, drop);
      shown++;
    }
    total++;
  }
  if (total == 0)
    fl_buf_adds(b, "<p>No task logged a line.</p>\n");
  else if (shown < total)
    fl_buf_addf(b, "<p class=\"note\">The lines of %zu more task runs are "
                   "not shown (<code>flowlua show</code> lists them).</p>\n",
                total - shown);
  fl_buf_adds(b, "</section>\n");
}

/* ---- the page ------------------------------------------------------------ */

void fl_report_html(fl_buf *b, const fl_report *r) {
  view v;
  if (view_init(&v, r) != 0) {
    view_free(&v);
    b->oom = 1;
    return;
  }
  const fl_store_run_row *run = &r->run->run;
  const char *state =
      run->state >= 0 ? fl_flow_state_name(run->state) : "?";
  /* The policy makes "self-contained" a property the browser enforces:
     nothing is fetched, no script runs. */
  fl_buf_adds(b, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
                 "<meta http-equiv=\"Content-Security-Policy\" content=\""
                 "default-src 'none'; style-src 'unsafe-inline'; img-src data:\">\n"
                 "<meta name=\"viewport\" content=\"width=device-width\">\n"
                 "<link rel=\"icon\" href=\"data:,\">\n<title>");
  char short_id[9];
  snprintf(short_id, sizeof short_id, "%s", run->run_id ? run->run_id : "?");
  add_text(b, run->flow);
  fl_buf_adds(b, ": run ");
  add_text(b, short_id);
  fl_buf_addf(b, ", %s</title>\n", state);
  add_style(b);
  fl_buf_adds(b, "</head><body>\n<header><h1>Flow <q>");
  add_text(b, run->flow);
  fl_buf_addf(b, "</q> <span class=\"badge s-%s\">%s</span></h1>"
                 "<p class=\"sub\">Run <code>",
              run->state >= 0 ? state : "Unknown", state);
  add_text(b, run->run_id);
  fl_buf_adds(b, "</code></p></header>\n");
  add_summary(b, &v);
  add_graph(b, &v);
  add_timeline(b, &v);
  add_failures(b, &v);
  add_logs(b, &v);
  fl_buf_addf(b, "<footer>Written by flowlua %s from the run history.</footer>\n"
                 "</body></html>\n",
              FLOWLUA_VERSION);
  view_free(&v);
}
