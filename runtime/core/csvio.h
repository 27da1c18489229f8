/*
 * csvio.h — reading and writing CSV (RFC 4180) on libcsv, in plain C.
 *
 * No Lua here: lcsvlib.c turns records into tables and back. Reading is a
 * pull interface over a file or a block of memory that holds one input
 * window and the record being parsed, never the whole input, and reports
 * malformed input with its exact line and column. Writing encodes records
 * into a buffer with minimal quoting; where those bytes go (an atomic
 * temporary file, an append, a Lua string) is the caller's choice.
 *
 * The format, both ways: fields separated by one delimiter byte, quoted with
 * one quote byte, a quote inside a quoted field doubled. Spaces belong to
 * the field (RFC 4180; libcsv's default trimming is turned off).
 */
#ifndef FL_CSVIO_H
#define FL_CSVIO_H

#include <stddef.h>

#include "buf.h"

typedef struct fl_csv_dialect {
  unsigned char delim, quote;
} fl_csv_dialect;

#define FL_CSV_DIALECT_DEFAULT {',', '"'}

/* NULL when the dialect is usable, else why not (a static string). */
const char *fl_csv_dialect_check(const fl_csv_dialect *d);

/* ---- reading -------------------------------------------------------------- */

typedef struct fl_csv_field {
  const char *data; /* NUL-terminated (a field may also hold NUL bytes) */
  size_t len;
} fl_csv_field;

/* One record. Valid until the next call on its reader. */
typedef struct fl_csv_row {
  const fl_csv_field *fields;
  size_t n;
  long line; /* where the record starts, from 1 */
} fl_csv_row;

typedef struct fl_csv_reader fl_csv_reader;

/*
 * A reader with no input yet; NULL when out of memory. With `header`, the
 * first record is the header: fl_csv_reader_header() returns it, next()
 * starts after it, and a record with more fields than the header is an
 * error (fewer is allowed).
 */
fl_csv_reader *fl_csv_reader_new(const fl_csv_dialect *d, int header);
/* NULL-safe; closes the file. */
void fl_csv_reader_free(fl_csv_reader *r);

/* Reads the file at path. 0, or -1 with errno and the error message set. */
int fl_csv_reader_open(fl_csv_reader *r, const char *path);
/* Reads len bytes at data, which the caller keeps alive and unchanged while
   the reader reads. Messages then say "line L, column C" without a name. */
void fl_csv_reader_set_data(fl_csv_reader *r, const char *data, size_t len);

/* Parses every line with libcsv, even one split_plain_line (csvio.c) could
   split: for the fuzz target, which checks that both read alike. Call it
   before the first record. */
void fl_csv_reader_libcsv_only(fl_csv_reader *r);

/* The next record: 1 with *row set, 0 at the end of the input (the file is
   closed then), -1 on an error (see fl_csv_reader_error; every later call
   returns -1 too). Empty lines between records are skipped. */
int fl_csv_reader_next(fl_csv_reader *r, fl_csv_row *row);
/* With `header`: 1 with *row set to the header (valid for the reader's
   life), 0 when the input is empty, -1 on an error. Reads it if next() has
   not yet. Column names must be unique. */
int fl_csv_reader_header(fl_csv_reader *r, fl_csv_row *row);

/* The last error: "name:line:col: what" for a file ("line L, column C:
   what" for memory), "cannot open 'name': cause", "out of memory"... Owned
   by the reader, valid until it is freed. */
const char *fl_csv_reader_error(const fl_csv_reader *r);

/* ---- writing -------------------------------------------------------------- */

/*
 * Records encoded into a buffer. A field is quoted only when it holds the
 * delimiter, the quote, CR or LF, or starts with a UTF-8 BOM (which readers
 * skip at the start of a file); every record ends with LF; an empty field
 * is written as nothing, except that a record of one empty field is written
 * as "" so it is not read back as an empty line (which readers skip).
 * Out of memory is sticky (buf.oom), checked once at the end.
 */
typedef struct fl_csv_out {
  fl_buf buf;       /* complete records are [0, row_start) */
  size_t row_start; /* where the record being built begins */
  size_t row_fields;
  fl_csv_dialect d;
  unsigned char special[256]; /* bytes that make a field need quotes */
} fl_csv_out;

void fl_csv_out_init(fl_csv_out *o, const fl_csv_dialect *d);
void fl_csv_out_free(fl_csv_out *o);
/* Starts a record, dropping a record that was begun and never ended. */
void fl_csv_out_begin(fl_csv_out *o);
void fl_csv_out_field(fl_csv_out *o, const char *s, size_t n);
void fl_csv_out_end(fl_csv_out *o);
/* Forgets the complete records (after the caller wrote them out). */
void fl_csv_out_drop_complete(fl_csv_out *o);
/*
 * Writes the complete records to fd with write(2), continuing after short
 * writes and EINTR, asks the kernel to start writing them back to the disk
 * (so a final fsync waits only for the last block, not the whole file),
 * and forgets them. 0, or -1 with errno set (ENOMEM when the buffer ran out
 * of memory earlier); the records are kept on failure.
 */
int fl_csv_out_flush_fd(fl_csv_out *o, int fd);

/*
 * Appends complete records to the file at path, creating it when missing:
 * `header` (may be NULL) only when the file is empty, and a LF first when
 * the file does not end with one. Everything goes out in one writev(2) on
 * an O_APPEND descriptor under an exclusive flock, then fsync. 0, or -1
 * with errno set; a failure (a full disk, a failed fsync or close) leaves
 * the file as it was: truncated back to its old length, or removed when
 * this call created it.
 */
int fl_csv_append(const char *path, const fl_csv_out *header,
                  const fl_csv_out *rows);

#endif
