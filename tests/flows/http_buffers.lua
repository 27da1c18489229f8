-- A finished request's easy handle goes back to a pool with the memory of
-- its response's body and headers, emptied (http.c): responses read one
-- after another into kept buffers are whole and only their own, whatever
-- came before (a longer body, one too large to keep, a failed request).
-- server: http
-- stderr: verify: Success
-- max-seconds: 30
local flow = require "flowlua"
local check = require "lib.check"
local base = os.getenv("TEST_HTTP_URL")

local function get(bytes, opts)
  local r = flow.http.get(base .. "/json?bytes=" .. bytes, opts)
  check.eq(#r.body, bytes, "body of " .. bytes .. " bytes")
  check.eq(r.headers["content-length"], tostring(bytes), "its content-length")
  check.eq(r:json().id, 1, "its JSON")
  return r
end

local serial = flow.task("serial", function()
  get(20000)
  get(100)                   -- shorter than the kept buffer's last body
  local big = flow.http.get(base .. "/big?bytes=200000") -- not kept (> 64 KiB)
  check.eq(#big.body, 200000, "big body")
  check.eq(big.headers["content-type"], "application/octet-stream", "big's headers")
  get(67)
  local ok, err = pcall(flow.http.get, base .. "/json?bytes=5000", { max_body = 1000 })
  check.eq(ok, false, "max_body")
  check.eq(tostring(err):find("larger than max_body", 1, true) ~= nil, true, "max_body error: " .. tostring(err))
  local r = get(300)         -- after a failed read into the same buffer
  check.eq(r.headers["x-custom"], nil, "no header of an earlier response")
  local h = flow.http.get(base .. "/headers")
  check.eq(h.headers["x-custom"], "yes", "headers endpoint")
  get(1000)
  return true
end)

local verify = flow.task("verify", function(ok) check.eq(ok, true, "serial") end)

return flow.define("http buffers", {}, function() verify(serial()) end)
