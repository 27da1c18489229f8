/*
 * pg_api.h — libpq, loaded when the first PostgreSQL connection needs it.
 *
 * Linking libpq pulls in some twenty libraries (OpenSSL, Kerberos, LDAP,
 * GnuTLS...) whose dynamic linking cost about 20 ms at every start of a
 * one-task flow, more than the rest of flowlua's start-up together — paid
 * by every flow, including all those whose history is a SQLite file. So
 * libflowlua does not link it: the first connection (fl_pg_connect) loads
 * it with dlopen, once per process, and the store calls it through this
 * table, as curlapi.h does libcurl. The header still comes from libpq-dev,
 * found by pkg-config at build time (the store is the only layer that sees
 * it); the library loaded is its ABI, libpq.so.5, or the file the
 * environment variable FLOWLUA_LIBPQ names.
 */
#ifndef FL_PG_API_H
#define FL_PG_API_H

#include <libpq-fe.h>

typedef struct fl_pq_api {
  PQconninfoOption *(*conninfo_parse)(const char *conninfo, char **errmsg);
  void (*conninfo_free)(PQconninfoOption *opts);
  void (*freemem)(void *p);
  PGconn *(*connect_start_params)(const char *const *keywords,
                                  const char *const *values,
                                  int expand_dbname);
  PostgresPollingStatusType (*connect_poll)(PGconn *conn);
  void (*finish)(PGconn *conn);
  ConnStatusType (*status)(const PGconn *conn);
  PGTransactionStatusType (*transaction_status)(const PGconn *conn);
  char *(*error_message)(const PGconn *conn);
  int (*socket)(const PGconn *conn);
  int (*connection_needs_password)(const PGconn *conn);
  int (*connection_used_password)(const PGconn *conn);
  PQnoticeProcessor (*set_notice_processor)(PGconn *conn,
                                            PQnoticeProcessor proc, void *arg);
  PGresult *(*exec)(PGconn *conn, const char *query);
  PGresult *(*exec_params)(PGconn *conn, const char *command, int n_params,
                           const Oid *param_types,
                           const char *const *param_values,
                           const int *param_lengths, const int *param_formats,
                           int result_format);
  ExecStatusType (*result_status)(const PGresult *res);
  char *(*res_status)(ExecStatusType status);
  char *(*result_error_field)(const PGresult *res, int fieldcode);
  int (*ntuples)(const PGresult *res);
  char *(*getvalue)(const PGresult *res, int tup_num, int field_num);
  int (*getlength)(const PGresult *res, int tup_num, int field_num);
  int (*getisnull)(const PGresult *res, int tup_num, int field_num);
  void (*clear)(PGresult *res);
  /* LISTEN/NOTIFY: the queue of worker tasks' jobs (pg_queue.c). */
  int (*consume_input)(PGconn *conn);
  PGnotify *(*notifies)(PGconn *conn);
} fl_pq_api;

/*
 * Loads libpq, once per process (thread-safe). Returns the table, or NULL
 * with *why set to a static message naming the library and the reason:
 * "cannot load libpq (...): install libpq5", or "FILE has no PQx: too old
 * a libpq". After a successful call, fl_pq() returns the same table.
 */
const fl_pq_api *fl_pq_load(const char **why);
const fl_pq_api *fl_pq(void);

#endif
