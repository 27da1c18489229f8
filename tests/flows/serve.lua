-- A flow with an interval schedule is served: runs at start + k*interval
-- (never drifting with run length), fire times missed during a long run are
-- skipped and logged, and signals stop it cleanly.
--
-- How many fire times a long run or a suspend covers depends on how long
-- they really took (longer on a loaded machine), so those cases expect no
-- fixed count: each run notes its fire time (runs.txt), and an after: step
-- (flow 'counts') holds the counts the process logged to what happened —
-- every fire time from the first it waited for to the last run's was run,
-- skipped or missed, each exactly once — and to what the case is about.
-- run: three runs, evenly spaced
-- args: --max-runs 3 {script} --flow serve
-- stderr: flow 'serve': next run at \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d
-- stderr: check: Success
-- stderr: served 3 run\(s\): 0 failed, 0 cancelled; fire times: 0 queued, 0 skipped, 0 missed
-- min-seconds: 0.4
-- max-seconds: 8
-- run: a run longer than the interval skips the fire times it covers
-- args: --max-runs 2 {script} --flow serve
-- env: WORK=0.5
-- stderr: flow 'serve': fire time \S+ skipped: run [0-9a-f-]+ is still going \(overlap = skip\)
-- stderr: served 2 run\(s\): 0 failed, 0 cancelled; fire times: 0 queued, \d+ skipped, \d+ missed
-- after: 0 {script} --flow counts --param case=skip --param log={stderr}
-- max-seconds: 8
-- run: SIGINT lets the run in progress finish, then exits 0
-- args: {script} --flow serve
-- env: WORK=0.6
-- signal: SIGINT after work: Running
-- stderr: stopping after the run in progress
-- stderr: work: Success
-- stderr: served 1 run\(s\): 0 failed
-- not-stderr: Cancelled
-- max-seconds: 8
-- run: a second signal cancels the run in progress: exit 130
-- args: {script} --flow serve
-- env: WORK=30
-- signal: SIGTERM after work: Running
-- signal: SIGTERM after stopping after the run
-- exit: 130
-- stderr: work: Cancelled
-- max-seconds: 8
-- run: SIGTERM while waiting for the next fire time exits at once
-- args: {script} --flow serve
-- env: START_LATER=1
-- signal: SIGTERM after next run at
-- stderr: served 0 run\(s\)
-- max-seconds: 5
-- run: stopped (as by a suspend) past several fire times: one late run, the rest logged as missed
-- args: --max-runs 2 {script} --flow serve
-- env: WORK=0.01
-- signal: SIGSTOP after next run at
-- signal: SIGCONT after +1.2s
-- stderr: flow 'serve': missed \d+ fire time\(s\) from \S+: the loop's thread did not run for \d+\.\d s \(the process was stopped, or the machine is overloaded\); running once, for \S+
-- stderr: served 2 run\(s\): 0 failed, 0 cancelled; fire times: 0 queued, \d+ skipped, \d+ missed
-- after: 0 {script} --flow counts --param case=suspend --param log={stderr}
-- max-seconds: 10
-- run: --once ignores the schedule
-- args: --once {script} --flow serve
-- not-stderr: next run at
-- stderr: work: Success
local flow = require "flowlua"
local check = require "lib.check"

local INTERVAL = 0.2
local work_seconds = tonumber(os.getenv("WORK") or "0.02")
local starts = {} -- the script is loaded once: runs share this table
local work = flow.task("work", function()
  starts[#starts + 1] = flow.time()
  local f = assert(io.open("runs.txt", "a"))
  f:write(("%.6f\n"):format(flow.context().scheduled_at))
  f:close()
  flow.sleep(work_seconds)
end)
local check_spacing = flow.task("check", function()
  if os.getenv("WORK") then return end
  for i = 2, #starts do
    -- 0.2 s apart, whatever the run length (generous bounds).
    check.between(starts[i] - starts[i - 1], 0.1, 0.5, "spacing of runs " .. i)
  end
end)

-- Epoch seconds of a time as flowlua logs it: 2026-01-02T03:04:05.678+01:00
-- (the fraction left out on a whole second; Z for UTC).
local function epoch(iso)
  local y, mo, d, h, mi, sec, frac, zone =
    iso:match("^(%d+)-(%d+)-(%d+)T(%d+):(%d+):(%d+)(%.?%d*)(.*)$")
  assert(y, "not a time: " .. iso)
  y, mo = tonumber(y), tonumber(mo)
  if mo <= 2 then y = y - 1 end -- days from 1970-01-01, from March on
  local doy = (153 * (mo > 2 and mo - 3 or mo + 9) + 2) // 5 + tonumber(d) - 1
  local days = y * 365 + y // 4 - y // 100 + y // 400 + doy - 719468
  local t = days * 86400 + h * 3600 + mi * 60 + sec + (tonumber("0" .. frac) or 0)
  local sign, oh, om = zone:match("^([+-])(%d%d):(%d%d)$")
  if sign then t = t - (sign == "+" and 1 or -1) * (oh * 3600 + om * 60) end
  return t
end

-- The counts a served process logged (its stderr, in the file `log`)
-- against the fire times of its runs (runs.txt).
local count = flow.task("count", function(case, log)
  local fires = {}
  for line in io.lines("runs.txt") do fires[#fires + 1] = tonumber(line) end
  local f = assert(io.open(log))
  local text = f:read("a")
  f:close()
  local function steps(from, to) return math.floor((to - from) / INTERVAL + 0.5) end
  local first = epoch(assert(text:match("next run at (%S+)"), "no 'next run at' logged"))
  local skipped, missed = text:match("fire times: %d+ queued, (%d+) skipped, (%d+) missed")
  skipped, missed = tonumber(skipped), tonumber(missed)
  -- every fire time from the first waited for to the last run's: run,
  -- skipped or missed, once
  check.eq(#fires + skipped + missed, steps(first, fires[#fires]) + 1,
    ("fire times from the first to the last run's (%d run, %d skipped, %d missed)")
      :format(#fires, skipped, missed))
  if case == "skip" then
    -- the first run (0.5 s) covers at least two fire times, skipped (or
    -- missed, had the process itself been held up), then the next runs
    check.near(fires[1], first, 1e-3, "the first run's fire time")
    check.between(skipped, 1, math.huge, "fire times skipped")
    check.between(skipped + missed, 2, math.huge, "fire times the first run covered")
  elseif case == "suspend" then
    -- the fire times from the one due when stopped up to the last before
    -- waking are missed but the last, which runs (and may still go when
    -- the next fire time comes, if SIGCONT lands just before it: that one
    -- is then skipped, as overlap says, and counted above)
    local n, from, late = text:match("missed (%d+) fire time%(s%) from (%S+): .-; running once, for (%S+)")
    from, late = epoch(from), epoch(late)
    local ran = false
    for _, t in ipairs(fires) do ran = ran or math.abs(t - late) < 1e-3 end
    check.eq(ran, true, "a run for the late fire time")
    check.eq(tonumber(n), steps(from, late), "fire times missed before the late one")
    -- stopped for 1.2 s: at least 1 s of 0.2 s fire times
    check.between(tonumber(n), 4, math.huge, "fire times missed while stopped")
  end
end)

return {
  flow.define("serve", {
    schedule = flow.interval {
      seconds = INTERVAL,
      start = os.getenv("START_LATER") and flow.time() + 60 or nil,
    },
  }, function()
    check_spacing():after(work())
  end),
  flow.define("counts", { params = { case = "", log = "" } },
    function(p) count(p.case, p.log) end),
}
