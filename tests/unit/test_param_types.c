/*
 * test_param_types.c — the rules a param's text meets (param_types.c):
 * calendar dates, boolean words, whole numbers; the parts --param, the
 * typed params and resumes share.
 */
#include <lauxlib.h>
#include <lua.h>
#include <string.h>

#include "check.h"
#include "param_types.h"

static int date_ok(const char *s) { return fl_param_date_valid(s, strlen(s)); }

static void test_dates(void) {
  CHECK(date_ok("2024-02-29"));  /* a leap year */
  CHECK(date_ok("2000-02-29"));  /* divisible by 400: leap */
  CHECK(!date_ok("1900-02-29")); /* by 100, not 400: not leap */
  CHECK(!date_ok("2023-02-29"));
  CHECK(date_ok("2023-12-31"));
  CHECK(!date_ok("2023-04-31")); /* April has 30 */
  CHECK(!date_ok("2023-13-01"));
  CHECK(!date_ok("2023-00-10"));
  CHECK(!date_ok("2023-01-00"));
  CHECK(!date_ok("0000-01-01")); /* there is no year 0 */
  CHECK(date_ok("0001-01-01"));
  CHECK(!date_ok("2024-2-01"));   /* two digits each */
  CHECK(!date_ok("2024/02/01"));
  CHECK(!date_ok("2024-02-01T00:00"));
  CHECK(!date_ok("2024-02-0x"));
  CHECK(!date_ok(""));
  /* A NUL inside is not a date either: the length is the text's. */
  CHECK(!fl_param_date_valid("2024-02-01\0", 11));
}

static void test_boolean_words(void) {
  static const char *const yes[] = {"true", "TRUE", "Yes", "on", "ON", "1"};
  static const char *const no[] = {"false", "False", "NO", "off", "Off", "0"};
  for (size_t i = 0; i < sizeof yes / sizeof *yes; i++) {
    int b = -1;
    CHECK(fl_param_text_boolean(yes[i], &b));
    CHECK_EQ_INT(b, 1);
    b = -1;
    CHECK(fl_param_text_boolean(no[i], &b));
    CHECK_EQ_INT(b, 0);
  }
  int b = 7;
  CHECK(!fl_param_text_boolean("maybe", &b));
  CHECK(!fl_param_text_boolean("", &b));
  CHECK(!fl_param_text_boolean("2", &b));
  CHECK(!fl_param_text_boolean("true ", &b));
  CHECK_EQ_INT(b, 7); /* untouched when refused */
}

static void test_whole_numbers(void) {
  lua_State *L = luaL_newstate();
  static const struct {
    const char *text;
    long long want;
  } good[] = {{"3", 3}, {"-2", -2}, {"3.0", 3}, {"1e3", 1000}, {"0x10", 16},
              {" 7 ", 7}};
  for (size_t i = 0; i < sizeof good / sizeof *good; i++) {
    CHECK(fl_param_text_integer(L, good[i].text));
    CHECK(lua_isinteger(L, -1));
    CHECK_EQ_INT(lua_tointeger(L, -1), good[i].want);
    lua_settop(L, 0);
  }
  static const char *const bad[] = {"3.7", "abc", "", "1e999", "nan",
                                    "1e30", "10k"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    CHECK(!fl_param_text_integer(L, bad[i]));
    CHECK_EQ_INT(lua_gettop(L), 0); /* nothing pushed */
  }
  lua_close(L);
}

int main(void) {
  RUN(test_dates);
  RUN(test_boolean_words);
  RUN(test_whole_numbers);
  return check_summary();
}
