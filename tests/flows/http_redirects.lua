-- Redirects and the request's headers: a redirect to another origin
-- (scheme, host or port) drops every header the request set (X-Api-Key,
-- Authorization) unless keep_headers_on_redirect = true; one to the same
-- origin keeps them; https to plain http is refused unless
-- allow_https_downgrade = true; 303 turns a POST into a GET, 307 keeps it.
-- The test server's http and https ports are two origins; /echo shows the
-- headers it received.
-- server: http https
-- stderr: same_origin: Success
-- stderr: other_origin: Success
-- stderr: downgrade: Success
-- stderr: methods: Success
-- stderr: 4 Success
-- max-seconds: 30
local flow = require "flowlua"
local check = require "lib.check"
local http = flow.http
local plain = os.getenv("TEST_HTTP_URL")
local tls = os.getenv("TEST_HTTPS_URL")
local ca = os.getenv("TEST_CA_FILE")

local secret_headers = { ["X-Api-Key"] = "k-123", Authorization = "Bearer t-456" }

-- /redirect on `from` sends the client to `to`'s /echo, which shows what
-- arrived there.
local function redirect(from, to, opts)
  opts = opts or {}
  opts.headers = opts.headers or secret_headers
  opts.ca_file = ca
  opts.query = { to = to .. "/echo" }
  return http.get(from .. "/redirect", opts)
end

local same_origin = flow.task("same_origin", function()
  local r = http.get(plain .. "/redirect", { headers = secret_headers,
                                             query = { to = "/echo" } })
  check.eq(r.url, plain .. "/echo", "followed")
  local seen = r:json().headers
  check.eq(seen["x-api-key"], "k-123", "X-Api-Key kept on the same origin")
  check.eq(seen["authorization"], "Bearer t-456", "Authorization kept")
end)

local other_origin = flow.task("other_origin", function()
  local r = redirect(plain, tls)
  check.eq(r.url, tls .. "/echo", "followed to the other origin")
  local seen = r:json().headers
  check.eq(seen["x-api-key"], nil, "X-Api-Key dropped on another origin")
  check.eq(seen["authorization"], nil, "Authorization dropped")
  check.eq(seen["user-agent"]:match("^flowlua/") ~= nil, true, "flowlua's own headers stay")

  seen = redirect(plain, tls, { keep_headers_on_redirect = true }):json().headers
  check.eq(seen["x-api-key"], "k-123", "kept when the request says so")
  check.eq(seen["authorization"], "Bearer t-456", "Authorization kept when asked")
end)

local downgrade = flow.task("downgrade", function()
  local ok, err = pcall(redirect, tls, plain)
  check.eq(ok, false, "https to http is not followed")
  err = tostring(err)
  check.eq(err:find("GET " .. tls .. "/redirect?to=http", 1, true) ~= nil, true,
           "names the request: " .. err)
  check.eq(err:find(": redirect from https to plain http (" .. plain .. "/echo) refused: " ..
                    "set allow_https_downgrade = true to follow it", 1, true) ~= nil, true,
           "says why and what to do: " .. err)

  local r = redirect(tls, plain, { allow_https_downgrade = true })
  check.eq(r.url, plain .. "/echo", "followed when allowed")
  check.eq(r:json().headers["x-api-key"], nil, "headers still dropped (another origin)")
end)

local methods = flow.task("methods", function()
  local r = http.post(plain .. "/redirect", { body = "payload",
                                              query = { code = 303, to = "/echo" } })
  local e = r:json()
  check.eq(e.method, "GET", "303 turns a POST into a GET")
  check.eq(e.body, "", "without its body")
  e = http.post(plain .. "/redirect", { body = "payload",
                                        query = { code = 307, to = "/echo" } }):json()
  check.eq(e.method, "POST", "307 keeps the method")
  check.eq(e.body, "payload", "and the body")
  -- to another origin: the body's Content-Type goes with it, the rest not
  e = http.post(plain .. "/redirect", { json = { n = 1 }, headers = secret_headers, ca_file = ca,
                                        query = { code = 307, to = tls .. "/echo" } }):json()
  check.eq(e.body, '{"n":1}', "the body went on")
  check.eq(e.headers["content-type"], "application/json", "with its Content-Type")
  check.eq(e.headers["x-api-key"], nil, "but not the other headers")
end)

return flow.define("redirects", {}, function()
  same_origin()
  other_origin()
  downgrade()
  methods()
end)
