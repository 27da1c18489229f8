-- The flows of tests/system/fault/stale_temp.py. CASE=endless streams rows
-- to a csv.writer until the process is killed; CASE=write writes
-- out/a.txt, plants a stale-looking temporary file named by DEAD_PID, and
-- writes out/b.txt (that one stays: a folder is swept once per runtime).
local flow = require "flowlua"

local work = flow.task("work", function()
  if os.getenv("CASE") == "endless" then
    local w = flow.csv.writer("out/big.csv", { header = { "n", "text" } })
    local n = 0
    while true do
      n = n + 1
      w:write({ n, "a line of some length to make the file grow quickly" })
    end
  end
  flow.fs.write("out/a.txt", "a")
  local late = "out/.late.txt.flowlua-" .. os.getenv("DEAD_PID") .. "-0badf00d.tmp"
  assert(io.open(late, "w")):close()
  flow.fs.write("out/b.txt", "b")
end)

return flow.define("stale temp", {}, function() work() end)
