/*
 * run_string.c — the smallest embedding: a flow loaded from a string, run
 * once, its tasks' final states printed. Built against the installed
 * library by tests/system/embed/install_test.py, once with pkg-config and once
 * with find_package(flowlua).
 */
#include <stdio.h>

#include <flowlua.h>

static const char *const script =
    "local flow = require 'flowlua'\n"
    "local double = flow.task('double', function(x) return x * 2 end)\n"
    "local check = flow.task('check', function(y)\n"
    "  assert(y == 42, 'expected 42, got ' .. tostring(y))\n"
    "end)\n"
    "return flow.define('embedded', { params = { x = 21 } },\n"
    "  function(p) check(double(p.x)) end)\n";

int main(void) {
  printf("flowlua %s (header %s)\n", flowlua_version(), FLOWLUA_VERSION);
  flowlua_options opts;
  flowlua_options_init(&opts);
  opts.log_level = FLOWLUA_LOG_OFF;
  flowlua *rt = NULL;
  if (flowlua_new(&opts, &rt) != FLOWLUA_OK) return 1;

  /* A script that does not compile: a status and a message, no crash. */
  int rc = flowlua_load_string(rt, "return flow.define(", "=broken");
  printf("broken script: %s\n", flowlua_strstatus(rc));

  rc = flowlua_load_string(rt, script, "=embedded");
  flowlua_outcome out = FLOWLUA_INIT(flowlua_outcome);
  if (rc == FLOWLUA_OK) rc = flowlua_run(rt, NULL, &out);
  if (rc != FLOWLUA_OK) {
    fprintf(stderr, "run_string: %s\n", flowlua_errmsg(rt));
    flowlua_free(rt);
    return 1;
  }
  for (size_t i = 0; i < flowlua_task_count(rt); i++) {
    flowlua_task_info t = FLOWLUA_INIT(flowlua_task_info);
    if (flowlua_task_get(rt, i, &t) == FLOWLUA_OK)
      printf("%s %s\n", t.key, flowlua_task_state_name(t.state));
  }
  printf("flow %s\n", flowlua_flow_state_name(out.state));
  int code = out.state == FLOWLUA_FLOW_SUCCESS ? 0 : 1;
  flowlua_free(rt);
  return code;
}
