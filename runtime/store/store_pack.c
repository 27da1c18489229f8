/*
 * store_pack.c — the task_pack format: many ended task runs in one row, as
 * a JSON array of arrays (schema step 2 -> 3 in store.c), written by the
 * writer and read back here without SQLite's JSON functions, which would
 * parse every element once per column.
 *
 * Each element is [n, key, task, map_index, state, state_at, state_seq,
 * attempts, error, started_at, started_seq, ended_at, result_kind, result]:
 * integers, strings or null, times in integer microseconds, the result as
 * a string holding its JSON text.
 */
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "store_internal.h"

/* ---- writing ----------------------------------------------------------------- */

static void put_int(fl_buf *j, long long v) {
  if (v < 0) {
    fl_buf_addc(j, '-');
    fl_buf_addu(j, 0ull - (unsigned long long)v);
  } else {
    fl_buf_addu(j, (unsigned long long)v);
  }
  fl_buf_addc(j, ',');
}

/* A time as integer microseconds, or null for none (0). */
static void put_time(fl_buf *j, double t) {
  if (t > 0)
    put_int(j, llround(t * 1e6));
  else
    fl_buf_adds(j, "null,");
}

static void put_str(fl_buf *j, const char *s) {
  if (s)
    fl_buf_add_json_string(j, s);
  else
    fl_buf_adds(j, "null");
  fl_buf_addc(j, ',');
}

void fl__store_pack_begin(fl_buf *j) {
  fl_buf_reset(j);
  fl_buf_addc(j, '[');
}

void fl__store_pack_add(fl_buf *j, const store_pack_row *r) {
  fl_buf_adds(j, j->len > 1 ? ",[" : "[");
  put_int(j, r->n);
  put_str(j, r->key);
  put_str(j, r->task);
  put_int(j, r->map_index);
  put_str(j, fl__store_task_state_names[r->state]);
  put_time(j, r->state_at);
  put_int(j, r->state_seq);
  put_int(j, r->attempts);
  put_str(j, r->error);
  put_time(j, r->started_at);
  if (r->started_seq)
    put_int(j, r->started_seq);
  else
    fl_buf_adds(j, "null,");
  put_time(j, r->ended_at);
  put_int(j, r->result_kind);
  if (r->result) /* its JSON text as a string: it reads back to the byte */
    fl_buf_add_json_string(j, r->result);
  else
    fl_buf_adds(j, "null");
  fl_buf_addc(j, ']');
}

void fl__store_pack_end(fl_buf *j) { fl_buf_addc(j, ']'); }

/* ---- reading ------------------------------------------------------------------- */

typedef struct reader {
  const char *p, *end;
  fl_buf *text; /* unescaped strings, NUL-terminated, by offset */
} reader;

static void skip_space(reader *r) {
  while (r->p < r->end &&
         (*r->p == ' ' || *r->p == '\n' || *r->p == '\t' || *r->p == '\r'))
    r->p++;
}

static int expect(reader *r, char c) {
  skip_space(r);
  if (r->p == r->end || *r->p != c) return -1;
  r->p++;
  return 0;
}

static int hex4(const char *p, unsigned *out) {
  unsigned v = 0;
  for (int i = 0; i < 4; i++) {
    char c = p[i];
    v <<= 4;
    if (c >= '0' && c <= '9') v |= (unsigned)(c - '0');
    else if (c >= 'a' && c <= 'f') v |= (unsigned)(c - 'a' + 10);
    else if (c >= 'A' && c <= 'F') v |= (unsigned)(c - 'A' + 10);
    else return -1;
  }
  *out = v;
  return 0;
}

static void add_utf8(fl_buf *b, unsigned cp) {
  char u[4];
  size_t n;
  if (cp < 0x80) {
    u[0] = (char)cp, n = 1;
  } else if (cp < 0x800) {
    u[0] = (char)(0xc0 | cp >> 6), u[1] = (char)(0x80 | (cp & 0x3f)), n = 2;
  } else if (cp < 0x10000) {
    u[0] = (char)(0xe0 | cp >> 12), u[1] = (char)(0x80 | (cp >> 6 & 0x3f));
    u[2] = (char)(0x80 | (cp & 0x3f)), n = 3;
  } else {
    u[0] = (char)(0xf0 | cp >> 18), u[1] = (char)(0x80 | (cp >> 12 & 0x3f));
    u[2] = (char)(0x80 | (cp >> 6 & 0x3f)), u[3] = (char)(0x80 | (cp & 0x3f));
    n = 4;
  }
  fl_buf_add(b, u, n);
}

/* A string or null: *off is its offset in r->text (SIZE_MAX for null),
   *len its length. */
static int read_str(reader *r, size_t *off, size_t *len) {
  skip_space(r);
  if (r->end - r->p >= 4 && memcmp(r->p, "null", 4) == 0) {
    r->p += 4;
    *off = SIZE_MAX;
    *len = 0;
    return 0;
  }
  if (r->p == r->end || *r->p != '"') return -1;
  r->p++;
  fl_buf *t = r->text;
  *off = t->len;
  for (;;) {
    const char *run = r->p;
    while (r->p < r->end && *r->p != '"' && *r->p != '\\') r->p++;
    fl_buf_add(t, run, (size_t)(r->p - run));
    if (r->p == r->end) return -1;
    if (*r->p++ == '"') break;
    if (r->p == r->end) return -1;
    char c = *r->p++;
    switch (c) {
    case '"': case '\\': case '/': fl_buf_addc(t, c); break;
    case 'b': fl_buf_addc(t, '\b'); break;
    case 'f': fl_buf_addc(t, '\f'); break;
    case 'n': fl_buf_addc(t, '\n'); break;
    case 'r': fl_buf_addc(t, '\r'); break;
    case 't': fl_buf_addc(t, '\t'); break;
    case 'u': {
      unsigned cp, lo;
      if (r->end - r->p < 4 || hex4(r->p, &cp)) return -1;
      r->p += 4;
      if (cp >= 0xd800 && cp < 0xdc00 && r->end - r->p >= 6 &&
          r->p[0] == '\\' && r->p[1] == 'u' && hex4(r->p + 2, &lo) == 0 &&
          lo >= 0xdc00 && lo < 0xe000) {
        cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
        r->p += 6;
      }
      add_utf8(t, cp);
      break;
    }
    default:
      return -1;
    }
  }
  *len = t->len - *off;
  fl_buf_addc(t, '\0');
  return t->oom ? -1 : 0;
}

/* An integer or null (*is_null). */
static int read_int(reader *r, long long *v, int *is_null) {
  skip_space(r);
  *is_null = 0;
  if (r->end - r->p >= 4 && memcmp(r->p, "null", 4) == 0) {
    r->p += 4;
    *is_null = 1;
    *v = 0;
    return 0;
  }
  int neg = r->p < r->end && *r->p == '-';
  if (neg) r->p++;
  if (r->p == r->end || *r->p < '0' || *r->p > '9') return -1;
  unsigned long long u = 0;
  while (r->p < r->end && *r->p >= '0' && *r->p <= '9') {
    unsigned d = (unsigned)(*r->p++ - '0');
    if (u > (ULLONG_MAX - d) / 10 || u * 10 + d > (unsigned long long)LLONG_MAX)
      return -1;
    u = u * 10 + d;
  }
  *v = neg ? -(long long)u : (long long)u;
  return 0;
}

static int read_time(reader *r, double *t) {
  long long us;
  int is_null;
  if (read_int(r, &us, &is_null)) return -1;
  *t = is_null ? 0 : (double)us / 1e6;
  return 0;
}

/* Reads a whole int field with its comma; -1 on null where none may be. */
static int field_int(reader *r, long long *v, int nullable) {
  int is_null;
  if (read_int(r, v, &is_null) || (is_null && !nullable)) return -1;
  return expect(r, ',');
}

/* One element, its strings as offsets in r->text (fixed up by the caller:
   the buffer may move while later strings are added). */
typedef struct offsets {
  size_t key, task, state, error, result, result_len;
} offsets;

static int read_row(reader *r, store_pack_row *row, offsets *o) {
  long long v;
  size_t len;
  double t;
  if (expect(r, '[')) return -1;
  if (field_int(r, &v, 0) || v < 0 || v > UINT32_MAX) return -1;
  row->n = (uint32_t)v;
  if (read_str(r, &o->key, &len) || o->key == SIZE_MAX || expect(r, ',')) return -1;
  if (read_str(r, &o->task, &len) || o->task == SIZE_MAX || expect(r, ',')) return -1;
  if (field_int(r, &v, 0) || v < INT32_MIN || v > INT32_MAX) return -1;
  row->map_index = (int32_t)v;
  if (read_str(r, &o->state, &len) || o->state == SIZE_MAX || expect(r, ','))
    return -1;
  if (read_time(r, &t) || expect(r, ',')) return -1;
  row->state_at = t;
  if (field_int(r, &v, 0) || v < 0 || v > UINT32_MAX) return -1;
  row->state_seq = (uint32_t)v;
  if (field_int(r, &v, 0) || v < 0 || v > INT32_MAX) return -1;
  row->attempts = (int32_t)v;
  if (read_str(r, &o->error, &len) || expect(r, ',')) return -1;
  if (read_time(r, &t) || expect(r, ',')) return -1;
  row->started_at = t;
  if (field_int(r, &v, 1) || v < 0 || v > UINT32_MAX) return -1;
  row->started_seq = (uint32_t)v;
  if (read_time(r, &t) || expect(r, ',')) return -1;
  row->ended_at = t;
  if (field_int(r, &v, 0) || v < INT32_MIN || v > INT32_MAX) return -1;
  row->result_kind = (int32_t)v;
  if (read_str(r, &o->result, &o->result_len)) return -1;
  return expect(r, ']');
}

static const char *at_off(const fl_buf *b, size_t off) {
  return off == SIZE_MAX ? NULL : b->data + off;
}

int fl__store_pack_read(const char *json, size_t len, fl_buf *scratch,
                    store_pack_fn fn, void *ctx) {
  reader r = {json, json + len, scratch};
  if (expect(&r, '[')) return -1;
  skip_space(&r);
  if (r.p < r.end && *r.p == ']') return 0;
  for (;;) {
    store_pack_row row;
    offsets o;
    memset(&row, 0, sizeof row);
    fl_buf_reset(scratch);
    if (read_row(&r, &row, &o)) return -1;
    row.key = at_off(scratch, o.key);
    row.task = at_off(scratch, o.task);
    row.state = fl_store_task_state_parse(at_off(scratch, o.state));
    row.error = at_off(scratch, o.error);
    row.result = at_off(scratch, o.result);
    row.result_len = o.result_len;
    int rc = fn(ctx, &row);
    if (rc) return rc;
    skip_space(&r);
    if (r.p < r.end && *r.p == ',') {
      r.p++;
      continue;
    }
    if (expect(&r, ']')) return -1;
    skip_space(&r);
    return r.p == r.end ? 0 : -1;
  }
}
