/*
 * journal.c — the append-only record log; see journal.h.
 *
 * File layout: a 4096-byte header page ("flowlua journal 2\n", at byte 32
 * the generation as a native 64-bit integer, then zeros), then records,
 * each a 4-byte length, its bytes, and padding to a multiple of 4; a zero
 * length ends them. (Version 1 had no generation.) An append first zeroes the
 * length word after the room it takes, then copies the record's bytes,
 * then stores its length, with release ordering: at every instant the
 * records end at a zero length, so a process killed halfway leaves either
 * the whole record or none of it, and never lets a reader run into older
 * bytes beyond. Resetting zeroes the first length word: one store, and
 * every record is gone.
 */
#define _GNU_SOURCE /* mremap */
#include "journal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define HEADER_SIZE 4096
#define MAGIC "flowlua journal 2\n"
#define MAGIC_V1 "flowlua journal 1\n"
#define GEN_OFFSET 32
#define FIRST_SIZE (64u << 10) /* doubled as needed */
#define MAX_RECORD (1u << 30)

struct fl_journal {
  int fd;
  char *path;
  unsigned char *map;
  size_t cap;  /* bytes mapped (and reserved on disk) */
  size_t used; /* HEADER_SIZE + records */
};

static size_t pad4(size_t n) { return (n + 3) & ~(size_t)3; }

/* Splits db_path into its folder ("." when none) and file name. */
static int split_path(const char *db_path, char **dir, const char **base) {
  const char *slash = strrchr(db_path, '/');
  *base = slash ? slash + 1 : db_path;
  *dir = slash ? strndup(db_path, (size_t)(slash - db_path) + (slash == db_path))
               : strdup(".");
  return *dir ? 0 : -1;
}

/* Reserves and maps cap bytes of the file. */
static int map_file(fl_journal *j, size_t cap) {
  int rc = posix_fallocate(j->fd, 0, (off_t)cap);
  if (rc != 0) {
    errno = rc;
    return -1;
  }
  void *m = j->map ? mremap(j->map, j->cap, cap, MREMAP_MAYMOVE)
                   : mmap(NULL, cap, PROT_READ | PROT_WRITE, MAP_SHARED,
                          j->fd, 0);
  if (m == MAP_FAILED) return -1;
  /* Fault the new pages in now, in one go, rather than one by one as
     records reach them (a 100,000-task run writes some 20 MB). */
  size_t from = j->map ? j->cap : 0;
  madvise((char *)m + from, cap - from, MADV_POPULATE_WRITE);
  j->map = m;
  j->cap = cap;
  return 0;
}

/* How many names fl_journal_create tries: a name already taken (a stale
   journal of a dead process that had this pid, or anything planted there)
   is never opened for writing; the next number is tried. */
#define CREATE_TRIES 64

int fl_journal_create(const char *db_path, fl_journal **out, char *err,
                      size_t errlen) {
  static unsigned counter; /* a second store in this process: another file */
  *out = NULL;
  fl_journal *j = calloc(1, sizeof *j);
  size_t n = strlen(db_path) + 64;
  if (!j || !(j->path = malloc(n))) {
    free(j);
    snprintf(err, errlen, "out of memory");
    return -1;
  }
  /* O_EXCL|O_NOFOLLOW: a new file of our own, never one that stands at the
     name already: following a symbolic link planted in a shared folder
     would overwrite its target with our rights. */
  j->fd = -1;
  for (int tries = 0; j->fd < 0 && tries < CREATE_TRIES; tries++) {
    unsigned k = __atomic_fetch_add(&counter, 1, __ATOMIC_RELAXED);
    snprintf(j->path, n, "%s.flowlua-%ld-%u.log", db_path, (long)getpid(), k);
    j->fd = open(j->path,
                 O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (j->fd < 0 && errno != EEXIST) break;
  }
  if (j->fd < 0) {
    snprintf(err, errlen, "cannot create its journal '%s': %s", j->path,
             errno == EEXIST ? "that name and the next ones are taken"
                             : strerror(errno));
    free(j->path);
    free(j);
    return -1;
  }
  if (flock(j->fd, LOCK_EX | LOCK_NB) != 0 || map_file(j, FIRST_SIZE) != 0) {
    snprintf(err, errlen, "cannot create its journal '%s': %s", j->path,
             strerror(errno));
    fl_journal_close(j, 1);
    return -1;
  }
  memcpy(j->map, MAGIC, sizeof MAGIC - 1);
  j->used = HEADER_SIZE;
  *out = j;
  return 0;
}

void fl_journal_set_generation(fl_journal *j, uint64_t gen) {
  /* Before any record of the generation: a reader that sees the new
     number with older records (killed in between) replays them again,
     which a replay must bear anyway. */
  __atomic_store_n((uint64_t *)(void *)(j->map + GEN_OFFSET), gen,
                   __ATOMIC_RELEASE);
}

int fl_journal_append(fl_journal *j, const fl_journal_part *parts, size_t n) {
  size_t len = 0;
  for (size_t i = 0; i < n; i++) len += parts[i].len;
  if (len == 0 || len > MAX_RECORD) {
    errno = len ? EFBIG : EINVAL;
    return -1;
  }
  size_t need = j->used + 4 + pad4(len);
  if (need + 4 > j->cap) { /* + the zero length after it */
    size_t cap = j->cap;
    while (cap < need + 4) cap *= 2;
    if (map_file(j, cap) != 0) return -1;
  }
  __atomic_store_n((uint32_t *)(void *)(j->map + need), 0u, __ATOMIC_RELAXED);
  unsigned char *p = j->map + j->used + 4;
  for (size_t i = 0; i < n; i++) {
    if (!parts[i].len) continue; /* its data may be NULL */
    memcpy(p, parts[i].data, parts[i].len);
    p += parts[i].len;
  }
  /* The length last: a reader never sees a record whose bytes are not all
     there, even if the process dies between the copies (release: the
     compiler may not sink the copies below it). */
  __atomic_store_n((uint32_t *)(void *)(j->map + j->used), (uint32_t)len,
                   __ATOMIC_RELEASE);
  j->used = need;
  return 0;
}

size_t fl_journal_used(const fl_journal *j) {
  return j ? j->used - HEADER_SIZE : 0;
}

void fl_journal_reset(fl_journal *j) {
  if (!j || j->used == HEADER_SIZE) return;
  __atomic_store_n((uint32_t *)(void *)(j->map + HEADER_SIZE), 0u,
                   __ATOMIC_RELEASE);
  j->used = HEADER_SIZE;
}

void fl_journal_close(fl_journal *j, int remove) {
  if (!j) return;
  if (j->map) munmap(j->map, j->cap);
  if (remove && j->path) unlink(j->path);
  if (j->fd >= 0) close(j->fd); /* releases the lock */
  free(j->path);
  free(j);
}

const unsigned char *fl_journal_next(const unsigned char *data, size_t len,
                                     size_t *pos, size_t *rec_len) {
  if (*pos + 4 > len) return NULL;
  uint32_t n;
  memcpy(&n, data + *pos, 4);
  if (n == 0 || n > MAX_RECORD || *pos + 4 + n > len) return NULL;
  const unsigned char *rec = data + *pos + 4;
  *rec_len = n;
  *pos += 4 + pad4(n);
  return rec;
}

/* A journal file whose owner is gone, locked by this process (its fd),
   mapped read-only. */
typedef struct dead_file {
  char *path;
  int fd;
  void *map;
  size_t size;
  fl_journal_file info;
} dead_file;

/* Takes the journal at path when its owner is gone: 1 with *f filled, 0
   when it is not to be replayed (its owner lives, someone else has it, it
   holds nothing, it is not a journal this user wrote), -1 when out of
   memory. What it refuses it leaves alone and tells notice(). */
static int take_file(const char *path, dead_file *f, fl_journal_notice notice,
                     void *ctx) {
  /* O_NOFOLLOW: a symbolic link is not ours to read, let alone delete its
     target; O_NONBLOCK: a FIFO planted there must not hang the open. */
  int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  char msg[PATH_MAX + 160];
  if (fd < 0) {
    if (errno == ELOOP) {
      snprintf(msg, sizeof msg,
               "'%s' has a journal's name but is a symbolic link; left alone "
               "(flowlua never follows one there: remove it)",
               path);
      notice(ctx, msg);
    }
    return 0; /* or replayed and removed by someone else meanwhile */
  }
  struct stat own;
  if (fstat(fd, &own) != 0) {
    close(fd);
    return 0;
  }
  if (!S_ISREG(own.st_mode) || own.st_uid != geteuid()) {
    snprintf(msg, sizeof msg,
             "'%s' has a journal's name but is %s; left alone (a journal is "
             "a regular file written by its owner)",
             path, !S_ISREG(own.st_mode) ? "not a regular file"
                                         : "owned by another user");
    notice(ctx, msg);
    close(fd);
    return 0;
  }
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    close(fd); /* its owner lives, or another process replays it */
    return 0;
  }
  struct stat sb;
  if (fstat(fd, &sb) != 0 || sb.st_nlink == 0) {
    close(fd); /* unlinked since we opened it: already replayed */
    return 0;
  }
  size_t size = (size_t)sb.st_size;
  void *m = size >= HEADER_SIZE ? mmap(NULL, size, PROT_READ, MAP_SHARED, fd, 0)
                                : MAP_FAILED;
  int v2 = m != MAP_FAILED && memcmp(m, MAGIC, sizeof MAGIC - 1) == 0;
  int v1 = m != MAP_FAILED && memcmp(m, MAGIC_V1, sizeof MAGIC_V1 - 1) == 0;
  if (!v1 && !v2) {
    /* Died while creating it, or not a journal at all: nothing recorded. */
    if (m != MAP_FAILED) munmap(m, size);
    if (size < HEADER_SIZE || m != MAP_FAILED) unlink(path);
    close(fd);
    return 0;
  }
  if (!(f->path = strdup(path))) {
    munmap(m, size);
    close(fd);
    return -1;
  }
  f->fd = fd;
  f->map = m;
  f->size = size;
  uint64_t gen = 0;
  if (v2) memcpy(&gen, (const unsigned char *)m + GEN_OFFSET, sizeof gen);
  f->info = (fl_journal_file){f->path, (const unsigned char *)m + HEADER_SIZE,
                              size - HEADER_SIZE, gen, v1};
  return 1;
}

/* Done with f: deleted (its records are in the database), set aside under
   another name (its records cannot be applied: kept for a person to look
   at, never replayed again), or kept as it is (for a later replay). */
static void drop_file(dead_file *f, int how, fl_journal_notice notice,
                      void *ctx) {
  if (how == FL_JOURNAL_DONE) {
    unlink(f->path);
  } else if (how == FL_JOURNAL_SET_ASIDE) {
    size_t n = strlen(f->path) + sizeof ".failed";
    char *aside = malloc(n);
    char msg[2 * PATH_MAX + 160];
    if (aside) snprintf(aside, n, "%s.failed", f->path);
    if (aside && rename(f->path, aside) == 0)
      snprintf(msg, sizeof msg,
               "the journal was set aside as '%s' and is not replayed again "
               "(remove it once you no longer need it)",
               aside);
    else
      snprintf(msg, sizeof msg, "cannot set the journal '%s' aside: %s",
               f->path, aside ? strerror(errno) : "out of memory");
    notice(ctx, msg);
    free(aside);
  }
  munmap(f->map, f->size);
  close(f->fd); /* releases the lock */
  free(f->path);
}

static int by_generation(const void *a, const void *b) {
  const dead_file *x = a, *y = b;
  if (x->info.generation != y->info.generation)
    return x->info.generation < y->info.generation ? -1 : 1;
  return strcmp(x->path, y->path);
}

int fl_journal_replay_dead(const char *db_path, fl_journal_visit visit,
                           fl_journal_notice notice, void *ctx) {
  char *dir;
  const char *base;
  if (split_path(db_path, &dir, &base) != 0) return 0;
  DIR *d = opendir(dir);
  if (!d) {
    free(dir);
    return 0;
  }
  size_t base_len = strlen(base), n = 0, cap = 0;
  dead_file *files = NULL;
  int rc = 0;
  struct dirent *e;
  while (rc == 0 && (e = readdir(d))) {
    const char *name = e->d_name;
    size_t len = strlen(name);
    if (len <= base_len + 13 || strncmp(name, base, base_len) != 0 ||
        strncmp(name + base_len, ".flowlua-", 9) != 0 ||
        strcmp(name + len - 4, ".log") != 0)
      continue;
    char path[PATH_MAX];
    if (snprintf(path, sizeof path, "%s/%s", dir, name) >= (int)sizeof path)
      continue;
    if (n == cap) {
      size_t c = cap ? cap * 2 : 8;
      dead_file *grown = realloc(files, c * sizeof *grown);
      if (!grown) {
        rc = -1;
        break;
      }
      files = grown;
      cap = c;
    }
    int got = take_file(path, &files[n], notice, ctx);
    if (got < 0) rc = -1;
    n += got > 0;
  }
  closedir(d);
  free(dir);
  /* In the order they were written: a process's two journals take turns,
     and one's records may follow the other's. */
  if (n) qsort(files, n, sizeof *files, by_generation);
  for (size_t i = 0; i < n; i++) {
    int how = rc == 0 ? visit(ctx, &files[i].info) : FL_JOURNAL_KEEP;
    if (how < 0) rc = how; /* kept, and the later ones wait for it */
    drop_file(&files[i], how < 0 ? FL_JOURNAL_KEEP : how, notice, ctx);
  }
  free(files);
  return rc;
}
