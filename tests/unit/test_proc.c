/*
 * test_proc.c — processes, signals and the terminal: fl_term_escape, the
 * default log sink when stderr's reader is gone (with SIGPIPE at its
 * default, as in a host that does not ignore it), and fl_proc_start's
 * child descriptors.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "check.h"
#include "log.h"
#include "loop.h"
#include "process.h"
#include "termtext.h"

/* ---- fl_term_escape --------------------------------------------------- */

static const char *escaped(fl_buf *b, const char *s, size_t n) {
  fl_buf_reset(b);
  fl_term_escape(b, s, n);
  return fl_buf_str(b);
}

#define ESCAPED(b, lit) escaped(b, lit, sizeof lit - 1)

static void test_escape_controls(void) {
  fl_buf b = FL_BUF_INIT;
  CHECK_EQ_STR(ESCAPED(&b, "\033]0;pwned\007\033[2J"),
               "\\x1b]0;pwned\\x07\\x1b[2J");
  CHECK_EQ_STR(ESCAPED(&b, "a\rb\bc\x7f"), "a\\x0db\\x08c\\x7f");
  CHECK_EQ_STR(ESCAPED(&b, "line\n\tindented"), "line\n\tindented");
  CHECK_EQ_STR(ESCAPED(&b, "nul\0here"), "nul\\x00here");
  /* C1 controls: a stray byte, and the UTF-8 form of U+009B. */
  CHECK_EQ_STR(ESCAPED(&b, "\x9b" "31m"), "\\x9b31m");
  CHECK_EQ_STR(ESCAPED(&b, "\xc2\x9b" "31m"), "\\xc2\\x9b31m");
  CHECK(fl_term_needs_escape("\033", 1));
  CHECK(!fl_term_needs_escape("plain text\n", 11));
  fl_buf_free(&b);
}

static void test_escape_keeps_utf8(void) {
  fl_buf b = FL_BUF_INIT;
  const char *text = "caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80 \xc2\xa0";
  CHECK_EQ_STR(escaped(&b, text, strlen(text)), text);
  CHECK(!fl_term_needs_escape(text, strlen(text)));
  /* Other invalid bytes are no control: left as they are. */
  CHECK_EQ_STR(ESCAPED(&b, "\xff\xc3"), "\xff\xc3");
  /* A lead byte whose continuation is a control: the control is caught. */
  CHECK_EQ_STR(ESCAPED(&b, "\xc3\033[2J"), "\xc3\\x1b[2J");
  fl_buf_free(&b);
}

/* ---- the default log sink and a closed pipe --------------------------- */

/* stderr is a pipe whose reader is gone; SIGPIPE has its default action,
   which would kill this test. The logger must take the signal back, stop
   writing, and leave nothing pending. */
static void test_log_to_closed_pipe(void) {
  signal(SIGPIPE, SIG_DFL);
  int ends[2];
  CHECK_EQ_INT(pipe(ends), 0);
  int saved = dup(2);
  close(ends[0]);
  dup2(ends[1], 2);
  close(ends[1]);
  fl_logger lg;
  fl_logger_init(&lg, FLOWLUA_LOG_INFO, FLOWLUA_LOG_TEXT, NULL, NULL);
  for (int i = 0; i < 100; i++)
    fl_log_printf(&lg, FLOWLUA_LOG_INFO, "f", "line %d", i);
  int closed = lg.sink_closed;
  fl_logger_free(&lg);
  dup2(saved, 2);
  close(saved);
  CHECK_EQ_INT(closed, 1);
  sigset_t pending;
  sigemptyset(&pending);
  sigpending(&pending);
  CHECK_EQ_INT(sigismember(&pending, SIGPIPE), 0);
}

/* ---- children's descriptors ------------------------------------------- */

static int run_child(fl_proc *p, char *const *argv, const char *in) {
  fl_loop loop;
  if (fl_loop_init(&loop) != 0) return -1;
  fl_proc_opts o = {.argv = argv, .stdin_data = in,
                    .stdin_len = in ? strlen(in) : 0, .max_output = 1 << 20};
  int rc = fl_proc_start(&loop, p, &o, NULL, NULL);
  while (rc == 0 && !p->finished) fl_loop_poll(&loop, 10);
  fl_loop_close(&loop);
  return rc;
}

/* A descriptor open without close-on-exec (as a host or a Lua io.open may
   leave one) does not reach the child. */
static void test_child_gets_stdio_only(void) {
  int leaked = open("/dev/null", O_RDONLY); /* no O_CLOEXEC on purpose */
  CHECK(leaked > 2);
  fl_proc p;
  char *argv[] = {"sh", "-c", "ls /proc/self/fd", NULL};
  CHECK_EQ_INT(run_child(&p, argv, NULL), 0);
  /* ls lists 0, 1, 2 and the folder it reads (3). */
  CHECK_EQ_STR(fl_buf_str(&p.out), "0\n1\n2\n3\n");
  fl_proc_free(&p);
  close(leaked);
}

/* With stdin closed in the parent, a new pipe can be descriptor 0: it is
   moved out of the way, and the child still reads what it was given. */
static void test_child_with_stdin_closed(void) {
  int saved = dup(0);
  close(0);
  fl_proc p;
  char *argv[] = {"cat", NULL};
  int rc = run_child(&p, argv, "fed through a pipe");
  dup2(saved, 0);
  close(saved);
  CHECK_EQ_INT(rc, 0);
  CHECK_EQ_STR(fl_buf_str(&p.out), "fed through a pipe");
  fl_proc_free(&p);
}

static void test_child_missing_program(void) {
  fl_proc p;
  char *argv[] = {"no-such-program-xyz", NULL};
  errno = 0;
  CHECK_EQ_INT(run_child(&p, argv, NULL), -1);
  CHECK_EQ_INT(errno, ENOENT);
  fl_proc_free(&p);
}

int main(void) {
  RUN(test_escape_controls);
  RUN(test_escape_keeps_utf8);
  RUN(test_log_to_closed_pipe);
  RUN(test_child_gets_stdio_only);
  RUN(test_child_with_stdin_closed);
  RUN(test_child_missing_program);
  return check_summary();
}
