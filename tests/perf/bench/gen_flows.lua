#!/usr/bin/env lua5.4
--[[
gen_flows.lua — writes the flows of the engine benchmark and their references.

    lua5.4 tests/perf/bench/gen_flows.lua [--tasks N] [--seed S] [--out DIR]

For each shape it writes two scripts into DIR (default /tmp/flowlua-bench):

  flow_<shape>.lua  a flowlua flow of no-op tasks     (flowlua --quiet flow_<shape>.lua)
  ref_<shape>.lua   the same calls and edges in plain Lua 5.4, run by a
                    minimal in-process orchestrator: record the calls, find the
                    edges, order them with Kahn's algorithm, call each no-op once
                    in that order with its upstream results as arguments
                    (lua5.4 ref_<shape>.lua) — the floor flowlua is compared with.

Shapes (N = --tasks, default 100000):
  chain      N tasks, each takes the previous node.
  fan        1 -> N-2 -> 1: a root, N-2 tasks each taking the root, and a sink
             taking ONE table argument holding all N-2 nodes (data edges).
  fan_after  the same, but the sink has no arguments and depends on the N-2
             nodes by sink():after(list) (ordering edges).
  dag        100 layers of floor(N/100) tasks; every task of layer k > 1 takes
             two distinct random parents from layer k-1 as arguments.
  one        a single task: the empty-runtime baseline (RSS, start-up time).

The flow body of a shape is the same text in both files: in flow_<shape>.lua
`noop` is flow.task("noop", ...); in ref_<shape>.lua it is a recorder with the
same calling convention whose nodes are plain integer ids. So both see the
very same calls and edges (fan_after's ref writes after(noop(), mids) for
noop():after(mids), as an integer has no methods).

Randomness (dag): the parents are drawn here, with a self-contained splitmix64
seeded by --seed (default 20261128), not with math.random, whose algorithm is
not fixed across Lua versions. They are written into both scripts as a table
literal of indices into the previous layer, so the scripts are deterministic
text: the same N and seed give byte-identical files, the graph can be read off
the file, and neither run pays for drawing them (both pay the same small cost
of loading the literal).

Also writes DIR/manifest.json: { "<shape>": { "tasks": n, "edges": m,
"flow": path, "ref": path }, ... } for run.py.
]]

local N, SEED, OUT = 100000, 20261128, "/tmp/flowlua-bench"
local LAYERS = 100

local i = 1
while i <= #arg do
  local a = arg[i]
  if a == "--tasks" then N = math.tointeger(tonumber(arg[i + 1])); i = i + 2
  elseif a == "--seed" then SEED = math.tointeger(tonumber(arg[i + 1])); i = i + 2
  elseif a == "--out" then OUT = arg[i + 1]; i = i + 2
  elseif a == "-h" or a == "--help" then
    print("usage: lua5.4 gen_flows.lua [--tasks N] [--seed S] [--out DIR]")
    os.exit(0)
  else
    io.stderr:write("gen_flows.lua: unknown argument '", tostring(a), "'\n")
    os.exit(2)
  end
end
if not N or N < LAYERS * 2 then
  io.stderr:write("gen_flows.lua: --tasks must be an integer >= ", LAYERS * 2, "\n")
  os.exit(2)
end
if not SEED then
  io.stderr:write("gen_flows.lua: --seed must be an integer\n")
  os.exit(2)
end
os.execute("mkdir -p '" .. OUT:gsub("'", "'\\''") .. "'")

-- ---- deterministic random numbers (splitmix64 on Lua's 64-bit integers) ----
local state = SEED
local function next_u64()
  state = state + 0x9E3779B97F4A7C15
  local z = state
  z = (z ~ (z >> 30)) * 0xBF58476D1CE4E5B9
  z = (z ~ (z >> 27)) * 0x94D049BB133111EB
  return z ~ (z >> 31)
end
local function below(n) -- uniform enough in 0..n-1 for n << 2^53
  return (next_u64() >> 11) % n
end

-- ---- the shapes: a flow body (shared text) plus optional data -------------

local NOOP = "function(...) return 1 end"

local shapes = {}

shapes.one = {
  tasks = 1, edges = 0,
  body = "  noop()\n",
}

shapes.chain = {
  tasks = N, edges = N - 1,
  body = ([[
  local prev = noop()
  for i = 2, %d do prev = noop(prev) end
]]):format(N),
}

shapes.fan = {
  tasks = N, edges = 2 * (N - 2),
  body = ([[
  local root = noop()
  local mids = {}
  for i = 1, %d do mids[i] = noop(root) end
  noop(mids)
]]):format(N - 2),
}

shapes.fan_after = {
  tasks = N, edges = 2 * (N - 2),
  body = ([[
  local root = noop()
  local mids = {}
  for i = 1, %d do mids[i] = noop(root) end
  noop():after(mids)
]]):format(N - 2),
  -- the reference's nodes are plain integers: after(node, list) instead
  ref_body = ([[
  local root = noop()
  local mids = {}
  for i = 1, %d do mids[i] = noop(root) end
  after(noop(), mids)
]]):format(N - 2),
}

do
  local W = N // LAYERS
  local parts, line = {}, {}
  for _ = 2, LAYERS do
    for _ = 1, W do
      local a = below(W) + 1
      local b = below(W - 1) + 1
      if b >= a then b = b + 1 end -- two distinct parents
      line[#line + 1] = a
      line[#line + 1] = b
      if #line >= 32 then
        parts[#parts + 1] = table.concat(line, ",")
        line = {}
      end
    end
  end
  if #line > 0 then parts[#parts + 1] = table.concat(line, ",") end
  shapes.dag = {
    tasks = W * LAYERS, edges = 2 * W * (LAYERS - 1),
    -- P[2j-1], P[2j]: the parents (indices into the previous layer) of the
    -- j-th task after the first layer.
    data = ("-- parents: seed %d, %d layers of %d\nlocal P = {\n%s,\n}\n")
      :format(SEED, LAYERS, W, table.concat(parts, ",\n")),
    body = ([==[
  local W, LAYERS = %d, %d
  local prev = {}
  for i = 1, W do prev[i] = noop() end
  local k = 1
  for layer = 2, LAYERS do
    local cur = {}
    for i = 1, W do
      cur[i] = noop(prev[P[k]], prev[P[k + 1]])
      k = k + 2
    end
    prev = cur
  end
]==]):format(W, LAYERS),
  }
end

-- ---- the two kinds of script -----------------------------------------------

local function flow_script(name, s)
  return table.concat {
    "-- generated by tests/perf/bench/gen_flows.lua (shape ", name, ", ",
    s.tasks, " tasks); do not edit\n",
    'local flow = require "flowlua"\n',
    s.data or "",
    'local noop = flow.task("noop", ', NOOP, ")\n",
    'return flow.define("', name, '", {}, function(p)\n',
    s.body,
    "end)\n",
  }
end

-- The reference orchestrator: plain Lua 5.4, no flowlua, as lean as the job
-- allows: a node is its integer id; every argument is a node id or a plain
-- list of node ids (true of every shape here), so each becomes edges without
-- any type test beyond table-or-not. Record each call (function, up to two
-- arguments in flat arrays, more in a table), collect the edges, build the
-- downstream lists (CSR), order with Kahn's algorithm (checking every task
-- was ordered), then call each task once in that order with its arguments
-- replaced by the upstream results (a list by a list of results).
local REF_PRELUDE = [==[
local n, m = 0, 0
local fns, na, a1, a2, rest = {}, {}, {}, {}, {}
local efrom, eto = {}, {}

local function edge(from, to)
  m = m + 1
  efrom[m], eto[m] = from, to
end

local function edges_of(v, to)
  if type(v) == "table" then
    for k = 1, #v do edge(v[k], to) end
  else
    edge(v, to)
  end
end

-- task(fn) -> a callable that records a call and returns its node id
local function task(fn)
  return function(...)
    n = n + 1
    local id, c = n, select("#", ...)
    fns[id], na[id] = fn, c
    if c > 0 then
      local x, y = ...
      a1[id] = x
      edges_of(x, id)
      if c > 1 then
        a2[id] = y
        edges_of(y, id)
        if c > 2 then
          local r = { select(3, ...) }
          rest[id] = r
          for i = 1, #r do edges_of(r[i], id) end
        end
      end
    end
    return id
  end
end

-- after(id, list): ordering edges only (flowlua's node:after(list))
local function after(id, list)
  for k = 1, #list do edge(list[k], id) end
  return id
end

local function run()
  -- in-degrees and downstream lists (CSR)
  local indeg, start, down = {}, {}, {}
  for i = 1, n + 1 do indeg[i], start[i] = 0, 0 end
  for e = 1, m do
    local t, f = eto[e], efrom[e]
    indeg[t] = indeg[t] + 1
    start[f] = start[f] + 1
  end
  local pos = 1
  for i = 1, n + 1 do
    local c = start[i]
    start[i] = pos
    pos = pos + c
  end
  local fill = {}
  for i = 1, n do fill[i] = start[i] end
  for e = 1, m do
    local f = efrom[e]
    down[fill[f]] = eto[e]
    fill[f] = fill[f] + 1
  end
  -- Kahn's algorithm
  local order, tail = {}, 0
  for i = 1, n do
    if indeg[i] == 0 then tail = tail + 1; order[tail] = i end
  end
  local head = 1
  while head <= tail do
    local v = order[head]
    head = head + 1
    for k = start[v], start[v + 1] - 1 do
      local w = down[k]
      local d = indeg[w] - 1
      indeg[w] = d
      if d == 0 then tail = tail + 1; order[tail] = w end
    end
  end
  if tail ~= n then error(("cycle: ordered %d of %d tasks"):format(tail, n)) end
  -- run, in order, with upstream results as arguments
  local results = {}
  local function arg(v)
    if type(v) == "table" then
      local list = {}
      for k = 1, #v do list[k] = results[v[k]] end
      return list
    end
    return results[v]
  end
  for q = 1, n do
    local id = order[q]
    local c, fn = na[id], fns[id]
    local r
    if c == 0 then
      r = fn()
    elseif c == 1 then
      r = fn(arg(a1[id]))
    elseif c == 2 then
      r = fn(arg(a1[id]), arg(a2[id]))
    else
      local v, more = { arg(a1[id]), arg(a2[id]) }, rest[id]
      for i = 1, #more do v[i + 2] = arg(more[i]) end
      r = fn(table.unpack(v, 1, c))
    end
    results[id] = r
  end
  return n
end
]==]

local function ref_script(name, s)
  return table.concat {
    "-- generated by tests/perf/bench/gen_flows.lua (shape ", name, ", ",
    s.tasks, " tasks); do not edit\n",
    "-- reference: plain Lua 5.4, the floor for flow_", name, ".lua\n",
    s.data or "",
    REF_PRELUDE,
    "local noop = task(", NOOP, ")\n",
    "local body = function(p)\n",
    s.ref_body or s.body,
    "end\n",
    "body({})\n",
    "local ran = run()\n",
    "if ran ~= ", tostring(s.tasks), " then error(\"ran \" .. ran .. \" tasks, expected ",
    tostring(s.tasks), "\") end\n",
  }
end

local function write(path, text)
  local f = assert(io.open(path, "wb"))
  assert(f:write(text))
  assert(f:close())
end

local order = { "one", "chain", "fan", "fan_after", "dag" }
local manifest = {}
for _, name in ipairs(order) do
  local s = shapes[name]
  local fp, rp = OUT .. "/flow_" .. name .. ".lua", OUT .. "/ref_" .. name .. ".lua"
  write(fp, flow_script(name, s))
  write(rp, ref_script(name, s))
  manifest[#manifest + 1] = ('  "%s": {"tasks": %d, "edges": %d, "flow": "%s", "ref": "%s"}')
    :format(name, s.tasks, s.edges, fp, rp)
end
write(OUT .. "/manifest.json",
      ('{\n  "seed": %d, "requested_tasks": %d,\n%s\n}\n')
        :format(SEED, N, table.concat(manifest, ",\n")))
print(("gen_flows.lua: wrote %d shapes (%d tasks) to %s"):format(#order, N, OUT))
