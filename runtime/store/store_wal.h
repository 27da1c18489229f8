/*
 * store_wal.h — reading a SQLite WAL file's checksum chain, to notice the
 * damage SQLite would silently drop (store_wal.c says how). The scan itself
 * is here for the fuzz target: a WAL is outside input, like any state file.
 */
#ifndef FL_STORE_WAL_H
#define FL_STORE_WAL_H

#include <stddef.h>
#include <sys/types.h>

/* What a look at a WAL file found. */
typedef struct fl_wal_scan {
  int header_bad;      /* the header does not check, and frames follow */
  size_t broken_frame; /* the first frame that does not check (from 0) */
  size_t lost_commits; /* commit frames of this WAL at or after it, when
                          a frame of this WAL follows it (else 0: a torn
                          last write, nothing committed lost) */
} fl_wal_scan;

/* Scans the WAL open at fd, from its current position (size: the file's
   size when looked at). 1 when committed transactions would be lost
   (filled in *out), 0 when SQLite will read every one of them, -1 on a
   read error (errno set). */
int fl_wal_scan_fd(int fd, off_t size, fl_wal_scan *out);

#endif
