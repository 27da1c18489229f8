/*
 * cron.c — the cron expression parser and the search for the next fire time.
 *
 * The search walks the zone's timeline in stretches of constant UTC offset.
 * Within one stretch wall-clock time and instants move together, so the
 * next matching local minute there is the next fire; field by field it
 * jumps over months, days and hours that cannot match, never minute by
 * minute. Between stretches sit the clock changes, where the DST policy
 * decides about skipped and repeated times. Nothing here allocates or keeps
 * state: one parsed expression serves any number of threads.
 */
#include "cron.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "flowlua.h"

enum { N_FIELDS = 5, MINUTES_PER_DAY = 1440 };

typedef struct field_spec {
  const char *name;
  int min, max;
  int star_max;             /* `*` and `a/n` end here: 6 for weekdays */
  const char *const *names; /* three-letter names from min on, or NULL */
  int n_names;
  const char *kind, *names_range; /* for messages */
} field_spec;

static const char *const month_abbr[] = {"JAN", "FEB", "MAR", "APR",
                                         "MAY", "JUN", "JUL", "AUG",
                                         "SEP", "OCT", "NOV", "DEC"};
static const char *const day_abbr[] = {"SUN", "MON", "TUE", "WED",
                                       "THU", "FRI", "SAT"};

static const field_spec fields[N_FIELDS] = {
    {"minute", 0, 59, 59, NULL, 0, NULL, NULL},
    {"hour", 0, 23, 23, NULL, 0, NULL, NULL},
    {"day-of-month", 1, 31, 31, NULL, 0, NULL, NULL},
    {"month", 1, 12, 12, month_abbr, 12, "month", "JAN-DEC"},
    {"day-of-week", 0, 7, 6, day_abbr, 7, "day", "SUN-SAT"},
};

static const struct {
  const char *name, *expansion;
} shortcuts[] = {
    {"@yearly", "0 0 1 1 *"},  {"@annually", "0 0 1 1 *"},
    {"@monthly", "0 0 1 * *"}, {"@weekly", "0 0 * * 0"},
    {"@daily", "0 0 * * *"},   {"@midnight", "0 0 * * *"},
    {"@hourly", "0 * * * *"},
};

static const char *const month_names[] = {
    "January", "February", "March",     "April",   "May",      "June",
    "July",    "August",   "September", "October", "November", "December"};

/* ---- messages ------------------------------------------------------------ */

static int fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t errlen, const char *fmt, ...) {
  if (err && errlen > 0) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
  }
  return FLOWLUA_EINVAL;
}

/* Copies n bytes of s for quoting: control bytes become '?' and a long text
   is cut with "...", so a message stays one readable line. */
static const char *printable(const char *s, size_t n, char *buf, size_t size) {
  size_t i = 0;
  for (; i < n && s[i] && i + 4 < size; i++) {
    unsigned char c = (unsigned char)s[i];
    buf[i] = c < 0x20 || c == 0x7f ? '?' : (char)c;
  }
  if (i < n && s[i]) {
    memcpy(buf + i, "...", 3);
    i += 3;
  }
  buf[i] = '\0';
  return buf;
}

/* A character for a message: 'x', or 0x0a when unprintable. */
static const char *show_char(char ch, char *buf, size_t size) {
  unsigned char c = (unsigned char)ch;
  if (c < 0x20 || c >= 0x7f)
    snprintf(buf, size, "0x%02x", c);
  else
    snprintf(buf, size, "'%c'", c);
  return buf;
}

/* The field being parsed, for messages. */
typedef struct field_ctx {
  const char *expr;
  int index; /* 0-4 */
  const char *text;
  size_t len;
  char *err;
  size_t errlen;
} field_ctx;

static int field_fail(const field_ctx *f, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int field_fail(const field_ctx *f, const char *fmt, ...) {
  char why[160], expr[96], text[64];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(why, sizeof why, fmt, ap);
  va_end(ap);
  return fail(f->err, f->errlen, "cron '%s': field %d (%s) '%s': %s",
              printable(f->expr, strlen(f->expr), expr, sizeof expr),
              f->index + 1, fields[f->index].name,
              printable(f->text, f->len, text, sizeof text), why);
}

/* ---- parsing ------------------------------------------------------------- */

static int is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' ||
         c == '\f';
}
static int is_digit(char c) { return c >= '0' && c <= '9'; }
static int is_alpha(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}
static char upper(char c) { return c >= 'a' && c <= 'z' ? c - 32 : c; }

/* Digits at *p (saturating, so a huge number is simply out of range). */
static int read_number(const char **p, const char *end) {
  int v = 0;
  for (; *p < end && is_digit(**p); (*p)++)
    v = v < 100000 ? v * 10 + (**p - '0') : v;
  return v;
}

/* A three-letter name at *p; its value, or -1 with the message set. */
static int read_name(const field_ctx *f, const char **p, const char *end) {
  const field_spec *fs = &fields[f->index];
  const char *b = *p;
  while (*p < end && is_alpha(**p)) (*p)++;
  size_t n = (size_t)(*p - b);
  if (!fs->names) {
    char word[32];
    field_fail(f, "'%s' is not a number", printable(b, n, word, sizeof word));
    return -1;
  }
  for (int i = 0; n == 3 && i < fs->n_names; i++) {
    const char *name = fs->names[i];
    if (upper(b[0]) == name[0] && upper(b[1]) == name[1] &&
        upper(b[2]) == name[2])
      return fs->min + i;
  }
  char word[32];
  field_fail(f, "unknown %s name '%s' (use %s)", fs->kind,
             printable(b, n, word, sizeof word), fs->names_range);
  return -1;
}

/* A value — a number or a name — checked against the field's range. */
static int read_value(const field_ctx *f, const char **p, const char *end,
                      const char *after, int *out) {
  const field_spec *fs = &fields[f->index];
  char c[8];
  if (*p == end || (!is_digit(**p) && !is_alpha(**p))) {
    if (after) return field_fail(f, "missing value after '%s'", after);
    return field_fail(f, "unexpected %s",
                      *p == end ? "end" : show_char(**p, c, sizeof c));
  }
  if (is_alpha(**p)) {
    *out = read_name(f, p, end);
    return *out < 0 ? FLOWLUA_EINVAL : 0;
  }
  const char *digits = *p;
  *out = read_number(p, end);
  if (*out < fs->min || *out > fs->max) {
    char text[32]; /* as written: a huge number is not what it parsed to */
    return field_fail(
        f, "%s is out of range %d-%d",
        printable(digits, (size_t)(*p - digits), text, sizeof text), fs->min,
        fs->max);
  }
  return 0;
}

/* "/n" after a range, when present: *step is 0 when there is none. */
static int read_step(const field_ctx *f, const char **p, const char *end,
                     int *step) {
  const field_spec *fs = &fields[f->index];
  int span = fs->star_max - fs->min + 1;
  *step = 0;
  if (*p == end || **p != '/') return 0;
  (*p)++;
  if (*p == end || !is_digit(**p))
    return field_fail(f, "missing step number after '/'");
  *step = read_number(p, end);
  if (*step < 1) return field_fail(f, "step must be at least 1");
  if (*step > span)
    return field_fail(f, "step %d is out of range 1-%d", *step, span);
  return 0;
}

/* One list item: *, a, a-b, each optionally /n; adds its values to bits. */
static int parse_item(const field_ctx *f, const char **p, const char *end,
                      uint64_t *bits) {
  const field_spec *fs = &fields[f->index];
  int lo, hi, step, rc;
  if (*p < end && **p == '*') {
    (*p)++;
    lo = fs->min;
    hi = fs->star_max;
    if ((rc = read_step(f, p, end, &step)) != 0) return rc;
  } else {
    if ((rc = read_value(f, p, end, NULL, &lo)) != 0) return rc;
    hi = lo;
    int ranged = *p < end && **p == '-';
    if (ranged) {
      (*p)++;
      if ((rc = read_value(f, p, end, "-", &hi)) != 0) return rc;
    }
    if ((rc = read_step(f, p, end, &step)) != 0) return rc;
    if (step && !ranged && lo <= fs->star_max) hi = fs->star_max; /* a/n */
    /* In the day of the week, where 7 is Sunday as 0 is (the one field
       whose max is past what * covers), 7-1 is Sunday to Monday; in the
       day of the month 7-1 wraps from the 7th past the 31st. */
    if (ranged && lo == 7 && hi < lo && fs->max > fs->star_max) lo = 0;
    if (ranged && hi < lo) {
      /* A range that wraps past the field's end, as crontab users write
         them: 22-2 is hours 22, 23, 0, 1, 2; FRI-MON is Friday to Monday.
         A step counts on across the wrap. */
      for (int v = lo, i = 0;; i++) {
        if (i % (step ? step : 1) == 0) *bits |= UINT64_C(1) << v;
        if (v == hi) break;
        v = v == fs->star_max ? fs->min : v + 1;
      }
      return 0;
    }
  }
  for (int v = lo; v <= hi; v += step ? step : 1) *bits |= UINT64_C(1) << v;
  return 0;
}

/* A comma list of items. */
static int parse_field(const field_ctx *f, uint64_t *bits) {
  const char *p = f->text, *end = f->text + f->len;
  char c[8];
  *bits = 0;
  for (;;) {
    if (p == end || *p == ',') return field_fail(f, "empty item in list");
    int rc = parse_item(f, &p, end, bits);
    if (rc != 0) return rc;
    if (p == end) return 0;
    if (*p != ',')
      return field_fail(f, "unexpected %s", show_char(*p, c, sizeof c));
    p++;
  }
}

/* Splits at blanks: up to N_FIELDS + 1 fields, the total count in *n. */
static void split_fields(const char *s, const char *start[], size_t len[],
                         int *n) {
  *n = 0;
  for (;;) {
    while (is_space(*s)) s++;
    if (!*s) return;
    const char *b = s;
    while (*s && !is_space(*s)) s++;
    if (*n <= N_FIELDS) {
      start[*n] = b;
      len[*n] = (size_t)(s - b);
    }
    (*n)++;
  }
}

/* Joins items as "A", "A and B" or "A, B and C". */
static void join_list(char *buf, size_t size, const char *const items[], int n,
                      const char *last_sep) {
  size_t used = 0;
  buf[0] = '\0';
  for (int i = 0; i < n && used < size; i++) {
    const char *sep = i == 0 ? "" : i == n - 1 ? last_sep : ", ";
    int k = snprintf(buf + used, size - used, "%s%s", sep, items[i]);
    if (k < 0) return;
    used += (size_t)k;
  }
}

/*
 * Whether the days can ever match, else why not. Only a restricted
 * day-of-month with an unrestricted day-of-week can fail: every month has
 * every weekday. February counts with 29 days.
 */
static const char *never_fires(const fl_cron *c, char *why, size_t size) {
  if (c->mday_star || !c->wday_star) return NULL;
  const char *months[12], *days[31];
  int n_months = 0, n_days = 0;
  for (int m = 1; m <= 12; m++) {
    if (!(c->months >> m & 1)) continue;
    int last = fl_days_in_month(2000, m);
    if (c->mdays & (((UINT64_C(1) << (last + 1)) - 1) & ~UINT64_C(1)))
      return NULL;
    months[n_months++] = month_names[m - 1];
  }
  static const char *const numbers[] = {
      "0",  "1",  "2",  "3",  "4",  "5",  "6",  "7",  "8",  "9",  "10",
      "11", "12", "13", "14", "15", "16", "17", "18", "19", "20", "21",
      "22", "23", "24", "25", "26", "27", "28", "29", "30", "31"};
  for (int d = 1; d <= 31; d++)
    if (c->mdays >> d & 1) days[n_days++] = numbers[d];
  char mlist[128], dlist[64];
  join_list(mlist, sizeof mlist, months, n_months, " and ");
  join_list(dlist, sizeof dlist, days, n_days, " or ");
  snprintf(why, size, "%s %s no day %s", mlist, n_months == 1 ? "has" : "have",
           dlist);
  return why;
}

/* The five fields, already split; messages quote `expr`. */
static int parse_fields(const char *expr, const char *start[],
                        const size_t len[], fl_cron *out, char *err,
                        size_t errlen) {
  uint64_t bits[N_FIELDS];
  for (int i = 0; i < N_FIELDS; i++) {
    field_ctx f = {expr, i, start[i], len[i], err, errlen};
    int rc = parse_field(&f, &bits[i]);
    if (rc != 0) return rc;
  }
  *out = (fl_cron){
      .minutes = bits[0],
      .hours = (uint32_t)bits[1],
      .mdays = (uint32_t)bits[2],
      .months = (uint16_t)bits[3],
      .wdays = (uint8_t)((bits[4] | bits[4] >> 7) & 0x7f), /* 7 is Sunday */
      .mday_star = len[2] == 1 && start[2][0] == '*',
      .wday_star = len[4] == 1 && start[4][0] == '*',
  };
  return 0;
}

static int parse_shortcut(const char *expr, const char *word, size_t n,
                          int n_fields, fl_cron *out, char *err,
                          size_t errlen) {
  char shown[96], name[32];
  printable(expr, strlen(expr), shown, sizeof shown);
  printable(word, n, name, sizeof name);
  if (n_fields > 1)
    return fail(err, errlen, "cron '%s': %s takes no other fields", shown,
                name);
  for (size_t i = 0; i < sizeof shortcuts / sizeof shortcuts[0]; i++) {
    const char *s = shortcuts[i].name;
    size_t k = 0;
    while (k < n && s[k] && upper(word[k]) == upper(s[k])) k++;
    if (k != n || s[k]) continue;
    const char *start[N_FIELDS + 1];
    size_t len[N_FIELDS + 1];
    int count;
    split_fields(shortcuts[i].expansion, start, len, &count);
    return parse_fields(expr, start, len, out, err, errlen);
  }
  return fail(err, errlen,
              "cron '%s': unknown shortcut '%s' (use @yearly, @annually, "
              "@monthly, @weekly, @daily, @midnight or @hourly)",
              shown, name);
}

int fl_cron_parse(const char *expr, fl_cron *out, char *err, size_t errlen) {
  const char *start[N_FIELDS + 1];
  size_t len[N_FIELDS + 1];
  char shown[96], why[256];
  int n;
  if (!expr) return fail(err, errlen, "missing cron expression");
  printable(expr, strlen(expr), shown, sizeof shown);
  split_fields(expr, start, len, &n);
  if (n > 0 && start[0][0] == '@')
    return parse_shortcut(expr, start[0], len[0], n, out, err, errlen);
  if (n != N_FIELDS)
    return fail(err, errlen, "cron '%s': expected 5 fields, got %d", shown, n);
  fl_cron c;
  int rc = parse_fields(expr, start, len, &c, err, errlen);
  if (rc != 0) return rc;
  if (never_fires(&c, why, sizeof why))
    return fail(err, errlen, "cron '%s': never fires: %s", shown, why);
  *out = c;
  return 0;
}

/* ---- DST policy ---------------------------------------------------------- */

int fl_dst_parse_missing(const char *s, fl_dst_missing *out, char *err,
                         size_t errlen) {
  char shown[64];
  if (s && strcmp(s, "shift") == 0)
    *out = FL_DST_SHIFT;
  else if (s && strcmp(s, "skip") == 0)
    *out = FL_DST_SKIP;
  else
    return fail(err, errlen, "dst.missing must be 'shift' or 'skip', not '%s'",
                s ? printable(s, strlen(s), shown, sizeof shown) : "");
  return 0;
}

int fl_dst_parse_repeated(const char *s, fl_dst_repeated *out, char *err,
                          size_t errlen) {
  char shown[64];
  if (s && strcmp(s, "first") == 0)
    *out = FL_DST_FIRST;
  else if (s && strcmp(s, "last") == 0)
    *out = FL_DST_LAST;
  else if (s && strcmp(s, "both") == 0)
    *out = FL_DST_BOTH;
  else
    return fail(err, errlen,
                "dst.repeated must be 'first', 'last' or 'both', not '%s'",
                s ? printable(s, strlen(s), shown, sizeof shown) : "");
  return 0;
}

const char *fl_dst_missing_name(fl_dst_missing m) {
  return m == FL_DST_SKIP ? "skip" : "shift";
}

const char *fl_dst_repeated_name(fl_dst_repeated r) {
  return r == FL_DST_LAST ? "last" : r == FL_DST_BOTH ? "both" : "first";
}

/* ---- matching ------------------------------------------------------------ */

/* The lowest set bit at or above `from`, or -1. */
static int next_bit(uint64_t bits, int from, int top) {
  for (int i = from; i <= top; i++)
    if (bits >> i & 1) return i;
  return -1;
}

static int64_t floor_div(int64_t a, int64_t b) {
  int64_t q = a / b;
  return q - (a % b != 0 && (a < 0) != (b < 0));
}

static int day_matches(const fl_cron *c, int mday, int wday) {
  int dom = c->mdays >> mday & 1, dow = c->wdays >> wday & 1;
  if (c->mday_star || c->wday_star) return dom && dow;
  return dom || dow;
}

int fl_cron_matches(const fl_cron *c, int64_t local) {
  int64_t minute = floor_div(local, 60), days = floor_div(minute, 1440), y;
  int in_day = (int)(minute - days * MINUTES_PER_DAY), m, d;
  fl_civil_from_days(days, &y, &m, &d);
  return (c->months >> m & 1) && day_matches(c, d, fl_weekday(days)) &&
         (c->hours >> in_day / 60 & 1) && (c->minutes >> in_day % 60 & 1);
}

/*
 * The first matching local minute at or after `from` and before `limit`
 * (local seconds) into *out; 0 if there is none. Each step moves to the
 * start of the next month, day or hour that might match.
 */
static int next_local_minute(const fl_cron *c, int64_t from, int64_t limit,
                             int64_t *out) {
  int64_t minute = -floor_div(-from, 60); /* round up to a whole minute */
  while (minute * 60 < limit) {
    int64_t days = floor_div(minute, MINUTES_PER_DAY), y;
    int in_day = (int)(minute - days * MINUTES_PER_DAY), m, d;
    fl_civil_from_days(days, &y, &m, &d);
    if (!(c->months >> m & 1)) {
      int m2 = next_bit(c->months, m + 1, 12);
      if (m2 < 0 && (m2 = next_bit(c->months, 1, 12)) < 0) return 0;
      minute = fl_days_from_civil(m2 > m ? y : y + 1, m2, 1) * MINUTES_PER_DAY;
      continue;
    }
    if (!day_matches(c, d, fl_weekday(days))) {
      minute = (days + 1) * MINUTES_PER_DAY;
      continue;
    }
    int h = in_day / 60, h2 = next_bit(c->hours, h, 23);
    if (h2 < 0) {
      minute = (days + 1) * MINUTES_PER_DAY;
      continue;
    }
    int mi = h2 == h ? next_bit(c->minutes, in_day % 60, 59)
                     : next_bit(c->minutes, 0, 59);
    if (mi < 0) { /* none left in hour h2: try the hour after it */
      minute = days * MINUTES_PER_DAY + (h2 + 1) * 60;
      continue;
    }
    minute = days * MINUTES_PER_DAY + h2 * 60 + mi;
    if (minute * 60 >= limit) return 0;
    *out = minute * 60;
    return 1;
  }
  return 0;
}

/* Whether the instant f, one of those showing local time L, fires under
   the policy for repeated times. */
static int repeat_fires(const fl_tz *tz, fl_dst_repeated rp, int64_t local,
                        int64_t f) {
  int64_t inst[2];
  if (rp == FL_DST_BOTH || fl_tz_local_to_utc(tz, local, inst) != 2) return 1;
  return f == (rp == FL_DST_FIRST ? inst[0] : inst[1]);
}

/* Searches the instants [t, end), where the offset is `off` throughout. */
static int next_in_stretch(const fl_cron *c, const fl_tz *tz,
                           fl_dst_repeated rp, int64_t t, int64_t end,
                           int32_t off, int64_t *next) {
  int64_t local = t + off, found;
  while (next_local_minute(c, local, end + off, &found)) {
    if (repeat_fires(tz, rp, found, found - off)) {
      *next = found - off;
      return 1;
    }
    local = found + 60;
  }
  return 0;
}

int fl_cron_next(const fl_cron *c, const fl_tz *tz, fl_dst_policy p,
                 int64_t after, int64_t *next, char *err, size_t errlen) {
  if (after < FL_TIME_MIN || after > FL_TIME_MAX)
    return fail(err, errlen, "time %lld is out of range (years 1 to 9999)",
                (long long)after);
  int64_t horizon = FL_CRON_HORIZON_YEARS * INT64_C(31622400) + after;
  if (horizon > FL_TIME_MAX) horizon = FL_TIME_MAX;
  for (int64_t t = after + 1; t <= horizon;) {
    int32_t off = fl_tz_offset_at(tz, t);
    int64_t change;
    int changes = fl_tz_next_transition(tz, t, &change) && change <= horizon;
    int64_t end = changes ? change : horizon + 1;
    if (next_in_stretch(c, tz, p.repeated, t, end, off, next)) return 0;
    if (!changes) break;
    /* Matching times in a gap fire once, as the gap ends. */
    int32_t off2 = fl_tz_offset_at(tz, change);
    int64_t found;
    if (p.missing == FL_DST_SHIFT && off2 > off &&
        next_local_minute(c, change + off, change + off2, &found)) {
      *next = change;
      return 0;
    }
    t = change;
  }
  char from[FL_TIME_ISO_SIZE];
  fl_time_format_iso(after, tz, from, sizeof from);
  if (horizon == FL_TIME_MAX)
    return fail(err, errlen, "no fire time after %s before the year 10000",
                from);
  return fail(err, errlen, "no fire time within %d years after %s",
              FL_CRON_HORIZON_YEARS, from);
}
