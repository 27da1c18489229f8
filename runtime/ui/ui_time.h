/*
 * ui_time.h — the time filter of the web UI's API (since=, until=):
 * ISO 8601 in UTC as the API writes its own times, parsed strictly.
 */
#ifndef FL_UI_TIME_H
#define FL_UI_TIME_H

/* "2026-12-05T12:00:00Z" or "2026-12-05T12:00:00.250Z" (what the API
   writes, and what JavaScript's toISOString() gives) into seconds since
   the epoch. 0, or -1 for anything else: another zone, a missing field, a
   month 13, February 30, trailing text. */
int fl_ui_parse_time(const char *s, double *out);

#endif
