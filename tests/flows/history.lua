-- The run history: every run is recorded in .flowlua/state.db; runs and
-- show print it; --resume runs a failed run again without re-running what
-- succeeded (map elements one by one), with the params stored for it.
--
-- The flow fails the first time in a folder (task 'flaky' and map element
-- 3 of 'square' fail until their marker file exists), so a resume in the
-- same folder succeeds. Every task body appends its key to ran.txt, and
-- 'report' writes it to report.txt, so what ran when is checked exactly.
-- run: a failed run is recorded and listed
-- before: 1 {script} --param n=4
-- args: runs
-- stdout: ^ID +FLOW +STATE +STARTED +DURATION +TASKS\n[0-9a-f]{8}  history  Failed .* 4 Success, 2 Failed, 1 TriggerFailed\n$
-- run: show prints each task run with its error
-- before: 1 {script} --param n=4
-- args: show last
-- stdout: Params +\{"n":4\}
-- stdout: (?m)^flaky +Failed +1 .*flaky fails the first time
-- stdout: (?m)^square\[3\] +Failed +1 .*square fails at 3
-- stdout: (?m)^square\[2\] +Success +1
-- stdout: (?m)^report +TriggerFailed
-- run: show --json and runs --json
-- before: 1 {script}
-- args: show last --json
-- stdout: "state":"Failed"
-- stdout: \{"key":"square\[1\]","task":"square","map_index":1,"state":"Success","attempts":1,
-- run: resume keeps what succeeded and runs the rest, with the stored params
-- before: 1 {script} --param n=4
-- args: {script} --resume last
-- stderr: resuming run [0-9a-f-]+ \(Failed\)
-- stderr: load: Success \(kept from run [0-9a-f]{8}\)
-- stderr: square\[2\]: Success \(kept from run
-- stderr: flow 'history' run .*: Success
-- file: report.txt = {fixtures}/history-resumed.txt
-- run: --from-task runs that task and its downstream again
-- before: 1 {script}
-- args: {script} --resume last --from-task load
-- stderr: load: Running
-- stderr: square\[1\]: Running
-- not-stderr: kept from run
-- run: a run that succeeded is not resumed
-- before: 1 {script}
-- before: 0 {script} --resume last
-- args: {script} --resume last
-- exit: 2
-- stderr: cannot resume: .*Success
-- run: resume of a run that does not exist
-- before: 1 {script}
-- args: {script} --resume 0000
-- exit: 2
-- stderr: cannot resume '0000': .*no run of flow 'history' has an id starting with '0000'
-- run: --param with --resume is refused
-- args: {script} --resume last --param n=3
-- exit: 2
-- stderr: --param cannot be given with --resume
-- run: resume refuses a graph that changed, and says what changed
-- before: 1 {script}
-- args: {script} --resume last
-- env: EXTRA_LATER=1
-- exit: 2
-- stderr: no longer matches run [0-9a-f-]+: 1 task added: 'extra'
-- stderr: --force resumes anyway
-- run: --force resumes a changed graph
-- before: 1 {script}
-- args: {script} --resume last --force
-- env: EXTRA_LATER=1
-- stderr: resuming despite a changed graph \(--force\): .*1 task added: 'extra'
-- stderr: flow 'history' run .*: Success
-- run: --state :memory: keeps no history
-- before: 1 {script} --state :memory:
-- args: runs
-- stdout: ^ID +FLOW +STATE +STARTED +DURATION +TASKS\n$
-- no-file: .flowlua
-- run: --resume needs a history
-- args: {script} --resume last --state :memory:
-- exit: 2
-- stderr: --resume needs the run history
-- run: runs with no history yet prints an empty table and creates nothing
-- args: runs --flow history --limit 5
-- stdout: ^ID +FLOW +STATE +STARTED +DURATION +TASKS\n$
-- no-file: .flowlua
-- run: show with no history
-- args: show last
-- exit: 2
-- stderr: no runs recorded yet
-- run: --state elsewhere
-- before: 1 {script} --state hist/runs.db
-- args: runs --state hist/runs.db --json
-- stdout: ^\[\{"id":"[0-9a-f-]{36}","flow":"history",.*"state":"Failed"
local flow = require "flowlua"

local function ran(key)
  local f = assert(io.open("ran.txt", "a"))
  f:write(key, "\n")
  f:close()
end

local first_time = require("lib.check").first_time

local load = flow.task("load", function(n)
  ran("load")
  local xs = {}
  for i = 1, n do xs[i] = i end
  return xs
end)
local square = flow.task("square", function(x)
  ran("square[" .. x .. "]")
  if x == 3 and first_time("square3.marker") then error("square fails at 3") end
  return x * x
end)
local flaky = flow.task("flaky", function(xs)
  ran("flaky")
  if first_time("flaky.marker") then error("flaky fails the first time") end
  return #xs
end)
local report = flow.task("report", function(squares, count)
  ran("report")
  local f = assert(io.open("ran.txt"))
  local text = f:read("a")
  f:close()
  local sum = 0
  for _, v in ipairs(squares) do sum = sum + v end
  flow.fs.write("report.txt", text .. "sum " .. sum .. " count " .. count .. "\n")
end)
local extra = flow.task("extra", function() end)

return flow.define("history", { params = { n = 3 } }, function(p)
  local xs = load(p.n)
  report(square:map(xs), flaky(xs))
  -- With EXTRA_LATER, the graph gains a task once a run has been made here.
  if os.getenv("EXTRA_LATER") then
    local f = io.open("graph.marker")
    if f then f:close() extra() else assert(io.open("graph.marker", "w")):close() end
  end
end)
