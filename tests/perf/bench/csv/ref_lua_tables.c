/*
 * ref_lua_tables.c — the floor for any Lua binding of a CSV reader: libcsv
 * callbacks pushing each field straight into Lua tables through the C API,
 * in a bare lua_State (no flowlua), building the same list of rows as
 * csv.read. What csv.read costs beyond this is flowlua's own overhead.
 *
 *   cc -O2 ref_lua_tables.c -o ref_lua_tables -lcsv $(pkg-config --cflags --libs lua5.4)
 *   ./ref_lua_tables FILE [gcstop]
 *
 *   ./ref_lua_tables FILE stream
 *
 * stream: a plain streaming binding, against csv.rows: each row table,
 * once complete, is handed to a Lua function that adds up its fields'
 * lengths (bench.lua's loop body) and is garbage afterwards; no list is
 * kept. It is what a first binding of libcsv for Lua does (a table and a
 * string per field through the C API, Lua's default allocator); csv.rows
 * does the same work and also tracks lines for its errors.
 *
 * Prints "rows N seconds S rows_per_s R".
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <csv.h>
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

typedef struct state {
  lua_State *L;
  lua_Integer rows, fields;
  int stream; /* hand each row to the function at stack index 1 */
} state;

static void on_field(void *s, size_t len, void *data) {
  state *st = data;
  if (st->fields == 0) lua_createtable(st->L, 4, 0);
  lua_pushlstring(st->L, s, len);
  lua_rawseti(st->L, -2, ++st->fields);
}

static void on_row(int c, void *data) {
  (void)c;
  state *st = data;
  if (st->fields == 0) lua_createtable(st->L, 0, 0);
  st->fields = 0;
  ++st->rows;
  if (!st->stream) {
    lua_rawseti(st->L, -2, st->rows);
    return;
  }
  lua_pushvalue(st->L, 1);
  lua_insert(st->L, -2);
  lua_call(st->L, 1, 0);
}

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s FILE [gcstop|stream]\n", argv[0]);
    return 2;
  }
  lua_State *L = luaL_newstate();
  state st = {L, 0, 0, argc > 2 && strcmp(argv[2], "stream") == 0};
  if (st.stream) {
    luaL_openlibs(L);
    if (luaL_dostring(L, "local total = 0\n"
                         "return function(r)\n"
                         "  for i = 1, #r do total = total + #r[i] end\n"
                         "end") != LUA_OK) {
      fprintf(stderr, "%s\n", lua_tostring(L, -1));
      return 1;
    }
  }
  double t0 = now();
  if (argc > 2 && !st.stream) lua_gc(L, LUA_GCSTOP);
  FILE *fp = fopen(argv[1], "rb");
  if (!fp) {
    perror(argv[1]);
    return 1;
  }
  struct csv_parser p;
  csv_init(&p, CSV_STRICT | CSV_STRICT_FINI);
  if (!st.stream) lua_newtable(L);
  static char buf[1 << 16];
  size_t got;
  while ((got = fread(buf, 1, sizeof buf, fp)) > 0)
    if (csv_parse(&p, buf, got, on_field, on_row, &st) != got) return 1;
  csv_fini(&p, on_field, on_row, &st);
  csv_free(&p);
  fclose(fp);
  double t = now() - t0;
  printf("rows %lld seconds %.4f rows_per_s %.0f\n", (long long)st.rows, t,
         (double)st.rows / t);
  lua_close(L);
  return 0;
}
