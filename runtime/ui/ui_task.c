/*
 * ui_task.c — the web UI's task run: GET /api/runs/ID/tasks/KEY (its
 * state, attempts' state changes and log lines, flowlua_report_task_run)
 * and GET /runs/ID/tasks/KEY (the static page task.html, whose script
 * fetches that JSON). A file of its own, so that ui_server.c routes it
 * with one call.
 *
 * What it must not do: read the history other than through the public
 * API, or put anything of the history into the page (task.js writes it,
 * as text).
 */
#define _POSIX_C_SOURCE 200809L
#include "ui_task.h"

#include <stdlib.h>
#include <string.h>

#include "ui_assets.h"

/* Run ids are UUIDs (36 bytes) or a prefix, or "last": longer is no run. */
#define MAX_RUN_REF 128

/* Splits PREFIX ID "/tasks/" KEY: 1 with id (NUL-terminated, in idbuf) and
   *key set, 0 when url is not of that form. */
static int split(const char *url, const char *prefix, char *idbuf,
                 size_t idlen, const char **key) {
  size_t n = strlen(prefix);
  if (strncmp(url, prefix, n) != 0) return 0;
  const char *id = url + n;
  const char *slash = strchr(id, '/');
  if (!slash || slash == id) return 0;
  if (strncmp(slash, "/tasks/", 7) != 0 || !slash[7]) return 0;
  size_t len = (size_t)(slash - id);
  if (len >= idlen) len = idlen - 1; /* no such run: reported as one */
  memcpy(idbuf, id, len);
  idbuf[len] = '\0';
  *key = slash + 7;
  return 1;
}

static void release_flowlua(void *p) { flowlua_string_free(p); }

static void task_json(flowlua *rt, const char *run_ref, const char *key,
                      fl_ui_reply *r) {
  char *text = NULL;
  int rc = flowlua_report_task_run(rt, run_ref, key, &text);
  if (rc == FLOWLUA_OK)
    *r = (fl_ui_reply){.status = 200, .type = "application/json",
                       .body = text, .len = strlen(text),
                       .release = release_flowlua, .api = 1};
  else /* EINVAL: no such run, or no such task run in it */
    fl_ui_reply_error(r, rc == FLOWLUA_EINVAL ? 404 : 500, "%s",
                      flowlua_errmsg(rt));
}

int fl_ui_task_route(flowlua *rt, const char *url, fl_ui_reply *r) {
  char id[MAX_RUN_REF];
  const char *key;
  if (split(url, "/api/runs/", id, sizeof id, &key)) {
    task_json(rt, id, key, r);
    return 1;
  }
  if (split(url, "/runs/", id, sizeof id, &key)) {
    /* The page reads its run and key from its own path. */
    const fl_ui_asset *a = fl_ui_asset_find("task.html");
    if (a)
      *r = (fl_ui_reply){.status = 200, .type = fl_ui_asset_type(a),
                         .body = (const char *)a->data, .len = a->size};
    else
      fl_ui_reply_error(r, 500, "the task page is missing from this build");
    return 1;
  }
  return 0;
}
