-- A list of retry delays (its last entry repeating), max_retry_delay capping
-- backoff, and jitter staying within its fraction of the delay.
-- stderr: list: Retrying in 0.05 s \(attempt 1
-- stderr: list: Retrying in 0.15 s \(attempt 2
-- stderr: list: Retrying in 0.15 s \(attempt 3
-- stderr: capped: Retrying in 0.1 s \(attempt 1
-- stderr: capped: Retrying in 0.15 s \(attempt 2
-- stderr: capped: Retrying in 0.15 s \(attempt 3
-- stderr: verify: Success
local flow = require "flowlua"
local check = require "lib.check"

local function failing_until(n, starts)
  return function()
    local a = flow.context().attempt
    starts[a] = flow.now()
    if a < n then error("not yet") end
    return starts
  end
end

local list_starts, capped_starts, jitter_starts = {}, {}, {}
local list = flow.task("list", { retries = 3, retry_delay = { 0.05, 0.15 } },
  failing_until(4, list_starts))
local capped = flow.task("capped", { retries = 3, retry_delay = 0.1, backoff = 10,
  max_retry_delay = 0.15 }, failing_until(4, capped_starts))
local jittery = flow.task("jittery", { retries = 5, retry_delay = 0.1, retry_jitter = 0.5 },
  failing_until(6, jitter_starts))

-- The lower bounds are the point; the upper ones (3 s) catch an uncapped
-- delay (10 s at the capped task's third retry) and leave a loaded machine
-- seconds of slack.
local verify = flow.task("verify", function(l, c, j)
  check.between(l[2] - l[1], 0.045, 3, "list delay 1")
  check.between(l[4] - l[3], 0.145, 3, "list delay 3 repeats the last entry")
  check.between(c[4] - c[3], 0.145, 3, "capped delay")
  for i = 2, 6 do
    check.between(j[i] - j[i - 1], 0.049, 3, "jittered delay " .. i)
  end
end)

return flow.define("delays", {}, function()
  verify(list(), capped(), jittery())
end)
