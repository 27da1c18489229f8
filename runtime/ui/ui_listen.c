/*
 * ui_listen.c — ADDR:PORT for `flowlua ui`, and its listening socket.
 *
 * Numeric addresses only (and "localhost"): whether the server is reachable
 * from other hosts decides whether a token is required, so it must follow
 * from the text alone, not from a resolver.
 */
#define _POSIX_C_SOURCE 200809L
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ui_listen.h"

static int parse_port(const char *s, unsigned *port) {
  if (!*s || strlen(s) > 5) return -1;
  unsigned v = 0;
  for (const char *p = s; *p; p++) {
    if (*p < '0' || *p > '9') return -1;
    v = v * 10 + (unsigned)(*p - '0');
  }
  if (v > 65535) return -1;
  *port = v;
  return 0;
}

static int set_host(const char *host, unsigned port, fl_ui_addr *out) {
  struct sockaddr_in *v4 = (struct sockaddr_in *)&out->sa;
  struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&out->sa;
  memset(out, 0, sizeof *out);
  if (strcmp(host, "localhost") == 0) host = "127.0.0.1";
  if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons((unsigned short)port);
    out->len = sizeof *v4;
    out->loopback = (ntohl(v4->sin_addr.s_addr) >> 24) == 127;
    return 0;
  }
  if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons((unsigned short)port);
    out->len = sizeof *v6;
    out->loopback = IN6_IS_ADDR_LOOPBACK(&v6->sin6_addr);
    return 0;
  }
  return -1;
}

int fl_ui_addr_parse(const char *spec, fl_ui_addr *out, char *err,
                     size_t errlen) {
  const char *given = spec;
  char host[64];
  const char *colon;
  size_t hlen;
  if (spec[0] == '[') { /* [IPv6]:PORT */
    const char *close = strchr(spec, ']');
    colon = close && close[1] == ':' ? close + 1 : NULL;
    hlen = close ? (size_t)(close - spec - 1) : 0;
    spec++;
  } else {
    colon = strrchr(spec, ':');
    hlen = colon ? (size_t)(colon - spec) : 0;
  }
  unsigned port;
  if (!colon || hlen == 0 || hlen >= sizeof host ||
      parse_port(colon + 1, &port) != 0) {
    snprintf(err, errlen, "--listen expects ADDR:PORT (127.0.0.1:8080, "
                          "[::1]:8080), got '%s'", given);
    return -1;
  }
  memcpy(host, spec, hlen);
  host[hlen] = '\0';
  if (set_host(host, port, out) != 0) {
    snprintf(err, errlen, "--listen: '%s' is not a numeric IPv4 or IPv6 "
                          "address (nor localhost)", host);
    return -1;
  }
  return 0;
}

/* "127.0.0.1:8080" or "[::1]:8080" of a socket address. */
static void format_addr(const struct sockaddr_storage *sa, char *out,
                        size_t outlen) {
  char host[INET6_ADDRSTRLEN] = "?";
  unsigned port = 0;
  if (sa->ss_family == AF_INET6) {
    const struct sockaddr_in6 *v6 = (const struct sockaddr_in6 *)sa;
    inet_ntop(AF_INET6, &v6->sin6_addr, host, sizeof host);
    port = ntohs(v6->sin6_port);
    snprintf(out, outlen, "[%s]:%u", host, port);
    return;
  }
  const struct sockaddr_in *v4 = (const struct sockaddr_in *)sa;
  inet_ntop(AF_INET, &v4->sin_addr, host, sizeof host);
  port = ntohs(v4->sin_port);
  snprintf(out, outlen, "%s:%u", host, port);
}

int fl_ui_listen(const fl_ui_addr *addr, char *err, size_t errlen) {
  char shown[INET6_ADDRSTRLEN + 16];
  format_addr(&addr->sa, shown, sizeof shown);
  int fd = socket(addr->sa.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    snprintf(err, errlen, "cannot listen on %s: %s", shown, strerror(errno));
    return -1;
  }
  /* A restart right after a stop must not wait for TIME_WAIT; a port
     another process listens on is still refused (EADDRINUSE). */
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (addr->sa.ss_family == AF_INET6)
    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
  if (bind(fd, (const struct sockaddr *)&addr->sa, addr->len) != 0 ||
      listen(fd, 64) != 0) {
    int e = errno;
    snprintf(err, errlen, "cannot listen on %s: %s%s", shown, strerror(e),
             e == EADDRINUSE ? " (another program listens there: pick "
                               "another port with --listen)"
                             : "");
    close(fd);
    return -1;
  }
  int flags = fcntl(fd, F_GETFL);
  if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0) {
    snprintf(err, errlen, "cannot listen on %s: %s", shown, strerror(errno));
    close(fd);
    return -1;
  }
  return fd;
}

void fl_ui_url(int fd, char *out, size_t outlen) {
  struct sockaddr_storage sa;
  socklen_t len = sizeof sa;
  char shown[INET6_ADDRSTRLEN + 16] = "?";
  if (getsockname(fd, (struct sockaddr *)&sa, &len) == 0)
    format_addr(&sa, shown, sizeof shown);
  snprintf(out, outlen, "http://%s/", shown);
}
