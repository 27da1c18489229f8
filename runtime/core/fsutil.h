/*
 * fsutil.h — files written so that a crash leaves the old file or the new,
 * never half of either; and whole files read into memory.
 *
 * Plain C, no Lua. A write goes to a temporary file in the target's folder
 * (same file system, so rename is atomic), is flushed and fsynced, renamed
 * over the target, and the folder is fsynced so the rename itself survives a
 * power loss. On any failure the temporary file is removed.
 *
 * What stands at the target decides how it is replaced:
 *  - nothing: a new file, mode 0666 less the umask, as open(2) gives;
 *  - a regular file: replaced, keeping its mode (a 0600 file stays 0600);
 *  - a symbolic link: followed to the file it finally names, which is
 *    replaced in its own folder (or created, for a dangling link); the link
 *    stays a link;
 *  - a device, FIFO or socket: written to directly, never renamed over
 *    (`--html /dev/null` leaves /dev/null a device); a FIFO nobody reads
 *    is an error, not a wait;
 *  - a folder: EISDIR.
 *
 * Temporary files are named ".NAME.flowlua-PID-RANDOM.tmp", created with
 * O_EXCL|O_NOFOLLOW. The first write of a thread (so of a runtime) in a
 * folder removes the temporary files there whose writer is gone (killed
 * mid-write).
 * The umask is never changed (it is process-wide).
 */
#ifndef FL_FSUTIL_H
#define FL_FSUTIL_H

#include <stdio.h>
#include <stddef.h>
#include <sys/stat.h>

/* Room for a reason such as "cannot create a file in folder '...': ...". */
#define FL_FS_WHY_SIZE 512

typedef struct fl_atomic_file {
  FILE *fp;        /* write through this */
  char *path;      /* the file written: the target, links followed */
  char *tmp_path;  /* the temporary file beside it; NULL when written
                      directly (a device or FIFO) */
  char why[FL_FS_WHY_SIZE]; /* after a failure: why, for messages */
} fl_atomic_file;

/* Opens the file to write for `path` (see above). 0, or -1 with errno and
   f->why set and f otherwise closed. */
int fl_atomic_open(fl_atomic_file *f, const char *path);
/* Flushes, fsyncs and renames the temporary file over the target. 0, or -1
   with errno and f->why set; either way the temporary file is gone and f is
   closed. */
int fl_atomic_commit(fl_atomic_file *f);
/* Removes the temporary file and closes f. Harmless on a closed f. errno
   and f->why are kept. */
void fl_atomic_abort(fl_atomic_file *f);

/* Writes len bytes to path atomically. 0, or -1 with errno set. */
int fl_write_file_atomic(const char *path, const void *data, size_t len);
/* The same, with the reason of a failure in why (why_size bytes;
   FL_FS_WHY_SIZE is enough), for messages. */
int fl_write_file_atomic_why(const char *path, const void *data, size_t len,
                             char *why, size_t why_size);

/* Why creating a file at path failed with errno err, in why: "cannot
   create a file in folder 'DIR': cause" when the folder refused it
   (permission, read-only, full), else the cause alone. */
void fl_fs_create_why(char *why, size_t why_size, const char *path, int err);

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
