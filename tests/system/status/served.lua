-- A scheduled flow for tests/system/status/live_status.py: served on a
-- terminal, it must log plain lines with no live status. Its one task takes a
-- moment, so the screen can be read while a run goes.
local flow = require "flowlua"

local pause = flow.task("pause", function()
  flow.log.info("pausing")
  flow.sleep(0.5)
end)

return flow.define("served", {
  schedule = flow.interval { seconds = 1 },
}, function() pause() end)
