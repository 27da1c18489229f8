-- The flow of force_exit.py: `stuck` is caught in one string.find whose
-- pattern backtracks for far longer than any test (no Lua instruction runs,
-- so no hook reaches it); `before` ended Success first, `after` waits on
-- `stuck`.
local flow = require "flowlua"

local before = flow.task("before", function() return "kept" end)
local stuck = flow.task("stuck", { timeout = 1 }, function(x)
  local subject = string.rep("a", 20000)
  return x, subject:find(".-.-.-.-.-.-.-.-b")
end)
local after = flow.task("after", function() end)

return flow.define("force_exit", {}, function() after(stuck(before())) end)
