/*
 * lhttplib.c — flow.http: get/post/put/patch/delete/request on the runtime's
 * curl multi handle.
 *
 * Inside a task the request parks the task's coroutine and the loop resumes
 * it when the transfer ends, so other tasks run meanwhile. At the top level
 * of a script or in a flow body, where nothing else runs, it waits on the
 * loop in place. Transport failures raise "METHOD URL: cause"; responses are
 * tables with methods json() and raise_for_status().
 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

#include "http.h"
#include "engine.h"
#include "lflowlua.h"
#include "loptions.h"

#define FL_HTTP_REQ_MT "flowlua.http.request"
#define FL_HTTP_RESP_MT "flowlua.http.response"
#define FL_HTTP_URL_MT "flowlua.http.url"
#define FL_HTTP_DEFAULT_TIMEOUT 300.0
#define FL_HTTP_DEFAULT_MAX_BODY ((size_t)64 << 20)

/* The userdata that owns a request while Lua holds it. */
typedef struct lreq {
  fl_http_req *req;
  fl_wait wait;   /* what the parked task waits on */
  fl_taskrun *run;
  double timeout;
} lreq;

static int req_gc(lua_State *L) {
  lreq *lr = luaL_checkudata(L, 1, FL_HTTP_REQ_MT);
  fl_http_req_free(lr->req);
  lr->req = NULL;
  return 0;
}

static void on_done(fl_http_req *req) {
  lreq *lr = req->data;
  if (lr->run) fl_sched_wake(lr->run);
}

/* The task was interrupted (timeout, cancel) while the transfer ran. */
static void on_cancel(fl_wait *w) {
  lreq *lr = (lreq *)((char *)w - offsetof(lreq, wait));
  if (lr->req) fl_http_cancel(lr->req);
}

static fl_http *runtime_http(lua_State *L) {
  flowlua *rt = fl_rt(L);
  if (!rt->http_ready) {
    const char *why = "?";
    if (fl_http_init(&rt->http, &rt->loop, &why) != 0)
      luaL_error(L, "http: %s", why);
    rt->http_ready = 1;
  }
  return &rt->http;
}

/* ---- building the request ------------------------------------------------ */

static int url_gc(lua_State *L) {
  fl_buf_free(luaL_checkudata(L, 1, FL_HTTP_URL_MT));
  return 0;
}

/* Pushes an empty buffer for the URL being built. Options checked after it
   may raise, so the collector frees it then; a request that gets on frees
   it at once (fl_buf_free leaves it empty for __gc). */
static fl_buf *push_url_buffer(lua_State *L) {
  fl_buf *b = lua_newuserdatauv(L, sizeof *b, 0);
  *b = (fl_buf)FL_BUF_INIT;
  luaL_setmetatable(L, FL_HTTP_URL_MT);
  return b;
}

static void add_query_value(lua_State *L, fl_buf *url, const char *key,
                            size_t key_len, int v, int *first) {
  int t = lua_type(L, v);
  if (t != LUA_TSTRING && t != LUA_TNUMBER && t != LUA_TBOOLEAN)
    luaL_error(L, "http: query value for '%s' must be a string, number or "
                  "boolean, got %s",
               key, luaL_typename(L, v));
  size_t len;
  const char *s = t == LUA_TBOOLEAN ? (lua_toboolean(L, v) ? "true" : "false")
                                    : lua_tolstring(L, v, &len);
  if (t == LUA_TBOOLEAN) len = strlen(s);
  fl_buf_addc(url, *first ? (strchr(fl_buf_str(url), '?') ? '&' : '?') : '&');
  *first = 0;
  fl_http_url_encode(url, key, key_len);
  fl_buf_addc(url, '=');
  fl_http_url_encode(url, s, len);
}

/* A query key: Lua strings may hold zero bytes, so with its length. */
typedef struct query_key {
  const char *s;
  size_t len;
} query_key;

static int cmp_keys(const void *a, const void *b) {
  const query_key *x = a, *y = b;
  int c = memcmp(x->s, y->s, x->len < y->len ? x->len : y->len);
  return c ? c : (x->len > y->len) - (x->len < y->len);
}

/* Appends the query table at idx to url, keys sorted so the same query
   always makes the same URL; list values repeat their key. A fragment
   ("#...") stays at the end, after the query. */
void fl_http_add_query(lua_State *L, fl_buf *url, int idx) {
  idx = lua_absindex(L, idx);
  int n = 0;
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    if (lua_type(L, -2) != LUA_TSTRING)
      luaL_error(L, "http: query keys must be strings, got %s",
                 luaL_typename(L, -2));
    n++;
    lua_pop(L, 1);
  }
  query_key *keys = lua_newuserdatauv(L, (size_t)(n ? n : 1) * sizeof *keys, 0);
  int i = 0;
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    /* alive: the keys are in the table */
    keys[i].s = lua_tolstring(L, -2, &keys[i].len);
    i++;
    lua_pop(L, 1);
  }
  qsort(keys, (size_t)n, sizeof *keys, cmp_keys);
  /* The fragment is set aside (as a Lua string, so an error below frees
     it) and put back after the query. */
  const char *hash = strchr(fl_buf_str(url), '#');
  size_t fragment_at = hash ? (size_t)(hash - url->data) : url->len;
  lua_pushlstring(L, fl_buf_str(url) + fragment_at, url->len - fragment_at);
  if (hash) {
    url->len = fragment_at;
    url->data[fragment_at] = '\0';
  }
  int first = 1;
  for (i = 0; i < n; i++) {
    lua_pushlstring(L, keys[i].s, keys[i].len);
    if (lua_rawget(L, idx) == LUA_TTABLE) {
      lua_Integer len = luaL_len(L, -1);
      for (lua_Integer k = 1; k <= len; k++) {
        lua_geti(L, -1, k);
        add_query_value(L, url, keys[i].s, keys[i].len, lua_gettop(L), &first);
        lua_pop(L, 1);
      }
    } else {
      add_query_value(L, url, keys[i].s, keys[i].len, lua_gettop(L), &first);
    }
    lua_pop(L, 1);
  }
  size_t fragment_len;
  const char *fragment = lua_tolstring(L, -1, &fragment_len);
  fl_buf_add(url, fragment, fragment_len);
  lua_pop(L, 2); /* fragment, keys */
}

static int has_crlf(const char *s) { return strpbrk(s, "\r\n") != NULL; }

/* Fills a Lua list (at list) with "Name: value" lines from the headers table
   at idx; returns how many. */
static int add_headers(lua_State *L, int idx, int list, int n) {
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    if (lua_type(L, -2) != LUA_TSTRING)
      luaL_error(L, "http: header names must be strings");
    if (lua_type(L, -1) != LUA_TSTRING && lua_type(L, -1) != LUA_TNUMBER)
      luaL_error(L, "http: header '%s' must be a string or number, got %s",
                 lua_tostring(L, -2), luaL_typename(L, -1));
    const char *name = lua_tostring(L, -2), *value = lua_tostring(L, -1);
    if (has_crlf(name) || has_crlf(value) || strchr(name, ':') || !*name)
      luaL_error(L, "http: header '%s' has a line break or a bad name", name);
    lua_pushfstring(L, "%s: %s", name, value);
    lua_rawseti(L, list, ++n);
    lua_pop(L, 1);
  }
  return n;
}

/* Encodes the table at idx with flow.json.encode; pushes the string. */
static void push_json_body(lua_State *L, int idx) {
  lua_getfield(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
  lua_getfield(L, -1, "flowlua");
  if (lua_type(L, -1) != LUA_TTABLE) luaL_error(L, "http: flowlua not loaded");
  lua_getfield(L, -1, "json");
  lua_getfield(L, -1, "encode");
  lua_pushvalue(L, idx);
  lua_call(L, 1, 1);
  lua_replace(L, -4);
  lua_pop(L, 2);
}

static double opt_seconds(lua_State *L, int idx, const char *key) {
  if (lua_type(L, idx) != LUA_TNUMBER || !(lua_tonumber(L, idx) >= 0))
    luaL_error(L, "http: option '%s' must be a number of seconds >= 0, got %s",
               key, luaL_tolstring(L, idx, NULL));
  return lua_tonumber(L, idx);
}

/* ---- the response -------------------------------------------------------- */

void fl_http_push_response(lua_State *L, const fl_http_req *req) {
  lua_createtable(L, 0, 8);
  lua_pushinteger(L, req->status);
  lua_setfield(L, -2, "status");
  lua_pushboolean(L, req->status >= 200 && req->status < 400);
  lua_setfield(L, -2, "ok");
  lua_pushlstring(L, req->resp_body.data ? req->resp_body.data : "",
                  req->resp_body.len);
  lua_setfield(L, -2, "body");
  lua_pushstring(L, req->final_url ? req->final_url : req->url);
  lua_setfield(L, -2, "url");
  lua_pushstring(L, req->method);
  lua_setfield(L, -2, "method");
  lua_pushnumber(L, req->elapsed);
  lua_setfield(L, -2, "elapsed");
  /* headers: repeated names are joined with ", ". Sized up front and
     filled with raw sets of known lengths: this runs once per response,
     and growing the table pair by pair rehashed it three times. */
  lua_createtable(L, 0, req->n_resp_headers);
  int headers = lua_gettop(L);
  /* No header at all leaves the buffer NULL (NULL + 0 is undefined). */
  const char *p = req->resp_headers.data;
  const char *end = p ? p + req->resp_headers.len : NULL;
  while (p && p < end) {
    size_t name_len = strlen(p);
    const char *value = p + name_len + 1;
    size_t value_len = strlen(value);
    lua_pushlstring(L, p, name_len);
    p = value + value_len + 1;
    lua_pushvalue(L, -1);
    if (lua_rawget(L, headers) == LUA_TSTRING) {
      lua_pushliteral(L, ", ");
      lua_pushlstring(L, value, value_len);
      lua_concat(L, 3);
    } else {
      lua_pop(L, 1);
      lua_pushlstring(L, value, value_len);
    }
    lua_rawset(L, headers);
  }
  lua_setfield(L, -2, "headers");
  luaL_setmetatable(L, FL_HTTP_RESP_MT);
}

/* Ends a request: raises for a transport failure, else pushes the response
   and notes a Retry-After the task should honour. */
static int finish_request(lua_State *L, int status, lua_KContext ctx) {
  (void)status;
  lreq *lr = lua_touserdata(L, (int)ctx);
  fl_http_req *req = lr->req;
  /* The request is freed as soon as its outcome is in Lua values, not at
     the next collection, so its easy handle goes back to the pool for the
     next request at once. Until then lr owns it: a raise on the way (out
     of memory) leaves it to __gc. */
  if (req->result != CURLE_OK) {
    fl_buf why = FL_BUF_INIT;
    fl_http_describe_failure(req, lr->timeout, &why);
    lua_pushfstring(L, "%s %s: %s", req->method, req->url, fl_buf_str(&why));
    fl_buf_free(&why);
    lr->req = NULL;
    fl_http_req_free(req);
    return lua_error(L);
  }
  fl_http_push_response(L, req);
  long http_status = req->status;
  lr->req = NULL;
  fl_http_req_free(req);
  if (http_status == 429 || http_status == 503) {
    lua_getfield(L, -1, "headers");
    if (lua_getfield(L, -1, "retry-after") == LUA_TSTRING) {
      double secs = fl_http_parse_retry_after(lua_tostring(L, -1), fl_wall_time());
      if (secs >= 0) fl_sched_note_retry_after(L, secs);
    }
    lua_pop(L, 2);
  }
  return 1;
}

static const char *const request_options[] = {
    "query",  "headers", "body",    "json",     "timeout",
    "follow", "verify",  "ca_file", "max_body", "keep_headers_on_redirect",
    "allow_https_downgrade", "compressed", NULL};

/* A request as its options build it: the transfer's options, the URL
   with its query, and the header lines (kept in a Lua table at
   header_list, which also keeps alive every string o points at). */
typedef struct request {
  fl_http_opts o;
  fl_buf *url;
  int header_list, n_headers, json_idx;
} request;

/* Reads the options table at opts_idx into rq. */
static void read_request_options(lua_State *L, int opts_idx, request *rq) {
  enum { QUERY, HEADERS, BODY, JSON, TIMEOUT, FOLLOW, VERIFY, CA_FILE,
         MAX_BODY, KEEP_HEADERS, ALLOW_DOWNGRADE, COMPRESSED };
  fl_opts it;
  fl_opts_begin(&it, L, opts_idx, "http", "option", request_options);
  for (int k; (k = fl_opts_next(&it)) >= 0;) {
    int v = it.value;
    switch (k) {
    case QUERY:
      luaL_argexpected(L, lua_istable(L, v), opts_idx, "query table");
      fl_http_add_query(L, rq->url, v);
      break;
    case HEADERS:
      luaL_argexpected(L, lua_istable(L, v), opts_idx, "headers table");
      rq->n_headers = add_headers(L, v, rq->header_list, rq->n_headers);
      break;
    case BODY:
      if (lua_type(L, v) != LUA_TSTRING)
        luaL_error(L, "http: option 'body' must be a string, got %s (use "
                      "'json' for tables)",
                   luaL_typename(L, v));
      rq->o.body = lua_tolstring(L, v, &rq->o.body_len);
      lua_pushvalue(L, v);
      lua_rawsetp(L, rq->header_list, &rq->o); /* keep the string alive */
      break;
    case JSON:
      rq->json_idx = v;
      lua_pushvalue(L, v);
      lua_rawsetp(L, rq->header_list, &rq->json_idx);
      break;
    case TIMEOUT:
      rq->o.timeout = opt_seconds(L, v, it.key);
      break;
    case FOLLOW:
      rq->o.follow = lua_toboolean(L, v);
      break;
    case VERIFY:
      rq->o.verify = lua_toboolean(L, v);
      break;
    case CA_FILE:
      rq->o.ca_file = luaL_checkstring(L, v);
      lua_pushvalue(L, v);
      lua_rawsetp(L, rq->header_list, &rq->o.ca_file);
      break;
    case KEEP_HEADERS:
      rq->o.keep_headers = lua_toboolean(L, v);
      break;
    case ALLOW_DOWNGRADE:
      rq->o.allow_downgrade = lua_toboolean(L, v);
      break;
    case COMPRESSED:
      rq->o.compressed = lua_toboolean(L, v);
      break;
    case MAX_BODY: {
      lua_Integer mb = luaL_checkinteger(L, v);
      luaL_argcheck(L, mb > 0, opts_idx, "max_body must be > 0");
      rq->o.max_body = (size_t)mb;
      break;
    }
    }
  }
}

/* The json option: the value encoded as the body, with its Content-Type. */
static void add_json_body(lua_State *L, request *rq) {
  if (rq->o.body)
    luaL_error(L, "http: give either 'body' or 'json', not both");
  lua_rawgetp(L, rq->header_list, &rq->json_idx);
  push_json_body(L, lua_gettop(L));
  rq->o.body = lua_tolstring(L, -1, &rq->o.body_len);
  lua_rawsetp(L, rq->header_list, &rq->json_idx); /* keep the encoded body */
  lua_pop(L, 1);
  lua_pushliteral(L, "Content-Type: application/json");
  lua_rawseti(L, rq->header_list, ++rq->n_headers);
}

/* rq->o.headers: a NULL-terminated array of the header lines, in a
   userdata left on the stack (the lines stay held by header_list). */
static void push_header_lines(lua_State *L, request *rq) {
  const char **lines =
      lua_newuserdatauv(L, (size_t)(rq->n_headers + 1) * sizeof *lines, 0);
  for (int i = 1; i <= rq->n_headers; i++) {
    lua_rawgeti(L, rq->header_list, i);
    lines[i - 1] = lua_tostring(L, -1);
    lua_pop(L, 1);
  }
  lines[rq->n_headers] = NULL;
  rq->o.headers = lines;
}

/* http.request(method, url, [opts]) and the verbs below. */
static int do_request(lua_State *L, const char *method, int url_idx,
                      int opts_idx) {
  flowlua *rt = fl_rt(L);
  const char *url = luaL_checkstring(L, url_idx);
  luaL_argcheck(L, *url != '\0', url_idx, "URL must not be empty");
  if (!lua_isnoneornil(L, opts_idx)) luaL_checktype(L, opts_idx, LUA_TTABLE);
  request rq = {.o = {.method = method, .follow = 1, .verify = 1,
                      .timeout = FL_HTTP_DEFAULT_TIMEOUT,
                      .max_body = FL_HTTP_DEFAULT_MAX_BODY}};
  if (lua_istable(L, opts_idx)) {
    rq.url = push_url_buffer(L);
    fl_buf_adds(rq.url, url);
    lua_newtable(L);
    rq.header_list = lua_gettop(L);
    read_request_options(L, opts_idx, &rq);
    if (rq.json_idx) add_json_body(L, &rq);
    if (rq.n_headers > 0) push_header_lines(L, &rq);
    lua_pushstring(L, fl_buf_str(rq.url));
    fl_buf_free(rq.url);
    rq.o.url = lua_tostring(L, -1);
  } else {
    /* No options: the URL as given (the argument keeps it alive) and no
       header lines, without the three objects the options need, which the
       collector would have to free after every plain GET. */
    rq.o.url = url;
  }
  fl_http_opts o = rq.o;

  fl_http *h = runtime_http(L);
  /* The userdata first, so __gc frees whatever the steps below made. */
  lreq *lr = lua_newuserdatauv(L, sizeof *lr, 0);
  memset(lr, 0, sizeof *lr);
  luaL_setmetatable(L, FL_HTTP_REQ_MT);
  int ud = lua_gettop(L);
  lr->timeout = o.timeout;
  lr->wait.cancel = on_cancel;
  lr->req = fl_http_req_new(h);
  if (!lr->req) return luaL_error(L, "http: out of memory");
  if (fl_http_req_prepare(lr->req, &o) != 0)
    return luaL_error(L, "%s %s: %s", method, o.url, lr->req->errbuf);
  fl_taskrun *run = fl_sched_parkable(L);
  if (!run && rt->current)
    return luaL_error(L, "http: cannot wait here: call it from the task body "
                         "itself, not from a coroutine or hook it runs");
  lr->run = run;
  if (fl_http_start(lr->req, on_done, lr) != 0)
    return luaL_error(L, "%s %s: %s", method, o.url, lr->req->errbuf);
  if (run) return fl_sched_park(L, run, &lr->wait, ud, finish_request);

  /* Nothing else runs here (script top level, flow body): wait in place. */
  while (!lr->req->finished) {
    if (fl_cancelling(rt)) {
      fl_http_cancel(lr->req);
      return luaL_error(L, "%s %s: interrupted", method, o.url);
    }
    if (fl_loop_poll(&rt->loop, -1) < 0)
      return luaL_error(L, "%s %s: waiting on the event loop failed", method,
                        o.url);
  }
  return finish_request(L, LUA_OK, ud);
}

static int http_request(lua_State *L) {
  const char *method = luaL_checkstring(L, 1);
  char upper[16];
  size_t n = strlen(method);
  luaL_argcheck(L, n > 0 && n < sizeof upper, 1, "not an HTTP method");
  for (size_t i = 0; i <= n; i++)
    upper[i] = (char)(method[i] >= 'a' && method[i] <= 'z' ? method[i] - 32
                                                           : method[i]);
  for (size_t i = 0; i < n; i++)
    luaL_argcheck(L, upper[i] >= 'A' && upper[i] <= 'Z', 1, "not an HTTP method");
  lua_pushstring(L, upper);
  lua_replace(L, 1);
  return do_request(L, lua_tostring(L, 1), 2, 3);
}

static int http_get(lua_State *L) { return do_request(L, "GET", 1, 2); }
static int http_post(lua_State *L) { return do_request(L, "POST", 1, 2); }
static int http_put(lua_State *L) { return do_request(L, "PUT", 1, 2); }
static int http_patch(lua_State *L) { return do_request(L, "PATCH", 1, 2); }
static int http_delete(lua_State *L) { return do_request(L, "DELETE", 1, 2); }

/* ---- response methods ---------------------------------------------------- */

static const char *reason_phrase(lua_Integer status) {
  switch (status) {
  case 400: return "Bad Request";
  case 401: return "Unauthorized";
  case 403: return "Forbidden";
  case 404: return "Not Found";
  case 405: return "Method Not Allowed";
  case 408: return "Request Timeout";
  case 409: return "Conflict";
  case 410: return "Gone";
  case 413: return "Payload Too Large";
  case 422: return "Unprocessable Entity";
  case 429: return "Too Many Requests";
  case 500: return "Internal Server Error";
  case 502: return "Bad Gateway";
  case 503: return "Service Unavailable";
  case 504: return "Gateway Timeout";
  default: return status >= 500 ? "Server Error" : "Client Error";
  }
}

static int resp_raise_for_status(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_getfield(L, 1, "status");
  lua_Integer status = lua_tointeger(L, -1);
  if (status < 400) {
    lua_settop(L, 1);
    return 1;
  }
  lua_getfield(L, 1, "method");
  lua_getfield(L, 1, "url");
  return luaL_error(L, "%s %s: HTTP %d %s", luaL_optstring(L, -2, "GET"),
                    luaL_optstring(L, -1, "?"), (int)status,
                    reason_phrase(status));
}

static int resp_json(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_getfield(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
  lua_getfield(L, -1, "flowlua");
  lua_getfield(L, -1, "json");
  lua_getfield(L, -1, "decode");
  lua_getfield(L, 1, "body");
  if (lua_pcall(L, 1, 1, 0) == LUA_OK) return 1;
  lua_getfield(L, 1, "method");
  lua_getfield(L, 1, "url");
  return luaL_error(L, "%s %s: the response body is not JSON: %s",
                    luaL_optstring(L, -2, "GET"), luaL_optstring(L, -1, "?"),
                    lua_tostring(L, -3));
}

static int resp_tostring(lua_State *L) {
  lua_getfield(L, 1, "status");
  lua_getfield(L, 1, "method");
  lua_getfield(L, 1, "url");
  lua_pushfstring(L, "http response %d (%s %s)", (int)lua_tointeger(L, -3),
                  luaL_optstring(L, -2, "?"), luaL_optstring(L, -1, "?"));
  return 1;
}

int luaopen_flowlua_http(lua_State *L) {
  static const luaL_Reg req_meta[] = {{"__gc", req_gc}, {NULL, NULL}};
  static const luaL_Reg url_meta[] = {{"__gc", url_gc}, {NULL, NULL}};
  static const luaL_Reg resp_methods[] = {
      {"json", resp_json}, {"raise_for_status", resp_raise_for_status},
      {NULL, NULL}};
  static const luaL_Reg funcs[] = {
      {"request", http_request}, {"get", http_get},     {"post", http_post},
      {"put", http_put},         {"patch", http_patch}, {"delete", http_delete},
      {NULL, NULL}};
  luaL_newmetatable(L, FL_HTTP_REQ_MT);
  luaL_setfuncs(L, req_meta, 0);
  lua_pop(L, 1);
  luaL_newmetatable(L, FL_HTTP_URL_MT);
  luaL_setfuncs(L, url_meta, 0);
  lua_pop(L, 1);
  luaL_newmetatable(L, FL_HTTP_RESP_MT);
  luaL_newlib(L, resp_methods);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, resp_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_pop(L, 1);
  luaL_newlib(L, funcs);
  return 1;
}
