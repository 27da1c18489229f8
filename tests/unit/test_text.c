/*
 * test_text.c — the text-producing modules: fl_buf, log record formatting
 * (text and JSON), level names, secret masking, and the command line parser.
 */
#define _POSIX_C_SOURCE 200809L /* setenv, tzset */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "buf.h"
#include "check.h"
#include "cli.h"
#include "flowlua.h"
#include "log.h"
#include "utf8.h"

/* 2025-11-28 16:10:01.500 UTC: an exact binary fraction, so the
   milliseconds cannot round either way. */
static const double T0 = 1764346201.5;

/* ---- fl_buf ---------------------------------------------------------------
 */

static void test_buf_append(void) {
  fl_buf b = FL_BUF_INIT;
  CHECK_EQ_STR(fl_buf_str(&b), ""); /* never NULL, even before any append */
  fl_buf_adds(&b, "abc");
  fl_buf_addc(&b, '-');
  fl_buf_add(&b, "xyz123", 3);
  CHECK_EQ_STR(fl_buf_str(&b), "abc-xyz");
  CHECK_EQ_INT(b.len, 7);
  /* Bytes after an embedded NUL are kept; len counts them. */
  fl_buf_add(&b, "\0q", 2);
  CHECK_EQ_INT(b.len, 9);
  CHECK_EQ_INT(b.data[8], 'q');
  CHECK_EQ_INT(b.data[9], '\0');
  /* Reset empties but keeps the memory. */
  char *mem = b.data;
  size_t cap = b.cap;
  fl_buf_reset(&b);
  CHECK_EQ_INT(b.len, 0);
  CHECK_EQ_STR(fl_buf_str(&b), "");
  CHECK(b.data == mem);
  CHECK_EQ_INT(b.cap, cap);
  fl_buf_adds(&b, "again");
  CHECK_EQ_STR(fl_buf_str(&b), "again");
  CHECK(!b.oom);
  fl_buf_free(&b);
  CHECK(b.data == NULL);
  CHECK_EQ_INT(b.len, 0);
}

/* Many small appends grow the buffer through several reallocations. */
static void test_buf_many_appends(void) {
  fl_buf b = FL_BUF_INIT;
  for (int i = 0; i < 10000; i++)
    fl_buf_addc(&b, (char)('a' + i % 26));
  CHECK_EQ_INT(b.len, 10000);
  CHECK(b.cap > 10000);
  int wrong = 0;
  for (int i = 0; i < 10000; i++)
    if (b.data[i] != (char)('a' + i % 26))
      wrong++;
  CHECK_EQ_INT(wrong, 0);
  CHECK_EQ_INT(b.data[10000], '\0');
  fl_buf_free(&b);
}

/* Formatted output under 256 bytes goes through a stack buffer; longer output
   is formatted a second time straight into the buffer. Check both sides of
   that line and far past it. */
static void test_buf_printf_growth(void) {
  static const size_t sizes[] = {0, 1, 254, 255, 256, 257, 1000, 70000};
  char *src = malloc(70001);
  CHECK(src != NULL);
  if (!src)
    return;
  for (size_t i = 0; i < 70000; i++)
    src[i] = (char)('A' + i % 23);
  for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
    size_t n = sizes[k];
    fl_buf b = FL_BUF_INIT;
    fl_buf_adds(&b, "<<");
    fl_buf_addf(&b, "%.*s|%d", (int)n, src, 42);
    fl_buf_adds(&b, ">>");
    CHECK_EQ_INT(b.len, 2 + n + 3 + 2);
    CHECK(memcmp(b.data, "<<", 2) == 0);
    CHECK(memcmp(b.data + 2, src, n) == 0);
    CHECK(memcmp(b.data + 2 + n, "|42>>", 6) == 0); /* NUL included */
    CHECK(!b.oom);
    fl_buf_free(&b);
  }
  free(src);
}

static void test_buf_json_string(void) {
  fl_buf b = FL_BUF_INIT;
  fl_buf_add_json_string(&b, "");
  CHECK_EQ_STR(fl_buf_str(&b), "\"\"");

  fl_buf_reset(&b);
  fl_buf_add_json_string(&b, "say \"hi\"");
  CHECK_EQ_STR(fl_buf_str(&b), "\"say \\\"hi\\\"\"");

  fl_buf_reset(&b);
  fl_buf_add_json_string(&b, "C:\\dir\\");
  CHECK_EQ_STR(fl_buf_str(&b), "\"C:\\\\dir\\\\\"");

  fl_buf_reset(&b);
  fl_buf_add_json_string(&b, "a\nb\rc\td");
  CHECK_EQ_STR(fl_buf_str(&b), "\"a\\nb\\rc\\td\"");

  /* Other control bytes, and DEL, as \u00XX with lower-case hex. */
  fl_buf_reset(&b);
  fl_buf_add_json_string(&b, "\x01x\x1f\x7f\x08");
  CHECK_EQ_STR(fl_buf_str(&b), "\"\\u0001x\\u001f\\u007f\\u0008\"");

  /* UTF-8 passes through untouched. */
  fl_buf_reset(&b);
  fl_buf_add_json_string(&b, "caf\xc3\xa9 \xe2\x82\xac");
  CHECK_EQ_STR(fl_buf_str(&b), "\"caf\xc3\xa9 \xe2\x82\xac\"");

  /* The C1 controls (U+0080..U+009F, 0xC2 0x80..0x9F) act on a terminal:
     escaped. U+00A0 and a 0xC2 that leads nothing stay as they are. */
  fl_buf_reset(&b);
  fl_buf_add_json_string(&b, "a\xc2\x85\xc2\x9b[2J\xc2\xa0\xc2");
  CHECK_EQ_STR(fl_buf_str(&b), "\"a\\u0085\\u009b[2J\xc2\xa0\xc2\"");
  fl_buf_free(&b);
}

/* Text longer than head + tail keeps its ends, cut on UTF-8 boundaries. */
static void test_buf_bounded(void) {
  fl_buf b = FL_BUF_INIT;
  fl_buf_add_bounded(&b, "0123456789", 10, 4, 6);
  CHECK_EQ_STR(fl_buf_str(&b), "0123456789"); /* head + tail: all of it */
  fl_buf_reset(&b);
  fl_buf_add_bounded(&b, "0123456789", 10, 3, 3);
  CHECK_EQ_STR(fl_buf_str(&b), "012\n[\xe2\x80\xa6 4 bytes left out \xe2\x80\xa6]\n789");
  /* "\xc3\xa9" is two bytes: a cut inside one drops it whole, at both ends. */
  fl_buf_reset(&b);
  fl_buf_add_bounded(&b, "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9", 10, 3, 3);
  CHECK_EQ_STR(fl_buf_str(&b), "\xc3\xa9\n[\xe2\x80\xa6 6 bytes left out \xe2\x80\xa6]\n\xc3\xa9");
  /* A four-byte character at the head's end goes back three bytes. */
  fl_buf_reset(&b);
  fl_buf_add_bounded(&b, "a\xf0\x9f\x98\x80" "bcdefgh", 12, 4, 2);
  CHECK_EQ_STR(fl_buf_str(&b), "a\n[\xe2\x80\xa6 9 bytes left out \xe2\x80\xa6]\ngh");
  fl_buf_free(&b);
}

/* ---- a minimal JSON validator ---------------------------------------------
   Enough of RFC 8259 to tell a well-formed line from a broken one. */

static const char *json_value(const char *p, int depth);

static const char *json_ws(const char *p) {
  while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
    p++;
  return p;
}

static const char *json_string(const char *p) {
  if (*p++ != '"')
    return NULL;
  for (;;) {
    unsigned char c = (unsigned char)*p;
    if (c == '"')
      return p + 1;
    if (c < 0x20)
      return NULL; /* also the end of the text */
    if (c == '\\') {
      p++;
      if (*p == 'u') {
        for (int i = 1; i <= 4; i++)
          if (!isxdigit((unsigned char)p[i]))
            return NULL;
        p += 4;
      } else if (!*p || !strchr("\"\\/bfnrt", *p)) {
        return NULL;
      }
    }
    p++;
  }
}

static const char *json_number(const char *p) {
  if (*p == '-')
    p++;
  if (*p == '0')
    p++;
  else if (isdigit((unsigned char)*p))
    while (isdigit((unsigned char)*p))
      p++;
  else
    return NULL;
  if (*p == '.') {
    if (!isdigit((unsigned char)*++p))
      return NULL;
    while (isdigit((unsigned char)*p))
      p++;
  }
  if (*p == 'e' || *p == 'E') {
    p++;
    if (*p == '+' || *p == '-')
      p++;
    if (!isdigit((unsigned char)*p))
      return NULL;
    while (isdigit((unsigned char)*p))
      p++;
  }
  return p;
}

/* Members of an object (with keys) or elements of an array (without). */
static const char *json_members(const char *p, char close, int keys,
                                int depth) {
  p = json_ws(p);
  if (*p == close)
    return p + 1;
  for (;;) {
    if (keys) {
      if (!(p = json_string(p)))
        return NULL;
      p = json_ws(p);
      if (*p++ != ':')
        return NULL;
    }
    if (!(p = json_value(json_ws(p), depth + 1)))
      return NULL;
    p = json_ws(p);
    if (*p == close)
      return p + 1;
    if (*p++ != ',')
      return NULL;
    p = json_ws(p);
  }
}

static const char *json_value(const char *p, int depth) {
  if (depth > 64)
    return NULL;
  switch (*p) {
  case '{':
    return json_members(p + 1, '}', 1, depth);
  case '[':
    return json_members(p + 1, ']', 0, depth);
  case '"':
    return json_string(p);
  case 't':
    return strncmp(p, "true", 4) == 0 ? p + 4 : NULL;
  case 'f':
    return strncmp(p, "false", 5) == 0 ? p + 5 : NULL;
  case 'n':
    return strncmp(p, "null", 4) == 0 ? p + 4 : NULL;
  default:
    return json_number(p);
  }
}

static int json_valid(const char *s) {
  const char *p = json_value(json_ws(s), 0);
  return p && *json_ws(p) == '\0';
}

/* The validator itself must reject what it should, or it proves nothing. */
static void test_json_validator(void) {
  CHECK(json_valid("{\"a\":\"b\",\"n\":-1.5e3,\"l\":[1,true,null],\"o\":{}}"));
  CHECK(!json_valid("{\"a\":\"b\""));
  CHECK(!json_valid("{\"a\":\"b\"}x"));
  CHECK(!json_valid("{\"a\":\"x\ny\"}")); /* raw newline in a string */
  CHECK(!json_valid("{\"a\":\"\\q\"}"));
  CHECK(!json_valid("{\"a\":.5}"));
  CHECK(!json_valid("{a:1}"));
  CHECK(!json_valid("{\"a\":1,}"));
}

/* ---- log records -----------------------------------------------------------
 */

/* Local time is used in text lines: pin it to UTC for exact expectations. */
static void use_utc(void) {
  setenv("TZ", "UTC", 1);
  tzset();
}

static void test_log_text_format(void) {
  use_utc();
  flowlua_log_record rec;
  fl_log_record_init(&rec, FLOWLUA_LOG_INFO);
  rec.time = T0;
  rec.task = "fetch";
  rec.message = "attempt 1 failed";
  rec.error = "boom\nstack traceback:\n\t[C]: in ?\n\tetl.lua:3: in fetch";
  fl_buf b = FL_BUF_INIT;
  fl_log_format(&b, &rec, FLOWLUA_LOG_TEXT);
  /* The error's first line stays on the record's line; the traceback follows
     on lines indented by 4 spaces. No trailing newline. */
  CHECK_EQ_STR(fl_buf_str(&b),
               "2025-11-28 16:10:01.500 INFO  fetch: attempt 1 failed: boom\n"
               "    stack traceback:\n"
               "    \t[C]: in ?\n"
               "    \tetl.lua:3: in fetch");
  CHECK_CONTAINS(fl_buf_str(&b), " INFO  ");
  CHECK_CONTAINS(fl_buf_str(&b), "fetch: attempt 1 failed");
  CHECK_CONTAINS(fl_buf_str(&b), "\n    stack traceback:");
  CHECK(b.len > 0 && b.data[b.len - 1] != '\n');
  fl_buf_free(&b);
}

static void test_log_text_variants(void) {
  use_utc();
  static const struct {
    int level;
    const char *task, *message, *error, *want;
  } cases[] = {
      /* No task: no prefix. No error: nothing after the message. */
      {FLOWLUA_LOG_DEBUG, NULL, "flow started", NULL,
       "2025-11-28 16:10:01.500 DEBUG flow started"},
      {FLOWLUA_LOG_WARN, "t#2", "retrying", "timeout",
       "2025-11-28 16:10:01.500 WARN  t#2: retrying: timeout"},
      {FLOWLUA_LOG_ERROR, "t[3]", "failed", "x\n",
       "2025-11-28 16:10:01.500 ERROR t[3]: failed: x"},
      /* An empty traceback line is kept, indented. */
      {FLOWLUA_LOG_ERROR, NULL, "m", "a\n\nb",
       "2025-11-28 16:10:01.500 ERROR m: a\n    \n    b"},
      /* A level out of range still lines up. */
      {99, NULL, "odd", NULL, "2025-11-28 16:10:01.500 ?     odd"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    flowlua_log_record rec;
    fl_log_record_init(&rec, cases[i].level);
    rec.time = T0;
    rec.task = cases[i].task;
    rec.message = cases[i].message;
    rec.error = cases[i].error;
    fl_buf b = FL_BUF_INIT;
    fl_log_format(&b, &rec, FLOWLUA_LOG_TEXT);
    CHECK_EQ_STR(fl_buf_str(&b), cases[i].want);
    fl_buf_free(&b);
  }
}

static void test_log_json_format(void) {
  flowlua_log_record rec;
  fl_log_record_init(&rec, FLOWLUA_LOG_WARN);
  rec.time = T0;
  rec.flow = "etl";
  rec.run_id = "20251128T161001-ab12";
  rec.task = "fetch#2";
  rec.attempt = 2;
  rec.task_state = FLOWLUA_TASK_FAILED;
  rec.flow_state = FLOWLUA_FLOW_RUNNING; /* task_state wins */
  rec.duration = 0.25;
  rec.error = "bad \"json\"\nstack traceback:\n\tetl.lua:3\x01";
  rec.message = "attempt 2 failed \\ retrying";
  fl_buf b = FL_BUF_INIT;
  fl_log_format(&b, &rec, FLOWLUA_LOG_JSON);
  const char *s = fl_buf_str(&b);
  CHECK(json_valid(s));
  CHECK(strchr(s, '\n') == NULL); /* one line */
  CHECK(s[0] == '{' && b.len > 0 && s[b.len - 1] == '}');
  CHECK_CONTAINS(s, "{\"time\":\"2025-11-28T16:10:01.500Z\"");
  CHECK_CONTAINS(s, ",\"level\":\"warn\"");
  CHECK_CONTAINS(s, ",\"flow\":\"etl\"");
  CHECK_CONTAINS(s, ",\"run_id\":\"20251128T161001-ab12\"");
  CHECK_CONTAINS(s, ",\"task\":\"fetch#2\"");
  CHECK_CONTAINS(s, ",\"attempt\":2");
  CHECK_CONTAINS(s, ",\"state\":\"Failed\"");
  CHECK_NOT_CONTAINS(s, "flow_state");
  CHECK_CONTAINS(s, ",\"duration\":0.25");
  CHECK_CONTAINS(s, ",\"error\":\"bad \\\"json\\\"\\nstack traceback:"
                    "\\n\\tetl.lua:3\\u0001\"");
  CHECK_CONTAINS(s, ",\"message\":\"attempt 2 failed \\\\ retrying\"}");
  fl_buf_free(&b);
}

/* Fields that do not apply are left out, and a flow state change says so. */
static void test_log_json_sparse(void) {
  flowlua_log_record rec;
  fl_log_record_init(&rec, FLOWLUA_LOG_INFO);
  rec.time = T0;
  rec.flow = "etl";
  rec.flow_state = FLOWLUA_FLOW_SUCCESS;
  rec.message = "flow finished";
  fl_buf b = FL_BUF_INIT;
  fl_log_format(&b, &rec, FLOWLUA_LOG_JSON);
  const char *s = fl_buf_str(&b);
  CHECK(json_valid(s));
  CHECK_EQ_STR(s, "{\"time\":\"2025-11-28T16:10:01.500Z\",\"level\":\"info\","
                  "\"flow\":\"etl\",\"flow_state\":\"Success\","
                  "\"message\":\"flow finished\"}");
  /* A NULL message is written as "", keeping the field. */
  fl_buf_reset(&b);
  fl_log_record_init(&rec, FLOWLUA_LOG_ERROR);
  rec.message = NULL;
  fl_log_format(&b, &rec, FLOWLUA_LOG_JSON);
  CHECK(json_valid(fl_buf_str(&b)));
  CHECK_CONTAINS(fl_buf_str(&b), "\"message\":\"\"}");
  CHECK_NOT_CONTAINS(fl_buf_str(&b), "\"attempt\":");
  CHECK_NOT_CONTAINS(fl_buf_str(&b), "\"duration\":");
  CHECK_NOT_CONTAINS(fl_buf_str(&b), "\"error\":"); /* the key, not the level */
  fl_buf_free(&b);
}

static void test_log_level_parse(void) {
  CHECK_EQ_INT(fl_log_level_parse("debug"), FLOWLUA_LOG_DEBUG);
  CHECK_EQ_INT(fl_log_level_parse("info"), FLOWLUA_LOG_INFO);
  CHECK_EQ_INT(fl_log_level_parse("warn"), FLOWLUA_LOG_WARN);
  CHECK_EQ_INT(fl_log_level_parse("warning"), FLOWLUA_LOG_WARN);
  CHECK_EQ_INT(fl_log_level_parse("error"), FLOWLUA_LOG_ERROR);
  CHECK_EQ_INT(fl_log_level_parse("INFO"), -1);
  CHECK_EQ_INT(fl_log_level_parse("off"), -1);
  CHECK_EQ_INT(fl_log_level_parse(""), -1);
  CHECK_EQ_INT(fl_log_level_parse("inf"), -1);
  for (int l = FLOWLUA_LOG_DEBUG; l <= FLOWLUA_LOG_ERROR; l++)
    CHECK_EQ_INT(fl_log_level_parse(fl_log_level_name(l)), l);
  CHECK_EQ_STR(fl_log_level_name(FLOWLUA_LOG_OFF), "?");
  CHECK_EQ_STR(fl_log_level_name(-1), "?");
}

/* What a logger callback saw. */
static char seen_line[512], seen_message[128];
static int seen_calls;
static void capture_cb(void *ud, const flowlua_log_record *rec) {
  (void)ud;
  seen_calls++;
  snprintf(seen_line, sizeof seen_line, "%s", rec->line ? rec->line : "(null)");
  snprintf(seen_message, sizeof seen_message, "%s", rec->message);
}

/* Secrets are masked in the delivered record and line, longest first; the
   caller's record is given back unchanged; levels below the threshold are
   dropped. */
static void test_log_emit_masks_secrets(void) {
  use_utc();
  fl_logger lg;
  fl_logger_init(&lg, FLOWLUA_LOG_INFO, FLOWLUA_LOG_TEXT, capture_cb, NULL);
  CHECK_EQ_INT(fl_log_add_secret(&lg, "hunter2"), 0);
  CHECK_EQ_INT(fl_log_add_secret(&lg, "hunter2-extra"), 0);
  CHECK_EQ_INT(fl_log_add_secret(&lg, "hunter2"), 0); /* no duplicate */
  CHECK_EQ_INT(fl_log_add_secret(&lg, ""), 0);        /* ignored */
  CHECK_EQ_INT(lg.n_secrets, 2);

  flowlua_log_record rec;
  fl_log_record_init(&rec, FLOWLUA_LOG_DEBUG);
  rec.message = "hidden";
  seen_calls = 0;
  fl_log_emit(&lg, &rec);
  CHECK_EQ_INT(seen_calls, 0);

  const char *msg = "token=hunter2-extra and hunter2!";
  const char *err = "auth hunter2\nat hunter2.lua";
  fl_log_record_init(&rec, FLOWLUA_LOG_ERROR);
  rec.time = T0;
  rec.message = msg;
  rec.error = err;
  fl_log_emit(&lg, &rec);
  CHECK_EQ_INT(seen_calls, 1);
  CHECK_EQ_STR(seen_message, "token=*** and ***!");
  CHECK_EQ_STR(seen_line, "2025-11-28 16:10:01.500 ERROR token=*** and ***!: "
                          "auth ***\n    at ***.lua");
  CHECK_NOT_CONTAINS(seen_line, "hunter2");
  CHECK(rec.message == msg);
  CHECK(rec.error == err);
  CHECK(rec.line == NULL);

  char *dup = fl_log_mask_dup(&lg, "x hunter2 y");
  CHECK_EQ_STR(dup, "x *** y");
  free(dup);
  CHECK(fl_log_mask_dup(&lg, NULL) == NULL);
  fl_logger_free(&lg);
}

/* ---- the command line ------------------------------------------------------
 */

enum { ERRLEN = 256 };

/* argv from a NULL-terminated list, with "flowlua" in front. */
#define ARGV(...) ((char *[]){"flowlua", __VA_ARGS__, NULL})

static int parse(char **argv, cli_args *a, char *err) {
  int argc = 0;
  while (argv[argc])
    argc++;
  err[0] = '\0';
  return cli_parse(argc, argv, a, err, ERRLEN);
}

static void test_cli_script_only(void) {
  cli_args a;
  char err[ERRLEN];
  CHECK_EQ_INT(parse(ARGV("etl.lua"), &a, err), 0);
  CHECK_EQ_INT(a.command, CLI_RUN);
  CHECK_EQ_STR(a.script, "etl.lua");
  CHECK(a.flow == NULL);
  CHECK_EQ_INT(a.once, 0);
  CHECK_EQ_INT(a.quiet, 0);
  CHECK_EQ_INT(a.concurrency, 0);
  CHECK_EQ_INT(a.log_level, -1);
  CHECK_EQ_INT(a.log_format, -1);
  CHECK_EQ_INT(a.n_params, 0);
  cli_args_free(&a);
  /* "-" alone is a path (stdin by convention), not an option. */
  CHECK_EQ_INT(parse(ARGV("-"), &a, err), 0);
  CHECK_EQ_STR(a.script, "-");
  cli_args_free(&a);
}

/* Options before and after the script, in both value forms, come out the
   same. */
static void test_cli_options_around_script(void) {
  char **forms[] = {
      ARGV("--once", "--concurrency", "4", "--flow", "daily", "etl.lua",
           "--log-level", "debug", "-q", "--log-format", "json"),
      ARGV("--once", "--concurrency=4", "--flow=daily", "etl.lua",
           "--log-level=debug", "--quiet", "--log-format=json"),
      ARGV("etl.lua", "--log-format=json", "--log-level", "debug", "--quiet",
           "--flow", "daily", "--concurrency", "4", "--once"),
  };
  for (size_t i = 0; i < sizeof forms / sizeof forms[0]; i++) {
    cli_args a;
    char err[ERRLEN];
    CHECK_EQ_INT(parse(forms[i], &a, err), 0);
    CHECK_EQ_STR(err, "");
    CHECK_EQ_INT(a.command, CLI_RUN);
    CHECK_EQ_STR(a.script, "etl.lua");
    CHECK_EQ_STR(a.flow, "daily");
    CHECK_EQ_INT(a.once, 1);
    CHECK_EQ_INT(a.quiet, 1);
    CHECK_EQ_INT(a.concurrency, 4);
    CHECK_EQ_INT(a.log_level, FLOWLUA_LOG_DEBUG);
    CHECK_EQ_INT(a.log_format, FLOWLUA_LOG_JSON);
    cli_args_free(&a);
  }
  /* Later values win; "warning" is an alias; text is a format. */
  cli_args a;
  char err[ERRLEN];
  CHECK_EQ_INT(parse(ARGV("--log-level=error", "x.lua", "--log-level",
                          "warning", "--log-format", "json",
                          "--log-format=text", "--concurrency=2147483647"),
                     &a, err),
               0);
  CHECK_EQ_INT(a.log_level, FLOWLUA_LOG_WARN);
  CHECK_EQ_INT(a.log_format, FLOWLUA_LOG_TEXT);
  CHECK_EQ_INT(a.concurrency, 2147483647);
  cli_args_free(&a);
}

static void test_cli_repeated_param(void) {
  char **argv = ARGV("--param", "day=2025-11-28", "etl.lua", "--param=q=a=b",
                     "--param", "empty=", "--param", "day=later");
  cli_args a;
  char err[ERRLEN];
  CHECK_EQ_INT(parse(argv, &a, err), 0);
  CHECK_EQ_INT(a.n_params, 4);
  if (a.n_params == 4) {
    /* Names are not NUL-terminated: they point into argv with a length. */
    CHECK(a.params[0].name == argv[2]);
    CHECK_EQ_INT(a.params[0].name_len, 3);
    CHECK_EQ_STR(a.params[0].value, "2025-11-28");
    /* Only the first '=' splits. */
    CHECK(strncmp(a.params[1].name, "q", a.params[1].name_len) == 0);
    CHECK_EQ_INT(a.params[1].name_len, 1);
    CHECK_EQ_STR(a.params[1].value, "a=b");
    CHECK_EQ_INT(a.params[2].name_len, 5);
    CHECK_EQ_STR(a.params[2].value, "");
    /* Repeats are kept in order; the consumer decides which wins. */
    CHECK(strncmp(a.params[3].name, "day", 3) == 0);
    CHECK_EQ_STR(a.params[3].value, "later");
  }
  cli_args_free(&a);
  CHECK(a.params == NULL);
  CHECK_EQ_INT(a.n_params, 0);
}

/* After "--", everything is positional, even what looks like an option. */
static void test_cli_double_dash(void) {
  cli_args a;
  char err[ERRLEN];
  CHECK_EQ_INT(parse(ARGV("--once", "--", "--weird.lua"), &a, err), 0);
  CHECK_EQ_STR(a.script, "--weird.lua");
  CHECK_EQ_INT(a.once, 1);
  cli_args_free(&a);
  CHECK_EQ_INT(parse(ARGV("--", "-h"), &a, err), 0);
  CHECK_EQ_INT(a.command, CLI_RUN);
  CHECK_EQ_STR(a.script, "-h");
  cli_args_free(&a);
  /* A second "--" is then just an argument. */
  CHECK_EQ_INT(parse(ARGV("--", "a.lua", "--"), &a, err), -1);
  CHECK_CONTAINS(err, "unexpected argument '--'");
  cli_args_free(&a);
}

static void test_cli_check(void) {
  cli_args a;
  char err[ERRLEN];
  CHECK_EQ_INT(parse(ARGV("check", "etl.lua"), &a, err), 0);
  CHECK_EQ_INT(a.command, CLI_CHECK);
  CHECK_EQ_STR(a.script, "etl.lua");
  cli_args_free(&a);
  /* Options may come first. */
  CHECK_EQ_INT(
      parse(ARGV("--flow", "f", "check", "--param", "a=1", "etl.lua"), &a, err),
      0);
  CHECK_EQ_INT(a.command, CLI_CHECK);
  CHECK_EQ_STR(a.script, "etl.lua");
  CHECK_EQ_STR(a.flow, "f");
  CHECK_EQ_INT(a.n_params, 1);
  cli_args_free(&a);
  /* A script called "check" is reachable as "check check". */
  CHECK_EQ_INT(parse(ARGV("check", "check"), &a, err), 0);
  CHECK_EQ_INT(a.command, CLI_CHECK);
  CHECK_EQ_STR(a.script, "check");
  cli_args_free(&a);
  /* "check" after the script is not a subcommand. */
  CHECK_EQ_INT(parse(ARGV("etl.lua", "check"), &a, err), -1);
  CHECK_CONTAINS(err, "unexpected argument 'check'");
  cli_args_free(&a);
  /* A subcommand still needs a script. */
  CHECK_EQ_INT(parse(ARGV("check"), &a, err), -1);
  CHECK_CONTAINS(err, "no script given");
  cli_args_free(&a);
}

/* `flowlua worker SCRIPT...` and `flowlua workers` (issue 19). */
static void test_cli_worker(void) {
  cli_args a;
  char err[ERRLEN];
  CHECK_EQ_INT(parse(ARGV("worker", "a.lua", "--queue", "cpu", "b.lua",
                          "--queue=io", "--slots", "4", "--lease", "2.5"),
                     &a, err), 0);
  CHECK_EQ_INT(a.command, CLI_WORKER);
  CHECK_EQ_INT((int)a.n_scripts, 2);
  CHECK_EQ_STR(a.scripts[0], "a.lua");
  CHECK_EQ_STR(a.scripts[1], "b.lua");
  CHECK_EQ_INT((int)a.n_queues, 2);
  CHECK_EQ_STR(a.queues[1], "io");
  CHECK_EQ_INT(a.slots, 4);
  CHECK(a.lease == 2.5);
  cli_args_free(&a);
  CHECK_EQ_INT(parse(ARGV("worker"), &a, err), -1);
  CHECK_CONTAINS(err, "worker needs the scripts");
  cli_args_free(&a);
  CHECK_EQ_INT(parse(ARGV("worker", "a.lua", "--slots", "0"), &a, err), -1);
  CHECK_CONTAINS(err, "--slots expects a whole number >= 1");
  cli_args_free(&a);
  CHECK_EQ_INT(parse(ARGV("worker", "a.lua", "--lease", "0"), &a, err), -1);
  CHECK_CONTAINS(err, "--lease expects seconds");
  cli_args_free(&a);
  CHECK_EQ_INT(parse(ARGV("worker", "a.lua", "--once"), &a, err), -1);
  CHECK_CONTAINS(err, "'flowlua worker' takes --state");
  cli_args_free(&a);
  CHECK_EQ_INT(parse(ARGV("a.lua", "--slots", "2"), &a, err), -1);
  CHECK_CONTAINS(err, "go with 'flowlua worker'");
  cli_args_free(&a);
  CHECK_EQ_INT(parse(ARGV("workers", "--json"), &a, err), 0);
  CHECK_EQ_INT(a.command, CLI_WORKERS);
  CHECK_EQ_INT(a.json, 1);
  cli_args_free(&a);
  CHECK_EQ_INT(parse(ARGV("workers", "a.lua"), &a, err), -1);
  CHECK_CONTAINS(err, "'workers' takes no script");
  cli_args_free(&a);
  /* --workers 0: none here (a PostgreSQL state's workers run the jobs). */
  CHECK_EQ_INT(parse(ARGV("a.lua", "--workers", "0"), &a, err), 0);
  CHECK_EQ_INT(a.workers, -1);
  cli_args_free(&a);
}

/* `flowlua serve PATH...` (issue 21): files and folders, the serving
   options that make sense for many flows, and not a single run's. */
static void test_cli_serve(void) {
  cli_args a;
  char err[ERRLEN];
  CHECK_EQ_INT(parse(ARGV("serve", "a.lua", "flows", "--state", "s.db",
                          "--max-runs=3", "b.lua", "--retention", "30d",
                          "--concurrency", "4", "--quiet"),
                     &a, err), 0);
  CHECK_EQ_INT(a.command, CLI_SERVE);
  CHECK_EQ_INT((int)a.n_scripts, 3);
  CHECK_EQ_STR(a.scripts[0], "a.lua");
  CHECK_EQ_STR(a.scripts[1], "flows");
  CHECK_EQ_STR(a.scripts[2], "b.lua");
  CHECK_EQ_STR(a.state, "s.db");
  CHECK_EQ_INT(a.max_runs, 3);
  CHECK_EQ_INT(a.concurrency, 4);
  CHECK(a.retention == 30 * 86400.0);
  CHECK(a.script == NULL);
  cli_args_free(&a);
  CHECK_EQ_INT(parse(ARGV("serve"), &a, err), -1);
  CHECK_CONTAINS(err, "serve needs the scripts or folders");
  cli_args_free(&a);
  CHECK_EQ_INT(parse(ARGV("serve", "a.lua", "--param", "n=1"), &a, err), -1);
  CHECK_CONTAINS(err, "'flowlua serve' takes --state");
  cli_args_free(&a);
  CHECK_EQ_INT(parse(ARGV("serve", "a.lua", "--flow", "x"), &a, err), -1);
  CHECK_CONTAINS(err, "'flowlua serve' takes --state");
  cli_args_free(&a);
  CHECK_EQ_INT(parse(ARGV("serve", "a.lua", "--once"), &a, err), -1);
  CHECK_CONTAINS(err, "'flowlua serve' takes --state");
  cli_args_free(&a);
  CHECK_EQ_INT(parse(ARGV("serve", "a.lua", "--slots", "2"), &a, err), -1);
  CHECK_CONTAINS(err, "'flowlua serve' takes --state");
  cli_args_free(&a);
  CHECK_EQ_INT(parse(ARGV("serve", "a.lua", "--run-id",
                          "01234567-89ab-cdef-0123-456789abcdef"), &a, err), -1);
  CHECK_CONTAINS(err, "--run-id goes with running a script");
  cli_args_free(&a);
}

/* --help and --version need no script and win wherever they appear, as long
   as the arguments before them parse. */
static void test_cli_help_version(void) {
  static const struct {
    const char *arg;
    cli_command want;
  } cases[] = {{"-h", CLI_HELP},
               {"--help", CLI_HELP},
               {"-V", CLI_VERSION},
               {"--version", CLI_VERSION}};
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    cli_args a;
    char err[ERRLEN];
    CHECK_EQ_INT(parse(ARGV((char *)cases[i].arg), &a, err), 0);
    CHECK_EQ_INT(a.command, cases[i].want);
    cli_args_free(&a);
    CHECK_EQ_INT(parse(ARGV("check", "--param", "p=1", "x.lua",
                            (char *)cases[i].arg, "--bogus"),
                       &a, err),
                 0);
    CHECK_EQ_INT(a.command, cases[i].want);
    cli_args_free(&a); /* the --param before it was allocated */
  }
  CHECK_CONTAINS(cli_usage(), "Usage: flowlua");
  CHECK_CONTAINS(cli_usage(), "--param NAME=VALUE");
  /* A script before --help asks for its params (main lists them), with
     --flow when given; --help first is the general usage, as before. */
  cli_args a;
  char err[ERRLEN];
  CHECK_EQ_INT(parse(ARGV("etl.lua", "--flow", "daily", "--help"), &a, err), 0);
  CHECK_EQ_INT(a.command, CLI_HELP);
  CHECK_EQ_STR(a.script, "etl.lua");
  CHECK_EQ_STR(a.flow, "daily");
  cli_args_free(&a);
  CHECK_EQ_INT(parse(ARGV("--help", "etl.lua"), &a, err), 0);
  CHECK_EQ_INT(a.command, CLI_HELP);
  CHECK(a.script == NULL);
  cli_args_free(&a);
}

/* Every error names the problem and the offending text. */
static void test_cli_errors(void) {
  /* Not static: compound-literal argv arrays live in this block. */
  const struct {
    char **argv;
    const char *want1, *want2;
  } cases[] = {
      {ARGV("--bogus", "x.lua"), "unknown option '--bogus'", NULL},
      {ARGV("x.lua", "--bogus=1"), "unknown option '--bogus'", NULL},
      {ARGV("x.lua", "-x"), "unknown option '-x'", NULL},
      {ARGV("x.lua", "--once=1"), "option '--once' takes no value", NULL},
      {ARGV("x.lua", "--flow"), "option '--flow' needs a value", NULL},
      {ARGV("x.lua", "--param"), "option '--param' needs a value", NULL},
      {ARGV("--concurrency"), "option '--concurrency' needs a value", NULL},
      {ARGV("--concurrency", "0", "x.lua"), "--concurrency expects", "'0'"},
      {ARGV("--concurrency", "-1", "x.lua"), "--concurrency expects", "'-1'"},
      {ARGV("--concurrency=abc", "x.lua"), "--concurrency expects", "'abc'"},
      {ARGV("--concurrency=", "x.lua"), "--concurrency expects", "''"},
      {ARGV("--concurrency=4x", "x.lua"), "--concurrency expects", "'4x'"},
      {ARGV("--concurrency=99999999999", "x.lua"), "--concurrency expects",
       "'99999999999'"},
      {ARGV("--log-level", "loud", "x.lua"), "--log-level expects", "'loud'"},
      {ARGV("--log-format=xml", "x.lua"), "--log-format expects", "'xml'"},
      {ARGV("--param", "novalue", "x.lua"), "--param expects NAME=VALUE",
       "'novalue'"},
      {ARGV("--param==v", "x.lua"), "--param expects NAME=VALUE", "'=v'"},
      {ARGV("--flow=", "x.lua"), "--flow expects a flow name", NULL},
      {ARGV("a.lua", "b.lua"), "unexpected argument 'b.lua'",
       "one script at a time"},
      {ARGV("--once"), "no script given", NULL},
      {ARGV("--param", "a=1", "--bogus", "x.lua"), "unknown option '--bogus'",
       NULL},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    cli_args a;
    char err[ERRLEN];
    CHECK_EQ_INT(parse(cases[i].argv, &a, err), -1);
    CHECK_CONTAINS(err, cases[i].want1);
    if (cases[i].want2)
      CHECK_CONTAINS(err, cases[i].want2);
    CHECK(strchr(err, '\n') == NULL); /* one line */
    cli_args_free(&a);                /* even after an error */
  }
  /* And with nothing at all. */
  cli_args a;
  char err[ERRLEN];
  CHECK_EQ_INT(cli_parse(1, ARGV(NULL), &a, err, ERRLEN), -1);
  CHECK_CONTAINS(err, "no script given");
  cli_args_free(&a);
  /* A short error buffer gets a truncated, terminated message. */
  char small[8];
  memset(small, 'x', sizeof small);
  CHECK_EQ_INT(cli_parse(3, ARGV("--bogus", "x.lua"), &a, small, sizeof small),
               -1);
  CHECK_EQ_INT(strnlen(small, sizeof small), 7);
  CHECK_EQ_STR(small, "unknown");
  cli_args_free(&a);
}

/* ---- UTF-8 as PostgreSQL's text takes it ------------------------------------ */

static void test_utf8_text(void) {
  CHECK(fl_utf8_text("", 0));
  CHECK(fl_utf8_text("plain ascii", 11));
  CHECK(fl_utf8_text("h\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", 12));
  CHECK(!fl_utf8_text("a\0b", 3));           /* NUL: text holds none */
  CHECK(!fl_utf8_text("\xff", 1));           /* a stray byte */
  CHECK(!fl_utf8_text("\xc3", 1));           /* cut short */
  CHECK(!fl_utf8_text("\xc0\xaf", 2));       /* overlong */
  CHECK(!fl_utf8_text("\xed\xa0\x80", 3));   /* a surrogate */
  CHECK(!fl_utf8_text("\xf4\x90\x80\x80", 4)); /* past U+10FFFF */
}

static void test_utf8_repair(void) {
  fl_buf b = FL_BUF_INIT;
  fl_utf8_repair(&b, "ok h\xc3\xa9", 6);
  CHECK_EQ_STR(fl_buf_str(&b), "ok h\xc3\xa9"); /* good text as it is */
  fl_buf_reset(&b);
  fl_utf8_repair(&b, "a\xff\0b\xc3", 5);
  CHECK_EQ_STR(fl_buf_str(&b), "a\\xff\\x00b\\xc3");
  CHECK(fl_utf8_text(b.data, b.len));
  fl_buf_free(&b);
}

static void test_utf8_columns(void) {
  size_t len;
  CHECK_EQ_INT(fl_utf8_columns("a", 1, &len), 1);
  CHECK_EQ_INT((long long)len, 1);
  CHECK_EQ_INT(fl_utf8_columns("\xc5\x82", 2, &len), 1); /* ł */
  CHECK_EQ_INT((long long)len, 2);
  CHECK_EQ_INT(fl_utf8_columns("\xe8\xaa\xad", 3, &len), 2); /* 読 */
  CHECK_EQ_INT(fl_utf8_columns("\xf0\x9f\x98\x80", 4, &len), 2); /* 😀 */
  CHECK_EQ_INT(fl_utf8_columns("\xcc\x81", 2, &len), 0); /* combining acute */
  CHECK_EQ_INT(fl_utf8_columns("\xff", 1, &len), 1);    /* a stray byte */
  CHECK_EQ_INT((long long)len, 1);
  int used;
  /* Three wide characters in 5 columns: two fit, the third is not cut. */
  CHECK_EQ_INT((long long)fl_utf8_fit("\xe8\xaa\xad\xe8\xaa\xad\xe8\xaa\xad", 9, 5,
                                      &used), 6);
  CHECK_EQ_INT(used, 4);
  CHECK_EQ_INT((long long)fl_utf8_fit("za\xc5\x82" "aduj", 8, 32, &used), 8);
  CHECK_EQ_INT(used, 7);
}

int main(void) {
  RUN(test_utf8_text);
  RUN(test_utf8_columns);
  RUN(test_utf8_repair);
  RUN(test_buf_append);
  RUN(test_buf_many_appends);
  RUN(test_buf_printf_growth);
  RUN(test_buf_json_string);
  RUN(test_buf_bounded);
  RUN(test_json_validator);
  RUN(test_log_text_format);
  RUN(test_log_text_variants);
  RUN(test_log_json_format);
  RUN(test_log_json_sparse);
  RUN(test_log_level_parse);
  RUN(test_log_emit_masks_secrets);
  RUN(test_cli_script_only);
  RUN(test_cli_options_around_script);
  RUN(test_cli_repeated_param);
  RUN(test_cli_double_dash);
  RUN(test_cli_check);
  RUN(test_cli_help_version);
  RUN(test_cli_errors);
  RUN(test_cli_worker);
  RUN(test_cli_serve);
  return check_summary();
}
