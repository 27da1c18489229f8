/*
 * test_trigger.c — trigger rules against a table of upstream tallies.
 *
 * The expected outcomes follow trigger.c's header and DESIGN.md: a rule that
 * is met runs; one that is not ends TriggerFailed when an upstream failure is
 * the reason and Skipped otherwise; a skipped upstream counts as done, not
 * failed; a task with no upstream runs whatever its rule.
 */
#include <string.h>

#include "check.h"
#include "flowlua.h"
#include "trigger.h"

enum { R = FL_DECIDE_RUN, S = FL_DECIDE_SKIP, T = FL_DECIDE_TRIGGER_FAILED };

/* The columns of the table: {success, failed, skipped}. */
static const struct {
  const char *name;
  fl_upstream_tally t;
} tallies[] = {
    {"no upstream", {0, 0, 0}}, {"all success", {3, 0, 0}},
    {"one failed", {2, 1, 0}},  {"one skipped", {2, 0, 1}},
    {"all failed", {0, 3, 0}},  {"all skipped", {0, 0, 3}},
    {"mixed", {1, 1, 1}},
};
enum { N_TALLIES = sizeof tallies / sizeof tallies[0] };

static const struct {
  fl_trigger_rule rule;
  int want[N_TALLIES];
} table[] = {
    /*                      none  succ  1fail 1skip allF  allS  mixed */
    /* Anything short of all success; blame failures when there are any. */
    {FL_TRIGGER_ALL_SUCCESS, {R, R, T, S, T, S, T}},
    {FL_TRIGGER_ALL_DONE, {R, R, R, R, R, R, R}},
    /* Not met because something did not fail: no failure to blame. */
    {FL_TRIGGER_ALL_FAILED, {R, S, S, S, R, S, S}},
    {FL_TRIGGER_ANY_SUCCESS, {R, R, R, R, T, S, R}},
    {FL_TRIGGER_ANY_FAILED, {R, S, R, S, R, S, R}},
    /* Skipped upstreams are done, not failed. */
    {FL_TRIGGER_NONE_FAILED, {R, R, T, R, T, R, T}},
    {FL_TRIGGER_NONE_FAILED_MIN_ONE_SUCCESS, {R, R, T, R, T, S, T}},
    /* Failures are fine here; a skip is the only reason not to run. */
    {FL_TRIGGER_NONE_SKIPPED, {R, R, R, S, R, S, S}},
    {FL_TRIGGER_ALWAYS, {R, R, R, R, R, R, R}},
};
enum { N_TABLE = sizeof table / sizeof table[0] };

static const char *decision_name(int d) {
  return d == R ? "RUN" : d == S ? "SKIP" : d == T ? "TRIGGER_FAILED" : "?";
}

static void test_table_covers_every_rule(void) {
  /* One row per rule in FL_TRIGGER_RULE_MAP, in map order. */
  int n_map = 0;
#define COUNT_RULE(name, text) n_map++;
  FL_TRIGGER_RULE_MAP(COUNT_RULE)
#undef COUNT_RULE
  CHECK_EQ_INT(N_TABLE, n_map);
  CHECK_EQ_INT(N_TABLE, FL_TRIGGER_FUNCTION);
  for (int i = 0; i < N_TABLE; i++)
    CHECK_EQ_INT(table[i].rule, i);
}

static void test_decide_table(void) {
  for (int i = 0; i < N_TABLE; i++)
    for (int k = 0; k < N_TALLIES; k++) {
      int got = (int)fl_trigger_decide(table[i].rule, &tallies[k].t);
      if (got != table[i].want[k])
        fprintf(stderr, "  rule %s, tally '%s': got %s, want %s\n",
                fl_trigger_name(table[i].rule), tallies[k].name,
                decision_name(got), decision_name(table[i].want[k]));
      CHECK_EQ_INT(got, table[i].want[k]);
    }
}

/* A single upstream in each class, for every rule: the smallest cases the
   scheduler sees. */
static void test_decide_single_upstream(void) {
  static const fl_upstream_tally one_ok = {1, 0, 0}, one_bad = {0, 1, 0},
                                 one_skip = {0, 0, 1};
  static const int want[N_TABLE][3] = {
      /*            ok bad skip */
      [FL_TRIGGER_ALL_SUCCESS] = {R, T, S},
      [FL_TRIGGER_ALL_DONE] = {R, R, R},
      [FL_TRIGGER_ALL_FAILED] = {S, R, S},
      [FL_TRIGGER_ANY_SUCCESS] = {R, T, S},
      [FL_TRIGGER_ANY_FAILED] = {S, R, S},
      [FL_TRIGGER_NONE_FAILED] = {R, T, R},
      [FL_TRIGGER_NONE_FAILED_MIN_ONE_SUCCESS] = {R, T, S},
      [FL_TRIGGER_NONE_SKIPPED] = {R, R, S},
      [FL_TRIGGER_ALWAYS] = {R, R, R},
  };
  for (int i = 0; i < N_TABLE; i++) {
    CHECK_EQ_INT(fl_trigger_decide((fl_trigger_rule)i, &one_ok), want[i][0]);
    CHECK_EQ_INT(fl_trigger_decide((fl_trigger_rule)i, &one_bad), want[i][1]);
    CHECK_EQ_INT(fl_trigger_decide((fl_trigger_rule)i, &one_skip), want[i][2]);
  }
}

/* Success and Cached are successes, Skipped is its own class, and every
   other final state is a failure. */
static void test_tally_add_every_state(void) {
  static const struct {
    int state;
    uint32_t success, failed, skipped;
  } cases[] = {
      {FLOWLUA_TASK_SUCCESS, 1, 0, 0},
      {FLOWLUA_TASK_CACHED, 1, 0, 0},
      {FLOWLUA_TASK_SKIPPED, 0, 0, 1},
      {FLOWLUA_TASK_FAILED, 0, 1, 0},
      {FLOWLUA_TASK_TIMED_OUT, 0, 1, 0},
      {FLOWLUA_TASK_TRIGGER_FAILED, 0, 1, 0},
      {FLOWLUA_TASK_CANCELLED, 0, 1, 0},
      /* Not final, so the scheduler never tallies them; if one slipped
         through it must not pass for a success. */
      {FLOWLUA_TASK_PENDING, 0, 1, 0},
      {FLOWLUA_TASK_RUNNING, 0, 1, 0},
      {FLOWLUA_TASK_RETRYING, 0, 1, 0},
  };
  enum { N = sizeof cases / sizeof cases[0] };
  CHECK_EQ_INT(N, FLOWLUA_TASK_STATE_COUNT); /* every state listed */
  fl_upstream_tally sum = {0, 0, 0};
  for (int i = 0; i < N; i++) {
    fl_upstream_tally t = {0, 0, 0};
    fl_trigger_tally_add(&t, cases[i].state);
    if (t.success != cases[i].success || t.failed != cases[i].failed ||
        t.skipped != cases[i].skipped)
      fprintf(stderr, "  state %s misclassified\n",
              flowlua_task_state_name(cases[i].state));
    CHECK_EQ_INT(t.success, cases[i].success);
    CHECK_EQ_INT(t.failed, cases[i].failed);
    CHECK_EQ_INT(t.skipped, cases[i].skipped);
    fl_trigger_tally_add(&sum, cases[i].state);
  }
  /* The tally accumulates. */
  CHECK_EQ_INT(sum.success, 2);
  CHECK_EQ_INT(sum.skipped, 1);
  CHECK_EQ_INT(sum.failed, N - 3);
}

static void test_parse_every_name(void) {
  static const struct {
    const char *name;
    fl_trigger_rule rule;
  } names[] = {
      {"all_success", FL_TRIGGER_ALL_SUCCESS},
      {"all_done", FL_TRIGGER_ALL_DONE},
      {"all_failed", FL_TRIGGER_ALL_FAILED},
      {"any_success", FL_TRIGGER_ANY_SUCCESS},
      {"any_failed", FL_TRIGGER_ANY_FAILED},
      {"none_failed", FL_TRIGGER_NONE_FAILED},
      {"none_failed_min_one_success", FL_TRIGGER_NONE_FAILED_MIN_ONE_SUCCESS},
      {"none_skipped", FL_TRIGGER_NONE_SKIPPED},
      {"always", FL_TRIGGER_ALWAYS},
  };
  enum { N = sizeof names / sizeof names[0] };
  CHECK_EQ_INT(N, FL_TRIGGER_FUNCTION);
  for (int i = 0; i < N; i++) {
    fl_trigger_rule r = FL_TRIGGER_FUNCTION;
    CHECK_EQ_INT(fl_trigger_parse(names[i].name, &r), 0);
    CHECK_EQ_INT(r, names[i].rule);
    /* Round trip, and the list for error messages names every rule. */
    CHECK_EQ_STR(fl_trigger_name(r), names[i].name);
    CHECK_CONTAINS(fl_trigger_names(), names[i].name);
  }
}

static void test_parse_unknown(void) {
  static const char *const bad[] = {
      "",         "ALL_SUCCESS", "all_success ", "all", "none_failed_min_one",
      "function", "always2"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    fl_trigger_rule r = FL_TRIGGER_ALWAYS;
    CHECK_EQ_INT(fl_trigger_parse(bad[i], &r), -1);
    CHECK_EQ_INT(r, FL_TRIGGER_ALWAYS); /* untouched on failure */
  }
}

static void test_name_out_of_map(void) {
  CHECK_EQ_STR(fl_trigger_name(FL_TRIGGER_FUNCTION), "function");
  CHECK_EQ_STR(fl_trigger_name((fl_trigger_rule)(FL_TRIGGER_FUNCTION + 1)),
               "?");
  CHECK_EQ_STR(fl_trigger_name((fl_trigger_rule)-1), "?");
}

int main(void) {
  RUN(test_table_covers_every_rule);
  RUN(test_decide_table);
  RUN(test_decide_single_upstream);
  RUN(test_tally_add_every_state);
  RUN(test_parse_every_name);
  RUN(test_parse_unknown);
  RUN(test_name_out_of_map);
  return check_summary();
}
