/*
 * ui_server.c — libmicrohttpd's side of `flowlua ui`: the daemon, the
 * routes, and the headers every response carries.
 *
 * Routes (GET and HEAD only; this slice has no action):
 *   /                 the runs page        /runs/ID    a run's page
 *   /static/NAME      a compiled-in asset  /api/...    ui_api.c
 *   /runs/ID/tasks/KEY and /api/runs/ID/tasks/KEY: a task run (ui_task.c)
 * The pages are static: they hold nothing from the history, which their
 * script fetches from /api/ and writes as text, never as HTML (an error
 * or a task name is untrusted).
 */
#define _POSIX_C_SOURCE 200809L
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ui_actions.h"
#include "ui_api.h"
#include "ui_assets.h"
#include "ui_mhd.h"
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

struct fl_ui_server {
  struct MHD_Daemon *daemon;
  flowlua *rt;
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

static void route_api(fl_ui_server *s, struct MHD_Connection *c,
                      const char *url, fl_ui_reply *r) {
  const char *id;
  if (strcmp(url, "/api/session") == 0) {
    fl_ui_actions_session(s->actions, r);
  } else if (strcmp(url, "/api/flows") == 0) {
    fl_ui_api_flows(s->rt, r);
  } else if (strcmp(url, "/api/runs") == 0) {
    param_list params = {.n = 0};
    fl_ui_mhd()->get_connection_values(c, MHD_GET_ARGUMENT_KIND, collect_param, &params);
    if (params.overflow)
      fl_ui_reply_error(r, 400, "more than %d query parameters", MAX_PARAMS);
    else
      fl_ui_api_runs(s->rt, params.items, params.n, r);
  } else if ((id = tail_of(url, "/api/runs/"))) {
    fl_ui_api_run(s->rt, id, r);
  } else {
    fl_ui_reply_error(r, 404, "no such API path");
  }
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
  else if (tail_of(url, "/runs/")) /* the page fetches the run itself */
    reply_asset(r, "run.html");
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
         m->add_response_header(resp, "Cache-Control", cache) == MHD_YES;
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

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c,
                                  const char *url, const char *method,
                                  const char *version, const char *upload,
                                  size_t *upload_size, void **req) {
  (void)version;
  fl_ui_server *s = cls;
  fl_ui_reply r;
  if (strcmp(method, MHD_HTTP_METHOD_POST) == 0) {
    /* An action: its form comes over several calls (ui_actions.c). */
    if (!fl_ui_action_step(s->actions, s->rt, c, url, upload, upload_size,
                           req, &r))
      return MHD_YES;
  } else if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 &&
             strcmp(method, MHD_HTTP_METHOD_HEAD) != 0) {
    fl_ui_reply_error(&r, 405, "only GET and HEAD, and POST for actions");
  } else {
    route(s, c, url, &r);
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
  fl_ui_action_done(*req);
  *req = NULL;
}

static void log_mhd(void *cls, const char *fmt, va_list ap) {
  (void)cls;
  fputs("flowlua ui: ", stderr);
  vfprintf(stderr, fmt, ap);
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
  s->rt = rt;
  s->actions = actions;
  s->daemon = fl_ui_mhd()->start_daemon(
      MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO | MHD_USE_ERROR_LOG, 0,
      NULL, NULL, on_request, s,
      /* first, or libmicrohttpd logs the options before it on its own */
      MHD_OPTION_EXTERNAL_LOGGER, log_mhd, NULL,
      MHD_OPTION_LISTEN_SOCKET, (MHD_socket)listen_fd,
      MHD_OPTION_UNESCAPE_CALLBACK, unescape, NULL,
      MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL,
      MHD_OPTION_CONNECTION_LIMIT, (unsigned)256,
      MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)30,
      MHD_OPTION_END);
  if (!s->daemon) {
    snprintf(err, errlen, "cannot start the HTTP server (libmicrohttpd)");
    /* Whether a failed start closed the socket is not said: close it only
       if it is still ours. */
    if (fcntl(listen_fd, F_GETFD) != -1) close(listen_fd);
    free(s);
    return -1;
  }
  *out = s;
  return 0;
}

void fl_ui_server_stop(fl_ui_server *s) {
  if (!s) return;
  fl_ui_mhd()->stop_daemon(s->daemon); /* closes the listening socket too */
  free(s);
}
