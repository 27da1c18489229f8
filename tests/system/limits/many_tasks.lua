-- 100,000 tasks (params.n) in one flow: n independent tasks, and a last one
-- that takes all their results (one table argument holding n nodes) and
-- checks their sum. Run by big_flows.py, which measures the peak RSS.
local flow = require "flowlua"

local square = flow.task("square", function(i) return i * i end)

local check = flow.task("check", function(n, squares)
  local sum = 0
  for i = 1, n do sum = sum + squares[i] end
  local want = n * (n + 1) * (2 * n + 1) // 6
  if sum ~= want then
    error(string.format("sum of squares is %d, expected %d", sum, want))
  end
  return sum
end)

return flow.define("many_tasks", { params = { n = 100000 } }, function(p)
  local squares = {}
  for i = 1, p.n do squares[i] = square(i) end
  check(p.n, squares)
end)
