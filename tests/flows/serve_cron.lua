-- A cron schedule is served on the wall clock: the run starts at a whole
-- minute (the only test here that waits for one, up to 60 s), its
-- scheduled_at is that minute, and the next fire time is logged in the
-- schedule's zone.
-- run: one run at the next whole minute
-- args: --max-runs 1 {script}
-- stderr: flow 'serve_cron': next run at \d{4}-\d\d-\d\dT\d\d:\d\d:00\+09:00
-- stderr: on_minute: Success
-- stderr: served 1 run\(s\): 0 failed, 0 cancelled; fire times: 0 queued, 0 skipped, 0 missed
-- max-seconds: 75
-- timeout: 90
local flow = require "flowlua"

local on_minute = flow.task("on_minute", function()
  local ctx = flow.context()
  assert(ctx.scheduled_at % 60 == 0,
         "scheduled_at is not a whole minute: " .. tostring(ctx.scheduled_at))
  local late = flow.time() - ctx.scheduled_at
  assert(late >= 0 and late < 1, "started " .. late .. " s after its fire time")
end)

return flow.define("serve_cron", {
  schedule = flow.cron("* * * * *", { tz = "Asia/Tokyo" }),
}, function() on_minute() end)
