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
local flow = require "flowlua"
local check = require "lib.check"

local huge = flow.task("huge", function()
  error("HEAD-MARK " .. string.rep("x", 50e6) .. " TAIL-MARK")
end)
local failed = flow.task("failed", function()
  flow.fail("FAIL-HEAD " .. string.rep("y", 50e6) .. " FAIL-TAIL")
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

return {
  big = flow.define("big", {}, function()
    huge()
    failed()
  end),
  check = flow.define("check", { params = { log = "" } }, function(p) measure(p) end),
}
