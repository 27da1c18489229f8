/* fsutil.c — atomic file writes and whole-file reads; see fsutil.h. */
#define _GNU_SOURCE
#include "fsutil.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The folder part of path ("." when there is none). malloc'd. */
static char *dir_of(const char *path) {
  const char *slash = strrchr(path, '/');
  if (!slash) return strdup(".");
  if (slash == path) return strdup("/");
  return strndup(path, (size_t)(slash - path));
}

int fl_atomic_open(fl_atomic_file *f, const char *path) {
  memset(f, 0, sizeof *f);
  size_t n = strlen(path);
  f->path = strdup(path);
  f->tmp_path = malloc(n + 16);
  if (!f->path || !f->tmp_path) goto fail_nomem;
  /* ".name.XXXXXX" beside the target: hidden, and on the same file system. */
  const char *slash = strrchr(path, '/');
  size_t dir_len = slash ? (size_t)(slash - path) + 1 : 0;
  memcpy(f->tmp_path, path, dir_len);
  sprintf(f->tmp_path + dir_len, ".%s.XXXXXX", path + dir_len);
  int fd = mkostemp(f->tmp_path, O_CLOEXEC);
  if (fd < 0) goto fail;
  /* mkostemp makes 0600; a written file should get the usual mode. */
  mode_t mask = umask(0);
  umask(mask);
  fchmod(fd, 0666 & ~mask);
  f->fp = fdopen(fd, "wb");
  if (!f->fp) {
    int saved = errno;
    close(fd);
    unlink(f->tmp_path);
    errno = saved;
    goto fail;
  }
  return 0;
fail_nomem:
  errno = ENOMEM;
fail:;
  int saved = errno;
  free(f->path);
  free(f->tmp_path);
  memset(f, 0, sizeof *f);
  errno = saved;
  return -1;
}

static void release(fl_atomic_file *f) {
  free(f->path);
  free(f->tmp_path);
  memset(f, 0, sizeof *f);
}

void fl_atomic_abort(fl_atomic_file *f) {
  if (!f->fp) return;
  int saved = errno;
  fclose(f->fp);
  unlink(f->tmp_path);
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

int fl_atomic_commit(fl_atomic_file *f) {
  if (!f->fp) {
    errno = EBADF;
    return -1;
  }
  if (fflush(f->fp) != 0 || fsync(fileno(f->fp)) != 0) {
    fl_atomic_abort(f);
    return -1;
  }
  if (fclose(f->fp) != 0) {
    int saved = errno;
    unlink(f->tmp_path);
    release(f);
    errno = saved;
    return -1;
  }
  f->fp = NULL;
  if (rename(f->tmp_path, f->path) != 0) {
    int saved = errno;
    unlink(f->tmp_path);
    release(f);
    errno = saved;
    return -1;
  }
  sync_dir(f->path);
  release(f);
  return 0;
}

int fl_write_file_atomic(const char *path, const void *data, size_t len) {
  fl_atomic_file f;
  if (fl_atomic_open(&f, path) != 0) return -1;
  if (len && fwrite(data, 1, len, f.fp) != len) {
    fl_atomic_abort(&f);
    if (!errno) errno = EIO;
    return -1;
  }
  return fl_atomic_commit(&f);
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
