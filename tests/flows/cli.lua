-- The command line: help, version, usage errors (exit 2), several flows in
-- one script, --flow, and `check`, which builds graphs but runs nothing.
-- run: help
-- args: --help
-- stdout: ^Usage: flowlua \[options\] SCRIPT.lua
-- stdout: --param NAME=VALUE
-- run: version
-- args: --version
-- stdout: ^flowlua \d+\.\d+\.\d+$
-- run: unknown option
-- args: --bogus {script}
-- exit: 2
-- stderr: flowlua: unknown option '--bogus'
-- stderr: Try 'flowlua --help'
-- run: bad concurrency
-- args: --concurrency 0 {script}
-- exit: 2
-- stderr: --concurrency expects a whole number >= 1, got '0'
-- run: option without its value
-- args: {script} --flow
-- exit: 2
-- stderr: option '--flow' needs a value
-- run: help names pause and unpause
-- args: --help
-- stdout: flowlua pause FLOW \[--state PATH\|URL\]
-- stdout: flowlua unpause FLOW \[--state PATH\|URL\]
-- run: pause without a flow
-- args: pause
-- exit: 2
-- stderr: pause expects a flow name: 'flowlua pause FLOW'
-- run: unpause of two flows
-- args: unpause first second
-- exit: 2
-- stderr: unexpected argument 'second' \(one flow at a time\)
-- run: pause with an option of running
-- args: pause first --once
-- exit: 2
-- stderr: 'flowlua pause' takes a flow name, --state, --log-level
-- run: no script
-- args: --once
-- exit: 2
-- stderr: no script given
-- run: two flows and no --flow
-- exit: 2
-- stderr: defines 2 flows \('first', 'second'\): choose one by name \(--flow NAME\)
-- run: --flow picks one
-- args: --flow second {script}
-- stderr: only_second: Success
-- not-stderr: only_first
-- run: --flow with an unknown name
-- args: --flow third {script}
-- exit: 2
-- stderr: has no flow named 'third' \(it defines 'first', 'second'\)
-- run: check builds every flow and runs nothing
-- args: check {script}
-- stdout: ^ok: flow 'first' \(2 tasks\)$
-- stdout: ^ok: flow 'second' \(1 tasks\)$
-- not-stderr: Running
-- run: check reports a broken flow
-- args: check {script}
-- env: BREAK=1
-- exit: 2
-- stderr: flow 'second': the flow body failed: .*second is broken
-- stdout: ok: flow 'first'
local flow = require "flowlua"

local only_first = flow.task("only_first", function() return 1 end)
local only_second = flow.task("only_second", function() return 2 end)

return {
  flow.define("first", {}, function() only_first(only_first()) end),
  flow.define("second", {}, function()
    if os.getenv("BREAK") then error("second is broken") end
    only_second()
  end),
}
