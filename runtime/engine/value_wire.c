/*
 * value_wire.c — Lua values to the worker wire's value form and back (see
 * value_wire.h for what crosses and what is refused).
 *
 * The encoder never raises: it reads tables with raw accesses and lua_next,
 * which neither call metamethods nor allocate, and it checks the Lua stack
 * with lua_checkstack. The decoder allocates Lua values, so it runs in a
 * protected call. The format itself (tags, counts, limits) is core/wire.c's.
 */
#include "value_wire.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

#include "value_json.h"

/* ---- encoding ------------------------------------------------------------ */

/* Where the encoder is: a table being encoded, and the element of it being
   encoded now (a key on the Lua stack, or an array index). */
typedef struct step {
  const void *table;
  int key;         /* stack index of the key; 0 for an array element */
  lua_Integer idx; /* the array element */
} step;

/* Steps kept in the encoder itself; deeper values get FL_WIRE_DEPTH_MAX
   of them from the heap (24 KB), which most values never need. */
#define STEPS_NEAR 32

typedef struct wenc {
  lua_State *L;
  fl_buf *out;
  fl_buf *why;
  const char *label;
  const void *array_mt; /* json.array_mt, or NULL when not registered */
  int depth, depth_max; /* tables open, and how many may be */
  step *at;             /* near, or from the heap past STEPS_NEAR */
  step near[STEPS_NEAR];
} wenc;

/* A path longer than this says little: its end is kept. */
#define PATH_MAX_SHOWN 160
#define PATH_TAIL_KEPT 150
/* Of a long string key, this much is shown. */
#define KEY_MAX_SHOWN 40

static int is_identifier(const char *s, size_t n) {
  if (n == 0 || (s[0] >= '0' && s[0] <= '9')) return 0;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (!(c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
          (c >= '0' && c <= '9')))
      return 0;
  }
  return 1;
}

/* ["odd key"]: quotes, backslashes and control bytes escaped as Lua would
   read them, long keys cut. */
static void add_quoted_key(fl_buf *b, const char *s, size_t n) {
  fl_buf_add(b, "[\"", 2);
  size_t shown = n > KEY_MAX_SHOWN ? KEY_MAX_SHOWN : n;
  for (size_t i = 0; i < shown; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c == '"' || c == '\\')
      fl_buf_addf(b, "\\%c", c);
    else if (c < 0x20 || c == 0x7f)
      fl_buf_addf(b, "\\x%02x", c);
    else
      fl_buf_addc(b, (char)c);
  }
  if (shown < n) fl_buf_adds(b, "...");
  fl_buf_add(b, "\"]", 2);
}

/* The path of the element being encoded `levels` tables down, as
   rows[3].f. Keys are read without lua_tolstring, which would turn a
   number key into a string under lua_next. */
static void add_path(const wenc *e, int levels, fl_buf *b) {
  lua_State *L = e->L;
  for (int k = 0; k < levels; k++) {
    const step *s = &e->at[k];
    if (!s->key) {
      fl_buf_addf(b, "[%lld]", (long long)s->idx);
    } else if (lua_type(L, s->key) == LUA_TSTRING) {
      size_t n;
      const char *name = lua_tolstring(L, s->key, &n);
      if (is_identifier(name, n) && n <= KEY_MAX_SHOWN) {
        if (k > 0) fl_buf_addc(b, '.');
        fl_buf_add(b, name, n);
      } else {
        add_quoted_key(b, name, n);
      }
    } else if (lua_isinteger(L, s->key)) {
      fl_buf_addf(b, "[%lld]", (long long)lua_tointeger(L, s->key));
    } else {
      fl_buf_addf(b, "[%.17g]", (double)lua_tonumber(L, s->key));
    }
  }
}

/* Gives why "LABEL at 'PATH' WHAT" (or "LABEL WHAT" at the top) and
   returns -1. */
static int refuse(wenc *e, int levels, const char *what) {
  fl_buf_adds(e->why, e->label);
  if (levels > 0) {
    fl_buf path = FL_BUF_INIT;
    add_path(e, levels, &path);
    const char *s = fl_buf_str(&path);
    size_t n = path.len;
    fl_buf_adds(e->why, " at '");
    if (n > PATH_MAX_SHOWN) {
      const char *tail = s + n - PATH_TAIL_KEPT;
      while ((*tail & 0xC0) == 0x80) tail++; /* not inside a character */
      fl_buf_adds(e->why, "...");
      fl_buf_adds(e->why, tail);
    } else {
      fl_buf_add(e->why, s, n);
    }
    fl_buf_addc(e->why, '\'');
    fl_buf_free(&path);
  }
  fl_buf_addc(e->why, ' ');
  fl_buf_adds(e->why, what);
  return -1;
}

static int encode_value(wenc *e, int idx);

static int has_array_mt(wenc *e, int idx) {
  if (!e->array_mt || !lua_getmetatable(e->L, idx)) return 0;
  int marked = lua_topointer(e->L, -1) == e->array_mt;
  lua_pop(e->L, 1);
  return marked;
}

/* The table's array part: its values from key 1 up to the first nil; for
   a json.array_mt table up to its border (lua_rawlen), holes sent as nil,
   since that border is the length its JSON array gets, and the decoder
   makes a table of that border. */
static int encode_array_part(wenc *e, int idx, step *s, int marked, lua_Integer *n) {
  lua_State *L = e->L;
  lua_Integer border = marked ? (lua_Integer)lua_rawlen(L, idx) : 0;
  for (*n = 0;; ++*n) {
    s->idx = *n + 1;
    if (lua_rawgeti(L, idx, *n + 1) == LUA_TNIL && *n >= border) {
      lua_pop(L, 1);
      return 0;
    }
    if (encode_value(e, lua_gettop(L)) != 0) return -1;
    lua_pop(L, 1);
  }
}

static int encode_key(wenc *e, int key) {
  lua_State *L = e->L;
  switch (lua_type(L, key)) {
  case LUA_TSTRING: {
    size_t n;
    const char *s = lua_tolstring(L, key, &n);
    fl_wire_put_string(e->out, s, n);
    return 0;
  }
  case LUA_TNUMBER:
    if (lua_isinteger(L, key))
      fl_wire_put_int(e->out, (int64_t)lua_tointeger(L, key));
    else
      fl_wire_put_double(e->out, (double)lua_tonumber(L, key));
    return 0;
  default: {
    char what[96];
    snprintf(what, sizeof what, "has a %s key (table keys must be strings or numbers)",
             luaL_typename(L, key));
    return refuse(e, e->depth - 1, what);
  }
  }
}

/* Every other pair: keys 1..narr were the array part. */
static int encode_hash_part(wenc *e, int idx, step *s, lua_Integer narr, uint64_t *n) {
  lua_State *L = e->L;
  *n = 0;
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    int top = lua_gettop(L);
    if (lua_isinteger(L, top - 1)) {
      lua_Integer k = lua_tointeger(L, top - 1);
      if (k >= 1 && k <= narr) {
        lua_pop(L, 1);
        continue;
      }
    }
    s->key = top - 1;
    if (encode_key(e, top - 1) != 0 || encode_value(e, top) != 0) return -1;
    lua_pop(L, 1);
    ++*n;
  }
  return 0;
}

static int encode_table(wenc *e, int idx) {
  lua_State *L = e->L;
  const void *t = lua_topointer(L, idx);
  for (int k = 0; k < e->depth; k++)
    if (e->at[k].table == t)
      return refuse(e, e->depth, "is a table that contains itself (a cycle)");
  if (e->depth >= e->depth_max) {
    char what[64];
    snprintf(what, sizeof what, "nests tables deeper than %d", FL_WIRE_DEPTH_MAX);
    return refuse(e, e->depth, what);
  }
  if (!lua_checkstack(L, 6))
    return refuse(e, e->depth, "nests tables too deep for the Lua stack");
  if (e->depth == STEPS_NEAR && e->at == e->near) {
    step *all = malloc(FL_WIRE_DEPTH_MAX * sizeof *all);
    if (!all) return refuse(e, e->depth, "nests tables deeper than memory allows");
    memcpy(all, e->near, sizeof e->near);
    e->at = all;
  }
  step *s = &e->at[e->depth++];
  s->table = t;
  s->key = 0;
  int marked = has_array_mt(e, idx);
  size_t mark = fl_wire_table_begin(e->out, marked ? FL_WIRE_ARRAY : FL_WIRE_TABLE);
  lua_Integer narr;
  uint64_t nhash;
  if (encode_array_part(e, idx, s, marked, &narr) != 0) return -1;
  s->key = 0;
  if (encode_hash_part(e, idx, s, narr, &nhash) != 0) return -1;
  fl_wire_table_end(e->out, mark, (uint64_t)narr, nhash);
  e->depth--;
  return 0;
}

static int encode_value(wenc *e, int idx) {
  lua_State *L = e->L;
  switch (lua_type(L, idx)) {
  case LUA_TNIL:
    fl_wire_put_tag(e->out, FL_WIRE_NIL);
    return 0;
  case LUA_TBOOLEAN:
    fl_wire_put_tag(e->out, lua_toboolean(L, idx) ? FL_WIRE_TRUE : FL_WIRE_FALSE);
    return 0;
  case LUA_TNUMBER:
    if (lua_isinteger(L, idx))
      fl_wire_put_int(e->out, (int64_t)lua_tointeger(L, idx));
    else
      fl_wire_put_double(e->out, (double)lua_tonumber(L, idx));
    return 0;
  case LUA_TSTRING: {
    size_t n;
    const char *s = lua_tolstring(L, idx, &n);
    fl_wire_put_string(e->out, s, n);
    return 0;
  }
  case LUA_TTABLE:
    return encode_table(e, idx);
  case LUA_TLIGHTUSERDATA:
    if (lua_touserdata(L, idx) == NULL) {
      fl_wire_put_tag(e->out, FL_WIRE_JSON_NULL);
      return 0;
    }
    if (lua_touserdata(L, idx) == fl_json_empty_array()) {
      fl_wire_put_tag(e->out, FL_WIRE_EMPTY_ARRAY);
      return 0;
    }
    return refuse(e, e->depth, "is a light userdata");
  case LUA_TFUNCTION:
    return refuse(e, e->depth, "is a function");
  case LUA_TTHREAD:
    return refuse(e, e->depth, "is a thread (a coroutine)");
  default:
    return refuse(e, e->depth, "is a userdata");
  }
}

static void enc_init(wenc *e, lua_State *L, fl_buf *out, fl_buf *why) {
  e->L = L;
  e->out = out;
  e->why = why;
  e->depth = 0;
  e->depth_max = FL_WIRE_DEPTH_MAX;
  e->at = e->near;
  /* lua_getfield on the registry: a raw string key, no metamethod. */
  lua_getfield(L, LUA_REGISTRYINDEX, FL_JSON_ARRAY_MT);
  e->array_mt = lua_istable(L, -1) ? lua_topointer(L, -1) : NULL;
  lua_pop(L, 1);
}

/* Ends an encoding: the stack as it was, out as it was on failure. */
static int enc_done(wenc *e, int top, size_t len, int status) {
  if (e->at != e->near) free(e->at);
  lua_settop(e->L, top);
  if (status == 0 && e->out->oom) {
    fl_buf_adds(e->why, e->label);
    fl_buf_adds(e->why, ": not enough memory to encode it");
    status = -1;
  }
  if (status != 0) {
    e->out->len = len;
    if (e->out->data) e->out->data[len] = '\0';
  }
  return status;
}

int fl_wire_encode_lua(lua_State *L, int idx, const char *label, fl_buf *out,
                       fl_buf *why) {
  int top = lua_gettop(L);
  size_t len = out->len;
  idx = lua_absindex(L, idx);
  wenc e;
  enc_init(&e, L, out, why);
  e.label = label;
  return enc_done(&e, top, len, encode_value(&e, idx));
}

int fl_wire_encode_lua_args(lua_State *L, int first, int n, fl_buf *out, fl_buf *why) {
  int top = lua_gettop(L);
  size_t len = out->len;
  first = lua_absindex(L, first);
  wenc e;
  enc_init(&e, L, out, why);
  e.depth_max = FL_WIRE_DEPTH_MAX - 1; /* the list of arguments is a table */
  size_t mark = fl_wire_table_begin(out, FL_WIRE_TABLE);
  int status = 0;
  char label[32] = "arguments";
  e.label = label;
  for (int i = 0; i < n && status == 0; i++) {
    snprintf(label, sizeof label, "argument %d", i + 1);
    status = encode_value(&e, first + i);
  }
  if (status == 0) fl_wire_table_end(out, mark, (uint64_t)n, 0);
  return enc_done(&e, top, len, status);
}

/* ---- decoding ------------------------------------------------------------ */

/* Sizes announced by the bytes are hints only up to this: beyond it the
   table grows as its elements really arrive, so that a lying count in a
   big input costs no more than the elements that follow it. */
#define HINT_ARRAY_MAX ((uint64_t)1 << 20)
#define HINT_HASH_MAX ((uint64_t)1 << 16)

typedef struct wdec {
  fl_wire_in in;
  int n; /* arguments pushed, for fl_wire_decode_lua_args */
} wdec;

__attribute__((noreturn)) static void dec_fail(lua_State *L, wdec *d) {
  luaL_error(L, "%s", d->in.err);
  __builtin_unreachable();
}

static void decode_value(lua_State *L, wdec *d);

static void push_scalar(lua_State *L, const fl_wire_item *it) {
  switch (it->tag) {
  case FL_WIRE_NIL: lua_pushnil(L); break;
  case FL_WIRE_FALSE: lua_pushboolean(L, 0); break;
  case FL_WIRE_TRUE: lua_pushboolean(L, 1); break;
  case FL_WIRE_INT: lua_pushinteger(L, (lua_Integer)it->i); break;
  case FL_WIRE_DOUBLE: lua_pushnumber(L, (lua_Number)it->d); break;
  case FL_WIRE_STRING: lua_pushlstring(L, it->s, it->len); break;
  case FL_WIRE_JSON_NULL: lua_pushlightuserdata(L, NULL); break;
  default: /* FL_WIRE_EMPTY_ARRAY: fl_wire_get_item knows no other */
    lua_pushlightuserdata(L, (void *)fl_json_empty_array());
  }
}

static void decode_table(lua_State *L, wdec *d, const fl_wire_item *it) {
  if (fl_wire_enter(&d->in, it) != 0) dec_fail(L, d);
  luaL_checkstack(L, 4, "tables nested in a worker's value");
  lua_createtable(L, (int)(it->narr < HINT_ARRAY_MAX ? it->narr : HINT_ARRAY_MAX),
                  (int)(it->nhash < HINT_HASH_MAX ? it->nhash : HINT_HASH_MAX));
  for (uint64_t k = 1; k <= it->narr; k++) {
    decode_value(L, d);
    lua_rawseti(L, -2, (lua_Integer)k);
  }
  for (uint64_t k = 0; k < it->nhash; k++) {
    fl_wire_item key;
    if (fl_wire_get_key(&d->in, &key) != 0) dec_fail(L, d);
    push_scalar(L, &key);
    decode_value(L, d);
    lua_rawset(L, -3);
  }
  if (it->tag == FL_WIRE_ARRAY) {
    /* Made here when the state has not loaded flow.json yet; flow.json
       then finds and keeps it (luaL_newmetatable). */
    luaL_newmetatable(L, FL_JSON_ARRAY_MT);
    lua_setmetatable(L, -2);
  }
  fl_wire_leave(&d->in);
}

static void decode_value(lua_State *L, wdec *d) {
  fl_wire_item it;
  if (fl_wire_get_item(&d->in, &it) != 0) dec_fail(L, d);
  if (it.tag == FL_WIRE_TABLE || it.tag == FL_WIRE_ARRAY)
    decode_table(L, d, &it);
  else
    push_scalar(L, &it);
}

static void check_end(lua_State *L, wdec *d) {
  if (d->in.p != d->in.end) {
    snprintf(d->in.err, sizeof d->in.err, "%zu bytes after the value at offset %zu",
             (size_t)(d->in.end - d->in.p), (size_t)(d->in.p - d->in.start));
    dec_fail(L, d);
  }
}

static int decode_protected(lua_State *L) {
  wdec *d = lua_touserdata(L, 1);
  lua_settop(L, 0);
  decode_value(L, d);
  check_end(L, d);
  return 1;
}

static int decode_args_protected(lua_State *L) {
  wdec *d = lua_touserdata(L, 1);
  lua_settop(L, 0);
  fl_wire_item it;
  const unsigned char *at = d->in.p;
  if (fl_wire_get_item(&d->in, &it) != 0) dec_fail(L, d);
  if (it.tag != FL_WIRE_TABLE || it.nhash != 0 || it.narr > INT_MAX / 2) {
    snprintf(d->in.err, sizeof d->in.err,
             "not a list of arguments (a table of values only) at offset %zu",
             (size_t)(at - d->in.start));
    dec_fail(L, d);
  }
  if (fl_wire_enter(&d->in, &it) != 0) dec_fail(L, d);
  luaL_checkstack(L, (int)it.narr + 4, "too many arguments");
  for (uint64_t k = 0; k < it.narr; k++) decode_value(L, d);
  fl_wire_leave(&d->in);
  check_end(L, d);
  d->n = (int)it.narr;
  return (int)it.narr;
}

static int run_decode(lua_State *L, lua_CFunction fn, wdec *d, int nresults,
                      fl_buf *why) {
  lua_pushcfunction(L, fn);
  lua_pushlightuserdata(L, d);
  int status = lua_pcall(L, 1, nresults, 0);
  if (status != LUA_OK) {
    const char *msg = lua_tostring(L, -1);
    fl_buf_adds(why, msg ? msg : "not enough memory");
    lua_pop(L, 1);
    return -1;
  }
  return 0;
}

int fl_wire_decode_lua(lua_State *L, const char *data, size_t len, fl_buf *why) {
  wdec d;
  fl_wire_in_init(&d.in, data, len);
  d.n = 0;
  return run_decode(L, decode_protected, &d, 1, why);
}

int fl_wire_decode_lua_args(lua_State *L, const char *data, size_t len, int *n,
                            fl_buf *why) {
  wdec d;
  fl_wire_in_init(&d.in, data, len);
  d.n = 0;
  *n = 0;
  if (run_decode(L, decode_args_protected, &d, LUA_MULTRET, why) != 0) return -1;
  *n = d.n;
  return 0;
}
