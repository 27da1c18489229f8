-- A run starts no earlier than its fire time on the wall clock: a whole-
-- second schedule's runs see os.time() (and os.date) of the fire time's
-- second, never the second before (the monotonic timer fires first, and
-- time() reads a coarse clock a few milliseconds behind). Each run fails
-- when os.time() is before its fire time's second.
-- run: eight whole-second fires see their own second
-- args: --max-runs 8 {script}
-- stderr: served 8 run\(s\): 0 failed, 0 cancelled
-- not-stderr: saw the previous second
-- timeout: 60
local flow = require "flowlua"

local seen = flow.task("seen", function()
  local now = os.time()
  local fire = flow.context().scheduled_at
  assert(fire == math.floor(fire), "the fire time is a whole second: " .. fire)
  if now < fire then
    error(("fire time %d (%s) saw the previous second: os.time() = %d (%s)")
      :format(fire, os.date("!%T", fire), now, os.date("!%T", now)))
  end
end)

return flow.define("wallclock", {
  schedule = flow.interval { seconds = 1, start = math.floor(flow.time()) + 1 },
}, function() seen() end)
