/*
 * fuzz_cron.c — cron expressions (cron.c) and the next fire time, in zones
 * with every kind of clock change.
 *
 * Input: a zone byte, a DST policy byte, 8 bytes for the instant to search
 * from, then the expression.
 *
 * Properties:
 *  - a refused expression has a one-line message quoting it; an accepted
 *    one sets only the bits its fields can hold;
 *  - with the "shift" policy a fire time is always found within the
 *    horizon; a refusal (out of range, nothing fires) has a message;
 *  - the fire time is strictly after the start, and it is either a time
 *    that matches (the occurrence the repeated-time policy picks when the
 *    clocks showed it twice) or, under "shift", the end of a gap that
 *    skipped a matching time;
 *  - no fire was missed: between the start and the fire time (all of it
 *    up to four days, else both ends of it) no instant shows a matching
 *    time unless the repeated-time policy excuses it, and no gap skipped a
 *    matching time under "shift";
 *  - the next fire after the fire time is later still.
 */
#include "cron.h"
#include "flowlua.h"
#include "fuzz.h"

/* Zones with gaps and repeats of an hour, of 30 minutes (Lord Howe), at
   odd minutes (Kathmandu), south of the equator, and none. */
static const char *const zone_names[] = {
    NULL, "Europe/Madrid", "America/New_York", "Australia/Lord_Howe",
    "Asia/Kathmandu", "America/Santiago", "Pacific/Apia"};
#define N_ZONES (sizeof zone_names / sizeof *zone_names)
static fl_tz *zones[N_ZONES];

/* Searches start between 1902 and 2199: in the zones' tables and rules,
   where offsets are whole minutes. */
#define START_MIN INT64_C(-2114380800) /* 1903-01-01 */
#define START_SPAN INT64_C(9466848000) /* 300 years */
#define BRUTE_SPAN (4 * 86400)

static void load_zones(void) {
  for (size_t i = 1; i < N_ZONES; i++) {
    char err[256];
    if (fl_tz_load(zone_names[i], &zones[i], err, sizeof err) != 0) {
      fprintf(stderr, "fuzz_cron: %s\n", err);
      abort();
    }
  }
}

/* The first whole minute strictly after t (t may be negative). */
static int64_t minute_after(int64_t t) {
  int64_t m = t / 60 - (t % 60 < 0);
  return (m + 1) * 60;
}

static int64_t local_of(const fl_tz *tz, int64_t t) {
  return t + fl_tz_offset_at(tz, t);
}

/* Whether the instant t shows a matching whole minute. */
static int fires_at(const fl_cron *c, const fl_tz *tz, int64_t t) {
  int64_t local = local_of(tz, t);
  return local % 60 == 0 && fl_cron_matches(c, local);
}

/* Whether the policy lets a matching instant t go by without a fire. */
static int excused(const fl_tz *tz, fl_dst_policy p, int64_t t) {
  int64_t inst[2];
  if (fl_tz_local_to_utc(tz, local_of(tz, t), inst) != 2) return 0;
  return (p.repeated == FL_DST_FIRST && t == inst[1]) ||
         (p.repeated == FL_DST_LAST && t == inst[0]);
}

/* Whether the clocks jumped forward at `change` over a matching time. */
static int gap_matches(const fl_cron *c, const fl_tz *tz, int64_t change) {
  int64_t from = change + fl_tz_offset_at(tz, change - 1);
  int64_t to = local_of(tz, change);
  for (int64_t l = minute_after(from - 1); l < to && l <= from + 86400; l += 60)
    if (fl_cron_matches(c, l)) return 1;
  return 0;
}

static void check_no_miss(const fl_cron *c, const fl_tz *tz, fl_dst_policy p,
                          int64_t from, int64_t to, int64_t after) {
  for (int64_t t = minute_after(from); t < to; t += 60)
    FUZZ_CHECK(!fires_at(c, tz, t) || excused(tz, p, t),
               "fire time missed at %lld (searching from %lld)", (long long)t,
               (long long)after);
}

static void check_fire(const fl_cron *c, const fl_tz *tz, fl_dst_policy p,
                       int64_t after, int64_t next) {
  FUZZ_CHECK(next > after, "fire time %lld is not after %lld", (long long)next,
             (long long)after);
  int64_t local = local_of(tz, next), inst[2];
  if (local % 60 == 0 && fl_cron_matches(c, local)) {
    int n = fl_tz_local_to_utc(tz, local, inst);
    FUZZ_CHECK(n >= 1 && (n == 1 ? next == inst[0]
                          : p.repeated == FL_DST_FIRST ? next == inst[0]
                          : p.repeated == FL_DST_LAST  ? next == inst[1]
                                                       : 1),
               "fire time %lld is the wrong occurrence of its local time",
               (long long)next);
  } else {
    FUZZ_CHECK(p.missing == FL_DST_SHIFT &&
                   fl_tz_offset_at(tz, next - 1) < fl_tz_offset_at(tz, next) &&
                   gap_matches(c, tz, next),
               "fire time %lld neither matches nor ends a gap that skipped a "
               "match (searching from %lld)",
               (long long)next, (long long)after);
  }
  if (next - after <= BRUTE_SPAN) {
    check_no_miss(c, tz, p, after, next, after);
  } else {
    check_no_miss(c, tz, p, after, after + BRUTE_SPAN / 2, after);
    check_no_miss(c, tz, p, next - BRUTE_SPAN / 2, next, after);
  }
  if (p.missing == FL_DST_SHIFT) {
    int64_t t = after, change;
    while (fl_tz_next_transition(tz, t, &change) && change < next) {
      FUZZ_CHECK(!(fl_tz_offset_at(tz, change - 1) < fl_tz_offset_at(tz, change) &&
                   gap_matches(c, tz, change)),
                 "the gap at %lld skipped a matching time without a fire",
                 (long long)change);
      t = change;
    }
  }
}

static void check_parsed(const fl_cron *c) {
  FUZZ_CHECK(c->minutes && !(c->minutes >> 60), "minutes %llx",
             (unsigned long long)c->minutes);
  FUZZ_CHECK(c->hours && !(c->hours >> 24), "hours %x", c->hours);
  FUZZ_CHECK(c->mdays && !(c->mdays & 1), "days of the month %x", c->mdays);
  FUZZ_CHECK(c->months && !(c->months & 1) && !(c->months >> 13), "months %x",
             c->months);
  FUZZ_CHECK(c->wdays && !(c->wdays >> 7), "weekdays %x", c->wdays);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (!zones[1]) load_zones();
  fuzz_input in = {data, size};
  const fl_tz *tz = zones[fuzz_byte(&in) % N_ZONES];
  uint8_t policy = fuzz_byte(&in);
  fl_dst_policy p = {policy & 1 ? FL_DST_SKIP : FL_DST_SHIFT,
                     (fl_dst_repeated)(policy >> 1 & 3) % 3};
  uint64_t raw = fuzz_u64(&in);
  int64_t after = START_MIN + (int64_t)(raw % (uint64_t)START_SPAN);
  if (policy & 0x80) /* now and then anywhere, even out of range */
    after = (int64_t)raw;
  char *expr = fuzz_take_until(&in, 0, NULL);
  if (!expr) abort();

  fl_cron c;
  char err[512] = "";
  if (fl_cron_parse(expr, &c, err, sizeof err) != 0) {
    FUZZ_CHECK(strncmp(err, "cron '", 6) == 0 && !strchr(err, '\n'),
               "refusal message '%s'", err);
    free(expr);
    return 0;
  }
  check_parsed(&c);

  int64_t next = 0;
  int rc = fl_cron_next(&c, tz, p, after, &next, err, sizeof err);
  int in_range = after >= FL_TIME_MIN && after <= FL_TIME_MAX;
  if (rc != 0) {
    FUZZ_CHECK(rc == FLOWLUA_EINVAL && err[0], "next: %d, '%s'", rc, err);
    FUZZ_CHECK(!in_range || p.missing == FL_DST_SKIP ||
                   after > FL_TIME_MAX - FL_CRON_HORIZON_YEARS * INT64_C(31622400),
               "no fire time for '%s' after %lld: %s", fuzz_show(expr, strlen(expr)),
               (long long)after, err);
  } else {
    FUZZ_CHECK(in_range, "a fire time after an instant out of range");
    check_fire(&c, tz, p, after, next);
    int64_t next2;
    if (fl_cron_next(&c, tz, p, next, &next2, err, sizeof err) == 0)
      FUZZ_CHECK(next2 > next, "the fire after %lld is %lld", (long long)next,
                 (long long)next2);
  }
  free(expr);
  return 0;
}
