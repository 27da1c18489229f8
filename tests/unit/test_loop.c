/*
 * test_loop.c — the event loop's timers, wake-up and watched descriptors.
 *
 * Delays are a few milliseconds so the file runs fast; bounds on elapsed
 * time are generous (a loaded CI machine or the sanitizer build may be slow),
 * and ordering, not timing, is what most tests assert.
 */
#define _GNU_SOURCE /* nanosleep, pipe2 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "flowlua.h"
#include "loop.h"

/* Each fired timer appends its id (in data) and due time here. */
enum { MAX_LOG = 2048 };
static int fired_ids[MAX_LOG];
static double fired_due[MAX_LOG];
static int n_fired;

static void record_cb(fl_timer *t) {
  if (n_fired < MAX_LOG) {
    fired_ids[n_fired] = (int)(intptr_t)t->data;
    fired_due[n_fired] = t->due;
  }
  n_fired++;
}

static void reset_log(void) { n_fired = 0; }

/* Polls until `want` timers have fired or `limit` seconds pass. */
static void poll_until(fl_loop *loop, int want, double limit) {
  double end = fl_now() + limit;
  while (n_fired < want && fl_now() < end) {
    if (fl_loop_poll(loop, 0.5) < 0)
      break;
  }
}

static void sleep_s(double s) {
  struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
  while (nanosleep(&ts, &ts) != 0) {
  }
}

static void test_fire_in_due_order(void) {
  fl_loop loop;
  CHECK_EQ_INT(fl_loop_init(&loop), 0);
  reset_log();
  /* Armed out of order: 30 ms, 10 ms, 20 ms, 0 ms. */
  static const double delays[] = {0.030, 0.010, 0.020, 0.0};
  fl_timer t[4];
  for (int i = 0; i < 4; i++) {
    fl_timer_init(&t[i], record_cb, (void *)(intptr_t)i);
    CHECK_EQ_INT(fl_timer_start(&loop, &t[i], delays[i]), 0);
    CHECK(fl_timer_armed(&t[i]));
  }
  double start = fl_now();
  poll_until(&loop, 4, 5);
  CHECK_EQ_INT(n_fired, 4);
  static const int want[] = {3, 1, 2, 0};
  for (int i = 0; i < 4; i++)
    CHECK_EQ_INT(fired_ids[i], want[i]);
  for (int i = 0; i < 4; i++)
    CHECK(!fl_timer_armed(&t[i]));
  /* Never early: the last one is 30 ms out. */
  CHECK(fl_now() - start >= 0.029);
  CHECK_EQ_INT(loop.n, 0);
  fl_loop_close(&loop);
}

/* Same delay: the one armed first fires first. */
static void test_ties_in_arming_order(void) {
  fl_loop loop;
  CHECK_EQ_INT(fl_loop_init(&loop), 0);
  reset_log();
  enum { N = 9 };
  fl_timer t[N];
  for (int i = 0; i < N; i++) {
    fl_timer_init(&t[i], record_cb, (void *)(intptr_t)i);
    CHECK_EQ_INT(fl_timer_start(&loop, &t[i], 0.005), 0);
  }
  /* fl_now() moves between two arms, so the API alone rarely produces equal
     due times. Make them exactly equal — every key equal keeps the heap
     valid — so only the arming sequence can order them. */
  for (int i = 0; i < N; i++)
    t[i].due = t[0].due;
  poll_until(&loop, N, 5);
  CHECK_EQ_INT(n_fired, N);
  for (int i = 0; i < N; i++)
    CHECK_EQ_INT(fired_ids[i], i);
  fl_loop_close(&loop);
}

/* Stopping an armed timer — at the top, in the middle or at the end of the
   heap — keeps it from firing and leaves the rest in order. */
static void test_stop(void) {
  fl_loop loop;
  CHECK_EQ_INT(fl_loop_init(&loop), 0);
  reset_log();
  enum { N = 15 };
  fl_timer t[N];
  /* Arm in reverse so the heap has to reorder everything. */
  for (int i = N - 1; i >= 0; i--) {
    fl_timer_init(&t[i], record_cb, (void *)(intptr_t)i);
    CHECK_EQ_INT(fl_timer_start(&loop, &t[i], 0.001 * (i + 1)), 0);
  }
  /* Find one in the middle of the heap array (not root, not last). */
  fl_timer *mid = loop.heap[loop.n / 2];
  int mid_id = (int)(intptr_t)mid->data;
  fl_timer_stop(&loop, mid);
  CHECK(!fl_timer_armed(mid));
  fl_timer *root = loop.heap[0];
  int root_id = (int)(intptr_t)root->data;
  fl_timer_stop(&loop, root);
  fl_timer *last = loop.heap[loop.n - 1];
  int last_id = (int)(intptr_t)last->data;
  fl_timer_stop(&loop, last);
  fl_timer_stop(&loop, last); /* harmless twice */
  CHECK_EQ_INT(loop.n, N - 3);
  /* Slots still point back at their heap positions. */
  int bad_slot = 0;
  for (size_t i = 0; i < loop.n; i++)
    if (loop.heap[i]->slot != i + 1)
      bad_slot++;
  CHECK_EQ_INT(bad_slot, 0);

  poll_until(&loop, N - 3, 5);
  sleep_s(0.02);
  fl_loop_poll(&loop, 0);
  CHECK_EQ_INT(n_fired, N - 3);
  /* Order is checked on due times, not ids: a preempted arming loop may
     shift due times by more than the 1 ms between delays. */
  int seen_stopped = 0, out_of_order = 0;
  for (int i = 0; i < n_fired && i < MAX_LOG; i++) {
    int id = fired_ids[i];
    if (id == mid_id || id == root_id || id == last_id)
      seen_stopped++;
    if (i > 0 && fired_due[i] < fired_due[i - 1])
      out_of_order++;
  }
  CHECK_EQ_INT(seen_stopped, 0);
  CHECK_EQ_INT(out_of_order, 0);
  fl_loop_close(&loop);
}

/* Re-arming an armed timer moves it; it fires once, at the new time. */
static void test_rearm_moves(void) {
  fl_loop loop;
  CHECK_EQ_INT(fl_loop_init(&loop), 0);
  reset_log();
  fl_timer a, b, c;
  fl_timer_init(&a, record_cb, (void *)(intptr_t)1);
  fl_timer_init(&b, record_cb, (void *)(intptr_t)2);
  fl_timer_init(&c, record_cb, (void *)(intptr_t)3);
  CHECK_EQ_INT(fl_timer_start(&loop, &a, 0.010), 0);
  CHECK_EQ_INT(fl_timer_start(&loop, &b, 0.020), 0);
  CHECK_EQ_INT(fl_timer_start(&loop, &c, 0.030), 0);
  /* a later, c earlier. */
  CHECK_EQ_INT(fl_timer_start(&loop, &a, 0.040), 0);
  CHECK_EQ_INT(fl_timer_start(&loop, &c, 0.001), 0);
  CHECK_EQ_INT(loop.n, 3);
  poll_until(&loop, 3, 5);
  sleep_s(0.01);
  fl_loop_poll(&loop, 0);
  CHECK_EQ_INT(n_fired, 3);
  CHECK_EQ_INT(fired_ids[0], 3);
  CHECK_EQ_INT(fired_ids[1], 2);
  CHECK_EQ_INT(fired_ids[2], 1);
  fl_loop_close(&loop);
}

/* A callback arms another timer (and re-arms itself once). A timer armed for
   "now" from inside a poll waits for the next poll, so a callback cannot keep
   one poll spinning. */
static fl_loop *chain_loop;
static fl_timer chain_second;
static int chain_first_runs;

static void chain_first_cb(fl_timer *t) {
  record_cb(t);
  chain_first_runs++;
  CHECK(!fl_timer_armed(t)); /* disarmed before its callback */
  CHECK_EQ_INT(fl_timer_start(chain_loop, &chain_second, 0), 0);
  /* As if the clock had not moved since the poll read it: due no later than
     the poll's "now" (t->due is). Only the arming sequence can hold it back
     now. The heap holds nothing else yet, so it stays valid. */
  CHECK_EQ_INT(chain_loop->n, 1);
  chain_second.due = t->due;
  if (chain_first_runs == 1)
    CHECK_EQ_INT(fl_timer_start(chain_loop, t, 0), 0);
}

static void test_callback_arms_timer(void) {
  fl_loop loop;
  CHECK_EQ_INT(fl_loop_init(&loop), 0);
  reset_log();
  chain_loop = &loop;
  chain_first_runs = 0;
  fl_timer first;
  fl_timer_init(&first, chain_first_cb, (void *)(intptr_t)1);
  fl_timer_init(&chain_second, record_cb, (void *)(intptr_t)2);
  CHECK_EQ_INT(fl_timer_start(&loop, &first, 0), 0);

  CHECK_EQ_INT(fl_loop_poll(&loop, 1), 1); /* only `first` */
  CHECK_EQ_INT(n_fired, 1);
  CHECK(fl_timer_armed(&chain_second));
  CHECK(fl_timer_armed(&first));
  /* Next poll: `second` (armed first), then `first` again, which re-arms
     `second` for the poll after. */
  CHECK_EQ_INT(fl_loop_poll(&loop, 1), 2);
  CHECK_EQ_INT(n_fired, 3);
  CHECK_EQ_INT(fired_ids[1], 2);
  CHECK_EQ_INT(fired_ids[2], 1);
  CHECK_EQ_INT(fl_loop_poll(&loop, 1), 1);
  CHECK_EQ_INT(n_fired, 4);
  CHECK_EQ_INT(fired_ids[3], 2);
  CHECK_EQ_INT(chain_first_runs, 2);
  CHECK_EQ_INT(loop.n, 0);
  fl_loop_close(&loop);
}

static void test_next_due(void) {
  fl_loop loop;
  CHECK_EQ_INT(fl_loop_init(&loop), 0);
  CHECK_EQ_DBL(fl_loop_next_due(&loop), -1, 0);
  fl_timer far, near;
  fl_timer_init(&far, record_cb, NULL);
  fl_timer_init(&near, record_cb, NULL);
  CHECK_EQ_INT(fl_timer_start(&loop, &far, 10), 0);
  double d = fl_loop_next_due(&loop);
  CHECK(d > 9 && d <= 10);
  CHECK_EQ_INT(fl_timer_start(&loop, &near, 2), 0);
  d = fl_loop_next_due(&loop);
  CHECK(d > 1 && d <= 2);
  /* A negative or NaN delay means "now": overdue reads as 0, not negative. */
  CHECK_EQ_INT(fl_timer_start(&loop, &near, -5), 0);
  CHECK_EQ_DBL(fl_loop_next_due(&loop), 0, 0.001);
  CHECK_EQ_INT(fl_timer_start(&loop, &near, NAN), 0);
  sleep_s(0.002);
  CHECK_EQ_DBL(fl_loop_next_due(&loop), 0, 0);
  fl_timer_stop(&loop, &near);
  d = fl_loop_next_due(&loop);
  CHECK(d > 9 && d <= 10);
  fl_timer_stop(&loop, &far);
  CHECK_EQ_DBL(fl_loop_next_due(&loop), -1, 0);
  fl_loop_close(&loop);
}

static void test_poll_zero_does_not_block(void) {
  fl_loop loop;
  CHECK_EQ_INT(fl_loop_init(&loop), 0);
  reset_log();
  double start = fl_now();
  CHECK_EQ_INT(fl_loop_poll(&loop, 0), 0); /* no timer at all */
  fl_timer t;
  fl_timer_init(&t, record_cb, NULL);
  CHECK_EQ_INT(fl_timer_start(&loop, &t, 10), 0);
  CHECK_EQ_INT(fl_loop_poll(&loop, 0), 0); /* one far away */
  CHECK(fl_now() - start < 0.5);
  CHECK_EQ_INT(n_fired, 0);
  CHECK(fl_timer_armed(&t));
  /* A short max_wait returns after about that long, without the timer. */
  start = fl_now();
  CHECK_EQ_INT(fl_loop_poll(&loop, 0.02), 0);
  double took = fl_now() - start;
  CHECK(took >= 0.015 && took < 2);
  fl_loop_close(&loop);
  CHECK(!fl_timer_armed(&t)); /* close disarms what is left */
}

static void *wake_after_100ms(void *arg) {
  sleep_s(0.1);
  fl_loop_wake(arg);
  return NULL;
}

/* A wake from another thread ends a poll(-1) whose only timer is 30 s away. */
static void test_wake_from_thread(void) {
  fl_loop loop;
  CHECK_EQ_INT(fl_loop_init(&loop), 0);
  reset_log();
  fl_timer far;
  fl_timer_init(&far, record_cb, NULL);
  CHECK_EQ_INT(fl_timer_start(&loop, &far, 30), 0);
  pthread_t th;
  double start = fl_now();
  int rc = pthread_create(&th, NULL, wake_after_100ms, &loop);
  CHECK_EQ_INT(rc, 0);
  if (rc == 0) {
    CHECK_EQ_INT(fl_loop_poll(&loop, -1), 0);
    double took = fl_now() - start;
    CHECK(took >= 0.05);
    CHECK(took < 2);
    pthread_join(th, NULL);
  }
  CHECK_EQ_INT(n_fired, 0);
  CHECK(fl_timer_armed(&far));
  /* The pipe was drained: the next poll(0) finds nothing to wake it, and
     several wakes before a poll make one. */
  CHECK_EQ_INT(fl_loop_poll(&loop, 0), 0);
  for (int i = 0; i < 5; i++)
    fl_loop_wake(&loop);
  start = fl_now();
  CHECK_EQ_INT(fl_loop_poll(&loop, -1), 0);
  CHECK(fl_now() - start < 2);
  start = fl_now();
  CHECK_EQ_INT(fl_loop_poll(&loop, 0.05), 0);
  CHECK(fl_now() - start >= 0.04); /* not woken by leftovers */
  fl_loop_close(&loop);
}

static uint64_t rng_state = 0x2545F4914F6CDD1Dull;
static uint32_t rng_below(uint32_t n) {
  rng_state ^= rng_state >> 12;
  rng_state ^= rng_state << 25;
  rng_state ^= rng_state >> 27;
  return (uint32_t)((rng_state * 0x2545F4914F6CDD1Dull) >> 32) % n;
}

/* 1000 timers with random delays up to 50 ms, some re-armed and some
   stopped along the way, all fire once, in non-decreasing due order. */
static void test_many_random_timers(void) {
  enum { N = 1000 };
  fl_loop loop;
  CHECK_EQ_INT(fl_loop_init(&loop), 0);
  reset_log();
  fl_timer *t = malloc(N * sizeof *t);
  CHECK(t != NULL);
  if (!t)
    return;
  int arm_failed = 0;
  for (int i = 0; i < N; i++) {
    fl_timer_init(&t[i], record_cb, (void *)(intptr_t)i);
    if (fl_timer_start(&loop, &t[i], rng_below(50000) * 1e-6) != 0)
      arm_failed++;
  }
  /* Shake the heap: re-arm every 7th, stop every 10th (and re-arm it). */
  for (int i = 0; i < N; i += 7)
    if (fl_timer_start(&loop, &t[i], rng_below(50000) * 1e-6) != 0)
      arm_failed++;
  for (int i = 0; i < N; i += 10) {
    fl_timer_stop(&loop, &t[i]);
    if (fl_timer_start(&loop, &t[i], rng_below(50000) * 1e-6) != 0)
      arm_failed++;
  }
  CHECK_EQ_INT(arm_failed, 0);
  CHECK_EQ_INT(loop.n, N);

  poll_until(&loop, N, 10);
  CHECK_EQ_INT(n_fired, N);
  int descending = 0;
  for (int i = 1; i < n_fired && i < MAX_LOG; i++)
    if (fired_due[i] < fired_due[i - 1])
      descending++;
  CHECK_EQ_INT(descending, 0);
  /* Each one exactly once. */
  char *seen = calloc(N, 1);
  int twice = 0;
  for (int i = 0; seen && i < n_fired && i < MAX_LOG; i++)
    if (seen[fired_ids[i]]++)
      twice++;
  CHECK_EQ_INT(twice, 0);
  free(seen);
  fl_loop_close(&loop);
  free(t);
}

static int n_readable;
static void count_readable(int fd, uint32_t events, void *data) {
  (void)fd, (void)data;
  if (events & EPOLLIN) n_readable++;
}

/* Whether epoll still holds fd: deleting it again tells. */
static int epoll_holds(fl_loop *loop, int fd) {
  struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
  return epoll_ctl(loop->epfd, EPOLL_CTL_MOD, fd, &ev) == 0;
}

/* A paused descriptor stays in epoll and calls no one; watched again it
   is reported at once; ready while paused, the loop takes it out of epoll
   (it would be reported at every poll), and a later watch adds it again;
   unwatched while paused, epoll forgets it. */
static void test_pause(void) {
  fl_loop loop;
  int p[2];
  CHECK_EQ_INT(fl_loop_init(&loop), 0);
  CHECK_EQ_INT(pipe2(p, O_CLOEXEC | O_NONBLOCK), 0);
  n_readable = 0;
  CHECK_EQ_INT(fl_loop_watch(&loop, p[0], EPOLLIN, count_readable, NULL), 0);
  fl_loop_pause(&loop, p[0]);
  CHECK(epoll_holds(&loop, p[0]));
  CHECK_EQ_INT(fl_loop_watch(&loop, p[0], EPOLLIN, count_readable, NULL), 0);
  CHECK_EQ_INT((int)write(p[1], "x", 1), 1);
  fl_loop_poll(&loop, 0);
  CHECK_EQ_INT(n_readable, 1);

  fl_loop_pause(&loop, p[0]); /* still readable: nobody is called */
  fl_loop_poll(&loop, 0);
  CHECK_EQ_INT(n_readable, 1);
  CHECK(!epoll_holds(&loop, p[0]));
  CHECK_EQ_INT(fl_loop_watch(&loop, p[0], EPOLLIN, count_readable, NULL), 0);
  fl_loop_poll(&loop, 0);
  CHECK_EQ_INT(n_readable, 2);

  fl_loop_pause(&loop, p[0]);
  fl_loop_unwatch(&loop, p[0]);
  CHECK(!epoll_holds(&loop, p[0]));
  fl_loop_pause(&loop, p[0]); /* not watched: harmless */
  fl_loop_pause(&loop, 100000);
  fl_loop_poll(&loop, 0);
  CHECK_EQ_INT(n_readable, 2);
  close(p[0]);
  close(p[1]);
  fl_loop_close(&loop);
}

int main(void) {
  RUN(test_fire_in_due_order);
  RUN(test_ties_in_arming_order);
  RUN(test_stop);
  RUN(test_rearm_moves);
  RUN(test_callback_arms_timer);
  RUN(test_next_due);
  RUN(test_poll_zero_does_not_block);
  RUN(test_wake_from_thread);
  RUN(test_many_random_timers);
  RUN(test_pause);
  return check_summary();
}
