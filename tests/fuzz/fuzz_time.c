/*
 * fuzz_time.c — the time parsers of tz.c: POSIX TZ strings (the TZ
 * variable), TZif zone files, and ISO 8601 times (`flowlua next --from`).
 *
 * Input: a mode byte, 8 bytes for an instant, then the text: in mode 0 a
 * POSIX TZ string, in mode 1 the contents of a zone file, in mode 2 an ISO
 * 8601 time read in one of a few zones.
 *
 * Properties:
 *  - a refusal has a message;
 *  - in a zone that loaded, at any instant in range: the offset is within
 *    RFC 8536's bounds, the instant is one of those its own wall-clock time
 *    maps back to (and each of those shows that time), the next transition
 *    is later, and its ISO 8601 form parses back to the same instant;
 *  - a parsed ISO 8601 time is in range and survives format then parse.
 */
#include "flowlua.h"
#include "fuzz.h"
#include "tz.h"

static const char *const zone_names[] = {NULL, "Europe/Madrid",
                                         "America/New_York",
                                         "Australia/Lord_Howe"};
#define N_ZONES (sizeof zone_names / sizeof *zone_names)
static fl_tz *zones[N_ZONES];

static void load_zones(void) {
  for (size_t i = 1; i < N_ZONES; i++) {
    char err[256];
    if (fl_tz_load(zone_names[i], &zones[i], err, sizeof err) != 0) {
      fprintf(stderr, "fuzz_time: %s\n", err);
      abort();
    }
  }
}

/* A format then parse in tz gives t back. The parser reads years 1 to
   9999 with offsets below 24 hours; at the very ends of the range a zone
   off UTC shows the year 0 or 10000, and a POSIX rule may have an offset
   of 24 hours or more: those are printed but not read back. */
static void check_iso_round_trip(const fl_tz *tz, int64_t t) {
  char iso[FL_TIME_ISO_SIZE], err[256];
  FUZZ_CHECK(fl_time_format_iso(t, tz, iso, sizeof iso) > 0,
             "%lld does not format", (long long)t);
  int off = fl_tz_offset_at(tz, t);
  if (strncmp(iso, "0000-", 5) == 0 || iso[4] != '-' ||
      off >= 24 * 3600 || off <= -24 * 3600)
    return;
  int64_t back = 0;
  FUZZ_CHECK(fl_time_parse_iso(iso, tz, &back, err, sizeof err) == 0 && back == t,
             "%lld formats as '%s', which reads back as %lld (%s)", (long long)t,
             iso, (long long)back, err);
}

static void check_zone_at(const fl_tz *tz, int64_t t) {
  int off = fl_tz_offset_at(tz, t);
  FUZZ_CHECK(off >= -89999 && off <= 93599, "offset %d at %lld", off,
             (long long)t);
  int64_t local = t + off, inst[2] = {0, 0};
  int n = fl_tz_local_to_utc(tz, local, inst);
  FUZZ_CHECK((n == 1 && inst[0] == t) ||
                 (n == 2 && inst[0] < inst[1] && inst[0] <= t && t <= inst[1]),
             "%lld shows local %lld, which maps back to %d instants (%lld, %lld)",
             (long long)t, (long long)local, n, (long long)inst[0],
             (long long)inst[1]);
  for (int i = 0; i < n; i++)
    FUZZ_CHECK(inst[i] + fl_tz_offset_at(tz, inst[i]) == local,
               "instant %lld for local %lld shows another time",
               (long long)inst[i], (long long)local);
  int64_t at;
  if (fl_tz_next_transition(tz, t, &at))
    FUZZ_CHECK(at > t, "the transition after %lld is %lld", (long long)t,
               (long long)at);
  check_iso_round_trip(tz, t);
}

static int64_t in_range(uint64_t raw) {
  return FL_TIME_MIN + (int64_t)(raw % (uint64_t)(FL_TIME_MAX - FL_TIME_MIN + 1));
}

/* A handful of instants: the one from the input, and near now. */
static void check_zone(const fl_tz *tz, uint64_t raw) {
  check_zone_at(tz, in_range(raw));
  check_zone_at(tz, INT64_C(1700000000) + (int64_t)(raw % (uint64_t)(INT64_C(200) * 366 * 86400)));
  check_zone_at(tz, FL_TIME_MIN);
  check_zone_at(tz, FL_TIME_MAX);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (!zones[1]) load_zones();
  fuzz_input in = {data, size};
  uint8_t mode = fuzz_byte(&in);
  uint64_t raw = fuzz_u64(&in);
  size_t len;
  /* A zone file is binary: taken whole. The texts end at a NUL. */
  char *text = mode % 3 == 1 ? fuzz_take_rest(&in, &len)
                             : fuzz_take_until(&in, 0, &len);
  if (!text) abort();
  char err[512] = "";
  fl_tz *tz = NULL;
  int rc;
  switch (mode % 3) {
  case 0:
    rc = fl_tz_from_posix(text, &tz, err, sizeof err);
    break;
  case 1:
    rc = fl_tz_from_tzif("fuzz", text, len, &tz, err, sizeof err);
    break;
  default: {
    const fl_tz *zone = zones[mode / 3 % N_ZONES];
    int64_t t = 0;
    rc = fl_time_parse_iso(text, zone, &t, err, sizeof err);
    if (rc == 0) {
      FUZZ_CHECK(t >= FL_TIME_MIN && t <= FL_TIME_MAX, "'%s' read as %lld",
                 fuzz_show(text, len), (long long)t);
      check_iso_round_trip(zone, t);
    }
    break;
  }
  }
  if (rc != 0) {
    FUZZ_CHECK(err[0] && !tz, "refused (%d) without a message", rc);
  } else if (tz) {
    check_zone(tz, raw);
  }
  fl_tz_free(tz);
  free(text);
  return 0;
}
