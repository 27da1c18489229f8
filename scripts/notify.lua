-- A flow that tells a webhook how each run ended: flow.define's on_failure
-- and on_success hooks get the run's summary (state, duration, run id, and
-- the task runs that failed with the first line of their errors) and post
-- it as JSON. The webhook's URL is a param, so it runs offline when none
-- is given (the hooks then only log what they would send):
--
--   flowlua scripts/notify.lua --param webhook=https://hooks.example/flowlua
--   flowlua scripts/notify.lua --param fail=true     -- a run that fails
--
-- A hook runs after the run's end is recorded: it cannot change how the
-- run ended, and if it fails (the webhook is down) the failure is logged
-- and ignored.
local flow = require "flowlua"
local http, json = flow.http, flow.json

local extract = flow.task("extract", function(n)
  local rows = {}
  for i = 1, n do rows[i] = { id = i, amount = i * 10 } end
  return rows
end)

local check = flow.task("check", function(rows, fail)
  if fail then error(("check: %d rows, but the totals do not match"):format(#rows)) end
  return #rows
end)

-- The message a chat webhook would show, and the summary for machines.
local function notify(summary)
  local p = summary.params
  local lines = { ("flow '%s' run %s: %s in %.1f s"):format(summary.flow,
    summary.run_id:sub(1, 8), summary.state, summary.duration) }
  for _, f in ipairs(summary.failed) do
    lines[#lines + 1] = ("  %s %s: %s"):format(f.task, f.state, f.error or "")
  end
  local body = { text = table.concat(lines, "\n"), summary = summary }
  if p.webhook == "" then
    flow.log.info("no webhook given; would post: %s", body.text)
    return
  end
  local r = http.post(p.webhook, { json = body, timeout = 10 })
  r:raise_for_status()
  flow.log.info("posted the run's summary to the webhook (%d)", r.status)
end

return flow.define("notify", {
  params = { webhook = "", rows = 5, fail = false },
  on_success = notify,
  on_failure = notify,
}, function(p)
  check(extract(p.rows), p.fail)
end)
