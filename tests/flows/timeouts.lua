-- A timeout bounds each attempt, whether the task waits or spins in Lua, even
-- inside its own pcall; a timed-out attempt is retried like a failure, and
-- its to-be-closed variables are closed.
-- run: sleeping task
-- env: CASE=sleep
-- exit: 1
-- stderr: slow: TimedOut \(attempt 1 of 1, [0-9.]+ s\): task 'slow' timed out: attempt 1 ran longer than 0.2 s
-- stderr: cleanup: Success
-- max-seconds: 4
-- run: busy loop
-- env: CASE=spin
-- exit: 1
-- stderr: slow: TimedOut \(attempt 1 of 1
-- max-seconds: 4
-- run: busy loop that catches errors with pcall
-- env: CASE=pcall
-- exit: 1
-- stderr: slow: TimedOut \(attempt 1 of 1
-- max-seconds: 4
-- run: timed out, retried, timed out again
-- env: CASE=retry
-- exit: 1
-- stderr: slow: TimedOut \(attempt 1 of 2\)
-- stderr: slow: Retrying in
-- stderr: slow: TimedOut \(attempt 2 of 2, 
-- max-seconds: 4
-- run: debug.sethook() in the task does not remove its timeout
-- timeout: 20
-- env: CASE=unhook
-- exit: 1
-- stderr: slow: TimedOut \(attempt 1 of 1
-- stderr: cleanup: Success
-- max-seconds: 4
-- run: debug.sethook() at the top of the script does not remove timeouts
-- timeout: 20
-- env: CASE=unhook_at_load
-- exit: 1
-- stderr: slow: TimedOut \(attempt 1 of 1
-- max-seconds: 4
-- run: a task's own hooks are called, and its timeout still holds
-- timeout: 20
-- env: CASE=own_hook
-- exit: 1
-- stderr: slow: TimedOut \(attempt 1 of 1
-- stderr: cleanup: Success
-- max-seconds: 4
local flow = require "flowlua"
local check = require "lib.check"
local case = os.getenv("CASE")

local closed = 0
local hook_calls = { count = 0, line = 0 }
if case == "unhook_at_load" then debug.sethook() end
local slow = flow.task("slow", { timeout = 0.2, retries = case == "retry" and 1 or 0 }, function()
  local guard <close> = setmetatable({}, { __close = function() closed = closed + 1 end })
  if case == "unhook" then
    debug.sethook()
    debug.sethook((coroutine.running()))
    check.eq(debug.gethook(), nil, "no hook of the script's own")
  elseif case == "own_hook" then
    local function hook(event, line)
      hook_calls[event] = hook_calls[event] + 1
      if event == "line" then check.eq(math.type(line), "integer", "the line") end
    end
    debug.sethook(hook, "l", 500)
    local fn, mask, count = debug.gethook()
    check.eq(fn, hook, "debug.gethook returns the script's hook")
    check.eq(mask, "l", "and its mask")
    check.eq(count, 500, "and its count")
  end
  if case == "spin" or case == "unhook" or case == "unhook_at_load" or case == "own_hook" then
    while true do end
  elseif case == "pcall" then
    while true do pcall(function() while true do end end) end
  else
    flow.sleep(30)
  end
end)

local cleanup = flow.task("cleanup", { trigger = "all_done" }, function()
  if case == "sleep" or case == "retry" then
    check.eq(closed, case == "retry" and 2 or 1, "to-be-closed variables closed")
  end
  if case == "own_hook" then
    check.between(hook_calls.count, 1, math.huge, "the task's count hook was called")
    check.between(hook_calls.line, 1, math.huge, "the task's line hook was called")
  end
  if case == "unhook" then
    check.eq(debug.gethook(), nil, "the next task's coroutine carries no hook of the last")
  end
end)

return flow.define("timeouts", {}, function()
  cleanup():after(slow())
end)
