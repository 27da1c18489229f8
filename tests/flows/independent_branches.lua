-- A task waiting 1 s to retry does not delay an independent branch, even
-- with one task slot: the waiting task gives its slot back, so the branch
-- ends before the retry's second attempt does (however slow the machine).
-- args: --concurrency 1 {script}
-- stderr: verify: Success
local flow = require "flowlua"
local check = require "lib.check"

local t0 = flow.now()
local branch_done
local retrying = flow.task("retrying", { retries = 1, retry_delay = 1 }, function()
  if flow.context().attempt == 1 then error("first attempt fails") end
  return flow.now() - t0
end)
local step = flow.task("step", function(prev)
  flow.sleep(0.05)
  return (prev or 0) + 1
end)
local last = flow.task("last", function(n)
  branch_done = flow.now() - t0
  return n
end)
local verify = flow.task("verify", function(retry_end, steps)
  check.eq(steps, 4, "steps in the independent branch")
  check.between(retry_end, 1.0, math.huge, "retried task finished (s)")
  check.between(branch_done, 0, retry_end, "independent branch finished (s)")
end)

return flow.define("independent", {}, function()
  local r = retrying()
  local s = step(step(step(step())))
  verify(r, last(s))
end)
