/*
 * names.c — the public API's names and numbers: the version, state and
 * status names, and log levels by name. Each is a static string.
 */
#include "flowlua.h"
#include "log.h"
#include "states.h"

const char *flowlua_version(void) { return FLOWLUA_VERSION; }

int flowlua_version_number(void) { return FLOWLUA_VERSION_NUMBER; }

const char *flowlua_strstatus(int status) { return fl_status_text(status); }

const char *flowlua_status_name(int status) { return fl_status_name(status); }

const char *flowlua_task_state_name(int state) {
  return fl_task_state_name(state);
}

const char *flowlua_flow_state_name(int state) {
  return fl_flow_state_name(state);
}

int flowlua_log_level_parse(const char *name) {
  return name ? fl_log_level_parse(name) : -1;
}
