-- Connections kept alive between requests stay in the event loop's epoll
-- set while idle in curl's cache (fl_loop_pause). The server closing one
-- meanwhile makes it readable with nobody to call: the loop drops it from
-- epoll, and the next requests still work, on a new connection or a
-- kept one, several at once too.
-- server: http
-- stderr: verify: Success
-- max-seconds: 30
local flow = require "flowlua"
local check = require "lib.check"
local base = os.getenv("TEST_HTTP_URL")

local fetch = flow.task("fetch", function(i)
  for round = 1, 3 do
    local r = flow.http.get(base .. "/idle-close?seconds=0.1")
    check.eq(r.status, 200, "request " .. i .. " round " .. round)
    -- The server closes the idle connection while the task sleeps.
    flow.sleep(0.3)
  end
  local r = flow.http.get(base .. "/json?bytes=500")
  check.eq(#r.body, 500, "a request after the closes")
  return i
end)

local verify = flow.task("verify", function(got)
  check.eq(#got, 4, "every fetch")
end)

return flow.define("http idle close", {}, function()
  verify(fetch:map({ 1, 2, 3, 4 }))
end)
