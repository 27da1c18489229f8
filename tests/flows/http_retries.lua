-- Retries against a server that fails on purpose: 500s then success, and a
-- 503 with Retry-After, which sets the next retry's delay when it is longer
-- than the task's own, also when the script raises its own error.
-- server: http
-- run: fails twice, then succeeds
-- stderr: fetch: Retrying in .* HTTP 500
-- stderr: fetch: Success \(attempt 3,
-- stderr: verify: Success
-- run: Retry-After is honoured
-- env: CASE=retry_after
-- stderr: fetch: Success \(attempt 2,
-- stderr: verify: Success
-- run: Retry-After also counts when the script raises its own error
-- env: CASE=own_error
-- stderr: fetch: Success \(attempt 2,
-- stderr: verify: Success
local flow = require "flowlua"
local check = require "lib.check"
local http = flow.http
local base = os.getenv("TEST_HTTP_URL")
local case = os.getenv("CASE")

local starts = {}
local fetch = flow.task("fetch", { retries = 3, retry_delay = 0.05 }, function()
  starts[#starts + 1] = flow.now()
  if case == "retry_after" then
    return http.get(base .. "/flaky/ra?fail=1&code=503&retry_after=1"):raise_for_status().status
  elseif case == "own_error" then
    local r = http.get(base .. "/flaky/oe?fail=1&code=429&retry_after=1")
    if r.status ~= 200 then error("rate limited: " .. r.status) end
    return r.status
  end
  return http.get(base .. "/flaky/f?fail=2&code=500"):raise_for_status().status
end)

local verify = flow.task("verify", function(status)
  check.eq(status, 200, "final status")
  local key = case == "retry_after" and "ra" or case == "own_error" and "oe" or "f"
  local count = http.get(base .. "/count/" .. key):json().count
  check.eq(count, case and 2 or 3, "requests the server saw")
  if case then
    check.between(starts[2] - starts[1], 0.95, 5, "delay after Retry-After: 1")
  else
    check.between(starts[2] - starts[1], 0.045, 5, "task's own delay")
  end
end)

return flow.define("http retries", {}, function() verify(fetch()) end)
