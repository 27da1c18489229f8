/*
 * outcome.c — what a run that ended comes to: its state, duration and the
 * count of its task runs by state. This count is the one definition of a
 * task run (docs/manual/history.md, "Counting task runs"): the summary,
 * the run's last log line and the history's recorded counts all come from
 * here. A leaf: it calls nothing else in the engine.
 */
#include <string.h>

#include "engine.h"

void fl_fill_outcome(const fl_sched *s, flowlua_outcome *out) {
  *out = (flowlua_outcome){.size = sizeof *out};
  out->state = s->state;
  out->duration = s->ended - s->started;
  memcpy(out->run_id, s->run_id, sizeof out->run_id);
  for (uint32_t i = 0; i < s->g->n; i++) {
    const fl_taskrun *r = &s->runs[i];
    if (r->map && r->map->n > 0) {
      for (uint32_t k = 0; k < r->map->n; k++)
        out->by_state[r->map->children[k].state]++;
      out->tasks += r->map->n;
    } else {
      out->by_state[r->state]++;
      out->tasks++;
    }
  }
}
