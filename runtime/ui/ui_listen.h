/*
 * ui_listen.h — where `flowlua ui` listens: ADDR:PORT parsed, whether it is
 * loopback only, and the listening socket opened with a clear reason when
 * it cannot be.
 *
 * The socket is ours, not libmicrohttpd's, so that "address already in
 * use" reaches the user as such (the library would only fail), and so
 * that the port the kernel picked for :0 is known before the first line.
 */
#ifndef FL_UI_LISTEN_H
#define FL_UI_LISTEN_H

#include <stddef.h>
#include <sys/socket.h>

typedef struct fl_ui_addr {
  struct sockaddr_storage sa;
  socklen_t len;
  int loopback; /* 127.0.0.0/8 or ::1: no other host can connect */
} fl_ui_addr;

/* "127.0.0.1:8080", "localhost:8080", "[::1]:8080", "0.0.0.0:0". 0, or
   -1 with the reason in err. Names other than localhost are refused: the
   UI must not depend on what a resolver answers. */
int fl_ui_addr_parse(const char *spec, fl_ui_addr *out, char *err,
                     size_t errlen);

/* A non-blocking listening socket bound to addr, or -1 with the reason in
   err ("127.0.0.1:8080: Address already in use"). */
int fl_ui_listen(const fl_ui_addr *addr, char *err, size_t errlen);

/* "http://127.0.0.1:PORT/" of the socket fd, with the port it really has. */
void fl_ui_url(int fd, char *out, size_t outlen);

#endif
