-- flow.secret returns the plain value to the script, and the value is masked
-- in every log line and error message, in text and JSON logs alike.
-- run: text logs
-- env: API_TOKEN=s3cr3t-t0ken
-- exit: 1
-- stderr: use: token has 12 characters
-- stderr: use: sending \*\*\* to the server
-- stderr: leak: Failed .*: .*secrets.lua:\d+: auth failed for \*\*\*
-- not-stderr: s3cr3t
-- run: json logs
-- args: --log-format json {script}
-- env: API_TOKEN=s3cr3t-t0ken
-- exit: 1
-- json-lines: stderr
-- stderr: "message":"sending \*\*\* to the server"
-- not-stderr: s3cr3t
-- run: a missing secret is an error naming it
-- env: CASE=missing
-- exit: 2
-- stderr: flow.secret: environment variable 'NOT_SET_ANYWHERE' is not set
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

return flow.define("secrets", {}, function()
  leak(use())
end)
