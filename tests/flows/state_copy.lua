-- sqlite-only: it copies the SQLite file .flowlua/state.db itself
-- flowlua state copy FROM TO: a history copied whole into a second SQLite
-- file, which `runs` and `show` then read as the first; the refusals.
-- run: two runs copied into copy.db, counts on stdout
-- before: 0 {script}
-- before: 1 {script} --param fail=true
-- args: state copy .flowlua/state.db copy.db
-- stdout: ^copied 2 runs, 4 task runs, 0 state changes, 0 fire claims, 0 fire events, 0 cache entries from \.flowlua/state\.db to copy\.db in
-- after: 0 runs --state copy.db
-- after: 0 show last --state copy.db
-- run: `runs` on the copy lists both, as on the original
-- before: 0 {script}
-- before: 1 {script} --param fail=true
-- before: 0 state copy .flowlua/state.db copy.db
-- args: runs --state copy.db
-- stdout: copied +Failed
-- stdout: copied +Success
-- run: a copy into a history that holds runs is refused, and says so
-- before: 0 {script}
-- before: 0 state copy .flowlua/state.db copy.db
-- args: state copy .flowlua/state.db copy.db
-- exit: 1
-- stderr: state store 'copy\.db': cannot copy into it: it holds 1 run already
-- run: a missing FROM, and nothing made at TO
-- args: state copy nothere.db copy.db
-- exit: 1
-- stderr: no run history at 'nothere\.db' to copy from
-- no-file: copy.db
-- run: TO missing is bad usage
-- args: state copy .flowlua/state.db
-- exit: 2
-- stderr: state copy expects FROM and TO
-- run: another word after state is bad usage
-- args: state move a.db b.db
-- exit: 2
-- stderr: unknown command 'state move'
local flow = require "flowlua"

local two = flow.task("two", function(p)
  if p.fail then error("failed on purpose") end
  return 2
end)

local one = flow.task("one", function() return 1 end)

return flow.define("copied", { params = { fail = false } }, function(p)
  one()
  two(p)
end)
