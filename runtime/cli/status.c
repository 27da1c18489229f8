/*
 * status.c — the live status's model: task runs by state, fed with the
 * runtime's events, and written out as lines of text (status.h).
 *
 * Pure: no I/O, no clock, no terminal. A flow can have a hundred thousand
 * task runs, so each event is O(1) (a hash table by key, counts kept as
 * they change) and a frame only walks the runs that are active now, in a
 * list kept in the order they became active.
 */
#define _POSIX_C_SOURCE 200809L /* strdup */
#include "status.h"

#include "duration.h"
#include "termtext.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Task rows are cut to this many columns of key, so the clocks line up. */
#define KEY_COLUMNS_MAX 40
/* The first line of a retry's error is kept up to this many characters. */
#define ERROR_KEEP_MAX 200

typedef struct task_entry {
  struct task_entry *chain;        /* the next entry in this hash slot */
  struct task_entry *prev, *next;  /* the active list, while active */
  int state;    /* flowlua_task_state; -1 for a map's node seen only
                   through its elements */
  int attempt;
  long worker_pid; /* Running in a worker process: its pid; else 0 */
  int is_map;   /* a map's node: its elements are counted, not it */
  int active;   /* Running or Retrying: on the active list */
  double since;    /* monotonic time it entered this state */
  double retry_at; /* Retrying: monotonic time of the next attempt */
  char *error;     /* Retrying: the first line of the error; else NULL */
  char key[];
} task_entry;

struct fl_status {
  char *flow;
  int going;
  double started;
  size_t by_state[FLOWLUA_TASK_STATE_COUNT];
  task_entry **slots;
  size_t n_slots, n_entries; /* n_slots: a power of two, or 0 */
  task_entry *head, *tail;   /* the active list, oldest first */
  size_t n_active;
};

fl_status *fl_status_new(void) { return calloc(1, sizeof(fl_status)); }

static void forget_tasks(fl_status *st) {
  for (size_t i = 0; i < st->n_slots; i++) {
    task_entry *e = st->slots[i];
    while (e) {
      task_entry *next = e->chain;
      free(e->error);
      free(e);
      e = next;
    }
  }
  free(st->slots);
  st->slots = NULL;
  st->n_slots = st->n_entries = st->n_active = 0;
  st->head = st->tail = NULL;
  memset(st->by_state, 0, sizeof st->by_state);
}

void fl_status_free(fl_status *st) {
  if (!st) return;
  forget_tasks(st);
  free(st->flow);
  free(st);
}

int fl_status_running(const fl_status *st) { return st->going; }

size_t fl_status_count(const fl_status *st, int task_state) {
  if (task_state < 0 || task_state >= FLOWLUA_TASK_STATE_COUNT) return 0;
  return st->by_state[task_state];
}

/* ---- the table of task runs --------------------------------------------- */

/* FNV-1a over n bytes. */
static uint64_t hash_key(const char *key, size_t n) {
  uint64_t h = 14695981039346656037u;
  for (size_t i = 0; i < n; i++) {
    h ^= (unsigned char)key[i];
    h *= 1099511628211u;
  }
  return h;
}

static task_entry *find(const fl_status *st, const char *key, size_t n) {
  if (!st->n_slots) return NULL;
  task_entry *e = st->slots[hash_key(key, n) & (st->n_slots - 1)];
  while (e && !(strncmp(e->key, key, n) == 0 && e->key[n] == '\0'))
    e = e->chain;
  return e;
}

static int grow(fl_status *st) {
  size_t n = st->n_slots ? st->n_slots * 2 : 64;
  task_entry **slots = calloc(n, sizeof *slots);
  if (!slots) return -1;
  for (size_t i = 0; i < st->n_slots; i++) {
    task_entry *e = st->slots[i];
    while (e) {
      task_entry *next = e->chain;
      size_t at = hash_key(e->key, strlen(e->key)) & (n - 1);
      e->chain = slots[at];
      slots[at] = e;
      e = next;
    }
  }
  free(st->slots);
  st->slots = slots;
  st->n_slots = n;
  return 0;
}

/* The entry for key[0..n), made (state -1, counted nowhere) if new. */
static task_entry *intern(fl_status *st, const char *key, size_t n) {
  task_entry *e = find(st, key, n);
  if (e) return e;
  if (st->n_entries >= st->n_slots / 4 * 3 && grow(st) != 0) /* load 3/4 */
    return NULL;
  e = calloc(1, sizeof *e + n + 1);
  if (!e) return NULL;
  memcpy(e->key, key, n);
  e->state = -1;
  size_t at = hash_key(key, n) & (st->n_slots - 1);
  e->chain = st->slots[at];
  st->slots[at] = e;
  st->n_entries++;
  return e;
}

static void unlink_active(fl_status *st, task_entry *e) {
  if (!e->active) return;
  if (e->prev) e->prev->next = e->next;
  else st->head = e->next;
  if (e->next) e->next->prev = e->prev;
  else st->tail = e->prev;
  e->prev = e->next = NULL;
  e->active = 0;
  st->n_active--;
}

static void append_active(fl_status *st, task_entry *e) {
  e->prev = st->tail;
  e->next = NULL;
  if (st->tail) st->tail->next = e;
  else st->head = e;
  st->tail = e;
  e->active = 1;
  st->n_active++;
}

/* The node of the map that key ("fetch[3]", "fetch#2[3]") is an element
   of: the key without its "[index]"; length 0 when key is no element. A
   task whose own name ends in "[digits]" looks like one too; then only its
   count in the header is off. */
static size_t map_node_len(const char *key) {
  size_t n = strlen(key);
  if (n < 3 || key[n - 1] != ']') return 0;
  size_t i = n - 1;
  while (i > 0 && key[i - 1] >= '0' && key[i - 1] <= '9') i--;
  if (i == n - 1 || i < 2 || key[i - 1] != '[') return 0;
  return i - 1;
}

/* A map's node stops counting as a task run once its elements are seen. */
static void mark_map_node(fl_status *st, const char *key, size_t n) {
  task_entry *node = intern(st, key, n);
  if (!node || node->is_map) return;
  if (node->state >= 0) st->by_state[node->state]--;
  unlink_active(st, node);
  node->is_map = 1;
}

/* With its control characters escaped: the status is on a terminal. */
static char *first_line_copy(const char *s) {
  if (!s) return NULL;
  fl_buf safe = FL_BUF_INIT;
  fl_term_escape(&safe, s, strcspn(s, "\n"));
  size_t n = fl_status_fit(fl_buf_str(&safe), safe.len, ERROR_KEEP_MAX);
  char *copy = safe.oom ? NULL : malloc(n + 1);
  if (copy) {
    memcpy(copy, fl_buf_str(&safe), n);
    copy[n] = '\0';
  }
  fl_buf_free(&safe);
  return copy;
}

static int task_event(fl_status *st, const flowlua_event *ev, double now) {
  if (ev->task_state < 0 || ev->task_state >= FLOWLUA_TASK_STATE_COUNT)
    return 0;
  size_t node_len = map_node_len(ev->task);
  if (node_len) mark_map_node(st, ev->task, node_len);
  task_entry *e = intern(st, ev->task, strlen(ev->task));
  if (!e) return -1;
  if (!e->is_map) {
    if (e->state >= 0) st->by_state[e->state]--;
    st->by_state[ev->task_state]++;
  }
  e->state = ev->task_state;
  e->attempt = ev->attempt;
  /* Events of a library older than the field have none (see size). */
  e->worker_pid = ev->size >= offsetof(flowlua_event, worker_pid) +
                                  sizeof ev->worker_pid
                      ? ev->worker_pid
                      : 0;
  e->since = now;
  free(e->error);
  e->error = NULL;
  unlink_active(st, e);
  if (e->is_map) return 0;
  if (e->state == FLOWLUA_TASK_RETRYING) {
    e->retry_at = now + (ev->retry_delay > 0 ? ev->retry_delay : 0);
    e->error = first_line_copy(ev->error); /* shown if there is memory */
  }
  if (e->state == FLOWLUA_TASK_RUNNING || e->state == FLOWLUA_TASK_RETRYING)
    append_active(st, e);
  return 0;
}

int fl_status_event(fl_status *st, const flowlua_event *ev, double now) {
  if (ev->task) return task_event(st, ev, now);
  if (ev->flow_state != FLOWLUA_FLOW_RUNNING) {
    st->going = 0;
    return 0;
  }
  forget_tasks(st);
  free(st->flow);
  st->flow = ev->flow ? strdup(ev->flow) : NULL;
  st->started = now;
  st->going = 1;
  return ev->flow && !st->flow ? -1 : 0;
}

/* ---- text ---------------------------------------------------------------- */

static int is_continuation(unsigned char c) { return (c & 0xC0) == 0x80; }

size_t fl_status_fit(const char *s, size_t n, int columns) {
  size_t i = 0;
  for (int used = 0; i < n; used++) {
    if (used == columns) break;
    i++;
    while (i < n && is_continuation((unsigned char)s[i])) i++;
  }
  return i;
}

/* Columns that s[0..n) takes: one per character. */
static int columns_of(const char *s, size_t n) {
  int cols = 0;
  for (size_t i = 0; i < n; i++)
    if (!is_continuation((unsigned char)s[i])) cols++;
  return cols;
}

static void add_spaces(fl_buf *out, int n) {
  for (; n > 0; n--) fl_buf_addc(out, ' ');
}

/* Appends s cut to `columns` and padded with spaces to exactly that. */
static void add_column(fl_buf *out, const char *s, int columns) {
  size_t n = fl_status_fit(s, strlen(s), columns);
  fl_buf_add(out, s, n);
  add_spaces(out, columns - columns_of(s, n));
}

#define SGR_BOLD "\033[1m"
#define SGR_YELLOW "\033[33m"
#define SGR_RESET "\033[0m"

/* Appends line cut to width columns, in colour sgr (may be NULL), and a
   newline; empties line for the next one. The colour goes around the cut
   text, so escape sequences never count as columns. */
static void add_line(fl_buf *out, fl_buf *line, int width, const char *sgr) {
  const char *text = fl_buf_str(line);
  size_t n = fl_status_fit(text, line->len, width);
  if (sgr) fl_buf_adds(out, sgr);
  fl_buf_add(out, text, n);
  if (sgr) fl_buf_adds(out, SGR_RESET);
  fl_buf_addc(out, '\n');
  fl_buf_reset(line);
}

/* Walks the task rows in the order they are shown: retries waiting first
   (a failing task is what one looks for), then tasks running, each
   longest waiting first. */
typedef struct row_walk {
  const task_entry *e;
  int pass; /* 0: Retrying, 1: Running */
} row_walk;

static const task_entry *next_row(const fl_status *st, row_walk *w) {
  for (;;) {
    w->e = w->e ? w->e->next : st->head;
    if (!w->e) {
      if (w->pass == 1) return NULL;
      w->pass = 1;
      continue;
    }
    int wanted = w->pass == 0 ? FLOWLUA_TASK_RETRYING : FLOWLUA_TASK_RUNNING;
    if (w->e->state == wanted) return w->e;
  }
}

static void add_header(fl_buf *line, const fl_status *st, double now) {
  fl_buf_addf(line, "flow '%s' ", st->flow ? st->flow : "?");
  fl_duration_add(line, now - st->started, FL_DURATION_CLOCK);
  int any = 0;
  for (int s = 0; s < FLOWLUA_TASK_STATE_COUNT; s++) {
    if (!st->by_state[s]) continue;
    fl_buf_addf(line, "%s %zu %s", any ? "," : ":", st->by_state[s],
                flowlua_task_state_name(s));
    any = 1;
  }
  if (!any) fl_buf_adds(line, ": starting");
}

static void add_task_row(fl_buf *line, const task_entry *e, double now,
                         int key_columns) {
  fl_buf clock = FL_BUF_INIT;
  if (e->state == FLOWLUA_TASK_RUNNING) {
    fl_buf_adds(line, "  Running   ");
    add_column(line, e->key, key_columns);
    fl_duration_add(&clock, now - e->since, FL_DURATION_CLOCK);
    add_spaces(line, 9 - (int)clock.len); /* clocks right-aligned */
    fl_buf_adds(line, fl_buf_str(&clock));
    if (e->attempt > 1) fl_buf_addf(line, "  attempt %d", e->attempt);
    if (e->worker_pid > 0) fl_buf_addf(line, "  worker %ld", e->worker_pid);
  } else {
    fl_buf_adds(line, "  Retrying  ");
    add_column(line, e->key, key_columns);
    fl_duration_add(&clock, e->retry_at - now, FL_DURATION_CLOCK);
    fl_buf_addf(line, "  next attempt in %s", fl_buf_str(&clock));
    fl_buf_addf(line, " (attempt %d failed%s%s)", e->attempt,
                e->error ? ": " : "", e->error ? e->error : "");
  }
  fl_buf_free(&clock);
}

int fl_status_render(const fl_status *st, double now,
                     const fl_status_layout *layout, fl_buf *out) {
  if (!st->going) return 0;
  int width = layout->width > 0 ? layout->width : 80;
  int rows = (layout->max_lines > 1 ? layout->max_lines : 1) - 1;
  fl_buf line = FL_BUF_INIT;
  add_header(&line, st, now);
  add_line(out, &line, width, layout->color ? SGR_BOLD : NULL);
  int lines = 1;
  if (rows > 0 && st->n_active > 0) {
    /* When they do not all fit, the last row says how many are left. */
    size_t shown = st->n_active <= (size_t)rows ? st->n_active
                                                : (size_t)rows - 1;
    int key_columns = 1;
    row_walk w = {NULL, 0};
    for (size_t i = 0; i < shown && next_row(st, &w); i++) {
      int cols = columns_of(w.e->key, strlen(w.e->key));
      if (cols > key_columns) key_columns = cols;
    }
    if (key_columns > KEY_COLUMNS_MAX) key_columns = KEY_COLUMNS_MAX;
    w = (row_walk){NULL, 0};
    for (size_t i = 0; i < shown && next_row(st, &w); i++) {
      add_task_row(&line, w.e, now, key_columns);
      int retrying = w.e->state == FLOWLUA_TASK_RETRYING;
      add_line(out, &line, width,
               layout->color && retrying ? SGR_YELLOW : NULL);
      lines++;
    }
    if (shown < st->n_active) {
      fl_buf_addf(&line, "  ... and %zu more", st->n_active - shown);
      add_line(out, &line, width, NULL);
      lines++;
    }
  }
  fl_buf_free(&line);
  return lines;
}
