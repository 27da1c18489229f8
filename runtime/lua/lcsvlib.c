/*
 * lcsvlib.c — flow.csv: read, rows, decode, write, writer, append, encode.
 *
 * The thin Lua side of csvio.c: options, records into tables, Lua values
 * into fields. Options everywhere: header, delimiter, quote.
 *
 *   csv.read(path, opts) / csv.decode(text, opts) -> rows
 *       rows are lists of strings; with header = true, records keyed by the
 *       header's names, and the list of names as a second result
 *   for row, line in csv.rows(path, opts) do ... end
 *       streaming; the file is closed when the loop ends, breaks or fails
 *   csv.write(path, rows, opts) -> n      atomic: temp file, fsync, rename
 *   csv.writer(path, opts) -> w           w:write(row), w:write_rows(rows),
 *       w:close() commits, w:abort(); a <close> variable commits on a normal
 *       exit and discards on an error; never closed, it commits nothing
 *   csv.append(path, rows, opts) -> n     one writev on O_APPEND, fsync
 *   csv.encode(rows, opts) -> text
 *
 * Every C resource (a reader, an output buffer, a temporary file) lives in
 * a userdata whose __gc releases it, so an error raised halfway leaks
 * nothing; files are closed, and temporary files removed, before an error
 * leaves the call that opened them.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

#include "csvio.h"
#include "fsutil.h"
#include "engine.h"
#include "lflowlua.h"
#include "loptions.h"

#define READER_MT "flowlua.csv.reader"
#define WRITER_MT "flowlua.csv.writer"
#define OUT_MT "flowlua.csv.buffer"
/* A writer hands its records to the temporary file in blocks this big. */
#define FLUSH_AT ((size_t)256 << 10)
/* Fields of a row put on the stack at once when writing. */
#define FIELD_BATCH 16
/* Plain list rows encoded together by add_row_block, and their fields. */
#define ROW_BLOCK 32
#define VALUE_BLOCK 128

/* ---- options -------------------------------------------------------------- */

typedef struct opts {
  fl_csv_dialect d;
  int header;     /* reading: the first record names the columns */
  int header_idx; /* writing: stack index of the list of names, or 0 */
  int reuse;      /* csv.rows: one row table for every record */
} opts;

static unsigned char opt_char(lua_State *L, int v, const char *fn,
                              const char *key) {
  if (lua_type(L, v) != LUA_TSTRING)
    luaL_error(L, "%s: option '%s' must be a one-character string, got %s", fn,
               key, luaL_typename(L, v));
  size_t n;
  const char *s = lua_tolstring(L, v, &n);
  if (n != 1)
    luaL_error(L, "%s: option '%s' must be one character (one byte), got '%s'",
               fn, key, s);
  if (*s == '\r' || *s == '\n')
    luaL_error(L, "%s: option '%s' must not be a line break", fn, key);
  return (unsigned char)*s;
}

static void check_header_list(lua_State *L, int v, const char *fn) {
  if (!lua_istable(L, v))
    luaL_error(L, "%s: option 'header' must be a list of column names, got %s",
               fn, luaL_typename(L, v));
  lua_Integer n = (lua_Integer)lua_rawlen(L, v);
  if (n == 0)
    luaL_error(L, "%s: option 'header' must not be an empty list", fn);
  for (lua_Integer i = 1; i <= n; i++) {
    if (lua_rawgeti(L, v, i) != LUA_TSTRING)
      luaL_error(L, "%s: option 'header' entry %d must be a string, got %s", fn,
                 (int)i, luaL_typename(L, -1));
    lua_pop(L, 1);
  }
}

/* The options table at idx (absent or nil: the defaults). For writing,
   header is a list of names, left on the stack at o->header_idx. */
static void get_opts(lua_State *L, int idx, const char *fn, int writing,
                     opts *o) {
  *o = (opts){FL_CSV_DIALECT_DEFAULT, 0, 0, 0};
  if (lua_isnoneornil(L, idx)) return;
  if (!lua_istable(L, idx))
    luaL_error(L, "%s: the options must be a table, got %s", fn,
               luaL_typename(L, idx));
  /* reuse is csv.rows' alone: only an iterator can hand out one table
     again and again. */
  static const char *const names[] = {"header", "delimiter", "quote",
                                      "reuse", NULL};
  static const char *const names_no_reuse[] = {"header", "delimiter",
                                               "quote", NULL};
  enum { HEADER, DELIMITER, QUOTE, REUSE };
  int rows = strcmp(fn, "csv.rows") == 0;
  int has_header = 0;
  fl_opts it;
  fl_opts_begin(&it, L, idx, fn, "option", rows ? names : names_no_reuse);
  for (int k; (k = fl_opts_next(&it)) >= 0;) {
    int v = it.value;
    switch (k) {
    case DELIMITER:
      o->d.delim = opt_char(L, v, fn, it.key);
      break;
    case QUOTE:
      o->d.quote = opt_char(L, v, fn, it.key);
      break;
    case REUSE:
      if (!lua_isboolean(L, v))
        luaL_error(L, "%s: option 'reuse' must be true or false, got %s", fn,
                   luaL_typename(L, v));
      o->reuse = lua_toboolean(L, v);
      break;
    case HEADER:
      if (writing) {
        has_header = !(lua_isboolean(L, v) && !lua_toboolean(L, v));
        if (has_header) check_header_list(L, v, fn);
      } else {
        if (!lua_isboolean(L, v))
          luaL_error(L, "%s: option 'header' must be true or false when "
                        "reading, got %s",
                     fn, luaL_typename(L, v));
        o->header = lua_toboolean(L, v);
      }
      break;
    }
  }
  if (o->d.delim == o->d.quote)
    luaL_error(L, "%s: options 'delimiter' and 'quote' must differ (both are "
                  "'%c')",
               fn, o->d.delim);
  if (has_header) {
    lua_getfield(L, idx, "header");
    o->header_idx = lua_gettop(L);
  }
}

/* ---- reading -------------------------------------------------------------- */

typedef struct lreader {
  fl_csv_reader *r;
  /* csv.rows with reuse = true: the fields the reused row table (the
     iterator's upvalue 3) holds from the last record; -1 without reuse. */
  int reused_n;
} lreader;

static void reader_release(lreader *lr) {
  fl_csv_reader_free(lr->r);
  lr->r = NULL;
}

static int reader_gc(lua_State *L) {
  reader_release(luaL_checkudata(L, 1, READER_MT));
  return 0;
}

/* A reader userdata (pushed) with no input yet. */
static lreader *new_reader(lua_State *L, const opts *o) {
  lreader *lr = lua_newuserdatauv(L, sizeof *lr, 0);
  lr->r = NULL;
  lr->reused_n = -1;
  luaL_setmetatable(L, READER_MT);
  lr->r = fl_csv_reader_new(&o->d, o->header);
  if (!lr->r) luaL_error(L, "out of memory");
  return lr;
}

/* Raises the reader's error after releasing it (the file is closed now). */
static int reader_fail(lua_State *L, lreader *lr, const char *fn) {
  lua_pushfstring(L, "%s: %s", fn, fl_csv_reader_error(lr->r));
  reader_release(lr);
  return lua_error(L);
}

/* Pushes the list of column names (empty for an empty input). */
static void push_header(lua_State *L, lreader *lr, const char *fn) {
  fl_csv_row h;
  int rc = fl_csv_reader_header(lr->r, &h);
  if (rc < 0) reader_fail(L, lr, fn);
  lua_createtable(L, rc ? (int)h.n : 0, 0);
  for (size_t i = 0; rc && i < h.n; i++) {
    lua_pushlstring(L, h.fields[i].data, h.fields[i].len);
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
}

/* Pushes a record: a list of strings, or with the names at header_idx a
   table keyed by them (a short record leaves its last keys absent). */
static void push_row(lua_State *L, const fl_csv_row *row, int header_idx) {
  if (!header_idx) {
    lua_createtable(L, (int)row->n, 0);
    for (size_t i = 0; i < row->n; i++) {
      lua_pushlstring(L, row->fields[i].data, row->fields[i].len);
      lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    return;
  }
  lua_createtable(L, 0, (int)row->n);
  for (size_t i = 0; i < row->n; i++) {
    lua_rawgeti(L, header_idx, (lua_Integer)i + 1);
    lua_pushlstring(L, row->fields[i].data, row->fields[i].len);
    lua_rawset(L, -3);
  }
}

/* Reads every record into a list; with a header also returns the names. */
static int read_all(lua_State *L, lreader *lr, int header, const char *fn) {
  int header_idx = 0;
  if (header) {
    push_header(L, lr, fn);
    header_idx = lua_gettop(L);
  }
  lua_newtable(L);
  fl_csv_row row;
  int rc;
  lua_Integer n = 0;
  while ((rc = fl_csv_reader_next(lr->r, &row)) == 1) {
    push_row(L, &row, header_idx);
    lua_rawseti(L, -2, ++n);
  }
  if (rc < 0) return reader_fail(L, lr, fn);
  reader_release(lr);
  if (!header) return 1;
  lua_insert(L, header_idx); /* records first, then the names */
  return 2;
}

/* read_all(reader, header, fn) as a Lua C function, for lua_pcall. */
static int read_all_call(lua_State *L) {
  lreader *lr = lua_touserdata(L, 1);
  int header = lua_toboolean(L, 2);
  const char *fn = lua_tostring(L, 3);
  lua_settop(L, 3);
  return read_all(L, lr, header, fn);
}

/*
 * read_all with the collector paused: everything a read allocates is kept
 * (the result), so collecting during it would only mark that growing result
 * again and again (up to a third of csv.read's time on a million rows). The
 * protected call restarts the collector whatever happens, then re-raises.
 */
static int read_all_paused(lua_State *L, int ud, int header, const char *fn) {
  int was_running = lua_gc(L, LUA_GCISRUNNING);
  lua_pushcfunction(L, read_all_call);
  lua_pushvalue(L, ud);
  lua_pushboolean(L, header);
  lua_pushstring(L, fn);
  if (was_running) lua_gc(L, LUA_GCSTOP);
  int rc = lua_pcall(L, 3, 2, 0);
  if (was_running) lua_gc(L, LUA_GCRESTART);
  if (rc != LUA_OK) return lua_error(L);
  if (header) return 2;
  lua_pop(L, 1);
  return 1;
}

/* csv.read(path, [opts]) -> rows | records, names */
static int csv_read(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  opts o;
  get_opts(L, 2, "csv.read", 0, &o);
  lreader *lr = new_reader(L, &o);
  int ud = lua_gettop(L);
  if (fl_csv_reader_open(lr->r, path) != 0) return reader_fail(L, lr, "csv.read");
  return read_all_paused(L, ud, o.header, "csv.read");
}

/* csv.decode(text, [opts]) -> rows | records, names */
static int csv_decode(lua_State *L) {
  size_t len;
  const char *text = luaL_checklstring(L, 1, &len); /* alive at index 1 */
  opts o;
  get_opts(L, 2, "csv.decode", 0, &o);
  lreader *lr = new_reader(L, &o);
  fl_csv_reader_set_data(lr->r, text, len);
  return read_all_paused(L, lua_gettop(L), o.header, "csv.decode");
}

/* Pushes the iterator's reused row table (its upvalue 3) filled with the
   record: fields of the last record beyond this one's are cleared, so it
   reads as a fresh row would. No table is made per record, and the
   collector has that much less to do. */
static void refill_row(lua_State *L, lreader *lr, const fl_csv_row *row,
                       int header_idx) {
  lua_pushvalue(L, lua_upvalueindex(3));
  int t = lua_gettop(L);
  int n = (int)row->n;
  for (int i = 0; i < n; i++) {
    if (header_idx) lua_rawgeti(L, header_idx, i + 1);
    lua_pushlstring(L, row->fields[i].data, row->fields[i].len);
    if (header_idx)
      lua_rawset(L, t);
    else
      lua_rawseti(L, t, i + 1);
  }
  for (int i = n; i < lr->reused_n; i++) {
    if (header_idx) {
      lua_rawgeti(L, header_idx, i + 1);
      lua_pushnil(L);
      lua_rawset(L, t);
    } else {
      lua_pushnil(L);
      lua_rawseti(L, t, i + 1);
    }
  }
  lr->reused_n = n;
}

/* The iterator of csv.rows: () -> record, line | nil. Its upvalues are the
   reader, the list of column names (or nil) and the reused row (or nil):
   upvalues, rather than the generic for's state argument and the reader's
   user values, because this runs once per record and an upvalue costs no
   lookup (luaL_checkudata finds the metatable by name in the registry). */
static int rows_next(lua_State *L) {
  lreader *lr = lua_touserdata(L, lua_upvalueindex(1));
  if (!lr->r) return 0;
  fl_csv_row row;
  int rc = fl_csv_reader_next(lr->r, &row);
  if (rc < 0) return reader_fail(L, lr, "csv.rows");
  if (rc == 0) {
    reader_release(lr);
    return 0;
  }
  int header_idx =
      lua_type(L, lua_upvalueindex(2)) == LUA_TTABLE ? lua_upvalueindex(2) : 0;
  if (lr->reused_n >= 0)
    refill_row(L, lr, &row, header_idx);
  else
    push_row(L, &row, header_idx);
  lua_pushinteger(L, row.line);
  return 2;
}

/* csv.rows(path, [opts]) -> iterator, reader, nil, reader (to be closed) */
static int csv_rows(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  opts o;
  get_opts(L, 2, "csv.rows", 0, &o);
  lreader *lr = new_reader(L, &o);
  int ud = lua_gettop(L);
  if (fl_csv_reader_open(lr->r, path) != 0) return reader_fail(L, lr, "csv.rows");
  lua_pushvalue(L, ud);
  if (o.header)
    push_header(L, lr, "csv.rows");
  else
    lua_pushnil(L);
  if (o.reuse) {
    lua_newtable(L);
    lr->reused_n = 0;
  } else {
    lua_pushnil(L);
  }
  lua_pushcclosure(L, rows_next, 3);
  lua_pushvalue(L, ud);
  lua_pushnil(L);
  lua_pushvalue(L, ud);
  return 4;
}

/* ---- writing -------------------------------------------------------------- */

/* Encodes rows: where the header list and its name set are, for records. */
typedef struct enc {
  lua_State *L;
  const char *fn;
  fl_csv_out *out;
  int header_idx, set_idx; /* 0 without a header */
  lua_Integer n_header;
} enc;

static int out_gc(lua_State *L) {
  fl_csv_out_free(luaL_checkudata(L, 1, OUT_MT));
  return 0;
}

static fl_csv_out *new_out(lua_State *L, const fl_csv_dialect *d) {
  fl_csv_out *out = lua_newuserdatauv(L, sizeof *out, 0);
  fl_csv_out_init(out, d);
  luaL_setmetatable(L, OUT_MT);
  return out;
}

/* Pushes the set { name = true } of the header list at header_idx. */
static int push_name_set(lua_State *L, int header_idx) {
  lua_Integer n = (lua_Integer)lua_rawlen(L, header_idx);
  lua_createtable(L, 0, (int)n);
  for (lua_Integer i = 1; i <= n; i++) {
    lua_rawgeti(L, header_idx, i);
    lua_pushboolean(L, 1);
    lua_rawset(L, -3);
  }
  return lua_gettop(L);
}

static void enc_init(lua_State *L, enc *e, const char *fn, fl_csv_out *out,
                     int header_idx) {
  *e = (enc){L, fn, out, header_idx, 0, 0};
  if (header_idx) {
    e->set_idx = push_name_set(L, header_idx);
    e->n_header = (lua_Integer)lua_rawlen(L, header_idx);
  }
}

static void add_header(enc *e) {
  if (!e->header_idx) return;
  fl_csv_out_begin(e->out);
  for (lua_Integer i = 1; i <= e->n_header; i++) {
    size_t n;
    lua_rawgeti(e->L, e->header_idx, i);
    const char *s = lua_tolstring(e->L, -1, &n);
    fl_csv_out_field(e->out, s, n);
    lua_pop(e->L, 1);
  }
  fl_csv_out_end(e->out);
}

/* Writes the decimal digits of i into b (at least 21 bytes); the length. */
static size_t format_integer(char *b, lua_Integer i) {
  char tmp[24];
  size_t n = 0;
  lua_Unsigned u = i < 0 ? 0u - (lua_Unsigned)i : (lua_Unsigned)i;
  do {
    tmp[n++] = (char)('0' + u % 10);
    u /= 10;
  } while (u);
  size_t len = 0;
  if (i < 0) b[len++] = '-';
  while (n) b[len++] = tmp[--n];
  return len;
}

/* The value at v, of type t, as one field: strings as they are, numbers as
   tostring writes them (4, 4.0, 0.1), booleans as true/false, nil and
   json.null (a NULL light userdata) as an empty field. */
static void add_value(enc *e, int v, int t, lua_Integer row, lua_Integer col,
                      const char *name) {
  lua_State *L = e->L;
  switch (t) {
  case LUA_TSTRING: {
    size_t n;
    const char *s = lua_tolstring(L, v, &n);
    fl_csv_out_field(e->out, s, n);
    return;
  }
  case LUA_TNUMBER: {
    char b[64];
    size_t n;
    if (lua_isinteger(L, v)) {
      n = format_integer(b, lua_tointeger(L, v));
    } else {
      n = (size_t)lua_number2str(b, sizeof b - 2, lua_tonumber(L, v));
      if (b[strspn(b, "-0123456789")] == '\0') { /* looks like an int */
        b[n++] = '.';
        b[n++] = '0';
      }
    }
    fl_csv_out_field(e->out, b, n);
    return;
  }
  case LUA_TBOOLEAN:
    if (lua_toboolean(L, v))
      fl_csv_out_field(e->out, "true", 4);
    else
      fl_csv_out_field(e->out, "false", 5);
    return;
  case LUA_TNIL:
    fl_csv_out_field(e->out, "", 0);
    return;
  case LUA_TLIGHTUSERDATA:
    if (lua_touserdata(L, v) == NULL) {
      fl_csv_out_field(e->out, "", 0);
      return;
    }
    break;
  }
  if (name)
    luaL_error(L, "%s: row %d, column '%s': cannot write a %s (fields are "
                  "strings, numbers or booleans)",
               e->fn, (int)row, name, luaL_typename(L, v));
  luaL_error(L, "%s: row %d, column %d: cannot write a %s (fields are "
                "strings, numbers or booleans)",
             e->fn, (int)row, (int)col, luaL_typename(L, v));
}

/* A record keyed by the header's names: fields in header order, and no key
   the header does not name (that data would be lost silently). */
static void add_record(enc *e, int r, lua_Integer row) {
  lua_State *L = e->L;
  for (lua_Integer i = 1; i <= e->n_header; i++) {
    lua_rawgeti(L, e->header_idx, i);
    const char *name = lua_tostring(L, -1);
    lua_pushvalue(L, -1);
    int t = lua_rawget(L, r);
    add_value(e, lua_gettop(L), t, row, i, name);
    lua_pop(L, 2);
  }
  lua_pushnil(L);
  while (lua_next(L, r)) {
    lua_pop(L, 1);
    lua_pushvalue(L, -1);
    if (lua_rawget(L, e->set_idx) == LUA_TNIL) {
      if (lua_type(L, -2) == LUA_TSTRING)
        luaL_error(L, "%s: row %d has a field '%s' that is not in the header",
                   e->fn, (int)row, lua_tostring(L, -2));
      luaL_error(L, "%s: row %d has a %s key that is not in the header",
                 e->fn, (int)row, luaL_typename(L, -2));
    }
    lua_pop(L, 1);
  }
}

/* The row at r (an absolute index), of type t, as one record. */
static void add_row(enc *e, int r, int t, lua_Integer row) {
  lua_State *L = e->L;
  if (t != LUA_TTABLE)
    luaL_error(L, "%s: row %d must be a table, got %s", e->fn, (int)row,
               lua_typename(L, t));
  fl_csv_out_begin(e->out);
  lua_Integer n = (lua_Integer)lua_rawlen(L, r);
  if (n == 0 && e->header_idx) {
    add_record(e, r, row);
  } else {
    if (n == 0) {
      lua_pushnil(L);
      if (lua_next(L, r))
        luaL_error(L, "%s: row %d is not a list (give option 'header' to "
                      "write records keyed by column names)",
                   e->fn, (int)row);
    }
    /* With a header, a list row has the header's width: trailing nils (a
       missing value at the end, which # cannot see) are empty fields. */
    if (e->header_idx) {
      if (n > e->n_header)
        luaL_error(L, "%s: row %d has %d fields but the header has %d",
                   e->fn, (int)row, (int)n, (int)e->n_header);
      n = e->n_header;
    }
    /* Fields go on the stack a batch at a time, popped once per batch. */
    int base = lua_gettop(L);
    int types[FIELD_BATCH];
    luaL_checkstack(L, FIELD_BATCH, "csv row");
    for (lua_Integer first = 1; first <= n; first += FIELD_BATCH) {
      int k = n - first + 1 < FIELD_BATCH ? (int)(n - first + 1) : FIELD_BATCH;
      for (int j = 0; j < k; j++) types[j] = lua_rawgeti(L, r, first + j);
      for (int j = 0; j < k; j++)
        add_value(e, base + 1 + j, types[j], row, first + j, NULL);
      lua_settop(L, base);
    }
  }
  fl_csv_out_end(e->out);
}

/*
 * Rows i, i + 1, ... (up to n) of the list at rows_idx, as records; returns
 * how many it took (at least one). *number is the number of the last row
 * written, counted up as each record ends, and names rows in messages.
 *
 * Rows are taken a block at a time and in stages: every row table of the
 * block, then all their fields, then the strings' bytes, then the records.
 * A million rows are too many to stay in the processor's caches, so nearly
 * every row table and string costs a memory access; one stage's accesses
 * do not depend on one another, so the processor overlaps them, where row
 * by row and field by field it waited for each in turn (about a third of
 * csv.write's time). Only plain list rows join a block; a record, an empty
 * or non-table row ends the block and is taken alone by add_row, which
 * also raises any error, in the order rows come.
 */
static lua_Integer add_row_block(enc *e, int rows_idx, lua_Integer i,
                                 lua_Integer n, lua_Integer *number) {
  lua_State *L = e->L;
  int base = lua_gettop(L);
  luaL_checkstack(L, ROW_BLOCK + VALUE_BLOCK, "csv rows");
  int widths[ROW_BLOCK];
  int k = 0, total = 0;
  while (k < ROW_BLOCK && i + k <= n) {
    if (lua_rawgeti(L, rows_idx, i + k) != LUA_TTABLE) {
      lua_pop(L, 1);
      break;
    }
    lua_Integer len = (lua_Integer)lua_rawlen(L, -1);
    /* With a header a list row has the header's width (see add_row). */
    lua_Integer width = e->header_idx ? e->n_header : len;
    if (len == 0 || len > width || width > VALUE_BLOCK - total) {
      lua_pop(L, 1);
      break;
    }
    widths[k++] = (int)width;
    total += (int)width;
  }
  if (k == 0) {
    add_row(e, base + 1, lua_rawgeti(L, rows_idx, i), *number + 1);
    ++*number;
    lua_settop(L, base);
    return 1;
  }
  int values = base + k + 1; /* stack index of the block's first field */
  int types[VALUE_BLOCK];
  const char *str[VALUE_BLOCK];
  size_t len[VALUE_BLOCK];
  for (int b = 0, v = 0; b < k; b++)
    for (int j = 1; j <= widths[b]; j++)
      types[v++] = lua_rawgeti(L, base + 1 + b, j);
  for (int v = 0; v < total; v++)
    if (types[v] == LUA_TSTRING) str[v] = lua_tolstring(L, values + v, &len[v]);
  for (int b = 0, v = 0; b < k; b++) {
    fl_csv_out_begin(e->out);
    for (int j = 0; j < widths[b]; j++, v++) {
      if (types[v] == LUA_TSTRING)
        fl_csv_out_field(e->out, str[v], len[v]);
      else
        add_value(e, values + v, types[v], *number + 1, j + 1, NULL);
    }
    fl_csv_out_end(e->out);
    ++*number;
  }
  lua_settop(L, base);
  return k;
}

/* Every row of the list at rows_idx; returns how many. */
static lua_Integer add_rows(enc *e, int rows_idx) {
  luaL_checktype(e->L, rows_idx, LUA_TTABLE);
  lua_Integer n = (lua_Integer)lua_rawlen(e->L, rows_idx), written = 0;
  for (lua_Integer i = 1; i <= n;)
    i += add_row_block(e, rows_idx, i, n, &written);
  return n;
}

static void check_oom(lua_State *L, const fl_csv_out *out) {
  if (out->buf.oom) luaL_error(L, "out of memory");
}

/* csv.encode(rows, [opts]) -> text */
static int csv_encode(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  opts o;
  get_opts(L, 2, "csv.encode", 1, &o);
  fl_csv_out *out = new_out(L, &o.d);
  enc e;
  enc_init(L, &e, "csv.encode", out, o.header_idx);
  add_header(&e);
  add_rows(&e, 1);
  check_oom(L, out);
  lua_pushlstring(L, out->buf.data ? out->buf.data : "", out->row_start);
  fl_csv_out_free(out);
  return 1;
}

/* csv.append(path, rows, [opts]) -> number of rows. Encoded whole first:
   the append is one writev. */
static int csv_append(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  luaL_checktype(L, 2, LUA_TTABLE);
  opts o;
  get_opts(L, 3, "csv.append", 1, &o);
  fl_csv_out *head = new_out(L, &o.d);
  fl_csv_out *out = new_out(L, &o.d);
  enc e;
  enc_init(L, &e, "csv.append", head, o.header_idx);
  add_header(&e);
  e.out = out;
  lua_Integer n = add_rows(&e, 2);
  check_oom(L, head);
  check_oom(L, out);
  int rc = fl_csv_append(path, head, out);
  int saved = errno;
  fl_csv_out_free(head);
  fl_csv_out_free(out);
  if (rc != 0) {
    /* A file that is not there could not be created: say whether its
       folder is to blame. */
    char why[FL_FS_WHY_SIZE];
    struct stat st;
    if (lstat(path, &st) != 0 && errno == ENOENT)
      fl_fs_create_why(why, sizeof why, path, saved);
    else
      snprintf(why, sizeof why, "%s", strerror(saved));
    return luaL_error(L, "csv.append: cannot append to '%s': %s", path, why);
  }
  lua_pushinteger(L, n);
  return 1;
}

/* ---- csv.writer and csv.write ------------------------------------------- */

/* User values: the path, the header list, its name set. */
enum { W_UV_PATH = 1, W_UV_HEADER, W_UV_SET, W_NUV = W_UV_SET };

typedef struct lwriter {
  fl_csv_out out;
  fl_atomic_file f; /* f.fp is set while the writer is open */
  lua_Integer rows;
  const char *fn; /* "csv.writer" or "csv.write", for messages */
} lwriter;

static void writer_abort(lwriter *w) {
  fl_atomic_abort(&w->f);
  fl_csv_out_free(&w->out);
}

static int writer_gc(lua_State *L) {
  writer_abort(luaL_checkudata(L, 1, WRITER_MT));
  return 0;
}

/* Raises "fn: cannot write 'path': why" for the writer at ud. */
static int writer_error(lua_State *L, lwriter *w, int ud, const char *why) {
  lua_getiuservalue(L, ud, W_UV_PATH);
  return luaL_error(L, "%s: cannot write '%s': %s", w->fn, lua_tostring(L, -1),
                    why);
}

static lwriter *check_open_writer(lua_State *L) {
  lwriter *w = luaL_checkudata(L, 1, WRITER_MT);
  if (!w->f.fp) {
    lua_getiuservalue(L, 1, W_UV_PATH);
    luaL_error(L, "csv.writer: the writer of '%s' is closed",
               lua_tostring(L, -1));
  }
  return w;
}

/* Hands the complete records to the temporary file; on failure discards
   the file and raises. Blocks go straight to the descriptor (nothing is
   ever written through the FILE, so its buffer stays empty): a 256 KiB
   block gains nothing from a copy into stdio's. */
static void writer_flush(lua_State *L, lwriter *w, int ud) {
  if (fl_csv_out_flush_fd(&w->out, fileno(w->f.fp)) != 0) {
    int err = errno ? errno : EIO;
    writer_abort(w);
    writer_error(L, w, ud, strerror(err));
  }
}

/* The encoder of the writer at index 1, with its header pushed. */
static void writer_enc(lua_State *L, lwriter *w, enc *e) {
  int header_idx = 0;
  if (lua_getiuservalue(L, 1, W_UV_HEADER) == LUA_TTABLE)
    header_idx = lua_gettop(L);
  *e = (enc){L, w->fn, &w->out, header_idx, 0, 0};
  if (header_idx) {
    lua_getiuservalue(L, 1, W_UV_SET);
    e->set_idx = lua_gettop(L);
    e->n_header = (lua_Integer)lua_rawlen(L, header_idx);
  }
}

/* writer:write(row) -> writer */
static int writer_write(lua_State *L) {
  lwriter *w = check_open_writer(L);
  luaL_checkany(L, 2);
  enc e;
  writer_enc(L, w, &e);
  add_row(&e, 2, lua_type(L, 2), w->rows + 1);
  w->rows++;
  if (w->out.row_start >= FLUSH_AT) writer_flush(L, w, 1);
  lua_settop(L, 1);
  return 1;
}

/* writer:write_rows(rows) -> writer */
static int writer_write_rows(lua_State *L) {
  lwriter *w = check_open_writer(L);
  luaL_checktype(L, 2, LUA_TTABLE);
  enc e;
  writer_enc(L, w, &e);
  lua_Integer n = (lua_Integer)lua_rawlen(L, 2);
  for (lua_Integer i = 1; i <= n;) {
    i += add_row_block(&e, 2, i, n, &w->rows);
    if (w->out.row_start >= FLUSH_AT) writer_flush(L, w, 1);
  }
  lua_settop(L, 1);
  return 1;
}

/* Commits the open writer at ud: the file appears, whole. */
static void writer_commit(lua_State *L, lwriter *w, int ud) {
  writer_flush(L, w, ud);
  int rc = fl_atomic_commit(&w->f);
  fl_csv_out_free(&w->out);
  if (rc != 0) writer_error(L, w, ud, w->f.why);
}

/* writer:close() -> number of rows. Closing a closed writer does nothing. */
static int writer_close(lua_State *L) {
  lwriter *w = luaL_checkudata(L, 1, WRITER_MT);
  if (!w->f.fp) return 0;
  writer_commit(L, w, 1);
  lua_pushinteger(L, w->rows);
  return 1;
}

/* writer:abort(): the temporary file is removed, the target left as it was. */
static int writer_abort_m(lua_State *L) {
  writer_abort(luaL_checkudata(L, 1, WRITER_MT));
  return 0;
}

/* A <close> variable commits when its scope ends normally and discards
   when it ends by an error. */
static int writer_close_mm(lua_State *L) {
  if (!lua_isnil(L, 2)) return writer_abort_m(L);
  lua_settop(L, 1);
  writer_close(L);
  return 0;
}

static int writer_tostring(lua_State *L) {
  lwriter *w = luaL_checkudata(L, 1, WRITER_MT);
  lua_getiuservalue(L, 1, W_UV_PATH);
  lua_pushfstring(L, "csv.writer (%s, %s)", lua_tostring(L, -1),
                  w->f.fp ? "open" : "closed");
  return 1;
}

/* Pushes an open writer for path (the string at path_idx) with the header
   written; raises when the temporary file cannot be made. */
static lwriter *new_writer(lua_State *L, int path_idx, const opts *o,
                           const char *fn) {
  lwriter *w = lua_newuserdatauv(L, sizeof *w, W_NUV);
  memset(w, 0, sizeof *w);
  w->fn = fn;
  fl_csv_out_init(&w->out, &o->d);
  luaL_setmetatable(L, WRITER_MT);
  int ud = lua_gettop(L);
  lua_pushvalue(L, path_idx);
  lua_setiuservalue(L, ud, W_UV_PATH);
  if (o->header_idx) {
    lua_pushvalue(L, o->header_idx);
    lua_setiuservalue(L, ud, W_UV_HEADER);
    push_name_set(L, o->header_idx);
    lua_setiuservalue(L, ud, W_UV_SET);
  }
  if (fl_atomic_open(&w->f, lua_tostring(L, path_idx)) != 0)
    writer_error(L, w, ud, w->f.why);
  if (o->header_idx) {
    enc e;
    enc_init(L, &e, fn, &w->out, o->header_idx);
    add_header(&e);
    lua_settop(L, ud);
  }
  return w;
}

/* csv.writer(path, [opts]) -> writer */
static int csv_writer(lua_State *L) {
  luaL_checkstring(L, 1);
  opts o;
  get_opts(L, 2, "csv.writer", 1, &o);
  new_writer(L, 1, &o, "csv.writer");
  return 1;
}

/*
 * csv.write(path, rows, [opts]) -> number of rows: a writer that takes every
 * row and commits. Rows stream to the temporary file in blocks, so the
 * output is never whole in memory; a bad row removes the temporary file
 * before the error goes on.
 */
static int csv_write(lua_State *L) {
  luaL_checkstring(L, 1);
  luaL_checktype(L, 2, LUA_TTABLE);
  opts o;
  get_opts(L, 3, "csv.write", 1, &o);
  lwriter *w = new_writer(L, 1, &o, "csv.write");
  int ud = lua_gettop(L);
  lua_pushcfunction(L, writer_write_rows);
  lua_pushvalue(L, ud);
  lua_pushvalue(L, 2);
  if (lua_pcall(L, 2, 0, 0) != LUA_OK) {
    writer_abort(w);
    return lua_error(L);
  }
  writer_commit(L, w, ud);
  lua_pushinteger(L, w->rows);
  return 1;
}

int luaopen_flowlua_csv(lua_State *L) {
  static const luaL_Reg reader_meta[] = {
      {"__gc", reader_gc}, {"__close", reader_gc}, {NULL, NULL}};
  static const luaL_Reg out_meta[] = {{"__gc", out_gc}, {NULL, NULL}};
  static const luaL_Reg writer_meta[] = {{"__gc", writer_gc},
                                         {"__close", writer_close_mm},
                                         {"__tostring", writer_tostring},
                                         {NULL, NULL}};
  static const luaL_Reg writer_methods[] = {{"write", writer_write},
                                            {"write_row", writer_write},
                                            {"write_rows", writer_write_rows},
                                            {"close", writer_close},
                                            {"abort", writer_abort_m},
                                            {NULL, NULL}};
  static const luaL_Reg funcs[] = {{"read", csv_read},     {"rows", csv_rows},
                                   {"decode", csv_decode}, {"write", csv_write},
                                   {"writer", csv_writer}, {"append", csv_append},
                                   {"encode", csv_encode}, {NULL, NULL}};
  luaL_newmetatable(L, READER_MT);
  luaL_setfuncs(L, reader_meta, 0);
  luaL_newmetatable(L, OUT_MT);
  luaL_setfuncs(L, out_meta, 0);
  luaL_newmetatable(L, WRITER_MT);
  luaL_setfuncs(L, writer_meta, 0);
  luaL_newlib(L, writer_methods);
  lua_setfield(L, -2, "__index");
  lua_pop(L, 3);
  luaL_newlib(L, funcs);
  return 1;
}
