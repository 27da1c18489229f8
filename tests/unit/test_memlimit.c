/*
 * test_memlimit.c — the memory limit through the C API: its option's
 * bounds, the failed task's message, the memory given back after it, and
 * the counting allocator's charges and sizes for people.
 */
#include <stdlib.h>

#include "check.h"
#include "flowlua.h"
#include "engine.h"

#define MiB ((size_t)1 << 20)

/* A task that keeps 256 KiB strings until the heap is full, and one that
   needs a little once it has failed. */
static const char *const hog_flow =
    "local flow = require 'flowlua'\n"
    "local hog = flow.task('hog', function()\n"
    "  local kept = {}\n"
    "  for i = 1, math.huge do\n"
    "    kept[i] = string.rep(string.format('%08d', i), 32768)\n"
    "  end\n"
    "end)\n"
    "local after = flow.task('after', { trigger = 'all_done' }, function()\n"
    "  return #string.rep('z', 1 << 20)\n"
    "end)\n"
    "return flow.define('hog', {}, function() after(hog()) end)\n";

static flowlua *new_runtime(size_t limit, int *status) {
  flowlua_options o;
  flowlua_options_init(&o);
  o.log_level = FLOWLUA_LOG_OFF;
  o.memory_limit = limit;
  flowlua *rt = NULL;
  *status = flowlua_new(&o, &rt);
  return rt;
}

static void test_option_bounds(void) {
  flowlua_options o;
  flowlua_options_init(&o);
  CHECK_EQ_INT((long long)o.memory_limit, 0); /* no limit by default */
  int status;
  flowlua *rt = new_runtime(MiB - 1, &status);
  CHECK_EQ_INT(status, FLOWLUA_EINVAL);
  CHECK(rt == NULL);
  rt = new_runtime(MiB, &status);
  CHECK_EQ_INT(status, FLOWLUA_OK);
  CHECK(rt != NULL);
  flowlua_free(rt);
}

static void test_task_past_the_limit(void) {
  int status;
  flowlua *rt = new_runtime(8 * MiB, &status);
  CHECK_EQ_INT(status, FLOWLUA_OK);
  if (!rt) return;
  CHECK_EQ_INT(flowlua_load_string(rt, hog_flow, "=hog"), FLOWLUA_OK);
  flowlua_outcome out = FLOWLUA_INIT(flowlua_outcome);
  CHECK_EQ_INT(flowlua_run(rt, NULL, &out), FLOWLUA_OK);
  CHECK_EQ_INT(out.state, FLOWLUA_FLOW_FAILED);
  CHECK_EQ_INT((long long)out.by_state[FLOWLUA_TASK_FAILED], 1);
  CHECK_EQ_INT((long long)out.by_state[FLOWLUA_TASK_SUCCESS], 1);
  flowlua_task_info hog = FLOWLUA_INIT(flowlua_task_info);
  flowlua_task_info after = FLOWLUA_INIT(flowlua_task_info);
  CHECK_EQ_INT(flowlua_task_get(rt, 0, &hog), FLOWLUA_OK);
  CHECK_EQ_INT(flowlua_task_get(rt, 1, &after), FLOWLUA_OK);
  CHECK_EQ_STR(hog.key, "hog");
  CHECK_CONTAINS(hog.error, "memory limit of 8 MiB reached in task 'hog'");
  CHECK_CONTAINS(hog.error, "stack traceback"); /* where it allocated */
  CHECK_EQ_STR(after.key, "after");
  CHECK_EQ_INT(after.state, FLOWLUA_TASK_SUCCESS);
  /* What the failed task held was freed at once: the heap went to the
     limit, and is far below it now. */
  CHECK(rt->mem.peak >= 7 * MiB);
  CHECK(rt->mem.used < 4 * MiB);
  CHECK(!rt->mem.grace);
  flowlua_free(rt);
}

static void test_load_past_the_limit(void) {
  int status;
  flowlua *rt = new_runtime(2 * MiB, &status);
  if (!rt) {
    CHECK_EQ_INT(status, FLOWLUA_OK);
    return;
  }
  CHECK_EQ_INT(flowlua_load_string(rt, "local t = {} for i = 1, 1e9 do "
                                       "t[i] = ('x'):rep(1000) .. i end",
                                   "=big"),
               FLOWLUA_ELOAD);
  CHECK_CONTAINS(flowlua_errmsg(rt),
                 "memory limit of 2 MiB reached while loading the script");
  CHECK_CONTAINS(flowlua_errmsg(rt), "not enough memory");
  flowlua_free(rt);
}

static void test_charges_and_sizes(void) {
  fl_mem m = {.limit = 4 * MiB, .used = 3 * MiB};
  CHECK_EQ_INT(fl_mem_charge(&m, MiB), 0);
  CHECK_EQ_INT((long long)m.used, (long long)(4 * MiB));
  CHECK_EQ_INT(fl_mem_charge(&m, 1), -1); /* past it: refused, counted hit */
  CHECK_EQ_INT(fl_mem_take_hit(&m), 1);
  CHECK_EQ_INT(fl_mem_take_hit(&m), 0);
  fl_mem_grace(&m, 1);
  CHECK_EQ_INT(fl_mem_charge(&m, MiB), 0); /* within the grace */
  CHECK_EQ_INT(fl_mem_charge(&m, 1), -1);
  fl_mem_grace(&m, 0);
  fl_mem_uncharge(&m, 2 * MiB);
  CHECK_EQ_INT((long long)m.used, (long long)(3 * MiB));
  CHECK_EQ_INT(fl_mem_charge(&m, SIZE_MAX), -1); /* no wrap-around */

  char buf[32];
  CHECK_EQ_STR(fl_mem_format(512, buf, sizeof buf), "512 bytes");
  CHECK_EQ_STR(fl_mem_format(900 * 1024, buf, sizeof buf), "900 KiB");
  CHECK_EQ_STR(fl_mem_format(256 * MiB, buf, sizeof buf), "256 MiB");
  CHECK_EQ_STR(fl_mem_format(3 * MiB / 2 * 1024, buf, sizeof buf), "1.5 GiB");
}

int main(void) {
  RUN(test_option_bounds);
  RUN(test_task_past_the_limit);
  RUN(test_load_past_the_limit);
  RUN(test_charges_and_sizes);
  return check_summary();
}
