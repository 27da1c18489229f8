-- resume_chain: a resume records the tasks it keeps as it reaches them, so
-- a resume killed before it got to one leaves it Pending. Resuming that
-- crashed resume must keep the task from the run it resumed, not run it
-- again.
--
-- 'flaky' fails in the first run; 'after' (trigger all_done) runs after it
-- all the same and succeeds; the run fails. The first resume runs 'flaky'
-- again, and 'flaky' SIGKILLs its own flowlua process: 'after' is still
-- Pending in that resume, which the next process finds Crashed. The second
-- resume must keep 'after' from the first run and run only 'flaky' (its
-- third time, which succeeds). Every body appends a line to ran.txt.
-- run: a crashed resume's pending tasks are kept from the run it resumed
-- before: 1 {script}
-- before: -9 {script} --resume last
-- args: {script} --resume last
-- stderr: resuming run [0-9a-f-]+ \(Crashed\)
-- stderr: after: Success \(kept from run [0-9a-f]{8}\)
-- stderr: flow 'resume_chain' run .*: Success
-- file: ran.txt = {fixtures}/resume-chain-ran.txt
local flow = require "flowlua"

local function append(line)
  local f = assert(io.open("ran.txt", "a"))
  f:write(line, "\n")
  f:close()
end

local flaky = flow.task("flaky", function()
  local f = io.open("flaky.count")
  local n = (f and tonumber(f:read("l")) or 0) + 1
  if f then f:close() end
  f = assert(io.open("flaky.count", "w"))
  f:write(n, "\n")
  f:close()
  append("flaky " .. n)
  if n == 1 then error("flaky fails the first time") end
  if n == 2 then
    -- Killed mid-run, as by the OOM killer or a power cut: no clean-up.
    local pid = assert(io.open("/proc/self/stat")):read("l"):match("^(%d+)")
    os.execute("kill -KILL " .. pid)
    flow.sleep(30) -- never reached: the process is gone
  end
end)

local after = flow.task("after", { trigger = "all_done" }, function()
  append("after")
end)

return flow.define("resume_chain", function()
  after():after(flaky())
end)
