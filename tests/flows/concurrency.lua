-- Tasks that wait run side by side up to the flow's concurrency; --concurrency
-- overrides it; per-tag limits bound tasks sharing a tag.
-- run: ten sleeps of 0.3 s overlap (default concurrency 32)
-- stderr: verify: Success
-- run: --concurrency 2 runs them two at a time
-- args: --concurrency 2 {script}
-- env: WANT_MAX=2
-- stderr: verify: Success
-- min-seconds: 1.5
-- run: the flow's own concurrency option
-- env: FLOW_CONCURRENCY=3
-- env: WANT_MAX=3
-- stderr: verify: Success
local flow = require "flowlua"
local check = require "lib.check"

local running, max_running, db_running, db_max = 0, 0, 0, 0
local nap = flow.task("nap", function(i)
  running = running + 1
  max_running = math.max(max_running, running)
  flow.sleep(0.3)
  running = running - 1
  return i
end)
local query = flow.task("query", { tags = { "db" } }, function(i)
  db_running = db_running + 1
  db_max = math.max(db_max, db_running)
  flow.sleep(0.1)
  db_running = db_running - 1
  return i
end)
local verify = flow.task("verify", { trigger = "all_done" }, function()
  local want = tonumber(os.getenv("WANT_MAX") or "10")
  check.eq(max_running, want, "most naps running at once")
  check.eq(db_max, math.min(2, want), "most db tasks running at once")
end)

return flow.define("concurrency", {
  concurrency = tonumber(os.getenv("FLOW_CONCURRENCY")),
  limits = { db = 2 },
}, function()
  local all = {}
  for i = 1, 10 do all[#all + 1] = nap(i) end
  for i = 1, 6 do all[#all + 1] = query(i) end
  verify():after(all)
end)
