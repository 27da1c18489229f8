/* json.c — numbers, string escaping, UTF-8 and positions; see json.h. */
#include "json.h"

#include <locale.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- numbers out --------------------------------------------------------- */

size_t fl_json_format_int(int64_t i, char *out) {
  char tmp[24];
  uint64_t u = i < 0 ? 0 - (uint64_t)i : (uint64_t)i;
  size_t n = 0, len = 0;
  do {
    tmp[n++] = (char)('0' + u % 10);
    u /= 10;
  } while (u);
  if (i < 0) out[len++] = '-';
  while (n) out[len++] = tmp[--n];
  out[len] = '\0';
  return len;
}

/* printf writes the locale's decimal point; JSON wants '.'. A %g number is
   digits, a sign, 'e' and the point, so whatever else is there (one byte or
   several) is the point. */
static size_t c_locale_point(char *s, size_t n) {
  size_t j = 0;
  int in_point = 0;
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    if ((c >= '0' && c <= '9') || c == '-' || c == '+' || c == 'e') {
      s[j++] = c;
      in_point = 0;
    } else if (!in_point) {
      s[j++] = '.';
      in_point = 1;
    }
  }
  s[j] = '\0';
  return j;
}

/* Powers of ten that doubles hold exactly. */
static const double pow10_exact[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,
                                     1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
                                     1e12, 1e13, 1e14, 1e15, 1e16, 1e17,
                                     1e18, 1e19, 1e20, 1e21, 1e22};

/* What %.15g writes for d, when 1e-4 <= |d| < 1e15 and 15 significant
   digits read back as d; else 0 and *no15 set when they surely do not.
   The digits m are d scaled to 15 integer digits and rounded: no two
   15-digit decimals read as the same double, and the scaling is off by far
   less than half a unit, so m is the only candidate; m / 10^k is exact
   division of exact operands, so it equals what strtod makes of the text. */
static size_t format_15(double d, char *out, int *no15) {
  double a = fabs(d);
  if (!(a >= 1e-4 && a < 1e15)) return 0;
  int e = (int)floor(log10(a)), k = 14 - e;
  if (k < 0 || k > 22) return 0;
  long long m = llround(a * pow10_exact[k]);
  if (m < 100000000000000LL || m >= 1000000000000000LL) return 0;
  *no15 = 1;
  if ((double)m / pow10_exact[k] != a) return 0;
  *no15 = 0;
  char digits[16];
  for (int i = 14; i >= 0; i--, m /= 10) digits[i] = (char)('0' + m % 10);
  int end = 15; /* %g drops trailing zeros of the fraction */
  while (end > 15 - k && end > 0 && digits[end - 1] == '0') end--;
  size_t n = 0;
  if (d < 0) out[n++] = '-';
  if (e >= 0) {
    memcpy(out + n, digits, (size_t)e + 1);
    n += (size_t)e + 1;
    if (end > e + 1) {
      out[n++] = '.';
      memcpy(out + n, digits + e + 1, (size_t)(end - e - 1));
      n += (size_t)(end - e - 1);
    }
  } else {
    out[n++] = '0';
    out[n++] = '.';
    for (int z = 0; z < -e - 1; z++) out[n++] = '0';
    memcpy(out + n, digits, (size_t)end);
    n += (size_t)end;
  }
  out[n] = '\0';
  return n;
}

size_t fl_json_format_double(double d, char *out) {
  /* Integral values below 1e15 are what %.15g would print anyway: digits
     only. Writing them directly skips printf for the common 4.0. */
  if (d > -1e15 && d < 1e15 && d == (double)(int64_t)d && (d != 0 || !signbit(d)))
    return fl_json_format_int((int64_t)d, out);
  int no15 = 0;
  size_t fast = format_15(d, out, &no15);
  if (fast) return fast;
  int n = 0;
  /* Fewer than 15 digits read back as d only when they are what %.15g
     writes, trailing zeros gone, but for subnormals, which hold fewer
     digits: there, the shortest that reads back (5e-324, not
     4.94065645841247e-324). */
  int first = no15 ? 16 : d != 0 && fabs(d) < DBL_MIN ? 1 : 15;
  for (int prec = first; prec <= 17; prec++) {
    n = snprintf(out, FL_JSON_NUMBER_MAX, "%.*g", prec, d);
    /* Same locale both ways, so the check holds whatever its point is. */
    if (prec == 17 || strtod(out, NULL) == d) break;
  }
  return c_locale_point(out, (size_t)n);
}

/* ---- strings out --------------------------------------------------------- */

/* For each byte: 0 if it goes out as it is, else the letter after '\'
   ('u' for \u00XX). DEL and the C1 controls (U+0080..U+009F, the UTF-8
   lead byte 0xC2, marked 'C', then 0x80..0x9F) are valid in a JSON string
   but act on a terminal that shows it, so they go out as \u escapes too:
   the same value to any decoder. */
static const char escapes[256] = {
    [0x7f] = 'u', [0xc2] = 'C',
    ['\b'] = 'b', ['\t'] = 't', ['\n'] = 'n', ['\f'] = 'f', ['\r'] = 'r',
    [0x00] = 'u', [0x01] = 'u', [0x02] = 'u', [0x03] = 'u', [0x04] = 'u',
    [0x05] = 'u', [0x06] = 'u', [0x07] = 'u', [0x0b] = 'u', [0x0e] = 'u',
    [0x0f] = 'u', [0x10] = 'u', [0x11] = 'u', [0x12] = 'u', [0x13] = 'u',
    [0x14] = 'u', [0x15] = 'u', [0x16] = 'u', [0x17] = 'u', [0x18] = 'u',
    [0x19] = 'u', [0x1a] = 'u', [0x1b] = 'u', [0x1c] = 'u', [0x1d] = 'u',
    [0x1e] = 'u', [0x1f] = 'u', ['"'] = '"', ['\\'] = '\\'};

int fl_json_add_string(fl_buf *b, const char *s, size_t n) {
  static const char hex[] = "0123456789abcdef";
  if (n > ((size_t)-1) / 2 || fl_buf_reserve(b, n + 2) != 0) return -1;
  char *o = b->data + b->len;
  *o++ = '"';
  size_t i = 0;
  for (;;) {
    size_t start = i;
    while (i < n && !escapes[(unsigned char)s[i]]) i++;
    memcpy(o, s + start, i - start);
    o += i - start;
    if (i == n) break;
    /* An escape takes up to 6 bytes for 1: make room for it, the rest of
       the string and the closing quote. */
    b->len = (size_t)(o - b->data);
    if (fl_buf_reserve(b, 6 + (n - i)) != 0) return -1;
    o = b->data + b->len;
    unsigned char c = (unsigned char)s[i++];
    char letter = escapes[c];
    if (letter == 'C') {
      /* 0xC2 leads U+0080..U+00FF; only the C1 controls are escaped, and
         a 0xC2 that leads nothing of the kind is copied as it is. */
      if (i == n || (unsigned char)s[i] < 0x80 || (unsigned char)s[i] > 0x9f) {
        *o++ = (char)c;
        continue;
      }
      c = (unsigned char)s[i++];
      letter = 'u';
    }
    *o++ = '\\';
    *o++ = letter;
    if (letter == 'u') {
      *o++ = '0';
      *o++ = '0';
      *o++ = hex[c >> 4];
      *o++ = hex[c & 15];
    }
  }
  *o++ = '"';
  b->len = (size_t)(o - b->data);
  return 0;
}

/* ---- numbers in ---------------------------------------------------------- */

#define IS_DIGIT(c) ((unsigned char)((c) - '0') < 10)

/* strtod on s[0..n), with '.' read as '.' whatever the locale. 0, or -1
   when memory ran out. */
static int read_double(const char *s, size_t n, double *out) {
  const char *point = localeconv()->decimal_point;
  size_t point_len = strlen(point);
  char small[64], *buf = small;
  size_t need = n + point_len + 1;
  if (need > sizeof small && !(buf = malloc(need))) return -1;
  size_t j = 0;
  for (size_t i = 0; i < n; i++) {
    if (s[i] == '.') {
      memcpy(buf + j, point, point_len);
      j += point_len;
    } else {
      buf[j++] = s[i];
    }
  }
  buf[j] = '\0';
  *out = strtod(buf, NULL);
  if (buf != small) free(buf);
  return 0;
}

/* The digits of a number as they are read: the first 19 significant
   ones in m, so that value = m * 10^exp10 while none is dropped. */
typedef struct num_scan {
  uint64_t m;
  int digits;  /* how many digits m holds */
  int dropped; /* digits beyond those 19 */
  int exp10;
} num_scan;

static inline void take_digit(num_scan *n, char c, int fraction) {
  if (fraction && n->m == 0 && c == '0') {
    n->exp10--; /* a leading zero of 0.000x is not significant */
  } else if (n->digits < 19) {
    n->m = n->m * 10 + (uint64_t)(c - '0');
    n->digits++;
    n->exp10 -= fraction;
  } else {
    n->dropped = 1;
  }
}

/* The integer part, the fraction and the exponent, from just after a
   sign; *is_int says whether there was neither fraction nor exponent.
   Returns the end, or NULL with *err_at and *msg set. */
static inline const char *scan_number(const char *p, num_scan *n, int *is_int,
                                      const char **err_at, const char **msg) {
  if (*p == '0') {
    p++;
    if (IS_DIGIT(*p)) {
      *err_at = p;
      *msg = "leading zeros are not allowed in numbers";
      return NULL;
    }
  } else if (IS_DIGIT(*p)) {
    do take_digit(n, *p++, 0);
    while (IS_DIGIT(*p));
  } else {
    *err_at = p;
    *msg = "expected a digit";
    return NULL;
  }
  *is_int = 1;
  if (*p == '.') {
    *is_int = 0;
    p++;
    if (!IS_DIGIT(*p)) {
      *err_at = p;
      *msg = "expected a digit after '.'";
      return NULL;
    }
    do take_digit(n, *p++, 1);
    while (IS_DIGIT(*p));
  }
  if (*p == 'e' || *p == 'E') {
    *is_int = 0;
    p++;
    int eneg = 0;
    if (*p == '+' || *p == '-') eneg = *p++ == '-';
    if (!IS_DIGIT(*p)) {
      *err_at = p;
      *msg = "expected a digit in the exponent";
      return NULL;
    }
    int e = 0;
    do {
      if (e < 100000) e = e * 10 + (*p - '0'); /* beyond, all the same */
      p++;
    } while (IS_DIGIT(*p));
    n->exp10 += eneg ? -e : e;
  }
  return p;
}

const char *fl_json_parse_number(const char *p, fl_json_number *out,
                                 const char **err_at, const char **msg) {
  const char *start = p;
  int neg = *p == '-';
  num_scan n = {0, 0, 0, 0};
  int is_int;
  p = scan_number(p + neg, &n, &is_int, err_at, msg);
  if (!p) return NULL;

  if (is_int && !n.dropped) {
    if (!neg && n.m <= (uint64_t)INT64_MAX) {
      out->is_int = 1;
      out->i = (int64_t)n.m;
      return p;
    }
    if (neg && n.m <= (uint64_t)INT64_MAX + 1) {
      out->is_int = 1;
      out->i = n.m == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)n.m;
      return p;
    }
  }
  out->is_int = 0;
  if (!n.dropped && n.m == 0) {
    out->d = neg ? -0.0 : 0.0;
  } else if (!n.dropped && n.m <= ((uint64_t)1 << 53) && n.exp10 >= -22 &&
             n.exp10 <= 22) {
    /* Both operands exact, so one correctly rounded operation gives the
       correctly rounded result (Clinger's fast path). */
    double d = (double)n.m;
    d = n.exp10 < 0 ? d / pow10_exact[-n.exp10] : d * pow10_exact[n.exp10];
    out->d = neg ? -d : d;
  } else if (read_double(start, (size_t)(p - start), &out->d) != 0) {
    *err_at = start;
    *msg = "not enough memory";
    return NULL;
  }
  return p;
}

/* ---- UTF-8 and positions ------------------------------------------------- */

int fl_json_utf8(uint32_t cp, char *out) {
  if (cp < 0x80) {
    out[0] = (char)cp;
    return 1;
  }
  if (cp < 0x800) {
    out[0] = (char)(0xC0 | (cp >> 6));
    out[1] = (char)(0x80 | (cp & 0x3F));
    return 2;
  }
  if (cp < 0x10000) {
    out[0] = (char)(0xE0 | (cp >> 12));
    out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[2] = (char)(0x80 | (cp & 0x3F));
    return 3;
  }
  out[0] = (char)(0xF0 | (cp >> 18));
  out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
  out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
  out[3] = (char)(0x80 | (cp & 0x3F));
  return 4;
}

void fl_json_position(const char *text, size_t off, size_t *line, size_t *col) {
  size_t l = 1, c = 1, i = 0;
  if (off >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0) i = 3; /* BOM */
  for (; i < off; i++) {
    unsigned char ch = (unsigned char)text[i];
    if (ch == '\n') {
      l++;
      c = 1;
    } else if ((ch & 0xC0) != 0x80) { /* not a continuation byte */
      c++;
    }
  }
  *line = l;
  *col = c;
}
