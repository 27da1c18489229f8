/*
 * loop.h — the event loop: a monotonic clock, timers and a wake-up channel.
 *
 * Plain C, no Lua. One loop per runtime. Timers live in a binary min-heap
 * ordered by due time, ties in arming order. The loop blocks in epoll_wait
 * until the next timer is due or the loop is woken (fl_loop_wake, which is
 * async-signal-safe and thread-safe). File-descriptor sources (HTTP transfers,
 * child processes) register with the same epoll set.
 */
#ifndef FL_LOOP_H
#define FL_LOOP_H

#include <stddef.h>
#include <stdint.h>

typedef struct fl_timer fl_timer;
typedef void (*fl_timer_cb)(fl_timer *t);

struct fl_timer {
  double due;      /* monotonic seconds */
  uint64_t seq;    /* arming order, for ties */
  size_t slot;     /* 1 + index in the heap; 0 when not armed */
  fl_timer_cb cb;
  void *data;      /* the owner's, never touched by the loop */
};

/* Called when a watched file descriptor is ready; `events` are EPOLLIN,
   EPOLLOUT, EPOLLERR, EPOLLHUP bits. May be spurious: handlers must cope
   with a descriptor that is not ready after all. */
typedef void (*fl_watch_cb)(int fd, uint32_t events, void *data);

typedef struct fl_watch {
  fl_watch_cb cb; /* NULL when no one is called for the descriptor */
  void *data;
  uint32_t events;
  int in_epoll; /* epoll holds the descriptor with `events` (also while
                   paused: fl_loop_pause) */
} fl_watch;

typedef struct fl_loop {
  fl_timer **heap;
  size_t n, cap;
  uint64_t seq;
  int epfd;
  int wake_fd[2]; /* self-pipe: [0] read end in epfd, [1] written to wake */
  /* Watches are found by descriptor number, never by pointer, so a watch
     removed by one callback cannot be reached by a later event of the same
     batch. */
  fl_watch *watches;
  int n_watches;
  int no_pwait2; /* the kernel lacks epoll_pwait2: millisecond waits */
} fl_loop;

/* Seconds on the monotonic clock. */
double fl_now(void);
/* Seconds since the epoch on the wall clock, with sub-second precision. */
double fl_wall_time(void);

/* 0, or a negative FLOWLUA_* code (errno kept) when epoll or the pipe fail. */
int fl_loop_init(fl_loop *loop);
void fl_loop_close(fl_loop *loop);

static inline void fl_timer_init(fl_timer *t, fl_timer_cb cb, void *data) {
  t->due = 0;
  t->seq = 0;
  t->slot = 0;
  t->cb = cb;
  t->data = data;
}
static inline int fl_timer_armed(const fl_timer *t) { return t->slot != 0; }

/* Arms (or re-arms) t to fire `delay` seconds from now. FLOWLUA_ENOMEM. */
int fl_timer_start(fl_loop *loop, fl_timer *t, double delay);
/* Disarms t; harmless when it is not armed. */
void fl_timer_stop(fl_loop *loop, fl_timer *t);

/* Seconds until the earliest timer is due (0 if overdue), or -1 if none. */
double fl_loop_next_due(const fl_loop *loop);

/*
 * Waits at most `max_wait` seconds (-1: until a timer or a wake-up; 0: do
 * not block) for a timer or a wake-up, then runs every timer that is due.
 * A timer callback may arm or stop any timer. Returns the number of timers
 * run, or a negative FLOWLUA_* code if waiting failed.
 */
int fl_loop_poll(fl_loop *loop, double max_wait);

/* Watches fd for `events` (EPOLLIN and/or EPOLLOUT), or changes the watch
   if it is already watched. 0, or a negative FLOWLUA_* code. */
int fl_loop_watch(fl_loop *loop, int fd, uint32_t events, fl_watch_cb cb,
                  void *data);
/* Stops watching fd; harmless when it is not watched. Call it before
   closing the descriptor. */
void fl_loop_unwatch(fl_loop *loop, int fd);
/* Stops calling back for fd but leaves it in epoll, so that watching it
   again with the same events costs no system call (curl parks a kept-alive
   connection between two transfers this way, each park and reuse two
   epoll_ctl calls otherwise). If it becomes ready meanwhile (the peer
   closed it), the loop takes it out of epoll then. The owner must call
   fl_loop_unwatch before closing it: epoll would forget a closed
   descriptor, and a new one given the same number and watched with the
   same events would never be added. Harmless when fd is not watched. */
void fl_loop_pause(fl_loop *loop, int fd);

/* Interrupts a blocked fl_loop_poll. Async-signal-safe, any thread. */
void fl_loop_wake(fl_loop *loop);

#endif
