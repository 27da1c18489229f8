/*
 * param_types.h — what a flow parameter accepts (param_types.c): the typed
 * params of flow.param.* and the conversions of plain defaults that share
 * their rules (integers, boolean words).
 */
#ifndef FL_PARAM_TYPES_H
#define FL_PARAM_TYPES_H

#include <stddef.h>

#include <lua.h>

#include "buf.h"
#include "engine.h"

/* The boolean words a --param takes, as messages list them. */
#define FL_BOOL_WORDS "true/false, yes/no, on/off, 1/0, in any case"

/* The typed param at idx, or NULL when idx holds anything else. */
fl_paramdef *fl_param_test(lua_State *L, int idx);
/* Pushes the value at v as the param at spec receives it (an integral
   float as an integer) and returns 1; returns 0 with nothing pushed when
   the value is not one the param accepts. */
int fl_param_normalize(lua_State *L, int spec, int v);
/* Pushes the value the text of a --param means for the param at spec and
   returns 1; 0 with nothing pushed when it means none it accepts. */
int fl_param_from_text(lua_State *L, int spec, const char *text);
/* What the param at spec accepts, as a message says it ("an integer >= 1",
   "one of 'full', 'delta'"). */
void fl_param_expected(lua_State *L, int spec, fl_buf *out);
/* "integer", "number", "string", "boolean", "date", "enum". */
const char *fl_param_kind_name(fl_param_kind kind);

/* Text as an integer: a numeral whose value is whole (3, -2, 3.0, 1e3), in
   range. Pushes it and returns 1, or returns 0 with nothing pushed. */
int fl_param_text_integer(lua_State *L, const char *text);
/* A boolean word (FL_BOOL_WORDS): 1 and *out set, or 0. */
int fl_param_text_boolean(const char *text, int *out);
/* 1 when s (len bytes) is a calendar date written YYYY-MM-DD. */
int fl_param_date_valid(const char *s, size_t len);

/* The param at idx (typed, or a plain default) as the history's flow_def
   describes it: {"type":"integer","default":5,"min":1}, "required":true
   when a typed param has no default. 0, or -1 when the default is not
   JSON (a plain default holding a function). */
int fl_param_describe_json(lua_State *L, int idx, fl_buf *out);
/* The param at idx as --help lists it: "integer, default 5, >= 1". */
void fl_param_describe_text(lua_State *L, int idx, fl_buf *out);

#endif
