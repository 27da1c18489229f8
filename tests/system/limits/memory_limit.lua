-- The memory limit (--memory-limit): a task that allocates without bound
-- fails with an error naming the limit and the task, its memory is freed,
-- and the run goes on — other tasks run, the history records the failure,
-- the summary is printed, the exit status is 1. Retries apply as to any
-- error. Loading a script or building a flow past the limit fails naming
-- it; a map too large for it fails before any element runs.
--
-- run: a task past the limit fails; the others run and the run ends Failed
-- args: {script} --flow hog_and_friends --memory-limit 32M
-- exit: 1
-- stderr: ERROR hog: Failed \(attempt 1 of 1, [0-9.]+ s\): memory limit of 32 MiB reached in task 'hog'
-- stderr: memory_limit.lua:\d+: in function
-- stderr: INFO  friend: Success
-- stderr: INFO  after_hog: Success
-- stderr: flow 'hog_and_friends' Failed in [0-9.]+ s \(run [0-9a-f-]+\): 3 task runs — 2 Success, 1 Failed
-- stderr: ^  hog +Failed +1 .*memory limit of 32 MiB reached in task 'hog'$
-- not-stderr: AddressSanitizer|runtime error|the run aborted
--
-- run: the history holds the failure and its message
-- before: 1 {script} --flow hog_and_friends --memory-limit 32M
-- args: show last
-- stdout: hog +Failed .*memory limit of 32 MiB reached in task 'hog'
-- stdout: friend +Success
--
-- run: a task past the limit is retried like any failure
-- args: {script} --flow hog_retried --memory-limit 32M
-- exit: 1
-- stderr: WARN  hog_again: Retrying in 0 s \(attempt 1 of 2 failed after [0-9.]+ s\): memory limit of 32 MiB reached in task 'hog_again'
-- stderr: ERROR hog_again: Failed \(attempt 2 of 2, [0-9.]+ s\): memory limit of 32 MiB reached in task 'hog_again'
-- stderr: retry_if saw: memory limit of 32 MiB reached in task 'hog_again'
--
-- run: one element of a map past the limit; the other nine succeed
-- args: {script} --flow map_element --memory-limit 32M
-- exit: 1
-- stderr: ERROR grow\[7\]: Failed .*memory limit of 32 MiB reached in task 'grow\[7\]'
-- stderr: 10 task runs — 9 Success, 1 Failed|grow \[map of 10\] +Failed .*9 Success, 1 Failed
-- stderr: ERROR grow: Failed \(map of 10: 1 of 10 mapped runs did not succeed\)
--
-- run: the limit is the heap's: many tasks in turn may use it all, one by one
-- args: {script} --flow one_at_a_time --memory-limit 32M --concurrency 1
-- stderr: flow 'one_at_a_time' Success
-- stderr: 20 task runs — 20 Success
--
-- run: a task that catches the error with pcall goes on
-- args: {script} --flow caught --memory-limit 32M
-- stderr: caught: .*not enough memory
-- stderr: flow 'caught' Success
--
-- run: a script that allocates past the limit while loading
-- args: {script} --memory-limit 16M
-- env: HOG_AT_LOAD=1
-- exit: 2
-- stderr: flowlua: memory limit of 16 MiB reached while loading the script: .*memory_limit.lua failed while loading: not enough memory
--
-- run: a flow body that allocates past the limit
-- args: {script} --flow body_hog --memory-limit 16M
-- exit: 2
-- stderr: flowlua: memory limit of 16 MiB reached while building the flow: flow 'body_hog': the flow body failed: not enough memory
--
-- run: a map whose per-element records alone pass the limit
-- args: {script} --flow huge_map --memory-limit 8M
-- exit: 1
-- stderr: ERROR wide: Failed: memory limit of 8 MiB reached expanding a map over 100000 elements
-- not-stderr: wide\[1\]
--
-- run: without a limit the same map runs
-- args: {script} --flow huge_map --quiet
--
-- run: a size with a unit, as --opt=value
-- args: {script} --flow one_at_a_time --memory-limit=1GiB --quiet
--
-- run: a size below 1M is refused
-- args: {script} --memory-limit 512K
-- exit: 2
-- stderr: --memory-limit must be at least 1M, got '512K'
--
-- run: a size that is not one is refused
-- args: {script} --memory-limit 1.5G
-- exit: 2
-- stderr: --memory-limit expects a size such as 512M, 2G or a number of bytes, got '1.5G'
--
-- run: zero is refused
-- args: {script} --memory-limit 0
-- exit: 2
-- stderr: --memory-limit must be at least 1M
--
-- run: the help names the option
-- args: --help
-- stdout: --memory-limit SIZE
local flow = require "flowlua"

-- Distinct 256 KiB strings, kept: 32 MiB is reached after some 128 of
-- them, quickly even under AddressSanitizer.
local function allocate_without_bound()
  local kept = {}
  for i = 1, math.huge do
    kept[i] = string.rep(string.format("%08d", i), 32768)
  end
end

-- 4 MiB in all, released when the task returns.
local function allocate_a_little()
  local kept = {}
  for i = 1, 16 do kept[i] = string.rep(string.format("%08d", i), 32768) end
  return #kept
end

if os.getenv("HOG_AT_LOAD") then allocate_without_bound() end

local hog = flow.task("hog", allocate_without_bound)
local friend = flow.task("friend", function() return allocate_a_little() end)
local after_hog = flow.task("after_hog", { trigger = "all_done" },
  function(x) return x end)

local hog_retried = flow.task("hog_again", {
  retries = 1,
  retry_if = function(err)
    flow.log.info("retry_if saw: %s", err)
    return true
  end,
}, allocate_without_bound)

local grow = flow.task("grow", function(i)
  if i == 7 then allocate_without_bound() end
  return allocate_a_little()
end)

local each = flow.task("each", allocate_a_little)

local caught = flow.task("caught", function()
  local ok, err = pcall(allocate_without_bound)
  flow.log.info("caught: %s", err)
  assert(not ok)
  return allocate_a_little()
end)

local wide = flow.task("wide", function(x) return x end)

return {
  flow.define("hog_and_friends", {}, function()
    local h = hog()
    local f = friend()
    after_hog(h):after(f)
  end),
  flow.define("hog_retried", {}, function() hog_retried() end),
  flow.define("map_element", {}, function()
    local ids = {}
    for i = 1, 10 do ids[i] = i end
    grow:map(ids)
  end),
  flow.define("one_at_a_time", {}, function()
    for _ = 1, 20 do each() end
  end),
  flow.define("caught", {}, function() caught() end),
  flow.define("body_hog", {}, function() allocate_without_bound() end),
  flow.define("huge_map", {}, function()
    local xs = {}
    for i = 1, 100000 do xs[i] = i end
    wide:map(xs)
  end),
}
