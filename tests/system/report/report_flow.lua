-- The flow that tests/system/report/report_test.py runs and then reports on: a
-- task that fails twice and then succeeds, one that fails (its message has
-- characters that HTML must escape), a map, a data edge into the map's
-- consumer and an ordering edge.
local flow = require "flowlua"

local seed = flow.task("seed", function() return { 1, 2, 3 } end)

local flaky = flow.task("flaky", { retries = 2 }, function()
  local attempt = flow.context().attempt
  if attempt < 3 then error(("flaky attempt %d fails"):format(attempt)) end
  return attempt
end)

local broken = flow.task("broken", function()
  error([[broken: <script>alert("x")</script> & friends]])
end)

local square = flow.task("square", function(x) return x * x end)

local total = flow.task("total", function(xs, tries)
  local sum = 0
  for _, x in ipairs(xs) do sum = sum + x end
  return sum + tries
end)

local cleanup = flow.task("cleanup", { trigger = "all_done" }, function() end)

return flow.define("report demo", function()
  local t = total(square:map(seed()), flaky())
  broken()
  cleanup():after(t)
end)
