-- Schedule options are checked when the script loads: every bad value is
-- an error naming the option (exit 2, nothing runs).
-- run: unknown overlap policy
-- env: CASE=overlap
-- exit: 2
-- stderr: flow.interval: option 'overlap' must be one of skip, queue, queue_all, cancel_other, allow, got sometimes
-- run: unknown interval field
-- env: CASE=field
-- exit: 2
-- stderr: flow.interval: unknown field 'secs' \(fields: seconds, minutes
-- run: zero interval
-- env: CASE=zero
-- exit: 2
-- stderr: flow.interval: the interval must be more than 0 seconds
-- run: max_runs must be a whole number
-- env: CASE=max_runs
-- exit: 2
-- stderr: flow.interval: option 'max_runs' must be a whole number >= 1, got 0
-- run: until must be a time
-- env: CASE=until
-- exit: 2
-- stderr: flow.interval: option 'until': .*tomorrow
-- run: catchup must be a boolean
-- env: CASE=catchup
-- exit: 2
-- stderr: flow.interval: option 'catchup' must be true or false, got string
-- run: schedule must come from flow.interval or flow.cron
-- env: CASE=schedule
-- exit: 2
-- stderr: option 'schedule' must be made by flow.interval or flow.cron, got table
-- run: start as ISO 8601 text
-- env: CASE=iso
-- args: --once {script}
-- stderr: noop: Success
local flow = require "flowlua"
local case = os.getenv("CASE")

local schedule
if case == "overlap" then schedule = flow.interval { seconds = 1, overlap = "sometimes" }
elseif case == "field" then schedule = flow.interval { secs = 1 }
elseif case == "zero" then schedule = flow.interval { seconds = 0 }
elseif case == "max_runs" then schedule = flow.interval { seconds = 1, max_runs = 0 }
elseif case == "until" then schedule = flow.interval { seconds = 1, ["until"] = "tomorrow" }
elseif case == "catchup" then schedule = flow.interval { seconds = 1, catchup = "yes" }
elseif case == "schedule" then schedule = { seconds = 1 }
else schedule = flow.interval { minutes = 5, start = "2026-01-01T00:00:00Z", ["until"] = "2099-12-31T23:59:59+01:00" }
end

local noop = flow.task("noop", function() end)
return flow.define("options", { schedule = schedule }, function() noop() end)
