-- flowlua next prints a schedule's next fire times, one per line, in ISO
-- 8601 with the offset; --from counts from a given time, --count says how
-- many; a schedule that ends (until) prints what is left.
-- run: an interval from a given time
-- args: next --from 2026-12-31T23:40:00Z --count 3 {script}
-- env: TZ=UTC
-- stdout: ^2026-12-31T23:45:00\+00:00\n2027-01-01T00:00:00\+00:00\n2027-01-01T00:15:00\+00:00\n$
-- run: until ends the list
-- args: next --from 2027-01-01T00:20:00Z {script}
-- env: TZ=UTC
-- stdout: ^2027-01-01T00:30:00\+00:00\n2027-01-01T00:45:00\+00:00\n2027-01-01T01:00:00\+00:00\n$
-- stderr: the schedule ends after 3 fire time\(s\)
-- run: a time without an offset is read in the schedule's zone
-- args: next --from 2027-01-01T00:20:00 --count 1 {script}
-- env: TZ=UTC
-- stdout: ^2027-01-01T00:30:00\+00:00\n$
-- run: bad --from
-- args: next --from yesterday {script}
-- exit: 2
-- stderr: --from: .*yesterday
-- run: bad --count
-- args: next --count 0 {script}
-- exit: 2
-- stderr: --count expects a whole number from 1 to 100000, got '0'
-- run: --count without next
-- args: --count 3 {script}
-- exit: 2
-- stderr: --count goes with 'flowlua next'
-- run: a flow without a schedule
-- args: next {script}
-- env: NO_SCHEDULE=1
-- exit: 2
-- stderr: flow 'next' has no schedule
local flow = require "flowlua"
local noop = flow.task("noop", function() end)
return flow.define("next", {
  schedule = not os.getenv("NO_SCHEDULE") and flow.interval { minutes = 15, ["until"] = "2027-01-01T01:00:00Z" } or nil,
}, function() noop() end)
