/*
 * reentry.c — public calls that change the runtime, made from inside a run
 * of that same runtime (from a host function the task calls, and from the
 * event callback), are refused with FLOWLUA_ESTATE and a message naming the
 * call; the outer run goes on and ends Success with all its tasks. Calls
 * allowed during a run (flowlua_task_count, flowlua_errmsg, version) work.
 * (issue 16, item 18)
 */
#include <stdio.h>
#include <string.h>

#include <flowlua.h>

static flowlua *g_rt;
static int g_failures;
static int g_host_calls, g_event_checks;

static const char *const script =
    "local flow = require 'flowlua'\n"
    "local a = flow.task('a', function() flow.reenter(); return 1 end)\n"
    "local b = flow.task('b', function(x) return x + 1 end)\n"
    "return flow.define('outer', function() b(a()) end)\n";

static void expect_refused(const char *call, int rc) {
  const char *msg = flowlua_errmsg(g_rt);
  char want[160];
  snprintf(want, sizeof want, "%s called from inside a run of the same runtime",
           call);
  if (rc != FLOWLUA_ESTATE || !msg || !strstr(msg, want)) {
    fprintf(stderr, "reentry: %s from inside the run returned %s (%d), "
                    "message \"%s\"; expected FLOWLUA_ESTATE and \"%s\"\n",
            call, flowlua_status_name(rc), rc, msg ? msg : "(null)", want);
    g_failures++;
  }
}

/* Every call that would change what the run uses. */
static void try_all_changing_calls(void) {
  flowlua_outcome out = FLOWLUA_INIT(flowlua_outcome);
  char *text = NULL;
  expect_refused("flowlua_load_string",
                 flowlua_load_string(g_rt, "return 1", "=inner"));
  expect_refused("flowlua_load_file", flowlua_load_file(g_rt, "/dev/null"));
  expect_refused("flowlua_check", flowlua_check(g_rt, NULL));
  expect_refused("flowlua_run", flowlua_run(g_rt, NULL, &out));
  expect_refused("flowlua_resume", flowlua_resume(g_rt, NULL, "last", 0, NULL, &out));
  expect_refused("flowlua_start", flowlua_start(g_rt, NULL));
  expect_refused("flowlua_start_resume",
                 flowlua_start_resume(g_rt, NULL, "last", 0, NULL));
  expect_refused("flowlua_step", flowlua_step(g_rt, &out));
  expect_refused("flowlua_serve", flowlua_serve(g_rt, NULL, 1, NULL));
  expect_refused("flowlua_graph", flowlua_graph(g_rt, NULL, "dot", NULL, &text));
  expect_refused("flowlua_set_param", flowlua_set_param(g_rt, "x", "1"));
  expect_refused("flowlua_register_function",
                 flowlua_register_function(g_rt, "other", NULL));
  if (text) {
    fprintf(stderr, "reentry: flowlua_graph returned text while refused\n");
    g_failures++;
  }
  /* Allowed: reading the run's task table, and the version. */
  if (flowlua_task_count(g_rt) != 2 || !flowlua_version()) {
    fprintf(stderr, "reentry: flowlua_task_count inside the run gave %zu, not 2\n",
            flowlua_task_count(g_rt));
    g_failures++;
  }
}

static int host_reenter(struct lua_State *L) {
  (void)L;
  g_host_calls++;
  try_all_changing_calls();
  return 0;
}

static void on_event(void *userdata, const flowlua_event *ev) {
  (void)userdata;
  if (ev->task && strcmp(ev->task, "b") == 0 && ev->task_state == FLOWLUA_TASK_SUCCESS) {
    g_event_checks++;
    try_all_changing_calls();
  }
}

int main(void) {
  flowlua_options opts;
  flowlua_options_init(&opts);
  opts.log_level = FLOWLUA_LOG_OFF;
  opts.event_fn = on_event;
  if (flowlua_new(&opts, &g_rt) != FLOWLUA_OK) return 1;
  if (flowlua_register_function(g_rt, "reenter", host_reenter) != FLOWLUA_OK ||
      flowlua_load_string(g_rt, script, "=reentry") != FLOWLUA_OK) {
    fprintf(stderr, "reentry: setup failed: %s\n", flowlua_errmsg(g_rt));
    return 1;
  }
  flowlua_outcome out = FLOWLUA_INIT(flowlua_outcome);
  int rc = flowlua_run(g_rt, NULL, &out);
  if (rc != FLOWLUA_OK || out.state != FLOWLUA_FLOW_SUCCESS || out.tasks != 2 ||
      out.by_state[FLOWLUA_TASK_SUCCESS] != 2) {
    fprintf(stderr, "reentry: the outer run returned %s, state %s, %zu task "
                    "run(s), %zu Success; expected OK, Success, 2, 2 (%s)\n",
            flowlua_status_name(rc), flowlua_flow_state_name(out.state),
            out.tasks, out.by_state[FLOWLUA_TASK_SUCCESS], flowlua_errmsg(g_rt));
    g_failures++;
  }
  if (g_host_calls != 1 || g_event_checks != 1) {
    fprintf(stderr, "reentry: the host function ran %d time(s), the event "
                    "check %d; expected 1 and 1\n", g_host_calls, g_event_checks);
    g_failures++;
  }
  /* After the run, the same calls work again. */
  if (flowlua_check(g_rt, NULL) != FLOWLUA_OK ||
      flowlua_load_string(g_rt, script, "=again") != FLOWLUA_OK) {
    fprintf(stderr, "reentry: calls after the run failed: %s\n", flowlua_errmsg(g_rt));
    g_failures++;
  }
  flowlua_free(g_rt);
  printf("reentry: %s\n", g_failures ? "FAILED" : "ok");
  return g_failures ? 1 : 0;
}
