-- task:map runs once per element, results in input order; several lists are
-- zipped, flow.unmapped passes a value whole, and mapping over a node waits
-- for its list.
-- run: maps
-- stderr: square: Running \(map over 5 elements\)
-- stderr: square\[5\]: Success
-- stderr: ^  square \[map of 5\] +Success +5
-- stderr: verify: Success
-- run: lists of different lengths
-- env: CASE=mismatch
-- exit: 1
-- stderr: pair: Failed: map: argument 2 has 2 elements but argument 1 has 3 \(wrap an argument in flow.unmapped to pass it whole\)
-- run: nothing to map over
-- env: CASE=scalar
-- exit: 1
-- stderr: pair: Failed: map: no list to map over \(argument 1 is number\)
-- run: one element fails
-- env: CASE=fail
-- exit: 1
-- stderr: square\[3\]: Failed \(attempt 1 of 1
-- stderr: square: Failed \(map of 5: 1 of 5 mapped runs did not succeed\)
-- stderr: verify: TriggerFailed
-- stderr: collect: Success
local flow = require "flowlua"
local check = require "lib.check"
local case = os.getenv("CASE")

local numbers = flow.task("numbers", function(n)
  local t = {}
  for i = 1, n do t[i] = i end
  return t
end)
local square = flow.task("square", function(x)
  if case == "fail" and x == 3 then error("three is unlucky") end
  flow.sleep(0.01 * (6 - x)) -- finish in reverse order; results keep input order
  check.eq(flow.context().map_index, x, "map_index")
  return x * x
end)
local pair = flow.task("pair", function(a, b, whole)
  return a .. b .. #whole
end)
local verify = flow.task("verify", function(squares, pairs, empty)
  check.list(squares, { 1, 4, 9, 16, 25 }, "squares")
  check.list(pairs, { "1x3", "2y3" }, "pairs")
  check.list(empty, {}, "map over an empty list")
end)

-- Downstream of a map with a failed element (trigger all_done), the list
-- holds every result that arrived, in its place, and nil where one failed.
local collect = flow.task("collect", { trigger = "all_done" }, function(squares)
  check.eq(squares[3], nil, "the failed element")
  for _, i in ipairs({ 1, 2, 4, 5 }) do check.eq(squares[i], i * i, "element " .. i) end
end)

return flow.define("map", {}, function()
  if case == "mismatch" then return pair:map({ 1, 2, 3 }, { "x", "y" }, flow.unmapped({})) end
  if case == "scalar" then return pair:map(1, 2, 3) end
  local squares = square:map(numbers(5))
  if case == "fail" then collect(squares) end
  local pairs = pair:map({ 1, 2 }, { "x", "y" }, flow.unmapped({ 7, 8, 9 }))
  verify(squares, pairs, square:map({}))
end)
