/*
 * pg_test.h — what the PostgreSQL unit tests share: a monotonic clock for
 * their timings, and the harness's server driven by FLOWLUA_TEST_PG_CTL
 * (tests/support/pg/with_pg.py).
 */
#ifndef FL_PG_TEST_H
#define FL_PG_TEST_H

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static inline double pg_test_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The server's harness: stop, kill, start, restart; each returns once done. */
static inline int pg_test_server(const char *action) {
  char cmd[4096];
  snprintf(cmd, sizeof cmd, "%s %s", getenv("FLOWLUA_TEST_PG_CTL"), action);
  int rc = system(cmd);
  if (rc != 0) fprintf(stderr, "'%s' exited %d\n", cmd, rc);
  return rc;
}

#endif
