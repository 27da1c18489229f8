-- One count of task runs everywhere (issue 16, item 22): a map of 3 where
-- element 2 fails, its consumer TriggerFailed, and an independent task that
-- fails. A task run is a task call or one element of a map; a map with
-- elements is a group, counted by its elements. So every view says
-- 6 task runs: 3 Success, 2 Failed, 1 TriggerFailed — the summary, the
-- JSON log's last record, runs, show, show --json and the report's page
-- (checked by this script itself, run with --param page=PATH).
-- run: the summary at the end of the run
-- args: {script}
-- exit: 1
-- stderr: 6 task runs — 3 Success, 2 Failed, 1 TriggerFailed\n
-- run: the JSON log's last record
-- args: {script} --log-format json
-- exit: 1
-- json-lines: stderr
-- stderr: "flow_state":"Failed".*"message":"flow 'task counts' run [0-9a-f-]+: Failed in [0-9.]+ s \(6 task runs: 3 Success, 2 Failed, 1 TriggerFailed\)"
-- run: runs
-- before: 1 {script}
-- args: runs
-- stdout: task counts  Failed .* 3 Success, 2 Failed, 1 TriggerFailed\n
-- run: show
-- before: 1 {script}
-- args: show last
-- stdout: (?m)^Tasks +3 Success, 2 Failed, 1 TriggerFailed$
-- run: show --json
-- before: 1 {script}
-- args: show last --json
-- stdout: "task_counts":\{"Success":3,"Failed":2,"TriggerFailed":1\}
-- run: the report's page
-- before: 1 {script}
-- before: 0 report last --html page.html
-- args: {script} --param page=page.html --state :memory:
-- stderr: the page counts 6 task runs: 3 Success, 2 Failed, 1 TriggerFailed
local flow = require "flowlua"

local items = flow.task("items", function() return { 1, 2, 3 } end)

local check = flow.task("check", function(x)
  if x == 2 then error("element 2 is bad") end
  return x
end)

local total = flow.task("total", function(xs) return #xs end)

local lone = flow.task("lone", function() error("lone fails") end)

-- With --param page=PATH: checks the report's summary row instead.
local read_page = flow.task("read_page", function(path)
  local f = assert(io.open(path))
  local html = f:read("a")
  f:close()
  local want = '<th>Task runs</th><td>6: '
    .. '<span class="chip s-Success">3 Success</span>'
    .. '<span class="chip s-Failed">2 Failed</span>'
    .. '<span class="chip s-TriggerFailed">1 TriggerFailed</span>'
  if not html:find(want, 1, true) then
    error("the page does not count 6 task runs: " .. (html:match("Task runs.-</tr>") or "no row"))
  end
  flow.log.info("the page counts 6 task runs: 3 Success, 2 Failed, 1 TriggerFailed")
end)

return flow.define("task counts", { params = { page = "" } }, function(p)
  if p.page ~= "" then
    read_page(p.page)
    return
  end
  total(check:map(items()))
  lone()
end)
