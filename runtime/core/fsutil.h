/*
 * fsutil.h — files written so that a crash leaves the old file or the new,
 * never half of either; and whole files read into memory.
 *
 * Plain C, no Lua. A write goes to a temporary file in the target's folder
 * (same file system, so rename is atomic), is flushed and fsynced, renamed
 * over the target, and the folder is fsynced so the rename itself survives a
 * power loss. On any failure the temporary file is removed.
 */
#ifndef FL_FSUTIL_H
#define FL_FSUTIL_H

#include <stdio.h>
#include <stddef.h>
#include <sys/stat.h>

typedef struct fl_atomic_file {
  FILE *fp;        /* write through this */
  char *path;      /* the target */
  char *tmp_path;  /* the temporary file beside it */
} fl_atomic_file;

/* Opens a temporary file beside `path` for writing. 0, or -1 with errno set
   and *f left closed. */
int fl_atomic_open(fl_atomic_file *f, const char *path);
/* Flushes, fsyncs and renames the temporary file over the target. 0, or -1
   with errno set; either way the temporary file is gone and f is closed. */
int fl_atomic_commit(fl_atomic_file *f);
/* Removes the temporary file and closes f. Harmless on a closed f. */
void fl_atomic_abort(fl_atomic_file *f);

/* Writes len bytes to path atomically. 0, or -1 with errno set. */
int fl_write_file_atomic(const char *path, const void *data, size_t len);

/* Opens a file that must not be a folder: open(path, flags | O_CLOEXEC,
   mode) then fstat into *st. The descriptor, or -1 with errno set (EISDIR
   for a folder) and nothing left open. */
int fl_open_file(const char *path, int flags, mode_t mode, struct stat *st);

/* Reads a whole file into a malloc'd, NUL-terminated buffer (*len bytes,
   not counting the NUL). 0, or -1 with errno set. */
int fl_read_file(const char *path, char **data, size_t *len);

/* Creates a folder and its missing parents (mode 0777 before umask). 0, or
   -1 with errno set; an existing folder is not an error. */
int fl_mkdir_p(const char *path);

#endif
