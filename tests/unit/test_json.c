/*
 * test_json.c — the plain-C parts of flow.json: numbers read exactly
 * (integers stay integers, floats correctly rounded on the fast path and
 * off it), numbers written short and round-tripping, string escaping,
 * UTF-8 from code points, and error positions.
 */
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "json.h"

/* Parses the whole of s; the number must end at its NUL. */
static int parse(const char *s, fl_json_number *n) {
  const char *at = NULL, *msg = NULL;
  const char *end = fl_json_parse_number(s, n, &at, &msg);
  return end && *end == '\0';
}

/* The error message for s, and its offset in *off. */
static const char *parse_error(const char *s, long *off) {
  fl_json_number n;
  const char *at = NULL, *msg = NULL;
  if (fl_json_parse_number(s, &n, &at, &msg)) return NULL;
  *off = (long)(at - s);
  return msg;
}

static void test_integers_stay_integers(void) {
  static const struct {
    const char *text;
    long long want;
  } cases[] = {{"0", 0},
               {"4", 4},
               {"-0", 0},
               {"-17", -17},
               {"1234567890123", 1234567890123LL},
               {"9007199254740993", 9007199254740993LL}, /* not a double */
               {"9223372036854775807", LLONG_MAX},
               {"-9223372036854775808", LLONG_MIN}};
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    fl_json_number n;
    CHECK(parse(cases[i].text, &n));
    CHECK_EQ_INT(n.is_int, 1);
    CHECK_EQ_INT(n.i, cases[i].want);
  }
}

static void test_too_big_for_int64_becomes_float(void) {
  fl_json_number n;
  CHECK(parse("9223372036854775808", &n));
  CHECK_EQ_INT(n.is_int, 0);
  CHECK_EQ_DBL(n.d, 9223372036854775808.0, 0);
  CHECK(parse("-9223372036854775809", &n));
  CHECK_EQ_INT(n.is_int, 0);
  CHECK_EQ_DBL(n.d, -9223372036854775809.0, 0);
  CHECK(parse("123456789012345678901234567890", &n));
  CHECK_EQ_INT(n.is_int, 0);
  CHECK_EQ_DBL(n.d, 1.2345678901234568e29, 0);
}

static void test_fraction_or_exponent_makes_a_float(void) {
  static const struct {
    const char *text;
    double want;
  } cases[] = {{"4.0", 4.0},     {"0.1", 0.1},        {"-0.5", -0.5},
               {"1e3", 1000.0},  {"1E+3", 1000.0},    {"25e-1", 2.5},
               {"0.000123", 0.000123}, {"1.7976931348623157e308", DBL_MAX},
               {"5e-324", 4.9406564584124654e-324}, {"1e400", HUGE_VAL},
               {"1e-400", 0.0},  {"0.30000000000000004", 0.30000000000000004}};
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    fl_json_number n;
    CHECK(parse(cases[i].text, &n));
    CHECK_EQ_INT(n.is_int, 0);
    CHECK(n.d == cases[i].want);
    if (n.d != cases[i].want)
      fprintf(stderr, "  %s read as %.17g\n", cases[i].text, n.d);
  }
  fl_json_number z;
  CHECK(parse("-0.0", &z));
  CHECK(z.d == 0 && signbit(z.d));
}

/* The fast path (few digits, small exponent) must agree with strtod to
   the last bit, and so must the slow path it hands the rest to. */
static void test_floats_agree_with_strtod(void) {
  srand(7);
  int mismatches = 0;
  for (int i = 0; i < 200000; i++) {
    char text[64];
    long long mant = ((long long)rand() << 20) ^ rand();
    int digits = 1 + rand() % 19, exp = rand() % 60 - 30;
    long long cut = 1;
    for (int k = 0; k < digits && cut < LLONG_MAX / 10; k++) cut *= 10;
    mant %= cut;
    int point = rand() % (digits + 1);
    char m[32];
    snprintf(m, sizeof m, "%0*lld", digits, mant);
    if (point > 0) m[0] = (char)('1' + rand() % 9); /* no leading zero */
    snprintf(text, sizeof text, "%s%.*s.%s%se%d", rand() % 2 ? "-" : "",
             point ? point : 1, point ? m : "0", m + point,
             point == digits ? "0" : "", exp);
    fl_json_number n;
    if (!parse(text, &n) || n.is_int || n.d != strtod(text, NULL)) {
      if (mismatches++ < 5)
        fprintf(stderr, "  %s: got %.17g, strtod %.17g\n", text, n.d,
                strtod(text, NULL));
    }
  }
  CHECK_EQ_INT(mismatches, 0);
}

static void test_number_errors_say_where(void) {
  long off = -1;
  CHECK_EQ_STR(parse_error("01", &off), "leading zeros are not allowed in numbers");
  CHECK_EQ_INT(off, 1);
  CHECK_EQ_STR(parse_error("-", &off), "expected a digit");
  CHECK_EQ_INT(off, 1);
  CHECK_EQ_STR(parse_error("-x", &off), "expected a digit");
  CHECK_EQ_INT(off, 1);
  CHECK_EQ_STR(parse_error("1.", &off), "expected a digit after '.'");
  CHECK_EQ_INT(off, 2);
  CHECK_EQ_STR(parse_error("1.e5", &off), "expected a digit after '.'");
  CHECK_EQ_INT(off, 2);
  CHECK_EQ_STR(parse_error("2e", &off), "expected a digit in the exponent");
  CHECK_EQ_INT(off, 2);
  CHECK_EQ_STR(parse_error("2e+", &off), "expected a digit in the exponent");
  CHECK_EQ_INT(off, 3);
  /* A number ends where its grammar does; what follows is the caller's. */
  fl_json_number n;
  const char *at, *msg, *s = "12,3";
  CHECK(fl_json_parse_number(s, &n, &at, &msg) == s + 2);
  CHECK_EQ_INT(n.i, 12);
  s = "0x1p3";
  CHECK(fl_json_parse_number(s, &n, &at, &msg) == s + 1);
}

static void test_format_int(void) {
  char out[FL_JSON_NUMBER_MAX];
  CHECK_EQ_INT(fl_json_format_int(0, out), 1);
  CHECK_EQ_STR(out, "0");
  fl_json_format_int(-42, out);
  CHECK_EQ_STR(out, "-42");
  fl_json_format_int(INT64_MAX, out);
  CHECK_EQ_STR(out, "9223372036854775807");
  CHECK_EQ_INT(fl_json_format_int(INT64_MIN, out), 20);
  CHECK_EQ_STR(out, "-9223372036854775808");
}

static void test_format_double_is_short(void) {
  static const struct {
    double d;
    const char *want;
  } cases[] = {{4.0, "4"},          {-4.0, "-4"},     {0.1, "0.1"},
               {0.5, "0.5"},        {-0.0, "-0"},     {0.0, "0"},
               {1.0 / 3, "0.3333333333333333"},
               {0.1 + 0.2, "0.30000000000000004"},
               {1e15, "1e+15"},     {123456789012345.0, "123456789012345"},
               {1e21, "1e+21"},     {1e-7, "1e-07"},  {1e300, "1e+300"},
               {9007199254740992.0, "9007199254740992"},
               {DBL_MAX, "1.7976931348623157e+308"},
               /* subnormals: the shortest that reads back */
               {5e-324, "5e-324"}, {-1e-320, "-1e-320"},
               {2.2250738585072009e-308, "2.225073858507201e-308"}};
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    char out[FL_JSON_NUMBER_MAX];
    size_t n = fl_json_format_double(cases[i].d, out);
    CHECK_EQ_STR(out, cases[i].want);
    CHECK_EQ_INT(n, strlen(cases[i].want));
  }
}

/* Any finite double written and read back is the same double. */
static void test_format_double_round_trips(void) {
  srand(11);
  int bad = 0;
  for (int i = 0; i < 200000; i++) {
    uint64_t bits = ((uint64_t)rand() << 42) ^ ((uint64_t)rand() << 21) ^ (uint64_t)rand();
    double d;
    memcpy(&d, &bits, sizeof d);
    if (!isfinite(d)) continue;
    char out[FL_JSON_NUMBER_MAX];
    fl_json_format_double(d, out);
    fl_json_number n;
    int ok = parse(out, &n);
    double back = ok ? (n.is_int ? (double)n.i : n.d) : NAN;
    if (back != d || strlen(out) > 24) {
      if (bad++ < 5) fprintf(stderr, "  %.17g written as %s\n", d, out);
    }
  }
  CHECK_EQ_INT(bad, 0);
}

/* What fl_json_format_double promises, done the slow way: the first of
   %.15g, %.16g, %.17g that reads back as d. */
static void reference_format(double d, char *out) {
  /* The shortest of 15, 16 or 17 digits that reads back; for subnormals,
     which hold fewer digits, the shortest of any. */
  int first = d != 0 && fabs(d) < DBL_MIN ? 1 : 15;
  for (int prec = first; prec <= 17; prec++) {
    snprintf(out, FL_JSON_NUMBER_MAX, "%.*g", prec, d);
    if (strtod(out, NULL) == d) return;
  }
}

/* The shortcuts (integers, 15 digits without printf) write exactly what
   printf would: decimal-looking values of every length and scale, and
   random bit patterns. */
static void test_format_double_matches_printf(void) {
  srand(5);
  int bad = 0;
  for (int i = 0; i < 400000; i++) {
    double d;
    if (i % 2) {
      long long m = ((long long)rand() << 31 | rand()) % 100000000000000000LL;
      int digits = 1 + rand() % 17;
      long long cut = 1;
      for (int k = 0; k < digits; k++) cut *= 10;
      d = (double)(m % cut) / pow(10, rand() % 24);
      if (rand() % 2) d = -d;
    } else {
      uint64_t bits = ((uint64_t)rand() << 42) ^ ((uint64_t)rand() << 21) ^ (uint64_t)rand();
      memcpy(&d, &bits, sizeof d);
      if (!isfinite(d)) continue;
    }
    char got[FL_JSON_NUMBER_MAX], want[FL_JSON_NUMBER_MAX];
    fl_json_format_double(d, got);
    reference_format(d, want);
    if (strcmp(got, want) != 0 && bad++ < 5)
      fprintf(stderr, "  %.17g: wrote %s, printf %s\n", d, got, want);
  }
  CHECK_EQ_INT(bad, 0);
}

static const char *escaped(const char *s, size_t n, fl_buf *b) {
  fl_buf_reset(b);
  CHECK_EQ_INT(fl_json_add_string(b, s, n), 0);
  fl_buf_addc(b, '\0'); /* add_string leaves the buffer unterminated */
  return b->data;
}

static void test_add_string_escapes(void) {
  fl_buf b = FL_BUF_INIT;
  CHECK_EQ_STR(escaped("", 0, &b), "\"\"");
  CHECK_EQ_STR(escaped("plain text", 10, &b), "\"plain text\"");
  CHECK_EQ_STR(escaped("a\"b\\c/d", 7, &b), "\"a\\\"b\\\\c/d\"");
  CHECK_EQ_STR(escaped("\b\f\n\r\t", 5, &b), "\"\\b\\f\\n\\r\\t\"");
  CHECK_EQ_STR(escaped("\x01\x1f\x7f", 3, &b), "\"\\u0001\\u001f\\u007f\"");
  /* The C1 controls (U+0080..U+009F) act on a terminal: escaped. U+00A0
     and the rest of 0xC2's range stay; so does a 0xC2 that is not UTF-8. */
  CHECK_EQ_STR(escaped("a\xc2\x80" "b\xc2\x85\xc2\x9b[2J\xc2\x9f", 13, &b),
               "\"a\\u0080" "b\\u0085\\u009b[2J\\u009f\"");
  CHECK_EQ_STR(escaped("\xc2\xa0\xc2\xbf", 4, &b), "\"\xc2\xa0\xc2\xbf\"");
  CHECK_EQ_STR(escaped("x\xc2", 2, &b), "\"x\xc2\"");
  CHECK_EQ_STR(escaped("\xc2\xc2\x85\xc2" "A", 5, &b), "\"\xc2\\u0085\xc2" "A\"");
  CHECK_EQ_STR(escaped("\x80\x85", 2, &b), "\"\x80\x85\"");
  CHECK_EQ_STR(escaped("a\0b", 3, &b), "\"a\\u0000b\"");
  CHECK_EQ_STR(escaped("caf\xc3\xa9 \xf0\x9f\x98\x80", 10, &b),
               "\"caf\xc3\xa9 \xf0\x9f\x98\x80\"");
  /* Appends: what was there stays. */
  fl_buf_reset(&b);
  fl_buf_adds(&b, "x=");
  b.len = 2;
  CHECK_EQ_INT(fl_json_add_string(&b, "\n", 1), 0);
  CHECK_EQ_INT(b.len, 6);
  CHECK(memcmp(b.data, "x=\"\\n\"", 6) == 0);
  /* Only escapes: six bytes out for each byte in. */
  char ctl[1000];
  memset(ctl, 1, sizeof ctl);
  fl_buf_reset(&b);
  CHECK_EQ_INT(fl_json_add_string(&b, ctl, sizeof ctl), 0);
  CHECK_EQ_INT(b.len, 6 * sizeof ctl + 2);
  /* Only C1 controls: three bytes out for each byte in. */
  char c1[1000];
  for (size_t i = 0; i < sizeof c1; i += 2) c1[i] = '\xc2', c1[i + 1] = '\x9b';
  fl_buf_reset(&b);
  CHECK_EQ_INT(fl_json_add_string(&b, c1, sizeof c1), 0);
  CHECK_EQ_INT(b.len, 3 * sizeof c1 + 2);
  fl_buf_free(&b);
}

static void test_utf8(void) {
  char out[4];
  CHECK_EQ_INT(fl_json_utf8(0x41, out), 1);
  CHECK(memcmp(out, "A", 1) == 0);
  CHECK_EQ_INT(fl_json_utf8(0xE9, out), 2);
  CHECK(memcmp(out, "\xc3\xa9", 2) == 0);
  CHECK_EQ_INT(fl_json_utf8(0x20AC, out), 3);
  CHECK(memcmp(out, "\xe2\x82\xac", 3) == 0);
  CHECK_EQ_INT(fl_json_utf8(0x1F600, out), 4);
  CHECK(memcmp(out, "\xf0\x9f\x98\x80", 4) == 0);
  CHECK_EQ_INT(fl_json_utf8(0x10FFFF, out), 4);
  CHECK(memcmp(out, "\xf4\x8f\xbf\xbf", 4) == 0);
}

static void test_position(void) {
  size_t line, col;
  const char *text = "{\"a\": 1,\n  \"b\" 2}";
  fl_json_position(text, 0, &line, &col);
  CHECK_EQ_INT(line, 1);
  CHECK_EQ_INT(col, 1);
  fl_json_position(text, 15, &line, &col);
  CHECK_EQ_INT(line, 2);
  CHECK_EQ_INT(col, 7);
  /* Columns count characters; a BOM is not one. */
  const char *u = "\xEF\xBB\xBF[\"\xc3\xa9\xc3\xa9\", x]";
  fl_json_position(u, 12, &line, &col);
  CHECK_EQ_INT(line, 1);
  CHECK_EQ_INT(col, 8);
}

int main(void) {
  RUN(test_integers_stay_integers);
  RUN(test_too_big_for_int64_becomes_float);
  RUN(test_fraction_or_exponent_makes_a_float);
  RUN(test_floats_agree_with_strtod);
  RUN(test_number_errors_say_where);
  RUN(test_format_int);
  RUN(test_format_double_is_short);
  RUN(test_format_double_round_trips);
  RUN(test_format_double_matches_printf);
  RUN(test_add_string_escapes);
  RUN(test_utf8);
  RUN(test_position);
  return check_summary();
}
