-- A flow's own hooks (flow.define's on_success, on_failure, on_cancel) are
-- called once per run, after its end, with the run's summary; a hook that
-- fails is logged and changes nothing; a hook can post to a webhook, even
-- in a run a signal cancelled.
-- run: on_success gets the summary
-- args: {script} --flow hooked --param mode=ok
-- stderr: flow 'hooked' run .*: Success
-- after: 0 {script} --flow verify --param want=ok
-- run: on_failure lists the task runs that failed, with their first lines
-- args: {script} --flow hooked --param mode=fail
-- exit: 1
-- after: 0 {script} --flow verify --param want=fail
-- run: on_cancel runs when a signal cancelled the run, and can post
-- server: http
-- args: {script} --flow hooked --param mode=hang --param webhook={http}/echo
-- signal: SIGINT after hang: Running
-- exit: 130
-- stderr: posted 200
-- after: 0 {script} --flow verify --param want=cancel
-- run: a hook that fails is logged, and the run's outcome stands
-- args: {script} --flow broken
-- stderr: flow 'broken' run [0-9a-f-]+: on_success hook failed \(ignored\): .*flow_hooks.lua:\d+: the hook broke
-- stderr: flow 'broken' run .*: Success
-- run: a hook must be a function
-- env: BAD=1
-- args: {script} --flow broken
-- exit: 2
-- stderr: flow.define 'bad': option 'on_failure' must be a function, got number
local flow = require "flowlua"
local json = flow.json

local function save(summary)
  local p = summary.params
  if p.webhook ~= "" then
    local r = flow.http.post(p.webhook, { json = summary, timeout = 10 })
    local echoed = json.decode(r:json().body)
    assert(echoed.run_id == summary.run_id, "the webhook got the summary")
    flow.log.info("posted %d", r.status)
  end
  local f = assert(io.open("summary.json", "w"))
  f:write(json.encode(summary))
  f:close()
end

local ok = flow.task("ok", function() return 1 end)
local part = flow.task("part", function(i)
  if i % 2 == 0 then error(("part %d broke\nsecond line"):format(i)) end
  return i
end)
local hang = flow.task("hang", function() flow.sleep(60) end)

local verify = flow.task("verify", function(want)
  local f = assert(io.open("summary.json"))
  local s = json.decode(f:read("a"))
  f:close()
  assert(s.flow == "hooked", "flow " .. tostring(s.flow))
  assert(#s.run_id == 36, "run id " .. tostring(s.run_id))
  assert(s.duration >= 0 and s.ended_at >= s.started_at, "times")
  assert(s.params.mode == ({ ok = "ok", fail = "fail", cancel = "hang" })[want], "params")
  if want == "ok" then
    assert(s.state == "Success", "state " .. s.state)
    assert(s.counts.Success == 2 and s.failed_count == 0 and #s.failed == 0, "counts")
  elseif want == "fail" then
    assert(s.state == "Failed", "state " .. s.state)
    assert(s.counts.Success == 3 and s.counts.Failed == 2, "counts")
    assert(s.failed_count == 2 and #s.failed == 2, "two failed")
    table.sort(s.failed, function(a, b) return a.task < b.task end)
    assert(s.failed[1].task == "part[2]" and s.failed[1].state == "Failed", s.failed[1].task)
    assert(s.failed[1].error:match("part 2 broke$"), "first line only: " .. s.failed[1].error)
    assert(s.failed[2].task == "part[4]", s.failed[2].task)
  else
    assert(s.state == "Cancelled", "state " .. s.state)
    assert(s.failed_count == 1 and s.failed[1].task == "hang"
      and s.failed[1].state == "Cancelled", "the cancelled task")
  end
end)

if os.getenv("BAD") then flow.define("bad", { on_failure = 5 }, function() ok() end) end

return {
  flow.define("hooked", {
    params = { mode = "ok", webhook = "" },
    on_success = save, on_failure = save, on_cancel = save,
  }, function(p)
    if p.mode == "ok" then ok():after(ok())
    elseif p.mode == "fail" then part:map({ 1, 2, 3, 4, 5 })
    else hang() end
  end),
  flow.define("broken", { on_success = function() error("the hook broke") end },
    function() ok() end),
  flow.define("verify", { params = { want = "" } }, function(p) verify(p.want) end),
}
