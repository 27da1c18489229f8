/*
 * retention.h — a serving process's daily pruning of its history
 * (retention.c; flowlua_options.retention).
 */
#ifndef FL_RETENTION_H
#define FL_RETENTION_H

#include "engine.h"
#include "loop.h"

typedef struct fl_retention {
  flowlua *rt;
  fl_timer timer;
  struct fl_store_prune *prune; /* the prune in progress, or NULL */
} fl_retention;

/* Prunes now (when rt->opts.retention is set and rt has a history open),
   then once a day, from rt's loop. */
void fl_retention_start(fl_retention *r, flowlua *rt);
/* Stops it; a prune in progress stops between two steps. Again, or on a
   retention never started (zeroed), it does nothing. */
void fl_retention_stop(fl_retention *r);

#endif
