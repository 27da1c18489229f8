/*
 * ui_params.h — the API's query parameters, taken strictly: an unknown,
 * repeated or empty one is a 400, not ignored, so that a typo in a
 * script's URL does not silently answer something else.
 */
#ifndef FL_UI_PARAMS_H
#define FL_UI_PARAMS_H

#include <stddef.h>

#include "ui_reply.h"

/* values[k] = the value of keys[k], or NULL when not given. 1, or 0 with
   a 400 in r naming the parameter (and the known ones). */
int fl_ui_params_take(const fl_ui_param *params, size_t n,
                      const char *const *keys, size_t n_keys,
                      const char **values, fl_ui_reply *r);

/* A whole number from min to max, decimal digits only ("010" is 10; no
   sign, no space). 0, or -1 with a 400 in r naming key. */
int fl_ui_param_number(const char *key, const char *value, long min, long max,
                       long *out, fl_ui_reply *r);

#endif
