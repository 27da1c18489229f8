/*
 * curlapi.h — libcurl, loaded when the first request needs it.
 *
 * Linking libcurl pulls in some thirty libraries (TLS, SSH, LDAP, Kerberos,
 * IDN...) whose dynamic linking costs about 5 ms at every start, more than
 * the rest of flowlua's start-up together — paid by every flow, including
 * the many that never make a request. (git keeps libcurl out of its main
 * binary for the same reason.) So libflowlua does not link it: the first
 * HTTP request loads it with dlopen, once per process, and calls it through
 * this table. The headers still come from libcurl's -dev package, found by
 * pkg-config at build time; the library loaded is its ABI, libcurl.so.4,
 * or the file the environment variable FLOWLUA_LIBCURL names.
 */
#ifndef FL_CURLAPI_H
#define FL_CURLAPI_H

#include <curl/curl.h>

typedef struct fl_curl_api {
  CURLcode (*global_init)(long flags);
  CURLM *(*multi_init)(void);
  CURLMcode (*multi_setopt)(CURLM *m, CURLMoption opt, ...);
  CURLMcode (*multi_add_handle)(CURLM *m, CURL *e);
  CURLMcode (*multi_remove_handle)(CURLM *m, CURL *e);
  CURLMcode (*multi_socket_action)(CURLM *m, curl_socket_t s, int ev,
                                   int *running);
  CURLMsg *(*multi_info_read)(CURLM *m, int *left);
  CURLMcode (*multi_cleanup)(CURLM *m);
  CURL *(*easy_init)(void);
  CURLcode (*easy_setopt)(CURL *e, CURLoption opt, ...);
  CURLcode (*easy_getinfo)(CURL *e, CURLINFO info, ...);
  void (*easy_reset)(CURL *e);
  void (*easy_cleanup)(CURL *e);
  const char *(*easy_strerror)(CURLcode code);
  struct curl_slist *(*slist_append)(struct curl_slist *l, const char *s);
  void (*slist_free_all)(struct curl_slist *l);
  time_t (*getdate)(const char *text, const time_t *unused);
} fl_curl_api;

/*
 * Loads libcurl and runs curl_global_init, once per process (thread-safe).
 * Returns the table, or NULL with *why set to a static message naming the
 * library and the reason. After a successful call, fl_curl() returns the
 * same table.
 */
const fl_curl_api *fl_curl_load(const char **why);
const fl_curl_api *fl_curl(void);

#endif
