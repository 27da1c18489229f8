-- The flow of cancel_map.py: a map of N tasks, each appending its index to
-- started.log; element K creates ready.flag and then spins in Lua until the
-- cancel interrupts it.
local flow = require "flowlua"

local n = tonumber(os.getenv("CANCEL_MAP_N"))
local k = tonumber(os.getenv("CANCEL_MAP_K"))

local work = flow.task("work", function(i)
  local log = assert(io.open("started.log", "a"))
  log:write(i, "\n")
  log:close()
  if i == k and not os.getenv("CANCEL_MAP_RESUMING") then
    assert(io.open("ready.flag", "w")):close()
    while true do end
  end
  return i
end)

return flow.define("cancel_map", {}, function()
  local items = {}
  for i = 1, n do items[i] = i end
  work:map(items)
end)
