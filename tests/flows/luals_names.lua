-- include/flowlua.lua, the LuaLS definitions editors use, declares exactly
-- what the flowlua module exports: every function and field of flow and of
-- its tables (flow.http, flow.json, ...), and the methods of tasks and
-- nodes. A name added to the module without a definition, or a definition
-- of a name the module does not have, fails here.
-- The second case calls every hook and callback option of a task and checks
-- that each gets exactly the arguments its fun(...) declaration lists, of the
-- declared types (a table of the declared class, with only declared fields).
-- run: declared names match the module's
-- stderr: compare: Success
-- run: hooks and callbacks get what their declarations say
-- env: CASE=signatures
-- exit: 1
-- stderr: check_signatures: Success
-- stderr: failing: Failed
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

-- ---- signatures of the callback options -----------------------------------

local function definitions_path()
  return os.getenv("TEST_SCRIPTS"):gsub("/scripts$", "") .. "/include/flowlua.lua"
end

-- { [class] = { [field] = true } } and { [option] = { "type", ... } } (the
-- parameter types of each fun(...) field of TaskOptions, and of the
-- function form of Trigger).
local function declarations()
  local classes, params, class = {}, {}, nil
  for line in io.lines(definitions_path()) do
    local c = line:match("^%-%-%-@class ([%w%.]+)")
    if c then class = c; classes[c] = {} end
    local field, ftype = line:match("^%-%-%-@field ([%w_]+) (.*)$")
    if field and class then
      classes[class][field] = true
      local args = class == "flowlua.TaskOptions" and ftype:match("^fun%((.-)%)")
      if args then
        local list = {}
        for t in args:gmatch("[%w_]+: ([^,]+)") do list[#list + 1] = t end
        if args:match("^%.%.%.") then list = "..." end
        params[field] = list
      end
    end
    local trig = line:match("^%-%-%-@alias flowlua.Trigger .*|fun%((.-)%)")
    if trig then params.trigger = { trig:match("[%w_]+: (.+)$") } end
  end
  return classes, params
end

-- Whether value v is of the declared type t; the tables of a class must
-- have only fields the class declares.
local function conforms(v, t, classes)
  if t == "any" then return true end
  if t == "table<string, flowlua.TaskState>" then
    if type(v) ~= "table" then return false end
    for k, st in pairs(v) do
      if type(k) ~= "string" or type(st) ~= "string" then return false end
    end
    return true
  end
  local fields = classes[t]
  assert(fields, "the test cannot check a value of declared type " .. t)
  if type(v) ~= "table" then return false end
  for k in pairs(v) do
    if not fields[k] then return false, "field '" .. tostring(k) .. "' is not declared in " .. t end
  end
  return next(v) ~= nil
end

local seen = {} -- option -> the arguments of its first call, packed

local function record(option)
  return function(...)
    seen[option] = seen[option] or table.pack(...)
    if option == "retry_if" then return true end
    if option == "cache_key" then return "k" end
    if option == "trigger" then return true end
  end
end

local flaky_calls = 0
local flaky = flow.task("flaky", {
  retries = 1, retry_if = record("retry_if"), on_retry = record("on_retry"),
  on_success = record("on_success"), cache_key = record("cache_key"),
}, function(x)
  flaky_calls = flaky_calls + 1
  if flaky_calls == 1 then error("first attempt fails") end
  return x
end)
local failing = flow.task("failing", { on_failure = record("on_failure") },
  function() error("fails for on_failure") end)
local triggered = flow.task("triggered", { trigger = record("trigger") },
  function() end)

local check_signatures = flow.task("check_signatures", { trigger = "always" }, function()
  local classes, params = declarations()
  local problems = {}
  for option, want in pairs(params) do
    local got = seen[option]
    if not got then
      problems[#problems + 1] = option .. " was never called"
    elseif want ~= "..." then
      if got.n ~= #want then
        problems[#problems + 1] = string.format("%s is declared with %d parameter(s) but called with %d",
          option, #want, got.n)
      end
      for i = 1, math.min(got.n, #want) do
        local ok, why = conforms(got[i], want[i], classes)
        if not ok then
          problems[#problems + 1] = string.format("%s: argument %d is not a %s%s", option, i,
            want[i], why and " (" .. why .. ")" or "")
        end
      end
    end
  end
  table.sort(problems)
  assert(#problems == 0, "include/flowlua.lua disagrees with the calls:\n  " .. table.concat(problems, "\n  "))
end)

if os.getenv("CASE") == "signatures" then
  return flow.define("luals_signatures", function()
    local a = flaky(1)
    local b = failing()
    local c = triggered():after(a)
    check_signatures():after(a, b, c)
  end)
end

return flow.define("luals", function() compare() end)
