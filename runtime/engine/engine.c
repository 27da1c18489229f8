/*
 * engine.c — the runtime handle's lifetime on the engine side: forgetting
 * a run, the guard around public calls that may run the host's callbacks
 * (a flowlua_free from one is done when the outermost call returns), the
 * outcome of a run, and tearing the handle down.
 *
 * Nothing here loads a script or opens a Lua module: that is the API's
 * (runtime/api), which builds the handle and calls down into this.
 */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>

#include <lua.h>

#include "engine.h"
#include "pool.h"
#include "queue.h"
#include "params.h"
#include "record.h"
#include "resume.h"
#include "store.h"

/* ---- a run's leftovers --------------------------------------------------- */

void fl_forget_tasks(flowlua *rt) {
  for (size_t i = 0; i < rt->n_task_keys; i++) free(rt->task_keys[i]);
  free(rt->task_keys);
  free(rt->task_runs);
  rt->task_keys = NULL;
  rt->task_runs = NULL;
  rt->n_task_keys = 0;
}

/* Drops the last run and graph (they borrow from the loaded script). */
void fl_forget_run(flowlua *rt) {
  fl_forget_tasks(rt);
  if (rt->sched && rt->sched->active)
    rt->sched->orphan = 1; /* still going: freed once it has ended */
  else
    fl_sched_free(rt, rt->sched);
  rt->sched = NULL;
  fl_sched_collect(rt);
  fl_graph_free(rt, rt->graph);
  rt->graph = NULL;
}

/* ---- public calls and tear-down ------------------------------------------ */

/* Calls that may run the host's callbacks count themselves in rt->busy:
   a flowlua_free from inside a callback only asks, and the outermost call
   frees the runtime as it returns (it touches nothing after that). */
int fl_api_leave(flowlua *rt, int rc) {
  if (--rt->busy == 0 && rt->free_requested) fl_engine_free(rt);
  return rc;
}

void fl_engine_free(flowlua *rt) {
  fl_forget_run(rt);
  while (rt->active) { /* runs a host left going: their coroutines first */
    fl_sched *s = rt->active;
    rt->active = s->next_active;
    fl_sched_free(rt, s);
  }
  fl_resume_forget(rt);
  fl_queue_free(rt->queue); /* after the runs: their jobs were given up */
  rt->queue = NULL;
  fl_pool_free(rt->pool);
  rt->pool = NULL;
  fl_record_close(rt); /* after the runs: it ends the ones left open */
  fl_store_close(rt->history);
  rt->history = NULL;
  lua_close(rt->L); /* frees the requests Lua still held */
  fl_mem_release(&rt->mem);
  if (rt->http_ready) fl_http_close(&rt->http);
  fl_loop_close(&rt->loop);
  fl_logger_free(&rt->log);
  fl_task_gate_free(rt);
  fl_params_clear(rt);
  fl_buf_free(&rt->err);
  free(rt->script_name);
  free(rt->script_path);
  free(rt->worker_program);
  free(rt->state_path);
  free(rt->state_name);
  free(rt);
}

