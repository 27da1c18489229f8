/*
 * pg_conn.h — the PostgreSQL history's connection layer, on libpq alone:
 * what names a PostgreSQL history, the password kept out of every text,
 * connecting with backoff, running statements with clear errors, and the
 * versioned schema `flowlua`.
 *
 *   pg_redact.c   URIs recognised; redacted forms; a password scrubbed
 *                 from any text (a leaf: no libpq connection)
 *   pg_conn.c     connecting and reconnecting with backoff; statements
 *   pg_schema.c   the schema and its migrations
 *
 * libpq is not linked: fl_pg_connect loads it the first time (pg_api.h),
 * and every libpq call, the caller's too (reading a result of fl_pg_query),
 * goes through fl_pq()'s table.
 *
 * The store's PostgreSQL backend is built on this; nothing here knows of
 * runs or the engine. No message this layer makes holds the password: the
 * conninfo is shown redacted, and every text libpq or the server hands back
 * is scrubbed of the password (as written and as decoded) before it is kept.
 */
#ifndef FL_PG_CONN_H
#define FL_PG_CONN_H

#include <libpq-fe.h>
#include <stddef.h>

#include "buf.h"

/* ---- names and redaction (pg_redact.c) ----------------------------------- */

/* Whether s is a libpq URI: it starts with "postgresql://" or
   "postgres://" (as libpq, case-sensitive). Such a state names a
   PostgreSQL history; anything else is a SQLite file. */
int fl_pg_is_uri(const char *s);

/* Where the password is written in a conninfo (a URI's userinfo, a URI's
   `password=` query parameter, a key=value `password=`): up to max spans,
   as offsets into it, in order; returns how many there are (which may
   exceed max: spans may be NULL when max is 0, to count them).
   Errs on the side of hiding: a URI's userinfo runs to its last '@'. */
typedef struct fl_pg_span {
  size_t off, len;
} fl_pg_span;
size_t fl_pg_password_spans(const char *conninfo, fl_pg_span *spans,
                            size_t max);

/* Appends conninfo to out with each password replaced by "***":
   postgresql://ann:***@db.example/prod?sslmode=require. */
void fl_pg_redact(const char *conninfo, fl_buf *out);

/* Appends text to out with every occurrence of each of the n secrets (NULL
   and empty ones skipped; the longest replaced first, so that one secret
   inside another leaves no piece) replaced by "***". For text from libpq
   or the server, which may echo parts of the conninfo. */
void fl_pg_scrub(const char *text, const char *const *secrets, size_t n,
                 fl_buf *out);

/* ---- connections (pg_conn.c) ---------------------------------------------- */

typedef struct fl_pg fl_pg;

/*
 * Connects to the server conninfo names (a URI or key=value conninfo),
 * trying again after each failure with a growing pause (0.1 s doubling to
 * 2 s) until timeout seconds have passed since the call; no attempt runs
 * past that deadline. Each attempt is PQconnectStartParams and
 * PQconnectPoll on poll(), so a server that never answers costs no more.
 * A refusal that retrying cannot mend (a malformed conninfo, a password or
 * database the server rejected after authenticating) fails at once.
 *
 * The session gets application_name=flowlua and search_path=flowlua; its
 * socket is close-on-exec; libpq's notices are dropped (they would go to
 * stderr).
 *
 * 0 with *out set, or FLOWLUA_EINVAL (malformed), FLOWLUA_EIO (could not
 * connect) or FLOWLUA_ENOMEM with *out NULL and a message in err (errlen
 * bytes): "state store 'postgresql://ann:***@h/db': cannot connect (N
 * attempts in S s): <each distinct failure, with its count>". The first
 * call loads libpq; when that fails, no attempt is made and every call
 * says so (FLOWLUA_EIO): "state store '...': cannot connect: cannot load
 * libpq (<why>): install libpq5".
 */
int fl_pg_connect(const char *conninfo, double timeout, fl_pg **out,
                  char *err, size_t errlen);

/* Drops the connection and connects again as fl_pg_connect does (the same
   conninfo, backoff and deadline). 0, or the status with fl_pg_errmsg
   set; the handle stays usable for another try. */
int fl_pg_reconnect(fl_pg *c, double timeout);

/* Seconds from the environment variable name (FLOWLUA_PG_LEASE,
   FLOWLUA_PG_RETRY): a finite number above 0, else fallback. */
double fl_pg_env_seconds(const char *name, double fallback);

/* How long a statement reconnects for when the server went away:
   FLOWLUA_PG_RETRY, 60 s by default. */
#define FL_PG_RETRY_DEFAULT 60.0
double fl_pg_retry_seconds(void);

/* Closes the connection and frees the handle. NULL-safe. */
void fl_pg_close(fl_pg *c);

/* The last error, "state store 'REDACTED': what: why"; "" when none. Owned
   by the handle, valid until its next call. Never holds the password. */
const char *fl_pg_errmsg(const fl_pg *c);

/* The redacted conninfo, for messages. Owned by the handle. */
const char *fl_pg_name(const fl_pg *c);

/* How many attempts the last connect made (1 when the first succeeded). */
int fl_pg_attempts(const fl_pg *c);

/* The libpq connection, for the backend's statements (NULL after a failed
   reconnect). Owned by the handle. */
PGconn *fl_pg_conn(fl_pg *c);

/* Whether the connection was found broken by the last statement (the
   server restarted, the network went): the caller reconnects. */
int fl_pg_lost(const fl_pg *c);

/* The SQLSTATE of the last statement that failed on the server ("40P01"
   for a deadlock), "" when it failed on the way or none did. */
const char *fl_pg_sqlstate(const fl_pg *c);

/* Sets the handle's error: "state store 'NAME': <fmt...>", scrubbed. Returns
   status. */
int fl_pg_set_err(fl_pg *c, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * Runs sql (one or more statements, no parameters). 0, or FLOWLUA_EIO with
 * the error "state store 'NAME': <what>: <server's message> (<detail>)".
 */
int fl_pg_exec(fl_pg *c, const char *sql, const char *what);

/*
 * Runs one statement with n text parameters ($1...; NULL is SQL NULL) and
 * returns its result (rows or none) for the caller to PQclear; NULL on
 * error, with the error set as fl_pg_exec sets it.
 */
PGresult *fl_pg_query(fl_pg *c, const char *what, const char *sql, int n,
                      const char *const *params);

/* ---- the schema (pg_schema.c) ---------------------------------------------- */

/* The schema version this flowlua writes. */
#define FL_PG_SCHEMA_VERSION 5

/*
 * Brings schema `flowlua` to FL_PG_SCHEMA_VERSION: all steps in one
 * transaction under a transaction-level advisory lock, so two processes
 * migrating at once are safe (the second finds the work done). A schema
 * at this version is only read (no lock, no write). Refused, with nothing
 * written: a schema written by a newer flowlua, and a schema `flowlua`
 * that holds tables but no flowlua.schema_version (someone else's).
 * 0, or the status with fl_pg_errmsg set.
 */
int fl_pg_migrate(fl_pg *c);

/* The schema's version as stored (0: no flowlua schema yet). 0, or the
   status with fl_pg_errmsg set. */
int fl_pg_schema_version(fl_pg *c, int *version);

#endif
