/*
 * tz.h — time zones, civil dates and ISO 8601 times, in plain C.
 *
 * Zones come from the system's zone database (TZif files under $TZDIR or
 * /usr/share/zoneinfo), read and parsed here: the transition table (version
 * 1, or the 64-bit data of versions 2 to 4) and, for instants past its last
 * transition, the POSIX TZ rule in the file's footer. Nothing here calls
 * tzset(), localtime() or setenv(): a loaded fl_tz is immutable, owns no
 * global state, and may be shared by any number of threads.
 *
 * Instants are int64_t seconds since 1970-01-01T00:00:00Z, leap seconds not
 * counted (POSIX time). A "local" time is a wall-clock reading counted the
 * same way, as if the wall clock were UTC: 2026-03-29 02:30 in Madrid is
 * fl_days_from_civil(2026, 3, 29) * 86400 + 9000 whatever its offset.
 *
 * Unless said otherwise, functions taking `const fl_tz *` accept NULL for
 * UTC. Instants outside [FL_TIME_MIN, FL_TIME_MAX] (the years 1 to 9999) are
 * looked up as if they were at the nearest end of that range.
 */
#ifndef FL_TZ_H
#define FL_TZ_H

#include <stddef.h>
#include <stdint.h>

#define FL_TIME_MIN INT64_C(-62135596800) /* 0001-01-01T00:00:00Z */
#define FL_TIME_MAX INT64_C(253402300799) /* 9999-12-31T23:59:59Z */

typedef struct fl_tz fl_tz;

/*
 * Loads a zone. `name` is an IANA name ("Europe/Madrid", "UTC",
 * "America/New_York") looked up under $TZDIR when set, else
 * /usr/share/zoneinfo; "UTC" itself is built in and needs no file. NULL or ""
 * means local time: the TZ environment variable when set (a zone name,
 * ":name", ":/absolute/path" or a POSIX TZ string such as
 * "CET-1CEST,M3.5.0,M10.5.0/3"; set but empty means UTC), else
 * /etc/localtime, else UTC.
 *
 * Names with "..", a leading '/', or characters outside [A-Za-z0-9_+-/] are
 * refused (FLOWLUA_EINVAL), as is an unknown zone (FLOWLUA_EINVAL: "unknown
 * time zone 'Europe/Madird' (no such file in /usr/share/zoneinfo)"). A file
 * that cannot be read or is not valid TZif gives FLOWLUA_EIO and a message
 * naming the file. Zone files with leap-second records ("right/...") are
 * refused (FLOWLUA_EINVAL): their clocks count leap seconds, POSIX time
 * does not.
 *
 * Returns 0 with *out owning the zone (fl_tz_free), or an error status with
 * *out NULL and err (errlen bytes, may be 0) holding a one-line message.
 * Reads the environment but never changes it.
 */
int fl_tz_load(const char *name, fl_tz **out, char *err, size_t errlen);

/*
 * Parses `len` bytes of TZif data (a zone file's contents) into a zone called
 * `name` (copied; used by fl_tz_name and in error messages). Same results as
 * fl_tz_load, for data from somewhere other than the zone database.
 */
int fl_tz_from_tzif(const char *name, const void *data, size_t len, fl_tz **out,
                    char *err, size_t errlen);

/*
 * A zone from a POSIX TZ string alone ("EST5EDT,M3.2.0,M11.1.0",
 * "<+0530>-5:30", "UTC0"), including the TZif version 3 extensions (rule
 * times from -167 to 167 hours). A daylight name without rules follows the
 * US rules, as glibc does. Its name is the string.
 */
int fl_tz_from_posix(const char *spec, fl_tz **out, char *err, size_t errlen);

/* NULL is allowed. */
void fl_tz_free(fl_tz *tz);

/* The name it was loaded by: "Europe/Madrid", the TZ value, or for
   /etc/localtime the zone it links to ("localtime" when it links nowhere).
   Valid while tz lives. */
const char *fl_tz_name(const fl_tz *tz);

/* UTC offset in seconds (east positive) at the instant t. */
int fl_tz_offset_at(const fl_tz *tz, int64_t t);

/*
 * The instants whose wall-clock time in tz is `local` (see above). Returns
 * how many there are:
 *   1 — the usual case, in out[0];
 *   2 — the clocks went back and `local` happened twice: out[0] the earlier,
 *       out[1] the later instant (should a zone ever repeat an hour three
 *       times, the first and the last);
 *   0 — the clocks went forward over `local`: it never happened. out[0] is
 *       the instant the gap ends (the transition), whose wall-clock time is
 *       the first one after the gap.
 */
int fl_tz_local_to_utc(const fl_tz *tz, int64_t local, int64_t out[2]);

/* The first instant after t at which the offset may change (a transition of
   the zone's table, or of its rule past the table) into *at. Returns 1, or
   0 when the offset never changes after t. Some transitions keep the offset
   (only the zone's abbreviation changes). */
int fl_tz_next_transition(const fl_tz *tz, int64_t t, int64_t *at);

/* ---- civil dates: proleptic Gregorian arithmetic, any year --------------- */

/* Days from 1970-01-01 to y-m-d (m 1-12, d 1-31; out-of-range values roll
   over arithmetically). */
int64_t fl_days_from_civil(int64_t y, int m, int d);
/* The date of a day number; the inverse of fl_days_from_civil. */
void fl_civil_from_days(int64_t days, int64_t *y, int *m, int *d);
/* 0 = Sunday ... 6 = Saturday. */
int fl_weekday(int64_t days);
int fl_is_leap_year(int64_t y);
/* 28-31; 0 for a month outside 1-12. */
int fl_days_in_month(int64_t y, int m);

/* ---- ISO 8601 ------------------------------------------------------------ */

/* Enough for every instant in [FL_TIME_MIN, FL_TIME_MAX], with the NUL. */
#define FL_TIME_ISO_SIZE 32

/*
 * Writes t as local time in tz with its offset, "2026-03-29T03:00:00+02:00"
 * ("+00:00" for UTC, never "Z"; "+hh:mm:ss" for the odd historical offset
 * with seconds). Returns the length written (without the NUL), or 0 when t
 * is outside [FL_TIME_MIN, FL_TIME_MAX] or len is too small, leaving "" when
 * len > 0.
 */
size_t fl_time_format_iso(int64_t t, const fl_tz *tz, char *buf, size_t len);
/* The same for a time with a fraction: milliseconds are shown when it has
   one ("2026-03-29T02:00:00.250+02:00"); the result is cut to len. */
void fl_time_format_iso_ms(const fl_tz *tz, double t, char *out, size_t len);

/*
 * Parses an ISO 8601 time into an instant:
 *   "2026-03-29T01:30:00+01:00", "...Z", "...+0100", "...+01", with an
 *   optional fraction of a second (dropped: times are whole seconds);
 *   "2026-03-29T01:30" or "2026-03-29 01:30:00" — no offset: local time in tz;
 *   "2026-03-29" — midnight local time in tz.
 * A local time that happened twice is the earlier instant; one that never
 * happened (skipped by the clocks going forward) is the end of that gap, the
 * first instant whose wall-clock time is past it. Returns 0, or
 * FLOWLUA_EINVAL with a message quoting s.
 */
int fl_time_parse_iso(const char *s, const fl_tz *tz, int64_t *out, char *err,
                      size_t errlen);

#endif
