-- flowlua backfill: every fire time of the schedule in a range, oldest
-- first, each run recorded with its scheduled_at; up to --concurrency runs
-- at once; a second backfill of the range runs only what did not succeed.
-- run: six hourly fire times, oldest first, each with its scheduled_at
-- args: backfill {script} --flow hourly --from 2026-01-01T00:00:00Z --to 2026-01-01T05:00:00Z
-- stderr: backfilled 6 fire time\(s\) from 2026-01-01T00:00:00Z to 2026-01-01T05:00:00Z: 6 ran \(0 failed, 0 cancelled\), 0 had succeeded before
-- file: ran.txt = {fixtures}/backfill-six.txt
-- run: a failed fire time fails the backfill; the next one runs only it
-- env: FAIL_AT=1767232800
-- before: 1 backfill {script} --flow hourly --from 2026-01-01T00:00:00Z --to 2026-01-01T05:00:00Z
-- args: backfill {script} --flow hourly --from 2026-01-01T00:00:00Z --to 2026-01-01T05:00:00Z --param fixed=true
-- stderr: 1 ran \(0 failed, 0 cancelled\), 5 had succeeded before
-- after: 0 {script} --flow count --param want=7
-- run: three runs at once with --concurrency 3 (the server answers once all three ask)
-- server: http
-- env: STALL=3
-- args: backfill {script} --flow hourly --from 2026-01-01T00:00:00Z --to 2026-01-01T02:00:00Z --concurrency 3
-- stderr: 3 ran \(0 failed, 0 cancelled\)
-- run: a range that ends before it starts
-- args: backfill {script} --flow hourly --from 2026-01-02 --to 2026-01-01
-- exit: 2
-- stderr: the range must not end before it starts
-- run: a flow without a schedule
-- args: backfill {script} --flow count --from 2026-01-01 --to 2026-01-02
-- exit: 2
-- stderr: flow 'count' has no schedule
-- run: --to is required
-- args: backfill {script} --flow hourly --from 2026-01-01
-- exit: 2
-- stderr: backfill needs --from TIME and --to TIME
local flow = require "flowlua"

local t = flow.task("t", function(fixed)
  local at = math.floor(flow.context().scheduled_at)
  local f = assert(io.open("ran.txt", "a"))
  f:write(at, "\n")
  f:close()
  if os.getenv("STALL") then
    local r = flow.http.get(os.getenv("TEST_HTTP_URL") .. "/stall?together=3&group=bf&seconds=30")
    local together = r:json().together
    assert(together == 3, "runs in flight together: " .. tostring(together))
  end
  if not fixed and tostring(at) == os.getenv("FAIL_AT") then error("fails at " .. at) end
end)

local count = flow.task("count", function(want)
  local n = 0
  for _ in io.lines("ran.txt") do n = n + 1 end
  assert(n == want, ("%d runs in all, want %d"):format(n, want))
end)

return {
  flow.define("hourly", { params = { fixed = false }, schedule = flow.interval { hours = 1 } },
    function(p) t(p.fixed) end),
  flow.define("count", { params = { want = 0 } }, function(p) count(p.want) end),
}
