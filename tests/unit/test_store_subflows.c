/*
 * test_store_subflows.c — the link between a subflow's run and the run
 * that called it (fl_store_run_info.parent_run_id / parent_task), through
 * the store's API, on SQLite and, when the harness gives one
 * (FLOWLUA_TEST_PG: ctest's pg/store_subflows runs this under
 * tests/support/pg/with_pg.py), on PostgreSQL too, with the same
 * expectations.
 *
 * A parent run whose task runs called five subflow runs (one task run
 * twice: a retried call; two runs begun in the same instant) and a run
 * of no family: the link read back by list, list with a filter, and load;
 * the parent's subflows in the order they began; a link with one end
 * refused; `show` (text and JSON), `runs` (text and JSON) and the HTML
 * report of both ends; a subflow naming a task run its parent lacks is
 * listed under the table; a child whose parent was pruned keeps naming it;
 * a copy (SQLite to the backend under test, and back) keeps the links.
 * On SQLite only: a subflow's start journalled by a serving process (the
 * writer thread inserts it), and replayed from the journal of a process
 * killed before its writer could; a version 8 file (before the link)
 * migrated, its runs linked to nothing.
 */
#define _GNU_SOURCE
#include <signal.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "flowlua.h"
#include "report_html.h"
#include "states.h"
#include "store.h"
#include "store_internal.h" /* fl__store_migration_sql */

static const double T0 = 1764346201.0;
static char tmp_root[256];

static const char *tmp_path(const char *name) {
  static char path[4][512];
  static int next;
  char *p = path[next++ % 4];
  snprintf(p, sizeof path[0], "%s/%s", tmp_root, name);
  return p;
}

/* The history under test: a SQLite file, or the harness's database (its
   schema dropped first, so each test starts empty). */
static const char *backend;

static int on_sqlite(void) { return strcmp(backend, "sqlite") == 0; }

static fl_store *open_at(const char *where) {
  fl_store *st = NULL;
  char err[1024];
  int rc = fl_store_open(where, NULL, &st, err, sizeof err);
  CHECK_EQ_INT(rc, FLOWLUA_OK);
  if (rc) fprintf(stderr, "  open: %s\n", err);
  return st;
}

static void drop_pg_schema(const char *uri) {
  char cmd[4096];
  snprintf(cmd, sizeof cmd,
           "psql -q -X '%s' -c 'DROP SCHEMA IF EXISTS flowlua CASCADE' "
           ">/dev/null 2>&1",
           uri);
  CHECK_EQ_INT(system(cmd), 0);
}

/* A fresh history of the backend under test, named `name` for SQLite. */
static const char *fresh(const char *name) {
  if (on_sqlite()) {
    const char *p = tmp_path(name);
    unlink(p);
    return p;
  }
  drop_pg_schema(backend);
  return backend;
}

static fl_store_run_detail *load(fl_store *st, const char *id) {
  fl_store_run_detail *d = NULL;
  int rc = fl_store_load_run(st, id, NULL, &d);
  CHECK_EQ_INT(rc, FLOWLUA_OK);
  if (rc) fprintf(stderr, "  load %s: %s\n", id, fl_store_errmsg(st));
  return d;
}

/* json_extract(json, path) as text by SQLite's parser, malloc'd ("NULL"
   for null or absent, "INVALID" when json is not JSON). */
static char *json_get(const char *json, const char *jpath) {
  sqlite3 *db = NULL;
  sqlite3_open(":memory:", &db);
  sqlite3_stmt *s = NULL;
  sqlite3_prepare_v2(db,
                     "SELECT CASE WHEN json_valid(?1) THEN"
                     " coalesce(json_extract(?1, ?2), 'NULL') ELSE 'INVALID'"
                     " END",
                     -1, &s, NULL);
  sqlite3_bind_text(s, 1, json, -1, SQLITE_STATIC);
  sqlite3_bind_text(s, 2, jpath, -1, SQLITE_STATIC);
  char *out = NULL;
  if (sqlite3_step(s) == SQLITE_ROW)
    out = strdup((const char *)sqlite3_column_text(s, 0));
  sqlite3_finalize(s);
  sqlite3_close(db);
  return out ? out : strdup("?");
}

#define CHECK_JSON(json, jpath, want)                                          \
  do {                                                                         \
    char *got_ = json_get((json), (jpath));                                    \
    CHECK_EQ_STR(got_, (want));                                                \
    free(got_);                                                                \
  } while (0)

/* The line of text that holds needle, malloc'd ("" when none). */
static char *line_with(const char *text, const char *needle) {
  const char *at = strstr(text, needle);
  if (!at) return strdup("");
  const char *start = at;
  while (start > text && start[-1] != '\n') start--;
  return strndup(start, strcspn(start, "\n"));
}

#define CHECK_LINE(text, needle, want)                                         \
  do {                                                                         \
    char *got_ = line_with((text), (needle));                                  \
    CHECK_EQ_STR(got_, (want));                                                \
    free(got_);                                                                \
  } while (0)

/* ---- the family -------------------------------------------------------------- */

/* Begins a run; parent NULL for a run that is no subflow's. */
static fl_store_run *begin(fl_store *st, const char *id, const char *flow,
                           double at, const char *parent, const char *task) {
  fl_store_run_info info = {.run_id = id, .flow = flow, .started_at = at,
                            .parent_run_id = parent, .parent_task = task};
  fl_store_run *run = NULL;
  int rc = fl_store_run_begin(st, &info, &run);
  CHECK_EQ_INT(rc, FLOWLUA_OK);
  if (rc) fprintf(stderr, "  begin %s: %s\n", id, fl_store_errmsg(st));
  return run;
}

static void task_ends(fl_store_run *run, const char *key, int map_index,
                      int state, double at) {
  uint32_t t = UINT32_MAX;
  CHECK_EQ_INT(fl_store_task_add(run, key, key, map_index, &t), FLOWLUA_OK);
  CHECK_EQ_INT(fl_store_task_state(run, t, FLOWLUA_TASK_RUNNING, 1, at, NULL),
               FLOWLUA_OK);
  CHECK_EQ_INT(fl_store_task_state(run, t, state, 1, at + 1,
                                   state == FLOWLUA_TASK_FAILED ? "boom" : NULL),
               FLOWLUA_OK);
}

static void end(fl_store_run *run, int state, double at) {
  if (run)
    CHECK_EQ_INT(fl_store_run_end(run, state, at,
                                  state == FLOWLUA_FLOW_FAILED ? "a task failed"
                                                               : NULL),
                 FLOWLUA_OK);
}

/* A subflow's run of flow "load": one task run, then its end. */
static void child(fl_store *st, const char *id, double at, const char *task,
                  int state) {
  fl_store_run *run = begin(st, id, "load", at, "parent-run", task);
  if (!run) return;
  task_ends(run, "copy", 0,
            state == FLOWLUA_FLOW_SUCCESS ? FLOWLUA_TASK_SUCCESS
                                          : FLOWLUA_TASK_FAILED,
            at + 0.5);
  end(run, state, at + 0.9);
}

/* Run "parent-run" (flow "etl") called "load" five times: task run child
   once, child#2 twice (its call retried), and the elements each[1] and
   each[2] in the same instant, each[2]'s run begun first. Begun out of
   the order they started in: the parent lists them by start, then by the
   order they were recorded. Run "solo" (flow "etl") is no family's. */
static void record_family(fl_store *st) {
  fl_store_run *p = begin(st, "parent-run", "etl", T0, NULL, NULL);
  if (!p) return;
  child(st, "kid-b2", T0 + 5, "child#2", FLOWLUA_FLOW_FAILED);
  child(st, "kid-a", T0 + 2, "child", FLOWLUA_FLOW_SUCCESS);
  child(st, "kid-b1", T0 + 3, "child#2", FLOWLUA_FLOW_FAILED);
  child(st, "kid-e2", T0 + 4, "each[2]", FLOWLUA_FLOW_SUCCESS);
  child(st, "kid-e1", T0 + 4, "each[1]", FLOWLUA_FLOW_SUCCESS);
  task_ends(p, "child", 0, FLOWLUA_TASK_SUCCESS, T0 + 1);
  task_ends(p, "child#2", 0, FLOWLUA_TASK_FAILED, T0 + 2);
  task_ends(p, "each", 0, FLOWLUA_TASK_SUCCESS, T0 + 3);
  task_ends(p, "each[1]", 1, FLOWLUA_TASK_SUCCESS, T0 + 3);
  task_ends(p, "each[2]", 2, FLOWLUA_TASK_SUCCESS, T0 + 3);
  end(p, FLOWLUA_FLOW_FAILED, T0 + 7);
  fl_store_run *solo = begin(st, "solo", "etl", T0 + 8, NULL, NULL);
  if (solo) task_ends(solo, "child", 0, FLOWLUA_TASK_SUCCESS, T0 + 8);
  end(solo, FLOWLUA_FLOW_SUCCESS, T0 + 10);
}

/* The subflows of d as "task=run_id:State,..." */
static char *subflows_text(const fl_store_run_detail *d) {
  fl_buf b = FL_BUF_INIT;
  for (size_t k = 0; k < d->n_subflows; k++)
    fl_buf_addf(&b, "%s%s=%s:%s", k ? "," : "", d->subflows[k].task,
                d->subflows[k].run_id,
                d->subflows[k].state >= 0
                    ? fl_flow_state_name(d->subflows[k].state)
                    : "?");
  char *s = strdup(fl_buf_str(&b));
  fl_buf_free(&b);
  return s;
}

/* The subflows run_id's record lists, as subflows_text writes them. */
static void check_subflows_of(fl_store *st, const char *run_id,
                              const char *expected) {
  fl_store_run_detail *d = load(st, run_id);
  CHECK(d != NULL);
  if (d) {
    char *got = subflows_text(d);
    CHECK_EQ_STR(got, expected);
    free(got);
  }
  fl_store_run_detail_free(d);
}

#define FAMILY_SUBFLOWS                                                        \
  "child=kid-a:Success,child#2=kid-b1:Failed,each[2]=kid-e2:Success,"          \
  "each[1]=kid-e1:Success,child#2=kid-b2:Failed"

/* Both ends of the family's links, as loaded from st. */
static void check_family(fl_store *st) {
  fl_store_run_detail *d = load(st, "parent-run");
  if (d) {
    CHECK(d->run.parent_run_id == NULL);
    CHECK(d->run.parent_task == NULL);
    char *got = subflows_text(d);
    CHECK_EQ_STR(got, FAMILY_SUBFLOWS);
    free(got);
  }
  fl_store_run_detail_free(d);
  d = load(st, "kid-b2");
  if (d) {
    CHECK_EQ_STR(d->run.parent_run_id, "parent-run");
    CHECK_EQ_STR(d->run.parent_task, "child#2");
    CHECK_EQ_INT(d->n_subflows, 0);
    CHECK_EQ_INT(d->run.state, FLOWLUA_FLOW_FAILED);
  }
  fl_store_run_detail_free(d);
  d = load(st, "solo");
  if (d) {
    CHECK(d->run.parent_run_id == NULL && d->run.parent_task == NULL);
    CHECK_EQ_INT(d->n_subflows, 0);
  }
  fl_store_run_detail_free(d);
}

/* ---- reading the link back --------------------------------------------------- */

static void test_link_read_back(void) {
  fl_store *st = open_at(fresh("read_back.db"));
  if (!st) return;
  record_family(st);
  check_family(st);

  /* Every run listed says whose subflow it is, or nothing. */
  fl_store_run_list l;
  CHECK_EQ_INT(fl_store_list_runs(st, NULL, 0, &l), FLOWLUA_OK);
  CHECK_EQ_INT(l.n, 7);
  fl_buf b = FL_BUF_INIT;
  for (size_t i = 0; i < l.n; i++)
    fl_buf_addf(&b, "%s%s<%s/%s", i ? " " : "", l.rows[i].run_id,
                l.rows[i].parent_run_id ? l.rows[i].parent_run_id : "-",
                l.rows[i].parent_task ? l.rows[i].parent_task : "-");
  CHECK_EQ_STR(fl_buf_str(&b),
               "solo<-/- kid-b2<parent-run/child#2 kid-e1<parent-run/each[1] "
               "kid-e2<parent-run/each[2] kid-b1<parent-run/child#2 "
               "kid-a<parent-run/child parent-run<-/-");
  fl_buf_free(&b);
  fl_store_run_list_free(&l);
  /* A filtered page too (the web UI's list). */
  fl_store_run_filter f = {.flow = "load", .state = FLOWLUA_FLOW_FAILED,
                           .limit = 10};
  CHECK_EQ_INT(fl_store_list_runs_where(st, &f, &l), FLOWLUA_OK);
  CHECK_EQ_INT(l.n, 2);
  if (l.n == 2) {
    CHECK_EQ_STR(l.rows[1].run_id, "kid-b1");
    CHECK_EQ_STR(l.rows[1].parent_run_id, "parent-run");
    CHECK_EQ_STR(l.rows[1].parent_task, "child#2");
  }
  fl_store_run_list_free(&l);

  /* A link names both ends or is refused, and nothing is recorded. */
  fl_store_run_info half = {.run_id = "half", .flow = "load",
                            .started_at = T0 + 20,
                            .parent_run_id = "parent-run"};
  fl_store_run *run = (fl_store_run *)1;
  CHECK_EQ_INT(fl_store_run_begin(st, &half, &run), FLOWLUA_EINVAL);
  CHECK(run == NULL);
  CHECK_CONTAINS(fl_store_errmsg(st), "run 'half': a subflow's run needs both "
                                      "its parent's run id and the parent's "
                                      "task key (got a run id and none)");
  half.parent_run_id = NULL;
  half.parent_task = "child";
  CHECK_EQ_INT(fl_store_run_begin(st, &half, &run), FLOWLUA_EINVAL);
  CHECK_CONTAINS(fl_store_errmsg(st), "(got none and a task key)");
  half.parent_run_id = "";
  CHECK_EQ_INT(fl_store_run_begin(st, &half, &run), FLOWLUA_EINVAL);
  fl_store_run_detail *d = NULL;
  CHECK_EQ_INT(fl_store_load_run(st, "half", NULL, &d), FLOWLUA_EINVAL);
  fl_store_run_detail_free(d);
  fl_store_close(st);
}

/* ---- what show, runs and the report print ------------------------------------ */

static char *print_run(fl_store *st, const char *id, int json) {
  fl_store_run_detail *d = load(st, id);
  fl_buf b = FL_BUF_INIT;
  if (d) fl_store_print_run(&b, d, NULL, json);
  fl_store_run_detail_free(d);
  char *s = strdup(fl_buf_str(&b));
  fl_buf_free(&b);
  return s;
}

static char *print_html(fl_store *st, const char *id) {
  fl_store_run_detail *d = load(st, id);
  fl_store_attempt_list a = {0};
  fl_buf b = FL_BUF_INIT;
  if (d && fl_store_load_attempts(st, d, &a) == FLOWLUA_OK) {
    fl_report r = {.run = d, .attempts = &a, .edges = d->edges,
                   .n_edges = d->n_edges, .graph_note = "no graph",
                   .now = T0 + 100};
    fl_report_html(&b, &r);
  }
  fl_store_attempt_list_free(&a);
  fl_store_run_detail_free(d);
  char *s = strdup(fl_buf_str(&b));
  fl_buf_free(&b);
  return s;
}

static void test_printed(void) {
  fl_store *st = open_at(fresh("printed.db"));
  if (!st) return;
  record_family(st);

  /* show of the parent: each task run that called subflows names their
     runs, in the order they began; the others' cells are empty. */
  char *text = print_run(st, "parent-run", 0);
  CHECK_LINE(text, "TASK", "TASK     STATE    ATTEMPTS  DURATION  SUBFLOW"
                           "         ERROR");
  CHECK_LINE(text, "child#2 ", "child#2  Failed          1      1.0s  "
                               "kid-b1, kid-b2  boom");
  CHECK_LINE(text, "each[1]", "each[1]  Success         1      1.0s  kid-e1");
  CHECK_LINE(text, "each ", "each     Success         1      1.0s");
  CHECK_NOT_CONTAINS(text, "Parent");
  CHECK_NOT_CONTAINS(text, "Subflows"); /* all are in the table */
  free(text);
  /* show of a child: its parent and the task run that called it. */
  text = print_run(st, "kid-b1", 0);
  CHECK_LINE(text, "Parent", "Parent    parent-run (task child#2)");
  CHECK_NOT_CONTAINS(text, "SUBFLOW");
  free(text);
  /* A run of no family prints as before. */
  text = print_run(st, "solo", 0);
  CHECK_NOT_CONTAINS(text, "Parent");
  CHECK_NOT_CONTAINS(text, "SUBFLOW");
  free(text);

  /* show --json: the parent's "subflows", the child's "parent_*"; neither
     where there is none. */
  char *json = print_run(st, "parent-run", 1);
  CHECK_JSON(json, "$.subflows[0].task", "child");
  CHECK_JSON(json, "$.subflows[0].run_id", "kid-a");
  CHECK_JSON(json, "$.subflows[0].state", "Success");
  CHECK_JSON(json, "$.subflows[4].run_id", "kid-b2");
  CHECK_JSON(json, "$.subflows[4].state", "Failed");
  CHECK_JSON(json, "$.subflows[5]", "NULL"); /* five, no more */
  CHECK_NOT_CONTAINS(json, "parent_run_id");
  free(json);
  json = print_run(st, "kid-e2", 1);
  CHECK_JSON(json, "$.parent_run_id", "parent-run");
  CHECK_JSON(json, "$.parent_task", "each[2]");
  CHECK_JSON(json, "$.resumed_from", "NULL");
  CHECK_NOT_CONTAINS(json, "subflows");
  free(json);
  json = print_run(st, "solo", 1);
  CHECK_NOT_CONTAINS(json, "parent_");
  CHECK_NOT_CONTAINS(json, "subflows");
  CHECK_JSON(json, "$.id", "solo");
  free(json);

  /* runs: a child's flow names whose subflow it is (eight characters of
     the parent's id, as the ID column shows ids); runs --json adds
     parent_run_id and parent_task to a child's row only. */
  fl_store_run_list l;
  CHECK_EQ_INT(fl_store_list_runs(st, NULL, 0, &l), FLOWLUA_OK);
  fl_buf b = FL_BUF_INIT;
  fl_store_print_runs(&b, &l, 0);
  char *line = line_with(fl_buf_str(&b), "kid-a ");
  CHECK_CONTAINS(line, "kid-a     load (subflow of parent-r)  Success");
  free(line);
  line = line_with(fl_buf_str(&b), "solo ");
  CHECK_CONTAINS(line, "solo      etl                         Success");
  free(line);
  fl_buf_reset(&b);
  fl_store_print_runs(&b, &l, 1);
  CHECK_JSON(fl_buf_str(&b), "$[0].id", "solo");
  line = line_with(fl_buf_str(&b), "\"solo\"");
  CHECK_CONTAINS(line, "\"resumed_from\":null}");
  CHECK_NOT_CONTAINS(line, "parent");
  free(line);
  CHECK_JSON(fl_buf_str(&b), "$[1].id", "kid-b2");
  CHECK_JSON(fl_buf_str(&b), "$[1].parent_run_id", "parent-run");
  CHECK_JSON(fl_buf_str(&b), "$[1].parent_task", "child#2");
  CHECK_JSON(fl_buf_str(&b), "$[1].flow", "load");
  fl_buf_free(&b);
  fl_store_run_list_free(&l);

  /* The HTML report names both ends, as text. */
  char *html = print_html(st, "kid-b2");
  CHECK_CONTAINS(html, "<tr><th>Parent</th><td><code>parent-run</code> "
                       "(task <code>child#2</code>)</td></tr>");
  CHECK_NOT_CONTAINS(html, "<th>Subflows</th>");
  free(html);
  html = print_html(st, "parent-run");
  CHECK_CONTAINS(html, "<tr><th>Subflows</th><td><code>child</code> &rarr; "
                       "<code>kid-a</code> <span class=\"badge s-Success\">"
                       "Success</span><br>\n<code>child#2</code> &rarr; "
                       "<code>kid-b1</code> <span class=\"badge s-Failed\">"
                       "Failed</span>");
  CHECK_CONTAINS(html, "<code>kid-b2</code> <span class=\"badge s-Failed\">"
                       "Failed</span></td></tr>");
  CHECK_NOT_CONTAINS(html, "<th>Parent</th>");
  free(html);
  fl_store_close(st);
}

/* A subflow that names a task run its parent does not hold (a history
   from elsewhere, a forged one) is not hidden: show lists it under the
   table, with its full id. */
static void test_stray_subflow(void) {
  fl_store *st = open_at(fresh("stray.db"));
  if (!st) return;
  fl_store_run *p = begin(st, "lone", "etl", T0, NULL, NULL);
  if (p) task_ends(p, "a", 0, FLOWLUA_TASK_SUCCESS, T0 + 1);
  end(p, FLOWLUA_FLOW_SUCCESS, T0 + 3);
  fl_store_run *kid = begin(st, "kid-x", "load", T0 + 1, "lone", "b");
  end(kid, FLOWLUA_FLOW_SUCCESS, T0 + 2);
  char *text = print_run(st, "lone", 0);
  CHECK_LINE(text, "TASK", "TASK  STATE    ATTEMPTS  DURATION  SUBFLOW  ERROR");
  CHECK_LINE(text, "a ", "a     Success         1      1.0s");
  CHECK_CONTAINS(text, "\nSubflows\n  b  kid-x  Success\n");
  free(text);
  fl_store_close(st);
}

/* ---- prune ------------------------------------------------------------------- */

/* Pruning the parent's flow leaves its subflows' runs (another flow, and
   runs of their own), which keep naming the parent: show prints its id. */
static void test_parent_pruned(void) {
  fl_store *st = open_at(fresh("pruned.db"));
  if (!st) return;
  record_family(st);
  fl_store_prune_opts o = {.older_than = 60, .flow = "etl"};
  fl_store_prune *p = NULL;
  CHECK_EQ_INT(fl_store_prune_begin(st, &o, T0 + 86400, &p), FLOWLUA_OK);
  int rc = -1;
  while (p && (rc = fl_store_prune_step(p)) == 1) {
  }
  CHECK_EQ_INT(rc, 0);
  if (p) CHECK_EQ_INT(fl_store_prune_done(p)->runs, 2);
  fl_store_prune_free(p);
  fl_store_run_detail *d = NULL;
  CHECK_EQ_INT(fl_store_load_run(st, "parent-run", NULL, &d), FLOWLUA_EINVAL);
  fl_store_run_detail_free(d);
  d = load(st, "kid-a");
  if (d) {
    CHECK_EQ_STR(d->run.parent_run_id, "parent-run");
    CHECK_EQ_STR(d->run.parent_task, "child");
  }
  fl_store_run_detail_free(d);
  char *text = print_run(st, "kid-a", 0);
  CHECK_LINE(text, "Parent", "Parent    parent-run (task child)");
  free(text);
  fl_store_close(st);
}

/* ---- copies ------------------------------------------------------------------ */

static void copy_ok(fl_store *from, fl_store *to, size_t runs) {
  fl_store_copy_counts counts;
  int rc = fl_store_copy(from, to, &counts);
  CHECK_EQ_INT(rc, FLOWLUA_OK);
  if (rc) fprintf(stderr, "  copy: %s\n", fl_store_errmsg(to));
  else CHECK_EQ_INT(counts.runs, runs);
}

/* SQLite into the backend under test keeps both ends of every link; on
   PostgreSQL, back into a new SQLite file as well. */
static void test_copied(void) {
  const char *src = tmp_path("copy_src.db");
  unlink(src);
  fl_store *from = open_at(src);
  if (!from) return;
  record_family(from);
  fl_store *to = open_at(fresh("copy_dst.db"));
  if (to) {
    copy_ok(from, to, 7);
    check_family(to);
    if (!on_sqlite()) {
      const char *back = tmp_path("copy_back.db");
      unlink(back);
      fl_store *again = open_at(back);
      if (again) {
        copy_ok(to, again, 7);
        check_family(again);
        fl_store_close(again);
      }
    }
    fl_store_close(to);
  }
  fl_store_close(from);
}

/* ---- SQLite: journalled starts --------------------------------------------- */

/* A serving process (its writer thread, its journal) starts a subflow's
   run without the database's lock: journalled, inserted by the writer,
   and read back with its link. */
static void test_journalled_start(void) {
  const char *path = tmp_path("background.db");
  unlink(path);
  fl_store *st = open_at(path);
  if (!st) return;
  fl_store_write_in_background(st);
  fl_store_run *p = begin(st, "parent-run", "etl", T0, NULL, NULL);
  /* The first start took a block of ids: this one is journalled. */
  fl_store_run *kid = begin(st, "kid-a", "load", T0 + 1, "parent-run", "child");
  end(kid, FLOWLUA_FLOW_SUCCESS, T0 + 2);
  end(p, FLOWLUA_FLOW_SUCCESS, T0 + 3);
  CHECK_EQ_INT(fl_store_flush(st), FLOWLUA_OK);
  check_subflows_of(st, "parent-run", "child=kid-a:Success");
  fl_store_run_detail *d = load(st, "kid-a");
  if (d) {
    CHECK_EQ_STR(d->run.parent_run_id, "parent-run");
    CHECK_EQ_STR(d->run.parent_task, "child");
  }
  fl_store_run_detail_free(d);
  fl_store_close(st);
}

/* A serving process that starts a subflow's run while another process
   holds the write lock: the start is in its journal only when it is
   killed. Tells the parent after the first run (ids reserved) and after
   the subflow's start; then waits to be killed. */
static pid_t serving_child(const char *path, int ready_fd, int go_fd) {
  pid_t pid = fork();
  if (pid != 0) return pid;
  fl_store_options o;
  fl_store_options_init(&o);
  o.busy_timeout_ms = 50;
  fl_store *st = NULL;
  char err[256], c;
  if (fl_store_open(path, &o, &st, err, sizeof err)) _exit(1);
  fl_store_write_in_background(st);
  fl_store_run_info info = {.run_id = "parent-run", .flow = "etl",
                            .started_at = T0};
  fl_store_run *parent, *kid;
  uint32_t t;
  if (fl_store_run_begin(st, &info, &parent) ||
      fl_store_task_add(parent, "child", "child", 0, &t) ||
      fl_store_task_state(parent, t, FLOWLUA_TASK_RUNNING, 1, T0 + 1, NULL))
    _exit(2);
  if (write(ready_fd, "p", 1) != 1 || read(go_fd, &c, 1) != 1) _exit(3);
  info = (fl_store_run_info){.run_id = "kid-a", .flow = "load",
                             .started_at = T0 + 2,
                             .parent_run_id = "parent-run",
                             .parent_task = "child"};
  if (fl_store_run_begin(st, &info, &kid) ||
      fl_store_task_add(kid, "copy", "copy", 0, &t) ||
      fl_store_task_state(kid, t, FLOWLUA_TASK_RUNNING, 1, T0 + 3, NULL))
    _exit(4);
  if (write(ready_fd, "k", 1) != 1) _exit(5);
  for (;;) pause(); /* until killed: the start is in its journal only */
}

static long long count_runs(const char *path) {
  sqlite3 *db = NULL;
  sqlite3_stmt *s = NULL;
  long long n = -1;
  if (sqlite3_open(path, &db) == SQLITE_OK &&
      sqlite3_prepare_v2(db, "SELECT count(*) FROM flow_run", -1, &s, NULL) ==
          SQLITE_OK &&
      sqlite3_step(s) == SQLITE_ROW)
    n = sqlite3_column_int64(s, 0);
  sqlite3_finalize(s);
  sqlite3_close(db);
  return n;
}

/* The journal of a process killed before its writer inserted a subflow's
   start is replayed by the next process: the run is recorded, linked to
   its parent, and Crashed with it. */
static void test_journal_replayed(void) {
  const char *path = tmp_path("replay.db");
  unlink(path);
  fl_store *made = open_at(path); /* the schema, before the child opens */
  fl_store_close(made);
  int up[2], down[2];
  CHECK_EQ_INT(pipe(up), 0);
  CHECK_EQ_INT(pipe(down), 0);
  pid_t kid = serving_child(path, up[1], down[0]);
  close(up[1]);
  close(down[0]);
  char c = 0;
  CHECK_EQ_INT(read(up[0], &c, 1), 1);
  CHECK_EQ_INT(c, 'p');
  sqlite3 *other = NULL;
  sqlite3_open(path, &other);
  CHECK_EQ_INT(sqlite3_exec(other, "BEGIN IMMEDIATE", NULL, NULL, NULL),
               SQLITE_OK);
  CHECK_EQ_INT(write(down[1], "g", 1), 1);
  CHECK_EQ_INT(read(up[0], &c, 1), 1);
  CHECK_EQ_INT(c, 'k'); /* started without the lock */
  kill(kid, SIGKILL);
  waitpid(kid, NULL, 0);
  close(up[0]);
  close(down[1]);
  sqlite3_exec(other, "ROLLBACK", NULL, NULL, NULL);
  sqlite3_close(other);
  CHECK_EQ_INT(count_runs(path), 1); /* the parent's only */

  fl_store *st = open_at(path);
  if (!st) return;
  size_t n = 99;
  CHECK_EQ_INT(fl_store_mark_crashed(st, T0 + 60, &n), FLOWLUA_OK);
  CHECK_EQ_INT(n, 2);
  fl_store_run_detail *d = load(st, "kid-a");
  if (d) {
    CHECK_EQ_STR(d->run.parent_run_id, "parent-run");
    CHECK_EQ_STR(d->run.parent_task, "child");
    CHECK_EQ_INT(d->run.state, FLOWLUA_FLOW_CRASHED);
    CHECK_EQ_INT(d->n_tasks, 1);
  }
  fl_store_run_detail_free(d);
  check_subflows_of(st, "parent-run", "child=kid-a:Crashed");
  fl_store_close(st);
}

/* ---- SQLite: a version 8 file --------------------------------------------- */

static void raw_exec(const char *path, const char *sql) {
  sqlite3 *db = NULL;
  char *msg = NULL;
  CHECK_EQ_INT(sqlite3_open(path, &db), SQLITE_OK);
  int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
  CHECK_EQ_INT(rc, SQLITE_OK);
  if (rc) fprintf(stderr, "  %s: %s\n", sql, msg);
  sqlite3_free(msg);
  sqlite3_close(db);
}

static char *raw_text(const char *path, const char *sql) {
  sqlite3 *db = NULL;
  sqlite3_stmt *s = NULL;
  char *out = NULL;
  if (sqlite3_open(path, &db) == SQLITE_OK &&
      sqlite3_prepare_v2(db, sql, -1, &s, NULL) == SQLITE_OK &&
      sqlite3_step(s) == SQLITE_ROW && sqlite3_column_text(s, 0))
    out = strdup((const char *)sqlite3_column_text(s, 0));
  sqlite3_finalize(s);
  sqlite3_close(db);
  return out ? out : strdup("(none)");
}

/* A file as flowlua left it at schema 8 (before the link) gains the
   columns, NULL for its runs, and the index; new runs are linked. */
static void test_migrate_from_v8(void) {
  const char *path = tmp_path("v8.db");
  unlink(path);
  for (int v = 0; v < 8; v++) raw_exec(path, fl__store_migration_sql(v));
  char sql[160];
  snprintf(sql, sizeof sql,
           "PRAGMA application_id = %d; PRAGMA user_version = 8;",
           FL_STORE_APPLICATION_ID);
  raw_exec(path, sql);
  raw_exec(path,
           "INSERT INTO flow_run(id, run_id, flow, state, started_at, ended_at,"
           " owner_host, owner_boot, owner_pid, owner_start) VALUES (1, 'old',"
           " 'etl', 'Success', 1764346201, 1764346205, 'h', 'b', 1, 1);"
           "INSERT INTO run_graph(run, keys) VALUES (1, '[\"a\"]');"
           "UPDATE run_ids SET next = 2;");
  fl_store *st = open_at(path);
  if (!st) return;
  char *v = raw_text(path, "PRAGMA user_version");
  CHECK_EQ_STR(v, "9");
  free(v);
  v = raw_text(path, "SELECT coalesce(parent_run, 'null') || ' ' ||"
                     " coalesce(parent_task, 'null') FROM flow_run"
                     " WHERE run_id = 'old'");
  CHECK_EQ_STR(v, "null null");
  free(v);
  v = raw_text(path, "SELECT sql FROM sqlite_schema WHERE name ="
                     " 'flow_run_by_parent'");
  CHECK_CONTAINS(v, "ON flow_run(parent_run)  WHERE parent_run IS NOT NULL");
  free(v);
  fl_store_run_detail *d = load(st, "old");
  if (d) {
    CHECK(d->run.parent_run_id == NULL);
    CHECK_EQ_INT(d->n_subflows, 0);
  }
  fl_store_run_detail_free(d);
  fl_store_run *kid = begin(st, "new", "load", T0 + 10, "old", "a");
  end(kid, FLOWLUA_FLOW_SUCCESS, T0 + 11);
  check_subflows_of(st, "old", "a=new:Success");
  fl_store_close(st);
}

int main(void) {
  snprintf(tmp_root, sizeof tmp_root, "/tmp/fl_store_subflows_" MKDTEMP_SUFFIX);
  if (!mkdtemp(tmp_root)) {
    perror("mkdtemp");
    return 1;
  }
  const char *pg = getenv("FLOWLUA_TEST_PG");
  backend = pg && *pg ? pg : "sqlite";
  fprintf(stderr, "backend: %s\n", pg && *pg ? "postgresql" : "sqlite");
  RUN(test_link_read_back);
  RUN(test_printed);
  RUN(test_stray_subflow);
  RUN(test_parent_pruned);
  RUN(test_copied);
  if (on_sqlite()) {
    RUN(test_journalled_start);
    RUN(test_journal_replayed);
    RUN(test_migrate_from_v8);
  }
  char cmd[600];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp_root);
  if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmp_root);
  return check_summary();
}
