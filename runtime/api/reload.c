/*
 * reload.c — what serving needs of the api layer to reload an edited
 * script (fl_reload_ops, serve_reload.h): a new handle made like the
 * served one, with the script file loaded again, and freeing it. The
 * engine may not call the api, so flowlua_serve hands it these.
 *
 * What it must not do: change the served handle (its runs go on), or
 * accept a version that no longer defines the served flow with a
 * schedule.
 */
#include <stdio.h>

#include <lauxlib.h>

#include "api.h"
#include "serve_reload.h"

/* The host functions registered on `like` (flowlua_register_function),
   registered on rt too: the new version's tasks may call them. */
static int copy_host_functions(flowlua *like, flowlua *rt) {
  lua_State *L = like->L;
  int top = lua_gettop(L), rc = FLOWLUA_OK;
  if (lua_getfield(L, LUA_REGISTRYINDEX, FL_HOST_FUNCS) == LUA_TTABLE) {
    lua_pushnil(L);
    while (rc == FLOWLUA_OK && lua_next(L, -2)) {
      lua_CFunction fn = lua_tocfunction(L, -1);
      if (lua_type(L, -2) == LUA_TSTRING && fn)
        rc = flowlua_register_function(rt, lua_tostring(L, -2), fn);
      lua_pop(L, 1);
    }
  }
  lua_settop(L, top);
  return rc;
}

static flowlua *reload_load(flowlua *like, const char *flow, char *err,
                            size_t len) {
  flowlua_options o = like->opts; /* its strings are like's own copies */
  o.retention = 0; /* the served handle prunes, not each version */
  flowlua *rt = NULL;
  if (flowlua_new(&o, &rt) != FLOWLUA_OK) {
    snprintf(err, len, "cannot make a runtime for it: out of memory");
    return NULL;
  }
  int rc = copy_host_functions(like, rt);
  for (size_t i = 0; rc == FLOWLUA_OK && i < like->n_params; i++)
    rc = flowlua_set_param(rt, like->param_names[i], like->param_values[i]);
  if (rc == FLOWLUA_OK) rc = flowlua_load_file(rt, like->script_path);
  if (rc == FLOWLUA_OK) {
    int scheduled = flowlua_flow_scheduled(rt, flow);
    if (scheduled < 0)
      fl_set_error(rt, "it no longer defines flow '%s'", flow);
    else if (scheduled == 0)
      fl_set_error(rt, "its flow '%s' no longer has a schedule", flow);
    if (scheduled != 1) rc = FLOWLUA_EINVAL;
  }
  if (rc != FLOWLUA_OK) {
    snprintf(err, len, "%s", flowlua_errmsg(rt));
    flowlua_free(rt);
    return NULL;
  }
  return rt;
}

static void reload_free(flowlua *rt) { flowlua_free(rt); }

static const fl_reload_ops reload_ops = {reload_load, reload_free};

const fl_reload_ops *fl_api_reload_ops(void) { return &reload_ops; }
