/*
 * runtime.c — the public API (include/flowlua.h) of the runtime handle:
 * options, creating and freeing it, its error message, stop and cancel,
 * params, and running, checking or resuming a flow.
 *
 * Every call that runs Lua does so in protected mode (runtime/engine), so
 * an error — even out of memory — comes back as a status code and a
 * message on the handle; the library never calls exit() or abort() and
 * never lets a longjmp escape.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include "api.h"
#include "lflowlua.h"
#include "params.h"

/* ---- lifecycle ----------------------------------------------------------- */

const char *flowlua_errmsg(const flowlua *rt) {
  if (!rt) return "no runtime (NULL handle)";
  return rt->err.data ? rt->err.data : "";
}

void flowlua_options_init_size(flowlua_options *opts, size_t size) {
  if (!opts || size != sizeof *opts) {
    /* A struct of another layout: leave it unusable (size 0), so that
       flowlua_new refuses it rather than read past its end. */
    if (opts && size >= sizeof opts->size) opts->size = 0;
    return;
  }
  *opts = (flowlua_options){.size = sizeof *opts,
                            .concurrency = 0,
                            .log_level = FLOWLUA_LOG_INFO,
                            .log_format = FLOWLUA_LOG_TEXT,
                            .log_fn = NULL,
                            .log_userdata = NULL,
                            .state_path = NULL,
                            .memory_limit = 0,
                            .workers = 0,
                            .worker_program = NULL,
                            .retention = 0};
}

static int valid_options(const flowlua_options *o) {
  return o->size == sizeof *o && o->concurrency >= 0 && o->workers >= -1 &&
         o->retention >= 0 &&
         (o->memory_limit == 0 || o->memory_limit >= FL_MEM_MIN_LIMIT) &&
         o->log_level >= FLOWLUA_LOG_DEBUG &&
         o->log_level <= FLOWLUA_LOG_OFF &&
         (o->log_format == FLOWLUA_LOG_TEXT || o->log_format == FLOWLUA_LOG_JSON);
}

/* Opens the standard libraries (io's files close-on-exec) and makes `require "flowlua"` work. */
static int open_libraries(lua_State *L) {
  luaL_openlibs(L);
  fl_open_io_cloexec(L); /* files the script opens: not for its children */
  lua_getglobal(L, "package");
  lua_getfield(L, -1, "preload");
  lua_pushcfunction(L, luaopen_flowlua);
  lua_setfield(L, -2, "flowlua");
  return 0;
}

int flowlua_new(const flowlua_options *opts, flowlua **out) {
  if (!out) return FLOWLUA_EINVAL;
  *out = NULL;
  flowlua_options defaults;
  flowlua_options_init(&defaults);
  if (!opts) opts = &defaults;
  if (!valid_options(opts)) return FLOWLUA_EINVAL;

  flowlua *rt = calloc(1, sizeof *rt);
  if (!rt) return FLOWLUA_ENOMEM;
  rt->opts = *opts;
  rt->flows_ref = LUA_NOREF;
  if (opts->state_path && !(rt->state_path = strdup(opts->state_path))) {
    free(rt);
    return FLOWLUA_ENOMEM;
  }
  rt->opts.state_path = rt->state_path;
  if (opts->state_path && !(rt->state_name = fl_store_display_name(opts->state_path))) {
    free(rt->state_path);
    free(rt);
    return FLOWLUA_ENOMEM;
  }
  const char *program = opts->worker_program ? opts->worker_program
                                             : getenv("FLOWLUA_WORKER_PROGRAM");
  if (program && *program && !(rt->worker_program = strdup(program))) {
    free(rt->state_path);
    free(rt->state_name);
    free(rt);
    return FLOWLUA_ENOMEM;
  }
  rt->opts.worker_program = rt->worker_program;
  rt->rng = fl_seed_random();
  if (fl_task_gate_init(rt) != 0) {
    free(rt->worker_program);
    free(rt->state_path);
    free(rt->state_name);
    free(rt);
    return FLOWLUA_ENOMEM;
  }
  fl_logger_init(&rt->log, opts->log_level, opts->log_format, opts->log_fn,
                 opts->log_userdata);
  if (fl_loop_init(&rt->loop) != 0) goto fail_loop;
  rt->L = luaL_newstate();
  if (!rt->L) goto fail_lua;
  /* Counted from the start: the libraries and every script count. */
  if (fl_mem_install(&rt->mem, rt->L, opts->memory_limit) != 0) goto fail_libs;
  *(flowlua **)lua_getextraspace(rt->L) = rt;
  lua_pushcfunction(rt->L, open_libraries);
  if (lua_pcall(rt->L, 0, 0, 0) != LUA_OK) goto fail_libs;
  fl_hook_install(rt->L); /* timeouts and cancels, which scripts cannot remove */
  *out = rt;
  return FLOWLUA_OK;

fail_libs:
  lua_close(rt->L);
  fl_mem_release(&rt->mem);
fail_lua:
  fl_loop_close(&rt->loop);
fail_loop:
  fl_logger_free(&rt->log);
  fl_task_gate_free(rt);
  free(rt->worker_program);
  free(rt->state_path);
  free(rt->state_name);
  free(rt);
  return FLOWLUA_ENOMEM;
}

void flowlua_free(flowlua *rt) {
  if (!rt) return;
  if (rt->busy) {
    /* From a callback: the run is cancelled, and the runtime freed when
       the call that ran the callback returns. */
    rt->free_requested = 1;
    rt->stop_requested = 1;
    rt->cancel_requested = 1;
    return;
  }
  fl_engine_free(rt);
}

lua_State *flowlua_lua_state(flowlua *rt) { return rt ? rt->L : NULL; }

void flowlua_stop(flowlua *rt) {
  if (!rt) return;
  rt->stop_requested = 1;
  fl_loop_wake(&rt->loop);
}

void flowlua_cancel(flowlua *rt) {
  if (!rt) return;
  rt->stop_requested = 1;
  rt->cancel_requested = 1;
  fl_loop_wake(&rt->loop);
}

int flowlua_abandon(flowlua *rt, const char *why) {
  if (!rt) return FLOWLUA_EINVAL;
  return fl_abandon_runs(rt, why && *why ? why : "cancelled: abandoned while "
                                                 "a task was busy");
}

void flowlua_reset_stop(flowlua *rt) {
  /* From inside a run it would take back a cancel the run is acting on. */
  if (!rt || fl_api_reentered(rt, "flowlua_reset_stop")) return;
  rt->cancel_requested = 0;
  rt->stop_requested = 0;
}

void flowlua_string_free(char *s) { free(s); }

int fl_api_sized(flowlua *rt, const char *who, const char *what, size_t have,
                 size_t want) {
  if (have == want) return 1;
  fl_set_error(rt, "%s: %s->size is %zu, not the %zu of this flowlua's "
                   "struct: declare it with FLOWLUA_INIT (flowlua.h)",
               who, what, have, want);
  return 0;
}

/* ---- flows and params ---------------------------------------------------- */

size_t flowlua_flow_count(const flowlua *rt) { return rt ? rt->n_flows : 0; }

const char *flowlua_flow_name(const flowlua *rt, size_t i) {
  return rt ? fl_flow_name(rt, i) : NULL;
}

int flowlua_set_param(flowlua *rt, const char *name, const char *value) {
  if (!rt) return FLOWLUA_EINVAL;
  if (fl_api_reentered(rt, "flowlua_set_param")) return FLOWLUA_ESTATE;
  if (!name || !*name || !value) {
    fl_set_error(rt, "flowlua_set_param: name and value are required");
    return FLOWLUA_EINVAL;
  }
  return fl_params_set(rt, name, value);
}

int flowlua_flow_params_text(flowlua *rt, const char *flow_name,
                             char **out) {
  if (!rt || !out) return FLOWLUA_EINVAL;
  *out = NULL;
  if (fl_api_reentered(rt, "flowlua_flow_params_text")) return FLOWLUA_ESTATE;
  fl_buf b = FL_BUF_INIT;
  int rc = fl_params_describe(rt, flow_name, &b);
  if (rc == FLOWLUA_OK) {
    /* A default read with flow.secret is shown masked, as logs show it. */
    *out = fl_log_mask_dup(&rt->log, fl_buf_str(&b));
    if (!*out) {
      fl_set_error(rt, "flowlua_flow_params_text: out of memory");
      rc = FLOWLUA_ENOMEM;
    }
  }
  fl_buf_free(&b);
  return rc;
}

int flowlua_run_id_valid(const char *id) {
  if (!id || strlen(id) != 36) return 0;
  for (int i = 0; i < 36; i++) {
    int dash = i == 8 || i == 13 || i == 18 || i == 23;
    char c = id[i];
    if (dash ? c != '-' : !((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
      return 0;
  }
  return 1;
}

int flowlua_set_run_id(flowlua *rt, const char *run_id) {
  if (!rt) return FLOWLUA_EINVAL;
  if (fl_api_reentered(rt, "flowlua_set_run_id")) return FLOWLUA_ESTATE;
  if (!flowlua_run_id_valid(run_id)) {
    fl_set_error(rt, "flowlua_set_run_id: '%.80s' is not a UUID in "
                     "lower-case hex (8-4-4-4-12 digits)",
                 run_id ? run_id : "(null)");
    return FLOWLUA_EINVAL;
  }
  memcpy(rt->next_run_id, run_id, 37);
  return FLOWLUA_OK;
}

void flowlua_clear_params(flowlua *rt) {
  if (rt && !fl_api_reentered(rt, "flowlua_clear_params")) fl_params_clear(rt);
}

/* ---- running ------------------------------------------------------------- */

static int flowlua_check_body(flowlua *rt, const char *flow_name) {
  if (!rt) return FLOWLUA_EINVAL;
  return fl_run(rt, flow_name, FL_RUN_CHECK);
}

static int flowlua_run_body(flowlua *rt, const char *flow_name, flowlua_outcome *out) {
  if (!rt) return FLOWLUA_EINVAL;
  if (!FL_API_SIZED(rt, "flowlua_run", out)) return FLOWLUA_EINVAL;
  if (fl_host_run_going(rt, "flowlua_run")) return FLOWLUA_ESTATE;
  if (out) *out = (flowlua_outcome){.size = sizeof *out};
  int rc = fl_run(rt, flow_name, FL_RUN_WAIT);
  if (rt->sched && out) fl_fill_outcome(rt->sched, out);
  if (rc == FLOWLUA_OK && rt->sched && rt->sched->state == FLOWLUA_FLOW_CANCELLED)
    fl_set_error(rt, "the run was cancelled");
  return rc;
}

int flowlua_start_resume(flowlua *rt, const char *flow_name,
                         const char *run_ref, int force,
                         const char *from_task) {
  if (!rt) return FLOWLUA_EINVAL;
  if (fl_api_reentered(rt, "flowlua_start_resume")) return FLOWLUA_ESTATE;
  return fl_resume_run(rt, "flowlua_start_resume", FL_RUN_START, flow_name,
                     run_ref, force, from_task);
}

static int flowlua_resume_body(flowlua *rt, const char *flow_name, const char *run_ref,
                   int force, const char *from_task, flowlua_outcome *out) {
  if (!rt) return FLOWLUA_EINVAL;
  if (!FL_API_SIZED(rt, "flowlua_resume", out)) return FLOWLUA_EINVAL;
  if (out) *out = (flowlua_outcome){.size = sizeof *out};
  int rc = fl_resume_run(rt, "flowlua_resume", FL_RUN_WAIT, flow_name, run_ref,
                       force, from_task);
  if (rt->sched && out) fl_fill_outcome(rt->sched, out);
  if (rc == FLOWLUA_OK && rt->sched && rt->sched->state == FLOWLUA_FLOW_CANCELLED)
    fl_set_error(rt, "the run was cancelled");
  return rc;
}

/* Whether the flow has a schedule. */
int flowlua_flow_scheduled(flowlua *rt, const char *flow_name) {
  if (!rt) return FLOWLUA_EINVAL;
  int rc = fl_push_flow(rt, flow_name);
  if (rc) return rc;
  fl_flowdef *f = lua_touserdata(rt->L, -1);
  lua_pop(rt->L, 1);
  return f->schedule != NULL;
}

int flowlua_check(flowlua *rt, const char *flow_name) {
  if (!rt) return FLOWLUA_EINVAL;
  int rc = fl_api_enter(rt, "flowlua_check", "flowlua_check");
  if (rc) return rc;
  if (fl_host_run_going(rt, "flowlua_check"))
    return fl_api_leave(rt, FLOWLUA_ESTATE);
  rc = flowlua_check_body(rt, flow_name);
  return fl_api_leave(rt, rc);
}

int flowlua_run(flowlua *rt, const char *flow_name, flowlua_outcome *out) {
  if (!rt) return FLOWLUA_EINVAL;
  int rc = fl_api_enter(rt, "flowlua_run", FL_API_RUN);
  if (rc) return rc;
  rc = flowlua_run_body(rt, flow_name, out);
  return fl_api_leave(rt, rc);
}

int flowlua_resume(flowlua *rt, const char *flow_name, const char *run_ref,
                   int force, const char *from_task, flowlua_outcome *out) {
  if (!rt) return FLOWLUA_EINVAL;
  int rc = fl_api_enter(rt, "flowlua_resume", FL_API_RUN);
  if (rc) return rc;
  rc = flowlua_resume_body(rt, flow_name, run_ref, force, from_task, out);
  return fl_api_leave(rt, rc);
}
