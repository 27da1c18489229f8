-- Retries: attempts, exponential backoff between them, hooks, retry_if,
-- and flow.fail, which ends the task without retrying.
-- run: flaky task succeeds on its third attempt, backoff 0.1 then 0.2 s
-- stderr: flaky: Retrying in 0.1 s \(attempt 1 of 4 failed after [0-9.]+ s\): .*retries.lua:\d+: flaky attempt 1
-- stderr: flaky: Retrying in 0.2 s \(attempt 2 of 4
-- stderr: flaky: Success \(attempt 3,
-- stderr: verify: Success
-- not-stderr: attempt 4
-- not-stderr: hook failed
-- run: retries exhausted: Failed after 1 + 2 attempts, with the traceback
-- env: CASE=always
-- exit: 1
-- stderr: flaky: Failed \(attempt 3 of 3, [0-9.]+ s\): .*retries.lua:\d+: flaky attempt 3
-- stderr: stack traceback
-- stderr: ^  flaky +Failed +3
-- stderr: verify: TriggerFailed
-- run: an error inside a hook is logged and ignored
-- env: CASE=bad_hooks
-- stderr: flaky: on_retry hook failed \(ignored\): .*retries.lua:\d+: hook trouble
-- stderr: flaky: on_success hook failed \(ignored\): .*retries.lua:\d+: hook trouble
-- stderr: flaky: Success \(attempt 3,
-- stderr: verify: Success
-- run: retry_if says no
-- env: CASE=retry_if
-- exit: 1
-- stderr: flaky: Failed \(attempt 1 of 4
-- not-stderr: Retrying
-- run: flow.fail does not retry
-- env: CASE=fail
-- exit: 1
-- stderr: flaky: Failed \(attempt 1 of 4, [0-9.]+ s\): no point in retrying
-- not-stderr: Retrying
local flow = require "flowlua"
local check = require "lib.check"
local case = os.getenv("CASE")

local starts, hooks = {}, { retry = 0, success = 0, failure = 0 }
local flaky = flow.task("flaky", {
  retries = case == "always" and 2 or 3,
  retry_delay = 0.1,
  backoff = 2,
  retry_if = function(err)
    return case ~= "retry_if" and tostring(err):match("flaky") ~= nil
  end,
  on_retry = function(ctx, info)
    hooks.retry = hooks.retry + 1
    if case == "bad_hooks" then error("hook trouble") end
    check.eq(info.state, "Retrying", "on_retry state")
    check.eq(ctx.task, "flaky", "on_retry ctx.task")
    check.near(info.delay, 0.1 * 2 ^ (info.attempt - 1), 1e-9, "on_retry delay")
  end,
  on_success = function(_, info)
    hooks.success = hooks.success + 1
    if case == "bad_hooks" then error("hook trouble") end
    check.eq(info.result, "done", "on_success result")
  end,
  on_failure = function(_, info)
    hooks.failure = hooks.failure + 1
    check.eq(info.state, "Failed", "on_failure state")
  end,
}, function()
  local ctx = flow.context()
  starts[ctx.attempt] = flow.now()
  if case == "fail" then flow.fail("no point in retrying") end
  if case == "always" or ctx.attempt < 3 then
    error("flaky attempt " .. ctx.attempt)
  end
  return "done"
end)

local verify = flow.task("verify", function(result)
  check.eq(result, "done", "result")
  check.eq(hooks.retry, 2, "on_retry calls")
  check.eq(hooks.success, 1, "on_success calls")
  check.eq(hooks.failure, 0, "on_failure calls")
  -- Backoff: 0.1 s then 0.2 s between attempts. The lower bounds are the
  -- point; the upper ones only catch a delay in the wrong unit, and leave
  -- a loaded machine seconds of slack.
  check.between(starts[2] - starts[1], 0.095, 5, "first retry delay")
  check.between(starts[3] - starts[2], 0.195, 5, "second retry delay")
end)

return flow.define("retries", {}, function()
  verify(flaky())
end)
