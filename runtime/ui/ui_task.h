/*
 * ui_task.h — a task run in the web UI: its page (/runs/ID/tasks/KEY) and
 * its JSON (/api/runs/ID/tasks/KEY), on the public API only.
 */
#ifndef FL_UI_TASK_H
#define FL_UI_TASK_H

#include "flowlua.h"
#include "ui_reply.h"

/*
 * Answers url (percent-decoded) into r and returns 1 when it names a task
 * run: GET /api/runs/ID/tasks/KEY, flowlua_report_task_run's JSON (404 for
 * an unknown run or key), or GET /runs/ID/tasks/KEY, the page task.html.
 * KEY is the rest of the path after "/tasks/", whatever it holds (a map
 * element's "fetch[3]", a '/' or '#' of a task name); ID holds no '/'.
 * 0 for any other url, r untouched.
 */
int fl_ui_task_route(flowlua *rt, const char *url, fl_ui_reply *r);

#endif
