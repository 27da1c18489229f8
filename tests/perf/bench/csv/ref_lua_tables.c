/*
 * ref_lua_tables.c — the floor for any Lua binding of a CSV reader: libcsv
 * callbacks pushing each field straight into Lua tables through the C API,
 * in a bare lua_State (no flowlua), building the same list of rows as
 * csv.read. What csv.read costs beyond this is flowlua's own overhead.
 *
 *   cc -O2 ref_lua_tables.c -o ref_lua_tables -lcsv $(pkg-config --cflags --libs lua5.4)
 *   ./ref_lua_tables FILE [gcstop]
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

typedef struct state {
  lua_State *L;
  lua_Integer rows, fields;
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
  lua_rawseti(st->L, -2, ++st->rows);
  st->fields = 0;
}

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s FILE [gcstop]\n", argv[0]);
    return 2;
  }
  lua_State *L = luaL_newstate();
  state st = {L, 0, 0};
  double t0 = now();
  if (argc > 2) lua_gc(L, LUA_GCSTOP);
  FILE *fp = fopen(argv[1], "rb");
  if (!fp) {
    perror(argv[1]);
    return 1;
  }
  struct csv_parser p;
  csv_init(&p, CSV_STRICT | CSV_STRICT_FINI);
  lua_newtable(L);
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
