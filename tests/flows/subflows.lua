-- Subflows: a flow called inside another flow's body runs as a task run of
-- the parent, with a run of its own. Its result is what its body returned
-- (nodes resolved) or its final task runs' results by key; a child that
-- fails fails the call, whose retries, timeout and trigger rules apply as
-- to a task; params are checked as the child's own; a resume of the parent
-- keeps a subflow that finished.
-- run: results, params from a node, options, maps, nesting
-- args: {script} --flow parent
-- stderr: start: Success
-- stderr: child: subflow 'child' run [0-9a-f-]{36} started
-- stderr: flow 'child' run [0-9a-f-]{36}: Success
-- stderr: flow 'outer' run [0-9a-f-]{36}: Success
-- stderr: check: checked 7 results
-- stderr: flow 'parent' run .*: Success .*8 task runs: 8 Success
-- run: runs and show link a parent and its subflows' runs
-- before: 0 {script} --flow parent
-- args: runs
-- stdout: (?m)^[0-9a-f]{8}  child \(subflow of [0-9a-f]{8}\) +Success
-- stdout: (?m)^[0-9a-f]{8}  outer \(subflow of [0-9a-f]{8}\) +Success
-- stdout: (?m)^[0-9a-f]{8}  parent +Success
-- run: show last is the parent, with the run each subflow call made
-- before: 0 {script} --flow parent
-- args: show last
-- stdout: (?m)^Flow +parent$
-- stdout: (?m)^child#2 +Success +1 +\S+ +[0-9a-f]{8}
-- stdout: (?m)^child#3\[2\] +Success +1 +\S+ +[0-9a-f]{8}
-- run: show last --flow shows that flow's newest run, a subflow's too, with its parent
-- before: 0 {script} --flow parent
-- args: show last --flow outer
-- stdout: (?m)^Flow +outer$
-- stdout: (?m)^Parent +[0-9a-f-]{36} \(task outer\)$
-- run: show --json lists the subflows' runs
-- before: 0 {script} --flow parent
-- args: show last --json
-- stdout: "subflows":\[\{"task":"[^"]+","run_id":"[0-9a-f-]{36}","state":"Success"\}
-- stdout: \{"task":"child#3\[2\]","run_id":"[0-9a-f-]{36}","state":"Success"\}
-- run: a child that fails fails the call, after the call's retries
-- args: {script} --flow failing_parent
-- exit: 1
-- stderr: flow 'failing' run [0-9a-f-]{36}: Failed
-- stderr: failing: Retrying in 0 s \(attempt 1 of 2 failed
-- stderr: failing: Failed \(attempt 2 of 2
-- stderr: subflow 'failing' run [0-9a-f-]{36} ended Failed: task 'boom' Failed: .*subflows.lua:\d+: boom
-- stderr: cleanup: Success
-- stderr: flow 'failing_parent' run .*: Failed
-- run: a child that fails once succeeds on the call's retry
-- args: {script} --flow flaky_parent
-- stderr: flaky: Retrying
-- stderr: flaky: Success \(attempt 2
-- stderr: flow 'flaky_parent' run .*: Success
-- run: params the child refuses fail the call at once, without retries
-- args: {script} --flow bad_params
-- exit: 1
-- stderr: child: Failed \(attempt 1 of 3
-- stderr: subflow 'child' could not start: flow 'child': parameter 'n' must be an integer >= 1, got '0'
-- stderr: child#2: Failed .*
-- stderr: subflow 'child' could not start: flow 'child' has no parameter 'zzz' \(its parameters: n\)
-- not-stderr: Retrying
-- run: a subflow call's timeout cancels its child run
-- args: {script} --flow timeout_parent
-- exit: 1
-- stderr: slow: TimedOut
-- stderr: flow 'slow' run [0-9a-f-]{36}: Cancelled
-- stderr: flow 'timeout_parent' run .*: Failed
-- run: a signal cancels the parent and its child
-- args: {script} --flow signal_parent
-- signal: SIGINT after wait: Running
-- exit: 130
-- stderr: flow 'slow' run [0-9a-f-]{36}: Cancelled
-- stderr: flow 'signal_parent' run .*: Cancelled
-- run: a resume of the parent keeps the subflow that finished
-- before: 1 {script} --flow resume_parent
-- args: {script} --flow resume_parent --resume last
-- stderr: counted: Success \(kept from run [0-9a-f]{8}\)
-- stderr: flow 'resume_parent' run .*: Success
-- file: counted.txt = {fixtures}/subflow-counted-once.txt
-- run: a flow that calls itself stops at the nesting limit
-- args: {script} --flow forever
-- exit: 1
-- stderr: subflows nested 32 deep \(does the flow call itself\?\)
-- run: a subflow is called from a flow body only
-- args: {script} --flow in_task
-- exit: 1
-- stderr: subflow 'child' called inside a task: flows are called from a flow body
-- run: a subflow call takes no worker options
-- args: {script} --flow worker_option
-- exit: 2
-- stderr: flow.subflow 'child': option 'worker' is a task's, not a subflow's
-- run: a subflow's name may not be a task's
-- args: {script} --flow clash
-- exit: 2
-- stderr: subflow 'double': the script also defines a task named 'double'
-- run: a body returns its own nodes only
-- args: {script} --flow returns_foreign
-- exit: 1
-- stderr: flow 'grab': the flow body returned a node of another flow
-- run: a child run that cannot start fails the call, freeing what it built (in memory: with PostgreSQL, --workers 0 leaves worker tasks to `flowlua worker` processes)
-- args: {script} --flow uses_worker --workers 0 --state :memory:
-- exit: 1
-- stderr: subflow 'on_worker' could not start: .*worker
-- run: params of a call must be a table
-- args: {script} --flow not_table
-- exit: 2
-- stderr: subflow 'child': params must be a table \(or a node whose result is one\), got string
local flow = require "flowlua"

-- The flows a case runs by name (the script returns them); the others are
-- only called as subflows.
local runnable = {}
local function main(f)
  runnable[#runnable + 1] = f
  return f
end

local double = flow.task("double", function(x) return x * 2 end)
local add = flow.task("add", function(a, b) return a + b end)

local child = flow.define("child", { params = { n = flow.param.int(1, { min = 1 }) } },
  function(p)
    return { total = add(double(p.n), 1), n = p.n, note = "plain values stay" }
  end)

-- No return: the result is the final task runs' results, by key.
local leaves = flow.define("leaves", { params = { n = 2 } }, function(p)
  double(p.n)
  add(p.n, 10)
  add(double(p.n), 0) -- add#2: final; double#2 is not
end)

-- Nested: a subflow that calls a subflow.
local outer = flow.define("outer", { params = { n = 1 } }, function(p)
  return child({ n = p.n })
end)

local check = flow.task("check", function(a, b, c, list, nested)
  local function eq(got, want, what)
    if got ~= want then
      error(("%s: got %s, want %s"):format(what, tostring(got), tostring(want)))
    end
  end
  eq(a.total, 11, "child(n=5).total")
  eq(a.note, "plain values stay", "child's plain value")
  eq(b.total, 7, "subflow(child, n=3).total")
  eq(c.double, 4, "leaves: double")
  eq(c.add, 12, "leaves: add")
  eq(c["add#2"], 4, "leaves: add#2")
  eq(c["double#2"], nil, "leaves: double#2 is not final")
  eq(#list, 2, "map length")
  eq(list[2].total, 5, "map element 2")
  eq(nested.total, 3, "outer's child")
  flow.log.info("checked 7 results")
end)

main(flow.define("parent", function()
  local start = flow.task("start", function() return 5 end)()
  local a = child({ n = start })
  local b = flow.subflow(child, { n = 3 }, { retries = 1, timeout = 60 })
  local c = leaves()
  local list = child:map({ { n = 1 }, { n = 2 } })
  check(a, b, c, list, outer())
end))

local boom = flow.task("boom", function() error("boom") end)
local failing = flow.define("failing", function() boom() end)
local cleanup = flow.task("cleanup", { trigger = "all_done" }, function() return "cleaned" end)
main(flow.define("failing_parent", function()
  cleanup(flow.subflow(failing, nil, { retries = 1 }))
end))

-- Fails the first time it runs in a process's folder, then succeeds.
local once = flow.task("once", function()
  local f = io.open("once.mark")
  if f then f:close() return "second time" end
  f = assert(io.open("once.mark", "w"))
  f:close()
  error("the first time fails")
end)
local flaky = flow.define("flaky", function() once() end)
main(flow.define("flaky_parent", function()
  flow.subflow(flaky, nil, { retries = 1 })
end))

main(flow.define("bad_params", function()
  flow.subflow(child, { n = 0 }, { retries = 2 })
  child({ zzz = 1 })
end))

local wait = flow.task("wait", function() flow.sleep(60) end)
local slow = flow.define("slow", function() wait() end)
main(flow.define("timeout_parent", function()
  flow.subflow(slow, nil, { timeout = 0.3 })
end))
main(flow.define("signal_parent", function() slow() end))

-- The subflow's body counts its runs in counted.txt; 'late' fails the
-- first run of the parent only.
local count = flow.task("count", function()
  local f = assert(io.open("counted.txt", "a"))
  f:write("counted\n")
  f:close()
  return 1
end)
local counted = flow.define("counted", function() return count() end)
local late = flow.task("late", function(x)
  local f = io.open("late.mark")
  if f then f:close() return x end
  f = assert(io.open("late.mark", "w"))
  f:close()
  error("late fails the first run")
end)
main(flow.define("resume_parent", function() late(counted()) end))

local forever
forever = main(flow.define("forever", function() forever() end))

local in_task = flow.task("in_task", function() return child({ n = 1 }) end)
main(flow.define("in_task", function() in_task() end))

main(flow.define("worker_option", function()
  flow.subflow(child, { n = 1 }, { worker = true })
end))

local clash = flow.define("double", function() end)
main(flow.define("clash", function() clash() end))

local stolen
main(flow.define("returns_foreign", function()
  local grab = flow.define("grab", function() return stolen end)
  stolen = double(1)
  grab()
end))

local remote = flow.task("remote", { worker = true }, function() return 1 end)
local on_worker = flow.define("on_worker", function() remote() end)
main(flow.define("uses_worker", function() on_worker() end))

main(flow.define("not_table", function() child("n=1") end))

return runnable
