-- Scripts that cannot load or build exit 2 with a message naming the file,
-- the line and the cause, and run no task. The case picks the breakage.
-- run: syntax error
-- args: {dir}/lib/broken_syntax.lua
-- exit: 2
-- stderr: cannot load .*broken_syntax.lua:\d+: unexpected symbol near
-- run: error at top level
-- env: CASE=toplevel
-- exit: 2
-- stderr: bad_scripts.lua failed while loading: .*bad_scripts.lua:\d+: top level exploded
-- stderr: stack traceback
-- run: returns nothing
-- env: CASE=nothing
-- exit: 2
-- stderr: must return a flow \(return flow.define\(...\)\) or a table of flows, but it returned nil
-- run: returns a table with a non-flow
-- env: CASE=junk
-- exit: 2
-- stderr: returned a table holding string at key '2'
-- run: two flows with one name
-- env: CASE=dupe
-- exit: 2
-- stderr: returned two flows named 'same'
-- run: flow body errors
-- env: CASE=body
-- exit: 2
-- stderr: flow 'bad' body failed|flow 'bad': the flow body failed: .*bad_scripts.lua:\d+: body exploded
-- not-stderr: Running
-- run: task called outside a flow body
-- env: CASE=outside
-- exit: 2
-- stderr: bad_scripts.lua:\d+: task 'a' called outside a flow body
-- run: dependency cycle
-- env: CASE=cycle
-- exit: 2
-- stderr: flow 'bad': dependency cycle: first \(line \d+\) -> second \(line \d+\) -> third \(line \d+\) -> first
-- not-stderr: Running
-- run: not a node in after
-- env: CASE=after_junk
-- exit: 2
-- stderr: node:after: argument 1 must be a node \(the result of calling a task\), got string
-- run: missing script file
-- args: {dir}/does-not-exist.lua
-- exit: 2
-- stderr: cannot load .*does-not-exist.lua: cannot open
local flow = require "flowlua"
local case = os.getenv("CASE")

local a = flow.task("a", function() return 1 end)
local first = flow.task("first", function() end)
local second = flow.task("second", function() end)
local third = flow.task("third", function() end)
if case == "toplevel" then error("top level exploded") end
if case == "nothing" then return nil end
if case == "junk" then return { flow.define("x", function() end), "junk" } end
if case == "dupe" then
  return { flow.define("same", function() end), flow.define("same", function() end) }
end
if case == "outside" then a() end

return flow.define("bad", {}, function()
  if case == "body" then error("body exploded") end
  if case == "cycle" then
    local f, s, t = first(), second(), third()
    s:after(f)
    t:after(s)
    f:after(t)
  end
  if case == "after_junk" then a():after("oops") end
  a()
end)
