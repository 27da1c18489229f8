-- The flowlua side of the CSV benchmark: one operation per process on N
-- rows of 3 short fields (the rows ref_libcsv.c makes), timed alone.
-- The same rows, split into strings, are what ref_tables.lua builds.
--   CSV_BENCH_OP=write|read|rows|stream|stream_holding|records CSV_BENCH_FILE=/tmp/b.csv \
--   CSV_BENCH_ROWS=1000000 flowlua bench.lua --quiet
-- Prints "rows N seconds S rows_per_s R". read and rows expect the file.
local flow = require "flowlua"
local csv = flow.csv
local op = os.getenv("CSV_BENCH_OP") or "write"
local path = os.getenv("CSV_BENCH_FILE") or "bench.csv"
local n = tonumber(os.getenv("CSV_BENCH_ROWS") or "1000000")

local t0, count
if op == "write" then
  local rows = {}
  for i = 1, n do
    -- every tenth name holds a quote and a comma, so it must be quoted
    local name = i % 10 == 0 and ('"name' .. (i - 1) % 1000 .. '", again') or "name" .. (i - 1) % 1000
    rows[i] = { "id" .. i, tostring(i * 7), name }
  end
  collectgarbage()
  t0 = flow.now()
  count = csv.write(path, rows)
elseif op == "read" then
  t0 = flow.now()
  count = #csv.read(path)
elseif op == "rows" then
  t0 = flow.now()
  count = 0
  for _ in csv.rows(path) do count = count + 1 end
elseif op == "stream" or op == "stream_holding" or op == "records" then
  -- As ref_python.py does: add up every field's length. stream_holding
  -- first reads the whole file into a table it keeps (a task that holds a
  -- large table while it streams: the collector's worst case).
  local held
  if op == "stream_holding" then held = csv.read(path) end
  local total = 0
  t0 = flow.now()
  count = 0
  if op == "records" then
    for r in csv.rows(path, { header = true }) do
      for _, v in pairs(r) do total = total + #v end
      count = count + 1
    end
    count = count + 1 -- the header line, as the other ops count it
  else
    for r in csv.rows(path) do
      for i = 1, #r do total = total + #r[i] end
      count = count + 1
    end
  end
  assert(total > 0 and (not held or #held == n))
else
  error("CSV_BENCH_OP must be write, read, rows, stream, stream_holding or records")
end
local seconds = flow.now() - t0
assert(count == n, "rows: " .. tostring(count))
print(string.format("rows %d seconds %.4f rows_per_s %.0f", n, seconds, n / seconds))

return flow.define("csv bench", {}, function() end)
