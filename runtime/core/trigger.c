/*
 * trigger.c — the trigger-rule table (Airflow's rules, DESIGN.md's names).
 *
 * When a rule cannot be met, the outcome says why: TriggerFailed when an
 * upstream failure is the reason, Skipped otherwise. A skipped upstream counts
 * as done, not as failed.
 */
#include "trigger.h"

#include <string.h>

#include "flowlua.h"

static const char *const rule_names[] = {
#define FL_TRIGGER_NAME(name, text) text,
    FL_TRIGGER_RULE_MAP(FL_TRIGGER_NAME)
#undef FL_TRIGGER_NAME
};
enum { N_RULES = sizeof rule_names / sizeof rule_names[0] };

void fl_trigger_tally_add(fl_upstream_tally *t, int state) {
  switch (state) {
  case FLOWLUA_TASK_SUCCESS:
  case FLOWLUA_TASK_CACHED:
    t->success++;
    break;
  case FLOWLUA_TASK_SKIPPED:
    t->skipped++;
    break;
  default:
    t->failed++;
    break;
  }
}

/* Not met: blame the failures if there are any. */
static fl_decision unmet(const fl_upstream_tally *t) {
  return t->failed ? FL_DECIDE_TRIGGER_FAILED : FL_DECIDE_SKIP;
}

fl_decision fl_trigger_decide(fl_trigger_rule rule, const fl_upstream_tally *t) {
  uint32_t total = t->success + t->failed + t->skipped;
  if (total == 0) return FL_DECIDE_RUN; /* a root task always runs */
  switch (rule) {
  case FL_TRIGGER_ALL_SUCCESS:
    return t->success == total ? FL_DECIDE_RUN : unmet(t);
  case FL_TRIGGER_ALL_DONE:
  case FL_TRIGGER_ALWAYS:
    return FL_DECIDE_RUN;
  case FL_TRIGGER_ALL_FAILED:
    return t->failed == total ? FL_DECIDE_RUN : FL_DECIDE_SKIP;
  case FL_TRIGGER_ANY_SUCCESS:
    return t->success > 0 ? FL_DECIDE_RUN : unmet(t);
  case FL_TRIGGER_ANY_FAILED:
    return t->failed > 0 ? FL_DECIDE_RUN : FL_DECIDE_SKIP;
  case FL_TRIGGER_NONE_FAILED:
    return t->failed == 0 ? FL_DECIDE_RUN : FL_DECIDE_TRIGGER_FAILED;
  case FL_TRIGGER_NONE_FAILED_MIN_ONE_SUCCESS:
    if (t->failed) return FL_DECIDE_TRIGGER_FAILED;
    return t->success > 0 ? FL_DECIDE_RUN : FL_DECIDE_SKIP;
  case FL_TRIGGER_NONE_SKIPPED:
    return t->skipped == 0 ? FL_DECIDE_RUN : FL_DECIDE_SKIP;
  case FL_TRIGGER_FUNCTION:
    break;
  }
  return unmet(t); /* a function rule is not decided here */
}

int fl_trigger_parse(const char *name, fl_trigger_rule *out) {
  for (int i = 0; i < (int)N_RULES; i++)
    if (strcmp(name, rule_names[i]) == 0) {
      *out = (fl_trigger_rule)i;
      return 0;
    }
  return -1;
}

const char *fl_trigger_name(fl_trigger_rule rule) {
  if ((int)rule >= 0 && (int)rule < (int)N_RULES) return rule_names[rule];
  return rule == FL_TRIGGER_FUNCTION ? "function" : "?";
}

const char *fl_trigger_names(void) {
  return "all_success, all_done, all_failed, any_success, any_failed, "
         "none_failed, none_failed_min_one_success, none_skipped, always";
}
