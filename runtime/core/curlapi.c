/*
 * curlapi.c — loading libcurl on first use (see curlapi.h for why).
 *
 * The table is filled once under pthread_once and never written again, so
 * several runtimes on several threads share it without a lock.
 */
#define _GNU_SOURCE
#include "curlapi.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#define LIBCURL_SONAME "libcurl.so.4"

static pthread_once_t load_once = PTHREAD_ONCE_INIT;
static fl_curl_api api;
static const fl_curl_api *loaded;
static char load_error[512];

/* Each symbol the table needs, by its field and curl's name. */
#define CURL_SYMBOLS(X)                                                        \
  X(global_init, curl_global_init)                                             \
  X(multi_init, curl_multi_init)                                               \
  X(multi_setopt, curl_multi_setopt)                                           \
  X(multi_add_handle, curl_multi_add_handle)                                   \
  X(multi_remove_handle, curl_multi_remove_handle)                             \
  X(multi_socket_action, curl_multi_socket_action)                             \
  X(multi_info_read, curl_multi_info_read)                                     \
  X(multi_cleanup, curl_multi_cleanup)                                         \
  X(easy_init, curl_easy_init)                                                 \
  X(easy_setopt, curl_easy_setopt)                                             \
  X(easy_getinfo, curl_easy_getinfo)                                           \
  X(easy_reset, curl_easy_reset)                                               \
  X(easy_cleanup, curl_easy_cleanup)                                           \
  X(easy_strerror, curl_easy_strerror)                                         \
  X(slist_append, curl_slist_append)                                           \
  X(slist_free_all, curl_slist_free_all)                                       \
  X(getdate, curl_getdate)

static void load(void) {
  /* The library stays loaded for the life of the process: curl's global
     state must outlive every runtime, and curl_global_cleanup is not
     safe to call while another thread may use curl. */
  const char *name = getenv("FLOWLUA_LIBCURL"); /* another build of it */
  if (!name || !*name) name = LIBCURL_SONAME;
  void *lib = dlopen(name, RTLD_NOW | RTLD_LOCAL);
  if (!lib) {
    snprintf(load_error, sizeof load_error,
             "cannot load libcurl (%s): install libcurl4", dlerror());
    return;
  }
#define LOAD(field, symbol)                                                    \
  *(void **)(&api.field) = dlsym(lib, #symbol);                                \
  if (!api.field) {                                                            \
    snprintf(load_error, sizeof load_error, "%s has no %s: too old a libcurl", \
             name, #symbol);                                                   \
    return;                                                                    \
  }
  CURL_SYMBOLS(LOAD)
#undef LOAD
  if (api.global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
    snprintf(load_error, sizeof load_error, "curl_global_init failed");
    return;
  }
  loaded = &api;
}

const fl_curl_api *fl_curl_load(const char **why) {
  pthread_once(&load_once, load);
  if (!loaded && why) *why = load_error;
  return loaded;
}

const fl_curl_api *fl_curl(void) { return loaded; }
