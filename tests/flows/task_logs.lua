-- Task log lines in the history: what flow.log.* writes inside a task is
-- kept with its task run (the last 1,000 lines and 64 KiB of each, with a
-- count of what was dropped), masked as the printed log is, for inline
-- and worker tasks and each attempt of a retried one, and shown by
-- `show`, `show --json` and the HTML report, whatever --quiet printed.
-- (A process killed before its lines reached the file: task_logs_crash.)
-- run: 2,000 lines keep the last 1,000, and show says what was dropped
-- before: 0 {script} --flow task_logs --param lines=2000 --quiet
-- args: show last
-- stdout: (?m)^noisy +Success +1
-- stdout: (?m)^    \(1000 earlier lines, 7893 bytes, dropped: a task run keeps its last 1000 lines and 64 KiB\)$
-- stdout: (?m)^    \d\d:\d\d:\d\d\.\d{3} INFO  #1  line 1001$
-- stdout: (?m)^    \d\d:\d\d:\d\d\.\d{3} INFO  #1  line 2000$
-- not-stdout: line 1000\n
-- run: show --json lists them per task, with logs_dropped
-- before: 0 {script} --flow task_logs --param lines=2000 --quiet
-- args: show last --json
-- stdout: "logs_dropped":\{"lines":1000,"bytes":7893\}
-- stdout: \{"at":"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z","attempt":1,"level":"INFO","line":"line 1001"\}
-- stdout: "line":"line 2000"\}\]
-- not-stdout: "line":"line 1000"
-- run: 64 KiB: lines of 1,000 bytes keep the last 65
-- before: 0 {script} --flow task_logs --param lines=100 --param width=1000 --quiet
-- args: show last --json
-- stdout: "logs_dropped":\{"lines":35,"bytes":35000\}
-- stdout: "line":"0036x{996}"
-- not-stdout: "line":"0035x
-- run: both attempts of a retried task, the level and the text as logged
-- before: 0 {script} --flow task_logs --quiet
-- args: show last --json
-- stdout: "attempt":1,"level":"INFO","line":"flaky try 1"\}
-- stdout: "attempt":1,"level":"WARN","line":"about to fail <b>&</b>"\}
-- stdout: "attempt":2,"level":"INFO","line":"flaky try 2"\}
-- stdout: "attempt":2,"level":"ERROR","line":"multi\\nline"\}
-- not-stdout: logs_dropped
-- not-stdout: a debug line
-- run: --quiet prints no INFO line, the history keeps them
-- before: 0 {script} --flow task_logs --quiet
-- args: show last
-- stdout: (?m)^    \S+ INFO  #2  flaky try 2$
-- stdout: (?m)^    \S+ ERROR #2  multi\n        line$
-- run: a secret is masked in the history as in the log
-- env: TASK_LOGS_TOKEN=t0k3n-Zq9
-- before: 0 {script} --flow task_logs --quiet
-- args: show last --json
-- stdout: "line":"token \*\*\* in use"
-- not-stdout: Zq9
-- run: a worker task's lines are kept with its task run
-- before: 0 {script} --flow task_logs --workers 1 --quiet
-- args: show last --json
-- stdout: "key":"remote",.*"worker":\{"host":"[^"]+","pid":\d+\},.*"logs":\[\{"at":"[^"]+","attempt":1,"level":"INFO","line":"from a worker process"\}\]
-- run: the HTML report shows them, escaped
-- before: 0 {script} --flow task_logs --quiet
-- args: report last --html report.html
-- after: 0 {script} --flow html_check --state :memory:
local flow = require "flowlua"

local noisy = flow.task("noisy", function(lines, width)
  for i = 1, lines do
    if width > 0 then
      flow.log.info(string.format("%04d", i) .. string.rep("x", width - 4))
    else
      flow.log.info("line %d", i)
    end
  end
end)

local tries = 0
local flaky = flow.task("flaky", { retries = 1, retry_delay = 0 }, function()
  tries = tries + 1
  flow.log.info("flaky try %d", tries)
  flow.log.debug("a debug line")
  if tries == 1 then
    flow.log.warn("about to fail <b>&</b>")
    error("first try fails")
  end
  flow.log.error("multi\nline")
end)

local secret_user = flow.task("secret_user", function()
  if not os.getenv("TASK_LOGS_TOKEN") then return end
  flow.log.info("token %s in use", flow.secret("TASK_LOGS_TOKEN"))
end)

local remote = flow.task("remote", { worker = true }, function()
  flow.log.info("from a worker process")
  return 1
end)

local task_logs = flow.define("task_logs", { params = { lines = 3, width = 0 } },
  function(p)
    noisy(p.lines, p.width)
    flaky()
    secret_user()
    remote()
  end)

-- The report of the last run: its Log section holds each task run's
-- lines, the HTML in them escaped.
local html_check = flow.define("html_check", {}, function()
  local f = assert(io.open("report.html", "rb"))
  local page = f:read("a")
  f:close()
  assert(page:find('<section id="logs">', 1, true), "no Log section")
  assert(page:find('<article class="log" data-task="flaky" data-lines="4">', 1, true),
         "flaky's four lines")
  assert(page:find("about to fail &lt;b&gt;&amp;&lt;/b&gt;", 1, true),
         "the line's HTML escaped")
  assert(not page:find("about to fail <b>", 1, true), "the line's HTML raw")
  assert(page:find("INFO  #1  line 3\n", 1, true), "noisy's last line")
end)

return { task_logs = task_logs, html_check = html_check }
