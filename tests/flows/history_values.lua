-- What the run history keeps of results, errors and params: a result that
-- cannot be stored as JSON is not an error, and a resume runs its task
-- again; a flow.secret value never reaches the history (the database, its
-- WAL or the journal), masked where it would be written, and a result that
-- holds one is not kept.
-- run: results that cannot be stored run again on resume; the rest are kept
-- before: 1 {script}
-- args: {script} --resume last
-- env: SECRET_TOKEN=hunter2-not-for-disk
-- stderr: numbers: Success \(kept from run
-- stderr: (?m)^.*fn: Running
-- stderr: (?m)^.*cyclic: Running
-- stderr: (?m)^.*secretive: Running
-- stderr: audit: Success
-- stderr: flow 'values' run .*: Success
-- run: show marks what cannot be resumed, and masks the secret
-- before: 1 {script}
-- args: show last --json
-- env: SECRET_TOKEN=hunter2-not-for-disk
-- stdout: "key":"numbers",.*"resumable":true
-- stdout: "key":"fn",.*"resumable":false
-- stdout: "key":"flaky",.*"error":"[^"]*token \*\*\* refused
-- not-stdout: hunter2
local flow = require "flowlua"

local first_time = require("lib.check").first_time

local numbers = flow.task("numbers", function() return { 1, 2, 3 } end)
local fn = flow.task("fn", function() return function() end end)
local cyclic = flow.task("cyclic", function()
  local t = {}
  t.self = t
  return t
end)
local secretive = flow.task("secretive", function()
  return { token = flow.secret("SECRET_TOKEN") }
end)
local flaky = flow.task("flaky", function()
  if first_time("flaky.marker") then
    error("token " .. flow.secret("SECRET_TOKEN") .. " refused")
  end
end)

-- Runs in the resumed run: reads every file of the history as bytes.
local audit = flow.task("audit", { trigger = "all_done" }, function(xs, f, c, s)
  assert(#xs == 3 and type(f) == "function" and c.self == c, "results")
  assert(s.token == os.getenv("SECRET_TOKEN"), "the task itself sees the secret")
  local ls = flow.shell({ "ls", ".flowlua" })
  for name in ls.stdout:gmatch("[^\n]+") do
    local data = flow.fs.read(".flowlua/" .. name)
    assert(not data:find("hunter2", 1, true), ".flowlua/" .. name .. " holds the secret")
  end
end)

return flow.define("values", function()
  local s = secretive()
  audit(numbers(), fn(), cyclic(), s):after(flaky())
end)
