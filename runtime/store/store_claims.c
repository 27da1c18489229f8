/*
 * store_claims.c — the fire claims file: a claim of a scheduled fire time
 * without the database's lock.
 *
 * Two processes serving one flow on one state file must never both run a
 * fire time. The fire table's key decides that, but inserting a row needs
 * SQLite's write lock, which another process may hold for seconds: a
 * serving loop that waits for it lets fire times pass. So the decision is
 * made here instead, under an flock that no process holds for more than
 * the few microseconds of a claim: "<state file>.flowlua-fires" keeps the
 * fire times claimed lately, in a ring of fixed-size slots. A claim takes
 * the lock, looks for its fire time in the ring and then in the fire table
 * (read from the WAL's snapshot, which no writer blocks), adds it to the
 * ring when neither has it, and lets go; the writer thread then records it
 * in the fire table, where it stays (the journal holds it until then).
 *
 * The ring holds RING_SLOTS claims of all flows; an older claim is in the
 * fire table long before it is overwritten, unless the database stays
 * locked for as many fire times. A slot holds a 64-bit hash of the flow's
 * name, not the name: two flows of one file with one hash (a chance of
 * about n^2 / 2^64) would share claims. The file is plain data; a damaged
 * one (another size, another magic) is started afresh, with a notice.
 */
#define _GNU_SOURCE
#include "store_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define RING_SLOTS 4096
static const char MAGIC[8] = {'F', 'L', 'F', 'I', 'R', 'E', 'S', '1'};

typedef struct claims_header {
  char magic[8];
  uint32_t slots; /* RING_SLOTS */
  uint32_t next;  /* the slot the next claim takes */
} claims_header;

typedef struct claims_slot {
  uint64_t flow; /* flow_hash(); 0: empty */
  int64_t ms;
} claims_slot;

typedef struct claims_file {
  claims_header h;
  claims_slot slot[RING_SLOTS];
} claims_file;

/* FNV-1a over the name; never 0, which marks an empty slot. */
static uint64_t flow_hash(const char *flow) {
  uint64_t h = 1469598103934665603u;
  for (const unsigned char *p = (const unsigned char *)flow; *p; p++)
    h = (h ^ *p) * 1099511628211u;
  return h ? h : 1;
}

static int claims_open(fl_store *st) {
  if (st->claims_fd >= 0) return FLOWLUA_OK;
  char path[4096];
  if (snprintf(path, sizeof path, "%s.flowlua-fires", st->path) >=
      (int)sizeof path) {
    st->claims_failed = 1;
    return fl__store_set_err(st, FLOWLUA_EIO, "the fire claims file's name "
                                              "is too long");
  }
  /* Never through a symbolic link; created the user's alone. */
  int fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
  struct stat sb;
  if (fd >= 0 && (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode))) {
    close(fd);
    fd = -1;
    errno = EINVAL;
  }
  if (fd < 0) {
    st->claims_failed = 1;
    return fl__store_set_err(st, FLOWLUA_EIO,
                             "cannot open the fire claims file '%s': %s",
                             path, errno == EINVAL ? "not a regular file"
                                                   : strerror(errno));
  }
  st->claims_fd = fd;
  return FLOWLUA_OK;
}

int fl__store_claims_lock(fl_store *st, int max_wait_ms) {
  int status = claims_open(st);
  if (status) return status;
  /* LOCK_NB in steps: a process stopped (SIGSTOP) while it held the lock
     must cost a bounded wait, reported, not a hung loop. */
  struct timespec step = {0, 1000000}; /* 1 ms */
  double deadline = fl__store_mono_now() +
                    (max_wait_ms > 0 ? max_wait_ms : st->opts.busy_timeout_ms) /
                        1000.0;
  while (flock(st->claims_fd, LOCK_EX | LOCK_NB) != 0) {
    if (errno != EWOULDBLOCK && errno != EINTR) {
      st->claims_failed = 1;
      return fl__store_set_err(st, FLOWLUA_EIO,
                               "cannot lock the fire claims file: %s",
                               strerror(errno));
    }
    if (fl__store_mono_now() >= deadline) {
      fl__store_set_err(st, FLOWLUA_EIO,
                        "another process held the fire claims file '%s."
                        "flowlua-fires' locked for more than %d ms",
                        st->path,
                        max_wait_ms > 0 ? max_wait_ms
                                        : st->opts.busy_timeout_ms);
      st->err_busy = 1;
      return FLOWLUA_EIO;
    }
    nanosleep(&step, NULL);
  }
  return FLOWLUA_OK;
}

void fl__store_claims_unlock(fl_store *st) {
  if (st->claims_fd >= 0) flock(st->claims_fd, LOCK_UN);
}

void fl__store_claims_close(fl_store *st) {
  if (st->claims_fd >= 0) close(st->claims_fd);
  st->claims_fd = -1;
}

/* Reads the file into *f (with the lock held): a new or damaged file reads
   as an empty ring. */
static int claims_read(fl_store *st, claims_file *f) {
  ssize_t got = pread(st->claims_fd, f, sizeof *f, 0);
  if (got < 0)
    return fl__store_set_err(st, FLOWLUA_EIO,
                             "cannot read the fire claims file: %s",
                             strerror(errno));
  int sound = (size_t)got == sizeof *f &&
              memcmp(f->h.magic, MAGIC, sizeof MAGIC) == 0 &&
              f->h.slots == RING_SLOTS && f->h.next < RING_SLOTS;
  if (!sound) {
    if (got > 0) {
      char msg[4200];
      snprintf(msg, sizeof msg,
               "the fire claims file '%s.flowlua-fires' was damaged (%zd "
               "bytes, not a claims ring): started afresh; claims already "
               "in the fire table still count",
               st->path, got);
      fl__store_notice(st, msg);
    }
    memset(f, 0, sizeof *f);
    memcpy(f->h.magic, MAGIC, sizeof MAGIC);
    f->h.slots = RING_SLOTS;
  }
  return FLOWLUA_OK;
}

int fl__store_claims_find(fl_store *st, const char *flow, int64_t ms) {
  claims_file *f = malloc(sizeof *f);
  if (!f) return fl__store_oom(st, "cannot claim a scheduled fire");
  int status = claims_read(st, f);
  uint64_t h = flow_hash(flow);
  int found = 0;
  for (size_t i = 0; status == FLOWLUA_OK && i < RING_SLOTS && !found; i++)
    found = f->slot[i].flow == h && f->slot[i].ms == ms;
  free(f);
  return status ? status : found;
}

int fl__store_claims_add(fl_store *st, const char *flow, int64_t ms) {
  claims_file *f = malloc(sizeof *f);
  if (!f) return fl__store_oom(st, "cannot claim a scheduled fire");
  int status = claims_read(st, f);
  if (status == FLOWLUA_OK) {
    f->slot[f->h.next] = (claims_slot){flow_hash(flow), ms};
    f->h.next = (f->h.next + 1) % RING_SLOTS;
    /* The whole file: its slots and its header in one write. It is in the
       page cache once pwrite returns, which survives the death of this
       process, as the journal does. */
    ssize_t put = pwrite(st->claims_fd, f, sizeof *f, 0);
    if (put != (ssize_t)sizeof *f)
      status = fl__store_set_err(st, FLOWLUA_EIO,
                                 "cannot write the fire claims file: %s",
                                 put < 0 ? strerror(errno) : "a short write");
  }
  free(f);
  return status;
}

int fl__store_claims_last(fl_store *st, const char *flow, int64_t *ms) {
  int status = fl__store_claims_lock(st, 0);
  if (status) return status;
  claims_file *f = malloc(sizeof *f);
  if (!f) {
    fl__store_claims_unlock(st);
    return fl__store_oom(st, "cannot read the last fire time");
  }
  status = claims_read(st, f);
  fl__store_claims_unlock(st);
  uint64_t h = flow_hash(flow);
  int found = 0;
  for (size_t i = 0; status == FLOWLUA_OK && i < RING_SLOTS; i++)
    if (f->slot[i].flow == h && (!found || f->slot[i].ms > *ms)) {
      *ms = f->slot[i].ms;
      found = 1;
    }
  free(f);
  return status ? status : found;
}
