/*
 * ref_libcsv.c — the floor for flowlua's CSV benchmark: plain C on libcsv,
 * the same work as csv.write / csv.read on N rows of 3 short fields.
 *
 *   cc -O2 ref_libcsv.c -o ref_libcsv -lcsv
 *   ./ref_libcsv write FILE N   rows built in memory first, then timed:
 *                               csv_fwrite per field (libcsv's writer)
 *   ./ref_libcsv writebuf FILE N  the same, fields quoted only when needed
 *                               into one buffer, one fwrite per 64 KiB
 *   ./ref_libcsv read FILE      csv_parse in 64 KiB blocks, every field
 *                               copied (malloc) into an in-memory row list
 *   ./ref_libcsv count FILE     csv_parse, callbacks only count
 *
 * Prints "rows N seconds S rows_per_s R".
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <csv.h>

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

typedef struct row {
  char *f[3];
  size_t len[3];
} row;

static row *make_rows(long n) {
  row *rows = malloc((size_t)n * sizeof *rows);
  char b[64];
  for (long i = 0; i < n; i++) {
    int len[3];
    len[0] = snprintf(b, sizeof b, "id%ld", i + 1);
    rows[i].f[0] = strdup(b);
    len[1] = snprintf(b, sizeof b, "%ld", (i + 1) * 7);
    rows[i].f[1] = strdup(b);
    /* every tenth name holds a quote and a comma, so it must be quoted */
    len[2] = (i + 1) % 10 == 0 ? snprintf(b, sizeof b, "\"name%ld\", again", i % 1000)
                               : snprintf(b, sizeof b, "name%ld", i % 1000);
    rows[i].f[2] = strdup(b);
    for (int k = 0; k < 3; k++) rows[i].len[k] = (size_t)len[k];
  }
  return rows;
}

static int needs_quotes(const char *s, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (s[i] == ',' || s[i] == '"' || s[i] == '\r' || s[i] == '\n') return 1;
  return 0;
}

static double write_file(const char *path, long n, int buffered) {
  row *rows = make_rows(n);
  double t0 = now();
  FILE *fp = fopen(path, "wb");
  if (!fp) return -1;
  if (!buffered) {
    for (long i = 0; i < n; i++) {
      for (int k = 0; k < 3; k++) {
        if (k) fputc(',', fp);
        csv_fwrite(fp, rows[i].f[k], rows[i].len[k]);
      }
      fputc('\n', fp);
    }
  } else {
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap + 4096);
    for (long i = 0; i < n; i++) {
      for (int k = 0; k < 3; k++) {
        if (k) buf[len++] = ',';
        if (needs_quotes(rows[i].f[k], rows[i].len[k]))
          len += csv_write(buf + len, 4096, rows[i].f[k], rows[i].len[k]);
        else {
          memcpy(buf + len, rows[i].f[k], rows[i].len[k]);
          len += rows[i].len[k];
        }
      }
      buf[len++] = '\n';
      if (len >= cap) {
        fwrite(buf, 1, len, fp);
        len = 0;
      }
    }
    fwrite(buf, 1, len, fp);
    free(buf);
  }
  fclose(fp);
  double t = now() - t0;
  for (long i = 0; i < n; i++)
    for (int k = 0; k < 3; k++) free(rows[i].f[k]);
  free(rows);
  return t;
}

typedef struct reading {
  int keep;
  long rows, fields;
  char **cur; /* fields of the row being read */
  size_t n_cur, cap_cur;
  char ***list; /* rows: NULL-terminated field arrays */
  size_t n_list, cap_list;
} reading;

static void on_field(void *s, size_t len, void *data) {
  reading *r = data;
  r->fields++;
  if (!r->keep) return;
  if (r->n_cur == r->cap_cur) {
    r->cap_cur = r->cap_cur ? r->cap_cur * 2 : 8;
    r->cur = realloc(r->cur, r->cap_cur * sizeof *r->cur);
  }
  char *f = malloc(len + 1);
  memcpy(f, s, len);
  f[len] = '\0';
  r->cur[r->n_cur++] = f;
}

static void on_row(int c, void *data) {
  (void)c;
  reading *r = data;
  r->rows++;
  if (!r->keep) return;
  char **fields = malloc((r->n_cur + 1) * sizeof *fields);
  memcpy(fields, r->cur, r->n_cur * sizeof *fields);
  fields[r->n_cur] = NULL;
  r->n_cur = 0;
  if (r->n_list == r->cap_list) {
    r->cap_list = r->cap_list ? r->cap_list * 2 : 1024;
    r->list = realloc(r->list, r->cap_list * sizeof *r->list);
  }
  r->list[r->n_list++] = fields;
}

static double read_file(const char *path, int keep, long *rows) {
  reading r = {keep, 0, 0, NULL, 0, 0, NULL, 0, 0};
  struct csv_parser p;
  double t0 = now();
  FILE *fp = fopen(path, "rb");
  if (!fp) return -1;
  csv_init(&p, CSV_STRICT | CSV_STRICT_FINI);
  static char buf[1 << 16];
  size_t got;
  while ((got = fread(buf, 1, sizeof buf, fp)) > 0)
    if (csv_parse(&p, buf, got, on_field, on_row, &r) != got) return -1;
  csv_fini(&p, on_field, on_row, &r);
  csv_free(&p);
  fclose(fp);
  double t = now() - t0;
  *rows = r.rows;
  for (size_t i = 0; i < r.n_list; i++) {
    for (char **f = r.list[i]; *f; f++) free(*f);
    free(r.list[i]);
  }
  free(r.list);
  free(r.cur);
  return t;
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: %s write|writebuf FILE N | read|count FILE\n", argv[0]);
    return 2;
  }
  long n = argc > 3 ? atol(argv[3]) : 0;
  double t;
  if (strcmp(argv[1], "write") == 0 || strcmp(argv[1], "writebuf") == 0)
    t = write_file(argv[2], n, argv[1][5] == 'b');
  else
    t = read_file(argv[2], strcmp(argv[1], "read") == 0, &n);
  if (t < 0) {
    perror(argv[2]);
    return 1;
  }
  printf("rows %ld seconds %.4f rows_per_s %.0f\n", n, t, (double)n / t);
  return 0;
}
