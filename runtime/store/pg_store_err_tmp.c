/*
 * pg_store_err_tmp.c — TEMPORARY: integrator replaces with pg_store.c.
 *
 * fl__pg_store_err as pg_store.h describes it, so that the readers'
 * dispatch (store_read.c) builds before pg_store.c is merged.
 */
#include "pg_store.h"

int fl__pg_store_err(fl_store *st, int status) {
  if (status == 0) return 0;
  fl_buf_reset(&st->err);
  st->err_busy = 0;
  fl_buf_adds(&st->err, fl_pg_errmsg(st->pg));
  return status;
}
