-- The flow of tests/system/fault/concurrent_resume.py: 'work' fails until
-- the file "fixed" exists in the working directory. Every attempt appends a
-- line to ran.txt first, so the driver counts exactly how often it ran.
-- While the file "hold" exists, an attempt that is about to succeed writes
-- "waiting" and then blocks opening the FIFO gate.fifo until the driver
-- opens it for writing: a resume stays Running for exactly as long as the
-- driver wants.
local flow = require "flowlua"

local function append(path, line)
  local f = assert(io.open(path, "a"))
  f:write(line, "\n")
  f:close()
end

local function exists(path)
  local f = io.open(path, "r")
  if f then f:close() end
  return f ~= nil
end

local steady = flow.task("steady", function() append("steady.txt", "ran") end)

local work = flow.task("work", function()
  append("ran.txt", "ran")
  if not exists("fixed") then error("not fixed yet") end
  if exists("hold") then
    append("waiting", "waiting")
    local gate = assert(io.open("gate.fifo", "r")) -- blocks until released
    gate:read("a")
    gate:close()
  end
  return "done"
end)

return flow.define("resume once", function()
  steady()
  work()
end)
