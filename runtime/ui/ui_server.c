/*
 * ui_server.c — libmicrohttpd's side of `flowlua ui`: the daemon, the
 * routes, and the headers every response carries.
 *
 * Routes (GET and HEAD; POST for the actions, ui_actions.c):
 *   /                 the runs page        /runs/ID    a run's page
 *   /flows            the flows page       /api/flows, /api/session
 *   /static/NAME      a compiled-in asset  /api/...    ui_api.c, ui_run.c
 *   /api/runs/ID/events                    a run's changes (ui_events.c)
 *   /runs/ID/tasks/KEY and /api/runs/ID/tasks/KEY: a task run (ui_task.c)
 * The pages are static: they hold nothing from the history, which their
 * script fetches from /api/ and writes as text, never as HTML (an error
 * or a task name is untrusted).
 *
 * Threads: one per connection (MHD_USE_THREAD_PER_CONNECTION), not one
 * thread for all. An event stream waits for the run to change for as
 * long as the page is open; on a single polling thread it would have to
 * be suspended and resumed by a watcher thread of our own, which then
 * reads the history for every stream anyway. A thread per connection
 * lets the stream's reader simply wait on its own thread. The price is
 * that requests now run on several threads, and the flowlua handle and
 * the loaded runs (ui_run.c) are not thread-safe: every use of them is
 * under `lock`, the actions' included. Reads of the history are short (a
 * page of runs, a mark) but for loading a large run; the connection limit
 * bounds the threads.
 */
#define _GNU_SOURCE /* eventfd flags */
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "ui_actions.h"
#include "ui_api.h"
#include "ui_assets.h"
#include "ui_events.h"
#include "ui_mhd.h"
#include "ui_run.h"
#include "ui_server.h"
#include "ui_task.h"

/* Scripts only from our own files (no inline script: an injected <script>
   would not run), nothing fetched from elsewhere, never framed. */
#define CSP                                                                    \
  "default-src 'self'; script-src 'self'; style-src 'self'; "                  \
  "img-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; "   \
  "form-action 'self'; frame-ancestors 'none'"

/* At most this many query parameters are looked at; more is a 400. */
#define MAX_PARAMS 16
/* Connections (each a thread) and, among them, event streams: a stream
   holds its connection for as long as its page is open. */
#define MAX_CONNECTIONS 64
#define MAX_STREAMS 32

struct fl_ui_server {
  struct MHD_Daemon *daemon;
  flowlua *rt;
  pthread_mutex_t lock; /* every use of rt, runs and actions */
  fl_ui_runs *runs;
  fl_ui_streams streams;
  fl_ui_actions *actions;
};

static void reply_text(fl_ui_reply *r, unsigned status, const char *text) {
  *r = (fl_ui_reply){.status = status, .type = "text/plain; charset=utf-8",
                     .body = text, .len = strlen(text)};
}

static void reply_asset(fl_ui_reply *r, const char *name) {
  const fl_ui_asset *a = fl_ui_asset_find(name);
  if (!a) {
    reply_text(r, 404, "not found\n");
    return;
  }
  *r = (fl_ui_reply){.status = 200, .type = fl_ui_asset_type(a),
                     .body = (const char *)a->data, .len = a->size};
}

typedef struct param_list {
  fl_ui_param items[MAX_PARAMS];
  size_t n;
  int overflow;
} param_list;

static enum MHD_Result collect_param(void *cls, enum MHD_ValueKind kind,
                                     const char *key, const char *value) {
  (void)kind;
  param_list *l = cls;
  if (l->n == MAX_PARAMS) {
    l->overflow = 1;
    return MHD_NO;
  }
  l->items[l->n++] = (fl_ui_param){key, value};
  return MHD_YES;
}

/* "ID" of PREFIX/ID when url is one, with no further '/' and not empty. */
static const char *tail_of(const char *url, const char *prefix) {
  size_t n = strlen(prefix);
  if (strncmp(url, prefix, n) != 0) return NULL;
  const char *tail = url + n;
  return *tail && !strchr(tail, '/') ? tail : NULL;
}

/* The query's parameters, or 0 with a 400 in r. */
static int get_params(struct MHD_Connection *c, param_list *params,
                      fl_ui_reply *r) {
  params->n = 0;
  params->overflow = 0;
  fl_ui_mhd()->get_connection_values(c, MHD_GET_ARGUMENT_KIND, collect_param,
                                     params);
  if (!params->overflow) return 1;
  fl_ui_reply_error(r, 400, "more than %d query parameters", MAX_PARAMS);
  return 0;
}

/* "/api/runs/ID/PART": ID copied into id (NUL-terminated) and PART, or
   NULL when url is not of that form. */
static const char *run_part(const char *url, char *id, size_t idlen) {
  static const char prefix[] = "/api/runs/";
  if (strncmp(url, prefix, sizeof prefix - 1) != 0) return NULL;
  const char *start = url + sizeof prefix - 1, *slash = strchr(start, '/');
  if (!slash || slash == start || (size_t)(slash - start) >= idlen ||
      !slash[1] || strchr(slash + 1, '/'))
    return NULL;
  memcpy(id, start, (size_t)(slash - start));
  id[slash - start] = '\0';
  return slash + 1;
}

static void route_api(fl_ui_server *s, struct MHD_Connection *c,
                      const char *url, fl_ui_reply *r) {
  const char *id, *part;
  char run_id[128];
  param_list params;
  if (strcmp(url, "/api/session") == 0) {
    fl_ui_actions_session(s->actions, r);
  } else if (strcmp(url, "/api/flows") == 0) {
    fl_ui_api_flows(s->rt, r);
  } else if (strcmp(url, "/api/runs") == 0) {
    if (get_params(c, &params, r))
      fl_ui_api_runs(s->rt, params.items, params.n, r);
  } else if ((id = tail_of(url, "/api/runs/"))) {
    fl_ui_api_run(s->rt, id, r);
  } else if ((part = run_part(url, run_id, sizeof run_id))) {
    if (get_params(c, &params, r))
      fl_ui_api_run_part(s->runs, s->rt, run_id, part, params.items, params.n, r);
  } else {
    fl_ui_reply_error(r, 404, "no such API path");
  }
}

/* The run page, or a 404 page when the run is not there: a link to a
   pruned run says so at once, with the status a crawler or a script
   understands. A full id is checked by its mark (one indexed row); only
   a prefix or "last" loads the run to resolve it. */
static void route_run_page(fl_ui_server *s, const char *id, fl_ui_reply *r) {
  flowlua_run_mark mark = FLOWLUA_INIT(flowlua_run_mark);
  int rc = flowlua_run_mark_get(s->rt, id, &mark);
  fl_ui_reply err = {0};
  if (rc == FLOWLUA_EINVAL && fl_ui_runs_get(s->runs, s->rt, id, &err))
    rc = FLOWLUA_OK;
  if (err.release) err.release((void *)err.body);
  reply_asset(r, rc == FLOWLUA_EINVAL || err.status == 404 ? "norun.html"
                                                            : "run.html");
  if (rc == FLOWLUA_EINVAL || err.status == 404) r->status = 404;
}

static void route(fl_ui_server *s, struct MHD_Connection *c, const char *url,
                  fl_ui_reply *r) {
  const char *name;
  if (fl_ui_task_route(s->rt, url, r)) /* before /runs/ID and /api/ */
    return;
  if (strncmp(url, "/api/", 5) == 0)
    route_api(s, c, url, r);
  else if (strcmp(url, "/") == 0)
    reply_asset(r, "index.html");
  else if (strcmp(url, "/flows") == 0)
    reply_asset(r, "flows.html");
  else if (strcmp(url, "/favicon.ico") == 0) /* browsers ask: none, quietly */
    *r = (fl_ui_reply){.status = 204, .type = "image/x-icon", .body = "", .len = 0};
  else if ((name = tail_of(url, "/runs/")))
    route_run_page(s, name, r);
  else if ((name = tail_of(url, "/static/")))
    reply_asset(r, name);
  else
    reply_text(r, 404, "not found\n");
}

static int add_headers(struct MHD_Response *resp, const fl_ui_reply *r) {
  const fl_ui_mhd_api *m = fl_ui_mhd();
  /* The API's answers change with every run; the assets change with the
     binary only, but must be checked again after an upgrade. */
  const char *cache = r->api ? "no-store" : "no-cache";
  return m->add_response_header(resp, "Content-Type", r->type) == MHD_YES &&
         m->add_response_header(resp, "Content-Security-Policy", CSP) == MHD_YES &&
         m->add_response_header(resp, "X-Content-Type-Options", "nosniff") == MHD_YES &&
         m->add_response_header(resp, "Referrer-Policy", "no-referrer") == MHD_YES &&
         m->add_response_header(resp, "X-Frame-Options", "DENY") == MHD_YES &&
         m->add_response_header(resp, "Cache-Control", cache) == MHD_YES &&
         (!r->allow || m->add_response_header(resp, "Allow", r->allow) == MHD_YES);
}

static enum MHD_Result send_reply(struct MHD_Connection *c, fl_ui_reply *r) {
  struct MHD_Response *resp =
      r->release
          ? fl_ui_mhd()->create_response_from_buffer_with_free_callback(
                r->len, (void *)r->body, r->release)
          : fl_ui_mhd()->create_response_from_buffer(r->len, (void *)r->body,
                                            MHD_RESPMEM_PERSISTENT);
  if (!resp) {
    if (r->release) r->release((void *)r->body);
    return MHD_NO; /* MHD closes the connection */
  }
  enum MHD_Result ok = MHD_NO;
  if (add_headers(resp, r)) ok = fl_ui_mhd()->queue_response(c, r->status, resp);
  fl_ui_mhd()->destroy_response(resp); /* the queue holds its own reference */
  return ok;
}

/* What *req holds for a GET or HEAD once its headers were seen (an
   action's request holds its own state there instead). */
static char headers_seen;

/* GET /api/runs/ID/events: a response that streams (ui_events.c). */
static enum MHD_Result send_events(fl_ui_server *s, struct MHD_Connection *c,
                                   const char *run_id) {
  fl_ui_reply r = {0};
  param_list params;
  struct MHD_Response *resp = NULL;
  pthread_mutex_lock(&s->lock);
  if (get_params(c, &params, &r) && params.n)
    fl_ui_reply_error(&r, 400, "the events take no parameter");
  else if (params.n == 0)
    resp = fl_ui_events_response(&s->streams, c, run_id, &r);
  pthread_mutex_unlock(&s->lock);
  if (!resp) return send_reply(c, &r);
  r = (fl_ui_reply){.status = 200, .type = "text/event-stream", .api = 1};
  enum MHD_Result ok = MHD_NO;
  if (add_headers(resp, &r)) ok = fl_ui_mhd()->queue_response(c, 200, resp);
  fl_ui_mhd()->destroy_response(resp); /* frees the stream if not queued */
  return ok;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c,
                                  const char *url, const char *method,
                                  const char *version, const char *upload,
                                  size_t *upload_size, void **req) {
  (void)version;
  fl_ui_server *s = cls;
  fl_ui_reply r = {0};
  char run_id[128];
  const char *part;
  if (strcmp(method, MHD_HTTP_METHOD_POST) == 0) {
    /* An action: its form comes over several calls (ui_actions.c), which
       keep their state in *req. */
    pthread_mutex_lock(&s->lock);
    int answered = fl_ui_action_step(s->actions, s->rt, c, url, upload,
                                     upload_size, req, &r);
    pthread_mutex_unlock(&s->lock);
    if (!answered) return MHD_YES;
    return send_reply(c, &r);
  }
  /* The first call comes with the headers only: answering then is an
     early response, after which libmicrohttpd closes the connection
     (Connection: close, a new TCP connection and thread per request).
     The answer is given on the second call, once the request is whole. */
  if (!*req) {
    *req = &headers_seen;
    return MHD_YES;
  }
  if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 &&
      strcmp(method, MHD_HTTP_METHOD_HEAD) != 0) {
    fl_ui_reply_error(&r, 405, "only GET and HEAD, and POST for actions");
    r.allow = "GET, HEAD, POST";
  } else if ((part = run_part(url, run_id, sizeof run_id)) &&
             strcmp(part, "events") == 0) {
    return send_events(s, c, run_id);
  } else {
    pthread_mutex_lock(&s->lock);
    route(s, c, url, &r);
    pthread_mutex_unlock(&s->lock);
  }
  return send_reply(c, &r);
}

/* Percent-decoding in place, as libmicrohttpd's own, except that "%00"
   stays as it is: a decoded NUL would end the C string the routes see, and
   "/static/ui.css%00.html" would be served as ui.css. */
static int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

static size_t unescape(void *cls, struct MHD_Connection *c, char *s) {
  (void)cls, (void)c;
  char *out = s;
  for (const char *in = s; *in; in++) {
    int hi = in[0] == '%' ? hex_value(in[1]) : -1;
    int lo = hi >= 0 ? hex_value(in[2]) : -1;
    if (lo >= 0 && (hi || lo)) {
      *out++ = (char)(hi << 4 | lo);
      in += 2;
    } else {
      *out++ = *in;
    }
  }
  *out = '\0';
  return (size_t)(out - s);
}

/* A request ended (answered or not): what its action held is freed. */
static void on_completed(void *cls, struct MHD_Connection *c, void **req,
                         enum MHD_RequestTerminationCode why) {
  (void)cls, (void)c, (void)why;
  if (*req != &headers_seen) fl_ui_action_done(*req);
  *req = NULL;
}

static void log_mhd(void *cls, const char *fmt, va_list ap) {
  (void)cls;
  fputs("flowlua ui: ", stderr);
  vfprintf(stderr, fmt, ap);
}

static void server_free(fl_ui_server *s) {
  if (s->streams.stop_fd >= 0) close(s->streams.stop_fd);
  fl_ui_runs_free(s->runs);
  pthread_mutex_destroy(&s->lock);
  free(s);
}

int fl_ui_server_start(flowlua *rt, fl_ui_actions *actions, int listen_fd,
                       fl_ui_server **out, char *err, size_t errlen) {
  *out = NULL;
  if (fl_ui_mhd_load(err, errlen) != 0) {
    close(listen_fd);
    return -1;
  }
  fl_ui_server *s = calloc(1, sizeof *s);
  if (!s) {
    snprintf(err, errlen, "out of memory starting the server");
    close(listen_fd);
    return -1;
  }
  pthread_mutex_init(&s->lock, NULL);
  if (actions) fl_ui_actions_set_lock(actions, &s->lock);
  s->rt = rt;
  s->actions = actions;
  s->runs = fl_ui_runs_new();
  s->streams = (fl_ui_streams){.lock = &s->lock, .rt = rt, .max = MAX_STREAMS,
                               .stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)};
  if (!s->runs || s->streams.stop_fd < 0) {
    snprintf(err, errlen, "cannot start the server: %s",
             s->runs ? "no eventfd for stopping streams" : "out of memory");
    close(listen_fd);
    server_free(s);
    return -1;
  }
  s->daemon = fl_ui_mhd()->start_daemon(
      MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
          MHD_USE_AUTO | MHD_USE_ERROR_LOG,
      0, NULL, NULL, on_request, s,
      /* first, or libmicrohttpd logs the options before it on its own */
      MHD_OPTION_EXTERNAL_LOGGER, log_mhd, NULL,
      MHD_OPTION_LISTEN_SOCKET, (MHD_socket)listen_fd,
      MHD_OPTION_UNESCAPE_CALLBACK, unescape, NULL,
      MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL,
      MHD_OPTION_CONNECTION_LIMIT, (unsigned)MAX_CONNECTIONS,
      MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)30,
      MHD_OPTION_END);
  if (!s->daemon) {
    snprintf(err, errlen, "cannot start the HTTP server (libmicrohttpd)");
    /* Whether a failed start closed the socket is not said: close it only
       if it is still ours. */
    if (fcntl(listen_fd, F_GETFD) != -1) close(listen_fd);
    server_free(s);
    return -1;
  }
  *out = s;
  return 0;
}

void fl_ui_server_stop(fl_ui_server *s) {
  if (!s) return;
  /* Streams wait on this: they end, so that their threads can be joined. */
  uint64_t one = 1;
  if (write(s->streams.stop_fd, &one, sizeof one) != sizeof one)
    fprintf(stderr, "flowlua ui: cannot wake the event streams (they end "
                    "as their connections are closed)\n");
  fl_ui_mhd()->stop_daemon(s->daemon); /* closes the listening socket too */
  server_free(s);
}
