/*
 * tz.c — time zones read from TZif files, POSIX TZ rules, civil dates and
 * ISO 8601 times.
 *
 * Everything is computed from the loaded data: no tzset(), localtime() or
 * setenv(), so zones need no lock and several runtimes on several threads
 * can use them at once. The environment (TZ, TZDIR) is read, never written.
 * Untrusted bytes (a zone file can be anything) are bounds-checked before
 * they are read; a bad file is an error, never a crash.
 */
#define _POSIX_C_SOURCE 200809L
#include "tz.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "flowlua.h"
#include "fsutil.h"

enum {
  DAY = 86400,
  MAX_TZIF_BYTES = 1 << 20, /* real zone files are a few KiB */
  MAX_NAME_LEN = 255,
  MAX_FOOTER_LEN = 255,
  /* RFC 8536's bounds for a UTC offset: about -25 to +26 hours. */
  MIN_UTOFF = -89999,
  MAX_UTOFF = 93599,
  /* Offsets stay within ±26 hours, so every instant that can show a given
     wall-clock time lies within this many seconds of it. */
  LOCAL_WINDOW = 2 * DAY,
  MAX_WINDOW_TRANSITIONS = 64
};

/* A day of the year in a POSIX TZ rule, and the local time it starts at. */
typedef struct rule_date {
  char kind; /* 'J': Jn, 1-365, Feb 29 never counted; 'N': n, 0-365;
                'M': Mm.w.d, day d (0 = Sunday) of week w (5 = last) */
  int n, m, w, d;
  int32_t time; /* seconds from local midnight, -167h to +167h */
} rule_date;

/* A POSIX TZ string: standard time, and daylight time between two dates. */
typedef struct tz_rule {
  int32_t std_off, dst_off; /* UTC offsets, east positive */
  int has_dst;
  rule_date start; /* into daylight time, a standard local time */
  rule_date end;   /* back to standard time, a daylight local time */
} tz_rule;

struct fl_tz {
  char *name;
  size_t n;     /* transitions */
  int64_t *at;  /* transition instants, strictly ascending */
  int32_t *off; /* UTC offset from at[i] until at[i + 1] */
  int32_t off0; /* before the first transition (time type 0) */
  int has_rule; /* the footer rule holds from the last transition on */
  tz_rule rule;
};

static int fail(char *err, size_t errlen, int status, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int fail(char *err, size_t errlen, int status, const char *fmt, ...) {
  if (err && errlen > 0) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
  }
  return status;
}

/* Copies s for quoting in a message: control bytes become '?' and a long
   string is cut with "...", so a message stays one readable line. */
static const char *printable(const char *s, char *buf, size_t size) {
  size_t i = 0;
  for (; s[i] && i + 4 < size; i++) {
    unsigned char c = (unsigned char)s[i];
    buf[i] = c < 0x20 || c == 0x7f ? '?' : (char)c;
  }
  if (s[i]) {
    memcpy(buf + i, "...", 3);
    i += 3;
  }
  buf[i] = '\0';
  return buf;
}

static int64_t floor_div(int64_t a, int64_t b) {
  int64_t q = a / b;
  return q - (a % b != 0 && (a < 0) != (b < 0));
}

static int64_t clamp(int64_t t, int64_t lo, int64_t hi) {
  return t < lo ? lo : t > hi ? hi : t;
}

/* ---- civil dates (Howard Hinnant's algorithms, exact for every year) ----- */

int64_t fl_days_from_civil(int64_t y, int m, int d) {
  y -= m <= 2;
  int64_t era = floor_div(y, 400);
  int64_t yoe = y - era * 400;
  int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

void fl_civil_from_days(int64_t days, int64_t *y, int *m, int *d) {
  int64_t z = days + 719468;
  int64_t era = floor_div(z, 146097);
  int64_t doe = z - era * 146097;
  int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  int64_t mp = (5 * doy + 2) / 153;
  *d = (int)(doy - (153 * mp + 2) / 5 + 1);
  *m = (int)(mp < 10 ? mp + 3 : mp - 9);
  *y = yoe + era * 400 + (*m <= 2);
}

int fl_weekday(int64_t days) {
  int64_t w = (days + 4) % 7; /* 1970-01-01 was a Thursday */
  return (int)(w < 0 ? w + 7 : w);
}

int fl_is_leap_year(int64_t y) {
  return y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
}

int fl_days_in_month(int64_t y, int m) {
  static const int len[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (m < 1 || m > 12) return 0;
  return len[m - 1] + (m == 2 && fl_is_leap_year(y));
}

static int64_t year_of(int64_t t) {
  int64_t y;
  int m, d;
  fl_civil_from_days(floor_div(t, DAY), &y, &m, &d);
  return y;
}

/* ---- POSIX TZ rules ------------------------------------------------------ */

static int is_alpha(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}
static int is_digit(char c) { return c >= '0' && c <= '9'; }

/* An unsigned number of at most `digits` digits. */
static int parse_uint(const char **ps, int digits, int *out) {
  const char *s = *ps;
  int v = 0, k = 0;
  for (; is_digit(*s) && k < digits; s++, k++) v = v * 10 + (*s - '0');
  if (k == 0 || is_digit(*s)) return -1;
  *ps = s;
  *out = v;
  return 0;
}

/* A zone abbreviation: three or more letters, or <...> of letters, digits,
   '+' and '-' ("<+0530>"). */
static int parse_abbr(const char **ps) {
  const char *s = *ps, *b;
  if (*s == '<') {
    for (b = ++s; is_alpha(*s) || is_digit(*s) || *s == '+' || *s == '-'; s++)
      ;
    if (*s != '>' || s - b < 3) return -1;
    *ps = s + 1;
    return 0;
  }
  for (b = s; is_alpha(*s); s++)
    ;
  if (s - b < 3) return -1;
  *ps = s;
  return 0;
}

/* [+-]hh[:mm[:ss]] in seconds, hours up to max_hours. */
static int parse_hms(const char **ps, int max_hours, int32_t *out) {
  const char *s = *ps;
  int sign = 1, h, m = 0, sec = 0;
  if (*s == '+' || *s == '-') sign = *s++ == '-' ? -1 : 1;
  if (parse_uint(&s, 3, &h) != 0 || h > max_hours) return -1;
  if (*s == ':') {
    s++;
    if (parse_uint(&s, 2, &m) != 0 || m > 59) return -1;
    if (*s == ':') {
      s++;
      if (parse_uint(&s, 2, &sec) != 0 || sec > 59) return -1;
    }
  }
  *ps = s;
  *out = sign * (h * 3600 + m * 60 + sec);
  return 0;
}

/* Jn, n or Mm.w.d, then an optional /time (02:00 when absent). */
static int parse_rule_date(const char **ps, rule_date *rd) {
  const char *s = *ps;
  *rd = (rule_date){.time = 7200};
  if (*s == 'J') {
    s++;
    rd->kind = 'J';
    if (parse_uint(&s, 3, &rd->n) != 0 || rd->n < 1 || rd->n > 365) return -1;
  } else if (*s == 'M') {
    s++;
    rd->kind = 'M';
    if (parse_uint(&s, 2, &rd->m) != 0 || rd->m < 1 || rd->m > 12 ||
        *s++ != '.' || parse_uint(&s, 1, &rd->w) != 0 || rd->w < 1 ||
        rd->w > 5 || *s++ != '.' || parse_uint(&s, 1, &rd->d) != 0 || rd->d > 6)
      return -1;
  } else {
    rd->kind = 'N';
    if (parse_uint(&s, 3, &rd->n) != 0 || rd->n > 365) return -1;
  }
  /* TZif version 3 allows rule times from -167 to +167 hours. */
  if (*s == '/') {
    s++;
    if (parse_hms(&s, 167, &rd->time) != 0) return -1;
  }
  *ps = s;
  return 0;
}

/* Parses a whole POSIX TZ string; NULL, or what is wrong with it. */
static const char *parse_posix(const char *s, tz_rule *r) {
  int32_t v;
  *r = (tz_rule){0};
  if (parse_abbr(&s) != 0) return "bad standard time name";
  if (parse_hms(&s, 24, &v) != 0) return "bad standard time offset";
  r->std_off = -v; /* POSIX counts hours west of Greenwich */
  if (*s == '\0') return NULL;
  if (parse_abbr(&s) != 0) return "bad daylight time name";
  r->has_dst = 1;
  r->dst_off = r->std_off + 3600;
  if (*s != ',' && *s != '\0') {
    if (parse_hms(&s, 24, &v) != 0) return "bad daylight time offset";
    r->dst_off = -v;
  }
  if (*s == '\0') /* no rule: the US rules, as glibc assumes */
    s = ",M3.2.0,M11.1.0";
  if (*s++ != ',' || parse_rule_date(&s, &r->start) != 0)
    return "bad start rule";
  if (*s++ != ',' || parse_rule_date(&s, &r->end) != 0) return "bad end rule";
  if (*s != '\0') return "unexpected text after the rules";
  return NULL;
}

/* The day number a rule date falls on in year y. */
static int64_t rule_day(const rule_date *rd, int64_t y) {
  int64_t jan1 = fl_days_from_civil(y, 1, 1);
  if (rd->kind == 'J')
    return jan1 + rd->n - 1 + (fl_is_leap_year(y) && rd->n >= 60);
  if (rd->kind == 'N') return jan1 + rd->n;
  int64_t first = fl_days_from_civil(y, rd->m, 1);
  int day = (rd->d - fl_weekday(first) + 7) % 7 + 7 * (rd->w - 1);
  while (day >= fl_days_in_month(y, rd->m)) day -= 7; /* w = 5: the last */
  return first + day;
}

/* One change of offset made by a rule: `rank` orders changes at the same
   instant, so that a later year's start wins over an earlier year's end
   (daylight time all year: "EST5EDT4,0/0,J365/25"). */
typedef struct rule_event {
  int64_t at, rank;
  int32_t off;
} rule_event;

static void rule_events(const tz_rule *r, int64_t y, rule_event ev[2]) {
  ev[0] =
      (rule_event){rule_day(&r->start, y) * DAY + r->start.time - r->std_off,
                   2 * y + 1, r->dst_off};
  ev[1] = (rule_event){rule_day(&r->end, y) * DAY + r->end.time - r->dst_off,
                       2 * y + 2, r->std_off};
}

static int event_after(const rule_event *a, const rule_event *b) {
  return a->at > b->at || (a->at == b->at && a->rank > b->rank);
}

/* The offset the rule gives at t: that of its last change at or before t.
   A year's changes lie within a week of that year (rule times reach 167
   hours), so the two years before t's and the one after cover it. */
static int32_t rule_offset_at(const tz_rule *r, int64_t t) {
  if (!r->has_dst) return r->std_off;
  int64_t y = year_of(t + r->std_off);
  rule_event best = {0}, ev[2];
  int found = 0;
  for (int64_t yy = y - 2; yy <= y + 1; yy++) {
    rule_events(r, yy, ev);
    for (int i = 0; i < 2; i++)
      if (ev[i].at <= t && (!found || event_after(&ev[i], &best))) {
        best = ev[i];
        found = 1;
      }
  }
  return found ? best.off : r->std_off;
}

/* The rule's first change strictly after t. */
static int64_t rule_next_change(const tz_rule *r, int64_t t) {
  int64_t y = year_of(t + r->std_off);
  rule_event best = {0}, ev[2];
  int found = 0;
  for (int64_t yy = y - 1; yy <= y + 2; yy++) {
    rule_events(r, yy, ev);
    for (int i = 0; i < 2; i++)
      if (ev[i].at > t && (!found || event_after(&best, &ev[i]))) {
        best = ev[i];
        found = 1;
      }
  }
  return best.at;
}

/* ---- lookups ------------------------------------------------------------- */

/* The index of the first transition after t (n when there is none). */
static size_t first_after(const fl_tz *tz, int64_t t) {
  size_t lo = 0, hi = tz->n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (tz->at[mid] <= t)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo;
}

int fl_tz_offset_at(const fl_tz *tz, int64_t t) {
  if (!tz) return 0;
  t = clamp(t, FL_TIME_MIN, FL_TIME_MAX);
  size_t i = first_after(tz, t);
  if (i == tz->n && tz->has_rule) return rule_offset_at(&tz->rule, t);
  return i == 0 ? tz->off0 : tz->off[i - 1];
}

int fl_tz_next_transition(const fl_tz *tz, int64_t t, int64_t *at) {
  if (!tz || t >= FL_TIME_MAX) return 0;
  t = clamp(t, FL_TIME_MIN, FL_TIME_MAX);
  size_t i = first_after(tz, t);
  if (i < tz->n) {
    *at = tz->at[i];
    return 1;
  }
  if (!tz->has_rule || !tz->rule.has_dst) return 0;
  *at = rule_next_change(&tz->rule, t);
  return 1;
}

/* A change of offset, with the offsets on either side. */
typedef struct tz_change {
  int64_t at;
  int32_t before, after;
} tz_change;

/* The changes in (lo, hi], at most `max`; returns how many. */
static size_t changes_between(const fl_tz *tz, int64_t lo, int64_t hi,
                              tz_change *out, size_t max) {
  size_t k = 0;
  int64_t t = lo, at;
  int32_t before = fl_tz_offset_at(tz, lo);
  while (k < max && fl_tz_next_transition(tz, t, &at) && at <= hi) {
    int32_t after = fl_tz_offset_at(tz, at);
    out[k++] = (tz_change){at, before, after};
    before = after;
    t = at;
  }
  return k;
}

static void add_unique(int64_t *v, size_t *n, int64_t x) {
  for (size_t i = 0; i < *n; i++)
    if (v[i] == x) return;
  v[(*n)++] = x;
}

int fl_tz_local_to_utc(const fl_tz *tz, int64_t local, int64_t out[2]) {
  local = clamp(local, FL_TIME_MIN - LOCAL_WINDOW, FL_TIME_MAX + LOCAL_WINDOW);
  tz_change ch[MAX_WINDOW_TRANSITIONS];
  size_t n_ch = changes_between(tz, local - LOCAL_WINDOW, local + LOCAL_WINDOW,
                                ch, MAX_WINDOW_TRANSITIONS);
  /* Each offset in force near `local` names one candidate instant; it is a
     solution when that offset is really in force there. */
  int64_t sol[MAX_WINDOW_TRANSITIONS + 1];
  size_t n_sol = 0;
  for (size_t i = 0; i <= n_ch; i++) {
    int32_t off =
        i == 0 ? fl_tz_offset_at(tz, local - LOCAL_WINDOW) : ch[i - 1].after;
    if (fl_tz_offset_at(tz, local - off) == off)
      add_unique(sol, &n_sol, local - off);
  }
  if (n_sol > 0) {
    int64_t lo = sol[0], hi = sol[0];
    for (size_t i = 1; i < n_sol; i++) {
      if (sol[i] < lo) lo = sol[i];
      if (sol[i] > hi) hi = sol[i];
    }
    out[0] = lo;
    out[1] = hi;
    return n_sol == 1 ? 1 : 2;
  }
  /* No instant shows `local`: it lies in the gap of a change forward. */
  for (size_t i = 0; i < n_ch; i++)
    if (ch[i].at + ch[i].before <= local && local < ch[i].at + ch[i].after) {
      out[0] = ch[i].at;
      return 0;
    }
  out[0] = local - fl_tz_offset_at(tz, local); /* unreachable for sane data */
  return 0;
}

/* ---- building zones ------------------------------------------------------ */

void fl_tz_free(fl_tz *tz) {
  if (!tz) return;
  free(tz->name);
  free(tz->at);
  free(tz->off);
  free(tz);
}

const char *fl_tz_name(const fl_tz *tz) { return tz ? tz->name : "UTC"; }

static fl_tz *tz_new(const char *name) {
  fl_tz *tz = calloc(1, sizeof *tz);
  if (!tz) return NULL;
  tz->name = strdup(name);
  if (!tz->name) {
    free(tz);
    return NULL;
  }
  return tz;
}

static int make_utc(const char *name, fl_tz **out, char *err, size_t errlen) {
  *out = tz_new(name);
  return *out ? 0 : fail(err, errlen, FLOWLUA_ENOMEM, "out of memory");
}

int fl_tz_from_posix(const char *spec, fl_tz **out, char *err, size_t errlen) {
  char shown[80];
  tz_rule rule;
  *out = NULL;
  if (!spec) spec = "";
  const char *why = parse_posix(spec, &rule);
  if (why)
    return fail(err, errlen, FLOWLUA_EINVAL, "bad POSIX TZ string '%s': %s",
                printable(spec, shown, sizeof shown), why);
  fl_tz *tz = tz_new(spec);
  if (!tz) return fail(err, errlen, FLOWLUA_ENOMEM, "out of memory");
  tz->rule = rule;
  tz->has_rule = 1;
  tz->off0 = rule.std_off;
  *out = tz;
  return 0;
}

/* ---- TZif (RFC 8536) ----------------------------------------------------- */

typedef struct tzif_counts {
  uint32_t isut, isstd, leap, time, type, chars;
} tzif_counts;

typedef struct tzif_src {
  const unsigned char *d;
  size_t len;
  const char *label; /* the file, for messages */
  char *err;
  size_t errlen;
} tzif_src;

static uint32_t be32(const unsigned char *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
         p[3];
}

static int64_t be64(const unsigned char *p) {
  return (int64_t)((uint64_t)be32(p) << 32 | be32(p + 4));
}

static int corrupt(const tzif_src *src, const char *why) {
  return fail(src->err, src->errlen, FLOWLUA_EIO,
              "corrupt time zone file '%s': %s", src->label, why);
}

/* Bytes of one data block: transitions, types, names, leap seconds and
   the two indicator arrays. At most about 2^38, so no overflow. */
static uint64_t block_bytes(const tzif_counts *c, unsigned time_size) {
  return (uint64_t)c->time * (time_size + 1) + (uint64_t)c->type * 6 +
         c->chars + (uint64_t)c->leap * (time_size + 4) + c->isstd + c->isut;
}

/* Reads the header at pos, whose data block has time_size-byte times;
   NULL, or what is wrong. */
static const char *read_header(const tzif_src *src, size_t pos,
                               unsigned time_size, int *version,
                               tzif_counts *c) {
  if (src->len - pos < 4 || memcmp(src->d + pos, "TZif", 4) != 0)
    return "not a TZif file";
  if (src->len - pos < 44) return "truncated header";
  const unsigned char *h = src->d + pos;
  *version = h[4];
  if (*version != 0 && (*version < '2' || *version > '9'))
    return "unknown TZif version";
  *c = (tzif_counts){be32(h + 20), be32(h + 24), be32(h + 28),
                     be32(h + 32), be32(h + 36), be32(h + 40)};
  if (c->type == 0) return "no local time types";
  if (c->chars == 0) return "no time zone abbreviations";
  if ((c->isstd != 0 && c->isstd != c->type) ||
      (c->isut != 0 && c->isut != c->type))
    return "indicator counts do not match the type count";
  if (block_bytes(c, time_size) > src->len - pos - 44) return "truncated data";
  return NULL;
}

/* Fills tz's transitions from the data block at p (bounds already checked). */
static int read_block(const tzif_src *src, const unsigned char *p,
                      const tzif_counts *c, unsigned time_size, fl_tz *tz) {
  const unsigned char *idx = p + (size_t)c->time * time_size;
  const unsigned char *types = idx + c->time;
  for (uint32_t i = 0; i < c->type; i++) {
    int32_t off = (int32_t)be32(types + 6 * i);
    if (off < MIN_UTOFF || off > MAX_UTOFF)
      return corrupt(src, "UTC offset out of range");
    if (types[6 * i + 4] > 1) return corrupt(src, "bad daylight flag");
    if (types[6 * i + 5] >= c->chars)
      return corrupt(src, "abbreviation index out of range");
  }
  tz->off0 = (int32_t)be32(types);
  if (c->time == 0) return 0;
  tz->at = malloc(c->time * sizeof *tz->at);
  tz->off = malloc(c->time * sizeof *tz->off);
  if (!tz->at || !tz->off)
    return fail(src->err, src->errlen, FLOWLUA_ENOMEM, "out of memory");
  for (uint32_t i = 0; i < c->time; i++) {
    const unsigned char *q = p + (size_t)i * time_size;
    int64_t at = time_size == 8 ? be64(q) : (int32_t)be32(q);
    if (i > 0 && at <= tz->at[i - 1])
      return corrupt(src, "transition times out of order");
    if (idx[i] >= c->type) return corrupt(src, "time type index out of range");
    tz->at[i] = at;
    tz->off[i] = (int32_t)be32(types + 6 * idx[i]);
    tz->n = i + 1;
  }
  return 0;
}

/* The footer of version 2+ files: "\n<POSIX TZ string>\n". */
static int read_footer(const tzif_src *src, size_t pos, fl_tz *tz) {
  if (pos >= src->len || src->d[pos] != '\n')
    return corrupt(src, "missing TZ string footer");
  const unsigned char *s = src->d + pos + 1;
  const unsigned char *nl = memchr(s, '\n', src->len - pos - 1);
  if (!nl) return corrupt(src, "unterminated TZ string footer");
  size_t n = (size_t)(nl - s);
  if (n > MAX_FOOTER_LEN || memchr(s, '\0', n))
    return corrupt(src, "bad TZ string footer");
  if (n == 0) return 0; /* no rule: the last transition's offset stays */
  char text[MAX_FOOTER_LEN + 1];
  memcpy(text, s, n);
  text[n] = '\0';
  const char *why = parse_posix(text, &tz->rule);
  if (why) {
    char shown[80], msg[160];
    snprintf(msg, sizeof msg, "bad TZ string '%s' in footer: %s",
             printable(text, shown, sizeof shown), why);
    return corrupt(src, msg);
  }
  tz->has_rule = 1;
  return 0;
}

static int parse_tzif(const tzif_src *src, fl_tz *tz) {
  tzif_counts c;
  int version;
  const char *why = read_header(src, 0, 4, &version, &c);
  if (why) return corrupt(src, why);
  size_t pos = 44;
  unsigned time_size = 4;
  if (version != 0) {
    /* Skip the 32-bit block: version 2+ repeats everything with 64-bit
       times and adds the footer. read_header checked it fits. */
    pos += (size_t)block_bytes(&c, 4);
    int version2;
    why = read_header(src, pos, 8, &version2, &c);
    if (why) return corrupt(src, why);
    if (version2 == 0) return corrupt(src, "second header has version 1");
    pos += 44;
    time_size = 8;
  }
  if (c.leap != 0)
    return fail(src->err, src->errlen, FLOWLUA_EINVAL,
                "time zone file '%s' counts leap seconds, which POSIX time "
                "does not (use the zone without 'right/')",
                src->label);
  int rc = read_block(src, src->d + pos, &c, time_size, tz);
  if (rc != 0 || version == 0) return rc;
  return read_footer(src, pos + (size_t)block_bytes(&c, 8), tz);
}

/* Parses data into a new zone called `name`; messages name `label`. */
static int tz_from_data(const char *name, const char *label,
                        const unsigned char *d, size_t len, fl_tz **out,
                        char *err, size_t errlen) {
  *out = NULL;
  fl_tz *tz = tz_new(name);
  if (!tz) return fail(err, errlen, FLOWLUA_ENOMEM, "out of memory");
  tzif_src src = {d, len, label, err, errlen};
  int rc = parse_tzif(&src, tz);
  if (rc != 0) {
    fl_tz_free(tz);
    return rc;
  }
  *out = tz;
  return 0;
}

int fl_tz_from_tzif(const char *name, const void *data, size_t len, fl_tz **out,
                    char *err, size_t errlen) {
  if (!name) name = "";
  if (!data) len = 0;
  return tz_from_data(name, name, data, len, out, err, errlen);
}

/* ---- the zone database --------------------------------------------------- */

static const char *zone_dir(void) {
  const char *dir = getenv("TZDIR");
  return dir && *dir ? dir : "/usr/share/zoneinfo";
}

static int name_char_ok(char c) {
  return is_alpha(c) || is_digit(c) || c == '_' || c == '+' || c == '-' ||
         c == '/';
}

/* Zone names come from flow scripts: keep them inside the zone folder. */
static int check_name(const char *name, char *err, size_t errlen) {
  char shown[80];
  if (strlen(name) > MAX_NAME_LEN)
    return fail(err, errlen, FLOWLUA_EINVAL,
                "invalid time zone name '%s': longer than %d characters",
                printable(name, shown, sizeof shown), MAX_NAME_LEN);
  printable(name, shown, sizeof shown);
  if (strstr(name, ".."))
    return fail(err, errlen, FLOWLUA_EINVAL,
                "invalid time zone name '%s': '..' is not allowed", shown);
  if (name[0] == '/')
    return fail(err, errlen, FLOWLUA_EINVAL,
                "invalid time zone name '%s': it must not start with '/'",
                shown);
  for (const char *p = name; *p; p++) {
    unsigned char c = (unsigned char)*p;
    if (name_char_ok(*p)) continue;
    char what[8];
    if (c < 0x20 || c >= 0x7f)
      snprintf(what, sizeof what, "0x%02x", c);
    else
      snprintf(what, sizeof what, "'%c'", c);
    return fail(err, errlen, FLOWLUA_EINVAL,
                "invalid time zone name '%s': character %s is not allowed "
                "(only letters, digits and _ + - /)",
                shown, what);
  }
  return 0;
}

/* What a failed read of a zone file was: a name that is not a zone is the
   caller's to report, since only it knows what was asked for. */
enum { READ_OK, READ_MISSING, READ_FOLDER, READ_FAILED };

static int read_error(const char *path, int errnum, char *err, size_t errlen) {
  char why[128];
  if (strerror_r(errnum, why, sizeof why) != 0)
    snprintf(why, sizeof why, "error %d", errnum);
  return fail(err, errlen, FLOWLUA_EIO, "cannot read time zone file '%s': %s",
              path, why);
}

/* Reads a whole regular file of at most MAX_TZIF_BYTES into *data (the
   caller frees it). 0, or an error status with *kind saying which. */
static int read_file(const char *path, unsigned char **data, size_t *len,
                     int *kind, char *err, size_t errlen) {
  *data = NULL;
  *len = 0;
  *kind = READ_FAILED;
  struct stat st;
  int fd = fl_open_file(path, O_RDONLY, 0, &st);
  if (fd < 0) {
    if (errno == EISDIR) {
      *kind = READ_FOLDER;
      return FLOWLUA_EINVAL;
    }
    if (errno != ENOENT && errno != ENOTDIR)
      return read_error(path, errno, err, errlen);
    *kind = READ_MISSING;
    return FLOWLUA_EINVAL;
  }
  unsigned char *buf = NULL;
  int rc = 0;
  if (!S_ISREG(st.st_mode) || st.st_size > MAX_TZIF_BYTES) {
    rc = fail(err, errlen, FLOWLUA_EIO, "corrupt time zone file '%s': %s", path,
              S_ISREG(st.st_mode) ? "too large" : "not a regular file");
    goto close_fd;
  }
  size_t size = (size_t)st.st_size, got = 0;
  buf = malloc(size ? size : 1);
  if (!buf) {
    rc = fail(err, errlen, FLOWLUA_ENOMEM, "out of memory");
    goto close_fd;
  }
  while (got < size) {
    ssize_t r = read(fd, buf + got, size - got);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      rc = read_error(path, errno, err, errlen);
      goto free_buf;
    }
    if (r == 0) break; /* shrank while read: the parser finds it short */
    got += (size_t)r;
  }
  *data = buf;
  *len = got;
  *kind = READ_OK;
  goto close_fd;

free_buf:
  free(buf);
close_fd:
  close(fd);
  return rc;
}

/* Loads the TZif file at path as zone `name`; *kind as read_file's. */
static int load_path(const char *path, const char *name, int *kind, fl_tz **out,
                     char *err, size_t errlen) {
  unsigned char *data;
  size_t len;
  *out = NULL;
  int rc = read_file(path, &data, &len, kind, err, errlen);
  if (rc != 0) return rc;
  rc = tz_from_data(name, path, data, len, out, err, errlen);
  free(data);
  return rc;
}

static int load_named(const char *name, fl_tz **out, char *err, size_t errlen) {
  *out = NULL;
  int rc = check_name(name, err, errlen);
  if (rc != 0) return rc;
  if (strcmp(name, "UTC") == 0) return make_utc(name, out, err, errlen);
  const char *dir = zone_dir();
  size_t size = strlen(dir) + strlen(name) + 2;
  char *path = malloc(size);
  if (!path) return fail(err, errlen, FLOWLUA_ENOMEM, "out of memory");
  snprintf(path, size, "%s/%s", dir, name);
  int how;
  rc = load_path(path, name, &how, out, err, errlen);
  free(path);
  if (how == READ_MISSING)
    fail(err, errlen, rc, "unknown time zone '%s' (no such file in %s)", name,
         dir);
  else if (how == READ_FOLDER)
    fail(err, errlen, rc, "unknown time zone '%s' (a folder in %s, not a zone)",
         name, dir);
  return rc;
}

/* TZ as glibc reads it: ":name", a file path, a zone name, or a POSIX TZ
   string; a name that is not a file is tried as a POSIX string. */
static int load_tz_env(const char *v, fl_tz **out, char *err, size_t errlen) {
  int how;
  if (*v == '\0') return make_utc("UTC", out, err, errlen);
  if (*v == ':') v++;
  if (*v == '/') {
    int rc = load_path(v, v, &how, out, err, errlen);
    if (how == READ_MISSING || how == READ_FOLDER)
      fail(err, errlen, rc, "unknown time zone '%s' (from TZ: no such file)",
           v);
    return rc;
  }
  if (check_name(v, NULL, 0) == 0) {
    int rc = load_named(v, out, err, errlen);
    if (rc != FLOWLUA_EINVAL || fl_tz_from_posix(v, out, NULL, 0) != 0)
      return rc;
    return 0;
  }
  return fl_tz_from_posix(v, out, err, errlen);
}

/* The zone /etc/localtime links to ("Europe/Madrid"), for fl_tz_name. */
static void localtime_name(char *buf, size_t size) {
  char target[512];
  snprintf(buf, size, "localtime");
  ssize_t n = readlink("/etc/localtime", target, sizeof target - 1);
  if (n <= 0) return;
  target[n] = '\0';
  const char *z = strstr(target, "zoneinfo/");
  if (z && check_name(z + 9, NULL, 0) == 0) snprintf(buf, size, "%s", z + 9);
}

static int load_local(fl_tz **out, char *err, size_t errlen) {
  const char *v = getenv("TZ");
  if (v) return load_tz_env(v, out, err, errlen);
  char name[MAX_NAME_LEN + 1];
  localtime_name(name, sizeof name);
  int how;
  int rc = load_path("/etc/localtime", name, &how, out, err, errlen);
  if (how == READ_MISSING) return make_utc("UTC", out, err, errlen);
  if (how == READ_FOLDER)
    return fail(err, errlen, FLOWLUA_EIO, "/etc/localtime is a folder");
  return rc;
}

int fl_tz_load(const char *name, fl_tz **out, char *err, size_t errlen) {
  *out = NULL;
  if (!name || !*name) return load_local(out, err, errlen);
  return load_named(name, out, err, errlen);
}

/* ---- ISO 8601 ------------------------------------------------------------ */

size_t fl_time_format_iso(int64_t t, const fl_tz *tz, char *buf, size_t len) {
  if (len > 0) buf[0] = '\0';
  if (t < FL_TIME_MIN || t > FL_TIME_MAX) return 0;
  int off = fl_tz_offset_at(tz, t);
  int64_t local = t + off, days = floor_div(local, DAY), y;
  int s = (int)(local - days * DAY), m, d;
  fl_civil_from_days(days, &y, &m, &d);
  int a = off < 0 ? -off : off;
  char zone[16];
  if (a % 60)
    snprintf(zone, sizeof zone, "%c%02d:%02d:%02d", off < 0 ? '-' : '+',
             a / 3600, a / 60 % 60, a % 60);
  else
    snprintf(zone, sizeof zone, "%c%02d:%02d", off < 0 ? '-' : '+', a / 3600,
             a / 60 % 60);
  int n = snprintf(buf, len, "%04lld-%02d-%02dT%02d:%02d:%02d%s", (long long)y,
                   m, d, s / 3600, s / 60 % 60, s % 60, zone);
  if (n < 0 || (size_t)n >= len) {
    if (len > 0) buf[0] = '\0';
    return 0;
  }
  return (size_t)n;
}

/* Exactly `digits` digits. */
static int fixed_digits(const char **ps, int digits, int *out) {
  int v = 0;
  for (int i = 0; i < digits; i++) {
    if (!is_digit((*ps)[i])) return -1;
    v = v * 10 + ((*ps)[i] - '0');
  }
  *ps += digits;
  *out = v;
  return 0;
}

/* ±hh[[:]mm[:ss]] after an ISO time; the offset in seconds. */
static int parse_iso_offset(const char **ps, int32_t *out) {
  const char *s = *ps;
  int sign = *s++ == '-' ? -1 : 1, h, m = 0, sec = 0;
  if (fixed_digits(&s, 2, &h) != 0 || h > 23) return -1;
  if (*s == ':' || is_digit(*s)) {
    int colon = *s == ':';
    s += colon;
    if (fixed_digits(&s, 2, &m) != 0 || m > 59) return -1;
    if (colon && *s == ':') {
      s++;
      if (fixed_digits(&s, 2, &sec) != 0 || sec > 59) return -1;
    }
  }
  *ps = s;
  *out = sign * (h * 3600 + m * 60 + sec);
  return 0;
}

typedef struct iso_fields {
  int y, mo, d, h, mi, s;
  int has_offset;
  int32_t offset;
} iso_fields;

/* The shape of an ISO time; NULL, or the position where it goes wrong. */
static const char *scan_iso(const char *s, iso_fields *f) {
  *f = (iso_fields){0};
  if (fixed_digits(&s, 4, &f->y) || *s++ != '-' ||
      fixed_digits(&s, 2, &f->mo) || *s++ != '-' || fixed_digits(&s, 2, &f->d))
    return s;
  if (*s == '\0') return NULL;
  if (*s != 'T' && *s != 't' && *s != ' ') return s;
  s++;
  if (fixed_digits(&s, 2, &f->h) || *s++ != ':' || fixed_digits(&s, 2, &f->mi))
    return s;
  if (*s == ':') {
    s++;
    if (fixed_digits(&s, 2, &f->s)) return s;
    if ((*s == '.' || *s == ',') && is_digit(s[1]))
      for (s++; is_digit(*s); s++)
        ;
  }
  if (*s == 'Z' || *s == 'z') {
    f->has_offset = 1;
    s++;
  } else if (*s == '+' || *s == '-') {
    f->has_offset = 1;
    if (parse_iso_offset(&s, &f->offset) != 0) return s;
  }
  return *s == '\0' ? NULL : s;
}

static const char *const month_names[] = {
    "January", "February", "March",     "April",   "May",      "June",
    "July",    "August",   "September", "October", "November", "December"};

/* Range checks with the reason; NULL when the fields make a valid time. */
static const char *check_iso(const iso_fields *f, char *why, size_t size) {
  if (f->y < 1)
    snprintf(why, size, "year %d is out of range 1-9999", f->y);
  else if (f->mo < 1 || f->mo > 12)
    snprintf(why, size, "month %d is out of range 1-12", f->mo);
  else if (f->d < 1 || f->d > fl_days_in_month(f->y, f->mo))
    snprintf(why, size, "day %d is out of range for %s %d (1-%d)", f->d,
             month_names[f->mo - 1], f->y, fl_days_in_month(f->y, f->mo));
  else if (f->h > 23)
    snprintf(why, size, "hour %d is out of range 0-23", f->h);
  else if (f->mi > 59)
    snprintf(why, size, "minute %d is out of range 0-59", f->mi);
  else if (f->s > 59)
    snprintf(why, size, "second %d is out of range 0-59", f->s);
  else
    return NULL;
  return why;
}

int fl_time_parse_iso(const char *s, const fl_tz *tz, int64_t *out, char *err,
                      size_t errlen) {
  char shown[80], why[80];
  iso_fields f;
  if (!s)
    return fail(err, errlen, FLOWLUA_EINVAL,
                "missing time (expected ISO 8601)");
  printable(s, shown, sizeof shown);
  if (scan_iso(s, &f))
    return fail(err, errlen, FLOWLUA_EINVAL,
                "invalid time '%s': expected ISO 8601 like "
                "2026-03-29T01:30:00+01:00, 2026-03-29T01:30 or 2026-03-29",
                shown);
  if (check_iso(&f, why, sizeof why))
    return fail(err, errlen, FLOWLUA_EINVAL, "invalid time '%s': %s", shown,
                why);
  int64_t local =
      fl_days_from_civil(f.y, f.mo, f.d) * DAY + f.h * 3600 + f.mi * 60 + f.s;
  int64_t t;
  if (f.has_offset) {
    t = local - f.offset;
  } else {
    int64_t inst[2];
    fl_tz_local_to_utc(tz, local, inst); /* the earlier, or the gap's end */
    t = inst[0];
  }
  if (t < FL_TIME_MIN || t > FL_TIME_MAX)
    return fail(err, errlen, FLOWLUA_EINVAL,
                "invalid time '%s': out of range (years 1 to 9999 UTC)", shown);
  *out = t;
  return 0;
}

/* ISO 8601 with milliseconds when t has a fraction, in tz. */
void fl_time_format_iso_ms(const fl_tz *tz, double t, char *out, size_t len) {
  double secs = floor(t);
  int ms = (int)((t - secs) * 1000.0 + 0.5);
  char iso[64];
  fl_time_format_iso((int64_t)secs, tz, iso, sizeof iso);
  if (ms > 0 && ms < 1000 && strlen(iso) > 19)
    snprintf(out, len, "%.19s.%03d%.6s", iso, ms, iso + 19);
  else
    snprintf(out, len, "%s", iso);
}

