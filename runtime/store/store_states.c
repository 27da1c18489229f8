/*
 * store_states.c — state names as the store writes and reads them: the
 * engine's task states plus "Crashed" (a task run found running after its
 * process died), and the flow run states.
 *
 * States are stored by name, not by enum value, so adding a state to the
 * engine never needs a migration.
 */
#include "store_internal.h"

#include <string.h>

#define FL_STATE_TEXT(name, text) text,
const char *const fl__store_task_state_names[FL_STORE_TASK_STATES] = {
    FLOWLUA_TASK_STATE_MAP(FL_STATE_TEXT) "Crashed"};
static const char *const flow_state_names[FLOWLUA_FLOW_STATE_COUNT] = {
    FLOWLUA_FLOW_STATE_MAP(FL_STATE_TEXT)};
#undef FL_STATE_TEXT

const char *fl_store_task_state_name(int state) {
  return state >= 0 && state < FL_STORE_TASK_STATES ? fl__store_task_state_names[state]
                                                    : "?";
}

const char *fl__store_flow_state_name(int state) {
  return state >= 0 && state < FLOWLUA_FLOW_STATE_COUNT
             ? flow_state_names[state]
             : "?";
}

int fl_store_task_state_parse(const char *name) {
  for (int i = 0; name && i < FL_STORE_TASK_STATES; i++)
    if (strcmp(name, fl__store_task_state_names[i]) == 0) return i;
  return -1;
}

int fl_store_flow_state_parse(const char *name) {
  for (int i = 0; name && i < FLOWLUA_FLOW_STATE_COUNT; i++)
    if (strcmp(name, flow_state_names[i]) == 0) return i;
  return -1;
}


/* Log levels as task_log stores them: what the log prints, in capitals. */
static const char *const log_level_names[] = {"DEBUG", "INFO", "WARN",
                                              "ERROR"};

const char *fl_store_log_level_name(int level) {
  return level >= FLOWLUA_LOG_DEBUG && level <= FLOWLUA_LOG_ERROR
             ? log_level_names[level - FLOWLUA_LOG_DEBUG]
             : "?";
}

int fl_store_log_level_parse(const char *name) {
  for (int i = FLOWLUA_LOG_DEBUG; name && i <= FLOWLUA_LOG_ERROR; i++)
    if (strcmp(name, log_level_names[i - FLOWLUA_LOG_DEBUG]) == 0) return i;
  return -1;
}
