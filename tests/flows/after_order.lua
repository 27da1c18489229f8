-- node:after adds ordering edges without data: "fill" runs after "create"
-- although it takes nothing from it, and a list of nodes is accepted.
-- stderr: verify: Success
local flow = require "flowlua"
local check = require "lib.check"

local order = {}
local step = flow.task("step", function(name, pause)
  if pause then flow.sleep(pause) end
  order[#order + 1] = name
  return name
end)
local verify = flow.task("verify", function(got)
  check.eq(got, nil, "an ordering edge passes no value")
  check.list(order, { "create", "other", "fill" }, "run order")
end)

return flow.define("after", {}, function()
  local create = step("create", 0.05)
  local other = step("other", 0.1)
  local fill = step("fill"):after({ create, other })
  verify():after(fill)
end)
