/*
 * test_api.c — the public C API's error paths: NULL and invalid arguments,
 * a script that does not load, a flow that does not exist, stopping a
 * runtime that is not running, stepping without a start, a bad host
 * function name, and flowlua_free from inside a callback. Each returns its
 * status and leaves a message; none crashes (and ASan, in CI, sees no
 * leak and no use after free).
 */
#define _XOPEN_SOURCE 700 /* mkdtemp, nftw */
#include <ftw.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "flowlua.h"

static const char *const good =
    "local flow = require 'flowlua'\n"
    "local a = flow.task('a', function() return 1 end)\n"
    "local b = flow.task('b', function(x) return x + 1 end)\n"
    "return flow.define('good', function() b(a()) end)\n";

static flowlua *quiet_runtime(void) {
  flowlua_options o;
  flowlua_options_init(&o);
  o.log_level = FLOWLUA_LOG_OFF;
  flowlua *rt = NULL;
  CHECK_EQ_INT(flowlua_new(&o, &rt), FLOWLUA_OK);
  return rt;
}

static void test_null_and_invalid(void) {
  CHECK_EQ_INT(flowlua_new(NULL, NULL), FLOWLUA_EINVAL);
  flowlua_options o;
  flowlua_options_init(&o);
  o.log_level = 42;
  flowlua *rt = (flowlua *)&o; /* must be reset to NULL on failure */
  CHECK_EQ_INT(flowlua_new(&o, &rt), FLOWLUA_EINVAL);
  CHECK(rt == NULL);
  flowlua_free(NULL);
  CHECK_CONTAINS(flowlua_errmsg(NULL), "NULL");
  CHECK_EQ_INT(flowlua_load_file(NULL, "x.lua"), FLOWLUA_EINVAL);
  CHECK_EQ_INT(flowlua_load_string(NULL, good, NULL), FLOWLUA_EINVAL);
  CHECK_EQ_INT(flowlua_run(NULL, NULL, NULL), FLOWLUA_EINVAL);
  CHECK_EQ_INT(flowlua_check(NULL, NULL), FLOWLUA_EINVAL);
  CHECK_EQ_INT(flowlua_serve(NULL, NULL, 1, NULL), FLOWLUA_EINVAL);
  CHECK_EQ_INT(flowlua_step(NULL, NULL), FLOWLUA_EINVAL);
  CHECK_EQ_INT(flowlua_start(NULL, NULL), FLOWLUA_EINVAL);
  CHECK_EQ_INT(flowlua_fd(NULL), -1);
  CHECK_EQ_INT(flowlua_timeout_ms(NULL), -1);
  CHECK_EQ_INT(flowlua_set_param(NULL, "a", "b"), FLOWLUA_EINVAL);
  CHECK_EQ_INT(flowlua_flow_count(NULL), 0);
  CHECK(flowlua_flow_name(NULL, 0) == NULL);
  CHECK_EQ_INT(flowlua_task_count(NULL), 0);
  flowlua_stop(NULL);
  flowlua_cancel(NULL);
  CHECK(flowlua_lua_state(NULL) == NULL);
  CHECK_EQ_INT(flowlua_register_function(NULL, "f", NULL), FLOWLUA_EINVAL);
  char *text = (char *)"unchanged";
  CHECK_EQ_INT(flowlua_report_runs(NULL, NULL, 0, 0, &text), FLOWLUA_EINVAL);
  CHECK_EQ_STR(flowlua_strstatus(FLOWLUA_ENOFLOW), "no such flow");
}

static void test_bad_scripts_and_flows(void) {
  flowlua *rt = quiet_runtime();
  if (!rt) return;
  /* Nothing loaded yet. */
  CHECK_EQ_INT(flowlua_run(rt, NULL, NULL), FLOWLUA_ESTATE);
  CHECK_CONTAINS(flowlua_errmsg(rt), "no script loaded");
  CHECK_EQ_INT(flowlua_load_string(rt, "return flow.define(", "=broken"),
               FLOWLUA_ELOAD);
  CHECK_CONTAINS(flowlua_errmsg(rt), "broken");
  CHECK_EQ_INT(flowlua_load_file(rt, "/no/such/flow.lua"), FLOWLUA_ELOAD);
  CHECK_CONTAINS(flowlua_errmsg(rt), "/no/such/flow.lua");
  CHECK_EQ_INT(flowlua_load_string(rt, "return 42", "=not-a-flow"),
               FLOWLUA_ELOAD);
  CHECK_EQ_INT(flowlua_load_string(rt, good, "=good"), FLOWLUA_OK);
  flowlua_outcome out = FLOWLUA_INIT(flowlua_outcome);
  CHECK_EQ_INT(flowlua_run(rt, "nope", &out), FLOWLUA_ENOFLOW);
  CHECK_CONTAINS(flowlua_errmsg(rt), "no flow named 'nope'");
  CHECK_EQ_INT(flowlua_set_param(rt, "x", "1"), FLOWLUA_OK);
  CHECK_EQ_INT(flowlua_run(rt, NULL, &out), FLOWLUA_EPARAM);
  CHECK_CONTAINS(flowlua_errmsg(rt), "has no parameter 'x'");
  flowlua_clear_params(rt);
  /* Stopping a runtime that runs nothing: harmless; a run is not
     affected by stop. */
  flowlua_stop(rt);
  CHECK_EQ_INT(flowlua_run(rt, NULL, &out), FLOWLUA_OK);
  CHECK_EQ_INT(out.state, FLOWLUA_FLOW_SUCCESS);
  flowlua_reset_stop(rt);
  /* The host loop's calls out of order. */
  CHECK_EQ_INT(flowlua_step(rt, &out), 1); /* the last run has ended */
  CHECK_EQ_INT(flowlua_start(rt, "nope"), FLOWLUA_ENOFLOW);
  CHECK_EQ_INT(flowlua_register_function(rt, "not a name", NULL),
               FLOWLUA_EINVAL);
  CHECK_CONTAINS(flowlua_errmsg(rt), "not a Lua name");
  /* No history configured. */
  char *text = NULL;
  CHECK_EQ_INT(flowlua_report_run(rt, "last", 0, &text), FLOWLUA_ESTATE);
  CHECK(text == NULL);
  CHECK_EQ_INT(flowlua_resume(rt, NULL, "last", 0, NULL, &out), FLOWLUA_ESTATE);
  CHECK_CONTAINS(flowlua_errmsg(rt), "needs the run history");
  flowlua_free(rt);
}

static void test_step_without_start(void) {
  flowlua *rt = quiet_runtime();
  if (!rt) return;
  CHECK_EQ_INT(flowlua_step(rt, NULL), FLOWLUA_ESTATE);
  CHECK_CONTAINS(flowlua_errmsg(rt), "no run was started");
  CHECK_EQ_INT(flowlua_timeout_ms(rt), -1);
  CHECK(flowlua_fd(rt) >= 0);
  flowlua_free(rt);
}

/* The host frees the runtime from inside its own callback. */
typedef struct freeing_host {
  flowlua *rt;
  int events, freed;
} freeing_host;

static void free_on_first_event(void *userdata, const flowlua_event *ev) {
  freeing_host *h = userdata;
  (void)ev;
  h->events++;
  if (!h->freed) {
    h->freed = 1;
    flowlua_free(h->rt); /* deferred: the run is cancelled, then freed */
  }
}

static void test_free_during_callback(void) {
  freeing_host h = {NULL, 0, 0};
  flowlua_options o;
  flowlua_options_init(&o);
  o.log_level = FLOWLUA_LOG_OFF;
  o.event_fn = free_on_first_event;
  o.event_userdata = &h;
  CHECK_EQ_INT(flowlua_new(&o, &h.rt), FLOWLUA_OK);
  if (!h.rt) return;
  CHECK_EQ_INT(flowlua_load_string(h.rt, good, "=good"), FLOWLUA_OK);
  flowlua_outcome out = FLOWLUA_INIT(flowlua_outcome);
  int rc = flowlua_run(h.rt, NULL, &out); /* frees the runtime on return */
  CHECK(rc == FLOWLUA_OK);
  CHECK_EQ_INT(out.state, FLOWLUA_FLOW_CANCELLED);
  CHECK(h.freed == 1 && h.events >= 1);
}

/* flowlua_start_resume and flowlua_event.retry_delay, as the CLI's live
   status uses them: a run that fails after a task retried, then its resume
   driven by a poll() loop. */
static const char *const fails_once =
    "local flow = require 'flowlua'\n"
    "local flaky = flow.task('flaky', { retries = 1, retry_delay = 0.25 },\n"
    "  function() if flow.context().attempt == 1 then error('not yet') end\n"
    "  end)\n"
    "calls = 0\n"
    "local once = flow.task('once', function()\n"
    "  calls = calls + 1\n"
    "  if calls == 1 then error('the first run fails here') end\n"
    "end)\n"
    "return flow.define('fails_once', function() once():after(flaky()) end)\n";

typedef struct retry_seen {
  int retrying;
  double delay;
} retry_seen;

static void note_retry(void *userdata, const flowlua_event *ev) {
  retry_seen *seen = userdata;
  if (ev->task_state == FLOWLUA_TASK_RETRYING) {
    seen->retrying++;
    seen->delay = ev->retry_delay;
  } else if (ev->task && ev->retry_delay != 0) {
    seen->delay = -1; /* only a Retrying change carries a delay */
  }
}

static int remove_entry(const char *path, const struct stat *sb, int flag,
                        struct FTW *ftw) {
  (void)sb, (void)flag, (void)ftw;
  return remove(path);
}

static void test_start_resume(void) {
  CHECK_EQ_INT(flowlua_start_resume(NULL, NULL, "last", 0, NULL),
               FLOWLUA_EINVAL);
  char dir[] = "/tmp/flowlua-api-" MKDTEMP_SUFFIX;
  if (!mkdtemp(dir)) {
    CHECK(!"mkdtemp");
    return;
  }
  char state[64];
  snprintf(state, sizeof state, "%s/state.db", dir);
  retry_seen seen = {0, 0};
  flowlua_options o;
  flowlua_options_init(&o);
  o.log_level = FLOWLUA_LOG_OFF;
  o.state_path = state;
  o.event_fn = note_retry;
  o.event_userdata = &seen;
  flowlua *rt = NULL;
  CHECK_EQ_INT(flowlua_new(&o, &rt), FLOWLUA_OK);
  if (!rt) return;
  CHECK_EQ_INT(flowlua_load_string(rt, fails_once, "=fails_once"),
               FLOWLUA_OK);
  CHECK_EQ_INT(flowlua_start_resume(rt, NULL, NULL, 0, NULL), FLOWLUA_EINVAL);
  CHECK_CONTAINS(flowlua_errmsg(rt), "flowlua_start_resume: a run id");
  flowlua_outcome out = FLOWLUA_INIT(flowlua_outcome);
  CHECK_EQ_INT(flowlua_run(rt, NULL, &out), FLOWLUA_OK);
  CHECK_EQ_INT(out.state, FLOWLUA_FLOW_FAILED);
  CHECK_EQ_INT(seen.retrying, 1);
  CHECK_EQ_DBL(seen.delay, 0.25, 1e-9);

  CHECK_EQ_INT(flowlua_start_resume(rt, NULL, "last", 0, NULL), FLOWLUA_OK);
  CHECK_EQ_INT(flowlua_start_resume(rt, NULL, "last", 0, NULL),
               FLOWLUA_ESTATE); /* one run at a time */
  int rc;
  while ((rc = flowlua_step(rt, &out)) == 0) {
    struct pollfd p = {.fd = flowlua_fd(rt), .events = POLLIN};
    poll(&p, 1, flowlua_timeout_ms(rt));
  }
  CHECK_EQ_INT(rc, 1);
  CHECK_EQ_INT(out.state, FLOWLUA_FLOW_SUCCESS);
  CHECK_EQ_INT(seen.retrying, 1); /* flaky kept its result: not run again */
  flowlua_free(rt);
  nftw(dir, remove_entry, 8, FTW_DEPTH | FTW_PHYS);
}

static size_t count_of(const char *text, const char *what) {
  size_t n = 0;
  for (const char *p = text; p && (p = strstr(p, what)); p += strlen(what)) n++;
  return n;
}

/* flowlua_report_runs_page: pages that cover every run once, a state
   filter, and what is refused. */
static void test_runs_page(void) {
  char *text = (char *)"unchanged";
  flowlua_runs_query q = {.state = -1, .limit = 2};
  CHECK_EQ_INT(flowlua_report_runs_page(NULL, &q, &text), FLOWLUA_EINVAL);
  char dir[] = "/tmp/flowlua-api-" MKDTEMP_SUFFIX;
  if (!mkdtemp(dir)) {
    CHECK(!"mkdtemp");
    return;
  }
  char state[64];
  snprintf(state, sizeof state, "%s/state.db", dir);
  flowlua_options o;
  flowlua_options_init(&o);
  o.log_level = FLOWLUA_LOG_OFF;
  o.state_path = state;
  flowlua *rt = NULL;
  CHECK_EQ_INT(flowlua_new(&o, &rt), FLOWLUA_OK);
  if (!rt) return;
  CHECK_EQ_INT(flowlua_report_runs_page(rt, NULL, &text), FLOWLUA_EINVAL);
  CHECK_EQ_INT(flowlua_load_string(rt, good, "=good"), FLOWLUA_OK);
  for (int i = 0; i < 3; i++) {
    flowlua_outcome out = FLOWLUA_INIT(flowlua_outcome);
    CHECK_EQ_INT(flowlua_run(rt, NULL, &out), FLOWLUA_OK);
  }
  text = NULL;
  CHECK_EQ_INT(flowlua_report_runs_page(rt, &q, &text), FLOWLUA_OK);
  CHECK_EQ_INT((int)count_of(text, "\"id\":"), 2);
  const char *next = text ? strstr(text, "\"next_before\":\"") : NULL;
  CHECK(next != NULL);
  char before[64] = "";
  if (next) sscanf(next + 15, "%63[^\"]", before);
  flowlua_string_free(text);
  q.before = before;
  text = NULL;
  CHECK_EQ_INT(flowlua_report_runs_page(rt, &q, &text), FLOWLUA_OK);
  CHECK_EQ_INT((int)count_of(text, "\"id\":"), 1);
  CHECK_CONTAINS(text, "\"next_before\":null");
  flowlua_string_free(text);
  q = (flowlua_runs_query){.state = FLOWLUA_FLOW_FAILED};
  text = NULL;
  CHECK_EQ_INT(flowlua_report_runs_page(rt, &q, &text), FLOWLUA_OK);
  CHECK_EQ_STR(text, "{\"runs\":[],\"next_before\":null}\n");
  flowlua_string_free(text);
  q.state = FLOWLUA_FLOW_STATE_COUNT;
  CHECK_EQ_INT(flowlua_report_runs_page(rt, &q, &text), FLOWLUA_EINVAL);
  CHECK_CONTAINS(flowlua_errmsg(rt), "no flow state");
  q = (flowlua_runs_query){.state = -1, .before = "nope"};
  CHECK_EQ_INT(flowlua_report_runs_page(rt, &q, &text), FLOWLUA_EINVAL);
  CHECK_CONTAINS(flowlua_errmsg(rt), "no run 'nope'");
  flowlua_free(rt);
  nftw(dir, remove_entry, 8, FTW_DEPTH | FTW_PHYS);
}

/* flowlua_report_task_run: one task run's JSON with its state changes and
   log lines (both attempts of a retried task), and the refusals. */
static void test_report_task_run(void) {
  static const char *const logs =
      "local flow = require 'flowlua'\n"
      "local n = 0\n"
      "local t = flow.task('t', {retries = 1, retry_delay = 0}, function()\n"
      "  n = n + 1\n"
      "  flow.log.info('try %d <b>', n)\n"
      "  if n == 1 then error('first') end\n"
      "end)\n"
      "return flow.define('logs', function() t() end)\n";
  char *text = (char *)"unchanged";
  CHECK_EQ_INT(flowlua_report_task_run(NULL, "last", "t", &text),
               FLOWLUA_EINVAL);
  char dir[] = "/tmp/flowlua-api-" MKDTEMP_SUFFIX;
  if (!mkdtemp(dir)) {
    CHECK(!"mkdtemp");
    return;
  }
  char state[64];
  snprintf(state, sizeof state, "%s/state.db", dir);
  flowlua_options o;
  flowlua_options_init(&o);
  o.log_level = FLOWLUA_LOG_OFF; /* printed nothing; kept all the same */
  o.state_path = state;
  flowlua *rt = NULL;
  CHECK_EQ_INT(flowlua_new(&o, &rt), FLOWLUA_OK);
  if (!rt) return;
  CHECK_EQ_INT(flowlua_load_string(rt, logs, "=logs"), FLOWLUA_OK);
  flowlua_outcome out = FLOWLUA_INIT(flowlua_outcome);
  CHECK_EQ_INT(flowlua_run(rt, NULL, &out), FLOWLUA_OK);
  text = NULL;
  CHECK_EQ_INT(flowlua_report_task_run(rt, "last", "t", &text), FLOWLUA_OK);
  CHECK_CONTAINS(text, "{\"key\":\"t\",\"task\":\"t\",\"map_index\":0,"
                       "\"state\":\"Success\",\"attempts\":2,");
  CHECK_CONTAINS(text, "\"attempt\":1,\"level\":\"INFO\",\"line\":\"try 1 <b>\"}");
  CHECK_CONTAINS(text, "\"attempt\":2,\"level\":\"INFO\",\"line\":\"try 2 <b>\"}");
  CHECK_CONTAINS(text, "\"events\":[{\"seq\":1,");
  CHECK_CONTAINS(text, "\"state\":\"Retrying\",\"attempt\":1,\"error\":\"");
  CHECK_CONTAINS(text, "\"state\":\"Success\",\"attempt\":2,\"error\":null,"
                       "\"worker\":null}]}\n");
  CHECK(text && !strstr(text, "logs_dropped"));
  flowlua_string_free(text);
  text = (char *)"unchanged";
  CHECK_EQ_INT(flowlua_report_task_run(rt, "last", "nope", &text),
               FLOWLUA_EINVAL);
  CHECK(text == NULL);
  CHECK_CONTAINS(flowlua_errmsg(rt), "has no task run 'nope'");
  CHECK_EQ_INT(flowlua_report_task_run(rt, "ffffffff", "t", &text),
               FLOWLUA_EINVAL);
  CHECK_CONTAINS(flowlua_errmsg(rt), "ffffffff");
  CHECK_EQ_INT(flowlua_report_task_run(rt, "last", "", &text), FLOWLUA_EINVAL);
  CHECK_CONTAINS(flowlua_errmsg(rt), "a task key is required");
  flowlua_free(rt);
  nftw(dir, remove_entry, 8, FTW_DEPTH | FTW_PHYS);
}

/* flowlua_run_view_*: one run read in parts, and flowlua_run_mark_get;
   the runs page's time bounds. */
static void test_run_view(void) {
  char dir[] = "/tmp/flowlua-api-" MKDTEMP_SUFFIX;
  if (!mkdtemp(dir)) {
    CHECK(!"mkdtemp");
    return;
  }
  char state[64];
  snprintf(state, sizeof state, "%s/state.db", dir);
  flowlua_options o;
  flowlua_options_init(&o);
  o.log_level = FLOWLUA_LOG_OFF;
  o.state_path = state;
  flowlua *rt = NULL;
  CHECK_EQ_INT(flowlua_new(&o, &rt), FLOWLUA_OK);
  if (!rt) return;
  flowlua_run_view *v = (flowlua_run_view *)rt;
  CHECK_EQ_INT(flowlua_run_view_open(rt, "last", &v), FLOWLUA_EINVAL);
  CHECK(v == NULL);
  CHECK_EQ_INT(flowlua_load_string(rt,
      "local flow = require 'flowlua'\n"
      "local a = flow.task('a', function() return 1 end)\n"
      "local b = flow.task('b', function(x) error('b <broke>') end)\n"
      "local c = flow.task('c', function() return 3 end)\n"
      "return flow.define('three', function() b(a()); c() end)\n",
      "=three"), FLOWLUA_OK);
  flowlua_outcome out = FLOWLUA_INIT(flowlua_outcome);
  CHECK_EQ_INT(flowlua_run(rt, NULL, &out), FLOWLUA_OK);
  CHECK_EQ_INT(out.state, FLOWLUA_FLOW_FAILED);
  CHECK_EQ_INT(flowlua_run_view_open(rt, "last", &v), FLOWLUA_OK);
  if (!v) goto done;
  CHECK_EQ_STR(flowlua_run_view_id(v), out.run_id);
  CHECK_EQ_INT(flowlua_run_view_state(v), FLOWLUA_FLOW_FAILED);
  char *text = NULL;
  CHECK_EQ_INT(flowlua_run_view_summary(rt, v, &text), FLOWLUA_OK);
  CHECK_CONTAINS(text, "\"state\":\"Failed\"");
  CHECK_CONTAINS(text, "\"task_runs\":3,\"graph\":{\"tasks\":3,\"edges\":1}");
  CHECK(text && !strstr(text, "\"tasks\":["));
  flowlua_string_free(text);
  /* Paging: all three, then one from the second, then by state. */
  flowlua_tasks_query q = {.state = -1, .offset = 0, .limit = 10};
  CHECK_EQ_INT(flowlua_run_view_tasks(rt, v, &q, &text), FLOWLUA_OK);
  CHECK_EQ_INT((int)count_of(text, "\"key\":"), 3);
  CHECK_CONTAINS(text, "\"total\":3,\"offset\":0");
  flowlua_string_free(text);
  q = (flowlua_tasks_query){.state = -1, .offset = 1, .limit = 1};
  CHECK_EQ_INT(flowlua_run_view_tasks(rt, v, &q, &text), FLOWLUA_OK);
  CHECK_EQ_INT((int)count_of(text, "\"key\":"), 1);
  CHECK_CONTAINS(text, "\"key\":\"b\"");
  flowlua_string_free(text);
  q = (flowlua_tasks_query){.state = FLOWLUA_TASK_FAILED, .limit = 10};
  CHECK_EQ_INT(flowlua_run_view_tasks(rt, v, &q, &text), FLOWLUA_OK);
  CHECK_CONTAINS(text, "b <broke>");
  CHECK_CONTAINS(text, "\"total\":1");
  flowlua_string_free(text);
  q.state = FLOWLUA_TASK_STATE_COUNT;
  text = (char *)"unchanged";
  CHECK_EQ_INT(flowlua_run_view_tasks(rt, v, &q, &text), FLOWLUA_EINVAL);
  CHECK(text == NULL);
  CHECK_CONTAINS(flowlua_errmsg(rt), "no task state");
  /* The graph: nodes with states and the one edge; summed by layer past
     max_nodes. */
  CHECK_EQ_INT(flowlua_run_view_graph(rt, v, 100, &text), FLOWLUA_OK);
  CHECK_CONTAINS(text, "\"aggregated\":false");
  CHECK_CONTAINS(text, "{\"key\":\"b\",\"state\":\"Failed\",\"layer\":1");
  CHECK_CONTAINS(text, "\"edges\":[[0,1,0]]");
  flowlua_string_free(text);
  CHECK_EQ_INT(flowlua_run_view_graph(rt, v, 2, &text), FLOWLUA_OK);
  CHECK_CONTAINS(text, "\"by_layer\":[{\"tasks\":2,\"states\":{\"Success\":2}},"
                       "{\"tasks\":1,\"states\":{\"Failed\":1}}]");
  flowlua_string_free(text);
  /* The timeline: one bar per attempt, rows paged. */
  CHECK_EQ_INT(flowlua_run_view_timeline(rt, v, 1, 1, &text), FLOWLUA_OK);
  CHECK_CONTAINS(text, "\"rows_total\":3,\"offset\":1,\"attempts\":3");
  CHECK_EQ_INT((int)count_of(text, "\"key\":"), 1);
  CHECK_CONTAINS(text, "\"state\":\"Failed\",\"bars\":[[");
  flowlua_string_free(text);
  /* The mark: an ended run's, and none for an id that is no run. */
  flowlua_run_mark m = FLOWLUA_INIT(flowlua_run_mark);
  CHECK_EQ_INT(flowlua_run_mark_get(rt, out.run_id, &m), FLOWLUA_OK);
  CHECK_EQ_INT(m.state, FLOWLUA_FLOW_FAILED);
  CHECK(m.ended_at > 0);
  CHECK_EQ_INT(flowlua_run_mark_get(rt, "nope", &m), FLOWLUA_EINVAL);
  CHECK_CONTAINS(flowlua_errmsg(rt), "no run 'nope'");
  flowlua_run_mark bad = {.size = 1};
  CHECK_EQ_INT(flowlua_run_mark_get(rt, out.run_id, &bad), FLOWLUA_EINVAL);
  /* Time bounds of the runs page: the run started before now, not after. */
  flowlua_runs_query rq = {.state = -1, .until = 4102444800.0 /* 2100 */};
  CHECK_EQ_INT(flowlua_report_runs_page(rt, &rq, &text), FLOWLUA_OK);
  CHECK_EQ_INT((int)count_of(text, "\"id\":"), 1);
  flowlua_string_free(text);
  rq = (flowlua_runs_query){.state = -1, .since = 4102444800.0};
  CHECK_EQ_INT(flowlua_report_runs_page(rt, &rq, &text), FLOWLUA_OK);
  CHECK_EQ_STR(text, "{\"runs\":[],\"next_before\":null}\n");
  flowlua_string_free(text);
  /* A second handle keeps the history open and reads through it, as the
     web UI does; before any history exists that is refused. */
  flowlua_options o2;
  flowlua_options_init(&o2);
  o2.log_level = FLOWLUA_LOG_OFF;
  o2.state_path = state;
  flowlua *reader = NULL;
  CHECK_EQ_INT(flowlua_new(&o2, &reader), FLOWLUA_OK);
  if (reader) {
    CHECK_EQ_INT(flowlua_history_keep_open(reader), FLOWLUA_OK);
    CHECK_EQ_INT(flowlua_history_keep_open(reader), FLOWLUA_OK);
    m = FLOWLUA_INIT(flowlua_run_mark);
    CHECK_EQ_INT(flowlua_run_mark_get(reader, out.run_id, &m), FLOWLUA_OK);
    CHECK_EQ_INT(m.state, FLOWLUA_FLOW_FAILED);
    flowlua_free(reader);
  }
  char missing[80];
  snprintf(missing, sizeof missing, "%s/none.db", dir);
  o2.state_path = missing;
  reader = NULL;
  CHECK_EQ_INT(flowlua_new(&o2, &reader), FLOWLUA_OK);
  if (reader) {
    CHECK_EQ_INT(flowlua_history_keep_open(reader), FLOWLUA_EINVAL);
    CHECK_CONTAINS(flowlua_errmsg(reader), "no run history");
    flowlua_free(reader);
  }
  CHECK_EQ_INT(flowlua_history_keep_open(NULL), FLOWLUA_EINVAL);
done:
  flowlua_run_view_free(v);
  flowlua_run_view_free(NULL);
  flowlua_free(rt);
  nftw(dir, remove_entry, 8, FTW_DEPTH | FTW_PHYS);
}

/* The names and numbers of the public header agree with the library. */
static void test_names_and_version(void) {
  CHECK_EQ_INT(flowlua_version_number(), FLOWLUA_VERSION_NUMBER);
  CHECK_EQ_STR(flowlua_version(), FLOWLUA_VERSION);
  CHECK_EQ_STR(flowlua_status_name(FLOWLUA_OK), "FLOWLUA_OK");
  CHECK_EQ_STR(flowlua_status_name(FLOWLUA_ENOFLOW), "FLOWLUA_ENOFLOW");
  CHECK_EQ_STR(flowlua_status_name(FLOWLUA_EIO), "FLOWLUA_EIO");
  CHECK_EQ_STR(flowlua_status_name(-999), "unknown");
  CHECK_EQ_STR(flowlua_task_state_name(FLOWLUA_TASK_TIMED_OUT), "TimedOut");
  CHECK_EQ_STR(flowlua_flow_state_name(FLOWLUA_FLOW_CRASHED), "Crashed");
  CHECK_EQ_STR(flowlua_flow_state_name(99), "?");
  CHECK_EQ_INT(flowlua_log_level_parse("debug"), FLOWLUA_LOG_DEBUG);
  CHECK_EQ_INT(flowlua_log_level_parse("warn"), FLOWLUA_LOG_WARN);
  CHECK_EQ_INT(flowlua_log_level_parse("warning"), FLOWLUA_LOG_WARN);
  CHECK_EQ_INT(flowlua_log_level_parse("loud"), -1);
  CHECK_EQ_INT(flowlua_log_level_parse(NULL), -1);
}

/* A caller's struct of a size the library does not know is refused before
   anything is written to it: a program built against another flowlua.h
   gets an error, not a write past the end of its struct. */
static void test_struct_sizes(void) {
  flowlua_options o;
  flowlua_options_init(&o);
  CHECK_EQ_INT((long long)o.size, (long long)sizeof o);
  flowlua_options bad;
  flowlua_options_init_size(&bad, sizeof bad - 8); /* an older layout */
  CHECK_EQ_INT((long long)bad.size, 0);
  flowlua *rt = NULL;
  CHECK_EQ_INT(flowlua_new(&bad, &rt), FLOWLUA_EINVAL);
  CHECK(rt == NULL);
  o.size = 0; /* set by hand, without flowlua_options_init */
  CHECK_EQ_INT(flowlua_new(&o, &rt), FLOWLUA_EINVAL);

  rt = quiet_runtime();
  if (!rt) return;
  CHECK_EQ_INT(flowlua_load_string(rt, good, "=good"), FLOWLUA_OK);
  flowlua_outcome out = {.size = sizeof out + 16, .state = 77};
  CHECK_EQ_INT(flowlua_run(rt, NULL, &out), FLOWLUA_EINVAL);
  CHECK_CONTAINS(flowlua_errmsg(rt), "flowlua_run: out->size is");
  CHECK_CONTAINS(flowlua_errmsg(rt), "FLOWLUA_INIT");
  CHECK_EQ_INT(out.state, 77); /* untouched */
  CHECK_EQ_INT(flowlua_task_count(rt), 0); /* and nothing ran */
  out = FLOWLUA_INIT(flowlua_outcome);
  CHECK_EQ_INT(flowlua_run(rt, NULL, &out), FLOWLUA_OK);
  CHECK_EQ_INT((long long)out.size, (long long)sizeof out);
  CHECK_EQ_INT(out.state, FLOWLUA_FLOW_SUCCESS);
  flowlua_task_info info = {.size = 3};
  CHECK_EQ_INT(flowlua_task_get(rt, 0, &info), FLOWLUA_EINVAL);
  CHECK_CONTAINS(flowlua_errmsg(rt), "flowlua_task_get: out->size is 3");
  info = FLOWLUA_INIT(flowlua_task_info);
  CHECK_EQ_INT(flowlua_task_get(rt, 0, &info), FLOWLUA_OK);
  CHECK_EQ_STR(info.key, "a");
  flowlua_outcome step_out = {.size = 1};
  CHECK_EQ_INT(flowlua_step(rt, &step_out), FLOWLUA_EINVAL);
  flowlua_serve_result res = {.size = 0};
  CHECK_EQ_INT(flowlua_serve(rt, NULL, 1, &res), FLOWLUA_EINVAL);
  CHECK_CONTAINS(flowlua_errmsg(rt), "flowlua_serve: out->size is 0");
  /* The report's file is required, named in the message when missing. */
  CHECK_EQ_INT(flowlua_report_html_write(rt, "last", NULL), FLOWLUA_EINVAL);
  CHECK_CONTAINS(flowlua_errmsg(rt), "flowlua_report_html_write: a path is required");
  CHECK_EQ_INT(flowlua_report_html_write(rt, "last", ""), FLOWLUA_EINVAL);
  CHECK_EQ_INT(flowlua_report_html_write(NULL, "last", "x.html"), FLOWLUA_EINVAL);
  flowlua_options_init_size(NULL, sizeof o); /* harmless */
  /* Strings the API hands out go back through its own free. */
  char *dot = NULL;
  CHECK_EQ_INT(flowlua_graph(rt, NULL, "dot", NULL, &dot), FLOWLUA_OK);
  CHECK(dot && strstr(dot, "digraph"));
  flowlua_string_free(dot);
  flowlua_string_free(NULL);
  flowlua_free(rt);
}

int main(void) {
  RUN(test_null_and_invalid);
  RUN(test_bad_scripts_and_flows);
  RUN(test_step_without_start);
  RUN(test_free_during_callback);
  RUN(test_start_resume);
  RUN(test_runs_page);
  RUN(test_run_view);
  RUN(test_report_task_run);
  RUN(test_names_and_version);
  RUN(test_struct_sizes);
  return check_summary();
}
