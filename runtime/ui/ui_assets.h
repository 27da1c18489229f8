/*
 * ui_assets.h — the web UI's pages, style and script, compiled into the
 * binary (runtime/ui/assets, turned into ui_assets.c at build time by
 * cmake/FlowluaEmbed.cmake).
 *
 * The table is the only thing the server serves as files: a name that is
 * not in it is not found, whatever it looks like (no path is ever opened).
 */
#ifndef FL_UI_ASSETS_H
#define FL_UI_ASSETS_H

#include <stddef.h>

typedef struct fl_ui_asset {
  const char *name;          /* "ui.css": a file name, no folder */
  const unsigned char *data; /* NUL-terminated, for convenience only */
  size_t size;               /* without that NUL */
} fl_ui_asset;

/* Ends with a row whose name is NULL. */
extern const fl_ui_asset fl_ui_assets[];

/* The asset of that exact name, or NULL. */
const fl_ui_asset *fl_ui_asset_find(const char *name);

/* Its Content-Type, from its extension ("text/css; charset=utf-8"). */
const char *fl_ui_asset_type(const fl_ui_asset *a);

#endif
