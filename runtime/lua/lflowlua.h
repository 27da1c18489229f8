/*
 * lflowlua.h — the `flowlua` Lua modules (runtime/lua), for the API that
 * opens them in a new state and for the fuzz targets.
 *
 * Each luaopen_* pushes its module's table; lflowlib.c's `submodules`
 * places them under flow.http, flow.csv... in the `flowlua` module.
 */
#ifndef FL_LFLOWLUA_H
#define FL_LFLOWLUA_H

#include <stdint.h>

#include <lua.h>

#include "buf.h"
#include "http.h"

/* lflowlib.c: the `flowlua` module */
int luaopen_flowlua(lua_State *L);

/* ltask.c: while a script loads (between these two calls), flow.task
   remembers where each task name was defined and raises when a name is
   defined a second time, naming both places. The table lives in the
   registry, so modules the script requires are covered too. */
void fl_task_names_begin(lua_State *L);
void fl_task_names_end(lua_State *L);
/* Pushes the task named name that the last script loaded defined with
   flow.task while it loaded (its top level and the modules it required;
   not tasks made later inside a flow body) and returns 1; returns 0 with
   nothing pushed when there is none. A worker finds a job's task so. */
int fl_push_defined_task(lua_State *L, const char *name);

/* ltask.c: while a script loads, fl_claim_task_name records where task
   `name` is defined (the caller's line) and raises when it was defined
   before in this script; fl_keep_defined_task keeps the task at idx under
   its name, for fl_push_defined_task. Outside a load, both do nothing. */
void fl_claim_task_name(lua_State *L, const char *name);
void fl_keep_defined_task(lua_State *L, int idx, const char *name);
/* ltask.c: pushes a new task named name, with the options table at
   opts_idx (0: none; `who` names the caller in their errors) and the body
   at fn_idx, and returns it. Raises on a bad option. It claims no name:
   flow.task does that for the tasks a script defines. */
struct fl_taskdef;
struct fl_taskdef *fl_task_new(lua_State *L, const char *name, int opts_idx,
                               int fn_idx, const char *who);

/* ltask.c: pushes the node of a graph's call number index (what a task
   call, a map and a subflow call return). */
struct fl_graph;
void fl_push_node(lua_State *L, const struct fl_graph *g, uint32_t index);

/* lsubflow.c: a flow called in another flow's body (a subflow): the flow
   metatable's __call and :map, and flow.subflow(child, [params], [opts]).
   Each records a task run of the body's graph whose body runs the child
   flow (runtime/engine/subflow.c). */
int fl_flow_call(lua_State *L);
int fl_flow_map(lua_State *L);
int fl_flow_subflow(lua_State *L);

/* liocloexec.c: after luaL_openlibs, makes io.open, io.lines, io.tmpfile,
   io.popen, io.input and io.output return files whose descriptors are
   close-on-exec, so that children started by os.execute or io.popen do
   not inherit them. Raises (out of memory) like any lua_* call. */
int fl_open_io_cloexec(lua_State *L);

/* The primitives' modules, each pushing its table. */
int luaopen_flowlua_http(lua_State *L);
int luaopen_flowlua_shell(lua_State *L); /* pushes the function flow.shell */
int luaopen_flowlua_csv(lua_State *L);
int luaopen_flowlua_json(lua_State *L);
int luaopen_flowlua_fs(lua_State *L);

/* lparamlib.c: flow.param (typed params), set into the module table on
   top. */
void fl_open_params(lua_State *L);

/* lschedlib.c: flow.interval and flow.cron, set into the module table on
   top; fl_check_schedule raises unless idx holds a schedule. */
struct fl_schedule;
void fl_open_schedules(lua_State *L);
const struct fl_schedule *fl_check_schedule(lua_State *L, int idx,
                                            const char *who);

/* lhttplib.c, exposed for the fuzz targets (tests/fuzz): appends the query
   table at idx to url ('?' or '&' first), percent-encoded with its keys
   sorted, raising on a key or value of the wrong type; and pushes the
   response table of a finished request (headers keyed by lower-case name,
   repeated names joined with ", "). */
void fl_http_add_query(lua_State *L, fl_buf *url, int idx);
void fl_http_push_response(lua_State *L, const fl_http_req *req);

#endif
