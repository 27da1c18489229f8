-- Worker tasks: every kind of value the history keeps crosses to a worker
-- process and back unchanged (integers stay integers, floats keep -0.0,
-- strings keep every byte, json.null and empty arrays stay what they are),
-- the attempt runs in another process, and what cannot cross is refused,
-- naming the task, the argument and the path, before anything is sent.
-- run: values cross unchanged, in a worker process
-- args: {script} --workers 2
-- stderr: echo: Success \(attempt 1, [0-9.]+ s, worker (?:[^\s:()]+:)?\d+\)
-- stderr: compare: Success \(attempt 1, [0-9.]+ s\)
-- stderr: flow 'worker_values' run .*: Success
-- run: a function in an argument is refused with its path
-- args: {script} --workers 2 --param mode=refuse
-- exit: 1
-- stderr: task 'echo': argument 1 at 'rows\[3\]\.f' is a function \(nothing was sent to a worker\)
-- not-stderr: echo: Success
-- run: a result that cannot cross fails the attempt, naming the path
-- args: {script} --workers 2 --param mode=bad_result
-- exit: 1
-- stderr: result at 'co' is a thread
local flow = require "flowlua"
local json = flow.json

local pid = require("lib.check").pid

local echo = flow.task("echo", { worker = true }, function(...)
  local c = flow.context()
  return { n = select("#", ...), args = { ... }, pid = pid(),
           ctx = { flow = c.flow, run_id = c.run_id, task = c.task, task_name = c.task_name,
                   attempt = c.attempt, scheduled_at = c.scheduled_at,
                   started_at = c.started_at, mode = c.params.mode } }
end)

local bad = flow.task("bad", { worker = true }, function()
  return { co = coroutine.create(function() end) }
end)

local function values()
  return 9007199254740993, -0.0, "a\0b\255\n", { 1, { 2, { x = "y" } }, n = 3 },
    json.null, setmetatable({}, json.array_mt), math.maxinteger,
    math.mininteger, 1.5, true, false, nil, "last"
end

local compare = flow.task("compare", function(got)
  local want = table.pack(values())
  assert(got.n == want.n, "count " .. tostring(got.n) .. " ~= " .. want.n)
  local a = got.args
  assert(math.type(a[1]) == "integer" and a[1] == 9007199254740993, "2^53+1")
  assert(math.type(a[2]) == "float" and a[2] == 0 and 1 / a[2] < 0, "-0.0")
  assert(a[3] == "a\0b\255\n", "binary string")
  assert(a[4][1] == 1 and a[4][2][1] == 2 and a[4][2][2].x == "y" and a[4].n == 3,
    "nested tables")
  assert(a[5] == json.null, "json.null")
  assert(type(a[6]) == "table" and next(a[6]) == nil and getmetatable(a[6]) == json.array_mt,
    "an empty array stays an array")
  assert(json.encode(a[6]) == "[]", "encodes as []")
  assert(a[7] == math.maxinteger and a[8] == math.mininteger, "integer limits")
  assert(a[9] == 1.5 and a[10] == true and a[11] == false, "scalars")
  assert(a[12] == nil and a[13] == "last", "a nil between arguments")
  assert(got.pid ~= pid(), "ran in another process (" .. got.pid .. ")")
  local mine, theirs = flow.context(), got.ctx
  for _, k in ipairs({ "flow", "run_id", "scheduled_at", "started_at" }) do
    assert(theirs[k] == mine[k], "flow.context()." .. k .. " in the worker: "
      .. tostring(theirs[k]) .. " ~= " .. tostring(mine[k]))
  end
  assert(theirs.task == "echo" and theirs.task_name == "echo" and theirs.attempt == 1
    and theirs.mode == "values", "the task's own fields")
end)

return flow.define("worker_values", { params = { mode = "values" } }, function(p)
  if p.mode == "refuse" then
    echo({ rows = { 1, 2, { f = function() end } } })
  elseif p.mode == "bad_result" then
    bad()
  else
    compare(echo(values()))
  end
end)
