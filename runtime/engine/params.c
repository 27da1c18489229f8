/*
 * params.c — a flow's parameters: the overrides a host or --param set
 * (text), and the params table a run's body receives, made from the
 * flow's defaults, a resumed run's stored params and the overrides, each
 * override converted to its default's type.
 */
#include "params.h"

#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

#include "engine.h"
#include "param_types.h"
#include "resume.h"
#include "store.h"

int fl_params_set(flowlua *rt, const char *name, const char *value) {
  for (size_t i = 0; i < rt->n_params; i++)
    if (strcmp(rt->param_names[i], name) == 0) {
      char *v = strdup(value);
      if (!v) return FLOWLUA_ENOMEM;
      free(rt->param_values[i]);
      rt->param_values[i] = v;
      return FLOWLUA_OK;
    }
  char **names = realloc(rt->param_names, (rt->n_params + 1) * sizeof *names);
  if (!names) return FLOWLUA_ENOMEM;
  rt->param_names = names;
  char **values = realloc(rt->param_values, (rt->n_params + 1) * sizeof *values);
  if (!values) return FLOWLUA_ENOMEM;
  rt->param_values = values;
  char *n = strdup(name), *v = strdup(value);
  if (!n || !v) {
    free(n);
    free(v);
    return FLOWLUA_ENOMEM;
  }
  names[rt->n_params] = n;
  values[rt->n_params] = v;
  rt->n_params++;
  return FLOWLUA_OK;
}

void fl_params_clear(flowlua *rt) {
  for (size_t i = 0; i < rt->n_params; i++) {
    free(rt->param_names[i]);
    free(rt->param_values[i]);
  }
  free(rt->param_names);
  free(rt->param_values);
  rt->param_names = rt->param_values = NULL;
  rt->n_params = 0;
}

/* A --param value as a message shows it: quoted, and cut short when long
   (10 KB of JSON in an error helps nobody), at a UTF-8 boundary. */
static const char *quote_value(char *out, size_t size, const char *value) {
  size_t len = strlen(value), cut = 60;
  if (len <= 80) {
    snprintf(out, size, "'%s'", value);
    return out;
  }
  while (cut > 0 && ((unsigned char)value[cut] & 0xC0) == 0x80) cut--;
  snprintf(out, size, "'%.*s...' (%zu bytes)", (int)cut, value, len);
  return out;
}

/* Converts the text `value` to the type of the default at def_idx (a
   typed param's own rules, or a plain default's type) and pushes it;
   returns 0, or -1 with the reason set on rt. */
static int push_param_value(flowlua *rt, const char *flow, const char *name,
                            const char *value, int def_idx) {
  lua_State *L = rt->L;
  char shown[128];
  def_idx = lua_absindex(L, def_idx);
  if (fl_param_test(L, def_idx)) {
    if (fl_param_from_text(L, def_idx, value)) return 0;
    fl_buf want = FL_BUF_INIT;
    fl_param_expected(L, def_idx, &want);
    fl_set_error(rt, "flow '%s': parameter '%s' must be %s, got %s", flow,
                 name, fl_buf_str(&want),
                 quote_value(shown, sizeof shown, value));
    fl_buf_free(&want);
    return -1;
  }
  switch (lua_type(L, def_idx)) {
  case LUA_TNUMBER:
    /* An integer default keeps integers: 3.7 would change its meaning. */
    if (lua_isinteger(L, def_idx)) {
      if (fl_param_text_integer(L, value)) return 0;
      fl_set_error(rt, "flow '%s': parameter '%s' must be an integer (its "
                       "default is %lld), got %s",
                   flow, name, (long long)lua_tointeger(L, def_idx),
                   quote_value(shown, sizeof shown, value));
      return -1;
    }
    if (lua_stringtonumber(L, value) == 0) {
      fl_set_error(rt, "flow '%s': parameter '%s' must be a number, got %s",
                   flow, name, quote_value(shown, sizeof shown, value));
      return -1;
    }
    if (!isfinite(lua_tonumber(L, -1))) { /* 1e999 reads as infinity */
      lua_pop(L, 1);
      fl_set_error(rt, "flow '%s': parameter '%s' must be a finite number, "
                       "got %s",
                   flow, name, quote_value(shown, sizeof shown, value));
      return -1;
    }
    return 0;
  case LUA_TBOOLEAN: {
    int b;
    if (fl_param_text_boolean(value, &b)) return lua_pushboolean(L, b), 0;
    fl_set_error(rt, "flow '%s': parameter '%s' must be true or false ("
                     FL_BOOL_WORDS "), got %s",
                 flow, name, quote_value(shown, sizeof shown, value));
    return -1;
  }
  case LUA_TTABLE: {
    /* JSON, decoded as flow.json.decode does, so integers stay integers. */
    int rc = fl_json_decode_value(L, value, strlen(value));
    if (rc != 0 || !lua_istable(L, -1)) {
      fl_set_error(rt, "flow '%s': parameter '%s' must be a JSON object or "
                       "array, got %s (%s)",
                   flow, name, quote_value(shown, sizeof shown, value),
                   rc != 0 ? lua_tostring(L, -1) : "not a table");
      lua_pop(L, 1);
      return -1;
    }
    return 0;
  }
  default:
    lua_pushstring(L, value);
    return 0;
  }
}

/* The typed params once defaults, a resume's stored params and the
   overrides are in: each present (a required one has no default) and
   accepted (a resumed run's stored value is checked as --param text is),
   and set as the body receives it; when checking, a missing one is let
   be. 0, or -1 with the reason set. */
static int check_typed(flowlua *rt, const char *flow, int defaults,
                       int params, int checking, int from_lua) {
  lua_State *L = rt->L;
  lua_pushnil(L);
  while (lua_next(L, defaults)) {
    if (!fl_param_test(L, -1) || lua_type(L, -2) != LUA_TSTRING) {
      lua_pop(L, 1);
      continue;
    }
    const char *name = lua_tostring(L, -2);
    fl_buf want = FL_BUF_INIT;
    fl_param_expected(L, -1, &want);
    int rc = 0;
    if (lua_getfield(L, params, name) == LUA_TNIL && checking) {
      /* nothing to check: a check builds the flow without it */
    } else if (lua_isnil(L, -1)) {
      if (from_lua)
        fl_set_error(rt, "flow '%s': parameter '%s' is required (%s) and "
                         "has no default: give it in the params of the call",
                     flow, name, fl_buf_str(&want));
      else
        fl_set_error(rt, "flow '%s': parameter '%s' is required (%s) and "
                         "has no default: give it with --param %s=VALUE",
                     flow, name, fl_buf_str(&want), name);
      rc = -1;
    } else if (fl_param_normalize(L, -2, -1)) {
      lua_setfield(L, params, name);
    } else {
      fl_buf got = FL_BUF_INIT;
      char shown[128];
      if (fl_json_encode_value(L, -1, &got, NULL) != 0) {
        fl_buf_reset(&got);
        fl_buf_adds(&got, luaL_typename(L, -1));
      }
      if (rt->resume)
        fl_set_error(rt, "cannot resume run %s: flow '%s': its stored "
                         "parameter '%s' must be %s, got %s",
                     rt->resume->run.run_id, flow, name, fl_buf_str(&want),
                     quote_value(shown, sizeof shown, fl_buf_str(&got)));
      else
        fl_set_error(rt, "flow '%s': parameter '%s' must be %s, got %s",
                     flow, name, fl_buf_str(&want),
                     quote_value(shown, sizeof shown, fl_buf_str(&got)));
      fl_buf_free(&got);
      rc = -1;
    }
    fl_buf_free(&want);
    if (rc) return lua_pop(L, 3), -1;
    lua_pop(L, 2);
  }
  return 0;
}

static int by_name(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

int fl_params_describe(flowlua *rt, const char *flow, fl_buf *out) {
  lua_State *L = rt->L;
  int top = lua_gettop(L);
  int rc = fl_push_flow(rt, flow);
  if (rc) return rc;
  lua_getiuservalue(L, -1, FL_FLOW_UV_PARAMS);
  int defaults = lua_gettop(L);
  /* By name, so that the help reads the same every time (lua_next's
     order is the table's). The names live in the table on the stack. */
  size_t n = 0, width = 0;
  lua_pushnil(L);
  while (lua_next(L, defaults)) n++, lua_pop(L, 1);
  const char **names = n ? malloc(n * sizeof *names) : NULL;
  if (n && !names) {
    lua_settop(L, top);
    fl_set_error(rt, "describing the params of flow '%s': out of memory",
                 flow ? flow : "");
    return FLOWLUA_ENOMEM;
  }
  size_t i = 0;
  lua_pushnil(L);
  while (lua_next(L, defaults)) {
    names[i] = lua_tostring(L, -2); /* flow.define took string keys only */
    if (strlen(names[i]) > width) width = strlen(names[i]);
    i++;
    lua_pop(L, 1);
  }
  if (n) qsort(names, n, sizeof *names, by_name);
  for (i = 0; i < n; i++) {
    fl_buf_addf(out, "  %-*s  ", (int)width, names[i]);
    lua_getfield(L, defaults, names[i]);
    fl_param_describe_text(L, -1, out);
    lua_pop(L, 1);
    fl_buf_addc(out, '\n');
  }
  free(names);
  lua_settop(L, top);
  if (out->oom) {
    fl_set_error(rt, "describing the params of flow '%s': out of memory",
                 flow ? flow : "");
    return FLOWLUA_ENOMEM;
  }
  return FLOWLUA_OK;
}

/* Pushes a table of the flow's defaults (a typed param's default, if any)
   and returns its index; the flow's params table is pushed above it. */
static int push_defaults(lua_State *L, int flow_idx) {
  lua_newtable(L);
  int params = lua_gettop(L);
  lua_getiuservalue(L, flow_idx, FL_FLOW_UV_PARAMS);
  int defaults = lua_gettop(L);
  lua_pushnil(L);
  while (lua_next(L, defaults)) {
    if (fl_param_test(L, -1)) { /* a typed param: its default, if any */
      lua_getiuservalue(L, -1, FL_PARAM_UV_DEFAULT);
      lua_remove(L, -2);
    }
    lua_pushvalue(L, -2);
    lua_insert(L, -2);
    lua_rawset(L, params);
  }
  return params;
}

/* The error for a name the flow's params (the table at defaults) lack. */
static int unknown_param(flowlua *rt, const char *flow, int defaults,
                         const char *name) {
  lua_State *L = rt->L;
  fl_buf known = FL_BUF_INIT;
  lua_pushnil(L);
  while (lua_next(L, defaults)) {
    fl_buf_addf(&known, "%s%s", known.len ? ", " : "", lua_tostring(L, -2));
    lua_pop(L, 1);
  }
  if (known.len)
    fl_set_error(rt, "flow '%s' has no parameter '%s' (its parameters: %s)",
                 flow, name, fl_buf_str(&known));
  else
    fl_set_error(rt, "flow '%s' has no parameter '%s' (it takes none)", flow,
                 name);
  fl_buf_free(&known);
  return FLOWLUA_EPARAM;
}

/* Pushes the params for the flow at flow_idx: defaults, then overrides. */
int fl_params_push(flowlua *rt, int flow_idx, int checking) {
  lua_State *L = rt->L;
  fl_flowdef *f = lua_touserdata(L, flow_idx);
  int params = push_defaults(L, flow_idx), defaults = params + 1;
  if (rt->resume) {
    int rc = fl_resume_push_params(rt, f->name, defaults, params);
    if (rc) {
      lua_settop(L, params - 1);
      return rc;
    }
  }
  for (size_t i = 0; i < rt->n_params; i++) {
    const char *name = rt->param_names[i];
    if (lua_getfield(L, defaults, name) == LUA_TNIL) {
      unknown_param(rt, f->name, defaults, name);
      lua_settop(L, params - 1);
      return FLOWLUA_EPARAM;
    }
    if (push_param_value(rt, f->name, name, rt->param_values[i], -1) != 0) {
      lua_settop(L, params - 1);
      return FLOWLUA_EPARAM;
    }
    lua_setfield(L, params, name);
    lua_pop(L, 1);
  }
  if (check_typed(rt, f->name, defaults, params, checking, 0) != 0) {
    lua_settop(L, params - 1);
    return FLOWLUA_EPARAM;
  }
  lua_settop(L, params);
  return FLOWLUA_OK;
}

int fl_params_push_given(flowlua *rt, int flow_idx, int given_idx) {
  lua_State *L = rt->L;
  fl_flowdef *f = lua_touserdata(L, flow_idx);
  given_idx = lua_absindex(L, given_idx);
  int params = push_defaults(L, flow_idx), defaults = params + 1;
  if (lua_type(L, given_idx) == LUA_TTABLE) {
    lua_pushnil(L);
    while (lua_next(L, given_idx)) {
      if (lua_type(L, -2) != LUA_TSTRING) {
        fl_set_error(rt, "flow '%s': params must be keyed by parameter "
                         "names, got a %s key",
                     f->name, luaL_typename(L, -2));
        lua_settop(L, params - 1);
        return FLOWLUA_EPARAM;
      }
      const char *name = lua_tostring(L, -2);
      if (lua_getfield(L, defaults, name) == LUA_TNIL) {
        unknown_param(rt, f->name, defaults, name);
        lua_settop(L, params - 1);
        return FLOWLUA_EPARAM;
      }
      lua_pop(L, 1);
      lua_pushvalue(L, -2);
      lua_insert(L, -2);
      lua_rawset(L, params); /* typed ones are checked below */
    }
  }
  if (check_typed(rt, f->name, defaults, params, 0, 1) != 0) {
    lua_settop(L, params - 1);
    return FLOWLUA_EPARAM;
  }
  lua_settop(L, params);
  return FLOWLUA_OK;
}
