-- Used by worker_bad_input.lua: a queue option that is not a name.
local flow = require "flowlua"
local t = flow.task("t", { queue = 5 }, function() end)
return flow.define("bad_queue", function() t() end)
