-- Worker tasks fail one attempt, not the run, when their worker crashes, is
-- stuck in one C call past the timeout, or runs out of memory: the retry
-- runs on a fresh worker and the run's other tasks are unaffected. Two
-- worker tasks run in two processes at once.
-- run: a segfault, a stuck C call and an allocation past the limit each fail one attempt
-- args: {script} --workers 2 --memory-limit 64M
-- env: ASAN_OPTIONS=handle_segv=0:detect_leaks=1:abort_on_error=1
-- timeout: 120
-- stderr: crash: Retrying.*SIGSEGV
-- stderr: crash: Success \(attempt 2
-- stderr: stuck: Retrying.*timed out: attempt 1 ran longer than 1 s
-- stderr: stuck: Success \(attempt 2
-- stderr: hog: Retrying.*memory
-- stderr: hog: Success \(attempt 2
-- stderr: inline: Success
-- stderr: flow 'worker_faults' run .*: Success
-- run: two worker tasks run in two processes at the same time
-- args: {script} --workers 2 --param mode=overlap
-- stderr: meet: Success
-- stderr: flow 'worker_faults' run .*: Success
local flow = require "flowlua"

local pid = require("lib.check").pid

-- The first attempt of each task misbehaves; the marker says it did.
local first_time = require("lib.check").first_time

local crash = flow.task("crash", { worker = true, retries = 1 }, function()
  if first_time("crash.marker") then os.execute("kill -SEGV " .. pid()) end
  return pid()
end)

local stuck = flow.task("stuck", { worker = true, retries = 1, timeout = 1 }, function()
  if first_time("stuck.marker") then
    -- Backtracking in one call of string.find: no Lua instruction runs
    -- until it returns, so only the process can be stopped.
    string.find(string.rep("a", 60), string.rep("a*", 60) .. "b")
  end
  return "done"
end)

local hog = flow.task("hog", { worker = true, retries = 1 }, function()
  if first_time("hog.marker") then
    local t = {}
    for i = 1, 1e9 do t[i] = string.rep("x", 1000) .. i end
  end
  return "fine"
end)

local inline = flow.task("inline", function() return pid() end)

-- Each waits until the other has arrived: both must run at once.
local meet = flow.task("meet", { worker = true, timeout = 60 }, function(me, other)
  assert(io.open(me .. ".here", "w")):close()
  while not io.open(other .. ".here") do flow.sleep(0.01) end
  return pid()
end)

local check = flow.task("check", function(a, b)
  assert(a ~= b, "both ran in process " .. a)
end)

return flow.define("worker_faults", { params = { mode = "faults" } }, function(p)
  if p.mode == "overlap" then
    check(meet("a", "b"), meet("b", "a"))
  else
    crash()
    stuck()
    hog()
    inline()
  end
end)
