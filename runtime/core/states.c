/*
 * states.c — names of states and status codes (states.h), from the lists
 * in flowlua.h.
 */
#include "states.h"

#include "flowlua.h"

const char *fl_status_text(int status) {
  switch (status) {
#define FLOWLUA_STATUS_TEXT(name, code, text)                                  \
  case code:                                                                   \
    return text;
    FLOWLUA_STATUS_MAP(FLOWLUA_STATUS_TEXT)
#undef FLOWLUA_STATUS_TEXT
  }
  return "unknown status";
}

const char *fl_task_state_name(int state) {
  static const char *const names[] = {
#define FLOWLUA_STATE_TEXT(name, text) text,
      FLOWLUA_TASK_STATE_MAP(FLOWLUA_STATE_TEXT)};
  return state >= 0 && state < FLOWLUA_TASK_STATE_COUNT ? names[state] : "?";
}

const char *fl_flow_state_name(int state) {
  static const char *const names[] = {
      FLOWLUA_FLOW_STATE_MAP(FLOWLUA_STATE_TEXT)};
#undef FLOWLUA_STATE_TEXT
  return state >= 0 && state < FLOWLUA_FLOW_STATE_COUNT ? names[state] : "?";
}

const char *fl_status_name(int status) {
  switch (status) {
#define FLOWLUA_STATUS_NAME(name, code, text)                                  \
  case code:                                                                   \
    return "FLOWLUA_" #name;
    FLOWLUA_STATUS_MAP(FLOWLUA_STATUS_NAME)
#undef FLOWLUA_STATUS_NAME
  }
  return "unknown";
}
