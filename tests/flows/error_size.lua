-- sqlite-only: it measures the SQLite file and its WAL
-- Error text is bounded where it is made: a task that raises a 50 MB
-- message (or flow.fail with one) fails as usual, but the history and the
-- log keep only the message's first 2 KiB and last 8 KiB, with the number
-- of bytes left out between them, and the traceback after it. The database
-- stays small and `show` prints the bounded text.
-- run: the log gets the bounded error, the history stays small
-- args: {script} --flow big
-- exit: 1
-- stderr: huge: Failed .*error_size.lua:\d+: HEAD-MARK x+\n +\[. 499\d{5} bytes left out .\]\n +x+ TAIL-MARK\n +stack traceback:
-- stderr: failed: Failed .*FAIL-HEAD y+\n +\[. 499\d{5} bytes left out .\]\n +y+ FAIL-TAIL
-- stderr: flow 'big' run .*: Failed
-- after: 0 {script} --flow check --param log={stderr}
-- run: show prints the bounded error
-- before: 1 {script} --flow big
-- args: show last --json
-- stdout: "state":"Failed"
-- stdout: "error":"[^"]*HEAD-MARK x{1000,}\\n\[. 499\d{5} bytes left out .\]\\nx{1000,} TAIL-MARK\\nstack traceback:
-- stdout: "error":"FAIL-HEAD y{1000,}\\n\[. 499\d{5} bytes left out .\]\\ny{1000,} FAIL-TAIL"
-- not-stdout: x{8200}
-- run: a secret across the cut is masked before the text is cut
-- args: {script} --flow secret
-- env: API_TOKEN=s3cr3t-t0ken
-- exit: 1
-- stderr: leak: Failed .*a{2000,}\*\*\*y+\n +\[. 499\d{5} bytes left out .\]
-- not-stderr: s3cr3t
-- after: 0 {script} --flow history_clean
local flow = require "flowlua"
local check = require "lib.check"

local huge = flow.task("huge", function()
  error("HEAD-MARK " .. string.rep("x", 50e6) .. " TAIL-MARK")
end)
local failed = flow.task("failed", function()
  flow.fail("FAIL-HEAD " .. string.rep("y", 50e6) .. " FAIL-TAIL")
end)

-- flow.fail's text has no location in front: the secret starts 8 bytes
-- before the 2 KiB cut and ends after it.
local leak = flow.task("leak", function()
  flow.fail(string.rep("a", 2040) .. flow.secret("API_TOKEN") .. string.rep("y", 50e6))
end)

local function size(path)
  local f = io.open(path, "rb")
  if not f then return 0 end
  local n = f:seek("end")
  f:close()
  return n
end

-- What the failed run left: a log and a history of a few KiB each, not 100 MB.
local measure = flow.task("measure", function(p)
  local log = size(p.log)
  check.between(log, 10000, 64 * 1024, "bytes of the run's log")
  local db = size(".flowlua/state.db") + size(".flowlua/state.db-wal")
  check.between(db, 1, 2 * 1024 * 1024, "bytes of the history (state.db and its WAL)")
end)

-- No piece of the secret in any file of the history.
local history_clean = flow.task("history_clean", function()
  local bounded = false
  for _, name in ipairs({ "state.db", "state.db-wal" }) do
    local f = io.open(".flowlua/" .. name, "rb")
    if f then
      local bytes = f:read("a")
      f:close()
      check.eq(bytes:find("s3cr3t", 1, true), nil, ".flowlua/" .. name .. " holds a piece of the secret")
      bounded = bounded or bytes:find("bytes left out", 1, true) ~= nil
    end
  end
  check.eq(bounded, true, "the bounded error is in the history")
end)

return {
  big = flow.define("big", {}, function()
    huge()
    failed()
  end),
  check = flow.define("check", { params = { log = "" } }, function(p) measure(p) end),
  secret = flow.define("secret", {}, function() leak() end),
  history_clean = flow.define("history_clean", {}, function() history_clean() end),
}
