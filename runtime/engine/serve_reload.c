/*
 * serve_reload.c — an edited script noticed before a fire time, and the
 * handles of a served flow's earlier versions kept going until their runs
 * have ended (serve_reload.h says why in a new handle).
 *
 * What it must not do: create or free a handle itself (the api layer's:
 * fl_reload_ops), or read the file at every fire when nothing changed
 * (a stat first; the bytes and their SHA-256 only when it differs).
 */
#define _POSIX_C_SOURCE 200809L
#include "serve_reload.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/stat.h>

#include <lauxlib.h>

#include "fsutil.h"
#include "sha256.h"

int fl_reload_changed(fl_reload *r, flowlua *rt, char sha[65], char *err,
                      size_t len) {
  struct stat st;
  if (!rt->script_path) return 0; /* loaded from a string: no file */
  if (stat(rt->script_path, &st) != 0) {
    int e = errno;
    r->seen = 0;
    if (r->unreadable) return 0;
    r->unreadable = 1;
    snprintf(err, len, "cannot read %s: %s", rt->script_path, strerror(e));
    return -1;
  }
  if (r->seen && st.st_dev == r->dev && st.st_ino == r->ino &&
      st.st_size == r->size && st.st_mtim.tv_sec == r->mtime.tv_sec &&
      st.st_mtim.tv_nsec == r->mtime.tv_nsec)
    return 0;
  char *data;
  size_t n;
  if (fl_read_file(rt->script_path, &data, &n) != 0) {
    int e = errno;
    if (r->unreadable) return 0;
    r->unreadable = 1;
    snprintf(err, len, "cannot read %s: %s", rt->script_path, strerror(e));
    return -1;
  }
  fl_sha256_hex(data, n, sha);
  free(data);
  /* Seen only once read: a file replaced between the stat and the read is
     looked at again next time. */
  r->unreadable = 0;
  r->seen = 1;
  r->dev = st.st_dev;
  r->ino = st.st_ino;
  r->size = st.st_size;
  r->mtime = st.st_mtim;
  return strcmp(sha, rt->script_sha256) != 0 && strcmp(sha, r->refused) != 0;
}

/* The watch callback: an earlier handle's loop has something; the serving
   loop polls it right after its wait, so there is nothing to do here. */
static void on_old_loop(int fd, uint32_t events, void *data) {
  (void)fd, (void)events, (void)data;
}

static void watch_all(fl_versions *v, fl_loop *loop) {
  if (v->watching == loop) return;
  for (size_t i = 0; i < v->n; i++) {
    if (v->watching) fl_loop_unwatch(v->watching, v->old[i]->loop.epfd);
    if (loop) fl_loop_watch(loop, v->old[i]->loop.epfd, EPOLLIN, on_old_loop,
                            NULL);
  }
  v->watching = loop;
}

int fl_versions_retire(fl_versions *v, flowlua *rt, fl_loop *loop,
                       const fl_reload_ops *ops) {
  watch_all(v, NULL);
  int rc = 0;
  if (rt->active || rt == v->host) {
    if (v->n == v->cap) {
      size_t cap = v->cap ? 2 * v->cap : 4;
      flowlua **grown = realloc(v->old, cap * sizeof *grown);
      if (grown) {
        v->old = grown;
        v->cap = cap;
      }
    }
    if (v->n < v->cap)
      v->old[v->n++] = rt;
    else
      rc = -1; /* its runs are no longer pumped: they end at the exit */
  } else {
    ops->free(rt);
  }
  watch_all(v, loop);
  return rc;
}

/* lua_pcall'd on the earlier handle's own state: what became ready there
   (timers, transfers, child processes) done, and its runs moved. Returns
   whether one moved. */
static int pump_one(lua_State *L) {
  flowlua *rt = lua_touserdata(L, 1);
  fl_loop_poll(&rt->loop, 0);
  int moved = 0;
  while (fl_sched_pump_all(rt)) {
    fl_sched_collect(rt);
    moved = 1;
  }
  fl_sched_collect(rt);
  lua_pushboolean(L, moved);
  return 1;
}

int fl_versions_pump(fl_versions *v, const fl_reload_ops *ops, char *err,
                     size_t len) {
  int moved = 0;
  for (size_t i = 0; i < v->n; i++) {
    flowlua *rt = v->old[i];
    lua_State *L = rt->L;
    lua_pushcfunction(L, pump_one);
    lua_pushlightuserdata(L, rt);
    if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
      snprintf(err, len, "a run of an earlier version of the script failed: "
                         "%s", lua_tostring(L, -1));
      lua_pop(L, 1);
      return -1;
    }
    moved |= lua_toboolean(L, -1);
    lua_pop(L, 1);
  }
  /* Those whose runs have all ended go (the host stays: it is the
     caller's). */
  for (size_t i = 0; i < v->n;) {
    flowlua *rt = v->old[i];
    if (rt == v->host || rt->active) {
      i++;
      continue;
    }
    if (v->watching) fl_loop_unwatch(v->watching, rt->loop.epfd);
    memmove(v->old + i, v->old + i + 1, (v->n - i - 1) * sizeof *v->old);
    v->n--;
    ops->free(rt);
  }
  return moved;
}

double fl_versions_wait(const fl_versions *v, double wait) {
  for (size_t i = 0; i < v->n; i++) {
    double w = fl_loop_next_due(&v->old[i]->loop);
    if (w >= 0 && (wait < 0 || w < wait)) wait = w;
  }
  return wait;
}

void fl_versions_sync(fl_versions *v, flowlua *cur) {
  flowlua *host = v->host;
  if (!host->stop_requested && !host->cancel_requested) return;
  flowlua **all = v->old;
  for (size_t i = 0; i <= v->n; i++) {
    flowlua *rt = i < v->n ? all[i] : cur;
    if (rt == host) continue;
    if (host->stop_requested) rt->stop_requested = 1;
    if (host->cancel_requested && !rt->cancel_requested) {
      rt->cancel_requested = 1;
      fl_loop_wake(&rt->loop);
    }
  }
}

void fl_versions_cancel_current(fl_versions *v) {
  for (size_t i = 0; i < v->n; i++)
    if (v->old[i]->active) v->old[i]->cancel_current = 1;
}

void fl_versions_free(fl_versions *v, const fl_reload_ops *ops) {
  watch_all(v, NULL);
  for (size_t i = 0; i < v->n; i++)
    if (v->old[i] != v->host) ops->free(v->old[i]);
  free(v->old);
  *v = (fl_versions){0};
}
