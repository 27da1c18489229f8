/*
 * test_secret_mask.c — a secret registered with fl_log_add_secret is masked
 * in every encoding flowlua writes: as it is, JSON-escaped by the value
 * encoder (params, results) and by the log/store encoder (which differ in
 * \b and \f), JSON-escaped twice, and percent-encoded as http's query
 * option writes it.
 */
#include <stdlib.h>

#include "check.h"
#include "log.h"

static char *masked(fl_logger *lg, const char *s) {
  return fl_log_mask_dup(lg, s);
}

static void expect(fl_logger *lg, const char *in, const char *want) {
  char *got = masked(lg, in);
  CHECK_EQ_STR(got, want);
  free(got);
}

static void test_every_encoding(void) {
  fl_logger lg;
  fl_logger_init(&lg, FLOWLUA_LOG_INFO, FLOWLUA_LOG_TEXT, NULL, NULL);
  CHECK_EQ_INT(fl_log_add_secret(&lg, "pa\"ss\\w 1/x"), 0);
  expect(&lg, "auth failed for pa\"ss\\w 1/x", "auth failed for ***");
  expect(&lg, "{\"token\":\"pa\\\"ss\\\\w 1/x\"}", "{\"token\":\"***\"}");
  /* a result that is a string of encoded JSON: escaped twice */
  expect(&lg, "\"[\\\"pa\\\\\\\"ss\\\\\\\\w 1/x\\\"]\"", "\"[\\\"***\\\"]\"");
  expect(&lg, "GET http://h/p?token=pa%22ss%5Cw%201%2Fx: HTTP 500",
         "GET http://h/p?token=***: HTTP 500");
  CHECK(fl_log_has_secret(&lg, "x=pa%22ss%5Cw%201%2Fx", 21));
  CHECK(!fl_log_has_secret(&lg, "pa ss w", 7));
  fl_logger_free(&lg);
}

static void test_both_json_escapers(void) {
  fl_logger lg;
  fl_logger_init(&lg, FLOWLUA_LOG_INFO, FLOWLUA_LOG_TEXT, NULL, NULL);
  CHECK_EQ_INT(fl_log_add_secret(&lg, "a\bb\x01"), 0);
  expect(&lg, "[\"a\\bb\\u0001\"]", "[\"***\"]");       /* value encoder */
  expect(&lg, "[\"a\\u0008b\\u0001\"]", "[\"***\"]");   /* log/store encoder */
  fl_logger_free(&lg);
}

/* DEL and the C1 controls are escaped by both JSON encoders (as \u007f
   and \u0080..\u009f): the escaped forms are masked, the raw one too. */
static void test_terminal_controls(void) {
  fl_logger lg;
  fl_logger_init(&lg, FLOWLUA_LOG_INFO, FLOWLUA_LOG_TEXT, NULL, NULL);
  CHECK_EQ_INT(fl_log_add_secret(&lg, "k\x7fy\xc2\x85z"), 0);
  expect(&lg, "raw k\x7fy\xc2\x85z.", "raw ***.");
  expect(&lg, "{\"t\":\"k\\u007fy\\u0085z\"}", "{\"t\":\"***\"}");
  expect(&lg, "\"[\\\"k\\\\u007fy\\\\u0085z\\\"]\"", "\"[\\\"***\\\"]\"");
  expect(&lg, "?t=k%7Fy%C2%85z", "?t=***");
  fl_logger_free(&lg);
}

static void test_plain_secret_has_one_form(void) {
  fl_logger lg;
  fl_logger_init(&lg, FLOWLUA_LOG_INFO, FLOWLUA_LOG_TEXT, NULL, NULL);
  CHECK_EQ_INT(fl_log_add_secret(&lg, "s3cr3t-t0ken"), 0);
  /* every encoding of it is itself: one entry, not five */
  CHECK_EQ_INT((int)lg.n_secrets, 1);
  expect(&lg, "x s3cr3t-t0ken y", "x *** y");
  fl_logger_free(&lg);
}

int main(void) {
  RUN(test_every_encoding);
  RUN(test_both_json_escapers);
  RUN(test_terminal_controls);
  RUN(test_plain_secret_has_one_form);
  return check_summary();
}
