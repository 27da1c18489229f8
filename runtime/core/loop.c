/*
 * loop.c — timers on a min-heap and a blocking wait on epoll.
 *
 * The wall clock is never used for waiting: only CLOCK_MONOTONIC, so a clock
 * change neither fires timers early nor delays them.
 */
#define _GNU_SOURCE
#include "loop.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#include "flowlua.h"

double fl_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

double fl_wall_time(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int fl_loop_init(fl_loop *loop) {
  *loop = (fl_loop){.epfd = -1, .wake_fd = {-1, -1}};
  loop->epfd = epoll_create1(EPOLL_CLOEXEC);
  if (loop->epfd < 0) goto fail;
  if (pipe2(loop->wake_fd, O_CLOEXEC | O_NONBLOCK) != 0) goto fail;
  struct epoll_event ev = {.events = EPOLLIN, .data.fd = loop->wake_fd[0]};
  if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, loop->wake_fd[0], &ev) != 0)
    goto fail;
  return 0;
fail:;
  int saved = errno;
  fl_loop_close(loop);
  errno = saved;
  return FLOWLUA_EIO;
}

void fl_loop_close(fl_loop *loop) {
  for (size_t i = 0; i < loop->n; i++) loop->heap[i]->slot = 0;
  free(loop->heap);
  free(loop->watches);
  if (loop->epfd >= 0) close(loop->epfd);
  if (loop->wake_fd[0] >= 0) close(loop->wake_fd[0]);
  if (loop->wake_fd[1] >= 0) close(loop->wake_fd[1]);
  *loop = (fl_loop){.epfd = -1, .wake_fd = {-1, -1}};
}

static int earlier(const fl_timer *a, const fl_timer *b) {
  return a->due < b->due || (a->due == b->due && a->seq < b->seq);
}

static void place(fl_loop *loop, size_t i, fl_timer *t) {
  loop->heap[i] = t;
  t->slot = i + 1;
}

static void sift_up(fl_loop *loop, size_t i) {
  fl_timer *t = loop->heap[i];
  while (i > 0) {
    size_t parent = (i - 1) / 2;
    if (!earlier(t, loop->heap[parent])) break;
    place(loop, i, loop->heap[parent]);
    i = parent;
  }
  place(loop, i, t);
}

static void sift_down(fl_loop *loop, size_t i) {
  fl_timer *t = loop->heap[i];
  for (;;) {
    size_t child = 2 * i + 1;
    if (child >= loop->n) break;
    if (child + 1 < loop->n && earlier(loop->heap[child + 1], loop->heap[child]))
      child++;
    if (!earlier(loop->heap[child], t)) break;
    place(loop, i, loop->heap[child]);
    i = child;
  }
  place(loop, i, t);
}

void fl_timer_stop(fl_loop *loop, fl_timer *t) {
  if (!t->slot) return;
  size_t i = t->slot - 1;
  t->slot = 0;
  fl_timer *last = loop->heap[--loop->n];
  if (i == loop->n) return;
  place(loop, i, last);
  sift_down(loop, i);
  sift_up(loop, last->slot - 1);
}

int fl_timer_start(fl_loop *loop, fl_timer *t, double delay) {
  fl_timer_stop(loop, t);
  if (loop->n == loop->cap) {
    size_t cap = loop->cap ? loop->cap * 2 : 16;
    fl_timer **h = realloc(loop->heap, cap * sizeof *h);
    if (!h) return FLOWLUA_ENOMEM;
    loop->heap = h;
    loop->cap = cap;
  }
  if (!(delay > 0)) delay = 0; /* also NaN */
  t->due = fl_now() + delay;
  t->seq = loop->seq++;
  loop->heap[loop->n] = t;
  t->slot = ++loop->n;
  sift_up(loop, loop->n - 1);
  return 0;
}

double fl_loop_next_due(const fl_loop *loop) {
  if (loop->n == 0) return -1;
  double d = loop->heap[0]->due - fl_now();
  return d > 0 ? d : 0;
}

int fl_loop_watch(fl_loop *loop, int fd, uint32_t events, fl_watch_cb cb,
                  void *data) {
  if (fd < 0 || !cb) return FLOWLUA_EINVAL;
  if (fd >= loop->n_watches) {
    int n = loop->n_watches ? loop->n_watches : 64;
    while (n <= fd) n *= 2;
    fl_watch *w = realloc(loop->watches, (size_t)n * sizeof *w);
    if (!w) return FLOWLUA_ENOMEM;
    memset(w + loop->n_watches, 0, (size_t)(n - loop->n_watches) * sizeof *w);
    loop->watches = w;
    loop->n_watches = n;
  }
  fl_watch *w = &loop->watches[fd];
  if (!w->cb && w->in_epoll && w->events == events) {
    /* paused (fl_loop_pause): epoll holds it as asked */
    w->cb = cb;
    w->data = data;
    return 0;
  }
  struct epoll_event ev = {.events = events, .data.fd = fd};
  int op = w->in_epoll ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
  if (epoll_ctl(loop->epfd, op, fd, &ev) != 0) {
    /* The descriptor was closed and its number reused without an unwatch
       (epoll forgot it), or added behind our back: try the other way. */
    int other = op == EPOLL_CTL_MOD ? EPOLL_CTL_ADD : EPOLL_CTL_MOD;
    if ((errno != ENOENT && errno != EEXIST) ||
        epoll_ctl(loop->epfd, other, fd, &ev) != 0)
      return FLOWLUA_EIO;
  }
  *w = (fl_watch){cb, data, events, 1};
  return 0;
}

void fl_loop_unwatch(fl_loop *loop, int fd) {
  if (fd < 0 || fd >= loop->n_watches || !loop->watches[fd].in_epoll) return;
  epoll_ctl(loop->epfd, EPOLL_CTL_DEL, fd, NULL);
  loop->watches[fd] = (fl_watch){NULL, NULL, 0, 0};
}

void fl_loop_pause(fl_loop *loop, int fd) {
  if (fd < 0 || fd >= loop->n_watches) return;
  loop->watches[fd].cb = NULL;
  loop->watches[fd].data = NULL;
}

static void drain_wake_pipe(fl_loop *loop) {
  char buf[64];
  while (read(loop->wake_fd[0], buf, sizeof buf) > 0) {
  }
}

/* epoll_wait takes whole milliseconds, which makes a timer up to 1 ms late
   on average half of one; epoll_pwait2 (Linux 5.11) takes nanoseconds.
   The older call remains for older kernels. wait < 0: no timeout. */
static int wait_events(fl_loop *loop, struct epoll_event *events, int n,
                       double wait) {
#if defined(__GLIBC__) && (__GLIBC__ > 2 || __GLIBC_MINOR__ >= 35)
  if (!loop->no_pwait2) {
    struct timespec ts;
    if (wait >= 0) {
      ts.tv_sec = (time_t)wait;
      ts.tv_nsec = (long)((wait - (double)ts.tv_sec) * 1e9);
      if (ts.tv_nsec > 999999999) ts.tv_nsec = 999999999;
    }
    int got = epoll_pwait2(loop->epfd, events, n, wait < 0 ? NULL : &ts, NULL);
    if (got >= 0 || errno != ENOSYS) return got;
    loop->no_pwait2 = 1;
  }
#endif
  /* Rounded up: never wake before the due time. */
  int timeout_ms = wait < 0 ? -1 : (int)ceil(wait * 1000.0);
  return epoll_wait(loop->epfd, events, n, timeout_ms);
}

int fl_loop_poll(fl_loop *loop, double max_wait) {
  double wait = fl_loop_next_due(loop);
  if (max_wait >= 0 && (wait < 0 || max_wait < wait)) wait = max_wait;
  if (wait > 86400.0) wait = 86400.0;
  struct epoll_event events[16];
  int got = wait_events(loop, events, 16, wait);
  if (got < 0 && errno != EINTR) return FLOWLUA_EIO;
  for (int i = 0; i < got; i++) {
    int fd = events[i].data.fd;
    if (fd == loop->wake_fd[0]) {
      drain_wake_pipe(loop);
    } else if (fd < loop->n_watches && loop->watches[fd].cb) {
      fl_watch w = loop->watches[fd];
      w.cb(fd, events[i].events, w.data);
    } else if (fd < loop->n_watches && loop->watches[fd].in_epoll) {
      /* Paused and ready: level-triggered, it would be reported at every
         poll until its owner watches it again or closes it. */
      epoll_ctl(loop->epfd, EPOLL_CTL_DEL, fd, NULL);
      loop->watches[fd].in_epoll = 0;
    }
  }

  /* Run what is due now; timers armed by callbacks for "now" wait for the
     next poll, so a callback that re-arms itself at 0 cannot spin here. */
  double now = fl_now();
  uint64_t seq_limit = loop->seq;
  int fired = 0;
  while (loop->n > 0 && loop->heap[0]->due <= now &&
         loop->heap[0]->seq < seq_limit) {
    fl_timer *t = loop->heap[0];
    fl_timer_stop(loop, t);
    t->cb(t);
    fired++;
  }
  return fired;
}

void fl_loop_wake(fl_loop *loop) {
  int saved = errno; /* a signal handler must not clobber errno */
  if (loop->wake_fd[1] >= 0) {
    ssize_t r = write(loop->wake_fd[1], "", 1);
    (void)r; /* a full pipe already means "wake up" */
  }
  errno = saved;
}
