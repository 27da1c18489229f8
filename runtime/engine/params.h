/*
 * params.h — a flow's parameters (params.c).
 */
#ifndef FL_PARAMS_H
#define FL_PARAMS_H

#include "buf.h"
#include "flowlua.h"

/* Sets the text override of one parameter (name and value required, the
   caller checks): FLOWLUA_OK or FLOWLUA_ENOMEM. */
int fl_params_set(flowlua *rt, const char *name, const char *value);
/* Drops every override. */
void fl_params_clear(flowlua *rt);
/* Pushes the params table of the flow at flow_idx: its defaults, then a
   resumed run's stored params, then the overrides converted to the types
   of the defaults. A status, with the error set and nothing pushed, when
   an override names no parameter or does not convert, or a required
   typed param has no value, unless checking (a check or a graph builds
   the flow without running it: the body gets nil for that param). */
int fl_params_push(flowlua *rt, int flow_idx, int checking);
/* Pushes the params table of the flow at flow_idx for a run another flow
   calls as a subflow: its defaults, then the Lua values of the table at
   given_idx (nil: none). A name the flow lacks, a typed param that refuses
   its value and a required one missing are FLOWLUA_EPARAM, with the error
   set and nothing pushed; a plain default takes the value as it is. */
int fl_params_push_given(flowlua *rt, int flow_idx, int given_idx);
/* The params of the flow named flow (NULL: the only one) as --help lists
   them, one line each, by name: "  n     integer, default 5, >= 1\n";
   nothing for a flow without params. A status with the error set. */
int fl_params_describe(flowlua *rt, const char *flow, fl_buf *out);

#endif
