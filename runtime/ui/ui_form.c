/*
 * ui_form.c — an action's form, decoded by libmicrohttpd (ui_form.h).
 */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <string.h>

#include "ui_form.h"
#include "ui_mhd.h"

static fl_ui_field *field_for(fl_ui_form *f, const char *key, size_t off) {
  /* libmicrohttpd hands a long value over in pieces (off > 0 for the
     next ones): those go to the field its first piece made. */
  if (off > 0 && f->n > 0 && strcmp(f->fields[f->n - 1].key, key) == 0)
    return &f->fields[f->n - 1];
  for (size_t i = 0; i < f->n; i++)
    if (strcmp(f->fields[i].key, key) == 0) {
      f->problem = "a field is given twice";
      return NULL;
    }
  if (f->n == FL_UI_FORM_FIELDS) {
    f->problem = "the form has too many fields";
    return NULL;
  }
  fl_ui_field *field = &f->fields[f->n];
  if (!(field->key = strdup(key)) || !(field->value = calloc(1, 1))) {
    free(field->key);
    field->key = NULL;
    f->problem = "out of memory reading the form";
    return NULL;
  }
  field->len = 0;
  f->n++;
  return field;
}

static enum MHD_Result on_field(void *cls, enum MHD_ValueKind kind,
                                const char *key, const char *filename,
                                const char *content_type,
                                const char *transfer_encoding,
                                const char *data, uint64_t off, size_t size) {
  (void)kind, (void)filename, (void)content_type, (void)transfer_encoding;
  fl_ui_form *f = cls;
  if (f->problem) return MHD_NO;
  f->bytes += strlen(key) + size;
  if (f->bytes > FL_UI_FORM_BYTES) {
    f->problem = "the form is larger than 64 KiB";
    return MHD_NO;
  }
  fl_ui_field *field = field_for(f, key, (size_t)off);
  if (!field) return MHD_NO;
  if (memchr(data, '\0', size)) {
    f->problem = "a field holds a NUL byte";
    return MHD_NO;
  }
  char *grown = realloc(field->value, field->len + size + 1);
  if (!grown) {
    f->problem = "out of memory reading the form";
    return MHD_NO;
  }
  memcpy(grown + field->len, data, size);
  field->len += size;
  grown[field->len] = '\0';
  field->value = grown;
  return MHD_YES;
}

int fl_ui_form_begin(fl_ui_form *form, struct MHD_Connection *c) {
  memset(form, 0, sizeof *form);
  const char *type = fl_ui_mhd()->lookup_connection_value(
      c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
  /* Only the urlencoded form: a multipart one (files) is never needed. */
  if (!type || strncmp(type, MHD_HTTP_POST_ENCODING_FORM_URLENCODED,
                       strlen(MHD_HTTP_POST_ENCODING_FORM_URLENCODED)) != 0) {
    form->problem = "an action takes a form "
                    "(Content-Type: application/x-www-form-urlencoded)";
    return -1;
  }
  form->pp = fl_ui_mhd()->create_post_processor(c, 4096, on_field, form);
  if (!form->pp) {
    form->problem = "cannot read the form";
    return -1;
  }
  return 0;
}

void fl_ui_form_feed(fl_ui_form *form, const char *data, size_t len) {
  if (form->problem || !form->pp) return;
  if (fl_ui_mhd()->post_process(form->pp, data, len) != MHD_YES && !form->problem)
    form->problem = "the form is malformed";
}

void fl_ui_form_free(fl_ui_form *form) {
  if (form->pp) fl_ui_mhd()->destroy_post_processor(form->pp);
  form->pp = NULL;
  for (size_t i = 0; i < form->n; i++) {
    free(form->fields[i].key);
    free(form->fields[i].value);
  }
  form->n = 0;
}

const char *fl_ui_form_get(const fl_ui_form *form, const char *key) {
  for (size_t i = 0; i < form->n; i++)
    if (strcmp(form->fields[i].key, key) == 0) return form->fields[i].value;
  return NULL;
}
