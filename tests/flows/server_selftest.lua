-- The local test server (tests/support/server/testserver.py) and the
-- driver's "-- server:" directive: each endpoint answers as documented,
-- fetched with tests/support/server/fetch.py through flow.shell, so this
-- holds without flow.http.
-- server: http https
-- run: endpoints over HTTP and HTTPS
-- stderr: verify: Success
-- run: {http}, {fixtures} and {support} in args and env
-- args: --param url={http}/json?bytes=123 --param fixtures={fixtures} --param support={support} {script}
-- env: CASE=places
-- env: COUNT_URL={http}/count/x
-- stderr: places: Success
-- run: a case can turn the server off
-- server: none
-- env: CASE=none
-- stderr: none: Success
local flow = require "flowlua"
local check = require "lib.check"
local json = flow.json or require "cjson"  -- whichever this build has
local case = os.getenv("CASE")
local base, tls = os.getenv("TEST_HTTP_URL"), os.getenv("TEST_HTTPS_URL")
local fixtures = os.getenv("TEST_FIXTURES")
local fetch_py = os.getenv("TEST_SUPPORT") .. "/server/fetch.py"

-- One request through fetch.py: the decoded {status, headers, body} or {error}.
local function fetch(url, opts)
  opts = opts or {}
  local argv = { "python3", fetch_py, "--method", opts.method or "GET" }
  if opts.data then argv[#argv + 1] = "--data"; argv[#argv + 1] = opts.data end
  if opts.cafile then argv[#argv + 1] = "--cafile"; argv[#argv + 1] = opts.cafile end
  if opts.timeout then argv[#argv + 1] = "--timeout"; argv[#argv + 1] = tostring(opts.timeout) end
  argv[#argv + 1] = url
  local r = flow.shell(argv, { timeout = (opts.timeout or 20) + 10 })
  check.eq(r.code, 0, "fetch.py exit code for " .. url .. " (stderr: " .. r.stderr .. ")")
  return json.decode(r.stdout)
end

local function read_file(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

local json_endpoint = flow.task("json", function()
  local r = fetch(base .. "/json?bytes=5000")
  check.eq(r.status, 200, "/json status")
  check.eq(r.headers["content-type"], "application/json", "/json content type")
  check.eq(r.headers["content-length"], "5000", "/json content length")
  check.eq(#r.body, 5000, "/json size")
  local doc = json.decode(r.body)
  assert(r.body:find('"count":%d+,'), "count is written as an integer")
  check.eq(doc.count, #doc.items, "count == #items")
  check.eq(#fetch(base .. "/json").body, 10240, "default size")
  return true
end)

local complaints = flow.task("complaints", function()
  local r = fetch(base .. "/complaints?size=7")
  check.eq(r.status, 200, "/complaints status")
  local doc = json.decode(r.body)
  check.eq(doc.hits.total.value, 7, "hits.total.value")
  check.eq(#doc.hits.hits, 7, "number of hits")
  local s = doc.hits.hits[1]._source
  check.eq(s.state, "CA", "first state")
  check.eq(s.product, "Mortgage", "first product")
  check.eq(s.company, "BANK OF AMERICA, NATIONAL ASSOCIATION", "first company")
  check.eq(doc.hits.hits[7]._source.company, "Café Crédit, Inc.", "non-ASCII company")
  check.eq(#json.decode(fetch(base .. "/complaints").body).hits.hits, 10, "default size")

  -- size=25 is the fixture file, byte for byte, and that is what a
  -- file:// URL test reads instead.
  local fixture = read_file(fixtures .. "/complaints.json")
  check.eq(fetch(base .. "/complaints?size=25").body, fixture, "size=25 is the fixture")
  local all = json.decode(fixture).hits.hits
  check.eq(#all, 25, "fixture hits")
  local missing, quoted = 0, 0
  for _, hit in ipairs(all) do
    if hit._source.company == nil then missing = missing + 1 end
    if (hit._source.company or ""):find('"', 1, true) then quoted = quoted + 1 end
  end
  check.eq(missing, 1, "hits without a company")
  check.eq(quoted, 1, "companies with a quote")
  local big = json.decode(fetch(base .. "/complaints?size=60").body).hits.hits
  check.eq(#big, 60, "beyond the fixture the hits repeat")
  check.eq(big[26]._source.state, all[1]._source.state, "hit 26 repeats hit 1")
  return true
end)

local flaky = flow.task("flaky", function()
  local url = base .. "/flaky/sf?fail=2&code=503&retry_after=2"
  local a, b, c = fetch(url), fetch(url), fetch(url)
  check.eq(a.status, 503, "first attempt")
  check.eq(a.headers["retry-after"], "2", "Retry-After on a failure")
  check.eq(json.decode(b.body).attempt, 2, "second attempt numbered")
  check.eq(b.status, 503, "second attempt")
  check.eq(c.status, 200, "third attempt")
  check.eq(c.headers["retry-after"], nil, "no Retry-After on success")
  check.eq(json.decode(c.body).ok, true, "ok on success")
  check.eq(json.decode(fetch(base .. "/count/sf").body).count, 3, "/count")
  check.eq(json.decode(fetch(base .. "/count/other").body).count, 0, "/count of an unused key")
  check.eq(fetch(base .. "/flaky/plain").status, 500, "default: one 500")
  check.eq(fetch(base .. "/flaky/plain").status, 200, "then 200")
  -- Counters are shared with the HTTPS listener.
  local ca = os.getenv("TEST_CA_FILE")
  check.eq(json.decode(fetch(tls .. "/count/sf", { cafile = ca }).body).count, 3, "/count over HTTPS")
  return true
end)

local status = flow.task("status", function()
  local r = fetch(base .. "/status/429?retry_after=7")
  check.eq(r.status, 429, "/status code")
  check.eq(r.headers["retry-after"], "7", "Retry-After")
  check.eq(r.reason, "Too Many Requests", "reason phrase")
  local t = fetch(base .. "/status/404?body=nothing%20here")
  check.eq(t.status, 404, "404")
  check.eq(t.body, "nothing here", "body=TEXT")
  check.eq(t.headers["retry-after"], nil, "no Retry-After unless asked")
  check.eq(fetch(base .. "/status/204").body, "", "204 has no body")
  check.eq(fetch(base .. "/no/such/thing").status, 404, "unknown endpoint")
  check.eq(fetch(base .. "/json?bytes=lots").status, 400, "bad parameter")
  return true
end)

local broken = flow.task("broken", function()
  local r = fetch(base .. "/reset/rr?fail=2")
  assert(r.error and r.error:find("ConnectionReset"), "reset: " .. tostring(r.error))
  assert(fetch(base .. "/reset/rr?fail=2").error, "second reset")
  check.eq(fetch(base .. "/reset/rr?fail=2").status, 200, "after the resets")
  local t = fetch(base .. "/truncated?bytes=1000")
  assert(t.error and t.error:find("IncompleteRead%(500 bytes read, 500 more expected%)"),
         "truncated: " .. tostring(t.error))
  local g = fetch(base .. "/garbage")
  check.eq(g.status, 200, "garbage status")
  check.eq(pcall(json.decode, g.body), false, "garbage is not JSON")
  check.eq(#fetch(base .. "/big?bytes=300000").body, 300000, "big")
  check.eq(#fetch(base .. "/big?bytes=300000&chunked=1").body, 300000, "big, chunked")
  local s = fetch(base .. "/slow?bytes=1000&chunk=250&delay=0.2")
  check.eq(#s.body, 1000, "slow size")
  check.between(s.elapsed, 0.55, 60, "slow: three 0.2 s pauses (60: a hang guard)")
  return true
end)

local misc = flow.task("misc", function()
  local e = json.decode(fetch(base .. "/echo/p?a=1&b=2&b=3", { method = "PATCH", data = "héllo" }).body)
  check.eq(e.method, "PATCH", "echo method")
  check.eq(e.path, "/echo/p", "echo path")
  check.eq(e.query.a, "1", "echo query")
  check.eq(#e.query.b, 2, "repeated query key is a list")
  check.eq(e.body, "héllo", "echo body")
  check.eq(e.headers["content-length"], "6", "lower-case header names")
  check.eq(json.decode(fetch(base .. "/echo", { method = "DELETE" }).body).method, "DELETE", "delete")
  local red = fetch(base .. "/redirect?to=/json%3Fbytes%3D100&code=307")
  check.eq(red.status, 307, "redirect code")
  check.eq(red.headers.location, "/json?bytes=100", "Location")
  check.eq(fetch(base .. "/redirect").headers.location, "/json", "default redirect")
  local h = fetch(base .. "/headers")
  check.eq(h.headers["x-custom"], "yes", "X-Custom")
  check.eq(h.headers["set-cookie"], "a=1; Path=/, b=2; Path=/", "two Set-Cookie lines")
  return true
end)

local https = flow.task("https", function()
  assert(tls:match("^https://127%.0%.0%.1:%d+$"), "TEST_HTTPS_URL: " .. tls)
  assert(tls ~= base:gsub("^http:", "https:"), "HTTPS has its own port")
  local ok = fetch(tls .. "/json?bytes=700", { cafile = os.getenv("TEST_CA_FILE") })
  check.eq(ok.status, 200, "HTTPS with the CA file")
  check.eq(#ok.body, 700, "HTTPS body")
  local refused = fetch(tls .. "/json")
  assert(refused.error and refused.error:find("CERTIFICATE_VERIFY_FAILED"),
         "self-signed refused without the CA file: " .. tostring(refused.error))
  return true
end)

-- The server answers other requests while some stall, and the stalls
-- overlap: each of the eight waits until all eight are in flight at once
-- (the server's own count), so none answers unless they overlap. The 60 s
-- is only a hang guard; nothing here depends on how long a request takes,
-- which on a loaded machine can be anything.
local stall = flow.task("stall", function(i)
  local r = fetch(base .. "/stall?together=8&group=selftest&seconds=60&i=" .. i, { timeout = 80 })
  check.eq(r.status, 200, "stall status")
  return json.decode(r.body).together
end)

local verify = flow.task("verify", function(results, stalls)
  for name, ok in pairs(results) do check.eq(ok, true, name) end
  check.eq(#stalls, 8, "stalled requests")
  for i, together in ipairs(stalls) do
    check.eq(together, 8, "stalled requests in flight at once, as request " .. i .. " saw")
  end
  -- A plain stall still waits its seconds (a lower bound only).
  local plain = fetch(base .. "/stall?seconds=0.3")
  check.eq(plain.status, 200, "plain stall status")
  check.between(plain.elapsed, 0.29, math.huge, "a plain stall waits")
  -- Last, when no other task is counting: /reset counts too, and
  -- /reset-counters forgets every key.
  check.eq(json.decode(fetch(base .. "/count/rr").body).count, 3, "/count of /reset")
  check.eq(fetch(base .. "/reset-counters").status, 200, "/reset-counters")
  check.eq(json.decode(fetch(base .. "/count/sf").body).count, 0, "counters cleared")
end)

local places = flow.task("places", function(p)
  local r = fetch(p.url)
  check.eq(#r.body, 123, "{http} in args")
  check.eq(p.fixtures, fixtures, "{fixtures} in args")
  check.eq(p.support, os.getenv("TEST_SUPPORT"), "{support} in args")
  check.eq(json.decode(fetch(os.getenv("COUNT_URL")).body).count, 0, "{http} in env")
  check.eq(os.getenv("TEST_CA_FILE") ~= nil, true, "TEST_CA_FILE with https")
end)

local none = flow.task("none", function()
  check.eq(base, nil, "no TEST_HTTP_URL without a server")
  check.eq(tls, nil, "no TEST_HTTPS_URL without a server")
  local f = io.open(fixtures .. "/complaints.json")
  check.eq(f ~= nil, true, "TEST_FIXTURES is set for every case")
  f:close()
  f = io.open(os.getenv("TEST_SUPPORT") .. "/server/fetch.py")
  check.eq(f ~= nil, true, "TEST_SUPPORT is set for every case")
  f:close()
end)

return flow.define("server selftest", { params = { url = "", fixtures = "", support = "" } }, function(p)
  if case == "places" then return places(p) end
  if case == "none" then return none() end
  verify({ json = json_endpoint(), complaints = complaints(), flaky = flaky(),
           status = status(), broken = broken(), misc = misc(), https = https() },
         stall:map({ 1, 2, 3, 4, 5, 6, 7, 8 }))
end)
