/*
 * ui_mhd.c — loading libmicrohttpd on first use (ui_mhd.h says why).
 *
 * The library stays loaded until the process ends: the server's thread
 * lives in it, and unloading buys nothing to a process about to exit.
 */
#define _POSIX_C_SOURCE 200809L
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ui_mhd.h"

static fl_ui_mhd_api api;
static int loaded;

/* dlsym's object pointer into a function pointer slot (POSIX allows it;
   ISO C has no cast for it, hence memcpy). */
static int bind_symbol(void *lib, const char *name, void *slot, size_t size,
                char *err, size_t errlen) {
  void *sym = dlsym(lib, name);
  if (!sym) {
    snprintf(err, errlen, "cannot load libmicrohttpd: it lacks %s (0.9.71 "
                          "or later is needed)", name);
    return -1;
  }
  memcpy(slot, &sym, size);
  return 0;
}

#define BIND(field, name)                                                      \
  bind_symbol(lib, name, &api.field, sizeof api.field, err, errlen)

int fl_ui_mhd_load(char *err, size_t errlen) {
  if (loaded) return 0;
  const char *file = getenv("FLOWLUA_LIBMICROHTTPD");
  if (!file || !*file) file = "libmicrohttpd.so.12";
  void *lib = dlopen(file, RTLD_NOW | RTLD_LOCAL);
  if (!lib) {
    snprintf(err, errlen, "cannot load libmicrohttpd (%s): install "
                          "libmicrohttpd12", dlerror());
    return -1;
  }
  if (BIND(start_daemon, "MHD_start_daemon") ||
      BIND(stop_daemon, "MHD_stop_daemon") ||
      BIND(create_response_from_buffer, "MHD_create_response_from_buffer") ||
      BIND(create_response_from_buffer_with_free_callback,
           "MHD_create_response_from_buffer_with_free_callback") ||
      BIND(add_response_header, "MHD_add_response_header") ||
      BIND(queue_response, "MHD_queue_response") ||
      BIND(destroy_response, "MHD_destroy_response") ||
      BIND(get_connection_values, "MHD_get_connection_values") ||
      BIND(create_response_from_callback, "MHD_create_response_from_callback") ||
      BIND(get_connection_info, "MHD_get_connection_info") ||
      BIND(lookup_connection_value, "MHD_lookup_connection_value") ||
      BIND(create_post_processor, "MHD_create_post_processor") ||
      BIND(post_process, "MHD_post_process") ||
      BIND(destroy_post_processor, "MHD_destroy_post_processor")) {
    dlclose(lib);
    memset(&api, 0, sizeof api);
    return -1;
  }
  loaded = 1;
  return 0;
}

const fl_ui_mhd_api *fl_ui_mhd(void) { return &api; }
