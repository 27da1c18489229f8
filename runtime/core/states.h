/*
 * states.h — the names of task run states, flow run states and status
 * codes, as logs, the history and every report spell them.
 *
 * A leaf: the tables come from the X-macro lists of flowlua.h, so a new
 * state or status has one home.
 */
#ifndef FL_STATES_H
#define FL_STATES_H

/* "Success", "Retrying"... for a flowlua_task_state; "?" when out of range. */
const char *fl_task_state_name(int state);
/* "Running", "Crashed"... for a flowlua_flow_state; "?" when out of range. */
const char *fl_flow_state_name(int state);
/* The sentence for a FLOWLUA_* status code ("unknown status" otherwise). */
const char *fl_status_text(int status);
/* The code's own name ("FLOWLUA_ENOFLOW"), or "unknown". */
const char *fl_status_name(int status);

#endif
