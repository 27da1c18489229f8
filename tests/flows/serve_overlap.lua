-- What a fire time that comes due during a run does, per overlap policy,
-- with a 0.2 s interval and a first run of 0.5 s: skip it, queue one run
-- (more fires collapse into it), queue them all, or cancel the running
-- run. Each run knows the fire time it ran for (scheduled_at) and when it
-- started. Also: max_runs and until in the schedule.
-- run: queue: one run waits, the next fire collapses into it
-- args: --max-runs 2 {script}
-- env: CASE=queue
-- stderr: fire time \S+ queued \(1 waiting\): run [0-9a-f-]+ is still going \(overlap = queue\)
-- stderr: fire time \S+ skipped: a run is already queued behind run [0-9a-f-]+ \(overlap = queue\)
-- stderr: record: Success
-- stderr: served 2 run\(s\): 0 failed, 0 cancelled; fire times: 1 queued, [1-9] skipped, 0 missed
-- max-seconds: 10
-- run: queue_all: every fire waits its turn, in order
-- args: --max-runs 3 {script}
-- env: CASE=queue_all
-- stderr: queued \(2 waiting\): run [0-9a-f-]+ is still going \(overlap = queue_all\)
-- stderr: served 3 run\(s\): 0 failed, 0 cancelled; fire times: [2-9] queued, 0 skipped, 0 missed
-- not-stderr: record: Failed
-- max-seconds: 10
-- run: cancel_other: the running run is cancelled, the fire's run starts
-- args: --max-runs 2 {script}
-- env: CASE=cancel_other
-- exit: 1
-- stderr: came due: cancelling run [0-9a-f-]+ \(overlap = cancel_other\)
-- stderr: work: Cancelled
-- stderr: served 2 run\(s\): 0 failed, 1 cancelled
-- not-stderr: record: Failed
-- max-seconds: 10
-- run: allow: runs overlap, each on time with its own run id
-- args: --max-runs 3 {script}
-- env: CASE=allow
-- stderr: fire time \S+ starts a run beside run [0-9a-f-]+ \(overlap = allow\)
-- stderr: served 3 run\(s\): 0 failed, 0 cancelled; fire times: 0 queued, 0 skipped, 0 missed
-- not-stderr: record: Failed
-- max-seconds: 10
-- run: max_runs in the schedule
-- env: CASE=max_runs
-- stderr: served 2 run\(s\): 0 failed, 0 cancelled
-- max-seconds: 10
-- run: until ends serving after its last fire time
-- env: CASE=until
-- stderr: no fire time left \(until\)
-- stderr: served [2-9] run\(s\): 0 failed, 0 cancelled
-- max-seconds: 10
local flow = require "flowlua"
local check = require "lib.check"
local case = os.getenv("CASE")

local runs = {} -- the script is loaded once: every run adds to this list
local works = 0
local first_run, first_ended = nil, false
local work = flow.task("work", function()
  -- The first run is long: the next fire times come due while it goes.
  -- (With allow, long enough that the runs beside it surely start before
  -- it ends, however slow the machine.)
  works = works + 1
  -- (Not with until: its window is for fire times, and a first run that
  -- filled it left a loaded machine one run.)
  if works == 1 and case ~= "until" then
    first_run = flow.context().run_id
    flow.sleep(case == "cancel_other" and 30 or case == "allow" and 2 or 0.5)
  end
end)
local run_ids = {}
local record = flow.task("record", { trigger = "all_done" }, function()
  local ctx = flow.context()
  check.eq(run_ids[ctx.run_id], nil, "a run id of its own")
  run_ids[ctx.run_id] = true
  if case == "allow" then
    -- Each run starts at its fire time, not when the one before ends: the
    -- runs beside the first end while it still goes.
    if ctx.run_id == first_run then
      first_ended = true
    else
      check.eq(first_ended, false, "allow: the first run still going")
    end
  end
  runs[#runs + 1] = { scheduled = ctx.scheduled_at, started = ctx.started_at }
  local n = #runs
  check.between(ctx.started_at - ctx.scheduled_at, -0.001, 5, "started after its fire time")
  if n == 1 then return end
  local gap = runs[n].scheduled - runs[n - 1].scheduled
  if case == "queue" or case == "queue_all" or case == "cancel_other" then
    -- The second run is for the fire right after the first: one interval
    -- on, exactly (fire times are start + k * interval), though it could
    -- only start when the first run ended.
    check.near(gap, 0.2, 1e-6, "scheduled_at of run " .. n)
  end
  if (case == "queue" or case == "queue_all") and n == 2 then
    check.between(runs[n].started - runs[1].started, 0.45, 5, "run 2 waited for run 1")
  end
end)

local opts = { seconds = 0.2 }
if case == "queue" or case == "queue_all" or case == "cancel_other" or case == "allow" then
  opts.overlap = case
end
if case == "max_runs" then opts.max_runs = 2 end
if case == "until" then opts["until"] = flow.time() + 1.5 end

return flow.define("overlap", { schedule = flow.interval(opts) }, function()
  record():after(work())
end)
