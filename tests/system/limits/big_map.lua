-- A map over 1,000,000 elements (params.n), and a task that checks every
-- result. Run by big_flows.py, which measures the peak RSS.
local flow = require "flowlua"

local double = flow.task("double", function(x) return 2 * x end)

local check = flow.task("check", function(n, doubled)
  if #doubled ~= n then
    error(string.format("the map returned %d results, expected %d", #doubled, n))
  end
  for i = 1, n do
    if doubled[i] ~= 2 * i then
      error(string.format("result %d is %s, expected %d", i, doubled[i], 2 * i))
    end
  end
  return n
end)

return flow.define("big_map", { params = { n = 1000000 } }, function(p)
  local xs = {}
  for i = 1, p.n do xs[i] = i end
  check(p.n, double:map(xs))
end)
