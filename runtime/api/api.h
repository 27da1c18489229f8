/*
 * api.h — what the files of runtime/api share among themselves, and no
 * other layer sees.
 */
#ifndef FL_API_H
#define FL_API_H

#include "engine.h"
#include "store.h"

/* history.c: the store to read reports from — rt's own when open, else a
   handle of its own in *tmp (the caller closes it), or *st NULL when the
   file does not exist yet. An error is set on rt. */
int fl_history_open(flowlua *rt, fl_store **st, fl_store **tmp);
/* The same, opened for writing when `writing` (flowlua_prune). */
int fl_history_open_for(flowlua *rt, int writing, fl_store **st,
                        fl_store **tmp);
/* The same for reading one run: run_ref is required, and a missing file
   is an error naming the run (who: the API call, for the message). */
int fl_history_open_run(flowlua *rt, const char *who, const char *run_ref,
                        fl_store **st, fl_store **tmp);

/* The caller's struct p (may be NULL) has a size this library knows
   (flowlua.h, FLOWLUA_INIT): 1; else 0 with the error set on rt, naming
   the call (who) and the struct (what). */
int fl_api_sized(flowlua *rt, const char *who, const char *what, size_t have,
                 size_t want);
#define FL_API_SIZED(rt, who, p)                                               \
  (!(p) || fl_api_sized((rt), (who), #p, (p)->size, sizeof *(p)))

/* reload.c: what serving needs to reload an edited script (a new handle
   like the served one, and freeing it): serve_reload.h. */
struct fl_reload_ops;
const struct fl_reload_ops *fl_api_reload_ops(void);

#endif
