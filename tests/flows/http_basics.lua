-- flow.http against the local test server: verbs, query encoding, headers,
-- JSON bodies, redirects, file:// URLs, and many requests in flight at once.
-- server: http
-- stderr: verify: Success
-- stderr: ^  stall \[map of 40\] +Success
-- max-seconds: 90
local flow = require "flowlua"
local check = require "lib.check"
local http = flow.http
local base = os.getenv("TEST_HTTP_URL")

-- At the top level of a script a request simply waits.
local top = http.get(base .. "/json?bytes=2000")
assert(top.status == 200 and top.ok, "top-level request")

local basics = flow.task("basics", function()
  local r = http.get(base .. "/json", { query = { bytes = 10240 } })
  check.eq(r.status, 200, "status")
  check.eq(r.ok, true, "ok")
  check.between(#r.body, 9000, 12000, "body length")
  check.eq(r.headers["content-type"], "application/json", "lower-case header names")
  check.eq(r.url, base .. "/json?bytes=10240", "url")
  check.between(r.elapsed, 0, 10, "elapsed")
  check.eq(math.type(r:json().count), "integer", "JSON integers decode as integers")

  local e = http.get(base .. "/echo", { query = { b = "x y&z", a = 1, list = { "p", "q" } },
                                         headers = { ["X-Trace"] = "abc" } }):json()
  check.eq(e.method, "GET", "echo method")
  check.eq(e.query.b, "x y&z", "query value encoded and decoded")
  check.eq(e.query.a, "1", "number in query")
  check.eq(e.headers["x-trace"], "abc", "custom header sent")

  local p = http.post(base .. "/echo", { json = { n = 4, s = "é" } }):json()
  check.eq(p.method, "POST", "post method")
  check.eq(p.headers["content-type"], "application/json", "json content type")
  check.eq(flow.json.decode(p.body).n, 4, "json body sent")
  check.eq(http.put(base .. "/echo", { body = "raw" }):json().body, "raw", "put body")
  check.eq(http.patch(base .. "/echo", { body = "x" }):json().method, "PATCH", "patch")
  check.eq(http.delete(base .. "/echo"):json().method, "DELETE", "delete")
  check.eq(http.request("put", base .. "/echo", { body = "y" }):json().method, "PUT", "request()")

  local slow = http.get(base .. "/slow?bytes=3000&chunk=256&delay=0.02")
  check.eq(#slow.body, 3000, "a slow body arrives whole")
  check.eq(slow.body, string.rep("s", 3000), "slow body content")

  local red = http.get(base .. "/redirect?to=/json")
  check.eq(red.status, 200, "redirect followed")
  check.eq(red.url, base .. "/json", "final url after redirect")
  check.eq(http.get(base .. "/redirect?to=/json", { follow = false }).status, 302, "follow = false")
  local h = http.get(base .. "/headers")
  check.eq(h.headers["x-custom"], "yes", "x-custom header")
  assert(h.headers["set-cookie"]:find(", "), "repeated headers are joined: " .. h.headers["set-cookie"])
  check.eq(http.get(base .. "/status/404").ok, false, "404 is not ok")
  check.eq(http.get(base .. "/status/404").status, 404, "404 status")

  local f = http.get("file://" .. os.getenv("TEST_FIXTURES") .. "/complaints.json", { query = { size = 10 } })
  check.eq(f.status, 200, "file:// status")
  check.eq(type(f:json().hits.hits), "table", "file:// body")
  return true
end)

-- The 40 requests stall until 32 of them are in flight at once (the
-- server's count, an event: not a time window a loaded machine could miss).
local stall = flow.task("stall", function(i)
  local r = http.get(base .. "/stall", { query = {
    together = 32, seconds = 60, group = flow.context().run_id, i = i } })
  return { status = r.status, together = r:json().together }
end)

local verify = flow.task("verify", function(ok, stalls, started)
  check.eq(ok, true, "basics")
  check.eq(#stalls, 40, "stalled requests")
  -- The default concurrency: 32 at a time, reached and never passed.
  for i, s in ipairs(stalls) do
    check.eq(s.status, 200, "stalled request " .. i)
    check.eq(s.together, 32, "requests in flight at once, seen by request " .. i)
  end
  check.between(flow.now() - started, 0, 60, "40 stalled requests (a hang guard)")
end)

local start = flow.task("start", function() return flow.now() end)

return flow.define("http basics", {}, function()
  local t0 = start()
  local list = {}
  for i = 1, 40 do list[i] = i end
  verify(basics(), stall:map(list):after(t0), t0)
end)
