/*
 * fuzz_url.c — the URL query builder of flow.http (fl_http_add_query in
 * lhttplib.c, percent-encoding by fl_http_url_encode in http.c).
 *
 * Input: the base URL, then query entries, each introduced by a 0x01 byte:
 * a key, a 0x02 byte, and a value; a value with 0x03 bytes in it is a list
 * of the parts between them, a value of exactly "\x04" is the boolean
 * true and one of "\x05" a function (which must be refused). A key given
 * twice keeps its last value, as a Lua table does.
 *
 * Properties:
 *  - the URL is the base, then (when there is something to add) '&' if
 *    the base already has a '?', else '?', then the pairs, and then the
 *    base's fragment ("#..."), if it has one;
 *  - the added text uses only unreserved characters and %XX escapes;
 *  - decoding it gives back every key and value: keys in byte order, each
 *    list element in list order under its key;
 *  - a function among the values is refused with a message, nothing leaks;
 *  - when the base is a URL that libcurl's parser accepts, so is the
 *    result, and the pairs land in its query, not in a fragment.
 */
#include <curl/curl.h>
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include "fuzz.h"
#include "http.h"
#include "engine.h"
#include "lflowlua.h"

static lua_State *L;

typedef struct pair {
  const char *key, *value;
  size_t key_len, value_len;
} pair;

/* Called protected: the query table at 1, the URL buffer at 2. */
static int add_query_protected(lua_State *Ls) {
  fl_http_add_query(Ls, lua_touserdata(Ls, 2), 1);
  return 0;
}

static int hex(char c) {
  return c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* Decodes s[0..n) (percent escapes only) into out; -1 when malformed. */
static int decode(const char *s, size_t n, fl_buf *out) {
  fl_buf_reset(out);
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    if (c == '%') {
      if (i + 2 >= n || hex(s[i + 1]) < 0 || hex(s[i + 2]) < 0) return -1;
      fl_buf_addc(out, (char)(hex(s[i + 1]) << 4 | hex(s[i + 2])));
      i += 2;
    } else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
               (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
               c == '~') {
      fl_buf_addc(out, c);
    } else {
      return -1;
    }
  }
  return 0;
}

static int cmp_keys(const void *a, const void *b) {
  const pair *x = a, *y = b;
  size_t n = x->key_len < y->key_len ? x->key_len : y->key_len;
  int c = memcmp(x->key, y->key, n);
  return c ? c : (x->key_len > y->key_len) - (x->key_len < y->key_len);
}

/* Checks the added text q[0..n) against the expected pairs. */
static void check_pairs(const char *q, size_t n, const pair *want, size_t n_want) {
  fl_buf k = FL_BUF_INIT, v = FL_BUF_INIT;
  size_t at = 0, i = 0;
  while (at < n) {
    const char *amp = memchr(q + at, '&', n - at);
    size_t end = amp ? (size_t)(amp - q) : n;
    const char *eq = memchr(q + at, '=', end - at);
    FUZZ_CHECK(eq, "a pair without '=': '%s'", fuzz_show(q + at, end - at));
    size_t eq_at = (size_t)(eq - q);
    FUZZ_CHECK(decode(q + at, eq_at - at, &k) == 0 &&
                   decode(q + eq_at + 1, end - eq_at - 1, &v) == 0,
               "not percent-encoded: '%s'", fuzz_show(q + at, end - at));
    FUZZ_CHECK(i < n_want, "more pairs than given");
    FUZZ_CHECK(k.len == want[i].key_len &&
                   memcmp(fl_buf_str(&k), want[i].key, k.len) == 0,
               "pair %zu has key '%s'", i + 1, fuzz_show(fl_buf_str(&k), k.len));
    FUZZ_CHECK(v.len == want[i].value_len &&
                   memcmp(fl_buf_str(&v), want[i].value, v.len) == 0,
               "pair %zu has value '%s'", i + 1, fuzz_show(fl_buf_str(&v), v.len));
    i++;
    at = end + 1;
  }
  FUZZ_CHECK(i == n_want, "%zu pairs of %zu", i, n_want);
  fl_buf_free(&k);
  fl_buf_free(&v);
}

/* Whether libcurl parses url; with `query`, the URL's query must end with
   it. */
static int curl_accepts(const char *url, const char *query, size_t query_len) {
  CURLU *h = curl_url();
  if (!h) abort();
  int ok = curl_url_set(h, CURLUPART_URL, url, CURLU_NON_SUPPORT_SCHEME) == CURLUE_OK;
  if (query) {
    FUZZ_CHECK(ok, "libcurl refuses the URL once the query is added: '%s'",
               fuzz_show(url, strlen(url)));
    char *got = NULL;
    CURLUcode rc = curl_url_get(h, CURLUPART_QUERY, &got, 0);
    size_t n = got ? strlen(got) : 0;
    FUZZ_CHECK(rc == CURLUE_OK && n >= query_len &&
                   memcmp(got + n - query_len, query, query_len) == 0,
               "the pairs are not the URL's query: '%s'", fuzz_show(url, strlen(url)));
    curl_free(got);
  }
  curl_url_cleanup(h);
  return ok;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (!L) {
    L = luaL_newstate();
    if (!L) abort();
  }
  fuzz_input in = {data, size};
  size_t base_len;
  char *base = fuzz_take_until(&in, 1, &base_len);
  if (!base) abort();
  base_len = strlen(base); /* the URL is a C string to flow.http */

  /* The query table, and the pairs it should give. */
  lua_settop(L, 0);
  lua_newtable(L);
  char *texts[256];
  size_t n_texts = 0;
  while (in.left && n_texts < 256) {
    size_t len;
    char *entry = fuzz_take_until(&in, 1, &len);
    if (!entry) abort();
    texts[n_texts++] = entry;
    const char *sep = memchr(entry, 2, len);
    size_t key_len = sep ? (size_t)(sep - entry) : len;
    const char *value = sep ? sep + 1 : "";
    size_t value_len = sep ? len - key_len - 1 : 0;
    lua_pushlstring(L, entry, key_len);
    if (value_len == 1 && value[0] == 4) {
      lua_pushboolean(L, 1);
    } else if (value_len == 1 && value[0] == 5) {
      lua_pushcfunction(L, add_query_protected); /* any function will do */
    } else if (memchr(value, 3, value_len)) {
      lua_newtable(L);
      lua_Integer i = 0;
      for (const char *p = value, *end = value + value_len;;) {
        const char *bar = memchr(p, 3, (size_t)(end - p));
        lua_pushlstring(L, p, bar ? (size_t)(bar - p) : (size_t)(end - p));
        lua_rawseti(L, -2, ++i);
        if (!bar) break;
        p = bar + 1;
      }
    } else {
      lua_pushlstring(L, value, value_len);
    }
    lua_rawset(L, 1);
  }

  /* The expected pairs, from the table as it ended up. */
  pair *want = NULL, *keys = NULL;
  size_t n_want = 0, n_keys = 0;
  int wrong_type = 0;
  lua_pushnil(L);
  while (lua_next(L, 1)) {
    keys = realloc(keys, (n_keys + 1) * sizeof *keys);
    if (!keys) abort();
    keys[n_keys].key = lua_tolstring(L, -2, &keys[n_keys].key_len);
    n_keys++;
    lua_pop(L, 1);
  }
  if (n_keys) qsort(keys, n_keys, sizeof *keys, cmp_keys);
  for (size_t i = 0; i < n_keys; i++) {
    lua_pushlstring(L, keys[i].key, keys[i].key_len);
    lua_rawget(L, 1);
    lua_Integer n = lua_istable(L, -1) ? (lua_Integer)lua_rawlen(L, -1) : 1;
    for (lua_Integer j = 1; j <= n; j++) {
      if (lua_istable(L, -1)) lua_rawgeti(L, -1, j);
      else lua_pushvalue(L, -1);
      want = realloc(want, (n_want + 1) * sizeof *want);
      if (!want) abort();
      want[n_want] = keys[i];
      wrong_type |= lua_isfunction(L, -1);
      if (lua_isboolean(L, -1)) {
        want[n_want].value = "true";
        want[n_want].value_len = 4;
      } else {
        want[n_want].value = lua_tolstring(L, -1, &want[n_want].value_len);
      }
      n_want++;
      lua_pop(L, 1); /* the strings stay alive in the table */
    }
    lua_pop(L, 1);
  }

  fl_buf url = FL_BUF_INIT;
  fl_buf_add(&url, base, base_len);
  lua_pushcfunction(L, add_query_protected);
  lua_pushvalue(L, 1);
  lua_pushlightuserdata(L, &url);
  int rc = lua_pcall(L, 2, 0, 0);
  if (wrong_type) {
    FUZZ_CHECK(rc != LUA_OK && strstr(lua_tostring(L, -1),
                                      "must be a string, number or boolean"),
               "a function in the query: %s", rc ? lua_tostring(L, -1) : "accepted");
    goto done;
  }
  FUZZ_CHECK(rc == LUA_OK, "adding the query raised: %s", lua_tostring(L, -1));
  FUZZ_CHECK(!url.oom, "out of memory");
  /* The query goes before a fragment ("#..."), which stays last. */
  const char *u = fl_buf_str(&url), *hash = strchr(base, '#');
  size_t main_len = hash ? (size_t)(hash - base) : base_len;
  size_t fragment_len = base_len - main_len;
  FUZZ_CHECK(url.len >= base_len && memcmp(u, base, main_len) == 0 &&
                 memcmp(u + url.len - fragment_len, base + main_len,
                        fragment_len) == 0,
             "the base URL changed: '%s'", fuzz_show(u, url.len));
  if (n_want == 0) {
    FUZZ_CHECK(url.len == base_len, "text added for an empty query");
  } else {
    char sep = memchr(base, '?', main_len) ? '&' : '?';
    FUZZ_CHECK(url.len > base_len && u[main_len] == sep,
               "the query starts with '%c', not '%c'", u[main_len], sep);
    const char *q = u + main_len + 1;
    size_t q_len = url.len - base_len - 1;
    check_pairs(q, q_len, want, n_want);
    if (curl_accepts(base, NULL, 0)) curl_accepts(u, q, q_len);
  }
done:
  fl_buf_free(&url);
  free(want);
  free(keys);
  for (size_t i = 0; i < n_texts; i++) free(texts[i]);
  free(base);
  lua_settop(L, 0);
  return 0;
}
