/*
 * status_term.c — the live status kept at the bottom of a terminal
 * (status.h).
 *
 * The region is the last lines written, with the cursor at the start of
 * the line below them. Redrawing moves the cursor up over the region and
 * writes each line over the old one ("erase to end of line" after it, then
 * "erase below" for lines the new frame no longer has), so the screen never
 * flashes blank. A log line erases the region, takes its place and the
 * region is drawn again under it, all in one write(2), so nothing else can
 * land between the two. When the run ends the region is erased for good.
 *
 * Only cursor-up, erase-line and erase-below are used: every terminal that
 * is not "dumb" has them.
 */
#define _POSIX_C_SOURCE 200809L
#include "status.h"
#include "termtext.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

/* At most this many redraws a second... */
#define REDRAW_INTERVAL 0.1
/* ...of at most this many lines: the header, task rows and "... and K more". */
#define REGION_LINES_MAX 10

struct fl_status_term {
  int fd, color;
  double (*clock)(void);
  fl_status *model;
  fl_buf shown;    /* the region's text on screen now */
  fl_buf frame;    /* the next frame's text */
  fl_buf out;      /* the bytes of one write */
  int shown_lines; /* lines of the region on screen; the cursor is below */
  double last_render; /* when the text was last made, drawn or not; < 0:
                         never */
  int off; /* disabled, or a write failed (the terminal is gone): plain
              lines from now on */
};

static double monotonic_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int fl_status_term_usable(int fd) {
  const char *term = getenv("TERM");
  return isatty(fd) && term && *term && strcmp(term, "dumb") != 0;
}

fl_status_term *fl_status_term_new(const fl_status_term_options *opts) {
  fl_status_term *t = calloc(1, sizeof *t);
  if (!t) return NULL;
  t->model = fl_status_new();
  if (!t->model) {
    free(t);
    return NULL;
  }
  t->fd = opts->fd;
  t->color = opts->color;
  t->clock = opts->clock ? opts->clock : monotonic_now;
  t->last_render = -1;
  return t;
}

/* Writes t->out whole (a terminal may take it in pieces), then empties it.
   A failure means the terminal is gone: the status stops drawing, and the
   log lines that follow fail the same way the default sink's would. */
static void flush_out(fl_status_term *t) {
  const char *p = t->out.data;
  size_t left = t->out.len;
  if (t->out.oom) t->off = 1; /* a frame cut short would misplace lines */
  while (left > 0 && !t->off) {
    ssize_t w = write(t->fd, p, left);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      t->off = 1;
      break;
    }
    p += w;
    left -= (size_t)w;
  }
  fl_buf_reset(&t->out);
}

/* Moves the cursor from below the region to its first line. */
static void add_cursor_to_region(fl_status_term *t) {
  if (t->shown_lines > 0) fl_buf_addf(&t->out, "\r\033[%dA", t->shown_lines);
}

static void add_erase_region(fl_status_term *t) {
  if (t->shown_lines == 0) return;
  add_cursor_to_region(t);
  fl_buf_adds(&t->out, "\033[J");
  t->shown_lines = 0;
  fl_buf_reset(&t->shown);
}

/* The next frame into t->frame, for the terminal's size now; its lines. */
static int render(fl_status_term *t, double now) {
  int cols = 80, rows = 24;
  struct winsize ws;
  if (ioctl(t->fd, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0 && ws.ws_row > 0) {
    cols = ws.ws_col;
    rows = ws.ws_row;
  }
  /* The last column is left free: a line that fills it leaves some
     terminals waiting to wrap, and the cursor arithmetic would be off. */
  int max_lines = rows - 2 < REGION_LINES_MAX ? rows - 2 : REGION_LINES_MAX;
  fl_status_layout layout = {cols > 1 ? cols - 1 : 1,
                             max_lines > 1 ? max_lines : 1, t->color};
  fl_buf_reset(&t->frame);
  return fl_status_render(t->model, now, &layout, &t->frame);
}

/* Appends the frame in t->frame over the region on screen (which the
   cursor is below), each old line overwritten, leftovers erased. */
static void add_frame(fl_status_term *t, int lines, double now) {
  add_cursor_to_region(t);
  const char *p = fl_buf_str(&t->frame);
  while (*p) {
    size_t n = strcspn(p, "\n");
    fl_buf_add(&t->out, p, n);
    fl_buf_adds(&t->out, "\033[K\n");
    p += n + (p[n] == '\n');
  }
  fl_buf_adds(&t->out, "\033[J");
  t->shown_lines = lines;
  fl_buf_reset(&t->shown);
  fl_buf_add(&t->shown, t->frame.data ? t->frame.data : "", t->frame.len);
  t->last_render = now;
}

void fl_status_term_tick(fl_status_term *t) {
  if (t->off || !fl_status_running(t->model)) return;
  double now = t->clock();
  if (t->last_render >= 0 && now - t->last_render < REDRAW_INTERVAL) return;
  int lines = render(t, now);
  /* The next look is a tenth of a second away even when nothing is
     drawn now, so that a caller waiting on fl_status_term_wait_ms sleeps
     between looks instead of spinning. */
  t->last_render = now;
  if (lines == t->shown_lines && t->frame.len == t->shown.len &&
      memcmp(fl_buf_str(&t->frame), fl_buf_str(&t->shown), t->frame.len) == 0)
    return; /* nothing on it changed, not even a clock */
  add_frame(t, lines, now);
  flush_out(t);
}

int fl_status_term_wait_ms(const fl_status_term *t) {
  if (t->off || !fl_status_running(t->model)) return -1;
  if (t->last_render < 0) return 0;
  double left = t->last_render + REDRAW_INTERVAL - t->clock();
  return left <= 0 ? 0 : (int)(left * 1000.0) + 1;
}

/* Writes text, and a newline when asked, above the region: the region is
   erased, the text takes its place and the region is drawn again below it,
   in one write. */
static void write_above(fl_status_term *t, const char *text, int newline) {
  if (!t->off) {
    add_erase_region(t);
    fl_buf_adds(&t->out, text);
    if (newline) fl_buf_addc(&t->out, '\n');
    if (fl_status_running(t->model)) {
      double now = t->clock();
      add_frame(t, render(t, now), now);
    }
    flush_out(t);
    return;
  }
  /* No status any more: as the runtime's own sink, one write a line. */
  fl_buf line = FL_BUF_INIT;
  fl_buf_adds(&line, text);
  if (newline) fl_buf_addc(&line, '\n');
  ssize_t w = write(t->fd, fl_buf_str(&line), line.len);
  (void)w; /* as that sink does: a line that cannot be written is lost */
  fl_buf_free(&line);
}

void fl_status_term_print(fl_status_term *t, const char *text) {
  write_above(t, text, 0);
}

/* The status is only ever on a terminal: a log line's control characters
   are escaped (termtext.h), so a message quoting a hostile server cannot
   rewrite the screen. */
void fl_status_term_on_log(void *userdata, const flowlua_log_record *rec) {
  fl_buf safe = FL_BUF_INIT;
  fl_term_escape(&safe, rec->line, strlen(rec->line));
  if (!safe.oom) write_above(userdata, fl_buf_str(&safe), 1);
  fl_buf_free(&safe);
}

void fl_status_term_on_event(void *userdata, const flowlua_event *ev) {
  fl_status_term *t = userdata;
  if (t->off) return;
  /* Out of memory only costs this change its place on the screen. */
  (void)fl_status_event(t->model, ev, t->clock());
  if (!fl_status_running(t->model)) fl_status_term_clear(t);
}

void fl_status_term_disable(fl_status_term *t) {
  fl_status_term_clear(t);
  t->off = 1;
}

void fl_status_term_clear(fl_status_term *t) {
  if (t->shown_lines == 0) return;
  add_erase_region(t);
  flush_out(t);
}

void fl_status_term_free(fl_status_term *t) {
  if (!t) return;
  fl_status_term_clear(t);
  fl_status_free(t->model);
  fl_buf_free(&t->shown);
  fl_buf_free(&t->frame);
  fl_buf_free(&t->out);
  free(t);
}
