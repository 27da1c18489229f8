-- A node anywhere inside a plain argument table is replaced by its result,
-- on a copy: the table the body built is not changed.
-- stderr: verify: Success
local flow = require "flowlua"
local check = require "lib.check"

local shared = { label = "static" }
local make = flow.task("make", function(v) return v end)
local verify = flow.task("verify", function(cfg, same)
  check.eq(cfg.a, "A", "cfg.a")
  check.eq(cfg.deep.list[2], "B", "cfg.deep.list[2]")
  check.eq(cfg.deep.list[1], 1, "plain value kept")
  check.eq(cfg.shared, shared, "a nested table without nodes is passed as is")
  check.eq(same, shared, "a node-free table argument is passed as is")
  check.eq(cfg.self, cfg, "a table that contains itself stays one table")
  check.eq(getmetatable(cfg.obj).__name, "obj", "objects (metatables) are not looked into")
end)

return flow.define("nested", {}, function()
  local a, b = make("A"), make("B")
  local cfg = { a = a, deep = { list = { 1, b } }, shared = shared,
                obj = setmetatable({}, { __name = "obj" }) }
  cfg.self = cfg
  verify(cfg, shared)
  -- The body's own table still holds the nodes, not the results.
  assert(tostring(cfg.a):match("^node"), "the body's table was changed")
end)
