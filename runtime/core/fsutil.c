/* fsutil.c — atomic file writes and whole-file reads; see fsutil.h. */
#define _GNU_SOURCE
#include "fsutil.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* The folder part of path ("." when there is none). malloc'd. */
static char *dir_of(const char *path) {
  const char *slash = strrchr(path, '/');
  if (!slash) return strdup(".");
  if (slash == path) return strdup("/");
  return strndup(path, (size_t)(slash - path));
}

static void set_why(fl_atomic_file *f, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(f->why, sizeof f->why, fmt, ap);
  va_end(ap);
}

/* ---- following symbolic links ------------------------------------------ */

/* The link at `link` points to `to`: the path of what it names. malloc'd. */
static char *link_destination(const char *link, const char *to) {
  if (to[0] == '/') return strdup(to);
  const char *slash = strrchr(link, '/');
  if (!slash) return strdup(to);
  size_t dir_len = (size_t)(slash - link) + 1, n = strlen(to);
  char *out = malloc(dir_len + n + 1);
  if (!out) return NULL;
  memcpy(out, link, dir_len);
  memcpy(out + dir_len, to, n + 1);
  return out;
}

/*
 * Follows path through symbolic links (as open(2) would) to what finally
 * stands there. *st is its lstat and *exists 1, or *exists 0 when nothing
 * is there (a dangling link, a missing file: creating it is the caller's
 * business, and creating in a missing folder reports its own error). The
 * resolved path, malloc'd, or NULL with errno set (ELOOP, ENOMEM).
 */
static char *follow_links(const char *path, struct stat *st, int *exists) {
  char *cur = strdup(path);
  for (int hops = 0; cur; hops++) {
    if (lstat(cur, st) != 0) {
      *exists = 0;
      return cur;
    }
    *exists = 1;
    if (!S_ISLNK(st->st_mode)) return cur;
    if (hops == 40) { /* as the kernel's limit: a loop */
      free(cur);
      errno = ELOOP;
      return NULL;
    }
    char to[PATH_MAX];
    ssize_t n = readlink(cur, to, sizeof to - 1);
    if (n < 0) {
      int saved = errno;
      free(cur);
      errno = saved;
      return NULL;
    }
    to[n] = '\0';
    char *next = link_destination(cur, to);
    free(cur);
    cur = next;
  }
  errno = ENOMEM;
  return NULL;
}

/* ---- temporary files and stale ones ------------------------------------ */

#define TMP_TAG ".flowlua-"
#define TMP_SUFFIX ".tmp"
/* A long name is cut in the temporary name so that it stays under
   NAME_MAX (255) with the tag, pid and random part. */
#define TMP_NAME_KEEP 200

/* Whether name is ".NAME.flowlua-PID-HHHHHHHH.tmp" (NAME not empty, PID
   decimal, H lower-case hex digits); its pid in *pid. */
static int is_temp_name(const char *name, long *pid) {
  size_t n = strlen(name), suffix = sizeof TMP_SUFFIX - 1;
  if (n < 2 || name[0] != '.' || n < suffix ||
      strcmp(name + n - suffix, TMP_SUFFIX) != 0)
    return 0;
  const char *end = name + n - suffix; /* after the hex */
  const char *p = end;
  while (p > name && strchr("0123456789abcdef", p[-1])) p--;
  if (end - p != 8 || p == name || p[-1] != '-') return 0;
  const char *dash = p - 1, *q = dash;
  while (q > name && q[-1] >= '0' && q[-1] <= '9') q--;
  if (q == dash || dash - q > 10) return 0;
  size_t tag = sizeof TMP_TAG - 1;
  if ((size_t)(q - name) < tag + 2 || memcmp(q - tag, TMP_TAG, tag) != 0)
    return 0;
  *pid = strtol(q, NULL, 10);
  return *pid > 0;
}

/* Folders this thread has swept, by device and inode: a small bounded
   set (the oldest entry gives way), so a folder is swept once, not on
   every write. Per thread rather than per process so that runtimes share
   nothing and need no lock: a runtime lives on one thread, so this is
   once per folder per runtime. */
#define SWEPT_MAX 64
static _Thread_local struct {
  dev_t dev;
  ino_t ino;
} swept[SWEPT_MAX];
static _Thread_local size_t n_swept, swept_next;

/* Whether the folder was swept already; marks it swept if not. */
static int first_visit(const struct stat *dir) {
  for (size_t i = 0; i < n_swept; i++)
    if (swept[i].dev == dir->st_dev && swept[i].ino == dir->st_ino) return 0;
  swept[swept_next].dev = dir->st_dev;
  swept[swept_next].ino = dir->st_ino;
  swept_next = (swept_next + 1) % SWEPT_MAX;
  if (n_swept < SWEPT_MAX) n_swept++;
  return 1;
}

/*
 * Removes the temporary files of atomic writes in folder `dir` whose writer
 * process is gone (killed mid-write): only names of the exact pattern, only
 * regular files (never following a link) owned by this user. "Gone" means
 * kill(pid, 0) says ESRCH; a pid since reused by another process keeps its
 * file until a later sweep finds it gone, and a writer in another pid
 * namespace sharing the folder looks gone (such set-ups should not share
 * output folders). Best effort: a failure only leaves files behind.
 */
static void sweep_stale(const char *dir) {
  int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) return;
  struct stat st;
  if (fstat(dfd, &st) != 0 || !first_visit(&st)) {
    close(dfd);
    return;
  }
  DIR *d = fdopendir(dfd);
  if (!d) {
    close(dfd);
    return;
  }
  long self = (long)getpid();
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    long pid;
    if (!is_temp_name(e->d_name, &pid) || pid == self) continue;
    if (pid > INT32_MAX || kill((pid_t)pid, 0) == 0 || errno != ESRCH)
      continue;
    if (fstatat(dfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
        S_ISREG(st.st_mode) && st.st_uid == geteuid())
      unlinkat(dfd, e->d_name, 0);
  }
  closedir(d);
}

static uint32_t random_tag(void) {
  uint32_t r;
  if (getrandom(&r, sizeof r, GRND_NONBLOCK) == (ssize_t)sizeof r) return r;
  /* No entropy yet (early boot): O_EXCL makes a clash harmless anyway. */
  static _Atomic uint32_t counter;
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint32_t)ts.tv_nsec ^ (uint32_t)ts.tv_sec * 2654435761u ^ counter++;
}

/* Errors of creating a file that are the folder's doing. */
static int folder_refuses(int err) {
  return err == EACCES || err == EPERM || err == EROFS || err == ENOSPC ||
         err == EDQUOT;
}

void fl_fs_create_why(char *why, size_t why_size, const char *path, int err) {
  char *dir = folder_refuses(err) ? dir_of(path) : NULL;
  if (dir)
    snprintf(why, why_size, "cannot create a file in folder '%s': %s", dir,
             strerror(err));
  else
    snprintf(why, why_size, "%s", strerror(err));
  free(dir);
}

/* Creates the temporary file beside f->path with mode 0666 less the umask
   (open applies it, so the umask need not be read). The descriptor, or -1
   with errno and f->why set. */
static int create_temp(fl_atomic_file *f) {
  const char *slash = strrchr(f->path, '/');
  size_t dir_len = slash ? (size_t)(slash - f->path) + 1 : 0;
  const char *base = f->path + dir_len;
  size_t keep = strlen(base);
  if (keep > TMP_NAME_KEEP) keep = TMP_NAME_KEEP;
  size_t cap = dir_len + keep + 64;
  f->tmp_path = malloc(cap);
  if (!f->tmp_path) {
    errno = ENOMEM;
    set_why(f, "%s", strerror(errno));
    return -1;
  }
  memcpy(f->tmp_path, f->path, dir_len);
  for (int tries = 0; tries < 100; tries++) {
    snprintf(f->tmp_path + dir_len, cap - dir_len, ".%.*s" TMP_TAG "%ld-%08x"
             TMP_SUFFIX, (int)keep, base, (long)getpid(), random_tag());
    int fd = open(f->tmp_path,
                  O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0666);
    if (fd >= 0) return fd;
    if (errno != EEXIST) break;
  }
  int err = errno;
  fl_fs_create_why(f->why, sizeof f->why, f->path, err);
  free(f->tmp_path);
  f->tmp_path = NULL;
  errno = err;
  return -1;
}

/* ---- atomic writes ------------------------------------------------------ */

/* Frees what f holds; f->why stays for the caller's message. */
static void release(fl_atomic_file *f) {
  free(f->path);
  free(f->tmp_path);
  f->fp = NULL;
  f->path = NULL;
  f->tmp_path = NULL;
}

/* Opens the device, FIFO or socket at f->path as it is: no O_CREAT, no
   O_TRUNC, nothing renamed over it. O_NONBLOCK for the open only, so a FIFO
   nobody reads is an error (ENXIO) rather than a wait that would stall
   every task of the runtime. */
static int open_direct(fl_atomic_file *f) {
  int fd = open(f->path, O_WRONLY | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    int err = errno;
    if (err == ENXIO)
      set_why(f, "it is a FIFO or socket that nothing reads from: %s",
              strerror(err));
    else
      set_why(f, "%s", strerror(err));
    errno = err;
    return -1;
  }
  int flags = fcntl(fd, F_GETFL);
  if (flags >= 0) fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
  return fd;
}

/* The temporary file for a target that is a regular file or nothing. */
static int open_temp(fl_atomic_file *f, const struct stat *old, int exists) {
  char *dir = dir_of(f->path);
  if (dir) {
    sweep_stale(dir);
    free(dir);
  }
  int fd = create_temp(f);
  /* Replacing a file: the new one gets the old one's mode, at once, so a
     0600 file's new contents are never readable by others even while
     being written. */
  if (fd >= 0 && exists && fchmod(fd, old->st_mode & 07777) != 0) {
    int err = errno;
    set_why(f, "cannot give the new file the old one's mode %04o: %s",
            (unsigned)(old->st_mode & 07777), strerror(err));
    close(fd);
    unlink(f->tmp_path);
    errno = err;
    return -1;
  }
  return fd;
}

int fl_atomic_open(fl_atomic_file *f, const char *path) {
  memset(f, 0, sizeof *f);
  struct stat st;
  int exists = 0, fd = -1;
  f->path = follow_links(path, &st, &exists);
  if (!f->path) {
    set_why(f, "%s", strerror(errno));
  } else if (exists && S_ISDIR(st.st_mode)) {
    errno = EISDIR;
    set_why(f, "%s", strerror(errno));
  } else if (exists && !S_ISREG(st.st_mode)) {
    fd = open_direct(f);
  } else {
    fd = open_temp(f, &st, exists);
  }
  if (fd >= 0) {
    f->fp = fdopen(fd, "wb");
    if (f->fp) return 0;
    set_why(f, "%s", strerror(errno));
    close(fd);
    if (f->tmp_path) unlink(f->tmp_path);
  }
  int saved = errno;
  release(f);
  errno = saved;
  return -1;
}

void fl_atomic_abort(fl_atomic_file *f) {
  if (!f->fp) return;
  int saved = errno;
  fclose(f->fp);
  if (f->tmp_path) unlink(f->tmp_path);
  release(f);
  errno = saved;
}

static void sync_dir(const char *path) {
  char *dir = dir_of(path);
  if (!dir) return;
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    fsync(fd); /* best effort: some file systems refuse, the data is safe */
    close(fd);
  }
  free(dir);
}

/* Fails the commit of f with errno err: the temporary file removed. */
static int commit_failed(fl_atomic_file *f, int err, const char *what) {
  set_why(f, "%s%s", what, strerror(err));
  if (f->fp) fclose(f->fp);
  if (f->tmp_path) unlink(f->tmp_path);
  release(f);
  errno = err;
  return -1;
}

int fl_atomic_commit(fl_atomic_file *f) {
  if (!f->fp) {
    set_why(f, "%s", strerror(EBADF));
    errno = EBADF;
    return -1;
  }
  /* Written directly (a device, a FIFO): nothing to sync or rename. */
  int direct = f->tmp_path == NULL;
  if (fflush(f->fp) != 0 || (!direct && fsync(fileno(f->fp)) != 0))
    return commit_failed(f, errno, "");
  FILE *fp = f->fp;
  f->fp = NULL;
  if (fclose(fp) != 0) return commit_failed(f, errno, "");
  if (!direct && rename(f->tmp_path, f->path) != 0)
    return commit_failed(f, errno, "cannot put the new file in place: ");
  if (!direct) sync_dir(f->path);
  release(f);
  return 0;
}

int fl_write_file_atomic_why(const char *path, const void *data, size_t len,
                             char *why, size_t why_size) {
  fl_atomic_file f;
  int rc = fl_atomic_open(&f, path);
  if (rc == 0 && len) {
    errno = 0;
    if (fwrite(data, 1, len, f.fp) != len) {
      int err = errno ? errno : EIO;
      set_why(&f, "%s", strerror(err));
      fl_atomic_abort(&f);
      errno = err;
      rc = -1;
    }
  }
  if (rc == 0) rc = fl_atomic_commit(&f);
  if (rc != 0 && why && why_size) {
    int saved = errno;
    snprintf(why, why_size, "%s", f.why);
    errno = saved;
  }
  return rc;
}

int fl_write_file_atomic(const char *path, const void *data, size_t len) {
  return fl_write_file_atomic_why(path, data, len, NULL, 0);
}

int fl_open_file(const char *path, int flags, mode_t mode, struct stat *st) {
  int fd = open(path, flags | O_CLOEXEC, mode);
  if (fd < 0) return -1;
  if (fstat(fd, st) != 0 || (S_ISDIR(st->st_mode) && (errno = EISDIR))) {
    int saved = errno;
    close(fd);
    errno = saved;
    return -1;
  }
  return fd;
}

int fl_read_file(const char *path, char **data, size_t *len) {
  *data = NULL;
  *len = 0;
  struct stat st;
  int fd = fl_open_file(path, O_RDONLY, 0, &st);
  if (fd < 0) return -1;
  size_t cap = st.st_size > 0 ? (size_t)st.st_size + 1 : 4096, n = 0;
  char *buf = malloc(cap);
  if (!buf) goto fail;
  for (;;) {
    if (n + 1 >= cap) { /* the file grew, or has no size (a pipe) */
      char *bigger = realloc(buf, cap * 2);
      if (!bigger) {
        free(buf);
        errno = ENOMEM;
        goto fail;
      }
      buf = bigger;
      cap *= 2;
    }
    ssize_t r = read(fd, buf + n, cap - n - 1);
    if (r < 0) {
      if (errno == EINTR) continue;
      int saved = errno;
      free(buf);
      errno = saved;
      goto fail;
    }
    if (r == 0) break;
    n += (size_t)r;
  }
  close(fd);
  buf[n] = '\0';
  *data = buf;
  *len = n;
  return 0;
fail:;
  int saved = errno;
  close(fd);
  errno = saved;
  return -1;
}

int fl_mkdir_p(const char *path) {
  char *p = strdup(path);
  if (!p) {
    errno = ENOMEM;
    return -1;
  }
  for (char *s = p + 1; *s; s++) {
    if (*s != '/') continue;
    *s = '\0';
    if (mkdir(p, 0777) != 0 && errno != EEXIST) {
      int saved = errno;
      free(p);
      errno = saved;
      return -1;
    }
    *s = '/';
  }
  int rc = mkdir(p, 0777);
  int saved = errno;
  free(p);
  if (rc != 0 && saved == EEXIST) {
    struct stat st;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) return 0;
    errno = ENOTDIR;
    return -1;
  }
  errno = saved;
  return rc;
}
