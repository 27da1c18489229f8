/*
 * store_wal.c — noticing a damaged WAL before SQLite silently drops what
 * follows the damage.
 *
 * SQLite's WAL is a chain: every frame carries the running checksum of all
 * the frames before it and the header's two salts. When it opens the file,
 * SQLite reads frames until the first that does not check, and keeps every
 * transaction committed before it. A frame damaged in the middle (a bad
 * disk, a careless copy, 64 bytes overwritten) therefore loses, without a
 * word, every transaction committed after it: runs vanish, a run turns
 * Crashed with no tasks.
 *
 * What is legitimately ignored looks different: frames left from before the
 * WAL restarted carry other salts, the frames of a transaction whose
 * process died before it committed end in no commit frame, and a process
 * killed between writing a frame's header and its page (SQLite writes
 * them apart) leaves a last frame that does not check, followed by no
 * frame of this WAL: a torn write of a transaction that never committed.
 * So a commit frame that carries the header's salts but lies at or after
 * the first frame that does not check, when some frame of this WAL
 * follows that one, is a committed transaction SQLite would lose: the
 * damage we report. A frame being written by another process right
 * now can look broken for an instant; a suspicion is read a second time.
 */
#define _GNU_SOURCE
#include "store_wal.h"

#include "store_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define WAL_HEADER 32
#define FRAME_HEADER 24
#define WAL_VERSION 3007000u

static uint32_t be32(const unsigned char *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
         p[3];
}

static uint32_t le32(const unsigned char *p) {
  return (uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[1] << 8 |
         p[0];
}

/* SQLite's WAL checksum of data[0..len) (len a multiple of 8), continuing
   from s; its words are big-endian when the magic number says so. */
static void wal_checksum(int big_endian, const unsigned char *data, size_t len,
                         uint32_t s[2]) {
  uint32_t s0 = s[0], s1 = s[1];
  for (size_t i = 0; i + 8 <= len; i += 8) {
    uint32_t x0 = big_endian ? be32(data + i) : le32(data + i);
    uint32_t x1 = big_endian ? be32(data + i + 4) : le32(data + i + 4);
    s0 += x0 + s1;
    s1 += x1 + s0;
  }
  s[0] = s0;
  s[1] = s1;
}

/* Reads up to len bytes at the file's position: fewer only at its end. */
static ssize_t read_full(int fd, unsigned char *buf, size_t len) {
  size_t got = 0;
  while (got < len) {
    ssize_t n = read(fd, buf + got, len - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return -1;
    if (n == 0) break;
    got += (size_t)n;
  }
  return (ssize_t)got;
}

/* Scans the WAL open at fd (size bytes when looked at), a frame at a time:
   read, not mapped, because a checkpoint in another process may truncate
   the file under us (a mapped page past the new end is a SIGBUS), and
   frame by frame, because a WAL a long reader kept from being checkpointed
   can be large. */
int fl_wal_scan_fd(int fd, off_t size, fl_wal_scan *out) {
  memset(out, 0, sizeof *out);
  unsigned char head[WAL_HEADER];
  ssize_t n = read_full(fd, head, sizeof head);
  if (n < 0) return -1;
  if (n < WAL_HEADER) return 0; /* new, or truncated by a checkpoint */
  uint32_t magic = be32(head), page = be32(head + 8);
  int big_endian = magic & 1;
  uint32_t s[2] = {0, 0};
  wal_checksum(big_endian, head, 24, s);
  int header_ok = (magic & ~1u) == 0x377f0682u && be32(head + 4) == WAL_VERSION &&
                  page >= 512 && page <= 65536 && (page & (page - 1)) == 0 &&
                  s[0] == be32(head + 24) && s[1] == be32(head + 28);
  if (!header_ok) {
    /* SQLite ignores the whole file then; nothing is lost unless frames
       were written after the header (a page's worth of bytes at least). */
    out->header_bad = size >= WAL_HEADER + FRAME_HEADER + 512;
    return out->header_bad;
  }
  const unsigned char *salts = head + 16;
  size_t frame_len = FRAME_HEADER + (size_t)page;
  unsigned char *f = malloc(frame_len);
  if (!f) return -1;
  int chain_ok = 1;
  size_t i = 0, ours_after = 0; /* frames of this WAL after the break */
  while ((n = read_full(fd, f, frame_len)) == (ssize_t)frame_len) {
    if (chain_ok) {
      if (be32(f) != 0 && memcmp(f + 8, salts, 8) == 0) {
        wal_checksum(big_endian, f, 8, s);
        wal_checksum(big_endian, f + FRAME_HEADER, page, s);
        if (s[0] == be32(f + 16) && s[1] == be32(f + 20)) {
          i++;
          continue;
        }
      }
      chain_ok = 0;
      out->broken_frame = i;
    } else if (memcmp(f + 8, salts, 8) == 0) {
      ours_after++;
    }
    if (be32(f + 4) != 0 && memcmp(f + 8, salts, 8) == 0) out->lost_commits++;
  }
  free(f);
  if (n < 0) return -1;
  if (!ours_after) out->lost_commits = 0; /* a torn last write */
  return out->lost_commits > 0;
}

/* Scans the file at path: 1 damaged, 0 not (or no such file), -1 when it
   cannot be read (errno set). */
static int scan_file(const char *path, fl_wal_scan *out) {
  int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return errno == ENOENT ? 0 : -1;
  struct stat sb;
  int damaged = 0;
  if (fstat(fd, &sb) != 0)
    damaged = -1;
  else if (S_ISREG(sb.st_mode))
    damaged = fl_wal_scan_fd(fd, sb.st_size, out);
  int saved = errno;
  close(fd);
  errno = saved;
  return damaged;
}

int fl__store_check_wal(fl_store *st) {
  size_t n = strlen(st->path) + sizeof "-wal";
  char *wal = malloc(n);
  if (!wal) return fl__store_oom(st, "cannot check its WAL file");
  snprintf(wal, n, "%s-wal", st->path);
  fl_wal_scan scan;
  int damaged = scan_file(wal, &scan);
  /* A frame another process is writing at this instant looks broken: a
     second look tells damage from a write in progress. */
  if (damaged > 0) damaged = scan_file(wal, &scan);
  int status = FLOWLUA_OK;
  if (damaged < 0) {
    status = fl__store_set_err(st, FLOWLUA_EIO, "cannot read its WAL file '%s': %s",
                               wal, strerror(errno));
  } else if (damaged && scan.header_bad) {
    status = fl__store_set_err(
        st, FLOWLUA_EIO,
        "its WAL file '%s' is damaged: its header does not check, so SQLite "
        "would ignore every change it holds (runs, task states) without a "
        "word; nothing was changed. Keep a copy of the folder; to go on "
        "with what the main file holds, run: sqlite3 '%s' "
        "'PRAGMA wal_checkpoint(TRUNCATE)'",
        wal, st->path);
  } else if (damaged) {
    status = fl__store_set_err(
        st, FLOWLUA_EIO,
        "its WAL file '%s' is damaged at frame %zu: %zu committed "
        "transaction(s) after it cannot be read, and SQLite would drop what "
        "they recorded (runs, task states) without a word; nothing was "
        "changed. Keep a copy of the folder; to go on with what can still "
        "be read, run: sqlite3 '%s' 'PRAGMA wal_checkpoint(TRUNCATE)'",
        wal, scan.broken_frame + 1, scan.lost_commits, st->path);
  }
  free(wal);
  return status;
}
