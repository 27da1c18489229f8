-- A parent flow that runs one subflow per region, and tells a webhook when
-- a run fails. Each region is a run of the flow 'region' of its own (its
-- own run id, task runs and logs in the history), called from the parent's
-- body as a task is; its result is what its body returns. A region that
-- fails fails its task run in the parent, and the parent's on_failure hook
-- posts the run's summary, naming it:
--
--   flowlua scripts/regions.lua                            -- four regions
--   flowlua scripts/regions.lua --param broken=east        -- one fails
--   flowlua scripts/regions.lua --param broken=east \
--       --param webhook=https://hooks.example/flowlua      -- and is posted
--
-- Offline: without a webhook the hook only logs what it would send.
local flow = require "flowlua"

-- The region's rows; `broken` stands for a source that went bad.
local extract = flow.task("extract", function(name, rows, broken)
  if broken then error(("region %s: the source file is truncated"):format(name)) end
  local out = {}
  for i = 1, rows do out[i] = { id = i, amount = (i * 37) % 101 } end
  return out
end)

local summarise = flow.task("summarise", function(name, data)
  local total = 0
  for _, r in ipairs(data) do total = total + r.amount end
  return { region = name, rows = #data, total = total }
end)

-- The subflow: one region. Its params are checked as --param values are.
local region = flow.define("region", {
  params = {
    name = flow.param.string(nil),
    rows = flow.param.int(100, { min = 1 }),
    broken = false,
  },
}, function(p)
  return summarise(p.name, extract(p.name, p.rows, p.broken))
end)

-- One params table per region, for region:map.
local plan = flow.task("plan", function(regions, rows, broken)
  local list = {}
  for name in regions:gmatch("[^,%s]+") do
    list[#list + 1] = { name = name, rows = rows, broken = name == broken }
  end
  return list
end)

local combine = flow.task("combine", function(results)
  local rows, total = 0, 0
  for _, r in ipairs(results) do
    flow.log.info("%-6s %4d rows, total %d", r.region, r.rows, r.total)
    rows, total = rows + r.rows, total + r.total
  end
  flow.log.info("all regions: %d rows, total %d", rows, total)
  return { rows = rows, total = total }
end)

-- The parent's on_failure: which regions failed, and why, in one message.
local function notify(summary)
  local failed = {}
  for _, f in ipairs(summary.failed) do
    failed[#failed + 1] = f.task .. " " .. f.state .. ": " .. (f.error or "")
  end
  local text = ("regions run %s failed after %.1f s\n%s"):format(
    summary.run_id:sub(1, 8), summary.duration, table.concat(failed, "\n"))
  local hook = summary.params.webhook
  if hook == "" then
    return flow.log.warn("no webhook given; would post: %s", text)
  end
  local r = flow.http.post(hook, { json = { text = text, summary = summary }, timeout = 10 })
  r:raise_for_status()
  flow.log.info("posted the failure to the webhook (%d)", r.status)
end

return flow.define("regions", {
  params = { regions = "north,south,east,west", rows = 100, broken = "", webhook = "" },
  on_failure = notify,
}, function(p)
  combine(region:map(plan(p.regions, p.rows, p.broken)))
end)
