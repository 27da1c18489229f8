/*
 * ui_reply.h — what a request handler of the web UI answers, before it
 * becomes an HTTP response (ui_server.c adds the headers every response
 * carries). Handlers know nothing of libmicrohttpd, so they stay small
 * and each path's answer is decided in one place.
 */
#ifndef FL_UI_REPLY_H
#define FL_UI_REPLY_H

#include <stddef.h>

typedef struct fl_ui_reply {
  unsigned status;    /* 200, 400, 404... */
  const char *type;   /* Content-Type */
  const char *body;
  size_t len;
  void (*release)(void *body); /* frees body; NULL: static */
  int api;            /* API answers: Cache-Control no-store */
  const char *allow;  /* a 405's Allow header; NULL: none */
} fl_ui_reply;

/* One query parameter, as the request gave it (value NULL: "?flow"). */
typedef struct fl_ui_param {
  const char *key, *value;
} fl_ui_param;

/* A JSON error answer: {"error": "message"} with that status; a static
   answer of status 500 when even that cannot be allocated. */
void fl_ui_reply_error(fl_ui_reply *r, unsigned status, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

#endif
