-- The flow that tests/system/status/live_status.py runs under a terminal:
-- tasks that stay running, a mapped task, a task that fails and retries after a
-- delay, and log lines, until the test creates the file `gate`. Each task
-- gives up after a minute, so a broken test cannot hang.
local flow = require "flowlua"

local function gate_open(p)
  return flow.fs.exists(p.gate)
end

local function wait_for_gate(p, what)
  local started, tick = flow.now(), 0
  while not gate_open(p) do
    if flow.now() - started > 60 then error(what .. ": no gate after 60 s") end
    tick = tick + 1
    if what == "slow" then flow.log.info("tick %d of slow (end of line)", tick) end
    flow.sleep(0.3)
  end
end

local slow = flow.task("slow", function(p)
  wait_for_gate(p, "slow")
  return "done"
end)

local work = flow.task("work", function(p, i)
  wait_for_gate(p, "work")
  return i
end)

-- Fails its first attempt always, and every attempt while the gate is shut.
-- FLAKY_RETRIES=0 makes the run fail, for a resume to finish it.
local flaky = flow.task("flaky", {
  retries = tonumber(os.getenv("FLAKY_RETRIES") or "60"),
  retry_delay = 2,
}, function(p)
  if flow.context().attempt == 1 or not gate_open(p) then
    error("the service is not ready yet")
  end
  return "ok"
end)

local join = flow.task("join", function(a, b, c) return #b end)

return flow.define("live status", {
  params = { gate = "gate", width = 12 },
}, function(p)
  local items = {}
  for i = 1, p.width do items[i] = i end
  join(slow(p), work:map(flow.unmapped(p), items), flaky(p))
end)
