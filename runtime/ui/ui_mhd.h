/*
 * ui_mhd.h — libmicrohttpd, loaded with dlopen on the first `flowlua ui`.
 *
 * Linked, it would bring libmicrohttpd and GnuTLS with some ten libraries
 * to every start of the flowlua command, a one-task flow included, which
 * never serves a page (measured once, on a busy machine: about twice the
 * start time of `flowlua --version`). Loaded here, only `flowlua ui` pays for it. Only the
 * functions the server calls are in the table; ui_server.c calls them as
 * fl_ui_mhd()->start_daemon(...), as curlapi.h does for libcurl.
 */
#ifndef FL_UI_MHD_H
#define FL_UI_MHD_H

#include <stddef.h>
#include <stdint.h>
#include <microhttpd.h>

typedef struct fl_ui_mhd_api {
  struct MHD_Daemon *(*start_daemon)(unsigned int flags, uint16_t port,
                                     MHD_AcceptPolicyCallback apc,
                                     void *apc_cls,
                                     MHD_AccessHandlerCallback dh,
                                     void *dh_cls, ...);
  void (*stop_daemon)(struct MHD_Daemon *daemon);
  struct MHD_Response *(*create_response_from_buffer)(
      size_t size, void *buffer, enum MHD_ResponseMemoryMode mode);
  struct MHD_Response *(*create_response_from_buffer_with_free_callback)(
      size_t size, void *buffer, MHD_ContentReaderFreeCallback crfc);
  enum MHD_Result (*add_response_header)(struct MHD_Response *response,
                                         const char *header,
                                         const char *content);
  enum MHD_Result (*queue_response)(struct MHD_Connection *connection,
                                    unsigned int status_code,
                                    struct MHD_Response *response);
  void (*destroy_response)(struct MHD_Response *response);
  int (*get_connection_values)(struct MHD_Connection *connection,
                               enum MHD_ValueKind kind,
                               MHD_KeyValueIterator iterator,
                               void *iterator_cls);
  struct MHD_Response *(*create_response_from_callback)(
      uint64_t size, size_t block_size, MHD_ContentReaderCallback crc,
      void *crc_cls, MHD_ContentReaderFreeCallback crfc);
  const union MHD_ConnectionInfo *(*get_connection_info)(
      struct MHD_Connection *connection, enum MHD_ConnectionInfoType info_type,
      ...);
  /* actions (POST): a header, and the form's fields */
  const char *(*lookup_connection_value)(struct MHD_Connection *connection,
                                         enum MHD_ValueKind kind,
                                         const char *key);
  struct MHD_PostProcessor *(*create_post_processor)(
      struct MHD_Connection *connection, size_t buffer_size,
      MHD_PostDataIterator iter, void *iter_cls);
  enum MHD_Result (*post_process)(struct MHD_PostProcessor *pp,
                                  const char *post_data, size_t post_data_len);
  enum MHD_Result (*destroy_post_processor)(struct MHD_PostProcessor *pp);
} fl_ui_mhd_api;

/* Loads libmicrohttpd.so.12 (or the file FLOWLUA_LIBMICROHTTPD names) once;
   0, or -1 with the reason in err ("cannot load libmicrohttpd (...):
   install libmicrohttpd12"). Not thread-safe: called before the server's
   thread starts. */
int fl_ui_mhd_load(char *err, size_t errlen);

/* The loaded table; only after fl_ui_mhd_load succeeded. */
const fl_ui_mhd_api *fl_ui_mhd(void);

#endif
