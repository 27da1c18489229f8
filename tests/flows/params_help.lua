-- `flowlua SCRIPT.lua --help`: every flow's params, or the --flow one's;
-- a default read with flow.secret shown masked; a script that defines
-- several flows; a --flow that names none.
-- run: every flow, a secret default masked
-- args: {script} --help
-- env: PT_TOKEN=hunter2
-- stdout: Flow 'bare' takes no params\.
-- stdout: Flow 'with' params \(--param NAME=VALUE\):\n  limit  number, default 2\.5, <= 10\n  token  string, default "\*\*\*"\n
-- not-stdout: hunter2
-- run: the --flow one only
-- args: {script} --flow bare --help
-- env: PT_TOKEN=hunter2
-- stdout: Flow 'bare' takes no params\.
-- not-stdout: Flow 'with'
-- run: a --flow that names no flow
-- args: {script} --flow nope --help
-- env: PT_TOKEN=hunter2
-- exit: 2
-- stderr: params_help\.lua has no flow named 'nope'
-- run: a script that does not load
-- args: {script} --help
-- exit: 2
-- stderr: failed while loading
local flow = require "flowlua"

local t = flow.task("t", function() end)

return {
  flow.define("with", {
    params = {
      token = flow.param.string(flow.secret("PT_TOKEN")),
      limit = flow.param.number(2.5, { max = 10 }),
    },
  }, function() t() end),
  flow.define("bare", function() t() end),
}
