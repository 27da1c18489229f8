/*
 * http.h — HTTP transfers on libcurl's multi interface, driven by the
 * runtime's event loop.
 *
 * Plain C, no Lua. One fl_http per runtime owns a curl multi handle (so
 * connections are reused across tasks); every request is an fl_http_req
 * that reports to its `done` callback from the loop. Nothing here blocks.
 */
#ifndef FL_HTTP_H
#define FL_HTTP_H

#include <stddef.h>

#include <curl/curl.h>

#include "buf.h"
#include "loop.h"

#define FL_HTTP_IDLE_MAX 64
#define FL_HTTP_KEEP_BODY ((size_t)64 << 10)

typedef struct fl_http {
  CURLM *multi;
  fl_loop *loop;
  fl_timer timer; /* curl's own timeout */
  int active;     /* transfers in flight */
  int peak_active; /* the most ever in flight at once: sizes curl's
                      connection cache */
  int max_active;  /* transfers at once that the descriptor limit allows */
  struct fl_http_req *queue_head, *queue_tail; /* started beyond it: wait */
  /* Easy handles of finished requests, kept: a new one costs several
     allocations, a reused one none. A handle whose last request set only
     the options every request sets again keeps them (idle_has_base), so
     the next request skips the reset and the options all requests share. */
  CURL *idle[FL_HTTP_IDLE_MAX];
  unsigned char idle_has_base[FL_HTTP_IDLE_MAX];
  /* With each kept handle, the memory of its last response's body and
     headers (emptied; a buffer larger than FL_HTTP_KEEP_BODY is freed
     instead): the next response is read into it, without a
     malloc, a free and the growth of the header buffer per request. */
  fl_buf idle_body[FL_HTTP_IDLE_MAX], idle_headers[FL_HTTP_IDLE_MAX];
  int n_idle;
  /* By descriptor: 1 for a socket curl opened and will close through
     http.c's callbacks, so that it may stay in epoll between transfers
     (fl_loop_pause); any other descriptor curl reports (its resolver's)
     is unwatched at once. */
  unsigned char *own;
  int n_own;
} fl_http;

typedef struct fl_http_req fl_http_req;
typedef void (*fl_http_done_cb)(fl_http_req *req);

struct fl_http_req {
  CURL *easy;
  fl_http *http;
  struct curl_slist *headers;
  char *method;      /* "GET", ... */
  char *url;
  char *body;        /* request body, or NULL */
  size_t body_len;
  size_t max_body;   /* response bodies larger than this fail */
  /* response */
  long status;
  fl_buf resp_body;
  fl_buf resp_headers; /* "name\0value\0" pairs, names lower-case */
  int n_resp_headers;  /* pairs in resp_headers */
  char *final_url;
  double elapsed;      /* seconds */
  double retry_after;  /* seconds from a Retry-After header, or -1 */
  CURLcode result;
  int too_big;
  int refused;         /* a redirect flowlua will not follow: errbuf says */
  int fd_shortage;     /* EMFILE or ENFILE: no descriptor to connect with */
  char errbuf[CURL_ERROR_SIZE];
  /* redirects, followed here rather than by curl (see follow_redirect) */
  int follow, keep_headers, allow_downgrade;
  int n_redirects;
  long timeout_ms;     /* for the whole chain; 0 = none */
  /* bookkeeping */
  int in_flight, finished;
  int queued;   /* waiting for a transfer to end (max_active) */
  struct fl_http_req *queue_next;
  int has_base; /* the easy handle carries the shared options (http.c) */
  int dirty;    /* options beyond those every request sets were used */
  fl_http_done_cb done;
  void *data; /* the owner's */
};

/* Sets up h on loop, loading libcurl first if this is the process's first
   request (curlapi.h). 0, or a status with *why set (static text). */
int fl_http_init(fl_http *h, fl_loop *loop, const char **why);
/* Aborts every transfer still in flight (without calling `done`). */
void fl_http_close(fl_http *h);

typedef struct fl_http_opts {
  const char *method;
  const char *url;
  const char *body;     /* may be NULL */
  size_t body_len;
  const char *const *headers; /* "Name: value" lines, NULL-terminated */
  double timeout;       /* seconds for the whole transfer; 0 = none */
  int follow;           /* follow redirects (at most 10) */
  int keep_headers;     /* keep the headers on a redirect to another origin */
  int allow_downgrade;  /* follow a redirect from https to http */
  int verify;           /* verify TLS peers and host names */
  const char *ca_file;  /* CA bundle, or NULL for the system's */
  int compressed;       /* send Accept-Encoding (what libcurl decodes) and
                           decode the body */
  size_t max_body;
} fl_http_opts;

/* A new request on h (not started). NULL when out of memory. */
fl_http_req *fl_http_req_new(fl_http *h);
/* Sets every option; 0, or -1 with a message in req->errbuf. */
int fl_http_req_prepare(fl_http_req *req, const fl_http_opts *o);
/* Starts the transfer, or queues it while max_active transfers run (so
   that a big map waits for descriptors instead of failing for want of
   them); `done` runs from the loop when it ends. 0 or -1. */
int fl_http_start(fl_http_req *req, fl_http_done_cb done, void *data);
/* Stops a transfer in flight (no `done` call). Harmless otherwise. */
void fl_http_cancel(fl_http_req *req);
/* Cancels if needed and frees everything; the easy handle goes back to
   its fl_http for reuse. NULL is allowed. */
void fl_http_req_free(fl_http_req *req);

/* A one-line description of why a finished transfer failed, naming the
   cause ("connection refused", "timed out after 2 s", "TLS: ..."). */
void fl_http_describe_failure(const fl_http_req *req, double timeout,
                              fl_buf *out);

/* What a redirect from one URL to another is. */
typedef enum fl_redirect_kind {
  FL_REDIRECT_SAME_ORIGIN,  /* same scheme, host and port */
  FL_REDIRECT_OTHER_ORIGIN, /* another host or port, or http to https */
  FL_REDIRECT_DOWNGRADE,    /* https to http */
  FL_REDIRECT_BAD_SCHEME    /* to anything but http or https */
} fl_redirect_kind;

/* Classifies a redirect from `from` to `to`, both absolute URLs. Hosts
   compare without case; a missing port is the scheme's (80, 443). */
fl_redirect_kind fl_http_redirect_kind(const char *from, const char *to);

/* Appends s percent-encoded (RFC 3986 unreserved characters kept). */
void fl_http_url_encode(fl_buf *out, const char *s, size_t len);

/* Parses a Retry-After value: delay-seconds or an HTTP date. Returns the
   seconds to wait from `now` (wall clock), or -1 if it cannot be read. */
double fl_http_parse_retry_after(const char *value, double now);

#endif
