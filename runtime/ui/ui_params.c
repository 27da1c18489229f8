/*
 * ui_params.c — strict query parameters for the API (ui_params.h).
 */
#include <string.h>

#include "ui_params.h"

int fl_ui_params_take(const fl_ui_param *params, size_t n,
                      const char *const *keys, size_t n_keys,
                      const char **values, fl_ui_reply *r) {
  for (size_t k = 0; k < n_keys; k++) values[k] = NULL;
  for (size_t i = 0; i < n; i++) {
    size_t k = 0;
    while (k < n_keys && strcmp(params[i].key, keys[k]) != 0) k++;
    if (k == n_keys) {
      char known[256] = "";
      for (size_t j = 0; j < n_keys; j++) {
        if (j) strncat(known, ", ", sizeof known - strlen(known) - 1);
        strncat(known, keys[j], sizeof known - strlen(known) - 1);
      }
      fl_ui_reply_error(r, 400, "unknown parameter '%.100s' (known: %s)",
                        params[i].key, n_keys ? known : "none");
      return 0;
    }
    if (values[k]) {
      fl_ui_reply_error(r, 400, "parameter '%s' given twice", keys[k]);
      return 0;
    }
    if (!params[i].value || !*params[i].value) {
      fl_ui_reply_error(r, 400, "parameter '%s' is empty", keys[k]);
      return 0;
    }
    values[k] = params[i].value;
  }
  return 1;
}

int fl_ui_param_number(const char *key, const char *value, long min, long max,
                       long *out, fl_ui_reply *r) {
  long v = 0;
  size_t len = strlen(value);
  int ok = len > 0 && len <= 10;
  for (size_t i = 0; ok && i < len; i++) {
    if (value[i] < '0' || value[i] > '9')
      ok = 0;
    else
      v = v * 10 + (value[i] - '0');
  }
  if (!ok || v < min || v > max) {
    fl_ui_reply_error(r, 400, "%s '%.100s' is not a whole number from %ld "
                              "to %ld", key, value, min, max);
    return -1;
  }
  *out = v;
  return 0;
}
