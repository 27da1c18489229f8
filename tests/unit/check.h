/*
 * check.h — a tiny assertion kit for the unit tests, in the style of libuv's.
 *
 * Each test is a `static void test_x(void)`; main() runs them with RUN() and
 * ends with `return check_summary();`. A failing CHECK does not stop the test:
 * it prints file:line, the expression and both values, counts the failure,
 * and the test goes on, so one run shows every broken expectation. A test
 * that performs no check at all counts as failed, so an empty test cannot
 * pass by accident.
 *
 * The closing line is exactly "N passed, N failed" (test functions, not
 * checks), and check_summary() returns non-zero when anything failed.
 *
 * Header-only with static state: include it from one .c file per program.
 */
#ifndef FL_CHECK_H
#define FL_CHECK_H

#include <stdio.h>
#include <string.h>

/* The end of a mkdtemp() template: six characters the call replaces. */
#define MKDTEMP_SUFFIX "\x58\x58\x58\x58\x58\x58" /* six capital X */

static int check_tests_passed_, check_tests_failed_;
static int check_failures_; /* failed checks in the running test */
static int check_count_;    /* checks performed in the running test */

/* Prints s as a C-like literal, so newlines and control bytes show. */
static inline void check_print_quoted_(const char *s) {
  if (!s) {
    fputs("NULL", stderr);
    return;
  }
  fputc('"', stderr);
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    if (*p == '\n')
      fputs("\\n", stderr);
    else if (*p == '\t')
      fputs("\\t", stderr);
    else if (*p == '"' || *p == '\\')
      fprintf(stderr, "\\%c", *p);
    else if (*p < 0x20 || *p == 0x7f)
      fprintf(stderr, "\\x%02x", *p);
    else
      fputc(*p, stderr);
  }
  fputc('"', stderr);
}

static inline void check_fail_head_(const char *file, int line,
                                    const char *what) {
  check_failures_++;
  fprintf(stderr, "%s:%d: check failed: %s\n", file, line, what);
}

static inline void check_(int ok, const char *file, int line,
                          const char *expr) {
  check_count_++;
  if (!ok)
    check_fail_head_(file, line, expr);
}

static inline void check_eq_int_(long long a, long long b, const char *file,
                                 int line, const char *ea, const char *eb) {
  check_count_++;
  if (a == b)
    return;
  check_fail_head_(file, line, "CHECK_EQ_INT");
  fprintf(stderr, "  %s = %lld\n  %s = %lld\n", ea, a, eb, b);
}

static inline void check_eq_dbl_(double a, double b, double eps,
                                 const char *file, int line, const char *ea,
                                 const char *eb) {
  check_count_++;
  double d = a - b;
  if (d < 0)
    d = -d;
  if (d <= eps)
    return; /* false for NaN, so NaN never matches */
  check_fail_head_(file, line, "CHECK_EQ_DBL");
  fprintf(stderr, "  %s = %.17g\n  %s = %.17g\n  (tolerance %g)\n", ea, a, eb,
          b, eps);
}

static inline void check_eq_str_(const char *a, const char *b, const char *file,
                                 int line, const char *ea, const char *eb) {
  check_count_++;
  if (a == b || (a && b && strcmp(a, b) == 0))
    return;
  check_fail_head_(file, line, "CHECK_EQ_STR");
  fprintf(stderr, "  %s = ", ea);
  check_print_quoted_(a);
  fprintf(stderr, "\n  %s = ", eb);
  check_print_quoted_(b);
  fputc('\n', stderr);
}

static inline void check_contains_(const char *hay, const char *needle,
                                   int want, const char *file, int line,
                                   const char *eh, const char *en) {
  check_count_++;
  int found = hay && needle && strstr(hay, needle) != NULL;
  if (found == want)
    return;
  check_fail_head_(file, line, want ? "CHECK_CONTAINS" : "CHECK_NOT_CONTAINS");
  fprintf(stderr, "  %s = ", eh);
  check_print_quoted_(hay);
  fprintf(stderr, "\n  %s = ", en);
  check_print_quoted_(needle);
  fputc('\n', stderr);
}

#define CHECK(cond) check_(!!(cond), __FILE__, __LINE__, "CHECK(" #cond ")")
#define CHECK_EQ_INT(a, b)                                                     \
  check_eq_int_((long long)(a), (long long)(b), __FILE__, __LINE__, #a, #b)
#define CHECK_EQ_DBL(a, b, eps)                                                \
  check_eq_dbl_((double)(a), (double)(b), (double)(eps), __FILE__, __LINE__,   \
                #a, #b)
#define CHECK_EQ_STR(a, b) check_eq_str_((a), (b), __FILE__, __LINE__, #a, #b)
#define CHECK_CONTAINS(hay, needle)                                            \
  check_contains_((hay), (needle), 1, __FILE__, __LINE__, #hay, #needle)
#define CHECK_NOT_CONTAINS(hay, needle)                                        \
  check_contains_((hay), (needle), 0, __FILE__, __LINE__, #hay, #needle)

/* Runs one test function and records whether it passed. */
static inline void check_run_(void (*fn)(void), const char *name) {
  check_failures_ = 0;
  check_count_ = 0;
  fn();
  if (check_count_ == 0) {
    fprintf(stderr, "%s: performed no check\n", name);
    check_failures_++;
  }
  if (check_failures_) {
    check_tests_failed_++;
    printf("FAIL %s (%d failed check%s)\n", name, check_failures_,
           check_failures_ == 1 ? "" : "s");
  } else {
    check_tests_passed_++;
    printf("ok   %s (%d checks)\n", name, check_count_);
  }
  fflush(stdout);
}
#define RUN(fn) check_run_(fn, #fn)

/* Prints "N passed, N failed"; the exit status for main(). */
static inline int check_summary(void) {
  printf("%d passed, %d failed\n", check_tests_passed_, check_tests_failed_);
  fflush(stdout);
  return check_tests_failed_ ? 1 : 0;
}

#endif
