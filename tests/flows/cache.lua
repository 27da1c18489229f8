-- cache_key with cache_for: a task whose key has a stored result younger
-- than cache_for ends Cached with that result, without running; the
-- result reaches its dependents as if it had run.
-- run: the second run is served from the cache
-- before: 0 {script}
-- args: {script}
-- stderr: double: Cached \(key 'double:21'\)
-- stderr: use: Success
-- stderr: 1 Success, 1 Cached
-- file: ran.txt = {fixtures}/cache-ran-once.txt
-- run: another key is a miss
-- before: 0 {script}
-- args: {script} --param x=5
-- not-stderr: Cached
-- stderr: use: Success
-- run: an expired entry runs the task again
-- before: 0 {script}
-- args: {script}
-- env: CACHE_FOR=0
-- not-stderr: Cached
-- file: ran.txt = {fixtures}/cache-ran-twice.txt
-- run: without a history nothing is cached
-- before: 0 {script} --state :memory:
-- args: {script} --state :memory:
-- not-stderr: Cached
-- run: a cache_key function that fails fails the task before it runs
-- args: {script}
-- env: BAD_KEY=1
-- exit: 1
-- stderr: double: Failed \(before it started\): cache_key failed: .*no key today
-- run: a cache_key that returns no string
-- args: {script}
-- env: BAD_KEY=table
-- exit: 1
-- stderr: cache_key must return a string, got table
-- run: cache_for without cache_key
-- args: {script}
-- env: NO_KEY=1
-- exit: 2
-- stderr: option 'cache_for' needs 'cache_key'
local flow = require "flowlua"
local check = require "lib.check"

local function key(x)
  if os.getenv("BAD_KEY") == "table" then return {} end
  if os.getenv("BAD_KEY") then error("no key today") end
  return "double:" .. x
end

local double = flow.task("double", {
  cache_key = not os.getenv("NO_KEY") and key or nil,
  cache_for = tonumber(os.getenv("CACHE_FOR") or "3600"),
}, function(x)
  local f = assert(io.open("ran.txt", "a"))
  f:write("double ", x, "\n")
  f:close()
  return { value = x * 2, list = { x, x } }
end)

local use = flow.task("use", function(r, x)
  check.eq(r.value, x * 2, "the result, run or cached")
  check.eq(#r.list, 2, "nested tables survive the cache")
end)

return flow.define("cache", { params = { x = 21 } }, function(p)
  use(double(p.x), p.x)
end)
