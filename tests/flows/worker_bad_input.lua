-- Bad input around worker tasks: a clear message and exit 2, nothing
-- started (no task runs, no run recorded).
-- run: --workers -1
-- args: {script} --workers -1
-- exit: 2
-- stderr: --workers expects a whole number >= 1, got '-1'
-- run: --workers abc
-- args: {script} --workers abc
-- exit: 2
-- stderr: --workers expects a whole number >= 1, got 'abc'
-- run: a worker program that is missing
-- args: {script}
-- env: FLOWLUA_WORKER_PROGRAM=/nonexistent/flowlua
-- exit: 2
-- stderr: the worker program '/nonexistent/flowlua' cannot be run: No such file or directory
-- not-stderr: Running
-- run: a worker program that is not executable
-- args: {script}
-- env: FLOWLUA_WORKER_PROGRAM={fixtures}/README.md
-- exit: 2
-- stderr: the worker program '.*fixtures/README.md' cannot be run: Permission denied
-- not-stderr: Running
-- run: a queue option that is not a name
-- args: {dir}/lib/worker_bad_queue.lua
-- exit: 2
-- stderr: option 'queue' must be a queue name \(a string of 1 to 200 bytes, no NUL\), got number
local flow = require "flowlua"
local t = flow.task("t", { worker = true }, function() return 1 end)
return flow.define("worker_bad_input", function() t() end)
