/*
 * test_http_redirect.c — fl_http_redirect_kind: which redirects keep the
 * request's headers (same origin), which drop them (another scheme, host
 * or port), which are refused (https to http, schemes other than http(s)).
 */
#include "check.h"
#include "http.h"

static void test_same_origin(void) {
  CHECK_EQ_INT(fl_http_redirect_kind("http://a.example/x", "http://a.example/y?q=1"),
               FL_REDIRECT_SAME_ORIGIN);
  /* default ports written out or not, host case, user info */
  CHECK_EQ_INT(fl_http_redirect_kind("http://a.example/x", "http://A.Example:80/"),
               FL_REDIRECT_SAME_ORIGIN);
  CHECK_EQ_INT(fl_http_redirect_kind("https://a.example:443", "HTTPS://a.example/z"),
               FL_REDIRECT_SAME_ORIGIN);
  CHECK_EQ_INT(fl_http_redirect_kind("http://u:p@a.example:8080/", "http://a.example:8080/b"),
               FL_REDIRECT_SAME_ORIGIN);
  CHECK_EQ_INT(fl_http_redirect_kind("http://[::1]:8080/", "http://[::1]:8080/b"),
               FL_REDIRECT_SAME_ORIGIN);
}

static void test_other_origin(void) {
  /* another port on the same host is another origin */
  CHECK_EQ_INT(fl_http_redirect_kind("http://127.0.0.1:8080/", "http://127.0.0.1:8081/"),
               FL_REDIRECT_OTHER_ORIGIN);
  CHECK_EQ_INT(fl_http_redirect_kind("http://127.0.0.1/", "http://127.0.0.1:8080/"),
               FL_REDIRECT_OTHER_ORIGIN);
  CHECK_EQ_INT(fl_http_redirect_kind("http://a.example/", "http://b.example/"),
               FL_REDIRECT_OTHER_ORIGIN);
  /* a longer host with the same start, and a host hidden in user info */
  CHECK_EQ_INT(fl_http_redirect_kind("http://a.example/", "http://a.example.evil/"),
               FL_REDIRECT_OTHER_ORIGIN);
  CHECK_EQ_INT(fl_http_redirect_kind("http://a.example/", "http://a.example@evil/"),
               FL_REDIRECT_OTHER_ORIGIN);
  CHECK_EQ_INT(fl_http_redirect_kind("http://[::1]:8080/", "http://[::2]:8080/"),
               FL_REDIRECT_OTHER_ORIGIN);
  /* an upgrade is safe but still another origin (scheme and port) */
  CHECK_EQ_INT(fl_http_redirect_kind("http://a.example/", "https://a.example/"),
               FL_REDIRECT_OTHER_ORIGIN);
}

static void test_refused(void) {
  CHECK_EQ_INT(fl_http_redirect_kind("https://a.example/", "http://a.example/"),
               FL_REDIRECT_DOWNGRADE);
  CHECK_EQ_INT(fl_http_redirect_kind("HTTPS://a.example:8443/", "http://b.example:8443/"),
               FL_REDIRECT_DOWNGRADE);
  CHECK_EQ_INT(fl_http_redirect_kind("http://a.example/", "file:///etc/passwd"),
               FL_REDIRECT_BAD_SCHEME);
  CHECK_EQ_INT(fl_http_redirect_kind("https://a.example/", "ftp://a.example/"),
               FL_REDIRECT_BAD_SCHEME);
  CHECK_EQ_INT(fl_http_redirect_kind("http://a.example/", "/relative"),
               FL_REDIRECT_BAD_SCHEME);
}

int main(void) {
  RUN(test_same_origin);
  RUN(test_other_origin);
  RUN(test_refused);
  return check_summary();
}
