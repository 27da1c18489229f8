/*
 * two_threads.c — two runtimes in one process, one per thread, at the same
 * time: nothing is shared between them (flowlua keeps no global mutable
 * state; libcurl's one-time set-up is guarded). Each runs a flow of 201
 * task runs that sleep, encode and decode JSON, and counts its own state
 * changes; both must end Success with exactly their own counts. Run under
 * ThreadSanitizer in CI.
 */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdio.h>

#include <flowlua.h>

static const char *const script =
    "local flow = require 'flowlua'\n"
    "local work = flow.task('work', function(i)\n"
    "  flow.sleep(0.001 * (i % 3))\n"
    "  local t = flow.json.decode(flow.json.encode({ i = i, s = ('x'):rep(i) }))\n"
    "  return t.i\n"
    "end)\n"
    "local total = flow.task('total', function(xs)\n"
    "  local s = 0\n"
    "  for _, x in ipairs(xs) do s = s + x end\n"
    "  return s\n"
    "end)\n"
    "return flow.define('threaded', { params = { n = 200 } }, function(p)\n"
    "  local xs = {}\n"
    "  for i = 1, p.n do xs[i] = i end\n"
    "  total(work:map(xs))\n"
    "end)\n";

typedef struct worker {
  int id;
  int events;
  int state;  /* flowlua_flow_state at the end */
  size_t tasks;
  int status; /* FLOWLUA_OK, or why it failed */
} worker;

static void on_event(void *userdata, const flowlua_event *ev) {
  worker *w = userdata;
  (void)ev;
  w->events++;
}

static void *run_one(void *arg) {
  worker *w = arg;
  flowlua_options opts;
  flowlua_options_init(&opts);
  opts.log_level = FLOWLUA_LOG_OFF;
  opts.event_fn = on_event;
  opts.event_userdata = w;
  flowlua *rt = NULL;
  w->status = flowlua_new(&opts, &rt);
  if (w->status != FLOWLUA_OK) return NULL;
  flowlua_outcome out = FLOWLUA_INIT(flowlua_outcome);
  w->status = flowlua_load_string(rt, script, "=threaded");
  if (w->status == FLOWLUA_OK) w->status = flowlua_run(rt, NULL, &out);
  if (w->status == FLOWLUA_OK) {
    w->state = out.state;
    w->tasks = out.tasks;
  } else {
    fprintf(stderr, "thread %d: %s\n", w->id, flowlua_errmsg(rt));
  }
  flowlua_free(rt);
  return NULL;
}

int main(void) {
  worker w[2] = {{.id = 1}, {.id = 2}};
  pthread_t t[2];
  for (int i = 0; i < 2; i++)
    if (pthread_create(&t[i], NULL, run_one, &w[i]) != 0) return 1;
  for (int i = 0; i < 2; i++) pthread_join(t[i], NULL);
  int ok = 1;
  for (int i = 0; i < 2; i++) {
    /* 2 flow changes; map node and total: Running, Success (4); 200
       elements: Running, Success (400). */
    printf("thread %d: %s, %zu task runs, %d events\n", w[i].id,
           w[i].status == FLOWLUA_OK ? flowlua_flow_state_name(w[i].state)
                                     : flowlua_strstatus(w[i].status),
           w[i].tasks, w[i].events);
    ok = ok && w[i].status == FLOWLUA_OK &&
         w[i].state == FLOWLUA_FLOW_SUCCESS && w[i].events == 406;
  }
  return ok ? 0 : 1;
}
