/*
 * store_print.c — what `flowlua runs` and `flowlua show` print, as text
 * tables for people and JSON for programs, from what store.c loaded.
 *
 * It formats only: no SQLite, no I/O (the caller writes the buffer out).
 * Text times are local, like the log's; JSON times are UTC ISO 8601 with
 * milliseconds. Numbers never depend on the C locale.
 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "duration.h"
#include "json.h"
#include "store.h"
#include "states.h"
#include "termtext.h"

/* ---- cells ------------------------------------------------------------------ */

static void add_local_time(fl_buf *out, double t) {
  if (!(t > 0)) {
    fl_buf_addc(out, '-');
    return;
  }
  time_t secs = (time_t)floor(t);
  struct tm tm;
  char stamp[32];
  localtime_r(&secs, &tm);
  strftime(stamp, sizeof stamp, "%Y-%m-%d %H:%M:%S", &tm);
  fl_buf_adds(out, stamp);
}

/* "2026-11-28T16:10:01.123Z" in quotes, or null. */
static void add_json_time(fl_buf *out, double t) {
  if (!(t > 0)) {
    fl_buf_adds(out, "null");
    return;
  }
  long long ms_total = llround(t * 1000.0);
  time_t secs = (time_t)(ms_total / 1000);
  struct tm tm;
  char stamp[32];
  gmtime_r(&secs, &tm);
  strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
  fl_buf_addf(out, "\"%s.%03dZ\"", stamp, (int)(ms_total % 1000));
}

void fl_store_add_json_time(fl_buf *out, double t) { add_json_time(out, t); }

/* Seconds as a JSON number rounded to the millisecond, or null. */
static void add_json_seconds(fl_buf *out, double d) {
  if (!(d >= 0) || isinf(d)) {
    fl_buf_adds(out, "null");
    return;
  }
  char num[FL_JSON_NUMBER_MAX];
  fl_json_format_double(round(d * 1000.0) / 1000.0, num);
  fl_buf_adds(out, num);
}

static void add_json_str(fl_buf *out, const char *s) {
  if (s)
    fl_buf_add_json_string(out, s);
  else
    fl_buf_adds(out, "null");
}

/* The duration between two recorded times, or -1 when one is missing. */
static double span(double from, double to) {
  return from > 0 && to > 0 && to >= from ? to - from : -1;
}

/* "98 Success, 2 Failed"; "-" when there are none. */
static void add_counts(fl_buf *out, const fl_store_run_row *r) {
  int any = 0;
  for (int i = 0; i < FL_STORE_TASK_STATES; i++) {
    if (!r->by_state[i]) continue;
    fl_buf_addf(out, "%s%zu %s", any ? ", " : "", r->by_state[i],
                fl_store_task_state_name(i));
    any = 1;
  }
  if (!any) fl_buf_addc(out, '-');
}

static void add_json_counts(fl_buf *out, const fl_store_run_row *r) {
  fl_buf_addc(out, '{');
  int any = 0;
  for (int i = 0; i < FL_STORE_TASK_STATES; i++) {
    if (!r->by_state[i]) continue;
    fl_buf_addf(out, "%s\"%s\":%zu", any ? "," : "",
                fl_store_task_state_name(i), r->by_state[i]);
    any = 1;
  }
  fl_buf_addc(out, '}');
}

static const char *flow_state(int state) {
  return state >= 0 ? fl_flow_state_name(state) : "?";
}

/* ---- text tables ------------------------------------------------------------- */

/* Cells collected row by row, then printed with every column as wide as its
   widest cell. Cells live in one buffer, NUL-separated. */
typedef struct table {
  fl_buf text;
  size_t *cells; /* offsets into text */
  size_t n, cap;
  int cols;
  int oom;
  /* Text printed under a row (its log lines), by row (the header is row
     0); NULL when no row has any. */
  fl_buf *after;
  size_t n_after;
} table;

/* Starts a cell: what is appended to t->text until the next call is in it. */
static void cell(table *t) {
  if (t->n > 0) fl_buf_addc(&t->text, '\0');
  if (t->n == t->cap) {
    size_t cap = t->cap ? t->cap * 2 : 64;
    size_t *c = realloc(t->cells, cap * sizeof *c);
    if (!c) {
      t->oom = 1;
      return;
    }
    t->cells = c;
    t->cap = cap;
  }
  t->cells[t->n++] = t->text.len;
}

/* The text forms are for people, on a terminal more often than not: the
   control characters of stored text (an error quoting a server's reply, a
   param) are shown escaped (termtext.h), never sent raw. --json keeps
   every byte, escaped by the JSON encoder. */
static void cell_str(table *t, const char *s) {
  cell(t);
  if (s) fl_term_escape(&t->text, s, strlen(s));
}

/* Only the first line of a multi-line text (an error with its traceback). */
static void cell_first_line(table *t, const char *s) {
  cell(t);
  if (s) fl_term_escape(&t->text, s, strcspn(s, "\n"));
}

/* Width on a terminal: UTF-8 continuation bytes take no column. */
static size_t text_width(const char *s) {
  size_t w = 0;
  for (; *s; s++) w += ((unsigned char)*s & 0xc0) != 0x80;
  return w;
}

/* Prints the table; columns whose bit is set in right_align are aligned
   right (numbers). The last column is not padded. */
static void table_print(fl_buf *out, table *t, unsigned right_align) {
  fl_buf_addc(&t->text, '\0');
  if (t->oom || t->text.oom) {
    out->oom = 1;
    return;
  }
  size_t width[16] = {0};
  int cols = t->cols < 16 ? t->cols : 16;
  for (size_t i = 0; i < t->n; i++) {
    size_t w = text_width(t->text.data + t->cells[i]);
    if (w > width[i % (size_t)cols]) width[i % (size_t)cols] = w;
  }
  for (size_t i = 0; i < t->n; i++) {
    int c = (int)(i % (size_t)cols);
    const char *s = t->text.data + t->cells[i];
    size_t pad = width[c] - text_width(s);
    int last = c == cols - 1;
    if (right_align & (1u << c))
      fl_buf_addf(out, "%*s%s", (int)pad, "", s);
    else if (last)
      fl_buf_adds(out, s);
    else
      fl_buf_addf(out, "%s%*s", s, (int)pad, "");
    if (last) {
      /* Trailing spaces of a short last cell are not printed, but those of
         padding before an empty last cell would be: trim them. */
      while (out->len && out->data[out->len - 1] == ' ') out->len--;
      fl_buf_addc(out, '\n');
      size_t row = i / (size_t)cols;
      if (row < t->n_after && t->after[row].len)
        fl_buf_add(out, t->after[row].data, t->after[row].len);
    } else {
      fl_buf_adds(out, "  ");
    }
  }
  free(t->cells);
  fl_buf_free(&t->text);
  for (size_t i = 0; i < t->n_after; i++) fl_buf_free(&t->after[i]);
  free(t->after);
}

/* ---- runs --------------------------------------------------------------------- */

/* A subflow's link, "parent_run_id" and "parent_task", only when the run
   is one: what every other run prints stays as it was. */
static void add_json_parent(fl_buf *out, const fl_store_run_row *r) {
  if (!r->parent_run_id) return;
  fl_buf_adds(out, ",\"parent_run_id\":");
  add_json_str(out, r->parent_run_id);
  fl_buf_adds(out, ",\"parent_task\":");
  add_json_str(out, r->parent_task);
}

/* The first eight characters of a run id, as `runs` shows ids: unique in
   any history a person reads, and `show` takes a prefix. */
static void add_short_id(fl_buf *out, const char *id) {
  fl_term_escape(out, id, strnlen(id, 8));
}

static void print_runs_json(fl_buf *out, const fl_store_run_list *l) {
  fl_buf_addc(out, '[');
  for (size_t i = 0; i < l->n; i++) {
    const fl_store_run_row *r = &l->rows[i];
    fl_buf_adds(out, i ? ",\n {" : "{");
    fl_buf_adds(out, "\"id\":");
    add_json_str(out, r->run_id);
    fl_buf_adds(out, ",\"flow\":");
    add_json_str(out, r->flow);
    fl_buf_adds(out, ",\"state\":");
    add_json_str(out, flow_state(r->state));
    fl_buf_adds(out, ",\"scheduled_at\":");
    add_json_time(out, r->scheduled_at);
    fl_buf_adds(out, ",\"started_at\":");
    add_json_time(out, r->started_at);
    fl_buf_adds(out, ",\"ended_at\":");
    add_json_time(out, r->ended_at);
    fl_buf_adds(out, ",\"duration\":");
    add_json_seconds(out, span(r->started_at, r->ended_at));
    fl_buf_addf(out, ",\"task_count\":%zu,\"tasks\":", r->n_tasks);
    add_json_counts(out, r);
    fl_buf_adds(out, ",\"error\":");
    add_json_str(out, r->error);
    fl_buf_adds(out, ",\"resumed_from\":");
    add_json_str(out, r->resumed_from);
    add_json_parent(out, r);
    fl_buf_addc(out, '}');
  }
  fl_buf_adds(out, "]\n");
}

void fl_store_print_runs(fl_buf *out, const fl_store_run_list *l, int json) {
  if (json) {
    print_runs_json(out, l);
    return;
  }
  table t = {.text = FL_BUF_INIT, .cols = 6};
  static const char *const head[] = {"ID", "FLOW", "STATE", "STARTED",
                                     "DURATION", "TASKS"};
  for (int c = 0; c < 6; c++) cell_str(&t, head[c]);
  for (size_t i = 0; i < l->n; i++) {
    const fl_store_run_row *r = &l->rows[i];
    /* Eight characters of a UUID are unique in any history a person reads,
       and `show` takes a prefix. */
    cell(&t);
    fl_buf_add(&t.text, r->run_id, strnlen(r->run_id, 8));
    cell_str(&t, r->flow);
    if (r->parent_run_id) { /* a subflow's run, with the run that called it */
      fl_buf_adds(&t.text, " (subflow of ");
      add_short_id(&t.text, r->parent_run_id);
      fl_buf_addc(&t.text, ')');
    }
    cell_str(&t, flow_state(r->state));
    cell(&t);
    add_local_time(&t.text, r->started_at);
    cell(&t);
    if (r->state == FLOWLUA_FLOW_RUNNING)
      fl_buf_adds(&t.text, "running");
    else
      fl_duration_add(&t.text, span(r->started_at, r->ended_at), FL_DURATION_COMPACT);
    cell(&t);
    add_counts(&t.text, r);
  }
  table_print(out, &t, 1u << 4);
}

/* ---- one run ------------------------------------------------------------------- */

/* "Label     value", with a multi-line value indented under the first. */
static void add_field(fl_buf *out, const char *label, const char *value) {
  if (!value) return;
  fl_buf_addf(out, "%-10s", label);
  for (const char *p = value; *p;) {
    size_t n = strcspn(p, "\n");
    fl_term_escape(out, p, n);
    p += n;
    if (*p == '\n') {
      fl_buf_addc(out, '\n');
      if (*++p) fl_buf_adds(out, "          ");
    }
  }
  fl_buf_addc(out, '\n');
}

/* "12:01:02.123", local time, as the log prints it. */
static void add_log_time(fl_buf *out, double t) {
  long long ms_total = llround(t * 1000.0);
  time_t secs = (time_t)(ms_total / 1000);
  struct tm tm;
  char stamp[16];
  localtime_r(&secs, &tm);
  strftime(stamp, sizeof stamp, "%H:%M:%S", &tm);
  fl_buf_addf(out, "%s.%03d", stamp, (int)(ms_total % 1000));
}

/* A task run's kept log lines, indented under its row, the count of what
   was dropped first (the dropped lines are the oldest). */
static void add_task_logs(fl_buf *out, const fl_store_log_list *logs,
                          size_t task) {
  const fl_store_log_drop *drop = fl_store_log_drop_of(logs, task);
  if (drop)
    fl_buf_addf(out, "    (%lld earlier line%s, %lld bytes, dropped: a task "
                     "run keeps its last %d lines and %d KiB)\n",
                (long long)drop->lines, drop->lines == 1 ? "" : "s",
                (long long)drop->bytes, FL_STORE_LOG_LINES,
                FL_STORE_LOG_BYTES / 1024);
  size_t n = 0;
  const fl_store_log_line *line = fl_store_log_lines_of(logs, task, &n);
  for (size_t i = 0; i < n; i++, line++) {
    fl_buf_adds(out, "    ");
    add_log_time(out, line->at);
    fl_buf_addf(out, " %-5s #%d  ", fl_store_log_level_name(line->level),
                line->attempt);
    /* A line of several lines: the rest under its text. */
    for (const char *p = line->line; *p;) {
      size_t k = strcspn(p, "\n");
      fl_term_escape(out, p, k);
      p += k;
      if (*p == '\n' && *++p) fl_buf_adds(out, "\n        ");
    }
    fl_buf_addc(out, '\n');
  }
}

/* Which subflow runs belong in which task run's SUBFLOW cell: a task run
   that retried its subflow call began a run per attempt, so a cell may
   hold several, in the order they began. Built once with the detail's
   index by key, not a search of every subflow per task run: a map of a
   subflow over 10,000 elements is 10,000 of each. */
typedef struct subflow_cells {
  size_t *first; /* by task run: its first subflow's index, or SIZE_MAX */
  size_t *next;  /* by subflow: the next of the same task run, or SIZE_MAX */
  int stray;     /* some subflow names a task run the run does not hold */
} subflow_cells;

/* 1 when the run called subflows (the cells are built), else 0. Out of
   memory, the cells are left empty and every subflow is shown below the
   table instead. */
static int subflow_cells_build(subflow_cells *c, const fl_store_run_detail *d) {
  if (d->n_subflows == 0) return 0;
  c->first = malloc(d->n_tasks * sizeof *c->first);
  c->next = malloc(d->n_subflows * sizeof *c->next);
  if (!c->first || !c->next) {
    free(c->first);
    free(c->next);
    c->first = c->next = NULL;
    c->stray = 1;
    return 1;
  }
  for (size_t i = 0; i < d->n_tasks; i++) c->first[i] = SIZE_MAX;
  /* Back to front, each put at the head of its task run's list: the
     lists come out in the order the subflows began. */
  for (size_t k = d->n_subflows; k-- > 0;) {
    const fl_store_task_row *t = fl_store_detail_find(d, d->subflows[k].task);
    c->next[k] = SIZE_MAX;
    if (!t) {
      c->stray = 1;
      continue;
    }
    size_t i = (size_t)(t - d->tasks);
    c->next[k] = c->first[i];
    c->first[i] = k;
  }
  return 1;
}

static void subflow_cell(fl_buf *out, const subflow_cells *c,
                         const fl_store_run_detail *d, size_t task) {
  if (!c->first) return;
  for (size_t k = c->first[task]; k != SIZE_MAX; k = c->next[k]) {
    if (k != c->first[task]) fl_buf_adds(out, ", ");
    add_short_id(out, d->subflows[k].run_id);
  }
}

static void subflow_cells_free(subflow_cells *c) {
  free(c->first);
  free(c->next);
  c->first = c->next = NULL;
}

/* Subflows whose task run is not in the table (a history from elsewhere,
   or cells that could not be built), listed under it so none is hidden. */
static void add_stray_subflows(fl_buf *out, const fl_store_run_detail *d,
                               const subflow_cells *c) {
  if (!c->stray) return;
  fl_buf_adds(out, "\nSubflows\n");
  for (size_t k = 0; k < d->n_subflows; k++) {
    const fl_store_subflow *s = &d->subflows[k];
    fl_buf_adds(out, "  ");
    fl_term_escape(out, s->task, strlen(s->task));
    fl_buf_adds(out, "  ");
    fl_term_escape(out, s->run_id, strlen(s->run_id));
    fl_buf_addf(out, "  %s\n", flow_state(s->state));
  }
}

static void print_run_text(fl_buf *out, const fl_store_run_detail *d,
                           const fl_store_log_list *logs) {
  const fl_store_run_row *r = &d->run;
  fl_buf v = FL_BUF_INIT;
  add_field(out, "Run", r->run_id);
  add_field(out, "Flow", r->flow);
  add_field(out, "Script", r->script);
  add_field(out, "State", flow_state(r->state));
  if (r->scheduled_at > 0) {
    add_local_time(&v, r->scheduled_at);
    add_field(out, "Scheduled", fl_buf_str(&v));
  }
  fl_buf_reset(&v);
  add_local_time(&v, r->started_at);
  add_field(out, "Started", fl_buf_str(&v));
  if (r->ended_at > 0) {
    fl_buf_reset(&v);
    add_local_time(&v, r->ended_at);
    fl_buf_adds(&v, " (took ");
    fl_duration_add(&v, span(r->started_at, r->ended_at), FL_DURATION_COMPACT);
    fl_buf_addc(&v, ')');
    add_field(out, "Ended", fl_buf_str(&v));
  }
  add_field(out, "Resumes", r->resumed_from);
  if (r->parent_run_id) {
    fl_buf_reset(&v);
    fl_buf_adds(&v, r->parent_run_id);
    fl_buf_adds(&v, " (task ");
    fl_buf_adds(&v, r->parent_task ? r->parent_task : "?");
    fl_buf_addc(&v, ')');
    add_field(out, "Parent", fl_buf_str(&v));
  }
  add_field(out, "Params", r->params_json);
  add_field(out, "Error", r->error);
  fl_buf_reset(&v);
  add_counts(&v, r);
  add_field(out, "Tasks", fl_buf_str(&v));
  fl_buf_free(&v);
  if (d->n_tasks == 0) return;

  fl_buf_addc(out, '\n');
  /* A WORKER column only when some task ran in a worker process: most
     runs have none, and their table stays as it was. */
  int workers = 0;
  for (size_t i = 0; i < d->n_tasks && !workers; i++)
    workers = d->tasks[i].worker_pid > 0;
  /* A SUBFLOW column, the same way, only when the run called subflows. */
  subflow_cells sub = {0};
  int subflows = subflow_cells_build(&sub, d);
  table t = {.text = FL_BUF_INIT, .cols = 5 + workers + subflows};
  if (logs && (logs->n || logs->n_drops)) {
    t.after = calloc(d->n_tasks + 1, sizeof *t.after);
    if (t.after) t.n_after = d->n_tasks + 1;
    else t.oom = 1;
  }
  static const char *const head[] = {"TASK", "STATE", "ATTEMPTS", "DURATION",
                                     "WORKER", "SUBFLOW", "ERROR"};
  for (int c = 0; c < 7; c++)
    if ((c != 4 || workers) && (c != 5 || subflows)) cell_str(&t, head[c]);
  for (size_t i = 0; i < d->n_tasks; i++) {
    const fl_store_task_row *task = &d->tasks[i];
    cell_str(&t, task->key);
    cell_str(&t, fl_store_task_state_name(task->state));
    cell(&t);
    fl_buf_addf(&t.text, "%d", task->attempts);
    cell(&t);
    fl_duration_add(&t.text, span(task->started_at, task->ended_at), FL_DURATION_COMPACT);
    if (workers) {
      cell(&t);
      if (task->worker_pid > 0)
        fl_store_add_worker(&t.text, task->worker_host, task->worker_pid,
                            r->owner_host, 1);
    }
    if (subflows) {
      cell(&t);
      subflow_cell(&t.text, &sub, d, i);
    }
    cell_first_line(&t, task->error);
    if (t.after) add_task_logs(&t.after[i + 1], logs, i);
  }
  table_print(out, &t, (1u << 2) | (1u << 3) | (workers ? 1u << 4 : 0));
  add_stray_subflows(out, d, &sub);
  subflow_cells_free(&sub);
}

void fl_store_print_run_head(fl_buf *out, const fl_store_run_detail *d) {
  const fl_store_run_row *r = &d->run;
  fl_buf_adds(out, "{\"id\":");
  add_json_str(out, r->run_id);
  fl_buf_adds(out, ",\"flow\":");
  add_json_str(out, r->flow);
  fl_buf_adds(out, ",\"script\":");
  add_json_str(out, r->script);
  fl_buf_adds(out, ",\"state\":");
  add_json_str(out, flow_state(r->state));
  /* Stored as JSON (the table checks it), so it is embedded as it is. */
  fl_buf_addf(out, ",\"params\":%s", r->params_json ? r->params_json : "null");
  fl_buf_adds(out, ",\"scheduled_at\":");
  add_json_time(out, r->scheduled_at);
  fl_buf_adds(out, ",\"started_at\":");
  add_json_time(out, r->started_at);
  fl_buf_adds(out, ",\"ended_at\":");
  add_json_time(out, r->ended_at);
  fl_buf_adds(out, ",\"duration\":");
  add_json_seconds(out, span(r->started_at, r->ended_at));
  fl_buf_adds(out, ",\"error\":");
  add_json_str(out, r->error);
  fl_buf_adds(out, ",\"resumed_from\":");
  add_json_str(out, r->resumed_from);
  add_json_parent(out, r);
  /* The runs it called as subflows, only when any (as parent_*). */
  for (size_t k = 0; k < d->n_subflows; k++) {
    const fl_store_subflow *s = &d->subflows[k];
    fl_buf_adds(out, k ? ",{\"task\":" : ",\"subflows\":[{\"task\":");
    add_json_str(out, s->task);
    fl_buf_adds(out, ",\"run_id\":");
    add_json_str(out, s->run_id);
    fl_buf_adds(out, ",\"state\":");
    add_json_str(out, flow_state(s->state));
    fl_buf_adds(out, k + 1 < d->n_subflows ? "}" : "}]");
  }
  fl_buf_adds(out, ",\"task_counts\":");
  add_json_counts(out, r);
}

static void print_run_json(fl_buf *out, const fl_store_run_detail *d,
                           const fl_store_log_list *logs) {
  fl_store_print_run_head(out, d);
  fl_buf_adds(out, ",\"tasks\":[");
  for (size_t i = 0; i < d->n_tasks; i++) {
    fl_buf_adds(out, i ? ",\n  " : "\n  ");
    fl_store_print_task_json(out, d, i, logs, NULL);
  }
  fl_buf_adds(out, d->n_tasks ? "\n]}\n" : "]}\n");
}

/* "logs": [...] and, when some were dropped, "logs_dropped". */
static void add_json_logs(fl_buf *out, const fl_store_log_list *logs,
                          size_t task) {
  size_t n = 0;
  const fl_store_log_line *line = fl_store_log_lines_of(logs, task, &n);
  fl_buf_adds(out, ",\"logs\":[");
  for (size_t i = 0; i < n; i++, line++) {
    fl_buf_adds(out, i ? ",{\"at\":" : "{\"at\":");
    add_json_time(out, line->at);
    fl_buf_addf(out, ",\"attempt\":%d,\"level\":", line->attempt);
    add_json_str(out, fl_store_log_level_name(line->level));
    fl_buf_adds(out, ",\"line\":");
    add_json_str(out, line->line);
    fl_buf_addc(out, '}');
  }
  fl_buf_addc(out, ']');
  const fl_store_log_drop *drop = fl_store_log_drop_of(logs, task);
  if (drop)
    fl_buf_addf(out, ",\"logs_dropped\":{\"lines\":%lld,\"bytes\":%lld}",
                (long long)drop->lines, (long long)drop->bytes);
}

void fl_store_print_task_json(fl_buf *out, const fl_store_run_detail *d,
                              size_t task, const fl_store_log_list *logs,
                              const char *more) {
  const fl_store_task_row *t = &d->tasks[task];
  fl_buf_adds(out, "{\"key\":");
  add_json_str(out, t->key);
  fl_buf_adds(out, ",\"task\":");
  add_json_str(out, t->task);
  fl_buf_addf(out, ",\"map_index\":%d,\"state\":", t->map_index);
  add_json_str(out, fl_store_task_state_name(t->state));
  fl_buf_addf(out, ",\"attempts\":%d,\"started_at\":", t->attempts);
  add_json_time(out, t->started_at);
  fl_buf_adds(out, ",\"ended_at\":");
  add_json_time(out, t->ended_at);
  fl_buf_adds(out, ",\"duration\":");
  add_json_seconds(out, span(t->started_at, t->ended_at));
  fl_buf_adds(out, ",\"error\":");
  add_json_str(out, t->error);
  fl_buf_adds(out, ",\"worker\":");
  if (t->worker_pid > 0) {
    fl_buf_adds(out, "{\"host\":");
    add_json_str(out, t->worker_host);
    fl_buf_addf(out, ",\"pid\":%lld}", (long long)t->worker_pid);
  } else {
    fl_buf_adds(out, "null");
  }
  fl_buf_addf(out, ",\"resumable\":%s",
              fl_store_task_reusable(t) ? "true" : "false");
  if (logs) add_json_logs(out, logs, task);
  if (more && *more) {
    fl_buf_addc(out, ',');
    fl_buf_adds(out, more);
  }
  fl_buf_addc(out, '}');
}

void fl_store_add_worker(fl_buf *out, const char *host, int64_t pid,
                         const char *run_host, int term) {
  if (host && *host && (!run_host || strcmp(host, run_host) != 0)) {
    if (term)
      fl_term_escape(out, host, strlen(host));
    else
      fl_buf_adds(out, host);
    fl_buf_addc(out, ':');
  }
  fl_buf_addf(out, "%lld", (long long)pid);
}

void fl_store_print_run(fl_buf *out, const fl_store_run_detail *d,
                        const fl_store_log_list *logs, int json) {
  if (json)
    print_run_json(out, d, logs);
  else
    print_run_text(out, d, logs);
}
