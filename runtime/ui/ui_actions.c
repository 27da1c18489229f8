/*
 * ui_actions.c — the web UI's actions (ui_actions.h): the checks every
 * POST passes, then start, resume and cancel.
 *
 *   POST /api/flows/NAME/start   param.KEY=VALUE...  -> 201 {run_id, where}
 *   POST /api/runs/ID/resume     [from_task, force]  -> 201 {run_id, where}
 *   POST /api/runs/ID/cancel                         -> 202 {run_id}
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "json.h"
#include "ui_actions.h"
#include "ui_form.h"
#include "ui_mhd.h"
#include "ui_spawn.h"

struct fl_ui_actions {
  char *state, *token;
  char csrf[65];          /* 32 random bytes in hex, for this server's life */
  char exe[PATH_MAX];     /* this flowlua program: what runs start with */
  char host[256];
  fl_ui_children *children;
  pthread_mutex_t *lock; /* the server's, held by every action */
};

/* One POST's state between libmicrohttpd's calls. */
typedef struct action_req {
  fl_ui_form form;
  int begun;
} action_req;

static void random_hex(char *out, size_t bytes) {
  unsigned char raw[32];
  size_t got = 0;
  while (got < bytes) {
    ssize_t n = getrandom(raw + got, bytes - got, 0);
    if (n > 0) got += (size_t)n;
    else if (errno != EINTR) abort(); /* no randomness: no safe token */
  }
  for (size_t i = 0; i < bytes; i++) sprintf(out + 2 * i, "%02x", raw[i]);
}

int fl_ui_actions_new(const char *state, const char *token,
                      fl_ui_actions **out, char *err, size_t errlen) {
  *out = NULL;
  fl_ui_actions *a = calloc(1, sizeof *a);
  if (!a || !(a->state = strdup(state)) ||
      (token && *token && !(a->token = strdup(token))) ||
      !(a->children = fl_ui_children_new())) {
    fl_ui_actions_free(a);
    snprintf(err, errlen, "out of memory");
    return -1;
  }
  ssize_t n = readlink("/proc/self/exe", a->exe, sizeof a->exe - 1);
  if (n <= 0) {
    snprintf(err, errlen, "cannot tell which program this is "
                          "(/proc/self/exe): %s", strerror(errno));
    fl_ui_actions_free(a);
    return -1;
  }
  a->exe[n] = '\0';
  if (gethostname(a->host, sizeof a->host - 1) != 0) strcpy(a->host, "localhost");
  random_hex(a->csrf, 32);
  *out = a;
  return 0;
}

void fl_ui_actions_set_lock(fl_ui_actions *a, pthread_mutex_t *lock) {
  a->lock = lock;
}

void fl_ui_actions_free(fl_ui_actions *a) {
  if (!a) return;
  free(a->state);
  free(a->token);
  fl_ui_children_free(a->children);
  free(a);
}

static void release_free(void *body) { free(body); }

/* A JSON answer built in b (given away), or a 500 when b ran out of
   memory. */
static void reply_buf(fl_ui_reply *r, unsigned status, fl_buf *b) {
  if (b->oom || !b->data) {
    fl_buf_free(b);
    fl_ui_reply_error(r, 500, "out of memory");
    return;
  }
  *r = (fl_ui_reply){.status = status, .type = "application/json",
                     .body = b->data, .len = b->len, .release = release_free,
                     .api = 1};
  b->data = NULL;
}

static void add_str(fl_buf *b, const char *key, const char *value, int first) {
  fl_buf_addf(b, "%s\"%s\":", first ? "" : ",", key);
  fl_json_add_string(b, value, strlen(value));
}

void fl_ui_actions_session(fl_ui_actions *a, fl_ui_reply *r) {
  fl_buf b = FL_BUF_INIT;
  fl_buf_addc(&b, '{');
  add_str(&b, "csrf", a->csrf, 1);
  fl_buf_addf(&b, ",\"token_required\":%s", a->token ? "true" : "false");
  add_str(&b, "host", a->host, 0);
  fl_buf_adds(&b, "}\n");
  reply_buf(r, 200, &b);
}

/* ---- the checks ------------------------------------------------------------ */

/* Equal strings, in a time that does not tell how much of them matched. */
static int same_secret(const char *given, const char *want) {
  size_t n = strlen(want), m = given ? strlen(given) : 0;
  unsigned char diff = (unsigned char)(m != n);
  for (size_t i = 0; i < n; i++)
    diff |= (unsigned char)(want[i] ^ (i < m ? given[i] : 0));
  return diff == 0;
}

static const char *header(struct MHD_Connection *c, const char *name) {
  return fl_ui_mhd()->lookup_connection_value(c, MHD_HEADER_KIND, name);
}

/* 0 when the request may act; else the refusal in r. */
static int refused(fl_ui_actions *a, struct MHD_Connection *c,
                   const fl_ui_form *form, fl_ui_reply *r) {
  if (a->token) {
    const char *auth = header(c, MHD_HTTP_HEADER_AUTHORIZATION);
    const char *given = auth && strncmp(auth, "Bearer ", 7) == 0 ? auth + 7 : NULL;
    if (!same_secret(given, a->token)) {
      fl_ui_reply_error(r, 401, "this action needs the UI's token "
                                "(Authorization: Bearer TOKEN; the one given "
                                "to flowlua ui with --token or "
                                "FLOWLUA_UI_TOKEN)");
      return 1;
    }
  }
  /* A browser says where a request comes from: another site's page may
     post a form here, but it cannot read the CSRF token it would need. */
  const char *origin = header(c, "Origin");
  const char *host = header(c, MHD_HTTP_HEADER_HOST);
  if (origin && strcmp(origin, "null") != 0) {
    const char *o = strncmp(origin, "http://", 7) == 0 ? origin + 7 : NULL;
    if (!o || !host || strcmp(o, host) != 0) {
      fl_ui_reply_error(r, 403, "refused: the request comes from another "
                                "site (Origin %.100s)", origin);
      return 1;
    }
  }
  if (form->problem) {
    fl_ui_reply_error(r, 400, "%s", form->problem);
    return 1;
  }
  if (!same_secret(fl_ui_form_get(form, "csrf"), a->csrf)) {
    fl_ui_reply_error(r, 403, "refused: the form lacks this server's CSRF "
                              "token (field csrf, from GET /api/session)");
    return 1;
  }
  return 0;
}

/* ---- the actions ------------------------------------------------------------ */

static void new_run_id(char out[37]) {
  char hex[33];
  random_hex(hex, 16);
  hex[12] = '4';                                   /* version 4 */
  hex[16] = "89ab"[(hex[16] >= 'a' ? hex[16] - 'a' + 10 : hex[16] - '0') & 3];
  snprintf(out, 37, "%.8s-%.4s-%.4s-%.4s-%.12s", hex, hex + 8, hex + 12,
           hex + 16, hex + 20);
}

static void reply_started(fl_ui_actions *a, fl_ui_reply *r, const char *run_id,
                          pid_t pid) {
  char where[512];
  snprintf(where, sizeof where, "a flowlua process of its own (pid %ld) on "
                                "host %s, started by this UI; it goes on if "
                                "the UI stops", (long)pid, a->host);
  fl_buf b = FL_BUF_INIT;
  fl_buf_addc(&b, '{');
  add_str(&b, "run_id", run_id, 1);
  add_str(&b, "where", where, 0);
  fl_buf_addf(&b, ",\"pid\":%ld}\n", (long)pid);
  reply_buf(r, 201, &b);
}

/* Starts the run (ui_spawn.c) and answers with where it runs, or with a
   422 saying what (the action) failed and why. */
static void spawn_and_reply(fl_ui_actions *a, flowlua *rt, char *const argv[],
                            const char *run_id, const char *what,
                            fl_ui_reply *r) {
  char msg[2048];
  pid_t pid;
  if (fl_ui_spawn_run(a->children, rt, a->lock, a->exe, a->state, argv,
                      run_id, &pid, msg, sizeof msg) == 0)
    reply_started(a, r, run_id, pid);
  else
    fl_ui_reply_error(r, 422, "%s: %s", what, msg);
}

/* A param's name as a flow declares it: what --param NAME=VALUE takes. */
static int param_name_ok(const char *s) {
  if (!*s || strlen(s) > 128) return 0;
  for (const char *p = s; *p; p++)
    if (!(*p == '_' || (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
          (p > s && *p >= '0' && *p <= '9')))
      return 0;
  return 1;
}

/* The recorded script of flow, if it is one this UI may run: a regular
   file of this user's, which no one else may change. */
static char *script_to_run(flowlua *rt, const char *flow, fl_ui_reply *r) {
  char *script = NULL;
  int rc = flowlua_flow_script(rt, flow, &script);
  if (rc != FLOWLUA_OK) {
    fl_ui_reply_error(r, rc == FLOWLUA_ENOFLOW ? 404 : 409, "%s",
                      flowlua_errmsg(rt));
    return NULL;
  }
  struct stat sb;
  if (stat(script, &sb) != 0) {
    fl_ui_reply_error(r, 409, "flow '%s': its script %s cannot be read: %s",
                      flow, script, strerror(errno));
  } else if (!S_ISREG(sb.st_mode) || sb.st_uid != geteuid() ||
             (sb.st_mode & (S_IWGRP | S_IWOTH))) {
    fl_ui_reply_error(r, 409, "flow '%s': refusing to run %s: it is not a "
                              "regular file of this user's that only this "
                              "user can change", flow, script);
  } else {
    return script;
  }
  flowlua_string_free(script);
  return NULL;
}

#define MAX_ARGS (16 + 2 * FL_UI_FORM_FIELDS)

static void start_run(fl_ui_actions *a, flowlua *rt, const char *flow,
                      const fl_ui_form *form, fl_ui_reply *r) {
  char *script = script_to_run(rt, flow, r);
  if (!script) return;
  char run_id[37];
  new_run_id(run_id);
  char *argv[MAX_ARGS];
  char *owned[FL_UI_FORM_FIELDS];
  size_t n = 0, n_owned = 0;
  argv[n++] = "flowlua";
  argv[n++] = script;
  argv[n++] = "--flow";
  argv[n++] = (char *)flow;
  argv[n++] = "--once";
  argv[n++] = "--no-status";
  argv[n++] = "--run-id";
  argv[n++] = run_id;
  int bad = 0;
  for (size_t i = 0; i < form->n && !bad; i++) {
    const fl_ui_field *f = &form->fields[i];
    if (strcmp(f->key, "csrf") == 0) continue;
    if (strncmp(f->key, "param.", 6) != 0 || !param_name_ok(f->key + 6)) {
      fl_ui_reply_error(r, 400, "unknown field '%.100s' (a start takes "
                                "param.NAME fields)", f->key);
      bad = 1;
    } else if (asprintf(&owned[n_owned], "%s=%s", f->key + 6, f->value) < 0) {
      fl_ui_reply_error(r, 500, "out of memory");
      bad = 1;
    } else {
      argv[n++] = "--param";
      argv[n++] = owned[n_owned++];
    }
  }
  argv[n] = NULL;
  if (!bad) {
    char what[600];
    snprintf(what, sizeof what, "flow '%s'", flow);
    spawn_and_reply(a, rt, argv, run_id, what, r);
  }
  for (size_t i = 0; i < n_owned; i++) free(owned[i]);
  flowlua_string_free(script);
}

static void resume_run(fl_ui_actions *a, flowlua *rt, const char *run_ref,
                       const fl_ui_form *form, fl_ui_reply *r) {
  const char *flow = fl_ui_form_get(form, "flow");
  const char *from_task = fl_ui_form_get(form, "from_task");
  for (size_t i = 0; i < form->n; i++) {
    const char *k = form->fields[i].key;
    if (strcmp(k, "csrf") && strcmp(k, "flow") && strcmp(k, "from_task")) {
      fl_ui_reply_error(r, 400, "unknown field '%.100s' (a resume takes flow "
                                "and from_task)", k);
      return;
    }
  }
  if (!flow || !*flow) {
    fl_ui_reply_error(r, 400, "a resume needs the run's flow (field flow)");
    return;
  }
  char *script = script_to_run(rt, flow, r);
  if (!script) return;
  char run_id[37];
  new_run_id(run_id);
  char *argv[] = {"flowlua", script, "--flow", (char *)flow, "--resume",
                  (char *)run_ref, "--no-status", "--run-id", run_id,
                  from_task && *from_task ? "--from-task" : NULL,
                  (char *)from_task, NULL};
  char what[600];
  snprintf(what, sizeof what, "resuming run %s", run_ref);
  spawn_and_reply(a, rt, argv, run_id, what, r);
  flowlua_string_free(script);
}

static void cancel_run(fl_ui_actions *a, flowlua *rt, const char *run_ref,
                       const fl_ui_form *form, fl_ui_reply *r) {
  if (form->n > 1 || (form->n == 1 && strcmp(form->fields[0].key, "csrf"))) {
    fl_ui_reply_error(r, 400, "a cancel takes no field but csrf");
    return;
  }
  char by[320];
  snprintf(by, sizeof by, "flowlua ui on %s", a->host);
  int rc = flowlua_request_cancel(rt, run_ref, by);
  if (rc != FLOWLUA_OK) {
    fl_ui_reply_error(r, rc == FLOWLUA_EINVAL ? 404 : rc == FLOWLUA_ESTATE ? 409 : 500,
                      "%s", flowlua_errmsg(rt));
    return;
  }
  fl_buf b = FL_BUF_INIT;
  fl_buf_addc(&b, '{');
  add_str(&b, "run_id", run_ref, 1);
  add_str(&b, "cancel", "asked: the process running it cancels it within a "
                        "second or so", 0);
  fl_buf_adds(&b, "}\n");
  reply_buf(r, 202, &b);
}

/* "NAME" of PREFIX/NAME/SUFFIX (copied into out), or NULL. */
static const char *middle(const char *url, const char *prefix,
                          const char *suffix, char *out, size_t outlen) {
  size_t p = strlen(prefix), s = strlen(suffix), n = strlen(url);
  if (n <= p + s || strncmp(url, prefix, p) != 0 ||
      strcmp(url + n - s, suffix) != 0)
    return NULL;
  size_t len = n - p - s;
  if (len >= outlen || memchr(url + p, '/', len)) return NULL;
  memcpy(out, url + p, len);
  out[len] = '\0';
  return out;
}

static void act(fl_ui_actions *a, flowlua *rt, const char *url,
                const fl_ui_form *form, fl_ui_reply *r) {
  char name[512];
  if (middle(url, "/api/flows/", "/start", name, sizeof name))
    start_run(a, rt, name, form, r);
  else if (middle(url, "/api/runs/", "/resume", name, sizeof name))
    resume_run(a, rt, name, form, r);
  else if (middle(url, "/api/runs/", "/cancel", name, sizeof name))
    cancel_run(a, rt, name, form, r);
  else
    fl_ui_reply_error(r, 404, "no such action (POST /api/flows/NAME/start, "
                              "/api/runs/ID/resume, /api/runs/ID/cancel)");
}

int fl_ui_action_step(fl_ui_actions *a, flowlua *rt, struct MHD_Connection *c,
                      const char *url, const char *upload,
                      size_t *upload_size, void **req, fl_ui_reply *r) {
  action_req *q = *req;
  if (!q) { /* the headers: the body follows */
    if (!(q = calloc(1, sizeof *q))) {
      fl_ui_reply_error(r, 500, "out of memory");
      return 1;
    }
    *req = q;
    fl_ui_form_begin(&q->form, c);
    return 0;
  }
  if (*upload_size) {
    fl_ui_form_feed(&q->form, upload, *upload_size);
    *upload_size = 0;
    return 0;
  }
  if (!refused(a, c, &q->form, r)) act(a, rt, url, &q->form, r);
  return 1;
}

void fl_ui_action_done(void *req) {
  action_req *q = req;
  if (!q) return;
  fl_ui_form_free(&q->form);
  free(q);
}
