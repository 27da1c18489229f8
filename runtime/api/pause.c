/*
 * pause.c — a flow's schedule switched off and on through the history
 * (flowlua_pause_flow: `flowlua pause` and `flowlua unpause`). The serving
 * process is not signalled: it reads the pause at each fire time
 * (engine/serve.c), so a pause asked for on any host of a shared
 * history is obeyed at the next fire time.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "store.h"

/* 1 when the history knows flow (a recorded definition or a run), 0 when
   not, with the known names listed in *known; -1 on a store error. */
static int flow_known(fl_store *st, const char *flow, fl_buf *known) {
  fl_store_flow_list defs = {0};
  fl_store_name_list names = {0};
  int found = 0;
  if (fl_store_list_flows(st, &defs) != FLOWLUA_OK ||
      fl_store_run_flows(st, &names) != FLOWLUA_OK) {
    fl_store_flow_list_free(&defs);
    return -1;
  }
  for (size_t i = 0; i < defs.n && !found; i++)
    found = strcmp(defs.items[i].flow, flow) == 0;
  for (size_t i = 0; i < names.n && !found; i++)
    found = strcmp(names.names[i], flow) == 0;
  for (size_t i = 0; i < defs.n && !found; i++)
    fl_buf_addf(known, "%s'%s'", known->len ? ", " : "", defs.items[i].flow);
  /* Names with runs and no definition too, each once (both sorted). */
  for (size_t i = 0, k = 0; i < names.n && !found; i++) {
    while (k < defs.n && strcmp(defs.items[k].flow, names.names[i]) < 0) k++;
    if (k < defs.n && strcmp(defs.items[k].flow, names.names[i]) == 0)
      continue;
    fl_buf_addf(known, "%s'%s'", known->len ? ", " : "", names.names[i]);
  }
  fl_store_flow_list_free(&defs);
  fl_store_name_list_free(&names);
  return found;
}

int flowlua_pause_flow(flowlua *rt, const char *flow, int paused,
                       const char *by, int *changed) {
  if (!rt) return FLOWLUA_EINVAL;
  int ignored;
  if (!changed) changed = &ignored;
  *changed = 0;
  const char *verb = paused ? "pause" : "unpause";
  int rc = fl_api_enter(rt, "flowlua_pause_flow", "a pause");
  if (rc) return rc;
  if (!flow || !*flow) {
    fl_set_error(rt, "flowlua_pause_flow: a flow name is required");
    return fl_api_leave(rt, FLOWLUA_EINVAL);
  }
  fl_store *st, *tmp;
  rc = fl_history_open_for(rt, 1, &st, &tmp);
  if (rc) return fl_api_leave(rt, rc);
  if (!st) {
    fl_set_error(rt, "no flow '%s' to %s: the history %s holds no flow yet "
                     "(serve the flow's script with this history first)",
                 flow, verb, rt->state_name);
    return fl_api_leave(rt, FLOWLUA_ENOFLOW);
  }
  fl_buf known = FL_BUF_INIT;
  int found = flow_known(st, flow, &known);
  if (found < 0) {
    fl_set_error(rt, "cannot %s flow '%s': %s", verb, flow,
                 fl_store_errmsg(st));
    rc = FLOWLUA_EIO;
  } else if (!found) {
    fl_set_error(rt, "no flow '%s' to %s in the history %s (it knows %s)",
                 flow, verb, rt->state_name,
                 known.len ? fl_buf_str(&known) : "no flow yet");
    rc = FLOWLUA_ENOFLOW;
  } else {
    rc = fl_store_set_pause(st, flow, paused, by && *by ? by : "flowlua",
                            fl_wall_time(), changed);
    if (rc != FLOWLUA_OK)
      fl_set_error(rt, "cannot %s flow '%s': %s", verb, flow,
                   fl_store_errmsg(st));
  }
  fl_buf_free(&known);
  fl_store_close(tmp);
  return fl_api_leave(rt, rc);
}
