-- Assertions for flow tests: each failure names what was checked and shows
-- both values, so a failing test explains itself in the task's error.
local M = {}

local function show(v)
  if type(v) == "string" then return string.format("%q", v) end
  return tostring(v)
end

function M.eq(got, want, what)
  if got ~= want then
    error(string.format("%s: expected %s, got %s", what or "value", show(want), show(got)), 2)
  end
end

function M.near(got, want, tolerance, what)
  if type(got) ~= "number" or math.abs(got - want) > tolerance then
    error(string.format("%s: expected %s +/- %s, got %s", what or "value", want, tolerance, show(got)), 2)
  end
end

function M.between(got, lo, hi, what)
  if type(got) ~= "number" or got < lo or got > hi then
    error(string.format("%s: expected between %s and %s, got %s", what or "value", lo, hi, show(got)), 2)
  end
end

function M.list(got, want, what)
  M.eq(type(got), "table", (what or "list") .. " type")
  M.eq(#got, #want, (what or "list") .. " length")
  for i = 1, #want do M.eq(got[i], want[i], string.format("%s[%d]", what or "list", i)) end
end

-- The pid of the process running this code (a worker task's attempt runs
-- in a worker process: tests compare it with the driver's).
function M.pid()
  local f = assert(io.open("/proc/self/stat"))
  local n = f:read("n")
  f:close()
  return n
end

-- True the first time it is asked about marker in this folder (it leaves
-- the file behind), false ever after: a task that fails once, then works.
function M.first_time(marker)
  local f = io.open(marker)
  if f then f:close() return false end
  assert(io.open(marker, "w")):close()
  return true
end

return M
