/*
 * log.c — formatting and delivering log records.
 *
 * Text lines read "2026-11-28 16:10:01.123 INFO  message", with the error's
 * further lines (a traceback) indented below. JSON lines carry every field of
 * the record; times there are UTC with milliseconds.
 */
#define _GNU_SOURCE /* memmem */
#include "log.h"
#include "json.h"
#include "loop.h"
#include "states.h"
#include "termtext.h"

#include <errno.h>
#include <stdarg.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *const level_names[] = {"debug", "info", "warn", "error"};
static const char *const level_labels[] = {"DEBUG", "INFO ", "WARN ", "ERROR"};

const char *fl_log_level_name(int level) {
  return level >= 0 && level < 4 ? level_names[level] : "?";
}

int fl_log_level_parse(const char *name) {
  for (int i = 0; i < 4; i++)
    if (strcmp(name, level_names[i]) == 0) return i;
  if (strcmp(name, "warning") == 0) return FLOWLUA_LOG_WARN;
  return -1;
}

void fl_logger_init(fl_logger *lg, int level, int format, flowlua_log_fn fn,
                    void *userdata) {
  *lg = (fl_logger){.level = level, .format = format, .fn = fn,
                    .userdata = userdata, .line = FL_BUF_INIT,
                    .stderr_tty = -1};
}

void fl_logger_free(fl_logger *lg) {
  fl_buf_free(&lg->line);
  fl_buf_free(&lg->message);
  fl_buf_free(&lg->error);
  fl_buf_free(&lg->shown);
  for (size_t i = 0; i < lg->n_secrets; i++) free(lg->secrets[i]);
  free(lg->secrets);
  lg->secrets = NULL;
  lg->n_secrets = 0;
}

static int add_secret_form(fl_logger *lg, const char *value) {
  if (!value || !*value) return 0;
  for (size_t i = 0; i < lg->n_secrets; i++)
    if (strcmp(lg->secrets[i], value) == 0) return 0;
  char **list = realloc(lg->secrets, (lg->n_secrets + 1) * sizeof *list);
  if (!list) return FLOWLUA_ENOMEM;
  lg->secrets = list;
  if (!(list[lg->n_secrets] = strdup(value))) return FLOWLUA_ENOMEM;
  lg->n_secrets++;
  return 0;
}

/* s as a JSON string's body, quotes left out: as the value encoder writes
   it (params, results) when twice is 0, and as a JSON string holding that
   JSON again (a result that is itself encoded JSON) when twice is 1. */
static void add_json_body(fl_buf *out, const char *s, int twice) {
  fl_buf once = FL_BUF_INIT;
  if (fl_json_add_string(&once, s, strlen(s)) != 0) once.oom = 1;
  fl_buf_addc(&once, '\0');
  if (!once.oom && once.len >= 3) {
    once.data[once.len - 2] = '\0'; /* drop the closing quote */
    if (twice)
      add_json_body(out, once.data + 1, 0);
    else
      fl_buf_adds(out, once.data + 1);
  } else {
    out->oom = 1;
  }
  fl_buf_free(&once);
}

/* A secret is masked in every encoding flowlua itself writes it in: raw,
   JSON-escaped (by the value encoder and by the one of log lines and the
   store, which differ in \b and \f), JSON-escaped twice, and
   percent-encoded as http's query option writes it. */
int fl_log_add_secret(fl_logger *lg, const char *value) {
  if (!value || !*value) return 0;
  int rc = add_secret_form(lg, value);
  for (int form = 0; rc == 0 && form < 4; form++) {
    fl_buf b = FL_BUF_INIT;
    if (form == 0) add_json_body(&b, value, 0);
    if (form == 1) add_json_body(&b, value, 1);
    if (form == 2) {
      fl_buf_add_json_string(&b, value);
      if (b.len >= 2) b.len--, b.data[b.len] = '\0';
    }
    if (form == 3) fl_buf_add_percent(&b, value, strlen(value));
    if (b.oom)
      rc = FLOWLUA_ENOMEM;
    else if (b.data)
      rc = add_secret_form(lg, form == 2 ? b.data + 1 : b.data);
    fl_buf_free(&b);
  }
  return rc;
}

void fl_log_mask(const fl_logger *lg, const char *s, fl_buf *out) {
  while (*s) {
    /* The longest secret starting here wins, so one that contains another
       is masked whole. */
    size_t best = 0;
    for (size_t i = 0; i < lg->n_secrets; i++) {
      size_t n = strlen(lg->secrets[i]);
      if (n > best && strncmp(s, lg->secrets[i], n) == 0) best = n;
    }
    if (best) {
      fl_buf_adds(out, "***");
      s += best;
    } else {
      fl_buf_addc(out, *s++);
    }
  }
}

char *fl_log_mask_dup(const fl_logger *lg, const char *s) {
  if (!s) return NULL;
  if (lg->n_secrets == 0) return strdup(s);
  fl_buf b = FL_BUF_INIT;
  fl_log_mask(lg, s, &b);
  if (b.oom || !b.data) {
    fl_buf_free(&b);
    return b.oom ? NULL : strdup("");
  }
  return b.data;
}

int fl_log_has_secret(const fl_logger *lg, const char *text, size_t n) {
  for (size_t i = 0; i < lg->n_secrets; i++)
    if (memmem(text, n, lg->secrets[i], strlen(lg->secrets[i]))) return 1;
  return 0;
}

void fl_log_emitv(fl_logger *lg, flowlua_log_record *rec, const char *fmt,
                  va_list ap) {
  if (!fl_log_enabled(lg, rec->level)) return;
  fl_buf msg = FL_BUF_INIT;
  fl_buf_addvf(&msg, fmt, ap);
  rec->time = fl_wall_time();
  rec->message = fl_buf_str(&msg);
  fl_log_emit(lg, rec);
  fl_buf_free(&msg);
}

void fl_log_printf(fl_logger *lg, int level, const char *flow,
                   const char *fmt, ...) {
  flowlua_log_record rec;
  fl_log_record_init(&rec, level);
  rec.flow = flow;
  va_list ap;
  va_start(ap, fmt);
  fl_log_emitv(lg, &rec, fmt, ap);
  va_end(ap);
}

void fl_log_record_init(flowlua_log_record *rec, int level) {
  *rec = (flowlua_log_record){.size = sizeof *rec, .level = level, .attempt = -1,
                              .task_state = -1, .flow_state = -1,
                              .duration = -1, .message = ""};
}

static void add_time(fl_buf *out, double t, int utc) {
  time_t secs = (time_t)floor(t);
  int ms = (int)((t - floor(t)) * 1000.0);
  if (ms > 999) ms = 999;
  struct tm tm;
  if (utc)
    gmtime_r(&secs, &tm);
  else
    localtime_r(&secs, &tm);
  char stamp[32];
  strftime(stamp, sizeof stamp, utc ? "%Y-%m-%dT%H:%M:%S" : "%Y-%m-%d %H:%M:%S",
           &tm);
  fl_buf_addf(out, "%s.%03d%s", stamp, ms, utc ? "Z" : "");
}

static void format_text(fl_buf *out, const flowlua_log_record *rec) {
  add_time(out, rec->time, 0);
  fl_buf_addc(out, ' ');
  fl_buf_adds(out, rec->level >= 0 && rec->level < 4 ? level_labels[rec->level]
                                                     : "?    ");
  fl_buf_addc(out, ' ');
  if (rec->task) fl_buf_addf(out, "%s: ", rec->task);
  fl_buf_adds(out, rec->message ? rec->message : "");
  if (!rec->error) return;
  /* The first line of the error on the record's line; the rest below. */
  const char *nl = strchr(rec->error, '\n');
  fl_buf_adds(out, ": ");
  if (!nl) {
    fl_buf_adds(out, rec->error);
    return;
  }
  fl_buf_add(out, rec->error, (size_t)(nl - rec->error));
  for (const char *p = nl + 1; *p;) {
    const char *end = strchr(p, '\n');
    size_t n = end ? (size_t)(end - p) : strlen(p);
    fl_buf_adds(out, "\n    ");
    fl_buf_add(out, p, n);
    p += n + (end ? 1 : 0);
  }
}

static void add_json_field(fl_buf *out, const char *key, const char *value) {
  if (!value) return;
  fl_buf_addf(out, ",\"%s\":", key);
  fl_buf_add_json_string(out, value);
}

static void format_json(fl_buf *out, const flowlua_log_record *rec) {
  fl_buf_adds(out, "{\"time\":\"");
  add_time(out, rec->time, 1);
  fl_buf_addf(out, "\",\"level\":\"%s\"", fl_log_level_name(rec->level));
  add_json_field(out, "flow", rec->flow);
  add_json_field(out, "run_id", rec->run_id);
  add_json_field(out, "task", rec->task);
  if (rec->attempt >= 0) fl_buf_addf(out, ",\"attempt\":%d", rec->attempt);
  if (rec->task_state >= 0)
    add_json_field(out, "state", fl_task_state_name(rec->task_state));
  else if (rec->flow_state >= 0)
    add_json_field(out, "flow_state", fl_flow_state_name(rec->flow_state));
  if (rec->duration >= 0) fl_buf_addf(out, ",\"duration\":%.6f", rec->duration);
  add_json_field(out, "error", rec->error);
  add_json_field(out, "message", rec->message ? rec->message : "");
  fl_buf_addc(out, '}');
}

void fl_log_format(fl_buf *out, const flowlua_log_record *rec, int format) {
  if (format == FLOWLUA_LOG_JSON)
    format_json(out, rec);
  else
    format_text(out, rec);
}

/* Writes a line to stderr. When its reader has gone (a pipe closed by
   `| head -1`), the write fails with EPIPE and raises SIGPIPE, which kills
   a process that does not ignore it. The runtime leaves the process's
   signal dispositions to its host, so it blocks SIGPIPE in this thread for
   the write and takes back the one the write raised; from then on the
   lines are dropped, and the run goes on to its real end. */
static void write_all(fl_logger *lg, int fd, const char *s, size_t n) {
  sigset_t pipe_only, old, pending;
  sigemptyset(&pipe_only);
  sigaddset(&pipe_only, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe_only, &old);
  sigemptyset(&pending);
  sigpending(&pending);
  int was_pending = sigismember(&pending, SIGPIPE) == 1;
  while (n > 0) {
    ssize_t w = write(fd, s, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      if (errno == EPIPE) lg->sink_closed = 1;
      break; /* nowhere left to report a failing stderr */
    }
    s += w;
    n -= (size_t)w;
  }
  if (lg->sink_closed && !was_pending) {
    struct timespec now = {0, 0};
    while (sigtimedwait(&pipe_only, NULL, &now) < 0 && errno == EINTR) {
    }
  }
  pthread_sigmask(SIG_SETMASK, &old, NULL);
}

/* The default sink. On a terminal, a text line's control characters are
   escaped (termtext.h): a message quoting a hostile server must not rewrite
   the screen. A file or a pipe gets the bytes as they are, and JSON lines
   are escaped by their encoder. */
static void write_line(fl_logger *lg, const fl_buf *line) {
  if (lg->stderr_tty < 0) lg->stderr_tty = isatty(2) == 1;
  if (lg->format == FLOWLUA_LOG_TEXT && lg->stderr_tty &&
      fl_term_needs_escape(line->data, line->len)) {
    fl_buf_reset(&lg->shown);
    fl_term_escape(&lg->shown, line->data, line->len);
    /* Out of memory loses the line, as it does for any other. */
    if (!lg->shown.oom) write_all(lg, 2, lg->shown.data, lg->shown.len);
    return;
  }
  write_all(lg, 2, line->data, line->len);
}

void fl_log_emit(fl_logger *lg, flowlua_log_record *rec) {
  if (!fl_log_enabled(lg, rec->level)) return;
  const char *message = rec->message, *error = rec->error;
  if (lg->n_secrets) {
    fl_buf_reset(&lg->message);
    fl_log_mask(lg, message ? message : "", &lg->message);
    rec->message = fl_buf_str(&lg->message);
    if (error) {
      fl_buf_reset(&lg->error);
      fl_log_mask(lg, error, &lg->error);
      rec->error = fl_buf_str(&lg->error);
    }
  }
  fl_buf_reset(&lg->line);
  fl_log_format(&lg->line, rec, lg->format);
  if (lg->line.oom) {
    rec->message = message;
    rec->error = error;
    return;
  }
  rec->line = fl_buf_str(&lg->line);
  if (lg->fn) {
    lg->fn(lg->userdata, rec);
  } else {
    fl_buf_addc(&lg->line, '\n');
    if (!lg->sink_closed) write_line(lg, &lg->line);
  }
  rec->line = NULL;
  rec->message = message;
  rec->error = error;
}
