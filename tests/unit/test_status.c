/*
 * test_status.c — the live status (status.h): the model fed with events
 * and the exact text it renders, and the region's bytes on a "terminal"
 * that is a pipe, with a clock the test moves.
 */
#define _POSIX_C_SOURCE 200809L
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "check.h"
#include "duration.h"
#include "flowlua.h"
#include "status.h"

static void flow_event(fl_status *st, int flow_state, double now) {
  flowlua_event ev = {0};
  ev.flow = "f";
  ev.run_id = "r";
  ev.task_state = -1;
  ev.flow_state = flow_state;
  CHECK_EQ_INT(fl_status_event(st, &ev, now), 0);
}

static void task_event(fl_status *st, const char *key, int state, int attempt,
                       const char *error, double delay, double now) {
  flowlua_event ev = {0};
  ev.flow = "f";
  ev.run_id = "r";
  ev.task = key;
  ev.task_state = state;
  ev.flow_state = -1;
  ev.attempt = attempt;
  ev.error = error;
  ev.retry_delay = delay;
  CHECK_EQ_INT(fl_status_event(st, &ev, now), 0);
}

/* A run at t = 100: slow running, flaky failed once and waits 2 s, a map
   of two running (its node started first), one task done. Times are
   binary fractions, so no clock rounds either way. */
static fl_status *scenario(void) {
  fl_status *st = fl_status_new();
  flow_event(st, FLOWLUA_FLOW_RUNNING, 100.0);
  task_event(st, "slow", FLOWLUA_TASK_RUNNING, 1, NULL, 0, 100.0);
  task_event(st, "flaky", FLOWLUA_TASK_RUNNING, 1, NULL, 0, 100.0);
  task_event(st, "flaky", FLOWLUA_TASK_RETRYING, 1,
             "boom\nstack traceback: ...", 2.0, 100.5);
  task_event(st, "first", FLOWLUA_TASK_RUNNING, 1, NULL, 0, 100.0);
  task_event(st, "first", FLOWLUA_TASK_SUCCESS, 1, NULL, 0, 100.25);
  task_event(st, "work", FLOWLUA_TASK_RUNNING, 1, NULL, 0, 100.75);
  task_event(st, "work[1]", FLOWLUA_TASK_RUNNING, 1, NULL, 0, 101.0);
  task_event(st, "work[2]", FLOWLUA_TASK_RUNNING, 1, NULL, 0, 101.0);
  return st;
}

static const fl_status_layout wide = {100, 10, 0};

static void test_render_shows_counts_clocks_and_countdowns(void) {
  fl_status *st = scenario();
  fl_buf out = FL_BUF_INIT;
  CHECK_EQ_INT(fl_status_render(st, 102.25, &wide, &out), 5);
  CHECK_EQ_STR(fl_buf_str(&out),
               "flow 'f' 2.2s: 3 Running, 1 Success, 1 Retrying\n"
               "  Retrying  flaky    next attempt in 0.2s (attempt 1 "
               "failed: boom)\n"
               "  Running   slow        2.2s\n"
               "  Running   work[1]     1.2s\n"
               "  Running   work[2]     1.2s\n");
  /* The map's own node is not a task run of its own. */
  CHECK_EQ_INT(fl_status_count(st, FLOWLUA_TASK_RUNNING), 3);
  /* Past the retry's time the countdown stays at zero, never negative. */
  fl_buf_reset(&out);
  fl_status_render(st, 103.0, &wide, &out);
  CHECK_CONTAINS(fl_buf_str(&out), "next attempt in 0.0s");
  fl_buf_free(&out);
  fl_status_free(st);
}

static void test_render_retry_runs_again_and_ends(void) {
  fl_status *st = scenario();
  task_event(st, "flaky", FLOWLUA_TASK_RUNNING, 2, NULL, 0, 102.5);
  fl_buf out = FL_BUF_INIT;
  fl_status_render(st, 103.0, &wide, &out);
  CHECK_NOT_CONTAINS(fl_buf_str(&out), "Retrying");
  /* Running again, after the tasks that were already running, with its
     attempt number. */
  CHECK_CONTAINS(fl_buf_str(&out), "  Running   work[2]     2.0s\n"
                                   "  Running   flaky       0.5s  attempt 2\n");
  task_event(st, "flaky", FLOWLUA_TASK_SUCCESS, 2, NULL, 0, 103.0);
  CHECK_EQ_INT(fl_status_count(st, FLOWLUA_TASK_SUCCESS), 2);
  CHECK_EQ_INT(fl_status_count(st, FLOWLUA_TASK_RETRYING), 0);
  CHECK(fl_status_running(st));
  flow_event(st, FLOWLUA_FLOW_SUCCESS, 104.0);
  CHECK(!fl_status_running(st));
  fl_buf_reset(&out);
  CHECK_EQ_INT(fl_status_render(st, 104.0, &wide, &out), 0);
  CHECK_EQ_STR(fl_buf_str(&out), "");
  /* The next run starts from nothing. */
  flow_event(st, FLOWLUA_FLOW_RUNNING, 200.0);
  CHECK_EQ_INT(fl_status_count(st, FLOWLUA_TASK_SUCCESS), 0);
  CHECK_EQ_INT(fl_status_render(st, 200.0, &wide, &out), 1);
  CHECK_EQ_STR(fl_buf_str(&out), "flow 'f' 0.0s: starting\n");
  fl_buf_free(&out);
  fl_status_free(st);
}

/* A worker task's attempt names its worker process while it runs; an
   event from a library older than the field (a smaller size) names none,
   and the next attempt, in the driver, forgets it. */
static void test_render_names_the_worker(void) {
  fl_status *st = fl_status_new();
  flow_event(st, FLOWLUA_FLOW_RUNNING, 100.0);
  flowlua_event ev = {.size = sizeof ev, .flow = "f", .run_id = "r",
                      .task = "split[1]", .task_state = FLOWLUA_TASK_RUNNING,
                      .flow_state = -1, .attempt = 1, .worker_pid = 4242};
  CHECK_EQ_INT(fl_status_event(st, &ev, 100.0), 0);
  ev.task = "old";
  ev.size = offsetof(flowlua_event, worker_pid);
  CHECK_EQ_INT(fl_status_event(st, &ev, 100.0), 0);
  fl_buf out = FL_BUF_INIT;
  fl_status_render(st, 101.0, &wide, &out);
  CHECK_CONTAINS(fl_buf_str(&out), "  Running   split[1]     1.0s  worker 4242\n"
                                   "  Running   old          1.0s\n");
  task_event(st, "split[1]", FLOWLUA_TASK_RUNNING, 2, NULL, 0, 101.0);
  fl_buf_reset(&out);
  fl_status_render(st, 101.5, &wide, &out);
  CHECK_CONTAINS(fl_buf_str(&out), "  Running   split[1]     0.5s  attempt 2\n");
  CHECK_NOT_CONTAINS(fl_buf_str(&out), "worker");
  fl_buf_free(&out);
  fl_status_free(st);
}

static void test_render_fits_the_terminal(void) {
  fl_status *st = scenario();
  fl_buf out = FL_BUF_INIT;
  /* Three lines: the header, one task, and how many did not fit; the
     key column is as wide as the keys shown. */
  fl_status_layout small = {100, 3, 0};
  CHECK_EQ_INT(fl_status_render(st, 102.25, &small, &out), 3);
  CHECK_EQ_STR(fl_buf_str(&out),
               "flow 'f' 2.2s: 3 Running, 1 Success, 1 Retrying\n"
               "  Retrying  flaky  next attempt in 0.2s (attempt 1 "
               "failed: boom)\n"
               "  ... and 3 more\n");
  /* Every line cut to the width. */
  fl_status_layout narrow = {20, 10, 0};
  fl_buf_reset(&out);
  fl_status_render(st, 102.25, &narrow, &out);
  CHECK_EQ_STR(fl_buf_str(&out), "flow 'f' 2.2s: 3 Run\n"
                                 "  Retrying  flaky   \n"
                                 "  Running   slow    \n"
                                 "  Running   work[1] \n"
                                 "  Running   work[2] \n");
  /* One line: the header alone. */
  fl_status_layout one = {100, 1, 0};
  fl_buf_reset(&out);
  CHECK_EQ_INT(fl_status_render(st, 102.25, &one, &out), 1);
  fl_buf_free(&out);
  fl_status_free(st);
}

static void test_render_colours_only_when_asked(void) {
  fl_status *st = scenario();
  fl_buf out = FL_BUF_INIT;
  fl_status_layout colour = {30, 10, 1};
  fl_status_render(st, 102.25, &colour, &out);
  /* The colour goes around the cut text: 30 columns of text in each. */
  CHECK_CONTAINS(fl_buf_str(&out),
                 "\033[1mflow 'f' 2.2s: 3 Running, 1 Su\033[0m\n"
                 "\033[33m  Retrying  flaky    next atte\033[0m\n"
                 "  Running   slow        2.2s\n");
  fl_buf_reset(&out);
  fl_status_render(st, 102.25, &wide, &out);
  CHECK(!strchr(fl_buf_str(&out), '\033'));
  fl_buf_free(&out);
  fl_status_free(st);
}

static void test_durations_and_utf8_fitting(void) {
  static const struct {
    double seconds;
    const char *text;
  } cases[] = {{-1, "0.0s"},     {0.25, "0.2s"},   {59.96, "59.9s"},
               {61, "1m01s"},    {3599, "59m59s"}, {3725, "1h02m"}};
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    fl_buf b = FL_BUF_INIT;
    fl_duration_add(&b, cases[i].seconds, FL_DURATION_CLOCK);
    CHECK_EQ_STR(fl_buf_str(&b), cases[i].text);
    fl_buf_free(&b);
  }
  const char *s = "h\xc3\xa9llo"; /* "héllo": é is two bytes, one column */
  CHECK_EQ_INT(fl_status_fit(s, strlen(s), 2), 3);
  CHECK_EQ_INT(fl_status_fit(s, strlen(s), 5), 6);
  CHECK_EQ_INT(fl_status_fit(s, strlen(s), 0), 0);
  /* A key with a multi-byte character lines up by columns, not bytes. */
  fl_status *st = fl_status_new();
  flow_event(st, FLOWLUA_FLOW_RUNNING, 0);
  task_event(st, "caf\xc3\xa9", FLOWLUA_TASK_RUNNING, 1, NULL, 0, 0);
  task_event(st, "tea", FLOWLUA_TASK_RUNNING, 1, NULL, 0, 0);
  fl_buf out = FL_BUF_INIT;
  fl_status_render(st, 1.0, &wide, &out);
  CHECK_CONTAINS(fl_buf_str(&out), "  Running   caf\xc3\xa9     1.0s\n"
                                   "  Running   tea      1.0s\n");
  fl_buf_free(&out);
  fl_status_free(st);
}

static void test_many_tasks(void) {
  /* A flow of 100,000 task runs: each event is O(1), counts stay right. */
  fl_status *st = fl_status_new();
  flow_event(st, FLOWLUA_FLOW_RUNNING, 0);
  char key[32];
  for (int i = 0; i < 100000; i++) {
    snprintf(key, sizeof key, "t%d", i);
    task_event(st, key, FLOWLUA_TASK_RUNNING, 1, NULL, 0, 0);
    if (i % 10) task_event(st, key, FLOWLUA_TASK_SUCCESS, 1, NULL, 0, 0);
  }
  CHECK_EQ_INT(fl_status_count(st, FLOWLUA_TASK_RUNNING), 10000);
  CHECK_EQ_INT(fl_status_count(st, FLOWLUA_TASK_SUCCESS), 90000);
  fl_buf out = FL_BUF_INIT;
  CHECK_EQ_INT(fl_status_render(st, 1.0, &wide, &out), 10);
  CHECK_CONTAINS(fl_buf_str(&out), "  Running   t0      1.0s\n"
                                   "  Running   t10     1.0s\n");
  CHECK_CONTAINS(fl_buf_str(&out), "  ... and 9992 more\n");
  fl_buf_free(&out);
  fl_status_free(st);
}

/* ---- the region, on a pipe ------------------------------------------------ */

static double fake_now;
static double fake_clock(void) { return fake_now; }

/* What the region wrote since the last call. */
static void drain(int fd, fl_buf *into) {
  fl_buf_reset(into);
  char chunk[4096];
  ssize_t n;
  while ((n = read(fd, chunk, sizeof chunk)) > 0)
    fl_buf_add(into, chunk, (size_t)n);
}

static void test_region_redraws_in_place_around_log_lines(void) {
  int p[2];
  CHECK_EQ_INT(pipe(p), 0);
  fcntl(p[0], F_SETFL, O_NONBLOCK);
  fake_now = 10.0;
  fl_status_term_options opts = {p[1], 0, fake_clock};
  fl_status_term *t = fl_status_term_new(&opts);
  fl_buf got = FL_BUF_INIT;

  flowlua_event ev = {0};
  ev.flow = "f";
  ev.task_state = -1;
  ev.flow_state = FLOWLUA_FLOW_RUNNING;
  fl_status_term_on_event(t, &ev);
  CHECK_EQ_INT(fl_status_term_wait_ms(t), 0); /* the first frame is due */
  ev = (flowlua_event){.flow = "f", .task = "a", .flow_state = -1,
                       .task_state = FLOWLUA_TASK_RUNNING, .attempt = 1};
  fl_status_term_on_event(t, &ev);
  fl_status_term_tick(t);
  drain(p[0], &got);
  /* Nothing above to move over yet: the lines, each erased to its end. */
  CHECK_EQ_STR(fl_buf_str(&got), "flow 'f' 0.0s: 1 Running\033[K\n"
                                 "  Running   a     0.0s\033[K\n"
                                 "\033[J");

  /* Within a tenth of a second: no redraw, and the wait says how long. */
  fake_now = 10.05;
  fl_status_term_tick(t);
  drain(p[0], &got);
  CHECK_EQ_STR(fl_buf_str(&got), "");
  CHECK(fl_status_term_wait_ms(t) > 0 && fl_status_term_wait_ms(t) <= 51);

  /* Later, with the clocks changed: over the two lines, in place. */
  fake_now = 10.5;
  fl_status_term_tick(t);
  drain(p[0], &got);
  CHECK_EQ_STR(fl_buf_str(&got), "\r\033[2Aflow 'f' 0.5s: 1 Running\033[K\n"
                                  "  Running   a     0.5s\033[K\n"
                                  "\033[J");
  /* Past a minute the clocks show whole seconds: a tenth later nothing
     on the region changed, and nothing is written. */
  fake_now = 70.25;
  fl_status_term_tick(t);
  drain(p[0], &got);
  CHECK_CONTAINS(fl_buf_str(&got), "  Running   a    1m00s\033[K\n");
  fake_now = 70.75;
  fl_status_term_tick(t);
  drain(p[0], &got);
  CHECK_EQ_STR(fl_buf_str(&got), "");
  /* Looked at, though: the next look is a tenth of a second away, so a
     loop waiting on the region does not spin. */
  CHECK(fl_status_term_wait_ms(t) > 0);

  /* A log line: the region erased, the line, the region below it, in one
     write. */
  flowlua_log_record rec = {0};
  rec.line = "2026-01-01 00:00:00.000 INFO  a: hello";
  fl_status_term_on_log(t, &rec);
  drain(p[0], &got);
  CHECK_EQ_STR(fl_buf_str(&got), "\r\033[2A\033[J"
                                 "2026-01-01 00:00:00.000 INFO  a: hello\n"
                                 "flow 'f' 1m00s: 1 Running\033[K\n"
                                 "  Running   a    1m00s\033[K\n"
                                 "\033[J");

  /* The run's end erases the region for good; later lines are plain. */
  ev = (flowlua_event){.flow = "f", .task_state = -1,
                       .flow_state = FLOWLUA_FLOW_SUCCESS};
  fl_status_term_on_event(t, &ev);
  drain(p[0], &got);
  CHECK_EQ_STR(fl_buf_str(&got), "\r\033[2A\033[J");
  CHECK_EQ_INT(fl_status_term_wait_ms(t), -1);
  fl_status_term_on_log(t, &rec);
  drain(p[0], &got);
  CHECK_EQ_STR(fl_buf_str(&got), "2026-01-01 00:00:00.000 INFO  a: hello\n");

  fl_status_term_free(t);
  fl_buf_free(&got);
  close(p[0]);
  close(p[1]);
}

static void test_region_disabled_writes_plain_lines(void) {
  int p[2];
  CHECK_EQ_INT(pipe(p), 0);
  fcntl(p[0], F_SETFL, O_NONBLOCK);
  fl_status_term_options opts = {p[1], 1, fake_clock};
  fl_status_term *t = fl_status_term_new(&opts);
  fl_status_term_disable(t);
  flowlua_event ev = {.flow = "f", .task_state = -1,
                      .flow_state = FLOWLUA_FLOW_RUNNING};
  fl_status_term_on_event(t, &ev);
  fl_status_term_tick(t);
  flowlua_log_record rec = {0};
  rec.line = "a line";
  fl_status_term_on_log(t, &rec);
  fl_buf got = FL_BUF_INIT;
  drain(p[0], &got);
  CHECK_EQ_STR(fl_buf_str(&got), "a line\n");
  CHECK_EQ_INT(fl_status_term_wait_ms(t), -1);
  fl_buf_free(&got);
  fl_status_term_free(t);
  close(p[0]);
  close(p[1]);
}

int main(void) {
  RUN(test_render_shows_counts_clocks_and_countdowns);
  RUN(test_render_retry_runs_again_and_ends);
  RUN(test_render_names_the_worker);
  RUN(test_render_fits_the_terminal);
  RUN(test_render_colours_only_when_asked);
  RUN(test_durations_and_utf8_fitting);
  RUN(test_many_tasks);
  RUN(test_region_redraws_in_place_around_log_lines);
  RUN(test_region_disabled_writes_plain_lines);
  return check_summary();
}
