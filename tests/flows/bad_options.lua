-- Bad options exit 2 with a message naming the function, the option and the
-- script line, before any task runs. The case picks the broken call.
-- run: negative retry count
-- env: CASE=1
-- exit: 2
-- stderr: bad_options.lua:\d+: .*flow.task 't': option 'retries' must be a whole number from 0, got -1
-- not-stderr: Running
-- run: fractional retry count
-- env: CASE=2
-- exit: 2
-- stderr: bad_options.lua:\d+: .*option 'retries' must be a whole number, got 1.5
-- not-stderr: Running
-- run: retries as a string
-- env: CASE=3
-- exit: 2
-- stderr: bad_options.lua:\d+: .*option 'retries' must be a whole number, got string
-- not-stderr: Running
-- run: non-function task body
-- env: CASE=4
-- exit: 2
-- stderr: bad_options.lua:\d+: .*flow.task 't': the task body must be a function, got number
-- not-stderr: Running
-- run: missing task body
-- env: CASE=5
-- exit: 2
-- stderr: bad_options.lua:\d+: .*the task body must be a function, got no value
-- not-stderr: Running
-- run: empty task name
-- env: CASE=6
-- exit: 2
-- stderr: bad_options.lua:\d+: .*bad argument #1 to 'task' \(task name must not be empty\)
-- not-stderr: Running
-- run: unknown task option
-- env: CASE=7
-- exit: 2
-- stderr: bad_options.lua:\d+: .*flow.task 't': unknown option 'retry' \(options: retries, 
-- not-stderr: Running
-- run: negative retry delay
-- env: CASE=8
-- exit: 2
-- stderr: bad_options.lua:\d+: .*option 'retry_delay' must be at least 0, got -1
-- not-stderr: Running
-- run: bad retry delay list
-- env: CASE=9
-- exit: 2
-- stderr: bad_options.lua:\d+: .*option 'retry_delay' entry 2 must be a number of seconds >= 0, got x
-- not-stderr: Running
-- run: empty retry delay list
-- env: CASE=10
-- exit: 2
-- stderr: bad_options.lua:\d+: .*option 'retry_delay' must not be an empty list
-- not-stderr: Running
-- run: backoff below 1
-- env: CASE=11
-- exit: 2
-- stderr: bad_options.lua:\d+: .*option 'backoff' must be between 1 and 1e\+06, got 0.5
-- not-stderr: Running
-- run: jitter above 1
-- env: CASE=12
-- exit: 2
-- stderr: bad_options.lua:\d+: .*option 'retry_jitter' must be between 0 and 1, got 2
-- not-stderr: Running
-- run: zero timeout
-- env: CASE=13
-- exit: 2
-- stderr: bad_options.lua:\d+: .*option 'timeout' must be more than 0 seconds
-- not-stderr: Running
-- run: unknown trigger rule
-- env: CASE=14
-- exit: 2
-- stderr: bad_options.lua:\d+: .*unknown trigger rule 'sometimes' \(rules: all_success, 
-- not-stderr: Running
-- run: trigger of the wrong type
-- env: CASE=15
-- exit: 2
-- stderr: bad_options.lua:\d+: .*option 'trigger' must be a rule name or a function, got number
-- not-stderr: Running
-- run: retry_if not a function
-- env: CASE=16
-- exit: 2
-- stderr: bad_options.lua:\d+: .*option 'retry_if' must be a function, got boolean
-- not-stderr: Running
-- run: hook not a function
-- env: CASE=17
-- exit: 2
-- stderr: bad_options.lua:\d+: .*option 'on_failure' must be a function, got string
-- not-stderr: Running
-- run: tags not a list
-- env: CASE=18
-- exit: 2
-- stderr: bad_options.lua:\d+: .*option 'tags' must be a list of names, got string
-- not-stderr: Running
-- run: empty tag
-- env: CASE=19
-- exit: 2
-- stderr: bad_options.lua:\d+: .*option 'tags' entry 1 must be a non-empty string
-- not-stderr: Running
-- run: flow body not a function
-- env: CASE=20
-- exit: 2
-- stderr: bad_options.lua:\d+: .*flow.define 'f': the flow body must be a function, got string
-- not-stderr: Running
-- run: unknown flow option
-- env: CASE=21
-- exit: 2
-- stderr: bad_options.lua:\d+: .*flow.define 'f': unknown option 'concurency' \(options: params, schedule, concurrency, limits, on_success, on_failure, on_cancel\)
-- not-stderr: Running
-- run: zero flow concurrency
-- env: CASE=22
-- exit: 2
-- stderr: bad_options.lua:\d+: .*option 'concurrency' must be a whole number from 1, got 0
-- not-stderr: Running
-- run: params not a table
-- env: CASE=23
-- exit: 2
-- stderr: bad_options.lua:\d+: .*option 'params' must be a table, got number
-- not-stderr: Running
-- run: bad limit
-- env: CASE=24
-- exit: 2
-- stderr: bad_options.lua:\d+: .*option 'limits.db' must be a whole number from 1, got 0
-- not-stderr: Running
-- run: map without a list
-- env: CASE=25
-- exit: 2
-- stderr: bad_options.lua:\d+: .*task 't':map needs a list \(or a node\) to map over
-- not-stderr: Running
-- run: node from another flow
-- args: check {script}
-- env: CASE=26
-- exit: 2
-- stderr: a node from another flow was passed to task 'b'
-- not-stderr: Running
local flow = require "flowlua"
local case = tonumber(os.getenv("CASE"))
local function noop() end
local cases = {
  function() return flow.task('t', { retries = -1 }, noop) end, -- negative retry count
  function() return flow.task('t', { retries = 1.5 }, noop) end, -- fractional retry count
  function() return flow.task('t', { retries = 'three' }, noop) end, -- retries as a string
  function() return flow.task('t', { retries = 1 }, 42) end, -- non-function task body
  function() return flow.task('t') end, -- missing task body
  function() return flow.task('', noop) end, -- empty task name
  function() return flow.task('t', { retry = 3 }, noop) end, -- unknown task option
  function() return flow.task('t', { retry_delay = -1 }, noop) end, -- negative retry delay
  function() return flow.task('t', { retry_delay = { 1, 'x' } }, noop) end, -- bad retry delay list
  function() return flow.task('t', { retry_delay = {} }, noop) end, -- empty retry delay list
  function() return flow.task('t', { backoff = 0.5 }, noop) end, -- backoff below 1
  function() return flow.task('t', { retry_jitter = 2 }, noop) end, -- jitter above 1
  function() return flow.task('t', { timeout = 0 }, noop) end, -- zero timeout
  function() return flow.task('t', { trigger = 'sometimes' }, noop) end, -- unknown trigger rule
  function() return flow.task('t', { trigger = 1 }, noop) end, -- trigger of the wrong type
  function() return flow.task('t', { retry_if = true }, noop) end, -- retry_if not a function
  function() return flow.task('t', { on_failure = 'log' }, noop) end, -- hook not a function
  function() return flow.task('t', { tags = 'db' }, noop) end, -- tags not a list
  function() return flow.task('t', { tags = { '' } }, noop) end, -- empty tag
  function() return flow.define('f', {}, 'body') end, -- flow body not a function
  function() return flow.define('f', { concurency = 2 }, noop) end, -- unknown flow option
  function() return flow.define('f', { concurrency = 0 }, noop) end, -- zero flow concurrency
  function() return flow.define('f', { params = 3 }, noop) end, -- params not a table
  function() return flow.define('f', { limits = { db = 0 } }, noop) end, -- bad limit
  function() return flow.define('f', {}, function() flow.task('t', noop):map() end) end, -- map without a list
  false,
}
if cases[case] then
  local built = cases[case]()
  if getmetatable(built) == "flowlua" and tostring(built):match("^flow") then return built end
end
-- The foreign-node case: flow "one" keeps a node, flow "two" uses it.
local kept
local a = flow.task("a", noop)
local b = flow.task("b", noop)
return {
  flow.define("one", {}, function() kept = a() end),
  flow.define("two", {}, function() b(kept or a()) end),
}
