/*
 * poll_loop.c — a host with its own poll() loop drives a run: no thread,
 * no blocking call into flowlua. Three tasks sleep 0.2 s each at the same
 * time and a fourth joins them; the loop follows the documented order
 * strictly — start, then wait on flowlua_fd for at most flowlua_timeout_ms,
 * then step — and the run must take about 0.2 s, not 0.6 s. Right after
 * flowlua_start the tasks wait to be started, so flowlua_timeout_ms must
 * say 0; this flow always has a timer or work pending, so it must never
 * say -1 (wait for ever) while the run goes on: the loop would hang. Built
 * in the tree (embed/poll_loop) and against the installed library by
 * tests/system/embed/install_test.py.
 */
#define _POSIX_C_SOURCE 200809L
#include <poll.h>
#include <stdio.h>
#include <time.h>

#include <flowlua.h>

static const char *const script =
    "local flow = require 'flowlua'\n"
    "local nap = flow.task('nap', function(i) flow.sleep(0.2) return i end)\n"
    "local join = flow.task('join', function(a, b, c) return a + b + c end)\n"
    "return flow.define('polled', function()\n"
    "  join(nap(1), nap(2), nap(3))\n"
    "end)\n";

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(void) {
  flowlua_options opts;
  flowlua_options_init(&opts);
  opts.log_level = FLOWLUA_LOG_OFF;
  flowlua *rt = NULL;
  if (flowlua_new(&opts, &rt) != FLOWLUA_OK) return 1;
  double t0 = now();
  int rc = flowlua_load_string(rt, script, "=polled");
  if (rc == FLOWLUA_OK) rc = flowlua_start(rt, NULL);
  if (rc != FLOWLUA_OK) {
    fprintf(stderr, "poll_loop: %s\n", flowlua_errmsg(rt));
    return 1;
  }
  printf("second start: %s\n",
         flowlua_strstatus(flowlua_start(rt, NULL)));
  flowlua_outcome out = FLOWLUA_INIT(flowlua_outcome);
  int steps = 0, waits = 0, first_wait = flowlua_timeout_ms(rt);
  printf("wait right after start: %d ms\n", first_wait);
  for (;;) {
    /* The host's own loop: here poll(), with flowlua's descriptor among
       whatever else it would watch. */
    int wait = flowlua_timeout_ms(rt);
    if (wait < 0) {
      fprintf(stderr, "poll_loop: flowlua_timeout_ms said -1 (wait for ever) "
                      "after %d step(s), while the run has work or timers\n",
              steps);
      flowlua_free(rt);
      return 1;
    }
    struct pollfd p = {.fd = flowlua_fd(rt), .events = POLLIN};
    poll(&p, 1, wait);
    waits++;
    rc = flowlua_step(rt, &out);
    steps++;
    if (rc != 0) break;
  }
  double took = now() - t0;
  if (rc < 0) {
    fprintf(stderr, "poll_loop: %s\n", flowlua_errmsg(rt));
    return 1;
  }
  printf("flow %s, %zu tasks\n", flowlua_flow_state_name(out.state), out.tasks);
  printf("%s\n", took < 0.45 ? "the naps overlapped" : "the naps ran one by one");
  printf("stepped more than once: %s\n", steps > 1 && waits > 0 ? "yes" : "no");
  flowlua_free(rt);
  return out.state == FLOWLUA_FLOW_SUCCESS && first_wait == 0 ? 0 : 1;
}
