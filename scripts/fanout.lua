-- A small flow that shows the engine's shape without any network: a fan-out
-- with task:map, a flaky step that succeeds on retry, an ordering edge, and a
-- cleanup that runs whatever happened upstream.
--
--   flowlua scripts/fanout.lua --param count=8
local flow = require "flowlua"

local make_batches = flow.task("make_batches", function(count)
  local batches = {}
  for i = 1, count do batches[i] = { id = i, size = i * 10 } end
  return batches
end)

-- Pretend work: waits a little (other batches proceed meanwhile).
local process = flow.task("process", { timeout = 5 }, function(batch, factor)
  flow.sleep(0.02 * (batch.id % 3))
  return batch.size * factor
end)

-- Fails on its first attempt, as a flaky service would.
local publish = flow.task("publish", { retries = 3, retry_delay = 0.2, backoff = 2 },
  function(results)
    if flow.context().attempt == 1 then error("service unavailable") end
    local total = 0
    for _, v in ipairs(results) do total = total + v end
    flow.log.info("published %d results, total %d", #results, total)
    return total
  end)

local announce = flow.task("announce", function(count)
  flow.log.info("processing %d batches", count)
end)

local cleanup = flow.task("cleanup", { trigger = "all_done" }, function()
  flow.log.info("cleaned up")
end)

return flow.define("fanout", { params = { count = 5, factor = 2 } }, function(p)
  local started = announce(p.count)
  local results = process:map(make_batches(p.count), flow.unmapped(p.factor))
  local total = publish(results):after(started)
  cleanup():after(total)
end)
