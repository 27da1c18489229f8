-- Serving a schedule checks the params before waiting for the first fire
-- time (a day away here): a required param missing, or a --param the flow
-- refuses, is bad usage at once, not at 03:00.
-- run: a required param missing
-- exit: 2
-- stderr: flow 'nightly': parameter 'day' is required \(a calendar date YYYY-MM-DD\) and has no default
-- not-stderr: next run at
-- run: a --param refused
-- args: {script} --param day=2024-02-29 --param n=0
-- exit: 2
-- stderr: flow 'nightly': parameter 'n' must be an integer >= 1, got '0'
-- not-stderr: next run at
local flow = require "flowlua"

local t = flow.task("t", function(p) return p.day end)

return flow.define("nightly", {
  params = { day = flow.param.date(), n = flow.param.int(1, { min = 1 }) },
  schedule = flow.cron("0 3 * * *"),
}, function(p)
  t(p)
end)
