-- FLOWLUA_STATE names the history every command uses when --state is not
-- given; --state wins over it; an empty one is the default.
-- run: FLOWLUA_STATE keeps the history where it says, for runs too
-- env: FLOWLUA_STATE=hist/elsewhere.db
-- before: 0 {script}
-- args: runs
-- stdout: (?m)^[0-9a-f]{8}  state_env  Success
-- no-file: .flowlua/state.db
-- run: --state wins over FLOWLUA_STATE
-- env: FLOWLUA_STATE=elsewhere.db
-- before: 0 {script} --state mine.db
-- args: runs --state mine.db
-- stdout: (?m)^[0-9a-f]{8}  state_env  Success
-- no-file: elsewhere.db
-- run: an empty FLOWLUA_STATE is the default
-- env: FLOWLUA_STATE=
-- before: 0 {script}
-- args: runs --state .flowlua/state.db
-- stdout: (?m)^[0-9a-f]{8}  state_env  Success
local flow = require "flowlua"
local t = flow.task("t", function() return 1 end)
return flow.define("state_env", function() return t() end)
