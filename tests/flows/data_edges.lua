-- Values flow along data edges: each task receives its upstream results.
-- stderr: double: Success
-- stderr: verify: Success
-- stderr: flow 'data edges' Success
local flow = require "flowlua"
local check = require "lib.check"

local const = flow.task("const", function(x) return x end)
local double = flow.task("double", function(x) return x * 2 end)
local add = flow.task("add", function(a, b) return a + b end)
local verify = flow.task("verify", function(sum, ...)
  check.eq(sum, 3 + 6, "sum")
  check.eq(select("#", ...), 2, "extra argument count")
  check.eq(select(1, ...), "plain", "plain argument")
  check.eq(select(2, ...), nil, "nil argument")
end)

return flow.define("data edges", {}, function()
  local a = const(3)
  local b = double(a)
  verify(add(a, b), "plain", nil)
end)
