-- Descriptors flowlua opens for files are close-on-exec: a child process
-- started while a task holds files open through the fs and csv APIs (a
-- csv.rows iteration, a csv.writer's temporary file) sees none of them.
-- run: children inherit no file of the task
-- stderr: hold: Success
-- stderr: flow 'fs cloexec' Success
local flow = require "flowlua"
local check = require "lib.check"
local csv = flow.csv

-- The child's descriptors and what they point to (ls -l /proc/self/fd).
local function child_fds()
  local r = flow.shell({ "ls", "-l", "/proc/self/fd/" })
  check.eq(r.code, 0, "listing the child's descriptors: " .. r.stderr)
  return r.stdout
end

local hold = flow.task("hold", function()
  csv.write("input.csv", { { "a", "b" }, { "1", "2" }, { "3", "4" } })
  local seen = 0
  local w = csv.writer("output.csv", { header = { "a", "b" } })
  w:write({ "x", "y" })
  for row in csv.rows("input.csv") do
    seen = seen + 1
    local fds = child_fds()
    check.eq(fds:find(" -> ", 1, true) ~= nil, true, "ls shows where descriptors point: " .. fds)
    check.eq(fds:find("input.csv", 1, true), nil, "the file being read is not inherited:\n" .. fds)
    check.eq(fds:find("output.csv", 1, true), nil, "the writer's temporary file is not inherited:\n" .. fds)
    check.eq(fds:find("flowlua-", 1, true), nil, "no temporary file is inherited:\n" .. fds)
    w:write(row)
  end
  check.eq(seen, 3, "rows read")
  check.eq(w:close(), 4, "rows written")
end)

return flow.define("fs cloexec", {}, function() hold() end)
