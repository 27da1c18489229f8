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
local flow = require "flowlua"
local check = require "lib.check"
local case = os.getenv("CASE")

local closed = 0
local slow = flow.task("slow", { timeout = 0.2, retries = case == "retry" and 1 or 0 }, function()
  local guard <close> = setmetatable({}, { __close = function() closed = closed + 1 end })
  if case == "spin" then
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
end)

return flow.define("timeouts", {}, function()
  cleanup():after(slow())
end)
