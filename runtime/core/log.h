/*
 * log.h — log records: level filtering, text and JSON formatting, the sink.
 *
 * Plain C, no Lua. The scheduler fills a flowlua_log_record; the logger
 * formats its line and hands it to the embedder's callback, or writes it to
 * stderr in one write(2) so that lines from tasks and child processes never
 * interleave mid-line.
 */
#ifndef FL_LOG_H
#define FL_LOG_H

#include "buf.h"
#include "flowlua.h"

typedef struct fl_logger {
  int level;  /* threshold */
  int format; /* flowlua_log_format */
  flowlua_log_fn fn;
  void *userdata;
  fl_buf line; /* reused between records */
  fl_buf message, error; /* masked copies, reused */
  char **secrets; /* values replaced by "***" wherever they appear */
  size_t n_secrets;
  int sink_closed; /* stderr's reader went away (EPIPE): lines are dropped */
  int stderr_tty;  /* stderr is a terminal: 1, 0, or -1 not yet known */
  fl_buf shown;    /* a text line escaped for the terminal, reused */
} fl_logger;

void fl_logger_init(fl_logger *lg, int level, int format, flowlua_log_fn fn,
                    void *userdata);
void fl_logger_free(fl_logger *lg);

static inline int fl_log_enabled(const fl_logger *lg, int level) {
  return level >= lg->level && lg->level < FLOWLUA_LOG_OFF;
}

/* An empty record: no flow, task, state, duration or error. */
void fl_log_record_init(flowlua_log_record *rec, int level);

/* Formats and delivers rec if its level passes; rec->line is set during the
   callback only. */
void fl_log_emit(fl_logger *lg, flowlua_log_record *rec);

/* Appends rec formatted as one line (no newline) to out. */
void fl_log_format(fl_buf *out, const flowlua_log_record *rec, int format);

/* Remembers a secret value: from now on it is masked in every record, and
   by fl_log_mask. Empty values are ignored. 0, or FLOWLUA_ENOMEM. */
int fl_log_add_secret(fl_logger *lg, const char *value);
/* Appends s to out with every secret replaced by "***". */
void fl_log_mask(const fl_logger *lg, const char *s, fl_buf *out);
/* A malloc'd masked copy of s (NULL for NULL or out of memory). */
char *fl_log_mask_dup(const fl_logger *lg, const char *s);

/* Whether text[0..n) contains a secret value. */
int fl_log_has_secret(const fl_logger *lg, const char *text, size_t n);

/* Formats fmt into rec->message, stamps rec->time, and emits rec, if its
   level passes (then nothing is formatted at all). */
void fl_log_emitv(fl_logger *lg, flowlua_log_record *rec, const char *fmt,
                  va_list ap);

/* A record with only a flow name (may be NULL) and a message. */
void fl_log_printf(fl_logger *lg, int level, const char *flow,
                   const char *fmt, ...) __attribute__((format(printf, 4, 5)));

const char *fl_log_level_name(int level); /* "info" */
/* Parses "debug", "info", "warn" (or "warning"), "error"; -1 if unknown. */
int fl_log_level_parse(const char *name);

#endif
