/*
 * csvio.c — CSV reading and writing on libcsv; see csvio.h.
 *
 * libcsv parses in strict mode and pushes fields and record ends through
 * callbacks, but says only "parse error" and how many bytes it took. To give
 * every error a line and a column, the input is fed one line at a time: the
 * line's number and first byte are then known whenever libcsv stops. This
 * file never touches a Lua stack.
 */
#define _GNU_SOURCE
#include "csvio.h"

#include "fsutil.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <csv.h>

#define WINDOW_SIZE ((size_t)64 << 10)
#define NO_OFFSET ((size_t)-1)

typedef struct span {
  size_t off, len; /* into bytes; offsets, since bytes may move */
} span;

typedef struct record {
  size_t first, n; /* fields[first .. first + n) */
  long line;
} record;

struct fl_csv_reader {
  struct csv_parser p;
  fl_csv_dialect d;
  int want_header;
  char *name; /* the path, for messages; NULL for memory input */
  int fd;     /* -1 for memory input, or once closed */

  /* Unread input is in[pos .. len). For a file, `in` is buf, refilled. */
  const char *in;
  size_t len, pos;
  char *buf;
  size_t buf_cap;
  unsigned eof : 1, done : 1, bom_checked : 1, failed : 1, header_read : 1,
      oom : 1, in_quote : 1, libcsv_only : 1;

  long line;        /* the line being fed, from 1 */
  long record_line; /* where the record being parsed starts */
  long quote_line, quote_col; /* the opening quote of the open field */

  /* Fields of the queued records, then those of the unfinished one. */
  char *bytes;
  size_t n_bytes, bytes_cap;
  span *fields;
  size_t n_fields, fields_cap;
  size_t partial_first; /* first field of the unfinished record */
  record *recs;
  size_t n_recs, recs_cap, next_rec;
  fl_csv_field *view; /* what next() hands out */
  size_t view_cap;

  char *h_bytes; /* the header's own copy */
  fl_csv_field *h_fields;
  size_t n_h;
  long h_line;

  char err[512];
};

const char *fl_csv_dialect_check(const fl_csv_dialect *d) {
  if (d->delim == d->quote) return "the delimiter and the quote must differ";
  if (d->delim == '\r' || d->delim == '\n')
    return "the delimiter must not be a line break";
  if (d->quote == '\r' || d->quote == '\n')
    return "the quote must not be a line break";
  return NULL;
}

/* ---- reading: storage --------------------------------------------------- */

static int grow(void **p, size_t *cap, size_t need, size_t size) {
  if (need <= *cap) return 0;
  size_t n = *cap ? *cap : 16;
  while (n < need) {
    if (n > SIZE_MAX / 2 / size) return -1;
    n *= 2;
  }
  void *q = realloc(*p, n * size);
  if (!q) return -1;
  *p = q;
  *cap = n;
  return 0;
}

static void on_field(void *s, size_t n, void *data) {
  fl_csv_reader *r = data;
  if (r->oom) return;
  if (n >= SIZE_MAX - r->n_bytes - 1 ||
      grow((void **)&r->bytes, &r->bytes_cap, r->n_bytes + n + 1, 1) != 0 ||
      grow((void **)&r->fields, &r->fields_cap, r->n_fields + 1,
           sizeof *r->fields) != 0) {
    r->oom = 1;
    return;
  }
  if (n) memcpy(r->bytes + r->n_bytes, s, n);
  r->bytes[r->n_bytes + n] = '\0';
  r->fields[r->n_fields++] = (span){r->n_bytes, n};
  r->n_bytes += n + 1;
}

static void on_record(int c, void *data) {
  (void)c;
  fl_csv_reader *r = data;
  if (r->oom) return;
  if (grow((void **)&r->recs, &r->recs_cap, r->n_recs + 1, sizeof *r->recs)) {
    r->oom = 1;
    return;
  }
  r->recs[r->n_recs++] = (record){r->partial_first,
                                  r->n_fields - r->partial_first,
                                  r->record_line};
  r->partial_first = r->n_fields;
  r->record_line = r->line; /* a CR can end a record mid-line */
}

/* Drops the records handed out, keeping the unfinished one's fields. */
static void compact(fl_csv_reader *r) {
  size_t keep = r->n_fields - r->partial_first;
  size_t from = keep ? r->fields[r->partial_first].off : r->n_bytes;
  memmove(r->bytes, r->bytes + from, r->n_bytes - from);
  r->n_bytes -= from;
  for (size_t i = 0; i < keep; i++) {
    r->fields[i].off = r->fields[r->partial_first + i].off - from;
    r->fields[i].len = r->fields[r->partial_first + i].len;
  }
  r->n_fields = keep;
  r->partial_first = 0;
  r->n_recs = r->next_rec = 0;
}

/* ---- reading: errors ---------------------------------------------------- */

static void close_input(fl_csv_reader *r) {
  if (r->fd >= 0) close(r->fd);
  r->fd = -1;
}

static void fail(fl_csv_reader *r, long line, long col, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Sets the error "where: what" (line < 1: no position) and stops reading. */
static void fail(fl_csv_reader *r, long line, long col, const char *fmt, ...) {
  size_t n = 0;
  if (line > 0 && r->name && col > 0)
    n = (size_t)snprintf(r->err, sizeof r->err, "%s:%ld:%ld: ", r->name, line,
                         col);
  else if (line > 0 && r->name)
    n = (size_t)snprintf(r->err, sizeof r->err, "%s:%ld: ", r->name, line);
  else if (line > 0 && col > 0)
    n = (size_t)snprintf(r->err, sizeof r->err, "line %ld, column %ld: ", line,
                         col);
  else if (line > 0)
    n = (size_t)snprintf(r->err, sizeof r->err, "line %ld: ", line);
  if (n >= sizeof r->err) n = sizeof r->err - 1;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(r->err + n, sizeof r->err - n, fmt, ap);
  va_end(ap);
  r->failed = 1;
  close_input(r);
}

static void fail_oom(fl_csv_reader *r) { fail(r, 0, 0, "out of memory"); }

/* Column of s[off] on a line starting at s: characters, not bytes, so a
   column matches what an editor shows for UTF-8 text. */
static long column_of(const char *s, size_t off) {
  long col = 1;
  for (size_t i = 0; i < off; i++)
    col += ((unsigned char)s[i] & 0xC0) != 0x80;
  return col;
}

/* The character at s[off] (line of n bytes) for a message, quoted. */
static void describe_char(char *out, size_t size, const char *s, size_t off,
                          size_t n) {
  unsigned char c = (unsigned char)s[off];
  if (c == '\t')
    snprintf(out, size, "'\\t'");
  else if (c < 0x20 || c == 0x7F)
    snprintf(out, size, "byte 0x%02X", c);
  else if (c < 0x80)
    snprintf(out, size, "'%c'", c);
  else {
    size_t len = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
    size_t ok = 1;
    while (ok < len && off + ok < n && ((unsigned char)s[off + ok] & 0xC0) == 0x80)
      ok++;
    if (len == 1 || ok < len)
      snprintf(out, size, "byte 0x%02X", c);
    else
      snprintf(out, size, "'%.*s'", (int)len, s + off);
  }
}

/* libcsv stopped at s[off] in strict mode. With spaces counted as field
   bytes, only two things stop it: a quote in an unquoted field, or
   something other than a delimiter, line end or quote after a quoted
   field's closing quote. */
static void fail_syntax(fl_csv_reader *r, const char *s, size_t off, size_t n) {
  long col = column_of(s, off);
  if ((unsigned char)s[off] == r->d.quote) {
    fail(r, r->line, col,
         "unexpected '%c' in an unquoted field (quote the whole field and "
         "double the quotes inside)",
         r->d.quote);
    return;
  }
  char what[32];
  describe_char(what, sizeof what, s, off, n);
  fail(r, r->line, col, "unexpected %s after a closed quoted field", what);
}

/* ---- reading: feeding libcsv -------------------------------------------- */

static int no_space(unsigned char c) {
  (void)c;
  return 0;
}

/*
 * The line [s, s + n) left libcsv inside a quoted field (or, at the end of
 * the input, maybe just after one). Finds the field's opening quote with a
 * small scan of that line alone, so an unterminated field can be reported
 * where it starts. Runs only on lines a quoted field spans, which are rare.
 */
static void note_open_quote(fl_csv_reader *r, const char *s, size_t n,
                            int started_quoted) {
  enum { START, PLAIN, QUOTED, QUOTE_IN_QUOTED } st =
      started_quoted ? QUOTED : START;
  size_t opened = NO_OFFSET;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    int ends = c == r->d.delim || c == '\r' || c == '\n';
    switch (st) {
    case START:
      if (c == r->d.quote) {
        st = QUOTED;
        opened = i;
      } else if (!ends) {
        st = PLAIN;
      }
      break;
    case PLAIN:
      if (ends) st = START;
      break;
    case QUOTED:
      if (c == r->d.quote) st = QUOTE_IN_QUOTED;
      break;
    case QUOTE_IN_QUOTED:
      st = c == r->d.quote ? QUOTED : START;
      break;
    }
  }
  if (st == QUOTED && opened != NO_OFFSET) {
    r->quote_line = r->line;
    r->quote_col = column_of(s, opened);
  }
}

/* Feeds one line (with its LF when has_lf) to libcsv. 0, or -1 failed. */
static int feed_line(fl_csv_reader *r, const char *s, size_t n, int has_lf) {
  int started_quoted = r->in_quote;
  if (!started_quoted) r->record_line = r->line;
  /* libcsv grows its field buffer by blk_size bytes at a time: make one step
     cover the whole line, and at least double, so a long field costs a few
     reallocations instead of one per 128 bytes. */
  size_t have = csv_get_buffer_size(&r->p);
  size_t step = n > have ? n : have;
  csv_set_blk_size(&r->p, step > 128 ? step : 128);
  size_t used = csv_parse(&r->p, s, n, on_field, on_record, r);
  if (r->oom) {
    fail_oom(r);
    return -1;
  }
  if (used < n) {
    if (csv_error(&r->p) == CSV_EPARSE)
      fail_syntax(r, s, used, n);
    else
      fail_oom(r);
    return -1;
  }
  /* After a LF, libcsv is inside a record only when that LF was inside a
     quoted field, and then its `quoted` flag is still set. */
  r->in_quote = r->p.quoted != 0;
  if (r->p.quoted) note_open_quote(r, s, n, started_quoted);
  if (has_lf) r->line++;
  return 0;
}

/*
 * Splits the line [s, s + n), which ends with its LF and holds no quote and
 * no CR, into a record, as libcsv would (strict mode, spaces as data): a
 * record of the fields between delimiters, or none for an empty line. It
 * starts a record (no quoted field is open). Most lines of most files are
 * like this, and splitting them here costs a copy and a memchr per field
 * instead of libcsv's byte-at-a-time state machine and its own copy of
 * every field: about half of what reading a file costs in C.
 */
static int split_plain_line(fl_csv_reader *r, const char *s, size_t n) {
  size_t len = n - 1; /* without the LF */
  r->record_line = r->line;
  r->line++;
  if (len == 0) return 0; /* libcsv skips empty lines */
  if (len >= SIZE_MAX - r->n_bytes - 1 ||
      grow((void **)&r->bytes, &r->bytes_cap, r->n_bytes + len + 1, 1) != 0) {
    fail_oom(r);
    return -1;
  }
  /* The line is copied whole, then each delimiter becomes its field's NUL. */
  char *base = r->bytes + r->n_bytes, *end = base + len;
  memcpy(base, s, len);
  *end = '\0';
  char *p = base;
  for (;;) {
    char *q = memchr(p, r->d.delim, (size_t)(end - p));
    if (!q) q = end;
    if (grow((void **)&r->fields, &r->fields_cap, r->n_fields + 1,
             sizeof *r->fields) != 0) {
      fail_oom(r);
      return -1;
    }
    *q = '\0';
    r->fields[r->n_fields++] =
        (span){(size_t)(p - r->bytes), (size_t)(q - p)};
    if (q == end) break;
    p = q + 1;
  }
  r->n_bytes += len + 1;
  on_record(0, r);
  if (r->oom) {
    fail_oom(r);
    return -1;
  }
  return 0;
}

/* Feeds the line [s, s + n) that ends with its LF. 0, or -1 failed. */
static int feed_full_line(fl_csv_reader *r, const char *s, size_t n) {
  if (!r->in_quote && !r->libcsv_only && !memchr(s, r->d.quote, n) &&
      !memchr(s, '\r', n))
    return split_plain_line(r, s, n);
  return feed_line(r, s, n, 1);
}

/* Makes room and reads more of the file into the window. 0, or -1. */
static int fill(fl_csv_reader *r) {
  if (r->pos) {
    memmove(r->buf, r->buf + r->pos, r->len - r->pos);
    r->len -= r->pos;
    r->pos = 0;
  }
  if (r->len == r->buf_cap &&
      grow((void **)&r->buf, &r->buf_cap, r->buf_cap + 1, 1) != 0) {
    fail_oom(r);
    return -1;
  }
  r->in = r->buf;
  for (;;) {
    ssize_t got = read(r->fd, r->buf + r->len, r->buf_cap - r->len);
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) {
      int saved = errno;
      fail(r, 0, 0, "cannot read '%s': %s", r->name, strerror(saved));
      errno = saved;
      return -1;
    }
    if (got == 0) {
      r->eof = 1;
      close_input(r);
    }
    r->len += (size_t)got;
    return 0;
  }
}

static int finish(fl_csv_reader *r) {
  if (csv_fini(&r->p, on_field, on_record, r) != 0) {
    fail(r, r->quote_line, r->quote_col,
         "unterminated quoted field: no closing '%c' before the end of the "
         "input",
         r->d.quote);
    return -1;
  }
  if (r->oom) {
    fail_oom(r);
    return -1;
  }
  r->done = 1;
  close_input(r);
  return 0;
}

/* Feeds the next line, or finishes at the end of the input. 0, or -1. */
static int feed_more(fl_csv_reader *r) {
  for (;;) {
    const char *s = r->in + r->pos;
    size_t avail = r->len - r->pos;
    if (!r->bom_checked) {
      if (avail < 3 && !r->eof) {
        if (fill(r) != 0) return -1;
        continue;
      }
      if (avail >= 3 && memcmp(s, "\xEF\xBB\xBF", 3) == 0) r->pos += 3;
      r->bom_checked = 1;
      continue;
    }
    const char *lf = avail ? memchr(s, '\n', avail) : NULL;
    if (lf) {
      size_t n = (size_t)(lf - s) + 1;
      r->pos += n;
      return feed_full_line(r, s, n);
    }
    if (!r->eof) {
      if (fill(r) != 0) return -1;
      continue;
    }
    r->pos = r->len;
    if (avail && feed_line(r, s, avail, 0) != 0) return -1;
    return finish(r);
  }
}

/* The next record as parsed, header or not. 1, 0 at the end, or -1. */
static int next_record(fl_csv_reader *r, fl_csv_row *row) {
  if (r->failed) return -1;
  while (r->next_rec == r->n_recs) {
    if (r->done) return 0;
    if (r->n_recs) compact(r);
    if (feed_more(r) != 0) return -1;
  }
  const record *rec = &r->recs[r->next_rec++];
  if (grow((void **)&r->view, &r->view_cap, rec->n ? rec->n : 1,
           sizeof *r->view) != 0) {
    fail_oom(r);
    return -1;
  }
  for (size_t i = 0; i < rec->n; i++) {
    r->view[i].data = r->bytes + r->fields[rec->first + i].off;
    r->view[i].len = r->fields[rec->first + i].len;
  }
  row->fields = r->view;
  row->n = rec->n;
  row->line = rec->line;
  return 1;
}

static int read_header(fl_csv_reader *r) {
  fl_csv_row h;
  int rc = next_record(r, &h);
  if (rc <= 0) {
    if (rc == 0) r->header_read = 1;
    return rc;
  }
  size_t total = 0;
  for (size_t i = 0; i < h.n; i++) total += h.fields[i].len + 1;
  r->h_bytes = malloc(total ? total : 1);
  r->h_fields = malloc((h.n ? h.n : 1) * sizeof *r->h_fields);
  if (!r->h_bytes || !r->h_fields) {
    fail_oom(r);
    return -1;
  }
  char *p = r->h_bytes;
  for (size_t i = 0; i < h.n; i++) {
    memcpy(p, h.fields[i].data, h.fields[i].len + 1);
    r->h_fields[i] = (fl_csv_field){p, h.fields[i].len};
    p += h.fields[i].len + 1;
  }
  r->n_h = h.n;
  r->h_line = h.line;
  r->header_read = 1;
  for (size_t i = 0; i < h.n; i++)
    for (size_t j = i + 1; j < h.n; j++)
      if (h.fields[i].len == h.fields[j].len &&
          memcmp(h.fields[i].data, h.fields[j].data, h.fields[i].len) == 0) {
        fail(r, h.line, 0,
             "duplicate column name '%.*s' in the header (columns %zu and %zu)",
             (int)(h.fields[i].len > 100 ? 100 : h.fields[i].len),
             h.fields[i].data, i + 1, j + 1);
        return -1;
      }
  return 1;
}

int fl_csv_reader_header(fl_csv_reader *r, fl_csv_row *row) {
  if (r->failed) return -1;
  if (!r->header_read) {
    int rc = read_header(r);
    if (rc <= 0) return rc;
  }
  if (!r->n_h && !r->h_fields) return 0;
  row->fields = r->h_fields;
  row->n = r->n_h;
  row->line = r->h_line;
  return 1;
}

int fl_csv_reader_next(fl_csv_reader *r, fl_csv_row *row) {
  if (r->failed) return -1;
  if (r->want_header && !r->header_read) {
    int rc = read_header(r);
    if (rc <= 0) return rc;
  }
  int rc = next_record(r, row);
  if (rc == 1 && r->want_header && row->n > r->n_h) {
    fail(r, row->line, 0, "record has %zu fields but the header has %zu",
         row->n, r->n_h);
    return -1;
  }
  return rc;
}

/* ---- reading: setup ----------------------------------------------------- */

fl_csv_reader *fl_csv_reader_new(const fl_csv_dialect *d, int header) {
  fl_csv_reader *r = calloc(1, sizeof *r);
  if (!r) return NULL;
  if (csv_init(&r->p, CSV_STRICT | CSV_STRICT_FINI) != 0) {
    free(r);
    return NULL;
  }
  csv_set_delim(&r->p, d->delim);
  csv_set_quote(&r->p, d->quote);
  csv_set_space_func(&r->p, no_space); /* spaces are data (RFC 4180) */
  r->d = *d;
  r->want_header = header;
  r->fd = -1;
  r->line = r->record_line = 1;
  r->in = "";
  return r;
}

void fl_csv_reader_free(fl_csv_reader *r) {
  if (!r) return;
  close_input(r);
  csv_free(&r->p);
  free(r->name);
  free(r->buf);
  free(r->bytes);
  free(r->fields);
  free(r->recs);
  free(r->view);
  free(r->h_bytes);
  free(r->h_fields);
  free(r);
}

int fl_csv_reader_open(fl_csv_reader *r, const char *path) {
  r->name = strdup(path);
  r->buf = malloc(WINDOW_SIZE);
  if (!r->name || !r->buf) {
    fail_oom(r);
    errno = ENOMEM;
    return -1;
  }
  r->buf_cap = WINDOW_SIZE;
  r->in = r->buf;
  r->fd = open(path, O_RDONLY | O_CLOEXEC);
  if (r->fd < 0) {
    int saved = errno;
    fail(r, 0, 0, "cannot open '%s': %s", path, strerror(saved));
    errno = saved;
    return -1;
  }
  return 0;
}

void fl_csv_reader_libcsv_only(fl_csv_reader *r) { r->libcsv_only = 1; }

void fl_csv_reader_set_data(fl_csv_reader *r, const char *data, size_t len) {
  r->in = data ? data : "";
  r->len = data ? len : 0;
  r->pos = 0;
  r->eof = 1;
}

const char *fl_csv_reader_error(const fl_csv_reader *r) { return r->err; }

/* ---- writing ------------------------------------------------------------ */

void fl_csv_out_init(fl_csv_out *o, const fl_csv_dialect *d) {
  memset(o, 0, sizeof *o);
  o->d = *d;
  o->special[d->delim] = o->special[d->quote] = 1;
  o->special['\r'] = o->special['\n'] = 1;
}

void fl_csv_out_free(fl_csv_out *o) {
  fl_buf_free(&o->buf);
  o->row_start = o->row_fields = 0;
}

void fl_csv_out_begin(fl_csv_out *o) {
  o->buf.len = o->row_start;
  o->row_fields = 0;
  if (o->buf.data) o->buf.data[o->buf.len] = '\0';
}

void fl_csv_out_field(fl_csv_out *o, const char *s, size_t n) {
  /* Room for the worst case: a delimiter, two quotes, every byte doubled
     (and buf's NUL). */
  if (n > (SIZE_MAX - 8) / 2) {
    o->buf.oom = 1;
    return;
  }
  if (o->buf.len + 2 * n + 4 > o->buf.cap &&
      fl_buf_reserve(&o->buf, 2 * n + 3) != 0)
    return;
  char *d = o->buf.data + o->buf.len;
  if (o->row_fields++) *d++ = (char)o->d.delim;
  /* Copied while scanned: one pass over the bytes, the usual field being a
     few bytes long and needing no quotes. */
  size_t i = 0;
  while (i < n && !o->special[(unsigned char)s[i]]) {
    d[i] = s[i];
    i++;
  }
  /* A field starting with a UTF-8 BOM is quoted too: unquoted at the start
     of a file, the reader would skip those bytes as the file's BOM. */
  if (i == n && !(n >= 3 && memcmp(s, "\xEF\xBB\xBF", 3) == 0)) {
    d += n;
  } else {
    d += csv_write2(d, 2 * n + 2, s, n, o->d.quote);
  }
  *d = '\0'; /* buf's contents stay a C string */
  o->buf.len = (size_t)(d - o->buf.data);
}

void fl_csv_out_end(fl_csv_out *o) {
  if (fl_buf_reserve(&o->buf, 3) != 0) return;
  char *d = o->buf.data + o->buf.len;
  if (o->row_fields == 1 && o->buf.len == o->row_start) {
    *d++ = (char)o->d.quote;
    *d++ = (char)o->d.quote;
  }
  *d++ = '\n';
  *d = '\0';
  o->buf.len = (size_t)(d - o->buf.data);
  o->row_start = o->buf.len;
  o->row_fields = 0;
}

void fl_csv_out_drop_complete(fl_csv_out *o) {
  size_t rest = o->buf.len - o->row_start;
  if (rest) memmove(o->buf.data, o->buf.data + o->row_start, rest);
  o->buf.len = rest;
  o->row_start = 0;
  if (o->buf.data) o->buf.data[rest] = '\0';
}

int fl_csv_out_flush_fd(fl_csv_out *o, int fd) {
  if (o->buf.oom) {
    errno = ENOMEM;
    return -1;
  }
  off_t at = lseek(fd, 0, SEEK_CUR);
  const char *p = o->buf.data;
  size_t left = o->row_start;
  while (left) {
    ssize_t put = write(fd, p, left);
    if (put < 0 && errno == EINTR) continue;
    if (put < 0) return -1;
    p += put;
    left -= (size_t)put;
  }
#ifdef SYNC_FILE_RANGE_WRITE
  /* Without this the kernel starts writing back only after a delay, and the
     caller's fsync then waits for the whole file (tens of milliseconds for
     a million rows). A hint: a failure here shows again at fsync. */
  if (at >= 0 && o->row_start)
    sync_file_range(fd, at, (off_t)o->row_start, SYNC_FILE_RANGE_WRITE);
#else
  (void)at;
#endif
  fl_csv_out_drop_complete(o);
  return 0;
}

static void sync_dir_of(const char *path) {
  const char *slash = strrchr(path, '/');
  char *dir = slash ? strndup(path, slash == path ? 1 : (size_t)(slash - path))
                    : strdup(".");
  if (!dir) return;
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    fsync(fd); /* best effort, as in fsutil.c */
    close(fd);
  }
  free(dir);
}

/*
 * Opens the file to append to, creating it when missing, and locks it
 * (flock, exclusive) so that flowlua appenders take turns and the length
 * seen under the lock is where this append starts. *created tells whether
 * this call made the file. A file unlinked while we waited for its lock
 * (an appender that created it failed and removed it) is opened again.
 */
static int open_locked_for_append(const char *path, struct stat *st,
                                  int *created) {
  for (int tries = 0; tries < 100; tries++) {
    *created = 0;
    /* Read-write to look at the last byte; a file we may only write to is
       appended to blind. */
    int fd = fl_open_file(path, O_RDWR | O_APPEND, 0, st);
    if (fd < 0 && errno == EACCES)
      fd = fl_open_file(path, O_WRONLY | O_APPEND, 0, st);
    if (fd < 0 && errno == ENOENT) {
      fd = fl_open_file(path, O_RDWR | O_APPEND | O_CREAT | O_EXCL, 0666, st);
      if (fd < 0 && errno == EEXIST) continue; /* another appender made it */
      *created = fd >= 0;
    }
    if (fd < 0) return -1;
    int rc;
    while ((rc = flock(fd, LOCK_EX)) != 0 && errno == EINTR) {
    }
    /* A file system without flock (some network ones) is appended to
       unlocked, as before. */
    if (fstat(fd, st) != 0 || (rc == 0 && st->st_nlink == 0)) {
      close(fd);
      continue;
    }
    return fd;
  }
  errno = EAGAIN;
  return -1;
}

/* Undoes a failed append: the file back to its old length, or gone when
   this append created it, so a retry appends after whole records. */
static void undo_append(const char *path, int fd, off_t old_len, int created) {
  if (created) {
    unlink(path);
  } else if (fd >= 0 ? ftruncate(fd, old_len) == 0 : truncate(path, old_len) == 0) {
    /* best effort: the truncation is durable once synced */
    if (fd >= 0) fsync(fd);
  }
}

int fl_csv_append(const char *path, const fl_csv_out *header,
                  const fl_csv_out *rows) {
  struct stat st;
  int created;
  int fd = open_locked_for_append(path, &st, &created);
  if (fd < 0) return -1;
  off_t old_len = st.st_size;
  struct iovec iov[3];
  int n_iov = 0;
  if (st.st_size == 0 && header && header->row_start)
    iov[n_iov++] = (struct iovec){header->buf.data, header->row_start};
  if (st.st_size > 0) {
    char last;
    ssize_t got = pread(fd, &last, 1, st.st_size - 1);
    if (got == 1 && last != '\n') iov[n_iov++] = (struct iovec){"\n", 1};
  }
  if (rows && rows->row_start)
    iov[n_iov++] = (struct iovec){rows->buf.data, rows->row_start};
  /* One writev: with O_APPEND, another appender cannot land in the middle.
     A short write (disk full, a signal) continues where it stopped; a
     failure (the disk full) truncates back to the old length. */
  while (n_iov > 0) {
    ssize_t put = writev(fd, iov, n_iov);
    if (put < 0 && errno == EINTR) continue;
    if (put < 0) goto fail;
    size_t left = (size_t)put;
    while (n_iov > 0 && left >= iov[0].iov_len) {
      left -= iov[0].iov_len;
      memmove(iov, iov + 1, (size_t)--n_iov * sizeof *iov);
    }
    if (n_iov > 0) {
      iov[0].iov_base = (char *)iov[0].iov_base + left;
      iov[0].iov_len -= left;
    }
  }
  if (fsync(fd) != 0) goto fail;
  /* close can fail too (a network file system reports a write error
     there). A duplicate keeps the file and its lock while we look, so an
     undo cannot cut another appender's records. */
  int keep = fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (close(fd) != 0) {
    int saved = errno;
    undo_append(path, keep, old_len, created);
    if (keep >= 0) close(keep);
    errno = saved;
    return -1;
  }
  if (keep >= 0) close(keep);
  if (created) sync_dir_of(path);
  return 0;
fail:;
  int saved = errno;
  undo_append(path, fd, old_len, created);
  close(fd);
  errno = saved;
  return -1;
}
