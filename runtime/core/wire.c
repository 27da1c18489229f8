/*
 * wire.c — the worker protocol's bytes: values, frames, messages, and
 * frames on non-blocking descriptors (see wire.h for the formats).
 *
 * Nothing here knows Lua or SQL. Every reader assumes the bytes come from
 * a process that may be broken or from a database row anyone could have
 * written: each length and count is compared with the bytes left before it
 * is used, and errors say what was wrong and at which offset.
 */
#define _POSIX_C_SOURCE 200809L
#include "wire.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

/* ---- errors ------------------------------------------------------------- */

/* Sets in->err to "what at offset N" (N counted from the input's start)
   and returns -1, so that callers write `return fail(...)`. */
__attribute__((format(printf, 3, 4))) static int
fail(fl_wire_in *in, const unsigned char *at, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(in->err, sizeof in->err, fmt, ap);
  va_end(ap);
  if (n < 0) n = 0;
  if ((size_t)n < sizeof in->err)
    snprintf(in->err + n, sizeof in->err - (size_t)n, " at offset %zu",
             (size_t)(at - in->start));
  return -1;
}

static void copy_err(char *err, const char *msg) {
  if (err) snprintf(err, FL_WIRE_ERR_MAX, "%s", msg);
}

__attribute__((format(printf, 2, 3))) static void
set_err(char *err, const char *fmt, ...) {
  if (!err) return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, FL_WIRE_ERR_MAX, fmt, ap);
  va_end(ap);
}

/* ---- writing values ------------------------------------------------------ */

/* LEB128: 7 bits a byte, the high bit set on all but the last. */
static size_t varint_bytes(uint64_t v, unsigned char *out) {
  size_t n = 0;
  while (v >= 0x80) {
    out[n++] = (unsigned char)(v | 0x80);
    v >>= 7;
  }
  out[n++] = (unsigned char)v;
  return n;
}

/* Zigzag: -1 is 1, 1 is 2, so small negative numbers stay one byte. */
static uint64_t zigzag(int64_t v) {
  uint64_t u = 0;
  memcpy(&u, &v, sizeof u);
  return (u << 1) ^ (v < 0 ? UINT64_MAX : 0);
}

static int64_t unzigzag(uint64_t u) {
  uint64_t x = (u >> 1) ^ (UINT64_C(0) - (u & 1));
  int64_t v;
  memcpy(&v, &x, sizeof v);
  return v;
}

void fl_wire_put_uint(fl_buf *out, uint64_t v) {
  unsigned char tmp[10];
  fl_buf_add(out, (const char *)tmp, varint_bytes(v, tmp));
}

void fl_wire_put_sint(fl_buf *out, int64_t v) { fl_wire_put_uint(out, zigzag(v)); }

void fl_wire_put_bytes(fl_buf *out, const char *s, size_t n) {
  fl_wire_put_uint(out, (uint64_t)n);
  if (n) fl_buf_add(out, s, n); /* an empty view may be {NULL, 0} */
}

void fl_wire_put_tag(fl_buf *out, int tag) { fl_buf_addc(out, (char)tag); }

void fl_wire_put_int(fl_buf *out, int64_t v) {
  unsigned char tmp[11];
  tmp[0] = FL_WIRE_INT;
  fl_buf_add(out, (const char *)tmp, 1 + varint_bytes(zigzag(v), tmp + 1));
}

void fl_wire_put_double(fl_buf *out, double v) {
  uint64_t bits = 0;
  memcpy(&bits, &v, sizeof bits);
  unsigned char tmp[9];
  tmp[0] = FL_WIRE_DOUBLE;
  for (int k = 0; k < 8; k++) tmp[1 + k] = (unsigned char)(bits >> (8 * k));
  fl_buf_add(out, (const char *)tmp, sizeof tmp);
}

void fl_wire_put_string(fl_buf *out, const char *s, size_t n) {
  unsigned char tmp[11];
  tmp[0] = FL_WIRE_STRING;
  fl_buf_add(out, (const char *)tmp, 1 + varint_bytes((uint64_t)n, tmp + 1));
  fl_buf_add(out, s, n);
}

/* The tag and one byte for each count: most tables have fewer than 128
   array values and 128 pairs, and then nothing moves at the end. */
size_t fl_wire_table_begin(fl_buf *out, int tag) {
  size_t mark = out->len;
  const char head[3] = {(char)tag, 0, 0};
  fl_buf_add(out, head, sizeof head);
  return mark;
}

void fl_wire_table_end(fl_buf *out, size_t mark, uint64_t narr, uint64_t nhash) {
  if (out->oom) return;
  unsigned char counts[20];
  size_t la = varint_bytes(narr, counts);
  size_t lh = varint_bytes(nhash, counts + la);
  size_t extra = la + lh - 2;
  if (extra > 0) { /* a big table: its elements move up to make room */
    if (fl_buf_reserve(out, extra) != 0) return;
    char *body = out->data + mark + 3;
    memmove(body + extra, body, out->len - (mark + 3));
    out->len += extra;
    out->data[out->len] = '\0';
  }
  memcpy(out->data + mark + 1, counts, la + lh);
}

/* ---- reading values ------------------------------------------------------ */

void fl_wire_in_init(fl_wire_in *in, const void *data, size_t len) {
  in->start = in->p = data;
  in->end = in->start + len;
  in->depth = 0;
  in->err[0] = '\0';
}

static size_t left(const fl_wire_in *in) { return (size_t)(in->end - in->p); }

/* One canonical LEB128 varint of at most 64 bits; `what` names it. */
static int get_varint(fl_wire_in *in, uint64_t *v, const char *what) {
  const unsigned char *at = in->p;
  uint64_t x = 0;
  for (unsigned shift = 0;; shift += 7) {
    if (in->p >= in->end) return fail(in, at, "%s cut short by the end of the input", what);
    unsigned c = *in->p++;
    if (shift == 63 && c > 1) return fail(in, at, "%s longer than 64 bits", what);
    x |= (uint64_t)(c & 0x7f) << shift;
    if (c & 0x80) continue;
    if (c == 0 && shift > 0) /* one spelling per number: no trailing zeros */
      return fail(in, at, "%s written with a needless zero byte", what);
    *v = x;
    return 0;
  }
}

int fl_wire_get_uint(fl_wire_in *in, uint64_t *v) { return get_varint(in, v, "a number"); }

int fl_wire_get_sint(fl_wire_in *in, int64_t *v) {
  uint64_t u = 0;
  if (get_varint(in, &u, "a number") != 0) return -1;
  *v = unzigzag(u);
  return 0;
}

int fl_wire_get_bytes(fl_wire_in *in, fl_wire_bytes *b) {
  const unsigned char *at = in->p;
  uint64_t n = 0;
  if (get_varint(in, &n, "a length") != 0) return -1;
  if (n > left(in))
    return fail(in, at, "%llu bytes announced with %zu left",
                (unsigned long long)n, left(in));
  b->p = (const char *)in->p;
  b->n = (size_t)n;
  in->p += n;
  return 0;
}

static const char *tag_name(int tag) {
  switch (tag) {
  case FL_WIRE_NIL: return "nil";
  case FL_WIRE_FALSE: case FL_WIRE_TRUE: return "a boolean";
  case FL_WIRE_INT: return "an integer";
  case FL_WIRE_DOUBLE: return "a float";
  case FL_WIRE_STRING: return "a string";
  case FL_WIRE_TABLE: case FL_WIRE_ARRAY: return "a table";
  case FL_WIRE_JSON_NULL: return "json.null";
  case FL_WIRE_EMPTY_ARRAY: return "json.empty_array";
  default: return "an unknown tag";
  }
}

static int get_double(fl_wire_in *in, const unsigned char *at, double *d) {
  if (left(in) < 8) return fail(in, at, "a float cut short (%zu of 8 bytes)", left(in));
  uint64_t bits = 0;
  for (int k = 0; k < 8; k++) bits |= (uint64_t)in->p[k] << (8 * k);
  memcpy(d, &bits, sizeof *d);
  in->p += 8;
  return 0;
}

static int get_string(fl_wire_in *in, const unsigned char *at, fl_wire_item *it) {
  uint64_t n = 0;
  if (get_varint(in, &n, "a string's length") != 0) return -1;
  if (n > left(in))
    return fail(in, at, "a string of %llu bytes with %zu left",
                (unsigned long long)n, left(in));
  it->s = (const char *)in->p;
  it->len = (size_t)n;
  in->p += n;
  return 0;
}

/* A table's counts, bounded by the bytes left: every array value takes at
   least one byte and every pair two, so a hostile count cannot make a
   decoder allocate more than the input's size. */
static int get_table_head(fl_wire_in *in, const unsigned char *at, fl_wire_item *it) {
  if (get_varint(in, &it->narr, "a table's array count") != 0 ||
      get_varint(in, &it->nhash, "a table's pair count") != 0)
    return -1;
  size_t room = left(in);
  if (it->narr > room || it->nhash > (room - it->narr) / 2)
    return fail(in, at, "a table of %llu values and %llu pairs with %zu bytes left",
                (unsigned long long)it->narr, (unsigned long long)it->nhash, room);
  return 0;
}

int fl_wire_get_item(fl_wire_in *in, fl_wire_item *it) {
  const unsigned char *at = in->p;
  if (in->p >= in->end) return fail(in, at, "a value expected, the input ended");
  it->at = (size_t)(at - in->start);
  it->tag = *in->p++;
  switch (it->tag) {
  case FL_WIRE_NIL: case FL_WIRE_FALSE: case FL_WIRE_TRUE:
  case FL_WIRE_JSON_NULL: case FL_WIRE_EMPTY_ARRAY:
    return 0;
  case FL_WIRE_INT:
    return fl_wire_get_sint(in, &it->i);
  case FL_WIRE_DOUBLE:
    return get_double(in, at, &it->d);
  case FL_WIRE_STRING:
    return get_string(in, at, it);
  case FL_WIRE_TABLE: case FL_WIRE_ARRAY:
    return get_table_head(in, at, it);
  default:
    return fail(in, at, "unknown value tag 0x%02x", (unsigned)it->tag);
  }
}

int fl_wire_get_key(fl_wire_in *in, fl_wire_item *it) {
  const unsigned char *at = in->p;
  if (fl_wire_get_item(in, it) != 0) return -1;
  if (it->tag == FL_WIRE_STRING || it->tag == FL_WIRE_INT) return 0;
  if (it->tag == FL_WIRE_DOUBLE && !isnan(it->d)) return 0;
  return fail(in, at, "a table key that is %s (keys are strings or numbers)",
              it->tag == FL_WIRE_DOUBLE ? "NaN" : tag_name(it->tag));
}

int fl_wire_enter(fl_wire_in *in, const fl_wire_item *table) {
  if (in->depth >= FL_WIRE_DEPTH_MAX)
    return fail(in, in->start + table->at, "tables nested deeper than %d", FL_WIRE_DEPTH_MAX);
  in->depth++;
  return 0;
}

void fl_wire_leave(fl_wire_in *in) { in->depth--; }

int fl_wire_skip_value(fl_wire_in *in) {
  fl_wire_item it;
  if (fl_wire_get_item(in, &it) != 0) return -1;
  if (it.tag != FL_WIRE_TABLE && it.tag != FL_WIRE_ARRAY) return 0;
  if (fl_wire_enter(in, &it) != 0) return -1;
  for (uint64_t k = 0; k < it.narr; k++)
    if (fl_wire_skip_value(in) != 0) return -1;
  for (uint64_t k = 0; k < it.nhash; k++) {
    fl_wire_item key;
    if (fl_wire_get_key(in, &key) != 0 || fl_wire_skip_value(in) != 0) return -1;
  }
  fl_wire_leave(in);
  return 0;
}

int fl_wire_check_value(const char *data, size_t len, char *err) {
  fl_wire_in in;
  fl_wire_in_init(&in, data, len);
  if (fl_wire_skip_value(&in) == 0 && in.p != in.end)
    fail(&in, in.p, "%zu bytes after the value", left(&in));
  if (in.err[0]) {
    copy_err(err, in.err);
    return -1;
  }
  return 0;
}

/* ---- frames ------------------------------------------------------------- */

const char *fl_wire_type_name(int type) {
  static const char *const names[] = {NULL,     "HELLO", "JOB", "JOBS", "CANCEL",
                                      "RESULT", "LOG",   "SECRET", "BYE"};
  return type >= FL_WIRE_HELLO && type <= FL_WIRE_BYE ? names[type] : "unknown";
}

static void put_u32(char *p, uint32_t v) {
  for (int k = 0; k < 4; k++) p[k] = (char)(unsigned char)(v >> (8 * k));
}

static uint32_t get_u32(const unsigned char *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
         (uint32_t)p[3] << 24;
}

/* The header, its length left 0 until frame_end knows it. */
static size_t frame_begin(fl_buf *out, int type) {
  size_t mark = out->len;
  const char head[FL_WIRE_HEADER_SIZE] = {(char)FL_WIRE_MAGIC, (char)type, 0, 0, 0, 0};
  fl_buf_add(out, head, sizeof head);
  return mark;
}

/* Patches the payload's length in; on failure takes the frame back out. */
static int frame_end(fl_buf *out, size_t mark, char *err) {
  if (out->oom) {
    set_err(err, "not enough memory for a worker message");
    goto undo;
  }
  size_t n = out->len - mark - FL_WIRE_HEADER_SIZE;
  if (n > FL_WIRE_PAYLOAD_MAX) {
    set_err(err, "a %s message of %zu bytes is over the limit of %zu",
            fl_wire_type_name((unsigned char)out->data[mark + 1]), n,
            (size_t)FL_WIRE_PAYLOAD_MAX);
    goto undo;
  }
  put_u32(out->data + mark + 2, (uint32_t)n);
  return 0;
undo:
  out->len = mark;
  if (out->data) out->data[mark] = '\0';
  return -1;
}

/* Checks a header: 0 with the type and length, or -1 with err. */
static int check_header(const unsigned char *h, int *type, size_t *len, char *err) {
  if (h[0] != FL_WIRE_MAGIC) {
    set_err(err, "not a flowlua worker frame: first byte 0x%02x, expected 0x%02x "
                 "(wire version %d)", h[0], FL_WIRE_MAGIC, FL_WIRE_VERSION);
    return -1;
  }
  if (h[1] < FL_WIRE_HELLO || h[1] > FL_WIRE_BYE) {
    set_err(err, "unknown message type %u", h[1]);
    return -1;
  }
  uint32_t n = get_u32(h + 2);
  if (n > FL_WIRE_PAYLOAD_MAX) {
    set_err(err, "a %s frame of %lu bytes is over the limit of %zu",
            fl_wire_type_name(h[1]), (unsigned long)n, (size_t)FL_WIRE_PAYLOAD_MAX);
    return -1;
  }
  *type = h[1];
  *len = n;
  return 0;
}

int fl_wire_frame_parse(const char *data, size_t len, fl_wire_frame *f, char *err) {
  if (len < FL_WIRE_HEADER_SIZE) {
    set_err(err, "a frame of %zu bytes is shorter than its %d-byte header", len,
            FL_WIRE_HEADER_SIZE);
    return -1;
  }
  size_t n;
  if (check_header((const unsigned char *)data, &f->type, &n, err) != 0) return -1;
  if (n != len - FL_WIRE_HEADER_SIZE) {
    set_err(err, "a %s frame announcing %zu payload bytes holds %zu",
            fl_wire_type_name(f->type), n, len - FL_WIRE_HEADER_SIZE);
    return -1;
  }
  f->payload = data + FL_WIRE_HEADER_SIZE;
  f->len = n;
  return 0;
}

/* ---- messages ------------------------------------------------------------ */

static void put_view(fl_buf *out, fl_wire_bytes b) { fl_wire_put_bytes(out, b.p, b.n); }

int fl_wire_put_hello(fl_buf *out, const fl_wire_hello *m, char *err) {
  size_t mark = frame_begin(out, FL_WIRE_HELLO);
  fl_wire_put_uint(out, m->version);
  fl_wire_put_sint(out, m->pid);
  put_view(out, m->script_sha256);
  put_view(out, m->runtime);
  return frame_end(out, mark, err);
}

static void put_job_fields(fl_buf *out, const fl_wire_job *m) {
  fl_wire_put_uint(out, m->job_id);
  put_view(out, m->run_id);
  put_view(out, m->task_key);
  put_view(out, m->task_name);
  fl_wire_put_sint(out, m->map_index);
  fl_wire_put_uint(out, m->attempt);
  fl_wire_put_uint(out, m->timeout_ms);
  fl_wire_put_uint(out, m->memory_limit);
  put_view(out, m->args);
  put_view(out, m->params);
  put_view(out, m->flow);
  uint64_t bits;
  memcpy(&bits, &m->scheduled_at, sizeof bits);
  fl_wire_put_uint(out, bits);
  memcpy(&bits, &m->started_at, sizeof bits);
  fl_wire_put_uint(out, bits);
}

int fl_wire_put_job(fl_buf *out, const fl_wire_job *m, char *err) {
  size_t mark = frame_begin(out, FL_WIRE_JOB);
  put_job_fields(out, m);
  return frame_end(out, mark, err);
}

int fl_wire_put_cancel(fl_buf *out, uint64_t job_id, char *err) {
  size_t mark = frame_begin(out, FL_WIRE_CANCEL);
  fl_wire_put_uint(out, job_id);
  return frame_end(out, mark, err);
}

int fl_wire_put_result(fl_buf *out, const fl_wire_result *m, char *err) {
  size_t mark = frame_begin(out, FL_WIRE_RESULT);
  fl_wire_put_uint(out, m->job_id);
  fl_wire_put_uint(out, (uint64_t)m->outcome);
  if (m->outcome == FL_WIRE_SUCCESS) {
    put_view(out, m->value);
  } else {
    put_view(out, m->message);
    put_view(out, m->traceback);
  }
  return frame_end(out, mark, err);
}

int fl_wire_put_log(fl_buf *out, const fl_wire_log *m, char *err) {
  size_t mark = frame_begin(out, FL_WIRE_LOG);
  fl_wire_put_uint(out, m->job_id);
  fl_wire_put_sint(out, m->level);
  put_view(out, m->text);
  return frame_end(out, mark, err);
}

int fl_wire_put_secret(fl_buf *out, const fl_wire_secret *m, char *err) {
  size_t mark = frame_begin(out, FL_WIRE_SECRET);
  fl_wire_put_uint(out, m->job_id);
  put_view(out, m->secret);
  return frame_end(out, mark, err);
}

int fl_wire_put_bye(fl_buf *out, char *err) {
  return frame_end(out, frame_begin(out, FL_WIRE_BYE), err);
}

void fl_wire_jobs_begin(fl_buf *out, fl_wire_batch *batch) {
  batch->mark = frame_begin(out, FL_WIRE_JOBS);
  batch->count = 0;
  const char count[4] = {0};
  fl_buf_add(out, count, sizeof count);
}

/* Each job is length-prefixed; its length is patched like a table's. */
void fl_wire_jobs_add(fl_buf *out, fl_wire_batch *batch, const fl_wire_job *m) {
  size_t at = out->len;
  fl_buf_add(out, "\0\0", 2); /* room for a length under 16 KiB */
  put_job_fields(out, m);
  if (out->oom) return;
  unsigned char len[10];
  size_t n = out->len - at - 2;
  size_t ln = varint_bytes((uint64_t)n, len);
  if (ln != 2) {
    if (ln > 2 && fl_buf_reserve(out, ln - 2) != 0) return;
    memmove(out->data + at + ln, out->data + at + 2, n);
    out->len = out->len + ln - 2;
    out->data[out->len] = '\0';
  }
  memcpy(out->data + at, len, ln);
  batch->count++;
}

int fl_wire_jobs_end(fl_buf *out, fl_wire_batch *batch, char *err) {
  if (batch->count == 0 && !out->oom) {
    set_err(err, "a JOBS message without a job");
    out->len = batch->mark;
    if (out->data) out->data[batch->mark] = '\0';
    return -1;
  }
  if (!out->oom) put_u32(out->data + batch->mark + FL_WIRE_HEADER_SIZE, batch->count);
  return frame_end(out, batch->mark, err);
}

/* Starts reading a frame's payload; offsets count from its first byte. */
static void open_payload(fl_wire_in *in, const fl_wire_frame *f) {
  fl_wire_in_init(in, f->payload, f->len);
}

static int wrong_type(const fl_wire_frame *f, int type, char *err) {
  if (f->type == type) return 0;
  set_err(err, "a %s frame where a %s was expected", fl_wire_type_name(f->type),
          fl_wire_type_name(type));
  return -1;
}

/* The end of a message: nothing may follow its last field. */
static int close_payload(fl_wire_in *in, int ok, int type, char *err) {
  if (ok && in->p != in->end)
    fail(in, in->p, "%zu bytes after the last field", left(in));
  if (!ok || in->p != in->end) {
    set_err(err, "a broken %s message: %s", fl_wire_type_name(type), in->err);
    return -1;
  }
  return 0;
}

int fl_wire_get_hello(const fl_wire_frame *f, fl_wire_hello *m, char *err) {
  if (wrong_type(f, FL_WIRE_HELLO, err)) return -1;
  fl_wire_in in;
  open_payload(&in, f);
  int ok = fl_wire_get_uint(&in, &m->version) == 0 && fl_wire_get_sint(&in, &m->pid) == 0 &&
           fl_wire_get_bytes(&in, &m->script_sha256) == 0 &&
           fl_wire_get_bytes(&in, &m->runtime) == 0;
  return close_payload(&in, ok, f->type, err);
}

static int get_double_bits(fl_wire_in *in, double *d) {
  uint64_t bits;
  if (fl_wire_get_uint(in, &bits) != 0) return -1;
  memcpy(d, &bits, sizeof *d);
  return 0;
}

static int get_job_fields(fl_wire_in *in, fl_wire_job *m) {
  return fl_wire_get_uint(in, &m->job_id) == 0 && fl_wire_get_bytes(in, &m->run_id) == 0 &&
         fl_wire_get_bytes(in, &m->task_key) == 0 &&
         fl_wire_get_bytes(in, &m->task_name) == 0 &&
         fl_wire_get_sint(in, &m->map_index) == 0 && fl_wire_get_uint(in, &m->attempt) == 0 &&
         fl_wire_get_uint(in, &m->timeout_ms) == 0 &&
         fl_wire_get_uint(in, &m->memory_limit) == 0 &&
         fl_wire_get_bytes(in, &m->args) == 0 && fl_wire_get_bytes(in, &m->params) == 0 &&
         fl_wire_get_bytes(in, &m->flow) == 0 &&
         get_double_bits(in, &m->scheduled_at) == 0 &&
         get_double_bits(in, &m->started_at) == 0;
}

int fl_wire_get_job(const fl_wire_frame *f, fl_wire_job *m, char *err) {
  if (wrong_type(f, FL_WIRE_JOB, err)) return -1;
  fl_wire_in in;
  open_payload(&in, f);
  return close_payload(&in, get_job_fields(&in, m), f->type, err);
}

int fl_wire_get_cancel(const fl_wire_frame *f, uint64_t *job_id, char *err) {
  if (wrong_type(f, FL_WIRE_CANCEL, err)) return -1;
  fl_wire_in in;
  open_payload(&in, f);
  return close_payload(&in, fl_wire_get_uint(&in, job_id) == 0, f->type, err);
}

int fl_wire_get_result(const fl_wire_frame *f, fl_wire_result *m, char *err) {
  if (wrong_type(f, FL_WIRE_RESULT, err)) return -1;
  fl_wire_in in;
  open_payload(&in, f);
  static const fl_wire_bytes none = {"", 0};
  m->value = m->message = m->traceback = none;
  uint64_t outcome = 0;
  int ok = fl_wire_get_uint(&in, &m->job_id) == 0;
  const unsigned char *at = in.p;
  ok = ok && fl_wire_get_uint(&in, &outcome) == 0;
  if (ok && outcome > FL_WIRE_SKIPPED) {
    fail(&in, at, "unknown outcome %llu", (unsigned long long)outcome);
    ok = 0;
  }
  m->outcome = (int)outcome;
  if (ok && outcome == FL_WIRE_SUCCESS)
    ok = fl_wire_get_bytes(&in, &m->value) == 0;
  else if (ok)
    ok = fl_wire_get_bytes(&in, &m->message) == 0 &&
         fl_wire_get_bytes(&in, &m->traceback) == 0;
  return close_payload(&in, ok, f->type, err);
}

int fl_wire_get_log(const fl_wire_frame *f, fl_wire_log *m, char *err) {
  if (wrong_type(f, FL_WIRE_LOG, err)) return -1;
  fl_wire_in in;
  open_payload(&in, f);
  int ok = fl_wire_get_uint(&in, &m->job_id) == 0 && fl_wire_get_sint(&in, &m->level) == 0 &&
           fl_wire_get_bytes(&in, &m->text) == 0;
  return close_payload(&in, ok, f->type, err);
}

int fl_wire_get_secret(const fl_wire_frame *f, fl_wire_secret *m, char *err) {
  if (wrong_type(f, FL_WIRE_SECRET, err)) return -1;
  fl_wire_in in;
  open_payload(&in, f);
  int ok = fl_wire_get_uint(&in, &m->job_id) == 0 && fl_wire_get_bytes(&in, &m->secret) == 0;
  return close_payload(&in, ok, f->type, err);
}

int fl_wire_get_bye(const fl_wire_frame *f, char *err) {
  if (wrong_type(f, FL_WIRE_BYE, err)) return -1;
  fl_wire_in in;
  open_payload(&in, f);
  return close_payload(&in, 1, f->type, err);
}

int fl_wire_jobs_open(fl_wire_jobs_iter *it, const fl_wire_frame *f) {
  fl_wire_in_init(&it->in, f->payload, f->len);
  it->done = it->count = 0;
  if (f->type != FL_WIRE_JOBS) {
    set_err(it->in.err, "a %s frame where a JOBS was expected", fl_wire_type_name(f->type));
    return -1;
  }
  if (f->len < 4) return fail(&it->in, it->in.p, "a JOBS message without its count");
  it->count = get_u32(it->in.p);
  it->in.p += 4;
  /* A job takes at least 11 bytes (its length and ten fields of at least
     a byte each): a count that cannot fit is refused now. */
  if (it->count == 0 || it->count > left(&it->in) / 11)
    return fail(&it->in, it->in.start, "a JOBS message of %lu jobs in %zu bytes",
                (unsigned long)it->count, f->len);
  return 0;
}

int fl_wire_jobs_next(fl_wire_jobs_iter *it, fl_wire_job *m) {
  fl_wire_in *in = &it->in;
  if (it->done == it->count) {
    if (in->p != in->end) return fail(in, in->p, "%zu bytes after the last job", left(in));
    return 0;
  }
  fl_wire_bytes one;
  if (fl_wire_get_bytes(in, &one) != 0) return -1;
  fl_wire_in job;
  fl_wire_in_init(&job, one.p, one.n);
  int ok = get_job_fields(&job, m);
  if (ok && job.p != job.end) {
    fail(&job, job.p, "%zu bytes after the last field", left(&job));
    ok = 0;
  }
  if (!ok)
    return fail(in, (const unsigned char *)one.p, "job %lu of %lu is broken (%s)",
                (unsigned long)it->done + 1, (unsigned long)it->count, job.err);
  it->done++;
  return 1;
}

/* ---- frames on descriptors ----------------------------------------------- */

/* One call of fl_wire_reader_fill reads at most this much. */
#define FILL_MAX ((size_t)4 << 20)
#define READ_CHUNK ((size_t)64 << 10)

void fl_wire_reader_init(fl_wire_reader *r) {
  r->in = (fl_buf)FL_BUF_INIT;
  r->off = 0;
  r->failed = 0;
  r->err[0] = '\0';
}

void fl_wire_reader_free(fl_wire_reader *r) {
  fl_buf_free(&r->in);
  r->off = 0;
}

/* Drops the frames handed out, so that the buffer holds one frame or so. */
static void compact(fl_wire_reader *r) {
  if (r->off == 0) return;
  size_t keep = r->in.len - r->off;
  if (keep) memmove(r->in.data, r->in.data + r->off, keep);
  r->in.len = keep;
  r->off = 0;
}

int fl_wire_reader_feed(fl_wire_reader *r, const void *data, size_t n) {
  compact(r);
  fl_buf_add(&r->in, data, n);
  if (r->in.oom) {
    set_err(r->err, "not enough memory for %zu bytes from a worker connection", n);
    return -1;
  }
  return 0;
}

int fl_wire_reader_fill(fl_wire_reader *r, int fd) {
  compact(r);
  size_t got = 0;
  while (got < FILL_MAX) {
    if (fl_buf_reserve(&r->in, READ_CHUNK) != 0) {
      set_err(r->err, "not enough memory to read a worker connection");
      return -1;
    }
    ssize_t n = read(fd, r->in.data + r->in.len, r->in.cap - r->in.len - 1);
    if (n > 0) {
      r->in.len += (size_t)n;
      got += (size_t)n;
    } else if (n == 0) {
      return got ? 1 : 0;
    } else if (errno == EINTR) {
      continue;
    } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
      return 1;
    } else {
      set_err(r->err, "reading a worker connection: %s", strerror(errno));
      return -1;
    }
  }
  return 1;
}

int fl_wire_reader_next(fl_wire_reader *r, fl_wire_frame *f) {
  if (r->failed) return -1;
  size_t avail = r->in.len - r->off;
  if (avail < FL_WIRE_HEADER_SIZE) return 0;
  const unsigned char *h = (const unsigned char *)r->in.data + r->off;
  size_t n;
  if (check_header(h, &f->type, &n, r->err) != 0) {
    r->failed = 1;
    return -1;
  }
  if (avail - FL_WIRE_HEADER_SIZE < n) return 0;
  f->payload = (const char *)h + FL_WIRE_HEADER_SIZE;
  f->len = n;
  r->off += FL_WIRE_HEADER_SIZE + n;
  return 1;
}

int fl_wire_reader_at_eof(fl_wire_reader *r) {
  if (r->failed) return -1;
  size_t avail = r->in.len - r->off;
  if (avail == 0) return 0;
  if (avail < FL_WIRE_HEADER_SIZE) {
    set_err(r->err, "end of file inside a frame's header: %zu of %d bytes", avail,
            FL_WIRE_HEADER_SIZE);
    return -1;
  }
  int type;
  size_t n;
  if (check_header((const unsigned char *)r->in.data + r->off, &type, &n, r->err) != 0)
    return -1;
  set_err(r->err, "end of file inside a %s frame: %zu of %zu bytes",
          fl_wire_type_name(type), avail, n + FL_WIRE_HEADER_SIZE);
  return -1;
}

void fl_wire_writer_init(fl_wire_writer *w) {
  w->out = (fl_buf)FL_BUF_INIT;
  w->off = 0;
  w->not_socket = 0;
  w->err[0] = '\0';
}

void fl_wire_writer_free(fl_wire_writer *w) {
  fl_buf_free(&w->out);
  w->off = 0;
}

size_t fl_wire_writer_pending(const fl_wire_writer *w) { return w->out.len - w->off; }

/* One write of what is pending, by send(2) until fd proves to be no socket. */
static ssize_t write_once(fl_wire_writer *w, int fd) {
  const char *p = w->out.data + w->off;
  size_t n = w->out.len - w->off;
  if (!w->not_socket) {
    ssize_t k = send(fd, p, n, MSG_NOSIGNAL);
    if (k >= 0 || errno != ENOTSOCK) return k;
    w->not_socket = 1;
  }
  return write(fd, p, n);
}

int fl_wire_writer_flush(fl_wire_writer *w, int fd) {
  if (w->out.oom) {
    set_err(w->err, "not enough memory for a worker message");
    return -1;
  }
  while (w->off < w->out.len) {
    ssize_t k = write_once(w, fd);
    if (k > 0) {
      w->off += (size_t)k;
    } else if (k < 0 && errno == EINTR) {
      continue;
    } else if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      if (w->off > w->out.len / 2) { /* keep the buffer from creeping */
        memmove(w->out.data, w->out.data + w->off, w->out.len - w->off);
        w->out.len -= w->off;
        w->off = 0;
      }
      return 0;
    } else {
      set_err(w->err, "writing a worker connection: %s",
              k == 0 ? "nothing written"
              : errno == EPIPE ? "the other end has closed it (EPIPE)"
                               : strerror(errno));
      return -1;
    }
  }
  fl_buf_reset(&w->out);
  w->off = 0;
  return 1;
}
