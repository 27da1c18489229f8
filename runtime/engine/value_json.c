/*
 * value_json.c — Lua values to JSON and back, for flow.json (runtime/lua)
 * and for task results kept in the history (record.c, resume.c).
 *
 * Tables encode as cjson encodes them (arrays with a few holes included),
 * plus OpenResty's json.array_mt and json.empty_array for empty arrays.
 *
 * The decoder is a recursive descent straight into Lua values. It differs
 * from lua-cjson 2.1.0 where that one loses data: numbers written without a
 * fraction or exponent that fit in 64 bits become Lua integers (4, not 4.0),
 * and integers are encoded exactly (cjson keeps 14 digits). The text is
 * RFC 8259, nothing more: no NaN, no leading zeros, no raw control
 * characters in strings. Every error names the problem and its byte offset,
 * line and column.
 */
#include "value_json.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

#include "buf.h"
#include "engine.h"
#include "json.h"

/* json.empty_array is a light userdata pointing here; it encodes as []. */
static const char empty_array_sentinel;

const void *fl_json_empty_array(void) { return &empty_array_sentinel; }

/* Integer-keyed tables with holes encode as arrays (the holes as null)
   unless they are this sparse: cjson's defaults, ratio 2 and safe 10. */
#define SPARSE_RATIO 2
#define SPARSE_SAFE 10
/* Tables nested deeper than this are refused both ways (cjson's limit);
   it is also what stops an encoder walking round a cycle. */
#define DEPTH_MAX 1000

/* ---- decoding ------------------------------------------------------------ */

typedef struct dec {
  lua_State *L;
  const char *text;
  const char *end;  /* *end is '\0': scanning stops there without a check */
  const char *fn;   /* "json.decode" or "json.read", for messages */
  const char *path; /* the file json.read reads, or NULL */
  int depth, deepest; /* hints above `deepest` are not set yet */
  /* Per depth, the size of the last array and object finished there: the
     next one at that depth is likely the same shape (a list of records),
     and a table made the right size never rehashes as it fills. */
  int arr_hint[DEPTH_MAX + 1], obj_hint[DEPTH_MAX + 1];
} dec;

/* Sizes hinted are capped: a wrong guess costs little memory. */
#define HINT_MAX 64

static const unsigned char is_space[256] = {
    [' '] = 1, ['\t'] = 1, ['\n'] = 1, ['\r'] = 1};

/* Bytes a string holds as they are: everything but '"', '\' and the
   control characters (which include the closing '\0'). */
#define ONES16 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1
static const unsigned char is_plain[256] = {
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 0x00 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 0x10 */
    1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 0x20: '"' */
    ONES16,                                         /* 0x30 */
    ONES16,                                         /* 0x40 */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1, /* 0x50: '\' */
    ONES16, ONES16,                                 /* 0x60 */
    ONES16, ONES16, ONES16, ONES16,                 /* 0x80 */
    ONES16, ONES16, ONES16, ONES16};                /* 0xC0 */

#define SKIP_SPACE(p)                                                          \
  while (is_space[(unsigned char)*(p)]) (p)++

/* Raises "fn: ['path': ]what at offset N (line L, column C)". An error at
   the end of the text is always the text's fault for stopping there. */
__attribute__((noreturn)) static void dec_fail(const dec *d, const char *at,
                                               const char *what) {
  if (at >= d->end) {
    at = d->end;
    what = "unexpected end of input";
  }
  size_t line, col, off = (size_t)(at - d->text);
  fl_json_position(d->text, off, &line, &col);
  luaL_error(d->L, "%s: %s%s%s%s at offset %I (line %I, column %I)", d->fn,
             d->path ? "'" : "", d->path ? d->path : "",
             d->path ? "': " : "", what, (lua_Integer)off, (lua_Integer)line,
             (lua_Integer)col);
  __builtin_unreachable();
}

static const char *parse_value(dec *d, const char *p);

/* The 4 hex digits at p, or -1; *bad is the first byte that is not one. */
static long hex4(const char *p, const char **bad) {
  long v = 0;
  for (int i = 0; i < 4; i++) {
    char c = p[i];
    int h = c >= '0' && c <= '9'   ? c - '0'
            : c >= 'a' && c <= 'f' ? c - 'a' + 10
            : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                   : -1;
    if (h < 0) {
      *bad = p + i;
      return -1;
    }
    v = v * 16 + h;
  }
  return v;
}

/* The escape at p (a '\'): appends what it stands for, returns the byte
   after it. */
static const char *add_escape(dec *d, const char *p, luaL_Buffer *b) {
  const char *bad;
  char c;
  switch (p[1]) {
  case '"': c = '"'; break;
  case '\\': c = '\\'; break;
  case '/': c = '/'; break;
  case 'b': c = '\b'; break;
  case 'f': c = '\f'; break;
  case 'n': c = '\n'; break;
  case 'r': c = '\r'; break;
  case 't': c = '\t'; break;
  case 'u': {
    long cp = hex4(p + 2, &bad);
    if (cp < 0) dec_fail(d, bad >= d->end ? bad : p,
               "invalid \\u escape (4 hex digits expected)");
    const char *next = p + 6;
    if (cp >= 0xDC00 && cp <= 0xDFFF)
      dec_fail(d, p, "invalid \\u escape (a low surrogate without a high one)");
    if (cp >= 0xD800 && cp <= 0xDBFF) {
      /* UTF-16 spelling of a code point above U+FFFF: a pair is needed. */
      long lo = -1;
      if (next[0] == '\\' && next[1] == 'u') lo = hex4(next + 2, &bad);
      else bad = next[0] == '\\' ? next + 1 : next;
      if (lo < 0xDC00 || lo > 0xDFFF)
        dec_fail(d, lo < 0 && bad >= d->end ? bad : p,
                 "invalid \\u escape (a high surrogate without a low one)");
      cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
      next += 6;
    }
    char u[4];
    luaL_addlstring(b, u, (size_t)fl_json_utf8((uint32_t)cp, u));
    return next;
  }
  default:
    dec_fail(d, p + 1 >= d->end ? p + 1 : p, "invalid escape in string");
  }
  luaL_addchar(b, c);
  return p + 2;
}

/* A string with escapes: s is its first byte, p the first byte that needs
   more than copying. Pushes it; returns the byte after the closing quote. */
static const char *parse_string_escaped(dec *d, const char *s, const char *p) {
  luaL_Buffer b;
  luaL_buffinit(d->L, &b);
  for (;;) {
    luaL_addlstring(&b, s, (size_t)(p - s));
    if (*p == '"') break;
    if (*p != '\\') dec_fail(d, p, "control character in string (escape it)");
    s = p = add_escape(d, p, &b);
    while (is_plain[(unsigned char)*p]) p++;
  }
  luaL_pushresult(&b);
  return p + 1;
}

/* The string whose opening quote is at p. Most have no escape and are
   pushed straight from the text. */
static const char *parse_string(dec *d, const char *p) {
  const char *s = ++p;
  for (;;) { /* unrolled: strings are most of a typical body */
    if (!is_plain[(unsigned char)p[0]]) break;
    if (!is_plain[(unsigned char)p[1]]) { p += 1; break; }
    if (!is_plain[(unsigned char)p[2]]) { p += 2; break; }
    if (!is_plain[(unsigned char)p[3]]) { p += 3; break; }
    p += 4;
  }
  if (*p != '"') return parse_string_escaped(d, s, p);
  lua_pushlstring(d->L, s, (size_t)(p - s));
  return p + 1;
}

static const char *parse_number(dec *d, const char *p) {
  fl_json_number n;
  const char *at, *msg;
  const char *q = fl_json_parse_number(p, &n, &at, &msg);
  if (!q) dec_fail(d, at, msg);
  if (n.is_int)
    lua_pushinteger(d->L, (lua_Integer)n.i);
  else
    lua_pushnumber(d->L, (lua_Number)n.d);
  return q;
}

/* One of true, false, null at p; `word` is the whole word. */
static const char *parse_literal(dec *d, const char *p, const char *word,
                                 size_t n, const char *msg) {
  for (size_t i = 1; i < n; i++)
    if (p[i] != word[i]) dec_fail(d, p + i >= d->end ? p + i : p, msg);
  return p + n;
}

static void enter(dec *d, const char *p) {
  if (++d->depth > d->deepest) {
    if (d->depth > DEPTH_MAX)
      dec_fail(d, p, "arrays and objects nested deeper than 1000");
    d->deepest = d->depth;
    d->arr_hint[d->depth] = d->obj_hint[d->depth] = 0;
  }
  luaL_checkstack(d->L, 4, "JSON nesting");
}

static const char *parse_array(dec *d, const char *p) {
  lua_State *L = d->L;
  enter(d, p);
  lua_createtable(L, d->arr_hint[d->depth], 0);
  p++;
  SKIP_SPACE(p);
  lua_Integer n = 0;
  if (*p != ']') {
    for (;;) {
      p = parse_value(d, p);
      lua_rawseti(L, -2, ++n);
      SKIP_SPACE(p);
      if (*p == ']') break;
      if (*p != ',') dec_fail(d, p, "expected ',' or ']'");
      p++;
      SKIP_SPACE(p);
    }
  }
  d->arr_hint[d->depth--] = n < HINT_MAX ? (int)n : HINT_MAX;
  return p + 1;
}

static const char *parse_object(dec *d, const char *p) {
  lua_State *L = d->L;
  enter(d, p);
  lua_createtable(L, 0, d->obj_hint[d->depth]);
  p++;
  SKIP_SPACE(p);
  int n = 0;
  if (*p != '}') {
    for (const char *expect = "expected a string key or '}'";;
         expect = "expected a string key") {
      n++;
      if (*p != '"') dec_fail(d, p, expect);
      p = parse_string(d, p);
      SKIP_SPACE(p);
      if (*p != ':') dec_fail(d, p, "expected ':'");
      p++;
      SKIP_SPACE(p);
      p = parse_value(d, p);
      lua_rawset(L, -3);
      SKIP_SPACE(p);
      if (*p == '}') break;
      if (*p != ',') dec_fail(d, p, "expected ',' or '}'");
      p++;
      SKIP_SPACE(p);
    }
  }
  d->obj_hint[d->depth--] = n < HINT_MAX ? n : HINT_MAX;
  return p + 1;
}

/* The value at p (no space before it). Pushes it; returns the byte after. */
static const char *parse_value(dec *d, const char *p) {
  switch (*p) {
  case '"':
    return parse_string(d, p);
  case '{':
    return parse_object(d, p);
  case '[':
    return parse_array(d, p);
  case '-': case '0': case '1': case '2': case '3': case '4':
  case '5': case '6': case '7': case '8': case '9':
    return parse_number(d, p);
  case 't':
    p = parse_literal(d, p, "true", 4, "invalid literal (expected 'true')");
    lua_pushboolean(d->L, 1);
    return p;
  case 'f':
    p = parse_literal(d, p, "false", 5, "invalid literal (expected 'false')");
    lua_pushboolean(d->L, 0);
    return p;
  case 'n':
    p = parse_literal(d, p, "null", 4, "invalid literal (expected 'null')");
    lua_pushlightuserdata(d->L, NULL);
    return p;
  default:
    dec_fail(d, p, "expected a value");
  }
}

/* Decodes text[0..len) (text[len] must be '\0') and pushes the value. */
void fl_json_decode_lua(lua_State *L, const char *text, size_t len,
                        const char *fn, const char *path) {
  dec d;
  d.L = L;
  d.text = text;
  d.end = text + len;
  d.fn = fn;
  d.path = path;
  d.depth = d.deepest = 0;
  const char *p = text;
  if (len >= 3 && memcmp(p, "\xEF\xBB\xBF", 3) == 0) p += 3; /* a BOM */
  SKIP_SPACE(p);
  p = parse_value(&d, p);
  SKIP_SPACE(p);
  if (p != d.end) dec_fail(&d, p, "unexpected data after the value");
}

/* ---- encoding ------------------------------------------------------------ */

/* Where the encoder is, for messages: a table being encoded, and the element
   of it being encoded now (an object key on the Lua stack, or an index). */
typedef struct frame {
  const void *table;
  int key;         /* stack index of the key; 0 for an array element */
  lua_Integer idx; /* the array element */
} frame;

typedef struct enc {
  lua_State *L;
  fl_buf *b;
  const char *fn;
  const void *array_mt; /* json.array_mt */
  int depth;            /* tables open */
  int indent;           /* spaces a level; 0: all on one line */
  int sort_keys;        /* objects' keys in byte order */
  frame at[DEPTH_MAX];
} enc;

__attribute__((noreturn)) static void enc_oom(enc *e) {
  luaL_error(e->L, "%s: not enough memory", e->fn);
  __builtin_unreachable();
}

static inline char *room(enc *e, size_t n) {
  fl_buf *b = e->b;
  if (b->cap - b->len <= n && fl_buf_reserve(b, n) != 0) enc_oom(e);
  return b->data + b->len;
}

static inline void add(enc *e, const char *s, size_t n) {
  memcpy(room(e, n), s, n);
  e->b->len += n;
}

static inline void add_char(enc *e, char c) {
  *room(e, 1) = c;
  e->b->len++;
}

/* The path of the element being encoded `levels` tables down, as
   "items[3].name", pushed; the end is kept when it is long. */
static const char *push_path(enc *e, int levels) {
  lua_State *L = e->L;
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  for (int k = 0; k < levels; k++) {
    const frame *f = &e->at[k];
    char num[FL_JSON_NUMBER_MAX];
    if (!f->key) {
      fl_json_format_int(f->idx, num);
      lua_pushfstring(L, "[%s]", num);
      luaL_addvalue(&b);
    } else if (lua_type(L, f->key) == LUA_TSTRING) {
      if (k > 0) luaL_addchar(&b, '.');
      luaL_addstring(&b, lua_tostring(L, f->key));
    } else { /* a number key */
      if (lua_isinteger(L, f->key))
        fl_json_format_int(lua_tointeger(L, f->key), num);
      else
        fl_json_format_double(lua_tonumber(L, f->key), num);
      lua_pushfstring(L, "[%s]", num);
      luaL_addvalue(&b);
    }
  }
  luaL_pushresult(&b);
  size_t n;
  const char *s = lua_tolstring(L, -1, &n);
  if (n > 160) { /* a path 1000 tables deep says nothing: keep its end */
    const char *tail = s + n - 150;
    while ((*tail & 0xC0) == 0x80) tail++; /* not inside a character */
    lua_pushfstring(L, "...%s", tail);
    s = lua_tostring(L, -1);
  }
  return s;
}

/* Raises "fn: what (at key 'path')", the path `levels` tables down. */
__attribute__((noreturn)) static void enc_fail(enc *e, int levels,
                                               const char *what) {
  if (levels > 0)
    luaL_error(e->L, "%s: %s (at key '%s')", e->fn, what, push_path(e, levels));
  luaL_error(e->L, "%s: %s", e->fn, what);
  __builtin_unreachable();
}

/* Past DEPTH_MAX: a cycle when a table repeats on the way down (named by
   the path to its first repeat), else nesting too deep. */
__attribute__((noreturn)) static void too_deep(enc *e, int idx) {
  const void *next = lua_topointer(e->L, idx);
  for (int k = 1; k <= e->depth; k++) {
    const void *t = k < e->depth ? e->at[k].table : next;
    for (int j = 0; j < k; j++)
      if (e->at[j].table == t) enc_fail(e, k, "a table contains itself");
  }
  enc_fail(e, e->depth, "tables nested deeper than 1000");
}

static void encode_value(enc *e, int idx);

/* The length of the table at idx as a JSON array, or -1 when it is an
   object. As in cjson: keys that are all positive integers make an array
   as long as the largest (holes become null) unless it is excessively
   sparse; json.array_mt makes an array of the border's length; an empty
   table is an object. */
static lua_Integer array_length(enc *e, int idx) {
  lua_State *L = e->L;
  if (lua_getmetatable(L, idx)) {
    int marked = lua_topointer(L, -1) == e->array_mt;
    lua_pop(L, 1);
    if (marked) return (lua_Integer)lua_rawlen(L, idx);
  }
  lua_Integer count = 0, max = 0;
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    lua_pop(L, 1);
    lua_Integer k;
    if (!lua_isinteger(L, -1) || (k = lua_tointeger(L, -1)) < 1) {
      lua_pop(L, 1);
      return -1;
    }
    if (k > max) max = k;
    count++;
  }
  if (count == 0) return -1;
  if (max > SPARSE_SAFE && max > count * SPARSE_RATIO) return -1;
  return max;
}

static void encode_key(enc *e, int key) {
  lua_State *L = e->L;
  char num[FL_JSON_NUMBER_MAX + 2];
  size_t n;
  switch (lua_type(L, key)) {
  case LUA_TSTRING: {
    const char *s = lua_tolstring(L, key, &n);
    if (fl_json_add_string(e->b, s, n) != 0) enc_oom(e);
    return;
  }
  case LUA_TNUMBER:
    /* Like cjson, a number key becomes the string of the number. Read
       without lua_tolstring, which would change the key under lua_next. */
    if (lua_isinteger(L, key)) {
      n = fl_json_format_int(lua_tointeger(L, key), num + 1);
    } else {
      double v = lua_tonumber(L, key);
      if (!isfinite(v)) enc_fail(e, e->depth - 1, "cannot encode an infinite table key");
      n = fl_json_format_double(v, num + 1);
    }
    num[0] = num[n + 1] = '"';
    add(e, num, n + 2);
    return;
  default:
    lua_pushfstring(L, "table keys must be strings or numbers, got a %s key",
                    luaL_typename(L, key));
    enc_fail(e, e->depth - 1, lua_tostring(L, -1));
  }
}

/* Before an element of a table (first: the first one), or before the
   table's closing bracket (close): the comma, and with indent a new line
   and the depth's spaces, as Python's json.dumps(indent=n) writes them. */
static void separate(enc *e, int first, int close) {
  if (!first && !close) add_char(e, ',');
  if (!e->indent) return;
  int spaces = e->indent * (e->depth - close);
  char *p = room(e, (size_t)spaces + 1);
  p[0] = '\n';
  memset(p + 1, ' ', (size_t)spaces);
  e->b->len += (size_t)spaces + 1;
}

/* A key as sort_keys orders it: its bytes (a number key, as its JSON). */
typedef struct sort_key {
  const char *s;
  size_t n;
  int i; /* its place in the keys table */
} sort_key;

static int cmp_sort_key(const void *a, const void *b) {
  const sort_key *x = a, *y = b;
  int c = memcmp(x->s, y->s, x->n < y->n ? x->n : y->n);
  return c ? c : (x->n > y->n) - (x->n < y->n);
}

/* The keys of the object at idx in byte order, as a table of keys on top
   of the stack (its length in *count). Their text lives in a second table
   under it, and the order in a userdata under that: both collected by Lua
   when an error unwinds. */
static void sorted_keys(enc *e, int idx, int *count) {
  lua_State *L = e->L;
  int n = 0;
  lua_newtable(L); /* text of number keys, anchored */
  int texts = lua_gettop(L);
  lua_newtable(L); /* the keys */
  int keys = lua_gettop(L);
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    lua_pop(L, 1);
    lua_pushvalue(L, -1);
    lua_rawseti(L, keys, ++n);
  }
  sort_key *order = lua_newuserdatauv(L, (size_t)(n ? n : 1) * sizeof *order, 0);
  for (int i = 0; i < n; i++) {
    lua_rawgeti(L, keys, i + 1);
    if (lua_type(L, -1) == LUA_TNUMBER) {
      char num[FL_JSON_NUMBER_MAX];
      size_t len = lua_isinteger(L, -1)
                       ? fl_json_format_int(lua_tointeger(L, -1), num)
                       : fl_json_format_double(lua_tonumber(L, -1), num);
      lua_pushlstring(L, num, len);
      lua_replace(L, -2);
      lua_pushvalue(L, -1);
      lua_rawseti(L, texts, i + 1);
    }
    /* A key that is neither is refused by encode_key, in order. */
    order[i].s = lua_type(L, -1) == LUA_TSTRING ? lua_tolstring(L, -1, &order[i].n) : "";
    if (lua_type(L, -1) != LUA_TSTRING) order[i].n = 0;
    order[i].i = i + 1;
    lua_pop(L, 1);
  }
  qsort(order, (size_t)n, sizeof *order, cmp_sort_key);
  lua_newtable(L); /* the keys, sorted */
  for (int i = 0; i < n; i++) {
    lua_rawgeti(L, keys, order[i].i);
    lua_rawseti(L, -2, i + 1);
  }
  *count = n;
}

static void encode_object(enc *e, int idx, frame *f) {
  lua_State *L = e->L;
  add_char(e, '{');
  int first = 1;
  if (e->sort_keys) {
    int n;
    sorted_keys(e, idx, &n);
    int keys = lua_gettop(L);
    for (int i = 1; i <= n; i++) {
      separate(e, first, 0);
      first = 0;
      lua_rawgeti(L, keys, i);
      int key = lua_gettop(L);
      f->key = key;
      encode_key(e, key);
      add(e, ": ", e->indent ? 2 : 1);
      lua_pushvalue(L, key);
      lua_rawget(L, idx);
      encode_value(e, lua_gettop(L));
      lua_pop(L, 2);
    }
    lua_pop(L, 4); /* the keys sorted, the order, the keys, their texts */
  } else {
    lua_pushnil(L);
    while (lua_next(L, idx)) {
      int top = lua_gettop(L);
      separate(e, first, 0);
      first = 0;
      f->key = top - 1;
      encode_key(e, top - 1);
      add(e, ": ", e->indent ? 2 : 1);
      encode_value(e, top);
      lua_pop(L, 1);
    }
  }
  if (!first) separate(e, 0, 1);
  add_char(e, '}');
}

static void encode_table(enc *e, int idx) {
  lua_State *L = e->L;
  if (e->depth >= DEPTH_MAX) too_deep(e, idx);
  luaL_checkstack(L, 8, "JSON nesting");
  frame *f = &e->at[e->depth++];
  f->table = lua_topointer(L, idx);
  f->key = 0;
  lua_Integer n = array_length(e, idx);
  if (n >= 0) {
    add_char(e, '[');
    for (lua_Integer i = 1; i <= n; i++) {
      separate(e, i == 1, 0);
      f->idx = (lua_Integer)i;
      lua_rawgeti(L, idx, (lua_Integer)i);
      encode_value(e, lua_gettop(L));
      lua_pop(L, 1);
    }
    if (n > 0) separate(e, 0, 1);
    add_char(e, ']');
  } else {
    encode_object(e, idx, f);
  }
  e->depth--;
}

static void encode_value(enc *e, int idx) {
  lua_State *L = e->L;
  switch (lua_type(L, idx)) {
  case LUA_TSTRING: {
    size_t n;
    const char *s = lua_tolstring(L, idx, &n);
    if (fl_json_add_string(e->b, s, n) != 0) enc_oom(e);
    return;
  }
  case LUA_TNUMBER:
    if (lua_isinteger(L, idx)) {
      e->b->len += fl_json_format_int(lua_tointeger(L, idx),
                                      room(e, FL_JSON_NUMBER_MAX));
    } else {
      double v = lua_tonumber(L, idx);
      if (isnan(v)) enc_fail(e, e->depth, "cannot encode NaN");
      if (isinf(v))
        enc_fail(e, e->depth, v > 0 ? "cannot encode infinity" : "cannot encode -infinity");
      e->b->len += fl_json_format_double(v, room(e, FL_JSON_NUMBER_MAX));
    }
    return;
  case LUA_TBOOLEAN:
    if (lua_toboolean(L, idx))
      add(e, "true", 4);
    else
      add(e, "false", 5);
    return;
  case LUA_TNIL:
    add(e, "null", 4);
    return;
  case LUA_TLIGHTUSERDATA:
    if (lua_touserdata(L, idx) == NULL) { /* json.null */
      add(e, "null", 4);
      return;
    }
    if (lua_touserdata(L, idx) == &empty_array_sentinel) {
      add(e, "[]", 2);
      return;
    }
    enc_fail(e, e->depth, "cannot encode a light userdata");
  case LUA_TTABLE:
    encode_table(e, idx);
    return;
  default:
    lua_pushfstring(L, "cannot encode a %s", luaL_typename(L, idx));
    enc_fail(e, e->depth, lua_tostring(L, -1));
  }
}

/* Encodes the value at idx into b; fn names the caller in errors. (The
   frames take 24 KB of C stack while it works.) */
void fl_json_encode_lua_with(lua_State *L, int idx, fl_buf *b, const char *fn,
                             int indent, int sort_keys) {
  enc e;
  e.L = L;
  e.b = b;
  e.fn = fn;
  luaL_getmetatable(L, FL_JSON_ARRAY_MT);
  e.array_mt = lua_topointer(L, -1);
  lua_pop(L, 1);
  e.depth = 0;
  e.indent = indent;
  e.sort_keys = sort_keys;
  encode_value(&e, idx);
}

void fl_json_encode_lua(lua_State *L, int idx, fl_buf *b, const char *fn) {
  fl_json_encode_lua_with(L, idx, b, fn, 0, 0);
}

/* ---- for the engine (results in the state store) ------------------------- */

static int encode_protected(lua_State *L) {
  fl_buf *b = lua_touserdata(L, 2);
  fl_json_encode_lua(L, 1, b, "result");
  return 0;
}

/* The encoder writes bytes without a terminator: add one, not counted. */
static int terminated(fl_buf *b) {
  fl_buf_addc(b, '\0');
  if (b->oom) return -1;
  b->len--;
  return 0;
}

int fl_json_encode_value(lua_State *L, int idx, fl_buf *out, fl_buf *why) {
  /* The common results need no protected call. */
  switch (lua_type(L, idx)) {
  case LUA_TNIL:
    fl_buf_adds(out, "null");
    return terminated(out);
  case LUA_TBOOLEAN:
    fl_buf_adds(out, lua_toboolean(L, idx) ? "true" : "false");
    return terminated(out);
  case LUA_TSTRING: {
    size_t n;
    const char *s = lua_tolstring(L, idx, &n);
    return fl_json_add_string(out, s, n) == 0 ? terminated(out) : -1;
  }
  default:
    break;
  }
  idx = lua_absindex(L, idx);
  lua_pushcfunction(L, encode_protected);
  lua_pushvalue(L, idx);
  lua_pushlightuserdata(L, out);
  if (lua_pcall(L, 2, 0, 0) != LUA_OK) {
    if (why) fl_buf_adds(why, lua_tostring(L, -1) ? lua_tostring(L, -1) : "?");
    lua_pop(L, 1);
    return -1;
  }
  return terminated(out);
}

static int decode_protected(lua_State *L) {
  size_t len = (size_t)lua_tointeger(L, 2);
  fl_json_decode_lua(L, lua_touserdata(L, 1), len, "json.decode", NULL);
  return 1;
}

int fl_json_decode_value(lua_State *L, const char *text, size_t len) {
  lua_pushcfunction(L, decode_protected);
  lua_pushlightuserdata(L, (void *)text);
  lua_pushinteger(L, (lua_Integer)len);
  return lua_pcall(L, 2, 1, 0) == LUA_OK ? 0 : -1;
}

