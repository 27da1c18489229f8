-- A serving process starts its workers once and reuses them across its
-- runs: every run's worker task runs in the same worker process (with
-- --workers 1), which is gone once the server has stopped.
-- run: three served runs share one worker, which ends with the server
-- args: --max-runs 3 --workers 1 {script} --flow served
-- stderr: served 3 run\(s\): 0 failed
-- stderr: (?s)(where: Success \(attempt 1, [0-9.]+ s, worker (?:[^\s:()]+:)?(\d+)\).*){3}
-- after: 0 {script} --flow check
local flow = require "flowlua"

local pid = require("lib.check").pid

local where = flow.task("where", { worker = true }, function()
  local f = assert(io.open("pids.txt", "a"))
  f:write(pid(), "\n")
  f:close()
end)

-- After the server stopped: three runs, one worker, and it is gone.
local check = flow.task("check", function()
  local pids = {}
  for line in io.lines("pids.txt") do pids[#pids + 1] = tonumber(line) end
  assert(#pids == 3, "3 runs wrote their worker's pid, got " .. #pids)
  assert(pids[1] == pids[2] and pids[2] == pids[3],
    "one worker for every run, got " .. table.concat(pids, ", "))
  local stat = io.open("/proc/" .. pids[1] .. "/stat")
  local state = stat and stat:read("a"):match("^%d+ %b() (%a)")
  if stat then stat:close() end
  assert(not state or state == "Z",
    "worker " .. pids[1] .. " outlived the server (state " .. tostring(state) .. ")")
end)

return {
  flow.define("served", { schedule = flow.interval { seconds = 0.1 } },
    function() where() end),
  flow.define("check", function() check() end),
}
