-- sqlite-only: it reads the fire tables from the SQLite file with Python's sqlite3
-- Fire times that do not simply start a run are logged and recorded in the
-- run history (table fire_event), never silent. The first run of 'served'
-- takes 0.35 s on a 0.1 s interval; 'check' then reads the history with
-- Python's sqlite3 and asserts what was recorded.
-- run: overlap = skip records the skipped fire times
-- before: 0 {script} --flow served --max-runs 2
-- args: {script} --flow check --param outcome=skipped --param min=2
-- stderr: check: Success
-- run: overlap = queue records the queued fire time and the skipped ones
-- env: OVERLAP=queue
-- before: 0 {script} --flow served --max-runs 2
-- args: {script} --flow check --param outcome=queued --param min=1
-- stderr: check: Success
-- run: queued fire times dropped when serving stops are recorded as dropped
-- env: OVERLAP=queue_all
-- before: 0 {script} --flow served --max-runs 2
-- args: {script} --flow check --param outcome=dropped --param min=1
-- stderr: check: Success
local flow = require "flowlua"

local slow = flow.task("slow", function()
  local f = io.open("first.marker")
  if f then f:close() return end
  assert(io.open("first.marker", "w")):close()
  flow.sleep(0.35)
end)

local query = [[
import sqlite3, sys
db = sqlite3.connect(".flowlua/state.db")
rows = db.execute("SELECT count, detail FROM fire_event WHERE flow = 'served'"
                  " AND outcome = ?", (sys.argv[1],)).fetchall()
print(sum(r[0] for r in rows))
for r in rows: print(r[1])
]]

local check = flow.task("check", function(outcome, min)
  local r = flow.shell({ "python3", "-c", query, outcome }, { check = true })
  local n = tonumber(r.stdout:match("^(%d+)"))
  assert(n and n >= min, ("expected at least %d %s fire time(s) recorded, got %s:\n%s")
    :format(min, outcome, tostring(n), r.stdout))
  assert(r.stdout:find("fire time", 1, true), "the logged message is recorded")
end)

return {
  flow.define("served", {
    schedule = flow.interval { seconds = 0.1, overlap = os.getenv("OVERLAP") or "skip" },
  }, function() slow() end),
  flow.define("check", { params = { outcome = "skipped", min = 1 } },
    function(p) check(p.outcome, p.min) end),
}
