-- flow.context() inside a task, flow.log at each level, and the log options.
-- run: text logs
-- args: --param who=tester {script}
-- stderr: ^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} INFO  flow 'context' run [0-9a-f-]{36}: Running \(2 tasks\)
-- stderr: ^\S+ \S+ INFO  inspect: Running$
-- stderr: ^\S+ \S+ INFO  inspect: hello tester, 42
-- stderr: ^\S+ \S+ WARN  inspect: careful
-- stderr: ^\S+ \S+ ERROR inspect: bad news
-- stderr: ^\S+ \S+ INFO  inspect: rows: 3 of 4$
-- stderr: ^\S+ \S+ INFO  inspect: state \{"ok":true\} nil 1\.5$
-- stderr: ^\S+ \S+ INFO  inspect: \[1,2,\{"k":"v"\}\]$
-- stderr: ^\S+ \S+ INFO  inspect: not JSON table: 0x[0-9a-f]+$
-- stderr: ^\S+ \S+ INFO  inspect: 42$
-- stderr: ^\S+ \S+ INFO  inspect: $
-- stderr: ^\S+ \S+ INFO  inspect: 100% sure$
-- not-stderr: a debug line
-- stderr: ^\S+ \S+ INFO  inspect: Success \(attempt 1, [0-9.]+ s\)
-- stderr: TASK +STATE +ATTEMPTS +DURATION
-- run: debug level
-- args: --log-level debug {script}
-- stderr: DEBUG inspect: a debug line
-- run: warn level
-- args: --log-level=warn {script}
-- stderr: WARN  inspect: careful
-- not-stderr: INFO
-- stderr: TASK +STATE
-- run: quiet
-- args: --quiet {script}
-- stderr: WARN  inspect: careful
-- not-stderr: INFO|TASK +STATE
-- run: json
-- args: --log-format json {script}
-- json-lines: stderr
-- stderr: "level":"info","flow":"context","run_id":"[0-9a-f-]{36}","task":"inspect","attempt":1,"state":"Running"
-- stderr: "task":"inspect","attempt":1,"state":"Success","duration":[0-9.]+,"message":"Success
-- stderr: "message":"hello nobody, 42"
-- stderr: "flow_state":"Success"
local flow = require "flowlua"
local check = require "lib.check"

local inspect = flow.task("inspect", function(p)
  local ctx = flow.context()
  check.eq(ctx.flow, "context", "ctx.flow")
  check.eq(ctx.task, "inspect", "ctx.task")
  check.eq(ctx.attempt, 1, "ctx.attempt")
  check.eq(#ctx.run_id, 36, "ctx.run_id length")
  check.eq(ctx.params.who, p.who, "ctx.params")
  check.between(ctx.scheduled_at, flow.time() - 60, flow.time(), "ctx.scheduled_at")
  check.eq(ctx.started_at, ctx.scheduled_at, "a run not scheduled: scheduled_at is its start")
  flow.log.info("hello %s, %d", p.who, 42)
  flow.log.warn("careful")
  flow.log.error("bad news")
  flow.log.debug("a debug line")
  -- No '%' in the first argument: every argument, joined with spaces, as
  -- print() joins them, tables as JSON (or as tostring when not JSON).
  flow.log.info("rows:", 3, "of", 4)
  flow.log.info("state", { ok = true }, nil, 1.5)
  flow.log.info({ 1, 2, { k = "v" } })
  flow.log.info("not JSON", { f = print })
  flow.log.info(42)
  flow.log.info()
  flow.log.info("100% sure")
  return ctx.run_id
end)
local again = flow.task("inspect_again", function(first_run_id)
  check.eq(flow.context().run_id, first_run_id, "one run id for the whole run")
end)

return flow.define("context", { params = { who = "nobody" } }, function(p)
  again(inspect(p))
end)
