-- flow.secret returns the plain value to the script, and the value is masked
-- in every log line and error message, in text and JSON logs alike, and in
-- every encoding flowlua itself writes it in: JSON-escaped (params, results),
-- percent-encoded (an http query), and a cache key made from it is stored
-- hashed. The check flow reads every byte of the history's files (database,
-- WAL, journals) and looks for a piece of the secret that survives each
-- encoding ("w0rdXYZ").
-- run: text logs
-- args: {script} --flow secrets
-- env: API_TOKEN=s3cr3t-t0ken
-- exit: 1
-- stderr: use: token has 12 characters
-- stderr: use: sending \*\*\* to the server
-- stderr: leak: Failed .*: .*secrets.lua:\d+: auth failed for \*\*\*
-- not-stderr: s3cr3t
-- run: json logs
-- args: --log-format json {script} --flow secrets
-- env: API_TOKEN=s3cr3t-t0ken
-- exit: 1
-- json-lines: stderr
-- stderr: "message":"sending \*\*\* to the server"
-- not-stderr: s3cr3t
-- run: the history keeps the task's log lines masked
-- args: show last --json
-- before: 1 {script} --flow secrets
-- env: API_TOKEN=s3cr3t-t0ken
-- stdout: "line":"sending \*\*\* to the server"
-- not-stdout: s3cr3t
-- run: a missing secret is an error naming it
-- env: CASE=missing
-- exit: 2
-- stderr: flow.secret: environment variable 'NOT_SET_ANYWHERE' is not set
-- run: a secret with a quote, a backslash, a space and a slash leaks in no encoding
-- server: http
-- before: 1 {script} --flow encoded --param 'token=pa"ss\w0rdXYZ 1/x'
-- args: {script} --flow encoded --param 'token=pa"ss\w0rdXYZ 1/x'
-- env: API_TOKEN=pa"ss\w0rdXYZ 1/x
-- exit: 1
-- stderr: keyed: Cached \(key 'tok:\*\*\*'\)
-- stderr: query: fetched http://127.0.0.1:\d+/status/500\?token=\*\*\*
-- stderr: query: Failed .*GET http://127.0.0.1:\d+/status/500\?token=\*\*\*: HTTP 500
-- stderr: result: the token is \*\*\*
-- stderr: result: Success
-- not-stderr: w0rdXYZ
-- after: 0 {script} --flow store_check --state :memory:
local flow = require "flowlua"
if os.getenv("CASE") == "missing" then flow.secret("NOT_SET_ANYWHERE") end

local use = flow.task("use", function()
  local token = flow.secret("API_TOKEN")
  flow.log.info("token has %d characters", #token)
  flow.log.info("sending %s to the server", token)
  return token
end)
local leak = flow.task("leak", function(token)
  error("auth failed for " .. token)
end)

local secrets = flow.define("secrets", {}, function()
  leak(use())
end)

-- ---- the encodings ----------------------------------------------------------

-- Registered before the run is recorded, so that the params are masked.
local secret = os.getenv("API_TOKEN") and flow.secret("API_TOKEN")

-- The result holds the secret: JSON-escaped it must not be stored.
local result = flow.task("result", function(token)
  flow.log.info("the token is %s", token) -- kept in the history, masked
  return { token = token, also = flow.json.encode({ token }) }
end)

local keyed = flow.task("keyed", {
  cache_key = function(token) return "tok:" .. token end,
  cache_for = 3600,
}, function(token) return "computed" end)

local query = flow.task("query", function(token)
  local r = flow.http.get(os.getenv("TEST_HTTP_URL") .. "/status/500",
                          { query = { token = token } })
  flow.log.info("fetched %s", r.url)
  r:raise_for_status()
end)

local encoded = flow.define("encoded", { params = { token = "" } }, function(p)
  assert(p.token == secret, "the param is the secret")
  result(p.token)
  keyed(p.token)
  query(p.token)
end)

-- Every file of the history, byte by byte: no trace of the secret.
local store_check = flow.define("store_check", {}, function()
  local names = {}
  local ls = assert(io.popen("ls -a .flowlua"))
  for name in ls:lines() do
    if name ~= "." and name ~= ".." then names[#names + 1] = name end
  end
  ls:close()
  local seen_flow = false
  for _, name in ipairs(names) do
    local f = assert(io.open(".flowlua/" .. name, "rb"))
    local bytes = f:read("a")
    f:close()
    if bytes:find("w0rdXYZ", 1, true) then
      error(string.format(".flowlua/%s holds the secret", name))
    end
    seen_flow = seen_flow or bytes:find("encoded", 1, true) ~= nil
  end
  assert(#names > 0 and seen_flow, "the history was not found in .flowlua")
end)

return { secrets = secrets, encoded = encoded, store_check = store_check }
