/*
 * trigger.h — trigger rules: whether a task runs once its upstream is done.
 *
 * Plain C, no Lua. The scheduler tallies the final states of a task's
 * upstream runs and asks fl_trigger_decide(); a rule given as a Lua function
 * is evaluated by the scheduler itself.
 */
#ifndef FL_TRIGGER_H
#define FL_TRIGGER_H

#include <stdint.h>

#define FL_TRIGGER_RULE_MAP(X)                                                 \
  X(ALL_SUCCESS, "all_success")                                                \
  X(ALL_DONE, "all_done")                                                      \
  X(ALL_FAILED, "all_failed")                                                  \
  X(ANY_SUCCESS, "any_success")                                                \
  X(ANY_FAILED, "any_failed")                                                  \
  X(NONE_FAILED, "none_failed")                                                \
  X(NONE_FAILED_MIN_ONE_SUCCESS, "none_failed_min_one_success")                \
  X(NONE_SKIPPED, "none_skipped")                                              \
  X(ALWAYS, "always")

typedef enum fl_trigger_rule {
#define FL_TRIGGER_ENUM(name, text) FL_TRIGGER_##name,
  FL_TRIGGER_RULE_MAP(FL_TRIGGER_ENUM)
#undef FL_TRIGGER_ENUM
  FL_TRIGGER_FUNCTION /* a Lua function decides */
} fl_trigger_rule;

/* Final states of a task's upstream runs, in three classes. Success and
   Cached are successes; Skipped is done but neither; everything else
   (Failed, TimedOut, TriggerFailed, Cancelled) is a failure. */
typedef struct fl_upstream_tally {
  uint32_t success, failed, skipped;
} fl_upstream_tally;

typedef enum fl_decision {
  FL_DECIDE_RUN,
  FL_DECIDE_SKIP,           /* ends Skipped */
  FL_DECIDE_TRIGGER_FAILED  /* ends TriggerFailed: an upstream failure */
} fl_decision;

/* Decides a built-in rule once all upstream runs are final. */
fl_decision fl_trigger_decide(fl_trigger_rule rule, const fl_upstream_tally *t);

/* Adds one final task state (flowlua_task_state) to a tally. */
void fl_trigger_tally_add(fl_upstream_tally *t, int task_state);

/* Parses a rule name; 0 on success, -1 for an unknown name. */
int fl_trigger_parse(const char *name, fl_trigger_rule *out);
const char *fl_trigger_name(fl_trigger_rule rule);
/* All rule names, comma-separated, for error messages. */
const char *fl_trigger_names(void);

#endif
