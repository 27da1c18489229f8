-- The flow of tests/system/fault/write_targets.py: every writer of files
-- tries the folder "ro", which it may not write in; each message goes to
-- stdout, one per line.
local flow = require "flowlua"

local attempts = {
  function() flow.fs.write("ro/x.txt", "x") end,
  function() flow.fs.write("ro/old.csv", "x") end,
  function() flow.json.write("ro/x.json", { 1 }) end,
  function() flow.csv.write("ro/x.csv", { { 1 } }) end,
  function() flow.csv.writer("ro/y.csv") end,
  function() flow.csv.append("ro/z.csv", { { 1 } }) end,
}

local try = flow.task("try", function()
  for _, attempt in ipairs(attempts) do
    local ok, err = pcall(attempt)
    io.write(ok and "no error" or tostring(err), "\n")
  end
end)

return flow.define("write targets", {}, function() try() end)
