-- csv.append of ROWS rows to OUT (with a header when the file is new): the
-- flow of tests/system/fault/full_disk.py.
local flow = require "flowlua"

local append = flow.task("append", function()
  local rows = {}
  for i = 1, tonumber(os.getenv("ROWS")) do
    rows[i] = { os.getenv("FIRST") + i, "some text for record " .. i }
  end
  return flow.csv.append(os.getenv("OUT"), rows, { header = { "id", "text" } })
end)

return flow.define("full disk", {}, function() append() end)
