-- Accept-Encoding is sent only when the request asks for it
-- (compressed = true): then a compressed body is decoded. Without it the
-- server sends the body as it is, and a Content-Encoding the request did
-- not ask for is left alone (the body is the bytes sent).
-- server: http
-- stderr: verify: Success
-- max-seconds: 30
local flow = require "flowlua"
local check = require "lib.check"
local base = os.getenv("TEST_HTTP_URL")

local fetch = flow.task("fetch", function()
  local plain = flow.http.get(base .. "/echo"):json()
  check.eq(plain.headers["accept-encoding"], nil, "no Accept-Encoding by default")
  check.eq(plain.headers["user-agent"]:match("^flowlua/") ~= nil, true, "a User-Agent")

  local asked = flow.http.get(base .. "/echo", { compressed = true }):json()
  check.eq(asked.headers["accept-encoding"]:find("gzip", 1, true) ~= nil, true,
           "compressed = true asks for gzip: " .. tostring(asked.headers["accept-encoding"]))

  local r = flow.http.get(base .. "/json?bytes=5000&gzip=1", { compressed = true })
  check.eq(r.headers["content-encoding"], "gzip", "sent compressed")
  check.eq(#r.body, 5000, "decoded body")
  check.eq(r:json().id, 1, "decoded JSON")

  r = flow.http.get(base .. "/json?bytes=5000&gzip=1")
  check.eq(r.headers["content-encoding"], nil, "not compressed when not asked")
  check.eq(#r.body, 5000, "plain body")

  -- The same handle again without the option: it does not keep asking.
  plain = flow.http.get(base .. "/echo"):json()
  check.eq(plain.headers["accept-encoding"], nil, "no Accept-Encoding after a compressed request")
  return true
end)

local verify = flow.task("verify", function(ok) check.eq(ok, true, "fetch") end)

return flow.define("http compressed", {}, function() verify(fetch()) end)
