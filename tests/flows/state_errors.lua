-- A state file flowlua cannot use stops the run before any task starts,
-- with a message naming the file and why, and is never written to.
-- run: a file that is not SQLite
-- args: {script} --state {fixtures}/not-a-database.txt
-- exit: 1
-- stderr: state store '.*not-a-database.txt': not a flowlua state store: the file is not a SQLite database; refusing to touch it
-- not-stderr: work: Running
-- file: {fixtures}/not-a-database.txt = {fixtures}/not-a-database.txt
-- no-file: {fixtures}/not-a-database.txt-wal
-- run: runs and show say the same
-- args: runs --state {fixtures}/not-a-database.txt
-- exit: 1
-- stderr: not a flowlua state store
-- run: a folder that cannot be created
-- args: {script} --state no/such/folder/state.db
-- exit: 1
-- stderr: cannot create folder 'no/such/folder': its parent folder does not exist \(the run history; --state PATH keeps it elsewhere, --state :memory: keeps none\)
-- run: a state path that is a folder
-- args: {script} --state {fixtures}
-- exit: 1
-- stderr: state store '.*fixtures'
-- not-stderr: work: Running
local flow = require "flowlua"
local work = flow.task("work", function() end)
return flow.define("state errors", function() work() end)
