-- Branching: a node is a future, not a value. Used as one (arithmetic,
-- concatenation, comparison, length, a call) it raises an error that says
-- so, where it was used, and how flows branch; the pattern the manual
-- gives (a check task that skips, downstream tasks by trigger rule) works.
-- run: the branching pattern, rows found
-- env: ROWS=2
-- stderr: load: Success
-- stderr: report: Success
-- run: the branching pattern, no rows
-- env: ROWS=0
-- stderr: check: Skipped: no new rows
-- stderr: load: Skipped
-- stderr: report: Success
-- run: a node used as a number
-- env: MISUSE=add
-- exit: 2
-- stderr: branching\.lua:\d+: node 'check' used as a number: a node is not a value but a future
-- stderr: flow\.skip\(why\) and give the tasks after it a trigger rule
-- run: a node joined as a string
-- env: MISUSE=concat
-- exit: 2
-- stderr: branching\.lua:\d+: node 'check' joined as a string: a node is not a value
-- run: a node compared
-- env: MISUSE=lt
-- exit: 2
-- stderr: node 'check' compared: a node is not a value
-- run: a node measured
-- env: MISUSE=len
-- exit: 2
-- stderr: node 'check' measured with #: a node is not a value
-- run: a node called
-- env: MISUSE=call
-- exit: 2
-- stderr: node 'check' called: a node is not a value
local flow = require "flowlua"

local fetch = flow.task("fetch", function()
  local rows = {}
  for i = 1, tonumber(os.getenv("ROWS") or "1") do rows[i] = i end
  return rows
end)
local check = flow.task("check", function(rows)
  if #rows == 0 then flow.skip("no new rows") end
  return rows
end)
local load = flow.task("load", function(rows) return #rows end)
local report = flow.task("report", { trigger = "all_done" }, function() return "done" end)

local misuse = {
  add = function(n) return n + 1 end,
  concat = function(n) return n .. "x" end,
  lt = function(n) return n < 3 end,
  len = function(n) return #n end,
  call = function(n) return n() end,
}

return flow.define("branching", {}, function()
  local rows = check(fetch())
  local use = misuse[os.getenv("MISUSE") or ""]
  if use then use(rows) end
  report():after(load(rows))
end)
