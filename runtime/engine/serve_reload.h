/*
 * serve_reload.h — what serving needs to reload an edited script
 * (serve_reload.c): noticing that the file changed, and keeping the
 * handles of earlier versions going until their runs have ended.
 *
 * A reloaded script is loaded into a NEW handle (its own Lua state, loop
 * and store connection), so that the runs of the old version go on in the
 * state that built them and the new text's top level cannot disturb them.
 * Creating and freeing handles is the api layer's (flowlua_new,
 * flowlua_load_file, flowlua_free), which the engine may not call: the
 * api hands serving those two operations (fl_reload_ops).
 */
#ifndef FL_SERVE_RELOAD_H
#define FL_SERVE_RELOAD_H

#include <stddef.h>
#include <sys/types.h>
#include <time.h>

#include "engine.h"

typedef struct fl_reload_ops {
  /* A new handle like `like` (its options, params and host functions)
     with like's script file loaded again, defining flow `flow` with a
     schedule; NULL with the reason in err. */
  flowlua *(*load)(flowlua *like, const char *flow, char *err, size_t len);
  void (*free)(flowlua *rt);
} fl_reload_ops;

/* The served script file as last seen, and the text last refused. */
typedef struct fl_reload {
  const fl_reload_ops *ops; /* NULL: no reload */
  int seen;                 /* st_* hold a stat of the file */
  dev_t dev;
  ino_t ino;
  off_t size;
  struct timespec mtime;
  int unreadable;           /* the last look failed (said once) */
  char refused[65];         /* SHA-256 of the text last refused, or "" */
} fl_reload;

/* Whether rt's script file holds text other than what rt runs (and other
   than the text last refused): 1 with its SHA-256 in sha, 0 not (the
   file's stat unchanged is taken as unchanged without reading it), -1 the
   file cannot be read, with why in err (once per failure: 0 again until it
   can be read). */
int fl_reload_changed(fl_reload *r, flowlua *rt, char sha[65], char *err,
                      size_t len);

/* The handles of earlier versions of a served flow: the caller's own
   (host, never freed here), and reloaded ones whose runs go on. Each is
   polled and pumped beside the current handle, in a protected call on
   its own Lua state, and freed (but the host) once it has no run left. */
typedef struct fl_versions {
  flowlua *host;
  flowlua **old;
  size_t n, cap;
  fl_loop *watching; /* the loop their descriptors are watched on */
} fl_versions;

/* Retires rt (the current handle until now) and watches every earlier
   one's descriptor on loop, the new current handle's. 0, or -1 out of
   memory (rt is then freed, or kept if it is the host with runs, and
   serving goes on with what it has). */
int fl_versions_retire(fl_versions *v, flowlua *rt, fl_loop *loop,
                       const fl_reload_ops *ops);
/* Polls and pumps the earlier handles: 1 when one moved, 0 not, -1 when a
   run raised (err says) — and frees those without runs. */
int fl_versions_pump(fl_versions *v, const fl_reload_ops *ops, char *err,
                     size_t len);
/* wait (seconds, -1 none) bounded by the earlier handles' timers. */
double fl_versions_wait(const fl_versions *v, double wait);
/* The host's stop and cancel passed on to cur and the earlier handles;
   cancel_other: the running runs of all of them cancelled. */
void fl_versions_sync(fl_versions *v, flowlua *cur);
void fl_versions_cancel_current(fl_versions *v);
/* At the end of serving: every earlier handle but the host freed. */
void fl_versions_free(fl_versions *v, const fl_reload_ops *ops);

#endif
