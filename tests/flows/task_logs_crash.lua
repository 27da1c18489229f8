-- Task log lines are journalled like state changes: a process killed
-- before its lines reached the file leaves them in its journal, and the
-- replay that marks its run Crashed writes them, bounded as the process
-- would have (the last 1,000 of 1,500, and 500 dropped).
-- sqlite-only: the journal is the SQLite history's; a PostgreSQL history has none (a run is durable by its commits)
-- run: lines of a process killed before they reached the file are replayed from its journal
-- before: -9 {script} --quiet
-- args: show last --json
-- stdout: "state":"Crashed"
-- stdout: "key":"dying",.*"logs":\[\{"at":"[^"]+","attempt":1,"level":"INFO","line":"line 501 of 1500"\},.*"line":"line 1500 of 1500"\}\],"logs_dropped":\{"lines":500,"bytes":7892\}
-- run: show prints them under the crashed task run
-- before: -9 {script} --quiet
-- args: show last
-- stdout: (?m)^dying +Crashed
-- stdout: (?m)^    \(500 earlier lines, 7892 bytes, dropped
-- stdout: (?m)^    \S+ INFO  #1  line 1500 of 1500$
local flow = require "flowlua"

-- Logs, then kills its own process with SIGKILL: its lines are in the
-- journal only (the loop never waited, nothing was flushed).
local dying = flow.task("dying", function()
  for i = 1, 1500 do flow.log.info("line %d of 1500", i) end
  local stat = assert(io.open("/proc/self/stat")):read("l")
  os.execute("kill -KILL " .. stat:match("^(%d+)"))
  for _ = 1, 1e9 do end -- the signal lands first
  error("not killed")
end)

return flow.define("dies", {}, function() dying() end)
