/*
 * resume.h — preparing a run that resumes a stored one (flowlua_resume).
 * Errors are set on rt with fl_set_error.
 */
#ifndef FL_RESUME_H
#define FL_RESUME_H

#include "engine.h"

/* Loads the stored run run_ref of the flow into rt->resume. */
int fl_resume_load(flowlua *rt, const char *flow_name, const char *run_ref);

/* Sets the stored params into the table at params (over the defaults,
   table at defaults): a stored name the flow no longer declares is an
   error. */
int fl_resume_push_params(flowlua *rt, const char *flow, int defaults,
                          int params);

/* After the build: compares g's keys with the stored run's (refusing a
   changed graph unless force) and marks from_task (may be NULL) and its
   downstream to run again. */
int fl_resume_check(flowlua *rt, fl_graph *g, int force,
                    const char *from_task);

/* Drops a prepared resume that did not start. */
void fl_resume_forget(flowlua *rt);

#endif
