/*
 * events.c — a host that gives flows a C function and watches every state
 * change: flow.add(a, b) is implemented here, and the event callback prints
 * each change of the run and of its tasks. Built against the installed
 * library by tests/system/embed/install_test.py.
 */
#include <stdio.h>

#include <flowlua.h>
#include <lauxlib.h>
#include <lua.h>

/* flow.add(a, b) -> a + b, in the Lua C API's conventions. */
static int host_add(lua_State *L) {
  lua_Integer a = luaL_checkinteger(L, 1), b = luaL_checkinteger(L, 2);
  lua_pushinteger(L, a + b);
  return 1;
}

static void on_event(void *userdata, const flowlua_event *ev) {
  int *count = userdata;
  ++*count;
  if (ev->task)
    printf("task %s %s %d\n", ev->task, flowlua_task_state_name(ev->task_state),
           ev->attempt);
  else
    printf("flow %s %s\n", ev->flow, flowlua_flow_state_name(ev->flow_state));
}

static const char *const script =
    "local flow = require 'flowlua'\n"
    "local sum = flow.task('sum', function() return flow.add(2, 3) end)\n"
    "local show = flow.task('show', function(n)\n"
    "  assert(n == 5, 'expected 5, got ' .. tostring(n))\n"
    "end)\n"
    "return flow.define('events', function() show(sum()) end)\n";

int main(void) {
  int events = 0;
  flowlua_options opts;
  flowlua_options_init(&opts);
  opts.log_level = FLOWLUA_LOG_OFF;
  opts.event_fn = on_event;
  opts.event_userdata = &events;
  flowlua *rt = NULL;
  if (flowlua_new(&opts, &rt) != FLOWLUA_OK) return 1;
  if (flowlua_register_function(rt, "task", host_add) == FLOWLUA_EINVAL)
    printf("refused: %s\n", flowlua_errmsg(rt));
  int rc = flowlua_register_function(rt, "add", host_add);
  if (rc == FLOWLUA_OK) rc = flowlua_load_string(rt, script, "=events");
  flowlua_outcome out = FLOWLUA_INIT(flowlua_outcome);
  if (rc == FLOWLUA_OK) rc = flowlua_run(rt, NULL, &out);
  if (rc != FLOWLUA_OK) {
    fprintf(stderr, "events: %s\n", flowlua_errmsg(rt));
    flowlua_free(rt);
    return 1;
  }
  printf("%d events\n", events);
  flowlua_free(rt);
  return out.state == FLOWLUA_FLOW_SUCCESS ? 0 : 1;
}
