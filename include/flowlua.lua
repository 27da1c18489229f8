---@meta flowlua
-- LuaLS definitions of the `flowlua` module, for editors: completion and
-- type checks in flow scripts. Installed to share/flowlua/luals; point
-- "workspace.library" of .luarc.json there. tests/flows/luals_names.lua
-- checks that every name declared here is exported by the module and
-- every exported name is declared.

---@class flowlua
local flow = {}

---@alias flowlua.TaskState "Pending"|"Running"|"Success"|"Failed"|"Retrying"|"TimedOut"|"Skipped"|"TriggerFailed"|"Cancelled"|"Cached"
---@alias flowlua.Trigger "all_success"|"all_done"|"all_failed"|"any_success"|"any_failed"|"none_failed"|"none_skipped"|"min_one_success"|"always"|fun(upstream: table<string, flowlua.TaskState>): boolean

---@class flowlua.HookInfo
---@field task string task key
---@field state flowlua.TaskState
---@field attempt integer
---@field error string?
---@field result any on_success only
---@field delay number? on_retry only: seconds until the next attempt

---@class flowlua.TaskOptions
---@field retries integer? attempts after the first
---@field retry_delay number|number[]? seconds, or one per retry
---@field backoff number? multiplier per retry
---@field max_retry_delay number?
---@field retry_jitter number? 0..1
---@field retry_if fun(err: any): boolean?
---@field timeout number? seconds per attempt
---@field trigger flowlua.Trigger?
---@field tags string[]? for the flow's limits
---@field cache_key fun(...): string? the task's arguments to a cache key
---@field cache_for number? seconds a cached result stays good
---@field on_success fun(ctx: flowlua.Context, info: flowlua.HookInfo)? called as on_success(ctx, info)
---@field on_failure fun(ctx: flowlua.Context, info: flowlua.HookInfo)? called as on_failure(ctx, info)
---@field on_retry fun(ctx: flowlua.Context, info: flowlua.HookInfo)? called as on_retry(ctx, info)

---@class flowlua.Node
local Node = {}
---Ordering edges: this node starts after the given nodes (or lists of them).
---@param ... flowlua.Node|flowlua.Node[]
---@return flowlua.Node
function Node:after(...) end

---@class flowlua.Task
---@field name string
---@field fn function
---@overload fun(...): flowlua.Node
local Task = {}
---One run per element of the list(s); arguments wrapped in flow.unmapped pass whole.
---@param ... any
---@return flowlua.Node
function Task:map(...) end

---@class flowlua.Schedule

---@class flowlua.FlowOptions
---@field params table<string, any>? defaults, overridden by --param
---@field concurrency integer?
---@field limits table<string, integer>? tag -> tasks at once
---@field schedule flowlua.Schedule?

---@class flowlua.Flow
---@field name string
---@field params table<string, any> its params' defaults
---Called in another flow's body: a subflow, run as a task run of that
---flow; the node's result is the child's result table.
---@overload fun(params: table?): flowlua.Node
local Flow = {}
---One run of the flow as a subflow per params table of the list.
---@param list table[]|flowlua.Node
---@return flowlua.Node
function Flow:map(list) end

---@class flowlua.Context
---@field flow string
---@field run_id string
---@field task string? the running task's key
---@field task_name string?
---@field attempt integer?
---@field map_index integer?
---@field params table
---@field scheduled_at number epoch seconds
---@field started_at number epoch seconds

---@class flowlua.ScheduleOptions
---@field overlap "skip"|"queue"|"queue_all"|"cancel_other"|"allow"?
---@field catchup boolean?
---@field catchup_window number? seconds
---@field max_runs integer?
---@field until number|string? epoch seconds or ISO 8601

---@class flowlua.IntervalOptions: flowlua.ScheduleOptions
---@field seconds number?
---@field minutes number?
---@field hours number?
---@field days number?
---@field start number|string?

---@class flowlua.CronOptions: flowlua.ScheduleOptions
---@field tz string? IANA zone name; default local time
---@field dst { missing: "shift"|"skip"?, repeated: "first"|"last"|"both"? }?

---Defines a task.
---@overload fun(name: string, fn: function): flowlua.Task
---@param name string
---@param opts flowlua.TaskOptions
---@param fn function
---@return flowlua.Task
function flow.task(name, opts, fn) end

---Defines a flow; the body calls tasks to build the graph.
---@overload fun(name: string, body: fun(params: table)): flowlua.Flow
---@param name string
---@param opts flowlua.FlowOptions
---@param body fun(params: table)
---@return flowlua.Flow
function flow.define(name, opts, body) end

---Calls a flow as a subflow inside a flow body, with task options for the
---call (retries, timeout, trigger, hooks...; not worker, queue).
---@param child flowlua.Flow
---@param params table?
---@param opts flowlua.TaskOptions?
---@return flowlua.Node
function flow.subflow(child, params, opts) end

---Passes a list whole to task:map instead of mapping over it.
---@param value any
---@return any
function flow.unmapped(value) end

---Fails the task now, without retries.
---@param message string?
function flow.fail(message) end

---Ends the task Skipped.
---@param message string?
function flow.skip(message) end

---@return flowlua.Context
function flow.context() end

---Waits without blocking other tasks.
---@param seconds number
function flow.sleep(seconds) end

---Monotonic seconds.
---@return number
function flow.now() end

---Wall-clock seconds since the epoch.
---@return number
function flow.time() end

---@param name string
---@param default string?
---@return string?
function flow.env(name, default) end

---An environment value masked in every log line and record.
---@param name string
---@return string
function flow.secret(name) end

---A typed flow parameter: a value of `params` in flow.define. Checked
---before anything runs; the body receives the plain value.
---@class flowlua.Param

---@class flowlua.ParamBounds
---@field min number?
---@field max number?

---Typed params: a default of nil makes the param required.
flow.param = {}

---@param default integer?
---@param opts flowlua.ParamBounds?
---@return flowlua.Param
function flow.param.int(default, opts) end

---@param default number?
---@param opts flowlua.ParamBounds?
---@return flowlua.Param
function flow.param.number(default, opts) end

---@param default string?
---@return flowlua.Param
function flow.param.string(default) end

---@param default boolean?
---@return flowlua.Param
function flow.param.bool(default) end

---@param default string? a calendar date, "YYYY-MM-DD"
---@return flowlua.Param
function flow.param.date(default) end

---@param choices string[]
---@param default string? one of the choices
---@return flowlua.Param
function flow.param.enum(choices, default) end

---@param opts flowlua.IntervalOptions
---@return flowlua.Schedule
function flow.interval(opts) end

---@param expr string five fields, or @daily and the like
---@param opts flowlua.CronOptions?
---@return flowlua.Schedule
function flow.cron(expr, opts) end

---@class flowlua.ShellOptions
---@field shell boolean? run a string through /bin/sh
---@field cwd string?
---@field env table<string, string>?
---@field clear_env boolean?
---@field stdin string?
---@field timeout number? seconds; the child is killed after it
---@field check boolean? fail on a non-zero exit
---@field max_output integer?

---@class flowlua.ShellResult
---@field code integer
---@field signal integer?
---@field stdout string
---@field stderr string
---@field ok boolean

---Runs a child process; other tasks go on while it runs.
---@param argv string[]|string
---@param opts flowlua.ShellOptions?
---@return flowlua.ShellResult
function flow.shell(argv, opts) end

---@type string
flow.version = ""

---Logs under the current task: `fmt` with string.format's rules when it is
---a string holding '%' and values follow; otherwise every argument joined
---with spaces, as print() joins them, tables as JSON.
---@class flowlua.log
flow.log = {}
---@param fmt any
---@param ... any
function flow.log.debug(fmt, ...) end
---@param fmt any
---@param ... any
function flow.log.info(fmt, ...) end
---@param fmt any
---@param ... any
function flow.log.warn(fmt, ...) end
---@param fmt any
---@param ... any
function flow.log.error(fmt, ...) end

---@class flowlua.HttpOptions
---@field query table<string, any>?
---@field headers table<string, string>?
---@field body string?
---@field json any? a body sent as JSON
---@field timeout number?
---@field follow boolean? follow redirects
---@field verify boolean? TLS verification (default true)
---@field ca_file string?
---@field max_body integer? bytes
---@field compressed boolean? send Accept-Encoding and decode a compressed body (default false)

---@class flowlua.Response
---@field status integer
---@field ok boolean
---@field headers table<string, string> lower-case names
---@field body string
---@field url string
---@field method string
---@field elapsed number seconds
local Response = {}
---@return any
function Response:json() end
---@return flowlua.Response
function Response:raise_for_status() end

---@class flowlua.http
flow.http = {}
---@param url string
---@param opts flowlua.HttpOptions?
---@return flowlua.Response
function flow.http.get(url, opts) end
---@param url string
---@param opts flowlua.HttpOptions?
---@return flowlua.Response
function flow.http.post(url, opts) end
---@param url string
---@param opts flowlua.HttpOptions?
---@return flowlua.Response
function flow.http.put(url, opts) end
---@param url string
---@param opts flowlua.HttpOptions?
---@return flowlua.Response
function flow.http.patch(url, opts) end
---@param url string
---@param opts flowlua.HttpOptions?
---@return flowlua.Response
function flow.http.delete(url, opts) end
---@param method string
---@param url string
---@param opts flowlua.HttpOptions?
---@return flowlua.Response
function flow.http.request(method, url, opts) end

---@class flowlua.json
flow.json = {}
---@class flowlua.json.encode_options
---@field indent? integer spaces a level, 0 to 16 (default 0: one line)
---@field sort_keys? boolean every object's keys in byte order

---@param value any
---@param opts? flowlua.json.encode_options
---@return string
function flow.json.encode(value, opts) end
---@param text string
---@return any
function flow.json.decode(text) end
---@param path string
---@return any
function flow.json.read(path) end
---Writes atomically (temporary file, fsync, rename).
---@param path string
---@param value any
function flow.json.write(path, value) end
---Marks t (or a new table) to encode as an array, even when empty.
---@param t table?
---@return table
function flow.json.array(t) end
---@type lightuserdata
flow.json.null = nil
---@type lightuserdata
flow.json.empty_array = nil
---@type table
flow.json.array_mt = {}

---@class flowlua.CsvOptions
---@field header boolean|string[]? records keyed by column names
---@field delimiter string?
---@field quote string?

---@class flowlua.CsvRowsOptions: flowlua.CsvOptions
---@field reuse boolean? every record in one table, refilled

---@class flowlua.CsvWriter
local CsvWriter = {}
---@param row table
function CsvWriter:write(row) end
---The same as write.
---@param row table
function CsvWriter:write_row(row) end
---@param rows table[]
function CsvWriter:write_rows(rows) end
---Flushes, fsyncs and renames over the target.
function CsvWriter:close() end
---Drops what was written; the target is left as it was.
function CsvWriter:abort() end

---@class flowlua.csv
flow.csv = {}
---@param path string
---@param opts flowlua.CsvOptions?
---@return table[]
function flow.csv.read(path, opts) end
---Streams records in constant memory: for record, line in csv.rows(path) do ... end
---@param path string
---@param opts flowlua.CsvRowsOptions?
---@return fun(): table?, integer?
function flow.csv.rows(path, opts) end
---@param path string
---@param rows table[]
---@param opts flowlua.CsvOptions?
function flow.csv.write(path, rows, opts) end
---@param path string
---@param opts flowlua.CsvOptions?
---@return flowlua.CsvWriter
function flow.csv.writer(path, opts) end
---@param path string
---@param rows table[]
---@param opts flowlua.CsvOptions?
function flow.csv.append(path, rows, opts) end
---@param rows table[]
---@param opts flowlua.CsvOptions?
---@return string
function flow.csv.encode(rows, opts) end
---@param text string
---@param opts flowlua.CsvOptions?
---@return table[]
function flow.csv.decode(text, opts) end

---@class flowlua.fs
flow.fs = {}
---@param path string
---@return string
function flow.fs.read(path) end
---Writes atomically (temporary file, fsync, rename).
---@param path string
---@param data string
function flow.fs.write(path, data) end
---@param path string
---@return boolean
function flow.fs.exists(path) end
---Creates the folder and its parents.
---@param path string
function flow.fs.mkdir(path) end
---@param path string
function flow.fs.remove(path) end

return flow
