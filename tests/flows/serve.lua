-- A flow with an interval schedule is served: runs at start + k*interval
-- (never drifting with run length), fire times missed during a long run are
-- skipped and logged, and signals stop it cleanly.
-- run: three runs, evenly spaced
-- args: --max-runs 3 {script}
-- stderr: flow 'serve': next run at \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d
-- stderr: check: Success
-- stderr: served 3 run\(s\): 0 failed, 0 cancelled; fire times: 0 queued, 0 skipped, 0 missed
-- min-seconds: 0.4
-- max-seconds: 8
-- run: a run longer than the interval skips the fire times it covers
-- args: --max-runs 2 {script}
-- env: WORK=0.5
-- stderr: flow 'serve': fire time \S+ skipped: run [0-9a-f-]+ is still going \(overlap = skip\)
-- stderr: served 2 run\(s\): 0 failed, 0 cancelled; fire times: 0 queued, [2-9] skipped, 0 missed
-- max-seconds: 8
-- run: SIGINT lets the run in progress finish, then exits 0
-- env: WORK=0.6
-- signal: SIGINT after work: Running
-- stderr: stopping after the run in progress
-- stderr: work: Success
-- stderr: served 1 run\(s\): 0 failed
-- not-stderr: Cancelled
-- max-seconds: 8
-- run: a second signal cancels the run in progress: exit 130
-- env: WORK=30
-- signal: SIGTERM after work: Running
-- signal: SIGTERM after stopping after the run
-- exit: 130
-- stderr: work: Cancelled
-- max-seconds: 8
-- run: SIGTERM while waiting for the next fire time exits at once
-- env: START_LATER=1
-- signal: SIGTERM after next run at
-- stderr: served 0 run\(s\)
-- max-seconds: 5
-- run: stopped (as by a suspend) past several fire times: one late run, the rest logged as missed
-- args: --max-runs 2 {script}
-- env: WORK=0.01
-- signal: SIGSTOP after next run at
-- signal: SIGCONT after +1.2s
-- stderr: flow 'serve': missed [3-9] fire time\(s\) from \S+: the clock jumped or the machine was suspended; running once, for \S+
-- (the late run may still go when the next fire time comes, if SIGCONT
-- lands just before it: that fire time is then skipped, as overlap says)
-- stderr: served 2 run\(s\): 0 failed, 0 cancelled; fire times: 0 queued, [01] skipped, [3-9] missed
-- max-seconds: 10
-- run: --once ignores the schedule
-- args: --once {script}
-- not-stderr: next run at
-- stderr: work: Success
local flow = require "flowlua"
local check = require "lib.check"

local work_seconds = tonumber(os.getenv("WORK") or "0.02")
local starts = {} -- the script is loaded once: runs share this table
local work = flow.task("work", function()
  starts[#starts + 1] = flow.time()
  flow.sleep(work_seconds)
end)
local check_spacing = flow.task("check", function()
  if os.getenv("WORK") then return end
  for i = 2, #starts do
    -- 0.2 s apart, whatever the run length (generous bounds).
    check.between(starts[i] - starts[i - 1], 0.1, 0.5, "spacing of runs " .. i)
  end
end)

return flow.define("serve", {
  schedule = flow.interval { seconds = 0.2, start = os.getenv("START_LATER") and flow.time() + 60 or nil },
}, function()
  check_spacing():after(work())
end)
