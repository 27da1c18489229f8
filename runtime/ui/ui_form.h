/*
 * ui_form.h — an action's form (application/x-www-form-urlencoded),
 * decoded by libmicrohttpd's post processor into a bounded set of fields.
 */
#ifndef FL_UI_FORM_H
#define FL_UI_FORM_H

#include <stddef.h>

#include <microhttpd.h>

/* A form holds at most this many fields, of at most this many bytes in
   all: enough for a flow's params, and a hard stop for anything else. */
#define FL_UI_FORM_FIELDS 64
#define FL_UI_FORM_BYTES (64 * 1024)

typedef struct fl_ui_field {
  char *key, *value; /* NUL-terminated, owned */
  size_t len;        /* of value */
} fl_ui_field;

typedef struct fl_ui_form {
  struct MHD_PostProcessor *pp;
  fl_ui_field fields[FL_UI_FORM_FIELDS];
  size_t n, bytes;
  const char *problem; /* why the form is refused, or NULL */
} fl_ui_form;

/* Starts reading connection c's form: 0, or -1 when its Content-Type is
   not a form (form->problem says so). */
int fl_ui_form_begin(fl_ui_form *form, struct MHD_Connection *c);
/* Feeds a piece of the body. */
void fl_ui_form_feed(fl_ui_form *form, const char *data, size_t len);
/* Frees everything the form holds. */
void fl_ui_form_free(fl_ui_form *form);
/* The value of the field called key, or NULL; a field given twice counts
   as refused (form->problem). */
const char *fl_ui_form_get(const fl_ui_form *form, const char *key);

#endif
