-- The schedule benchmark's flow: a 50 ms interval (BENCH_INTERVAL), each
-- run recording how late it started against its fire time; the last run
-- (BENCH_RUNS) prints the median and the maximum. Served with --max-runs.
local flow = require "flowlua"
local interval = tonumber(os.getenv("BENCH_INTERVAL") or "0.05")
local runs = tonumber(os.getenv("BENCH_RUNS") or "200")
local late = {}

local record = flow.task("record", function()
  local ctx = flow.context()
  late[#late + 1] = ctx.started_at - ctx.scheduled_at
  if #late < runs then return end
  table.sort(late)
  print(string.format("fires %d median_ms %.3f p99_ms %.3f max_ms %.3f", #late,
    1000 * late[(#late + 1) // 2], 1000 * late[math.ceil(#late * 0.99)], 1000 * late[#late]))
end)

return flow.define("lateness", { schedule = flow.interval { seconds = interval } }, function()
  record()
end)
