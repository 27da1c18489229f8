/*
 * http.c — libcurl multi driven by the runtime's event loop.
 *
 * curl tells us which sockets to watch (CURLMOPT_SOCKETFUNCTION) and when to
 * call it back (CURLMOPT_TIMERFUNCTION); the loop reports readiness and
 * timer expiry, and we hand both back to curl_multi_socket_action. Finished
 * transfers are collected after every such call. Bodies are bounded by
 * max_body so that a hostile server cannot exhaust memory.
 */
#define _GNU_SOURCE
#include "http.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "curlapi.h"
#include "flowlua.h"

/* ---- redirects ------------------------------------------------------------ */

/* A URL's origin, pointing into the URL: RFC 6454's scheme, host, port. */
typedef struct origin {
  const char *scheme, *host;
  size_t scheme_len, host_len;
  long port; /* -1: the URL has none and the scheme no default */
} origin;

static int scheme_is(const origin *o, const char *name) {
  return o->scheme_len == strlen(name) &&
         strncasecmp(o->scheme, name, o->scheme_len) == 0;
}

/* Splits url into its origin; 0, or -1 for no "scheme://". */
static int parse_origin(const char *url, origin *o) {
  const char *colon = strstr(url, "://");
  if (!colon || colon == url) return -1;
  o->scheme = url;
  o->scheme_len = (size_t)(colon - url);
  const char *auth = colon + 3;
  size_t auth_len = strcspn(auth, "/?#");
  /* user:password@ is no part of the origin */
  for (size_t i = auth_len; i > 0; i--)
    if (auth[i - 1] == '@') {
      auth_len -= i;
      auth += i;
      break;
    }
  const char *end = auth + auth_len, *port = NULL;
  if (*auth == '[') { /* an IPv6 literal: its colons are no port */
    const char *close = memchr(auth, ']', auth_len);
    if (close && close + 1 < end && close[1] == ':') port = close + 1;
  } else {
    port = memchr(auth, ':', auth_len);
  }
  o->host = auth;
  o->host_len = (size_t)((port ? port : end) - auth);
  if (port && port + 1 < end)
    o->port = strtol(port + 1, NULL, 10);
  else
    o->port = scheme_is(o, "https") ? 443 : scheme_is(o, "http") ? 80 : -1;
  return 0;
}

fl_redirect_kind fl_http_redirect_kind(const char *from, const char *to) {
  origin a, b;
  if (parse_origin(to, &b) != 0 ||
      !(scheme_is(&b, "http") || scheme_is(&b, "https")))
    return FL_REDIRECT_BAD_SCHEME;
  if (parse_origin(from, &a) != 0) return FL_REDIRECT_OTHER_ORIGIN;
  if (scheme_is(&a, "https") && scheme_is(&b, "http"))
    return FL_REDIRECT_DOWNGRADE;
  int same = a.scheme_len == b.scheme_len &&
             strncasecmp(a.scheme, b.scheme, a.scheme_len) == 0 &&
             a.host_len == b.host_len &&
             strncasecmp(a.host, b.host, a.host_len) == 0 && a.port == b.port;
  return same ? FL_REDIRECT_SAME_ORIGIN : FL_REDIRECT_OTHER_ORIGIN;
}

/* Ends the request with a redirect it will not follow, errbuf saying why. */
static int refuse_redirect(fl_http_req *req, const char *fmt, const char *a) {
  snprintf(req->errbuf, sizeof req->errbuf, fmt, a);
  req->refused = 1;
  req->result = CURLE_TOO_MANY_REDIRECTS; /* any failure: `refused` says */
  return -1;
}

/* The method a redirect with this status turns the request into, as
   browsers and curl do: 303 makes a GET of all but HEAD, 301 and 302 make
   a GET of a POST; 307 and 308 keep it. */
static int redirect_makes_get(long status, const char *method) {
  if (status == 303) return strcmp(method, "HEAD") != 0;
  return (status == 301 || status == 302) && strcmp(method, "POST") == 0;
}

/* Stops sending the request's headers, but for its Content-Type when the
   body goes on (307, 308): it describes the body, not the sender. */
static void drop_headers(fl_http_req *req, int body_goes_on) {
  struct curl_slist *kept = NULL;
  for (struct curl_slist *l = req->headers; body_goes_on && l; l = l->next)
    if (strncasecmp(l->data, "Content-Type:", 13) == 0) {
      struct curl_slist *k = fl_curl()->slist_append(kept, l->data);
      if (k) kept = k;
    }
  fl_curl()->easy_setopt(req->easy, CURLOPT_HTTPHEADER, kept);
  fl_curl()->slist_free_all(req->headers); /* curl uses the list it is given */
  req->headers = kept;
  req->dirty = 1;
}

/*
 * Redirects are followed here, not by curl (CURLOPT_FOLLOWLOCATION), because
 * curl sends every custom header (an X-Api-Key) on to whatever host a
 * redirect names, and follows https to http. Here a redirect to another
 * origin drops the request's headers unless keep_headers, https to http is
 * refused unless allow_downgrade, and anything but http(s) is refused.
 * Returns 1 when the request went on to `to`, 0 when it ends here.
 */
static int follow_redirect(fl_http *h, fl_http_req *req, const char *from,
                           const char *to) {
  CURL *e = req->easy;
  switch (fl_http_redirect_kind(from, to)) {
  case FL_REDIRECT_BAD_SCHEME: {
    char scheme[32];
    snprintf(scheme, sizeof scheme, "%.*s", (int)strcspn(to, ":"), to);
    refuse_redirect(req, "redirect to a %s:// URL refused (only http and "
                         "https are followed)", scheme);
    return 0;
  }
  case FL_REDIRECT_DOWNGRADE:
    if (!req->allow_downgrade) {
      refuse_redirect(req, "redirect from https to plain http (%s) refused: "
                           "set allow_https_downgrade = true to follow it", to);
      return 0;
    }
    /* http is another origin */
    __attribute__((fallthrough));
  case FL_REDIRECT_OTHER_ORIGIN:
    if (!req->keep_headers && req->headers)
      drop_headers(req, !redirect_makes_get(req->status, req->method));
    break;
  case FL_REDIRECT_SAME_ORIGIN:
    break;
  }
  if (++req->n_redirects > 10) {
    req->result = CURLE_TOO_MANY_REDIRECTS;
    return 0;
  }
  long left_ms = 0;
  if (req->timeout_ms > 0) {
    left_ms = req->timeout_ms - (long)(req->elapsed * 1000.0);
    if (left_ms <= 0) {
      req->result = CURLE_OPERATION_TIMEDOUT;
      return 0;
    }
  }
  if (redirect_makes_get(req->status, req->method)) {
    fl_curl()->easy_setopt(e, CURLOPT_CUSTOMREQUEST, (char *)NULL);
    fl_curl()->easy_setopt(e, CURLOPT_HTTPGET, 1L);
    req->dirty = 1;
  }
  char *next = strdup(to); /* `to` is curl's, replaced by the next answer */
  if (!next) {
    req->result = CURLE_OUT_OF_MEMORY;
    return 0;
  }
  CURLcode rc = fl_curl()->easy_setopt(e, CURLOPT_URL, next);
  if (rc == CURLE_OK) rc = fl_curl()->easy_setopt(e, CURLOPT_TIMEOUT_MS, left_ms);
  free(next);
  if (rc != CURLE_OK) {
    req->result = rc;
    return 0;
  }
  fl_buf_reset(&req->resp_body);
  fl_buf_reset(&req->resp_headers);
  req->n_resp_headers = 0;
  req->status = 0;
  req->errbuf[0] = '\0';
  if (fl_curl()->multi_add_handle(h->multi, e) != CURLM_OK) {
    req->result = CURLE_FAILED_INIT;
    snprintf(req->errbuf, sizeof req->errbuf, "cannot start the transfer");
    return 0;
  }
  h->active++;
  req->in_flight = 1;
  req->finished = 0;
  return 1;
}

/* ---- descriptors ----------------------------------------------------------- */

/* EMFILE or ENFILE when no descriptor can be opened right now, else 0.
   curl 7.88 reports a socket() that failed for want of descriptors as
   "Couldn't connect to server", and CURLINFO_OS_ERRNO does not tell (it
   keeps the errno of an earlier transfer of the same handle): asked at
   once, while the other transfers still hold theirs, the table tells. */
static long descriptor_shortage(void) {
  int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    close(fd);
    return 0;
  }
  return errno == EMFILE || errno == ENFILE ? errno : 0;
}

/* How many transfers may run at once under the process's descriptor
   limit. A transfer holds a socket, and while it resolves a host name
   curl's resolver thread holds two more; a quarter of the limit (at most
   64) stays for the state database, logs, files and child processes. */
static int transfers_allowed(void) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY ||
      rl.rlim_cur > (rlim_t)1 << 24)
    return 1 << 24;
  long limit = (long)rl.rlim_cur;
  long reserve = limit / 4 < 64 ? limit / 4 : 64;
  long n = (limit - reserve) / 3;
  return n < 1 ? 1 : (int)n;
}

/* Starts queued requests while there is room for them. */
static void start_queued(fl_http *h) {
  while (h->queue_head && h->active < h->max_active) {
    fl_http_req *req = h->queue_head;
    h->queue_head = req->queue_next;
    if (!h->queue_head) h->queue_tail = NULL;
    req->queue_next = NULL;
    req->queued = 0;
    if (fl_curl()->multi_add_handle(h->multi, req->easy) != CURLM_OK) {
      req->result = CURLE_FAILED_INIT;
      snprintf(req->errbuf, sizeof req->errbuf, "cannot start the transfer");
      req->in_flight = 0;
      req->finished = 1;
      if (req->done) req->done(req);
      continue;
    }
    h->active++;
  }
}

/* ---- driving curl from the loop ------------------------------------------ */

static void finish(fl_http *h, CURL *easy, CURLcode result) {
  fl_http_req *req = NULL;
  fl_curl()->easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&req);
  fl_curl()->multi_remove_handle(h->multi, easy);
  h->active--;
  if (!req) return;
  req->in_flight = 0;
  req->finished = 1;
  req->result = result;
  fl_curl()->easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &req->status);
  curl_off_t us = 0;
  fl_curl()->easy_getinfo(easy, CURLINFO_TOTAL_TIME_T, &us);
  req->elapsed += (double)us / 1e6; /* over the redirects followed */
  req->fd_shortage = 0;
  if (result == CURLE_COULDNT_CONNECT || result == CURLE_COULDNT_RESOLVE_HOST)
    req->fd_shortage = descriptor_shortage();
  char *url = NULL;
  fl_curl()->easy_getinfo(easy, CURLINFO_EFFECTIVE_URL, &url);
  free(req->final_url);
  req->final_url = strdup(url ? url : req->url);
  if (result == CURLE_URL_MALFORMAT && req->n_redirects > 0) {
    /* curl took the Location for a URL and then could not use it */
    char detail[CURL_ERROR_SIZE];
    snprintf(detail, sizeof detail, "%s", req->errbuf);
    snprintf(req->errbuf, sizeof req->errbuf,
             "The redirect target URL could not be parsed%s%.200s",
             detail[0] ? ": " : "", detail);
  }
  char *location = NULL;
  if (result == CURLE_OK && req->follow && req->status >= 300 &&
      req->status <= 399 &&
      fl_curl()->easy_getinfo(easy, CURLINFO_REDIRECT_URL, &location) ==
          CURLE_OK &&
      location && req->final_url &&
      follow_redirect(h, req, req->final_url, location))
    return; /* on to the next hop; `done` comes at the end of the chain */
  /* file:// has no status line: a successful read is a 200. libcurl 7.88
     takes "HTTP/2-9" for status -9 (found by fuzz_http_response): a status
     out of 100-999 is no HTTP response. */
  if (result == CURLE_OK && req->status == 0) req->status = 200;
  if (result == CURLE_OK && (req->status < 100 || req->status > 999)) {
    snprintf(req->errbuf, sizeof req->errbuf, "status %ld", req->status);
    req->result = CURLE_WEIRD_SERVER_REPLY;
  }
  if (req->done) req->done(req);
}

static void collect_finished(fl_http *h) {
  CURLMsg *msg;
  int left;
  while ((msg = fl_curl()->multi_info_read(h->multi, &left)))
    if (msg->msg == CURLMSG_DONE) finish(h, msg->easy_handle, msg->data.result);
  start_queued(h);
}

static void on_fd(int fd, uint32_t events, void *data) {
  fl_http *h = data;
  int flags = 0, running = 0;
  if (events & EPOLLIN) flags |= CURL_CSELECT_IN;
  if (events & EPOLLOUT) flags |= CURL_CSELECT_OUT;
  /* An error or hang-up alone would make curl fail the transfer with
     "select/poll returned error" as a send error, whatever happened; with
     both directions set it reads or writes and reports the real cause
     (a reset, a truncated body). */
  if (events & (EPOLLERR | EPOLLHUP))
    flags |= CURL_CSELECT_IN | CURL_CSELECT_OUT | CURL_CSELECT_ERR;
  fl_curl()->multi_socket_action(h->multi, fd, flags, &running);
  collect_finished(h);
}

static int on_socket(CURL *easy, curl_socket_t s, int what, void *userp,
                     void *socketp) {
  (void)easy, (void)socketp;
  fl_http *h = userp;
  if (what == CURL_POLL_REMOVE) {
    /* A connection going back to curl's cache between two transfers stays
       in epoll, to be watched again without a system call: close_socket
       unwatches it for good. */
    if (s < h->n_own && h->own[s])
      fl_loop_pause(h->loop, s);
    else
      fl_loop_unwatch(h->loop, s);
    return 0;
  }
  uint32_t ev = 0;
  if (what == CURL_POLL_IN || what == CURL_POLL_INOUT) ev |= EPOLLIN;
  if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT) ev |= EPOLLOUT;
  return fl_loop_watch(h->loop, s, ev, on_fd, h) == 0 ? 0 : -1;
}

/* Every socket curl opens is created close-on-exec, in one step, so that
   no program flowlua starts (flow.shell), nor one its host starts on
   another thread at the same moment, inherits a connection to a server.
   It is marked as one whose close close_socket will see. */
static curl_socket_t open_socket(void *userp, curlsocktype purpose,
                                 struct curl_sockaddr *address) {
  (void)purpose;
  fl_http *h = userp;
  curl_socket_t s = socket(address->family, address->socktype | SOCK_CLOEXEC,
                           address->protocol);
  if (s < 0) return CURL_SOCKET_BAD;
  if (s >= h->n_own) {
    int n = h->n_own ? h->n_own : 64;
    while (n <= s) n *= 2;
    unsigned char *own = realloc(h->own, (size_t)n);
    if (!own) return s; /* not marked: unwatched, not paused, when idle */
    memset(own + h->n_own, 0, (size_t)(n - h->n_own));
    h->own = own;
    h->n_own = n;
  }
  h->own[s] = 1;
  return s;
}

static int close_socket(void *userp, curl_socket_t s) {
  fl_http *h = userp;
  fl_loop_unwatch(h->loop, s); /* also when paused: before the close */
  if (s < h->n_own) h->own[s] = 0;
  return close(s);
}

static void on_timer_due(fl_timer *t) {
  fl_http *h = t->data;
  int running = 0;
  fl_curl()->multi_socket_action(h->multi, CURL_SOCKET_TIMEOUT, 0, &running);
  collect_finished(h);
}

static int on_curl_timer(CURLM *multi, long timeout_ms, void *userp) {
  (void)multi;
  fl_http *h = userp;
  if (timeout_ms < 0) {
    fl_timer_stop(h->loop, &h->timer);
    return 0;
  }
  return fl_timer_start(h->loop, &h->timer, (double)timeout_ms / 1000.0) == 0
             ? 0
             : -1;
}

int fl_http_init(fl_http *h, fl_loop *loop, const char **why) {
  memset(h, 0, sizeof *h);
  if (!fl_curl_load(why)) return FLOWLUA_EIO;
  h->loop = loop;
  h->max_active = transfers_allowed();
  fl_timer_init(&h->timer, on_timer_due, h);
  h->multi = fl_curl()->multi_init();
  if (!h->multi) {
    *why = "out of memory creating a curl multi handle";
    return FLOWLUA_ENOMEM;
  }
  fl_curl()->multi_setopt(h->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
  fl_curl()->multi_setopt(h->multi, CURLMOPT_SOCKETDATA, h);
  fl_curl()->multi_setopt(h->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer);
  fl_curl()->multi_setopt(h->multi, CURLMOPT_TIMERDATA, h);
  return 0;
}

void fl_http_close(fl_http *h) {
  if (!h->multi) return;
  fl_timer_stop(h->loop, &h->timer);
  while (h->n_idle > 0) {
    h->n_idle--;
    fl_curl()->easy_cleanup(h->idle[h->n_idle]);
    fl_buf_free(&h->idle_body[h->n_idle]);
    fl_buf_free(&h->idle_headers[h->n_idle]);
  }
  fl_curl()->multi_cleanup(h->multi); /* requests still in flight were freed by
                                   their owners' __gc before this */
  h->multi = NULL;
  free(h->own); /* after the cleanup: it closes the cached connections */
  h->own = NULL;
  h->n_own = 0;
}

/* ---- one request --------------------------------------------------------- */

static size_t on_body(char *data, size_t size, size_t n, void *userp) {
  fl_http_req *req = userp;
  size_t len = size * n;
  if (req->resp_body.len == 0) {
    /* One allocation for the whole body when its length is announced (or
       none, in a kept buffer large enough). */
    curl_off_t announced = -1;
    fl_curl()->easy_getinfo(req->easy, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &announced);
    if (announced > 0 && (size_t)announced <= req->max_body)
      fl_buf_reserve(&req->resp_body, (size_t)announced);
  }
  if (req->resp_body.len + len > req->max_body) {
    req->too_big = 1;
    return 0; /* aborts the transfer with CURLE_WRITE_ERROR */
  }
  fl_buf_add(&req->resp_body, data, len);
  return req->resp_body.oom ? 0 : len;
}

static size_t on_header(char *line, size_t size, size_t n, void *userp) {
  fl_http_req *req = userp;
  size_t len = size * n;
  if (len >= 5 && strncmp(line, "HTTP/", 5) == 0) {
    fl_buf_reset(&req->resp_headers); /* a new response (after a redirect) */
    req->n_resp_headers = 0;
    return len;
  }
  const char *colon = memchr(line, ':', len);
  if (!colon) return len; /* the blank line that ends the headers */
  /* A zero byte would split the stored "name\0value\0" pair in two, so
     that one header could pass for another (Retry-After): no valid
     response has one, and such a line is dropped. */
  if (memchr(line, '\0', len)) return len;
  size_t name_len = (size_t)(colon - line);
  const char *v = colon + 1, *end = line + len;
  while (v < end && (*v == ' ' || *v == '\t')) v++;
  while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' '))
    end--;
  /* One reservation for the pair, then plain stores. */
  fl_buf *b = &req->resp_headers;
  size_t value_len = (size_t)(end - v);
  if (fl_buf_reserve(b, name_len + value_len + 2) != 0) return len;
  char *out = b->data + b->len;
  for (size_t i = 0; i < name_len; i++)
    out[i] = (char)tolower((unsigned char)line[i]);
  out[name_len] = '\0';
  memcpy(out + name_len + 1, v, value_len);
  out[name_len + 1 + value_len] = '\0';
  b->len += name_len + value_len + 2;
  b->data[b->len] = '\0'; /* as fl_buf_add leaves it */
  req->n_resp_headers++;
  return len;
}

fl_http_req *fl_http_req_new(fl_http *h) {
  fl_http_req *req = calloc(1, sizeof *req);
  if (!req) return NULL;
  req->http = h;
  if (h->n_idle > 0) {
    h->n_idle--;
    req->easy = h->idle[h->n_idle];
    req->has_base = h->idle_has_base[h->n_idle];
    req->resp_body = h->idle_body[h->n_idle];
    req->resp_headers = h->idle_headers[h->n_idle];
    h->idle_body[h->n_idle] = (fl_buf)FL_BUF_INIT;
    h->idle_headers[h->n_idle] = (fl_buf)FL_BUF_INIT;
  } else {
    req->easy = fl_curl()->easy_init();
  }
  if (!req->easy) {
    free(req);
    return NULL;
  }
  req->retry_after = -1;
  return req;
}

static int fail_prepare(fl_http_req *req, const char *why) {
  snprintf(req->errbuf, sizeof req->errbuf, "%s", why);
  return -1;
}

int fl_http_req_prepare(fl_http_req *req, const fl_http_opts *o) {
  CURL *e = req->easy;
  req->method = strdup(o->method);
  req->url = strdup(o->url);
  if (!req->method || !req->url) return fail_prepare(req, "out of memory");
  if (o->body) {
    req->body = malloc(o->body_len ? o->body_len : 1);
    if (!req->body) return fail_prepare(req, "out of memory");
    memcpy(req->body, o->body, o->body_len);
    req->body_len = o->body_len;
  }
  for (const char *const *hl = o->headers; hl && *hl; hl++) {
    struct curl_slist *l = fl_curl()->slist_append(req->headers, *hl);
    if (!l) return fail_prepare(req, "out of memory");
    req->headers = l;
  }
  req->max_body = o->max_body;

  CURLcode rc = CURLE_OK;
#define SET(opt, val)                                                          \
  if (rc == CURLE_OK) rc = fl_curl()->easy_setopt(e, opt, val)
  if (!req->has_base) {
    /* The options every request shares. Set once per handle: the encoding
       list and the protocol names are parsed and copied at each setting. */
    SET(CURLOPT_NOSIGNAL, 1L);
    SET(CURLOPT_OPENSOCKETFUNCTION, open_socket);
    SET(CURLOPT_OPENSOCKETDATA, (void *)req->http);
    SET(CURLOPT_CLOSESOCKETFUNCTION, close_socket);
    SET(CURLOPT_CLOSESOCKETDATA, (void *)req->http);
    SET(CURLOPT_PROTOCOLS_STR, "http,https,file");
    SET(CURLOPT_WRITEFUNCTION, on_body);
    SET(CURLOPT_HEADERFUNCTION, on_header);
    SET(CURLOPT_USERAGENT, "flowlua/" FLOWLUA_VERSION);
    req->has_base = rc == CURLE_OK;
  }
  /* Every request sets these, so a reused handle keeps nothing of the
     last one's. */
  SET(CURLOPT_URL, req->url);
  SET(CURLOPT_PRIVATE, (void *)req);
  SET(CURLOPT_ERRORBUFFER, req->errbuf);
  SET(CURLOPT_WRITEDATA, (void *)req);
  SET(CURLOPT_HEADERDATA, (void *)req);
  SET(CURLOPT_FOLLOWLOCATION, 0L); /* follow_redirect does it */
  SET(CURLOPT_SSL_VERIFYPEER, o->verify ? 1L : 0L);
  SET(CURLOPT_SSL_VERIFYHOST, o->verify ? 2L : 0L);
  req->follow = o->follow;
  req->keep_headers = o->keep_headers;
  req->allow_downgrade = o->allow_downgrade;
  req->timeout_ms = o->timeout > 0 ? (long)ceil(o->timeout * 1000.0) : 0L;
  SET(CURLOPT_TIMEOUT_MS, req->timeout_ms);
  /* The rest only some requests set: the handle is reset after them. */
  req->dirty = o->ca_file || req->headers || o->compressed ||
               strcmp(req->method, "GET") != 0 || req->body;
  if (o->ca_file) SET(CURLOPT_CAINFO, o->ca_file);
  /* Only when asked: curl formats the header again for every request,
     about 10,000 instructions of the 145,000 a plain GET of the bench
     costs, and on a fast network the compression saves less than that. */
  if (o->compressed) SET(CURLOPT_ACCEPT_ENCODING, "");
  if (req->headers) SET(CURLOPT_HTTPHEADER, req->headers);
  if (strcmp(req->method, "GET") == 0 && !req->body) {
    SET(CURLOPT_HTTPGET, 1L);
  } else if (strcmp(req->method, "HEAD") == 0) {
    SET(CURLOPT_NOBODY, 1L);
  } else {
    if (strcmp(req->method, "POST") != 0)
      SET(CURLOPT_CUSTOMREQUEST, req->method);
    if (req->body || strcmp(req->method, "POST") == 0) {
      SET(CURLOPT_POSTFIELDS, req->body ? req->body : "");
      SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
    }
  }
#undef SET
  if (rc != CURLE_OK) {
    req->dirty = 1; /* some options set, some not: reset before reuse */
    return fail_prepare(req, fl_curl()->easy_strerror(rc));
  }
  return 0;
}

int fl_http_start(fl_http_req *req, fl_http_done_cb done, void *data) {
  fl_http *h = req->http;
  req->done = done;
  req->data = data;
  if (h->active >= h->max_active) {
    req->queued = 1;
    req->in_flight = 1;
    if (h->queue_tail)
      h->queue_tail->queue_next = req;
    else
      h->queue_head = req;
    h->queue_tail = req;
    return 0;
  }
  if (fl_curl()->multi_add_handle(h->multi, req->easy) != CURLM_OK)
    return fail_prepare(req, "cannot start the transfer");
  req->in_flight = 1;
  if (++h->active > h->peak_active) {
    /* curl keeps 4 idle connections per transfer in the multi handle at
       the moment one ends. Finished transfers leave the multi before their
       tasks resume and start the next request, so that count dips after a
       batch of completions and curl closes connections it is about to
       need again. Sizing the cache from the peak keeps them, within the
       descriptors the limit leaves. */
    h->peak_active = h->active;
    long cache = 4L * (long)h->peak_active;
    if (cache > h->max_active) cache = h->max_active;
    fl_curl()->multi_setopt(h->multi, CURLMOPT_MAXCONNECTS, cache);
  }
  return 0;
}

static void unqueue(fl_http_req *req) {
  fl_http *h = req->http;
  fl_http_req **p = &h->queue_head, *prev = NULL;
  while (*p && *p != req) prev = *p, p = &(*p)->queue_next;
  if (!*p) return;
  *p = req->queue_next;
  if (h->queue_tail == req) h->queue_tail = prev;
  req->queue_next = NULL;
  req->queued = 0;
}

void fl_http_cancel(fl_http_req *req) {
  if (!req->in_flight) return;
  req->in_flight = 0;
  if (req->queued) {
    unqueue(req);
    return;
  }
  fl_curl()->multi_remove_handle(req->http->multi, req->easy);
  req->http->active--;
  start_queued(req->http);
}

void fl_http_req_free(fl_http_req *req) {
  if (!req) return;
  fl_http_cancel(req);
  fl_http *h = req->http;
  if (h->multi && h->n_idle < FL_HTTP_IDLE_MAX) {
    CURL *e = req->easy;
    int keep_base = req->has_base && !req->dirty;
    if (keep_base) {
      /* No pointer into this request outlives it. */
      fl_curl()->easy_setopt(e, CURLOPT_PRIVATE, (void *)NULL);
      fl_curl()->easy_setopt(e, CURLOPT_ERRORBUFFER, (char *)NULL);
      fl_curl()->easy_setopt(e, CURLOPT_WRITEDATA, (void *)NULL);
      fl_curl()->easy_setopt(e, CURLOPT_HEADERDATA, (void *)NULL);
    } else {
      fl_curl()->easy_reset(e); /* keeps its connection cache and buffers */
    }
    h->idle[h->n_idle] = e;
    h->idle_has_base[h->n_idle] = (unsigned char)keep_base;
    if (req->resp_body.cap <= FL_HTTP_KEEP_BODY) {
      fl_buf_reset(&req->resp_body);
      h->idle_body[h->n_idle] = req->resp_body;
      req->resp_body = (fl_buf)FL_BUF_INIT;
    }
    if (req->resp_headers.cap <= FL_HTTP_KEEP_BODY) {
      fl_buf_reset(&req->resp_headers);
      h->idle_headers[h->n_idle] = req->resp_headers;
      req->resp_headers = (fl_buf)FL_BUF_INIT;
    }
    h->n_idle++;
  } else {
    fl_curl()->easy_cleanup(req->easy);
  }
  fl_curl()->slist_free_all(req->headers);
  fl_buf_free(&req->resp_body);
  fl_buf_free(&req->resp_headers);
  free(req->method);
  free(req->url);
  free(req->body);
  free(req->final_url);
  free(req);
}

/* ---- describing outcomes ------------------------------------------------- */

void fl_http_describe_failure(const fl_http_req *req, double timeout,
                              fl_buf *out) {
  const char *detail = req->errbuf[0] ? req->errbuf : NULL;
  if (req->refused) {
    fl_buf_adds(out, req->errbuf);
    return;
  }
  if (req->fd_shortage) {
    /* curl reports a socket() that failed for want of descriptors as
       "could not connect": the cause is the limit, not the server. */
    fl_buf_addf(out, "too many open files (%s): raise the limit (ulimit -n) "
                     "or lower the concurrency",
                req->fd_shortage == EMFILE ? "the process's limit"
                                        : "the system's limit");
    return;
  }
  switch (req->result) {
  case CURLE_WRITE_ERROR:
    if (req->too_big) {
      fl_buf_addf(out, "response body larger than max_body (%zu bytes)",
                  req->max_body);
      return;
    }
    fl_buf_adds(out, "out of memory reading the response body");
    return;
  case CURLE_COULDNT_CONNECT:
    fl_buf_adds(out, "connection refused");
    break;
  case CURLE_COULDNT_RESOLVE_HOST:
  case CURLE_COULDNT_RESOLVE_PROXY:
    fl_buf_adds(out, "DNS lookup failed");
    break;
  case CURLE_OPERATION_TIMEDOUT:
    if (timeout > 0)
      fl_buf_addf(out, "timed out after %g s", timeout);
    else
      fl_buf_adds(out, "timed out");
    break;
  case CURLE_PEER_FAILED_VERIFICATION:
  case CURLE_SSL_CONNECT_ERROR:
  case CURLE_SSL_CERTPROBLEM:
  case CURLE_SSL_CIPHER:
  case CURLE_SSL_CACERT_BADFILE:
  case CURLE_SSL_ISSUER_ERROR:
    fl_buf_adds(out, "TLS failed");
    break;
  case CURLE_PARTIAL_FILE:
    fl_buf_adds(out, "truncated body (the connection closed early)");
    break;
  case CURLE_GOT_NOTHING:
    fl_buf_adds(out, "the server closed the connection without a response");
    break;
  case CURLE_RECV_ERROR:
  case CURLE_SEND_ERROR:
    /* libcurl also reports a response it cannot parse (bad chunked
       encoding, headers past its limit) as a receive error. */
    if (!detail || strstr(detail, "reset"))
      fl_buf_adds(out, "connection reset");
    else
      fl_buf_adds(out, req->result == CURLE_RECV_ERROR
                           ? "receiving the response failed"
                           : "sending the request failed");
    break;
  case CURLE_UNSUPPORTED_PROTOCOL:
    /* Also libcurl's answer to a status line that is not HTTP's. */
    if (req->url && (strncasecmp(req->url, "http://", 7) == 0 ||
                     strncasecmp(req->url, "https://", 8) == 0))
      fl_buf_adds(out, "not a valid HTTP response");
    else
      fl_buf_adds(out, "unsupported URL scheme (http, https and file work)");
    break;
  case CURLE_OUT_OF_MEMORY:
    fl_buf_adds(out, "out of memory, or a response header line longer than "
                     "libcurl accepts (100 KB)");
    break;
  case CURLE_WEIRD_SERVER_REPLY:
    fl_buf_adds(out, "not a valid HTTP response");
    break;
  case CURLE_URL_MALFORMAT:
    fl_buf_adds(out, "malformed URL");
    break;
  case CURLE_FILE_COULDNT_READ_FILE:
    fl_buf_adds(out, "cannot read the file");
    break;
  case CURLE_TOO_MANY_REDIRECTS:
    fl_buf_adds(out, "too many redirects (more than 10)");
    break;
  default:
    fl_buf_adds(out, fl_curl()->easy_strerror(req->result));
    break;
  }
  if (detail) fl_buf_addf(out, " (%s)", detail);
}

void fl_http_url_encode(fl_buf *out, const char *s, size_t len) {
  fl_buf_add_percent(out, s, len); /* the form secrets are masked in too */
}

double fl_http_parse_retry_after(const char *value, double now) {
  while (*value == ' ') value++;
  if (*value >= '0' && *value <= '9') {
    char *end;
    double secs = strtod(value, &end);
    while (*end == ' ') end++;
    return *end == '\0' && secs >= 0 ? secs : -1;
  }
  time_t when = fl_curl()->getdate(value, NULL);
  if (when < 0) return -1;
  double d = (double)when - now;
  return d > 0 ? d : 0;
}
