-- catchup: fire times that passed while no flowlua served the flow run
-- when it serves again, one after another, each with its own fire time;
-- those older than catchup_window are logged as missed.
--
-- The first process (before:) serves one run that takes 0.6 s, so the
-- fire times of the next 0.6 s pass without a run (skipped, not claimed);
-- the second process finds them after the last claimed fire time. How
-- many there are depends on how long the gap between the two processes
-- really was (longer on a loaded machine), so no fixed count is expected.
-- Each process notes in times.txt the wall-clock time it loaded this
-- script, and each run its fire time and the time it saw; the after: step
-- (flow 'check') counts from those notes the fire times that must have
-- passed when the second process caught up — at least those up to the
-- moment it loaded the script, at most those up to the start of its first
-- run — and checks the counts it logged against them, and that its runs
-- were the first fire times it caught up, in order.
-- run: the missed fire times run first, in order
-- before: 0 {script} --flow catchup --max-runs 1
-- args: {script} --flow catchup --max-runs 3
-- stderr: catchup: running \d+ fire time\(s\) missed while flowlua was not serving, from \S+, one after another
-- stderr: served 3 run\(s\): 0 failed
-- not-stderr: older than catchup_window
-- after: 0 {script} --flow check --param log={stderr} --param runs=3
-- run: with a 0.1 s interval the last fire time, read back to the millisecond, is not caught up again
-- before: 0 {script} --flow catchup --max-runs 1
-- args: {script} --flow catchup --max-runs 3
-- env: INTERVAL=0.1
-- stderr: catchup: running \d+ fire time\(s\) missed while flowlua was not serving, from \S+, one after another
-- stderr: served 3 run\(s\): 0 failed
-- not-stderr: older than catchup_window
-- not-stderr: has run it
-- after: 0 {script} --flow check --param log={stderr} --param runs=3
-- run: fire times older than catchup_window are missed, not run
-- before: 0 {script} --flow catchup --max-runs 1
-- args: {script} --flow catchup --max-runs 1
-- env: WINDOW=0.25
-- stderr: catchup: \d+ fire time\(s\) from \S+ missed while flowlua was not serving are older than catchup_window
-- stderr: catchup: running [23] fire time\(s\)
-- after: 0 {script} --flow check --param log={stderr} --param runs=1
-- run: the first time there is nothing to catch up
-- args: {script} --flow catchup --max-runs 1
-- stderr: no earlier fire time recorded: nothing to catch up
-- run: without a history there is nothing to catch up from
-- args: {script} --flow catchup --max-runs 1 --state :memory:
-- stderr: catchup needs the run history
local flow = require "flowlua"
local check = require "lib.check"

-- A binary fraction of a second by default: its fire times are exact
-- doubles and exact milliseconds. With 0.1 s (INTERVAL=0.1), the last fire
-- time read back from the history (kept to the millisecond) is often a hair
-- below the one the schedule computes; catch-up must not take it for a
-- missed fire time (it did in about one case in five before 0.6).
local INTERVAL = tonumber(os.getenv("INTERVAL") or "0.125")
local WINDOW = tonumber(os.getenv("WINDOW") or "0")

local function note(...)
  local f = assert(io.open("times.txt", "a"))
  f:write(table.concat({ ... }, " "), "\n")
  f:close()
end
local function stamp(t) return ("%.6f"):format(t) end

-- Before serving, before catching up.
note("load", stamp(flow.time()))

local work = flow.task("work", function()
  local ctx = flow.context()
  local f = io.open("first.marker")
  if not f then
    assert(io.open("first.marker", "w")):close()
    flow.sleep(0.6)
    note("first", stamp(ctx.scheduled_at))
    return
  end
  f:close()
  note("run", stamp(ctx.scheduled_at), stamp(flow.time()))
  -- a catch-up run is for a fire time that passed before it started
  assert(ctx.scheduled_at < ctx.started_at, "scheduled_at is the fire time")
end)

-- What the second process logged (its stderr, in the file `log`) against
-- the notes of both processes.
local verify = flow.task("verify", function(log, runs)
  local first, loaded, ran = nil, nil, {}
  for line in io.lines("times.txt") do
    local kind, a, b = line:match("^(%a+) (%S+) ?(%S*)$")
    if kind == "load" and #ran == 0 then
      loaded = tonumber(a) -- the last load before the second process's runs
    elseif kind == "first" then
      first = tonumber(a)
    elseif kind == "run" then
      ran[#ran + 1] = { fire = tonumber(a), began = tonumber(b) }
    end
  end
  assert(first, "times.txt: no note from the first process's run")
  assert(loaded, "times.txt: no note of the second process's start")
  check.eq(#ran, runs, "runs of the second process")

  local f = assert(io.open(log))
  local text = f:read("a")
  f:close()
  local queued = tonumber(text:match("catchup: running (%d+) fire time%(s%) missed")) or 0
  local missed = tonumber(text:match("catchup: (%d+) fire time%(s%) from %S+ missed")) or 0

  -- The schedule sets no start, so its fire times are the multiples of
  -- INTERVAL. fires(t): how many lie after the first run's and up to t.
  local k0 = math.floor(first / INTERVAL + 0.5)
  local function fires(t) return math.floor(t / INTERVAL) - k0 end
  -- The second process caught up at some time `now` after it loaded the
  -- script and before its first run began; 2 ms of slack for the notes'
  -- rounding and the two clocks (serving time is monotonic).
  local lo, hi = loaded - 0.002, ran[1].began + 0.002
  check.between(queued + missed, fires(lo), fires(hi),
    ("fire times caught up (%d run, %d missed) for a gap of %.3f to %.3f s")
      :format(queued, missed, lo - first, hi - first))
  if WINDOW > 0 then
    -- those before now - catchup_window are missed; the window holds
    -- floor(WINDOW / INTERVAL) or one more, however long the gap
    check.between(missed, fires(lo - WINDOW), fires(hi - WINDOW),
      "fire times older than catchup_window")
    local fit = math.floor(WINDOW / INTERVAL + 1e-9)
    check.between(queued, fit, fit + 1, "fire times within catchup_window")
  else
    check.eq(missed, 0, "fire times missed without a catchup_window")
  end
  -- the runs were the first fire times queued, in order
  for i, r in ipairs(ran) do
    check.near(r.fire, first + (missed + i) * INTERVAL, 0.001,
      ("fire time of catch-up run %d"):format(i))
  end
end)

return {
  flow.define("catchup", {
    schedule = flow.interval {
      seconds = INTERVAL,
      catchup = true,
      catchup_window = WINDOW,
    },
  }, function() work() end),
  flow.define("check", { params = { log = "", runs = 0 } },
    function(p) verify(p.log, p.runs) end),
}
