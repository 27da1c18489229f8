-- The JSON benchmark's work, the same text for both sides:
--   flowlua --quiet --state :memory: bench.lua   flow.json
--   lua5.4 bench.lua                             lua-cjson (the reference)
-- Environment: JSON_BENCH_OP=decode|encode, JSON_BENCH_FILE (the JSON text),
-- JSON_BENCH_COUNT (how many times; default 1).
-- decode: decodes the file's text COUNT times. encode: decodes it once,
-- untimed, then encodes that value COUNT times.
-- Prints "op OP count N bytes B seconds S": B is the length of the text
-- decoded or produced once, S the processor time of the loop alone
-- (os.clock, the one clock both interpreters have; the work is one thread
-- that never waits).
local has_flowlua, flow = pcall(require, "flowlua")
local json = has_flowlua and flow.json or require "cjson"

local op = os.getenv("JSON_BENCH_OP") or "decode"
local path = assert(os.getenv("JSON_BENCH_FILE"), "JSON_BENCH_FILE: the JSON text to use")
local count = math.tointeger(tonumber(os.getenv("JSON_BENCH_COUNT") or "1"))
assert(count and count >= 1, "JSON_BENCH_COUNT must be a positive integer")

local f = assert(io.open(path, "rb"))
local text = f:read("a")
f:close()

local seconds, bytes
if op == "decode" then
  local value
  collectgarbage()
  local t0 = os.clock()
  for _ = 1, count do value = json.decode(text) end
  seconds = os.clock() - t0
  assert(type(value) == "table", "the text must decode to a table")
  bytes = #text
elseif op == "encode" then
  local value = json.decode(text)
  local out
  collectgarbage()
  local t0 = os.clock()
  for _ = 1, count do out = json.encode(value) end
  seconds = os.clock() - t0
  bytes = #out
else
  error("JSON_BENCH_OP must be decode or encode, not " .. op)
end
print(string.format("op %s count %d bytes %d seconds %.6f", op, count, bytes, seconds))

if has_flowlua then return flow.define("json bench", {}, function() end) end
