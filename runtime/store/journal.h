/*
 * journal.h — an append-only record log in a shared file mapping: what
 * makes a state change durable before its dependents start without a
 * database commit per change.
 *
 * Appending is a memcpy into a MAP_SHARED mapping of a file: once it
 * returns, the record is in the kernel's page cache and survives the death
 * of the process at any instant (SIGKILL, a crash, the OOM killer) — the
 * same guarantee as SQLite's WAL with synchronous=NORMAL, at no system
 * call. A record's length word is stored after its bytes, so a process
 * killed halfway through an append leaves no half record: readers stop at
 * the first zero length. Blocks are reserved with posix_fallocate before
 * they are mapped, so a full disk is an error from fl_journal_append, not
 * a SIGBUS.
 *
 * Liveness: the owner holds an exclusive flock on its journal for its
 * whole life. The kernel drops it when the process dies, however it dies,
 * so another process that gets the lock knows the owner is gone — and,
 * holding the lock, is the only one replaying it.
 *
 * Plain C, no SQLite, no Lua: the store decides what the records mean.
 */
#ifndef FL_JOURNAL_H
#define FL_JOURNAL_H

#include <stddef.h>
#include <stdint.h>

typedef struct fl_journal fl_journal;

/* A piece of a record, for fl_journal_append. */
typedef struct fl_journal_part {
  const void *data;
  size_t len;
} fl_journal_part;

/*
 * Creates this process's journal beside the database file db_path
 * ("<db_path>.flowlua-<pid>-<n>.log", a name nothing stands at yet: never
 * through a symbolic link, never over an existing file), 0600, locked. 0, or -1 with a message in
 * err (errlen bytes).
 */
int fl_journal_create(const char *db_path, fl_journal **out, char *err,
                      size_t errlen);

/* Appends one record made of n parts. 0, or -1 with errno set (ENOSPC,
   ENOMEM, EFBIG for a record over 1 GiB). */
int fl_journal_append(fl_journal *j, const fl_journal_part *parts, size_t n);

/* Sets the generation in the file's header: which of a process's
   journals was written first, for a replay (they take turns; see store.c).
   A new journal's is 0. */
void fl_journal_set_generation(fl_journal *j, uint64_t gen);

/* Bytes of records appended since the last reset. */
size_t fl_journal_used(const fl_journal *j);

/* Forgets every record (they are all in the database now). */
void fl_journal_reset(fl_journal *j);

/* Unmaps and closes; with remove, deletes the file first (keep it when its
   records could not be written to the database, for a later replay). */
void fl_journal_close(fl_journal *j, int remove);

/* A journal of a dead process, as fl_journal_replay_dead shows it. */
typedef struct fl_journal_file {
  const char *path;
  const unsigned char *data; /* its records, mapped read-only */
  size_t len;
  uint64_t generation;
  int complete; /* written by a version that never reset a journal while a
                   run was open: it holds every change of its runs */
} fl_journal_file;

/*
 * Calls visit(ctx, file) for every journal beside db_path whose owner is
 * gone (its lock can be taken), in the order of their generations. visit
 * returns FL_JOURNAL_DONE: the file is deleted; FL_JOURNAL_SET_ASIDE (its
 * records cannot be applied): the file is renamed "<name>.failed", never to
 * be replayed again, and the others are visited; a negative value (out of
 * memory, the database busy): the file is kept for a later replay and the
 * others are not visited. Journals of live processes — this one's
 * included — are skipped. A file with a journal's name that is a symbolic
 * link, not a regular file, or another user's is neither read nor
 * removed. notice(ctx, message) is told of every file refused or set
 * aside. Returns 0, or the negative value visit returned.
 */
enum { FL_JOURNAL_KEEP = -1, FL_JOURNAL_DONE = 0, FL_JOURNAL_SET_ASIDE = 1 };
typedef int (*fl_journal_visit)(void *ctx, const fl_journal_file *file);
typedef void (*fl_journal_notice)(void *ctx, const char *message);
int fl_journal_replay_dead(const char *db_path, fl_journal_visit visit,
                           fl_journal_notice notice, void *ctx);

/* Walks the records in data[0..len): returns the next record (its length in
   *rec_len) after *pos, advancing *pos, or NULL at the end. */
const unsigned char *fl_journal_next(const unsigned char *data, size_t len,
                                     size_t *pos, size_t *rec_len);

#endif
