-- Misusing tasks at run time fails the attempt with a clear message; the run
-- goes on with the rest of the graph.
-- run: a task calling a task
-- exit: 1
-- stderr: caller: Failed \(attempt 1 of 1, [0-9.]+ s\): .*task_misuse.lua:\d+: task 'inner' called inside task 'caller': tasks are called from a flow body, not from other tasks
-- stderr: independent: Success
-- run: coroutine.yield in a task body
-- env: CASE=yield
-- exit: 1
-- stderr: yielder: Failed .*task yielded outside flowlua's waiting primitives
-- run: flow.sleep inside a coroutine the task made
-- env: CASE=nested_sleep
-- exit: 1
-- stderr: nested: Failed .*flow.sleep cannot wait here
-- run: error with a non-string value
-- env: CASE=table_error
-- exit: 1
-- stderr: thrower: Failed .*\(error object is a table value\)
-- run: flow.skip ends the task Skipped and the run still succeeds
-- env: CASE=skip
-- stderr: skipper: Skipped: not today
-- stderr: ^  skipper +Skipped
-- stderr: flow 'misuse' Success
local flow = require "flowlua"
local case = os.getenv("CASE")

local inner = flow.task("inner", function() return 1 end)
local caller = flow.task("caller", function() return inner() end)
local independent = flow.task("independent", function() return 2 end)
local yielder = flow.task("yielder", function() coroutine.yield(1) end)
local nested = flow.task("nested", function()
  local co = coroutine.wrap(function() flow.sleep(0.01) end)
  co()
end)
local thrower = flow.task("thrower", function() error({ code = 7 }) end)
local skipper = flow.task("skipper", function() flow.skip("not today") end)

return flow.define("misuse", {}, function()
  if case == "yield" then return yielder() end
  if case == "nested_sleep" then return nested() end
  if case == "table_error" then return thrower() end
  if case == "skip" then return skipper() end
  caller()
  independent()
end)
