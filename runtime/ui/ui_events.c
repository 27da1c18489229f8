/*
 * ui_events.c — a run's changes as server-sent events (ui_events.h).
 *
 * Events, each "event: NAME\ndata: JSON\n\n":
 *   run   the run's mark now: first at once, then at each change;
 *   end   the run has ended (its final mark); the stream then ends, and
 *         the page closes its EventSource so that it does not reconnect;
 *   gone  the run is no longer in the history (pruned); the stream ends.
 * A comment line (": ping") every PING_SECONDS otherwise: a client that
 * went away is noticed at the latest then, though the socket is watched
 * as the stream waits, which notices it at once.
 *
 * How soon a change is seen: the engine commits each flush of task state
 * changes as one transaction (store_batch.c), which another process's
 * next read sees at once in SQLite's WAL mode and in PostgreSQL alike; a
 * flush follows each turn of the engine's loop that changed anything. So
 * the delay is this poll, at most POLL_MS.
 */
#define _GNU_SOURCE /* POLLRDHUP */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "ui_events.h"

#define POLL_MS 250
#define PING_SECONDS 10

typedef struct stream {
  fl_ui_streams *s;
  int fd; /* the client's socket: watched, never read */
  char id[96];
  flowlua_run_mark last;
  int sent, finished;
  double next_ping;
} stream;

static double now_mono(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int same_mark(const flowlua_run_mark *a, const flowlua_run_mark *b) {
  return a->state == b->state && a->ended_at == b->ended_at &&
         a->task_runs == b->task_runs && a->changes == b->changes;
}

/* The event for mark m into buf (at most max bytes), its length. */
static size_t format_event(const stream *st, const flowlua_run_mark *m,
                           const char *name, char *buf, size_t max) {
  int n = snprintf(buf, max,
                   "%sevent: %s\ndata: {\"id\":\"%s\",\"state\":\"%s\","
                   "\"task_runs\":%lld,\"changes\":%lld}\n\n",
                   st->sent ? "" : "retry: 2000\n", name, st->id,
                   flowlua_flow_state_name(m->state), m->task_runs,
                   m->changes);
  return n > 0 && (size_t)n < max ? (size_t)n : 0;
}

/* Waits up to POLL_MS for the server to stop or the client to go. 1 when
   the stream must end, 0 to look at the run again. */
static int wait_a_little(const stream *st) {
  struct pollfd p[2] = {{.fd = st->s->stop_fd, .events = POLLIN},
                        {.fd = st->fd, .events = POLLIN | POLLRDHUP}};
  int n = poll(p, st->fd >= 0 ? 2 : 1, POLL_MS);
  if (n <= 0) return 0; /* the time passed (or EINTR: look again) */
  if (p[0].revents) return 1;
  if (p[1].revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL)) return 1;
  if (p[1].revents & POLLIN) {
    /* Readable: the end of the stream from the client, or bytes an event
       stream's client never sends. Either way this stream is over. */
    char c;
    ssize_t got = recv(st->fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
    return got != -1 || (errno != EAGAIN && errno != EWOULDBLOCK);
  }
  return 0;
}

static ssize_t read_events(void *cls, uint64_t pos, char *buf, size_t max) {
  (void)pos;
  stream *st = cls;
  if (st->finished) return MHD_CONTENT_READER_END_OF_STREAM;
  for (;;) {
    flowlua_run_mark m = FLOWLUA_INIT(flowlua_run_mark);
    pthread_mutex_lock(st->s->lock);
    int rc = flowlua_run_mark_get(st->s->rt, st->id, &m);
    pthread_mutex_unlock(st->s->lock);
    size_t len = 0;
    if (rc != FLOWLUA_OK) {
      len = (size_t)snprintf(buf, max, "event: gone\ndata: {\"id\":\"%s\"}\n\n",
                             st->id);
      st->finished = 1;
      return len < max ? (ssize_t)len : MHD_CONTENT_READER_END_WITH_ERROR;
    }
    if (!st->sent || !same_mark(&m, &st->last)) {
      int ended = m.state != FLOWLUA_FLOW_RUNNING && m.state != FLOWLUA_FLOW_SCHEDULED;
      len = format_event(st, &m, ended ? "end" : "run", buf, max);
      if (!len) return MHD_CONTENT_READER_END_WITH_ERROR;
      st->sent = 1;
      st->last = m;
      st->finished = ended;
      st->next_ping = now_mono() + PING_SECONDS;
      return (ssize_t)len;
    }
    if (now_mono() >= st->next_ping) {
      st->next_ping = now_mono() + PING_SECONDS;
      static const char ping[] = ": ping\n\n";
      memcpy(buf, ping, sizeof ping - 1);
      return (ssize_t)(sizeof ping - 1);
    }
    if (wait_a_little(st)) return MHD_CONTENT_READER_END_WITH_ERROR;
  }
}

static void free_stream(void *cls) {
  stream *st = cls;
  pthread_mutex_lock(st->s->lock);
  st->s->open--;
  pthread_mutex_unlock(st->s->lock);
  free(st);
}

struct MHD_Response *fl_ui_events_response(fl_ui_streams *s,
                                           struct MHD_Connection *c,
                                           const char *run_id,
                                           fl_ui_reply *r) {
  flowlua_run_mark m = FLOWLUA_INIT(flowlua_run_mark);
  int rc = flowlua_run_mark_get(s->rt, run_id, &m);
  if (rc != FLOWLUA_OK) {
    fl_ui_reply_error(r, rc == FLOWLUA_EINVAL ? 404 : 500, "%s (the events "
                      "of a run need its full id)", flowlua_errmsg(s->rt));
    return NULL;
  }
  if (strlen(run_id) >= sizeof ((stream *)0)->id) {
    fl_ui_reply_error(r, 404, "no run with so long an id");
    return NULL;
  }
  if (s->open >= s->max) {
    fl_ui_reply_error(r, 503, "too many event streams open (%d): close "
                      "another page, or reload this one later", s->max);
    return NULL;
  }
  stream *st = calloc(1, sizeof *st);
  if (!st) {
    fl_ui_reply_error(r, 500, "out of memory opening an event stream");
    return NULL;
  }
  st->s = s;
  snprintf(st->id, sizeof st->id, "%s", run_id);
  const union MHD_ConnectionInfo *info =
      fl_ui_mhd()->get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
  st->fd = info ? (int)info->connect_fd : -1;
  struct MHD_Response *resp = fl_ui_mhd()->create_response_from_callback(
      MHD_SIZE_UNKNOWN, 1024, read_events, st, free_stream);
  if (!resp) {
    free(st);
    fl_ui_reply_error(r, 500, "out of memory opening an event stream");
    return NULL;
  }
  s->open++; /* free_stream gives it back, whatever ends the stream */
  return resp;
}
