-- include/flowlua.lua, the LuaLS definitions editors use, declares exactly
-- what the flowlua module exports: every function and field of flow and of
-- its tables (flow.http, flow.json, ...), and the methods of tasks and
-- nodes. A name added to the module without a definition, or a definition
-- of a name the module does not have, fails here.
-- run: declared names match the module's
-- stderr: compare: Success
local flow = require "flowlua"

local function exported(t, prefix, out)
  for k, v in pairs(t) do
    if type(k) == "string" then
      local name = prefix .. k
      out[name] = true
      if type(v) == "table" and prefix == "flow." and k ~= "json" then
        exported(v, name .. ".", out)
      elseif k == "json" then
        for jk in pairs(v) do out[name .. "." .. jk] = true end
      end
    end
  end
  return out
end

local function declared(path)
  local names, f = {}, assert(io.open(path))
  for line in f:lines() do
    local name = line:match("^function (flow[%.%w_]+)%(")
              or line:match("^(flow%.[%w_%.]+) = ")
    if name then names[name] = true end
    local method = line:match("^function (%w+):([%w_]+)%(")
    if method then names[line:match("^function (%w+:[%w_]+)%(")] = true end
  end
  f:close()
  return names
end

local compare = flow.task("compare", function()
  local root = os.getenv("TEST_SCRIPTS"):gsub("/scripts$", "")
  assert(loadfile(root .. "/include/flowlua.lua")) -- it is valid Lua
  local decl = declared(root .. "/include/flowlua.lua")
  local have = exported(flow, "flow.", {})
  -- methods of the userdata types, by their metatables
  local t = flow.task("probe", function() end)
  have["Task:map"] = type(t.map) == "function" or nil
  local missing, extra = {}, {}
  for name in pairs(have) do
    if not decl[name] then missing[#missing + 1] = name end
  end
  for name in pairs(decl) do
    if not have[name] and not name:match("^%u%w*:") then extra[#extra + 1] = name end
  end
  table.sort(missing)
  table.sort(extra)
  assert(#missing == 0, "exported but not declared in include/flowlua.lua: " .. table.concat(missing, ", "))
  assert(#extra == 0, "declared but not exported: " .. table.concat(extra, ", "))
  assert(decl["Node:after"] and decl["Task:map"] and decl["Response:json"]
    and decl["CsvWriter:close"], "the methods are declared")
  local n = 0
  for _ in pairs(have) do n = n + 1 end
  flow.log.info("%d names declared and exported", n)
end)

return flow.define("luals", function() compare() end)
