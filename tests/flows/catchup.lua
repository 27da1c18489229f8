-- catchup: fire times that passed while no flowlua served the flow run
-- when it serves again, one after another, each with its own fire time;
-- those older than catchup_window are logged as missed.
--
-- The first process (before:) serves one run that takes 0.6 s, so the
-- fire times of the next 0.6 s pass without a run (skipped, not claimed);
-- the second process finds them after the last claimed fire time.
-- run: the missed fire times run first, in order
-- before: 0 {script} --max-runs 1
-- args: {script} --max-runs 3
-- stderr: catchup: running [3-9] fire time\(s\) missed while flowlua was not serving, from \S+, one after another
-- stderr: served 3 run\(s\): 0 failed
-- max-seconds: 10
-- run: fire times older than catchup_window are missed, not run
-- before: 0 {script} --max-runs 1
-- args: {script} --max-runs 1
-- env: WINDOW=0.25
-- stderr: catchup: [1-9] fire time\(s\) from \S+ missed while flowlua was not serving are older than catchup_window
-- stderr: catchup: running [1-3] fire time\(s\)
-- max-seconds: 10
-- run: the first time there is nothing to catch up
-- args: {script} --max-runs 1
-- stderr: no earlier fire time recorded: nothing to catch up
-- run: without a history there is nothing to catch up from
-- args: {script} --max-runs 1 --state :memory:
-- stderr: catchup needs the run history
local flow = require "flowlua"

local work = flow.task("work", function()
  local ctx = flow.context()
  local f = io.open("first.marker")
  if not f then
    assert(io.open("first.marker", "w")):close()
    flow.sleep(0.6)
    return
  end
  f:close()
  -- a catch-up run is for a fire time that passed before it started
  assert(ctx.scheduled_at < ctx.started_at, "scheduled_at is the fire time")
end)

return flow.define("catchup", {
  schedule = flow.interval {
    seconds = 0.1,
    catchup = true,
    catchup_window = tonumber(os.getenv("WINDOW") or "0"),
  },
}, function() work() end)
