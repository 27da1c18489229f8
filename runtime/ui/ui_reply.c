/*
 * ui_reply.c — the web UI's JSON error answer, shared by every handler so
 * that each error has the same shape: {"error": "what and why"}.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "buf.h"
#include "ui_reply.h"

static void release_malloc(void *body) { free(body); }

void fl_ui_reply_error(fl_ui_reply *r, unsigned status, const char *fmt, ...) {
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  fl_buf b = FL_BUF_INIT;
  fl_buf_adds(&b, "{\"error\":");
  fl_buf_add_json_string(&b, msg);
  fl_buf_adds(&b, "}\n");
  *r = (fl_ui_reply){.status = status, .type = "application/json", .api = 1};
  if (b.oom || !b.data) {
    fl_buf_free(&b);
    static const char oom[] = "{\"error\":\"out of memory\"}\n";
    r->status = 500;
    r->body = oom;
    r->len = sizeof oom - 1;
    return;
  }
  r->len = b.len;
  r->body = b.data; /* handed over: freed by release */
  r->release = release_malloc;
}

