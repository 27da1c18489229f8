/*
 * pg_redact.c — what names a PostgreSQL history, and keeping its password
 * out of text: where a conninfo writes the password, the conninfo shown
 * with "***" in its place, and a known password scrubbed from any text.
 *
 * A leaf: plain string work on what the user gave, no connection. It reads
 * conninfo as libpq does (libpq's "Connection Strings"), but where the two
 * could disagree on a malformed string it hides more, never less: a
 * message may lose a few characters, it must never show a password.
 */
#include "pg_conn.h"

#include <stdlib.h>
#include <string.h>

int fl_pg_is_uri(const char *s) {
  return s && (strncmp(s, "postgresql://", 13) == 0 ||
               strncmp(s, "postgres://", 11) == 0);
}

static int is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' ||
         c == '\v';
}

static void add_span(fl_pg_span *spans, size_t max, size_t *n, size_t off,
                     size_t len) {
  if (*n < max) spans[*n] = (fl_pg_span){off, len};
  (*n)++;
}

static int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* Whether s[0..n), percent-decoded, is "password": a URI may encode the
   key itself (pass%77ord), and libpq decodes keys before it reads them. */
static int key_is_password(const char *s, size_t n) {
  static const char want[] = "password";
  size_t w = 0;
  for (size_t i = 0; i < n; i++, w++) {
    char c = s[i];
    if (c == '%' && i + 2 < n && hex_value(s[i + 1]) >= 0 &&
        hex_value(s[i + 2]) >= 0) {
      c = (char)(hex_value(s[i + 1]) * 16 + hex_value(s[i + 2]));
      i += 2;
    }
    if (w >= sizeof want - 1 || c != want[w]) return 0;
  }
  return w == sizeof want - 1;
}

/* A URI: the userinfo's password, and every `password=` parameter of the
   query. The userinfo is taken to run to the URI's last '@', and the query
   to start at the first '?' after it: a password holding an unescaped '/',
   '?' or '@' is still hidden whole (libpq itself would stop at the first
   '@' or '/', and then fail on the rest). */
static size_t uri_spans(const char *s, size_t start, fl_pg_span *spans,
                        size_t max) {
  size_t n = 0;
  const char *at = strrchr(s + start, '@');
  size_t query_from = start;
  if (at) {
    size_t end = (size_t)(at - s);
    const char *colon = memchr(s + start, ':', end - start);
    if (colon)
      add_span(spans, max, &n, (size_t)(colon - s) + 1,
               end - (size_t)(colon - s) - 1);
    query_from = end + 1;
  }
  const char *q = strchr(s + query_from, '?');
  while (q) {
    const char *param = q + 1;
    const char *amp = strchr(param, '&');
    size_t plen = amp ? (size_t)(amp - param) : strlen(param);
    const char *eq = memchr(param, '=', plen);
    if (eq && key_is_password(param, (size_t)(eq - param)))
      add_span(spans, max, &n, (size_t)(eq + 1 - s),
               plen - (size_t)(eq + 1 - param));
    q = amp;
  }
  return n;
}

/* key=value conninfo: `password = value`, the value bare or in single
   quotes, with backslash escapes in both (libpq's rules). An unterminated
   quote runs to the end, and is hidden to the end. */
static size_t keyword_spans(const char *s, fl_pg_span *spans, size_t max) {
  size_t n = 0, i = 0, len = strlen(s);
  while (i < len) {
    while (i < len && is_space(s[i])) i++;
    size_t key = i;
    while (i < len && s[i] != '=' && !is_space(s[i])) i++;
    size_t key_len = i - key;
    while (i < len && is_space(s[i])) i++;
    if (i >= len || s[i] != '=') {
      /* Not key=value (libpq refuses it): hide the rest if a password
         might be in it. */
      if (key_len && strstr(s + key, "password")) add_span(spans, max, &n, key, len - key);
      return n;
    }
    i++;
    while (i < len && is_space(s[i])) i++;
    size_t value = i;
    if (i < len && s[i] == '\'') {
      for (i++; i < len && s[i] != '\''; i++)
        if (s[i] == '\\' && i + 1 < len) i++;
      if (i < len) i++; /* the closing quote */
    } else {
      for (; i < len && !is_space(s[i]); i++)
        if (s[i] == '\\' && i + 1 < len) i++;
    }
    if (key_len == 8 && memcmp(s + key, "password", 8) == 0)
      add_span(spans, max, &n, value, i - value);
  }
  return n;
}

size_t fl_pg_password_spans(const char *conninfo, fl_pg_span *spans,
                            size_t max) {
  if (!conninfo) return 0;
  if (strncmp(conninfo, "postgresql://", 13) == 0)
    return uri_spans(conninfo, 13, spans, max);
  if (strncmp(conninfo, "postgres://", 11) == 0)
    return uri_spans(conninfo, 11, spans, max);
  return keyword_spans(conninfo, spans, max);
}

void fl_pg_redact(const char *conninfo, fl_buf *out) {
  if (!conninfo) return;
  size_t n = fl_pg_password_spans(conninfo, NULL, 0);
  fl_pg_span *spans = n ? calloc(n, sizeof *spans) : NULL;
  if (n && !spans) { /* nothing shown rather than a password */
    out->oom = 1;
    return;
  }
  fl_pg_password_spans(conninfo, spans, n);
  size_t from = 0;
  for (size_t i = 0; i < n; i++) { /* spans come in order */
    fl_buf_add(out, conninfo + from, spans[i].off - from);
    fl_buf_adds(out, "***");
    from = spans[i].off + spans[i].len;
  }
  fl_buf_adds(out, conninfo + from);
  free(spans);
}

/* At each place, the longest secret that starts there is replaced, so
   that one secret inside another leaves no piece of the longer. */
void fl_pg_scrub(const char *text, const char *const *secrets, size_t n,
                 fl_buf *out) {
  if (!text) return;
  for (const char *p = text; *p;) {
    size_t hit = 0;
    for (size_t i = 0; i < n; i++) {
      size_t len = secrets[i] ? strlen(secrets[i]) : 0;
      if (len > hit && strncmp(p, secrets[i], len) == 0) hit = len;
    }
    if (hit) {
      fl_buf_adds(out, "***");
      p += hit;
    } else {
      fl_buf_addc(out, *p++);
    }
  }
}
