-- The complaints ETL of DESIGN.md (scripts/complaints.lua), end to end: run
-- as users run it against the local test server and offline from a file://
-- URL, its CSV compared byte for byte with the fixtures; then with an API
-- that fails its first three answers, and with one that never recovers.
-- server: http
-- run: the example script against the test server
-- args: {scripts}/complaints.lua --once --param url={http}/complaints
-- stderr: store_complaints: Success
-- stderr: etl flow' Success in
-- file: complaints.csv = {fixtures}/complaints-10.csv
-- run: the example script offline, from a file:// URL
-- server: none
-- args: {scripts}/complaints.lua --once --param url=file://{fixtures}/complaints.json --param out=all.csv
-- file: all.csv = {fixtures}/complaints-25.csv
-- no-file: complaints.csv
-- run: the first three attempts fail, the fourth loads the data
-- args: {script} --once --param url={http}/complaints?key=etl&fail=3
-- stderr: get_complaint_data: Retrying in .*HTTP 503
-- stderr: get_complaint_data: Success \(attempt 4,
-- stderr: store_complaints: Success
-- file: complaints.csv = {fixtures}/complaints-10.csv
-- run: every attempt fails: the file holds only its header
-- args: {script} --once --param url={http}/complaints?key=etl&fail=11
-- exit: 1
-- stderr: get_complaint_data: Failed \(attempt 11 of 11,.*HTTP 503
-- stderr: store_complaints: TriggerFailed
-- stderr: etl flow' Failed in
-- file: complaints.csv = {fixtures}/complaints-0.csv
local flow = require "flowlua"

-- The example waits 30 s between retries, too long for a test. Its code runs
-- unchanged; only while it loads does flow.task shorten that delay.
local task = flow.task
flow.task = function(name, opts, fn)
  if type(opts) == "table" and opts.retry_delay then opts.retry_delay = 0.02 end
  return task(name, opts, fn)
end
local etl = dofile(os.getenv("TEST_SCRIPTS") .. "/complaints.lua")
flow.task = task
return etl
