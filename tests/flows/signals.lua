-- SIGINT or SIGTERM cancels the run: running tasks end Cancelled (also one
-- busy in a Lua loop), pending ones never start, and flowlua exits 130.
-- run: SIGINT while tasks sleep
-- signal: SIGINT after sleeper\[3\]: Running
-- exit: 130
-- stderr: flowlua: cancelling the run
-- stderr: sleeper\[1\]: Cancelled
-- stderr: after: Cancelled \(before it started\)
-- stderr: flow 'signals' run [0-9a-f-]+: Cancelled
-- not-stderr: after: Running
-- max-seconds: 10
-- run: SIGTERM while a task spins in Lua
-- env: CASE=spin
-- signal: SIGTERM after spinner: Running
-- exit: 130
-- stderr: spinner: Cancelled
-- max-seconds: 10
-- run: SIGINT during a retry wait
-- env: CASE=retry
-- signal: SIGINT after flaky: Retrying
-- exit: 130
-- stderr: flaky: Cancelled \(while waiting to retry\)
-- max-seconds: 10
local flow = require "flowlua"
local case = os.getenv("CASE")

local sleeper = flow.task("sleeper", function() flow.sleep(60) end)
local spinner = flow.task("spinner", function() while true do end end)
local flaky = flow.task("flaky", { retries = 1, retry_delay = 60 }, function() error("nope") end)
local after = flow.task("after", function() end)

return flow.define("signals", {}, function()
  if case == "spin" then return after(spinner()) end
  if case == "retry" then return after(flaky()) end
  after(sleeper:map({ 1, 2, 3 }))
end)
