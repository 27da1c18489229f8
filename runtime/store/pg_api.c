/*
 * pg_api.c — loading libpq on first use (see pg_api.h for why).
 *
 * The table is filled once under pthread_once and never written again, so
 * several runtimes on several threads share it without a lock.
 */
#define _GNU_SOURCE
#include "pg_api.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#define LIBPQ_SONAME "libpq.so.5"

static pthread_once_t load_once = PTHREAD_ONCE_INIT;
static fl_pq_api api;
static const fl_pq_api *loaded;
static char load_error[512];

/* Each symbol the table needs, by its field and libpq's name. */
#define PQ_SYMBOLS(X)                                                          \
  X(conninfo_parse, PQconninfoParse)                                           \
  X(conninfo_free, PQconninfoFree)                                             \
  X(freemem, PQfreemem)                                                        \
  X(connect_start_params, PQconnectStartParams)                                \
  X(connect_poll, PQconnectPoll)                                               \
  X(finish, PQfinish)                                                          \
  X(status, PQstatus)                                                          \
  X(transaction_status, PQtransactionStatus)                                   \
  X(error_message, PQerrorMessage)                                             \
  X(socket, PQsocket)                                                          \
  X(connection_needs_password, PQconnectionNeedsPassword)                      \
  X(connection_used_password, PQconnectionUsedPassword)                        \
  X(set_notice_processor, PQsetNoticeProcessor)                                \
  X(exec, PQexec)                                                              \
  X(exec_params, PQexecParams)                                                 \
  X(result_status, PQresultStatus)                                             \
  X(res_status, PQresStatus)                                                   \
  X(result_error_field, PQresultErrorField)                                    \
  X(ntuples, PQntuples)                                                        \
  X(getvalue, PQgetvalue)                                                      \
  X(getlength, PQgetlength)                                                    \
  X(getisnull, PQgetisnull)                                                    \
  X(clear, PQclear)                                                            \
  X(consume_input, PQconsumeInput)                                             \
  X(notifies, PQnotifies)

static void load(void) {
  /* The library stays loaded for the life of the process: a connection
     some runtime still holds must never outlive the code behind it. */
  const char *name = getenv("FLOWLUA_LIBPQ"); /* another build of it */
  if (!name || !*name) name = LIBPQ_SONAME;
  void *lib = dlopen(name, RTLD_NOW | RTLD_LOCAL);
  if (!lib) {
    snprintf(load_error, sizeof load_error,
             "cannot load libpq (%s): install libpq5", dlerror());
    return;
  }
  /* The sizeof checks, at compile time only (no reference to libpq is
     made), that each field has the type libpq-fe.h gives the function. */
#define LOAD(field, symbol)                                                    \
  (void)sizeof(api.field = symbol);                                            \
  *(void **)(&api.field) = dlsym(lib, #symbol);                                \
  if (!api.field) {                                                            \
    snprintf(load_error, sizeof load_error, "%s has no %s: too old a libpq",   \
             name, #symbol);                                                   \
    return;                                                                    \
  }
  PQ_SYMBOLS(LOAD)
#undef LOAD
  loaded = &api;
}

const fl_pq_api *fl_pq_load(const char **why) {
  pthread_once(&load_once, load);
  if (!loaded && why) *why = load_error;
  return loaded;
}

const fl_pq_api *fl_pq(void) { return loaded; }
