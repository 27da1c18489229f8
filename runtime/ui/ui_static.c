/*
 * ui_static.c — finding a compiled-in asset by name, and its type.
 *
 * Exact names only: no decoding, no folders, no normalising of "..", so
 * that nothing but the table's own entries can ever be served.
 */
#include <string.h>

#include "ui_assets.h"

const fl_ui_asset *fl_ui_asset_find(const char *name) {
  if (!name) return NULL;
  for (const fl_ui_asset *a = fl_ui_assets; a->name; a++)
    if (strcmp(a->name, name) == 0) return a;
  return NULL;
}

static int ends_with(const char *s, const char *suffix) {
  size_t n = strlen(s), m = strlen(suffix);
  return n >= m && strcmp(s + n - m, suffix) == 0;
}

const char *fl_ui_asset_type(const fl_ui_asset *a) {
  if (ends_with(a->name, ".html")) return "text/html; charset=utf-8";
  if (ends_with(a->name, ".css")) return "text/css; charset=utf-8";
  if (ends_with(a->name, ".js")) return "text/javascript; charset=utf-8";
  return "application/octet-stream";
}
