-- The table-building floor of the CSV read benchmark, in plain Lua 5.4:
-- the fields of the N rows bench.lua writes, made as strings beforehand
-- (untimed), then one loop that only builds the same list of row tables
-- csv.read returns. No file, no parsing: what is left is the cost of the
-- tables themselves, which any Lua CSV reader pays.
--   lua5.4 ref_tables.lua N
-- Prints "rows N seconds S rows_per_s R" (S: os.clock, processor time).
local n = math.tointeger(tonumber(arg[1] or "1000000"))
assert(n and n >= 1, "usage: lua5.4 ref_tables.lua ROWS")

local fields = {}
for i = 1, n do
  local name = i % 10 == 0 and ('"name' .. (i - 1) % 1000 .. '", again') or "name" .. (i - 1) % 1000
  fields[3 * i - 2], fields[3 * i - 1], fields[3 * i] = "id" .. i, tostring(i * 7), name
end
collectgarbage()

local t0 = os.clock()
local rows = {}
for i = 1, n do
  local j = 3 * i
  rows[i] = { fields[j - 2], fields[j - 1], fields[j] }
end
local seconds = os.clock() - t0
assert(#rows == n)
print(string.format("rows %d seconds %.4f rows_per_s %.0f", n, seconds, n / seconds))
