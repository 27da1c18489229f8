/*
 * fuzz_csv.c — the CSV reader (csvio.c) under every dialect and option.
 *
 * Input: a flags byte (bit 0: the first record is a header), the delimiter
 * byte, the quote byte, then the CSV text. A dialect the reader refuses
 * must be refused by fl_csv_dialect_check; the text is then read with the
 * default dialect, so no input is wasted.
 *
 * Properties:
 *  - reading from memory and from a file give the same records, header and
 *    error (the file's message names the file where memory says "line L");
 *  - splitting plain lines without libcsv changes nothing: a reader that
 *    parses every line with libcsv gives the same records, lines and error;
 *  - records have at least one field and start on nondecreasing lines;
 *  - write(read(x)) reads back as the same header and records, and every
 *    written record ends with LF (unless a dialect made of UTF-8 BOM bytes
 *    wrote a BOM, see bom_from_dialect).
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

#include "csvio.h"
#include "fuzz.h"

/* Everything one read produced. */
typedef struct table {
  int rc; /* 0 read to the end, -1 failed */
  char err[600];
  fl_csv_field *header; /* copies, NULL without header */
  size_t n_header;
  int has_header;
  fl_csv_field *fields; /* all records' fields, copied, one after another */
  size_t n_fields;
  size_t *rec_len; /* fields per record */
  long *rec_line;  /* where each record starts */
  size_t n_recs;
} table;

static char *dup_bytes(const char *s, size_t n) {
  char *d = malloc(n + 1);
  if (!d) abort();
  memcpy(d, s, n);
  d[n] = '\0';
  return d;
}

static void table_free(table *t) {
  for (size_t i = 0; i < t->n_fields; i++) free((char *)t->fields[i].data);
  for (size_t i = 0; i < t->n_header; i++) free((char *)t->header[i].data);
  free(t->fields);
  free(t->header);
  free(t->rec_len);
  free(t->rec_line);
}

static void add_record(table *t, const fl_csv_row *row) {
  t->fields = realloc(t->fields, (t->n_fields + row->n) * sizeof *t->fields);
  t->rec_len = realloc(t->rec_len, (t->n_recs + 1) * sizeof *t->rec_len);
  t->rec_line = realloc(t->rec_line, (t->n_recs + 1) * sizeof *t->rec_line);
  if (!t->fields || !t->rec_len || !t->rec_line) abort();
  for (size_t i = 0; i < row->n; i++) {
    t->fields[t->n_fields + i].data = dup_bytes(row->fields[i].data, row->fields[i].len);
    t->fields[t->n_fields + i].len = row->fields[i].len;
  }
  t->n_fields += row->n;
  t->rec_line[t->n_recs] = row->line;
  t->rec_len[t->n_recs++] = row->n;
}

/* Reads everything from r (its input already set) into *t. */
static void read_table(fl_csv_reader *r, int header, table *t) {
  memset(t, 0, sizeof *t);
  fl_csv_row row;
  if (header) {
    int rc = fl_csv_reader_header(r, &row);
    if (rc < 0) goto failed;
    if (rc == 1) {
      t->has_header = 1;
      t->header = malloc((row.n ? row.n : 1) * sizeof *t->header);
      if (!t->header) abort();
      for (size_t i = 0; i < row.n; i++) {
        t->header[i].data = dup_bytes(row.fields[i].data, row.fields[i].len);
        t->header[i].len = row.fields[i].len;
      }
      t->n_header = row.n;
    }
  }
  long last_line = 0;
  int rc;
  while ((rc = fl_csv_reader_next(r, &row)) == 1) {
    FUZZ_CHECK(row.n >= 1, "a record with no field at line %ld", row.line);
    FUZZ_CHECK(row.line >= 1 && row.line >= last_line,
               "record lines out of order: %ld after %ld", row.line, last_line);
    for (size_t i = 0; i < row.n; i++)
      FUZZ_CHECK(row.fields[i].data[row.fields[i].len] == '\0',
                 "field %zu is not NUL-terminated", i + 1);
    last_line = row.line;
    add_record(t, &row);
  }
  if (rc < 0) goto failed;
  t->rc = 0;
  return;
failed:
  t->rc = -1;
  snprintf(t->err, sizeof t->err, "%s", fl_csv_reader_error(r));
  FUZZ_CHECK(t->err[0] != '\0', "a failed read with no message");
  FUZZ_CHECK(fl_csv_reader_next(r, &row) == -1, "a failed reader read on");
}

static int fields_equal(const fl_csv_field *a, const fl_csv_field *b, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (a[i].len != b[i].len || memcmp(a[i].data, b[i].data, a[i].len) != 0)
      return 0;
  return 1;
}

/* Same header and records (errors are compared by the caller). */
static void check_same_records(const table *a, const table *b, const char *what) {
  FUZZ_CHECK(a->has_header == b->has_header && a->n_header == b->n_header &&
                 fields_equal(a->header, b->header, a->n_header),
             "%s: the headers differ", what);
  FUZZ_CHECK(a->n_recs == b->n_recs, "%s: %zu records, then %zu", what,
             a->n_recs, b->n_recs);
  for (size_t r = 0; r < a->n_recs; r++)
    FUZZ_CHECK(a->rec_len[r] == b->rec_len[r],
               "%s: record %zu has %zu fields, then %zu", what, r + 1,
               a->rec_len[r], b->rec_len[r]);
  for (size_t i = 0; i < a->n_fields; i++)
    FUZZ_CHECK(fields_equal(&a->fields[i], &b->fields[i], 1),
               "%s: field %zu differs: '%s'", what, i,
               fuzz_show(a->fields[i].data, a->fields[i].len));
}

/* What a file named `name` says for the error memory input reported as
   `mem`: "line L, column C: what" becomes "name:L:C: what". */
static void file_message(const char *mem, const char *name, char *out,
                         size_t size) {
  long line, col;
  int used = 0;
  if (sscanf(mem, "line %ld, column %ld: %n", &line, &col, &used) == 2 && used)
    snprintf(out, size, "%s:%ld:%ld: %s", name, line, col, mem + used);
  else if (sscanf(mem, "line %ld: %n", &line, &used) == 1 && used)
    snprintf(out, size, "%s:%ld: %s", name, line, mem + used);
  else
    snprintf(out, size, "%s", mem);
}

static int memfd = -1;
static char memfd_path[64];

static void read_file(const fl_csv_dialect *d, int header, const char *text,
                      size_t len, table *t) {
  if (memfd < 0) {
    memfd = memfd_create("fuzz_csv", MFD_CLOEXEC);
    if (memfd < 0) abort();
    snprintf(memfd_path, sizeof memfd_path, "/proc/self/fd/%d", memfd);
  }
  if (ftruncate(memfd, 0) != 0 || pwrite(memfd, text, len, 0) != (ssize_t)len)
    abort();
  fl_csv_reader *r = fl_csv_reader_new(d, header);
  if (!r) abort();
  if (fl_csv_reader_open(r, memfd_path) != 0) abort();
  read_table(r, header, t);
  fl_csv_reader_free(r);
}

static void read_memory(const fl_csv_dialect *d, int header, const char *text,
                        size_t len, int libcsv_only, table *t) {
  fl_csv_reader *r = fl_csv_reader_new(d, header);
  if (!r) abort();
  if (libcsv_only) fl_csv_reader_libcsv_only(r);
  fl_csv_reader_set_data(r, text, len);
  read_table(r, header, t);
  fl_csv_reader_free(r);
}

/* Writes t's header and records; the caller frees *o. */
static void write_table(const fl_csv_dialect *d, const table *t, fl_csv_out *o) {
  fl_csv_out_init(o, d);
  if (t->has_header) {
    fl_csv_out_begin(o);
    for (size_t i = 0; i < t->n_header; i++)
      fl_csv_out_field(o, t->header[i].data, t->header[i].len);
    fl_csv_out_end(o);
  }
  size_t f = 0;
  for (size_t r = 0; r < t->n_recs; r++) {
    fl_csv_out_begin(o);
    for (size_t i = 0; i < t->rec_len[r]; i++, f++)
      fl_csv_out_field(o, t->fields[f].data, t->fields[f].len);
    fl_csv_out_end(o);
  }
  if (o->buf.oom) abort();
}

/* Whether the written text starts with a UTF-8 BOM made of a delimiter or
   a quote with the field bytes around it (the delimiter 0xBB between the
   fields "\xEF" and "\xBF..."). A reader takes that for the file's BOM;
   the writer only guards against a field that starts with one. A dialect
   of bytes from the middle of UTF-8 characters is left at that. */
static int bom_from_dialect(const fl_csv_dialect *d, const fl_buf *text) {
  static const char bom[3] = "\xEF\xBB\xBF";
  int bom_byte = memchr(bom, d->delim, 3) || memchr(bom, d->quote, 3);
  return bom_byte && text->len >= 3 && memcmp(text->data, bom, 3) == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fuzz_input in = {data, size};
  uint8_t flags = fuzz_byte(&in);
  fl_csv_dialect d = {fuzz_byte(&in), fuzz_byte(&in)};
  int header = flags & 1;
  const char *why = fl_csv_dialect_check(&d);
  if (why) {
    FUZZ_CHECK(d.delim == d.quote || d.delim == '\r' || d.delim == '\n' ||
                   d.quote == '\r' || d.quote == '\n',
               "dialect %02X/%02X refused: %s", d.delim, d.quote, why);
    d = (fl_csv_dialect)FL_CSV_DIALECT_DEFAULT;
  }
  /* The reader needs no terminator; a copy of just the text lets
     AddressSanitizer catch a read past its end. */
  char *text = malloc(in.left ? in.left : 1);
  if (!text) abort();
  memcpy(text, in.p, in.left);
  size_t len = in.left;

  table mem, file, slow;
  read_memory(&d, header, text, len, 0, &mem);
  read_file(&d, header, text, len, &file);
  read_memory(&d, header, text, len, 1, &slow);
  FUZZ_CHECK(mem.rc == slow.rc && strcmp(mem.err, slow.err) == 0,
             "with plain lines split: '%s'; all through libcsv: '%s'",
             mem.rc ? mem.err : "ok", slow.rc ? slow.err : "ok");
  check_same_records(&mem, &slow, "plain lines split and all through libcsv");
  for (size_t i = 0; i < mem.n_recs; i++)
    FUZZ_CHECK(mem.rec_line[i] == slow.rec_line[i],
               "record %zu starts on line %ld, through libcsv on line %ld",
               i + 1, mem.rec_line[i], slow.rec_line[i]);
  table_free(&slow);
  FUZZ_CHECK(mem.rc == file.rc, "memory read %s, file read %s",
             mem.rc ? "failed" : "succeeded", file.rc ? "failed" : "succeeded");
  if (mem.rc) {
    char expected[700];
    file_message(mem.err, memfd_path, expected, sizeof expected);
    FUZZ_CHECK(strcmp(expected, file.err) == 0,
               "memory said '%s', the file '%s'", mem.err, file.err);
  } else {
    check_same_records(&mem, &file, "memory and file");
    fl_csv_out o;
    write_table(&d, &mem, &o);
    FUZZ_CHECK(o.buf.len == 0 || o.buf.data[o.buf.len - 1] == '\n',
               "written text does not end with LF");
    if (!bom_from_dialect(&d, &o.buf)) {
      table again;
      read_memory(&d, header, o.buf.data ? o.buf.data : "", o.buf.len, 0,
                  &again);
      FUZZ_CHECK(again.rc == 0, "written text does not read back: %s\n  text: %s",
                 again.err, fuzz_show(o.buf.data, o.buf.len));
      check_same_records(&mem, &again, "read, written and read again");
      table_free(&again);
    }
    fl_csv_out_free(&o);
  }
  table_free(&mem);
  table_free(&file);
  free(text);
  return 0;
}
