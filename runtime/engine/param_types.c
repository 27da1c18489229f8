/*
 * param_types.c — what a flow parameter accepts: the typed params that
 * flow.param.* makes (lparamlib.c builds them, this file checks values
 * against them), text of --param converted by their rules, and how they
 * are described to people (messages, --help) and to the history (flow_def).
 *
 * It knows nothing of where a value came from (a default, --param, a
 * resumed run): params.c says that in its messages.
 */
#include "param_types.h"

#include <lauxlib.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "json.h"

fl_paramdef *fl_param_test(lua_State *L, int idx) {
  return luaL_testudata(L, idx, FL_PARAM_MT);
}

const char *fl_param_kind_name(fl_param_kind kind) {
  static const char *const names[] = {"integer", "number", "string",
                                      "boolean", "date",   "enum"};
  return (size_t)kind < sizeof names / sizeof names[0] ? names[kind] : "?";
}

int fl_param_date_valid(const char *s, size_t len) {
  if (len != 10 || s[4] != '-' || s[7] != '-') return 0;
  for (size_t i = 0; i < len; i++)
    if (i != 4 && i != 7 && (s[i] < '0' || s[i] > '9')) return 0;
  int y = (s[0] - '0') * 1000 + (s[1] - '0') * 100 + (s[2] - '0') * 10 +
          (s[3] - '0');
  int m = (s[5] - '0') * 10 + (s[6] - '0');
  int d = (s[8] - '0') * 10 + (s[9] - '0');
  static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (y < 1 || m < 1 || m > 12 || d < 1) return 0;
  int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  return d <= days[m - 1] + (m == 2 && leap);
}

int fl_param_text_boolean(const char *text, int *out) {
  static const char *const yes[] = {"true", "yes", "on", "1"};
  static const char *const no[] = {"false", "no", "off", "0"};
  for (int i = 0; i < 4; i++) {
    if (strcasecmp(text, yes[i]) == 0) return *out = 1, 1;
    if (strcasecmp(text, no[i]) == 0) return *out = 0, 1;
  }
  return 0;
}

/* The number at v as an exact integer, when it is whole and in range. */
static int whole_number(lua_State *L, int v, lua_Integer *out) {
  if (lua_isinteger(L, v)) return *out = lua_tointeger(L, v), 1;
  lua_Number d = lua_tonumber(L, v);
  return d == floor(d) && lua_numbertointeger(d, out);
}

int fl_param_text_integer(lua_State *L, const char *text) {
  if (lua_stringtonumber(L, text) == 0) return 0;
  lua_Integer n;
  int ok = whole_number(L, -1, &n);
  lua_pop(L, 1);
  if (ok) lua_pushinteger(L, n);
  return ok;
}

static int in_choices(lua_State *L, int spec, int v) {
  lua_getiuservalue(L, spec, FL_PARAM_UV_CHOICES);
  int found = 0;
  for (lua_Integer i = 1; !found && lua_rawgeti(L, -1, i) != LUA_TNIL; i++) {
    found = lua_rawequal(L, -1, v);
    lua_pop(L, 1);
  }
  lua_pop(L, found ? 1 : 2); /* the list, and the nil that ended it */
  return found;
}

int fl_param_normalize(lua_State *L, int spec, int v) {
  fl_paramdef *p = fl_param_test(L, spec);
  spec = lua_absindex(L, spec);
  v = lua_absindex(L, v);
  int type = lua_type(L, v);
  lua_Integer n;
  switch (p->kind) {
  case FL_PARAM_INT:
    if (type != LUA_TNUMBER || !whole_number(L, v, &n) ||
        (p->has_min && n < p->imin) || (p->has_max && n > p->imax))
      return 0;
    lua_pushinteger(L, n);
    return 1;
  case FL_PARAM_NUMBER: {
    if (type != LUA_TNUMBER) return 0;
    double d = lua_tonumber(L, v);
    if (!isfinite(d) || (p->has_min && d < p->min) ||
        (p->has_max && d > p->max))
      return 0;
    break;
  }
  case FL_PARAM_STRING:
    if (type != LUA_TSTRING) return 0;
    break;
  case FL_PARAM_BOOL:
    if (type != LUA_TBOOLEAN) return 0;
    break;
  case FL_PARAM_DATE: {
    size_t len;
    if (type != LUA_TSTRING) return 0;
    const char *s = lua_tolstring(L, v, &len);
    if (!fl_param_date_valid(s, len)) return 0;
    break;
  }
  case FL_PARAM_ENUM:
    if (type != LUA_TSTRING || !in_choices(L, spec, v)) return 0;
    break;
  }
  lua_pushvalue(L, v);
  return 1;
}

int fl_param_from_text(lua_State *L, int spec, const char *text) {
  fl_paramdef *p = fl_param_test(L, spec);
  spec = lua_absindex(L, spec);
  int b;
  switch (p->kind) {
  case FL_PARAM_INT:
    if (!fl_param_text_integer(L, text)) return 0;
    break;
  case FL_PARAM_NUMBER:
    if (lua_stringtonumber(L, text) == 0) return 0;
    break;
  case FL_PARAM_BOOL:
    if (!fl_param_text_boolean(text, &b)) return 0;
    lua_pushboolean(L, b);
    break;
  default:
    lua_pushstring(L, text);
    break;
  }
  int ok = fl_param_normalize(L, spec, -1);
  lua_remove(L, ok ? -2 : -1);
  return ok;
}

/* A bound as messages show it: integers exact, numbers short. */
static void add_bounds(fl_buf *out, const fl_paramdef *p) {
  const char *sep = " ";
  if (p->has_min) {
    if (p->kind == FL_PARAM_INT)
      fl_buf_addf(out, " >= %lld", (long long)p->imin);
    else
      fl_buf_addf(out, " >= %.14g", p->min);
    sep = " and ";
  }
  if (p->has_max) {
    if (p->kind == FL_PARAM_INT)
      fl_buf_addf(out, "%s<= %lld", sep, (long long)p->imax);
    else
      fl_buf_addf(out, "%s<= %.14g", sep, p->max);
  }
}

/* The choices of the enum at spec, "'a', 'b'" (quote 1) or "a, b". */
static void add_choices(lua_State *L, int spec, fl_buf *out, int quote) {
  lua_getiuservalue(L, spec, FL_PARAM_UV_CHOICES);
  for (lua_Integer i = 1; lua_rawgeti(L, -1, i) == LUA_TSTRING; i++) {
    fl_buf_addf(out, quote ? "%s'%s'" : "%s%s", i > 1 ? ", " : "",
                lua_tostring(L, -1));
    lua_pop(L, 1);
  }
  lua_pop(L, 2);
}

void fl_param_expected(lua_State *L, int spec, fl_buf *out) {
  fl_paramdef *p = fl_param_test(L, spec);
  spec = lua_absindex(L, spec);
  switch (p->kind) {
  case FL_PARAM_INT:
    fl_buf_adds(out, "an integer");
    add_bounds(out, p);
    break;
  case FL_PARAM_NUMBER:
    fl_buf_adds(out, "a finite number");
    add_bounds(out, p);
    break;
  case FL_PARAM_STRING:
    fl_buf_adds(out, "a string");
    break;
  case FL_PARAM_BOOL:
    fl_buf_adds(out, "true or false (" FL_BOOL_WORDS ")");
    break;
  case FL_PARAM_DATE:
    fl_buf_adds(out, "a calendar date YYYY-MM-DD");
    break;
  case FL_PARAM_ENUM:
    fl_buf_adds(out, "one of ");
    add_choices(L, spec, out, 1);
    break;
  }
}

/* The type of a plain default, as a typed param of its kind would say. */
static const char *plain_type(lua_State *L, int idx) {
  switch (lua_type(L, idx)) {
  case LUA_TNUMBER: return lua_isinteger(L, idx) ? "integer" : "number";
  case LUA_TBOOLEAN: return "boolean";
  case LUA_TTABLE: return "json";
  default: return "string";
  }
}

int fl_param_describe_json(lua_State *L, int idx, fl_buf *out) {
  idx = lua_absindex(L, idx);
  fl_paramdef *p = fl_param_test(L, idx);
  if (!p) {
    fl_buf_addf(out, "{\"type\":\"%s\",\"default\":", plain_type(L, idx));
    if (fl_json_encode_value(L, idx, out, NULL) != 0) return -1;
    fl_buf_addc(out, '}');
    return 0;
  }
  fl_buf_addf(out, "{\"type\":\"%s\"", fl_param_kind_name(p->kind));
  if (lua_getiuservalue(L, idx, FL_PARAM_UV_DEFAULT) == LUA_TNIL) {
    fl_buf_adds(out, ",\"required\":true");
  } else {
    fl_buf_adds(out, ",\"default\":");
    fl_json_encode_value(L, -1, out, NULL); /* a checked plain value */
  }
  lua_pop(L, 1);
  if (p->has_min && p->kind == FL_PARAM_INT)
    fl_buf_addf(out, ",\"min\":%lld", (long long)p->imin);
  else if (p->has_min)
    fl_buf_addf(out, ",\"min\":%.17g", p->min);
  if (p->has_max && p->kind == FL_PARAM_INT)
    fl_buf_addf(out, ",\"max\":%lld", (long long)p->imax);
  else if (p->has_max)
    fl_buf_addf(out, ",\"max\":%.17g", p->max);
  if (p->kind == FL_PARAM_ENUM) {
    fl_buf_adds(out, ",\"choices\":");
    lua_getiuservalue(L, idx, FL_PARAM_UV_CHOICES);
    fl_json_encode_value(L, -1, out, NULL); /* a list of strings */
    lua_pop(L, 1);
  }
  fl_buf_addc(out, '}');
  return 0;
}

void fl_param_describe_text(lua_State *L, int idx, fl_buf *out) {
  idx = lua_absindex(L, idx);
  fl_paramdef *p = fl_param_test(L, idx);
  fl_buf json = FL_BUF_INIT;
  if (!p) {
    fl_buf_addf(out, "%s, default ", plain_type(L, idx));
    if (fl_json_encode_value(L, idx, &json, NULL) == 0)
      fl_buf_adds(out, fl_buf_str(&json));
    else
      fl_buf_addf(out, "(a %s)", luaL_typename(L, idx));
    fl_buf_free(&json);
    return;
  }
  fl_buf_adds(out, fl_param_kind_name(p->kind));
  if (p->kind == FL_PARAM_DATE) fl_buf_adds(out, " (YYYY-MM-DD)");
  if (lua_getiuservalue(L, idx, FL_PARAM_UV_DEFAULT) == LUA_TNIL) {
    fl_buf_adds(out, ", required");
  } else {
    fl_json_encode_value(L, -1, &json, NULL);
    fl_buf_addf(out, ", default %s", fl_buf_str(&json));
  }
  lua_pop(L, 1);
  fl_buf_free(&json);
  if (p->has_min || p->has_max) {
    fl_buf_addc(out, ',');
    add_bounds(out, p);
  }
  if (p->kind == FL_PARAM_ENUM) {
    fl_buf_adds(out, ", one of ");
    add_choices(L, idx, out, 0);
  }
}
