/*
 * abandon.c — flowlua_abandon: the runs are recorded Cancelled by another
 * thread while the runtime's own is stuck in a task, and the process exits.
 */
#define _POSIX_C_SOURCE 200809L
#include <time.h>
#include <unistd.h>

#include "engine.h"
#include "record.h"

/* A task stuck in one C call (a backtracking string.find) runs no Lua
   instruction, so neither its timeout nor a cancel can reach it. Another
   thread may then record the runs as Cancelled, before the process exits,
   but only while the runtime's thread is inside the task: there it does
   not touch the store (task code does not), and it stops for good if the
   call returns (fl_task_gate_leave). */

/* How long flowlua_abandon waits for the runtime's thread to enter a
   task, when it is not in one: a forcing signal may come right after the
   task was logged Running and before its code runs. A thread that enters
   no task within this is not stuck in one: it ends the run itself. */
#define ABANDON_WAIT_SECONDS 5

/* rt->gate: the runtime's thread is in a task; flowlua_abandon took the
   runtime; and, in the bits above, how many flowlua_abandon calls wait
   for the thread to enter a task (only then does entering signal). */
enum { FL_GATE_IN_TASK = 1u, FL_GATE_ABANDONED = 2u, FL_GATE_WAITER = 4u };

int fl_task_gate_init(flowlua *rt) {
  atomic_init(&rt->gate, 0u);
  pthread_condattr_t attr;
  if (pthread_condattr_init(&attr) != 0) return -1;
  pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
  int failed = pthread_cond_init(&rt->task_entered, &attr) != 0;
  pthread_condattr_destroy(&attr);
  if (failed) return -1;
  if (pthread_mutex_init(&rt->task_gate, NULL) != 0) {
    pthread_cond_destroy(&rt->task_entered);
    return -1;
  }
  return 0;
}

void fl_task_gate_free(flowlua *rt) {
  pthread_mutex_destroy(&rt->task_gate);
  pthread_cond_destroy(&rt->task_entered);
}

/* Per task resumed, so one atomic operation and no lock (a mutex taken
   twice per task was a few percent of a no-op task's cost). A waiting
   flowlua_abandon counted itself in the gate before it looked at it,
   under the mutex, so either it saw the thread in a task or the thread
   sees it waiting here and wakes it: the mutex taken before the signal
   makes sure it is waiting by then. */
void fl_task_gate_enter(flowlua *rt) {
  unsigned was = atomic_fetch_or(&rt->gate, FL_GATE_IN_TASK);
  if (was >= FL_GATE_WAITER) {
    pthread_mutex_lock(&rt->task_gate);
    pthread_cond_broadcast(&rt->task_entered);
    pthread_mutex_unlock(&rt->task_gate);
  }
}

void fl_task_gate_leave(flowlua *rt) {
  unsigned was = atomic_fetch_and(&rt->gate, ~FL_GATE_IN_TASK);
  /* The other thread owns the runtime now, and exits the process. */
  if (was & FL_GATE_ABANDONED)
    for (;;) pause();
}

static int is_unended(int state) {
  return state == FLOWLUA_TASK_PENDING || state == FLOWLUA_TASK_RUNNING ||
         state == FLOWLUA_TASK_RETRYING;
}

static void abandon_run(fl_sched *s, const char *why) {
  for (uint32_t i = 0; i < s->g->n; i++) {
    fl_taskrun *r = &s->runs[i];
    if (is_unended(r->state)) fl_record_state(s, r, FLOWLUA_TASK_CANCELLED, 1, why);
    for (uint32_t k = 0; r->map && k < r->map->n; k++)
      if (is_unended(r->map->children[k].state))
        fl_record_state(s, &r->map->children[k], FLOWLUA_TASK_CANCELLED, 1, why);
  }
  s->cancelling = 1;
  s->state = FLOWLUA_FLOW_CANCELLED;
  fl_record_run_end(s);
}

int fl_abandon_runs(flowlua *rt, const char *why) {
  struct timespec until;
  clock_gettime(CLOCK_MONOTONIC, &until);
  until.tv_sec += ABANDON_WAIT_SECONDS;
  pthread_mutex_lock(&rt->task_gate);
  atomic_fetch_add(&rt->gate, FL_GATE_WAITER);
  int owned = 0;
  for (;;) {
    unsigned g = atomic_load(&rt->gate);
    if (g & FL_GATE_ABANDONED) break; /* another call took it */
    if (g & FL_GATE_IN_TASK) {
      /* Taken only if the thread is still in the task: if it left in
         between, the exchange fails and the gate is looked at again. */
      if (atomic_compare_exchange_strong(&rt->gate, &g, g | FL_GATE_ABANDONED)) {
        owned = 1;
        break;
      }
      continue;
    }
    if (pthread_cond_timedwait(&rt->task_entered, &rt->task_gate, &until) != 0)
      break; /* no task entered in time (or the wait failed) */
  }
  atomic_fetch_sub(&rt->gate, FL_GATE_WAITER);
  pthread_mutex_unlock(&rt->task_gate);
  if (!owned) return FLOWLUA_ESTATE;
  for (fl_sched *s = rt->active; s; s = s->next_active) abandon_run(s, why);
  return FLOWLUA_OK;
}
