/*
 * test_csvio.c — CSV reading and writing without Lua: minimal quoting,
 * parsing edge cases (CRLF, BOM, quoted line breaks, spaces, empty lines,
 * ragged records), exact error positions, headers, files bigger than the
 * read window, appends, and a randomised round trip.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "csvio.h"

static const fl_csv_dialect COMMA = FL_CSV_DIALECT_DEFAULT;

/* ---- helpers --------------------------------------------------------------- */

/* Encodes rows given as arrays of C strings (NULL-terminated, rows ended by
   a NULL row) into a malloc'd string. */
static char *encode(const fl_csv_dialect *d, const char *const *const *rows) {
  fl_csv_out o;
  fl_csv_out_init(&o, d);
  for (; *rows; rows++) {
    fl_csv_out_begin(&o);
    for (const char *const *f = *rows; *f; f++) fl_csv_out_field(&o, *f, strlen(*f));
    fl_csv_out_end(&o);
  }
  char *s = strndup(o.buf.data ? o.buf.data : "", o.row_start);
  fl_csv_out_free(&o);
  return s;
}

/* Decodes text and renders it as "[a|b][c]" with the record lines, e.g.
   "1:[a|b] 2:[c]"; on an error returns "error: message". malloc'd. */
static char *render(const fl_csv_dialect *d, int header, const char *text,
                    size_t len) {
  fl_csv_reader *r = fl_csv_reader_new(d, header);
  fl_csv_reader_set_data(r, text, len);
  fl_buf b = FL_BUF_INIT;
  fl_csv_row row;
  int rc;
  if (header && (rc = fl_csv_reader_header(r, &row)) == 1) {
    fl_buf_adds(&b, "h:[");
    for (size_t i = 0; i < row.n; i++)
      fl_buf_addf(&b, "%s%s", i ? "|" : "", row.fields[i].data);
    fl_buf_adds(&b, "]");
  }
  while ((rc = fl_csv_reader_next(r, &row)) == 1) {
    fl_buf_addf(&b, "%s%ld:[", b.len ? " " : "", row.line);
    for (size_t i = 0; i < row.n; i++) {
      if (i) fl_buf_addc(&b, '|');
      fl_buf_add(&b, row.fields[i].data, row.fields[i].len);
    }
    fl_buf_addc(&b, ']');
  }
  if (rc < 0) {
    fl_buf_reset(&b);
    fl_buf_addf(&b, "error: %s", fl_csv_reader_error(r));
  }
  char *s = strdup(fl_buf_str(&b));
  fl_buf_free(&b);
  fl_csv_reader_free(r);
  return s;
}

static char *dec(const char *text) { return render(&COMMA, 0, text, strlen(text)); }

#define CHECK_DECODES(text, want)                                              \
  do {                                                                         \
    char *got_ = dec(text);                                                    \
    CHECK_EQ_STR(got_, want);                                                  \
    free(got_);                                                                \
  } while (0)

static char dir[64];

static char *temp_path(const char *name) {
  if (!dir[0]) {
    strcpy(dir, "/tmp/test_csvio." MKDTEMP_SUFFIX);
    if (!mkdtemp(dir)) abort();
  }
  char *p = malloc(strlen(dir) + strlen(name) + 2);
  sprintf(p, "%s/%s", dir, name);
  return p;
}

static void write_text(const char *path, const char *s, size_t n) {
  FILE *f = fopen(path, "wb");
  fwrite(s, 1, n, f);
  fclose(f);
}

static char *slurp(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) return strdup("(missing)");
  fl_buf b = FL_BUF_INIT;
  char chunk[4096];
  size_t n;
  while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) fl_buf_add(&b, chunk, n);
  fclose(f);
  char *s = strdup(fl_buf_str(&b));
  fl_buf_free(&b);
  return s;
}

/* ---- writing --------------------------------------------------------------- */

static void test_minimal_quoting(void) {
  const char *r1[] = {"plain", "with,comma", "with \"quote\"", NULL};
  const char *r2[] = {"line\nbreak", "cr\rhere", " spaces kept ", "", NULL};
  const char *r3[] = {"", "", NULL};
  const char *const *rows[] = {r1, r2, r3, NULL};
  char *s = encode(&COMMA, rows);
  CHECK_EQ_STR(s, "plain,\"with,comma\",\"with \"\"quote\"\"\"\n"
                  "\"line\nbreak\",\"cr\rhere\", spaces kept ,\n"
                  ",\n");
  free(s);
}

static void test_one_empty_field_and_empty_row(void) {
  /* One empty field would otherwise be an empty line, which readers skip. */
  const char *one[] = {"", NULL};
  const char *none[] = {NULL};
  const char *const *rows[] = {one, none, one, NULL};
  char *s = encode(&COMMA, rows);
  CHECK_EQ_STR(s, "\"\"\n\n\"\"\n");
  char *back = dec(s);
  CHECK_EQ_STR(back, "1:[] 3:[]");
  free(back);
  free(s);
}

static void test_other_dialect(void) {
  fl_csv_dialect d = {';', '\''};
  const char *r1[] = {"a;b", "it's", "x,y", "\"q\"", NULL};
  const char *const *rows[] = {r1, NULL};
  char *s = encode(&d, rows);
  CHECK_EQ_STR(s, "'a;b';'it''s';x,y;\"q\"\n");
  char *back = render(&d, 0, s, strlen(s));
  CHECK_EQ_STR(back, "1:[a;b|it's|x,y|\"q\"]");
  free(back);
  free(s);
  fl_csv_dialect tab = {'\t', '"'};
  CHECK(fl_csv_dialect_check(&tab) == NULL);
  back = render(&tab, 0, "a b\t c\n", 7);
  CHECK_EQ_STR(back, "1:[a b| c]");
  free(back);
}

static void test_dialect_check(void) {
  fl_csv_dialect same = {',', ','}, lf = {'\n', '"'}, cr = {',', '\r'};
  CHECK_CONTAINS(fl_csv_dialect_check(&same), "must differ");
  CHECK_CONTAINS(fl_csv_dialect_check(&lf), "line break");
  CHECK_CONTAINS(fl_csv_dialect_check(&cr), "line break");
  CHECK(fl_csv_dialect_check(&COMMA) == NULL);
}

static void test_unfinished_row_is_dropped(void) {
  fl_csv_out o;
  fl_csv_out_init(&o, &COMMA);
  fl_csv_out_begin(&o);
  fl_csv_out_field(&o, "kept", 4);
  fl_csv_out_end(&o);
  fl_csv_out_begin(&o);
  fl_csv_out_field(&o, "half", 4); /* an error interrupted this record */
  CHECK_EQ_INT(o.row_start, 5);
  fl_csv_out_begin(&o);
  fl_csv_out_field(&o, "next", 4);
  fl_csv_out_end(&o);
  char *s = strndup(o.buf.data, o.row_start);
  CHECK_EQ_STR(s, "kept\nnext\n");
  free(s);
  fl_csv_out_drop_complete(&o);
  CHECK_EQ_INT(o.buf.len, 0);
  CHECK_EQ_INT(o.row_start, 0);
  fl_csv_out_free(&o);
}

/* ---- reading --------------------------------------------------------------- */

static void test_basic_parsing(void) {
  CHECK_DECODES("a,b,c\n1,2,3\n", "1:[a|b|c] 2:[1|2|3]");
  CHECK_DECODES("a,b\r\n1,2\r\n", "1:[a|b] 2:[1|2]");
  CHECK_DECODES("a,b\n1,2", "1:[a|b] 2:[1|2]");         /* no final LF */
  CHECK_DECODES("a,b\r\n1,2\r", "1:[a|b] 2:[1|2]");     /* CR at the end */
  CHECK_DECODES("", "");
  CHECK_DECODES("\n\n\r\n", "");                        /* only empty lines */
  CHECK_DECODES("a\n\n\nb\n", "1:[a] 4:[b]");           /* empty lines skipped */
  CHECK_DECODES("a,,b,\n", "1:[a||b|]");                /* empty fields */
  CHECK_DECODES(",\n", "1:[|]");
  CHECK_DECODES("a,b,c\nd\ne,f\n", "1:[a|b|c] 2:[d] 3:[e|f]"); /* ragged */
  CHECK_DECODES("a\rb\rc\n", "1:[a] 1:[b] 1:[c]");      /* CR-only ends */
}

static void test_spaces_are_data(void) {
  CHECK_DECODES(" a , b \n", "1:[ a | b ]");
  CHECK_DECODES("\t\n", "1:[\t]");
  CHECK_DECODES("x,  \n", "1:[x|  ]");
}

static void test_quoted_fields(void) {
  CHECK_DECODES("\"a,b\",\"c\"\"d\",\"\"\n", "1:[a,b|c\"d|]");
  CHECK_DECODES("\"multi\nline\",x\nnext\n", "1:[multi\nline|x] 3:[next]");
  CHECK_DECODES("\"crlf\r\ninside\"\r\n", "1:[crlf\r\ninside]");
  CHECK_DECODES("\"\"\"\"\n", "1:[\"]");
  CHECK_DECODES("\"last\"", "1:[last]");
  CHECK_DECODES("a,\"\n\n\n\"\nb\n", "1:[a|\n\n\n] 5:[b]");
}

static void test_bom(void) {
  CHECK_DECODES("\xEF\xBB\xBFid,name\n1,x\n", "1:[id|name] 2:[1|x]");
  CHECK_DECODES("\xEF\xBB\xBF", "");
  CHECK_DECODES("\xEF\xBB", "1:[\xEF\xBB]"); /* not a whole BOM: data */
  /* Only at the very start. */
  CHECK_DECODES("a\n\xEF\xBB\xBF" "b\n", "1:[a] 2:[\xEF\xBB\xBF" "b]");
  /* Columns start after the BOM. */
  CHECK_DECODES("\xEF\xBB\xBFx\"y\n",
                "error: line 1, column 2: unexpected '\"' in an unquoted field "
                "(quote the whole field and double the quotes inside)");
}

static void test_nul_bytes(void) {
  char *got = render(&COMMA, 0, "a\0b,c\n", 6);
  CHECK_EQ_STR(got, "1:[a");  /* rendering stops at the NUL... */
  free(got);
  fl_csv_reader *r = fl_csv_reader_new(&COMMA, 0);
  fl_csv_reader_set_data(r, "a\0b,c\n", 6);
  fl_csv_row row;
  CHECK_EQ_INT(fl_csv_reader_next(r, &row), 1);
  CHECK_EQ_INT(row.fields[0].len, 3); /* ...but the field has all 3 bytes */
  CHECK(memcmp(row.fields[0].data, "a\0b", 3) == 0);
  fl_csv_reader_free(r);
}

static void test_error_positions(void) {
  CHECK_DECODES("a,b\nc,d\"e\n",
                "error: line 2, column 4: unexpected '\"' in an unquoted field "
                "(quote the whole field and double the quotes inside)");
  CHECK_DECODES("a,b\n\"c\" ,d\n",
                "error: line 2, column 4: unexpected ' ' after a closed quoted field");
  CHECK_DECODES("\"ab\"x\n", "error: line 1, column 5: unexpected 'x' after a "
                             "closed quoted field");
  CHECK_DECODES("\"ab\"\t\n", "error: line 1, column 5: unexpected '\\t' after a "
                              "closed quoted field");
  /* Columns count characters: "é" is two bytes, one column. */
  CHECK_DECODES("é,\"x\"ü\n", "error: line 1, column 6: unexpected 'ü' after a "
                              "closed quoted field");
  /* Lines count the LFs inside quoted fields too. */
  CHECK_DECODES("\"a\nb\nc\"d\n", "error: line 3, column 3: unexpected 'd' after "
                                  "a closed quoted field");
  CHECK_DECODES("x\r\ny\r\n\"z\"\"\"w\"\r\n",
                "error: line 3, column 6: unexpected 'w' after a closed quoted field");
}

static void test_unterminated_quote(void) {
  /* Reported where the field opens. */
  CHECK_DECODES("a,b\nc,\"d\ne\nf\n",
                "error: line 2, column 3: unterminated quoted field: no closing "
                "'\"' before the end of the input");
  CHECK_DECODES("\"", "error: line 1, column 1: unterminated quoted field: no "
                      "closing '\"' before the end of the input");
  CHECK_DECODES("x,\"a\"\"b", "error: line 1, column 3: unterminated quoted "
                              "field: no closing '\"' before the end of the input");
  /* A field that closes and another that opens later on the same line. */
  CHECK_DECODES("\"a\nb\",\"c\n", "error: line 2, column 4: unterminated quoted "
                                  "field: no closing '\"' before the end of the input");
}

static void test_after_an_error(void) {
  fl_csv_reader *r = fl_csv_reader_new(&COMMA, 0);
  fl_csv_reader_set_data(r, "ok\nx\"\nmore\n", 11);
  fl_csv_row row;
  CHECK_EQ_INT(fl_csv_reader_next(r, &row), 1);
  CHECK_EQ_INT(fl_csv_reader_next(r, &row), -1);
  CHECK_EQ_INT(fl_csv_reader_next(r, &row), -1); /* stays failed */
  CHECK_CONTAINS(fl_csv_reader_error(r), "line 2, column 2");
  fl_csv_reader_free(r);
  fl_csv_reader_free(NULL);
}

static void test_header(void) {
  char *got = render(&COMMA, 1, "id,name\n1,a\n2\n", 14);
  CHECK_EQ_STR(got, "h:[id|name] 2:[1|a] 3:[2]");
  free(got);
  got = render(&COMMA, 1, "id,name\n1,a,extra\n", 18);
  CHECK_EQ_STR(got, "error: line 2: record has 3 fields but the header has 2");
  free(got);
  got = render(&COMMA, 1, "a,b,a\n", 6);
  CHECK_EQ_STR(got, "error: line 1: duplicate column name 'a' in the header "
                    "(columns 1 and 3)");
  free(got);
  got = render(&COMMA, 1, "", 0);
  CHECK_EQ_STR(got, "");
  free(got);
  got = render(&COMMA, 1, "\n\nonly,header\n", 13);
  CHECK_EQ_STR(got, "h:[only|header]");
  free(got);
  /* The header outlives the records read after it. */
  fl_csv_reader *r = fl_csv_reader_new(&COMMA, 1);
  fl_csv_reader_set_data(r, "k\nv1\nv2\n", 8);
  fl_csv_row row, h;
  CHECK_EQ_INT(fl_csv_reader_next(r, &row), 1);
  CHECK_EQ_STR(row.fields[0].data, "v1");
  CHECK_EQ_INT(fl_csv_reader_next(r, &row), 1);
  CHECK_EQ_INT(fl_csv_reader_header(r, &h), 1);
  CHECK_EQ_STR(h.fields[0].data, "k");
  CHECK_EQ_INT(h.line, 1);
  CHECK_EQ_INT(fl_csv_reader_next(r, &row), 0);
  fl_csv_reader_free(r);
}

/* A file bigger than the 64 KiB window, with records across its edges, a
   field longer than the window, and a quoted field over many lines. */
static void test_file_across_windows(void) {
  char *path = temp_path("big.csv");
  fl_buf b = FL_BUF_INIT;
  for (int i = 1; i <= 20000; i++) fl_buf_addf(&b, "row%d,%d,\"q,%d\"\r\n", i, i * 3, i);
  fl_buf_adds(&b, "long,");
  for (int i = 0; i < 300000; i++) fl_buf_addc(&b, 'x');
  fl_buf_adds(&b, "\n\"");
  for (int i = 0; i < 5000; i++) fl_buf_adds(&b, "line\n");
  fl_buf_adds(&b, "\",end\n");
  write_text(path, b.data, b.len);
  fl_buf_free(&b);

  fl_csv_reader *r = fl_csv_reader_new(&COMMA, 0);
  CHECK_EQ_INT(fl_csv_reader_open(r, path), 0);
  fl_csv_row row;
  int rc, n = 0, bad = 0;
  char want[64];
  while ((rc = fl_csv_reader_next(r, &row)) == 1 && n < 20000) {
    n++;
    snprintf(want, sizeof want, "q,%d", n);
    if (row.n != 3 || row.line != n || strcmp(row.fields[2].data, want) != 0) bad++;
  }
  CHECK_EQ_INT(n, 20000);
  CHECK_EQ_INT(bad, 0);
  CHECK_EQ_INT(rc, 1);
  CHECK_EQ_INT(row.n, 2);
  CHECK_EQ_INT(row.fields[1].len, 300000);
  CHECK_EQ_INT(row.line, 20001);
  CHECK_EQ_INT(fl_csv_reader_next(r, &row), 1);
  CHECK_EQ_INT(row.fields[0].len, 5000 * 5);
  CHECK_EQ_STR(row.fields[1].data, "end");
  CHECK_EQ_INT(row.line, 20002);
  CHECK_EQ_INT(fl_csv_reader_next(r, &row), 0);
  CHECK_EQ_INT(fl_csv_reader_next(r, &row), 0);
  fl_csv_reader_free(r);
  unlink(path);
  free(path);
}

static void test_file_errors(void) {
  char *path = temp_path("broken.csv");
  fl_buf b = FL_BUF_INIT;
  for (int i = 0; i < 10000; i++) fl_buf_adds(&b, "aaaa,bbbb,cccc\n");
  fl_buf_adds(&b, "x,\"y\"z\n");
  write_text(path, b.data, b.len);
  fl_buf_free(&b);
  fl_csv_reader *r = fl_csv_reader_new(&COMMA, 0);
  CHECK_EQ_INT(fl_csv_reader_open(r, path), 0);
  fl_csv_row row;
  int rc;
  while ((rc = fl_csv_reader_next(r, &row)) == 1) {
  }
  CHECK_EQ_INT(rc, -1);
  char want[256];
  snprintf(want, sizeof want,
           "%s:10001:6: unexpected 'z' after a closed quoted field", path);
  CHECK_EQ_STR(fl_csv_reader_error(r), want);
  fl_csv_reader_free(r);

  char *missing = temp_path("missing.csv");
  r = fl_csv_reader_new(&COMMA, 0);
  CHECK_EQ_INT(fl_csv_reader_open(r, missing), -1);
  CHECK_EQ_INT(errno, ENOENT);
  snprintf(want, sizeof want, "cannot open '%s': No such file or directory", missing);
  CHECK_EQ_STR(fl_csv_reader_error(r), want);
  CHECK_EQ_INT(fl_csv_reader_next(r, &row), -1);
  fl_csv_reader_free(r);

  /* A folder opens but cannot be read. */
  r = fl_csv_reader_new(&COMMA, 0);
  CHECK_EQ_INT(fl_csv_reader_open(r, "/tmp"), 0);
  CHECK_EQ_INT(fl_csv_reader_next(r, &row), -1);
  CHECK_EQ_STR(fl_csv_reader_error(r), "cannot read '/tmp': Is a directory");
  fl_csv_reader_free(r);
  unlink(path);
  free(path);
  free(missing);
}

/* ---- append ---------------------------------------------------------------- */

static void test_append(void) {
  char *path = temp_path("log.csv");
  fl_csv_out head, rows;
  fl_csv_out_init(&head, &COMMA);
  fl_csv_out_init(&rows, &COMMA);
  fl_csv_out_begin(&head);
  fl_csv_out_field(&head, "id", 2);
  fl_csv_out_field(&head, "v", 1);
  fl_csv_out_end(&head);
  fl_csv_out_begin(&rows);
  fl_csv_out_field(&rows, "1", 1);
  fl_csv_out_field(&rows, "a,b", 3);
  fl_csv_out_end(&rows);
  fl_csv_out_begin(&rows);
  fl_csv_out_field(&rows, "unfinished", 10); /* never ended: not written */

  CHECK_EQ_INT(fl_csv_append(path, &head, &rows), 0); /* creates, with header */
  CHECK_EQ_INT(fl_csv_append(path, &head, &rows), 0); /* no second header */
  char *s = slurp(path);
  CHECK_EQ_STR(s, "id,v\n1,\"a,b\"\n1,\"a,b\"\n");
  free(s);

  /* A file that does not end with a line break gets one first. */
  write_text(path, "x,y", 3);
  CHECK_EQ_INT(fl_csv_append(path, &head, &rows), 0);
  s = slurp(path);
  CHECK_EQ_STR(s, "x,y\n1,\"a,b\"\n");
  free(s);

  /* An empty file gets the header. */
  write_text(path, "", 0);
  CHECK_EQ_INT(fl_csv_append(path, &head, NULL), 0);
  s = slurp(path);
  CHECK_EQ_STR(s, "id,v\n");
  free(s);

  char *nowhere = temp_path("no/such/dir.csv");
  CHECK_EQ_INT(fl_csv_append(nowhere, &head, &rows), -1);
  CHECK_EQ_INT(errno, ENOENT);
  CHECK_EQ_INT(fl_csv_append("/tmp", &head, &rows), -1);
  CHECK_EQ_INT(errno, EISDIR);
  fl_csv_out_free(&head);
  fl_csv_out_free(&rows);
  unlink(path);
  free(path);
  free(nowhere);
}

/* ---- flushing to a descriptor ------------------------------------------------ */

static void test_flush_fd(void) {
  char *path = temp_path("flushed.csv");
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  CHECK(fd >= 0);
  fl_csv_out o;
  fl_csv_out_init(&o, &COMMA);
  fl_csv_out_begin(&o);
  fl_csv_out_field(&o, "a", 1);
  fl_csv_out_field(&o, "b\"c", 3);
  fl_csv_out_end(&o);
  fl_csv_out_begin(&o);
  fl_csv_out_field(&o, "half", 4); /* not ended: stays in the buffer */
  CHECK_EQ_INT(fl_csv_out_flush_fd(&o, fd), 0);
  CHECK_EQ_INT((int)o.row_start, 0);
  fl_csv_out_field(&o, "done", 4);
  fl_csv_out_end(&o);
  CHECK_EQ_INT(fl_csv_out_flush_fd(&o, fd), 0);
  CHECK_EQ_INT(fl_csv_out_flush_fd(&o, fd), 0); /* nothing left: no-op */
  CHECK_EQ_INT(close(fd), 0);
  char *s = slurp(path);
  CHECK_EQ_STR(s, "a,\"b\"\"c\"\nhalf,done\n");
  free(s);

  /* A failed write keeps the records, so nothing is lost silently. */
  fl_csv_out_begin(&o);
  fl_csv_out_field(&o, "kept", 4);
  fl_csv_out_end(&o);
  errno = 0;
  CHECK_EQ_INT(fl_csv_out_flush_fd(&o, -1), -1);
  CHECK_EQ_INT(errno, EBADF);
  CHECK_EQ_INT((int)o.row_start, 5);
  /* So does a buffer that ran out of memory, reported as such. */
  o.buf.oom = 1;
  CHECK_EQ_INT(fl_csv_out_flush_fd(&o, 1), -1);
  CHECK_EQ_INT(errno, ENOMEM);
  fl_csv_out_free(&o);
  unlink(path);
  free(path);
}

/* ---- round trip -------------------------------------------------------------- */

static unsigned long long rng = 0x9E3779B97F4A7C15ull;
static unsigned next_rand(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return (unsigned)(rng >> 32);
}

static void test_round_trip(void) {
  static const char alphabet[] = "ab ,\"\r\n;'\t\xC3\xA9";
  fl_csv_dialect dialects[] = {{',', '"'}, {';', '\''}, {'\t', '"'}};
  int mismatches = 0, total = 0;
  for (int round = 0; round < 300; round++) {
    const fl_csv_dialect *d = &dialects[round % 3];
    int n_rows = 1 + (int)(next_rand() % 8);
    char fields[8][8][12];
    int widths[8];
    fl_csv_out o;
    fl_csv_out_init(&o, d);
    for (int i = 0; i < n_rows; i++) {
      widths[i] = 1 + (int)(next_rand() % 8);
      fl_csv_out_begin(&o);
      for (int j = 0; j < widths[i]; j++) {
        int len = (int)(next_rand() % 11);
        for (int k = 0; k < len; k++)
          fields[i][j][k] = alphabet[next_rand() % (sizeof alphabet - 1)];
        fields[i][j][len] = '\0';
        fl_csv_out_field(&o, fields[i][j], (size_t)len);
      }
      fl_csv_out_end(&o);
    }
    fl_csv_reader *r = fl_csv_reader_new(d, 0);
    fl_csv_reader_set_data(r, o.buf.data, o.row_start);
    fl_csv_row row;
    int i = 0, rc;
    while ((rc = fl_csv_reader_next(r, &row)) == 1) {
      total++;
      if (i >= n_rows || (int)row.n != widths[i]) {
        mismatches++;
        break;
      }
      for (int j = 0; j < widths[i]; j++)
        if (strcmp(row.fields[j].data, fields[i][j]) != 0) {
          mismatches++;
          break;
        }
      i++;
    }
    if (rc != 0 || i != n_rows) {
      mismatches++;
      fprintf(stderr, "round %d: rc %d, %d of %d rows: %s\n", round, rc, i,
              n_rows, fl_csv_reader_error(r));
    }
    fl_csv_reader_free(r);
    fl_csv_out_free(&o);
  }
  CHECK_EQ_INT(mismatches, 0);
  CHECK(total > 300);
}

int main(void) {
  RUN(test_minimal_quoting);
  RUN(test_one_empty_field_and_empty_row);
  RUN(test_other_dialect);
  RUN(test_dialect_check);
  RUN(test_unfinished_row_is_dropped);
  RUN(test_basic_parsing);
  RUN(test_spaces_are_data);
  RUN(test_quoted_fields);
  RUN(test_bom);
  RUN(test_nul_bytes);
  RUN(test_error_positions);
  RUN(test_unterminated_quote);
  RUN(test_after_an_error);
  RUN(test_header);
  RUN(test_file_across_windows);
  RUN(test_file_errors);
  RUN(test_append);
  RUN(test_flush_fd);
  RUN(test_round_trip);
  if (dir[0]) rmdir(dir);
  return check_summary();
}
