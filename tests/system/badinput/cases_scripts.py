"""Scripts that cannot load, cannot build their graph, or misuse the API
while running. tests/flows/bad_scripts.lua and task_misuse.lua hold the
basic ones (a syntax error, an error at top level, a cycle, a task called
from a task); these are the rest. A script that cannot load or build exits
2 naming the file and line; misuse inside a running task fails that task
(exit 1) with the line."""
from case import Case, one_task_flow, script

# A precompiled chunk of a two-line flow script with three bytes changed:
# Lua does not verify bytecode, and this one crashed the interpreter.
CORRUPT_BYTECODE = bytes.fromhex(
    "1b4c7561540019930d0a1a0a0408087856000000000000000000000028774001c76c6f63616c20666c6f77203d207265"
    "71756972652022666c6f776c7561220a72dc7475726e2066e56f772e646566696e65282266222c2066756e6374696f6e"
    "282920656e642980800001048a510000000b00000083800000440002028e0000020381018ecf010000c5000301c60000"
    "01c6000101840488726571756972650488666c6f776c75610487646566696e6504826681010000818082820000028147"
    "00010080808081008080808a01000000010000000000808185666c6f77848a81855f454e56")

DUPLICATE_TASK = script('local a = flow.task("load", function() return 1 end)\n'
                        'local other = flow.task("other", function() end)\n'
                        'local b = flow.task("load", function() return 2 end)\n'
                        'return flow.define("f", function() a() other() b() end)\n')

NOT_RUNNING = r"(?i)\bRunning\b"  # nothing may start when the script cannot build

CASES = [
    # ---- cannot load ---------------------------------------------------------
    Case("unfinished string",
         {"flow.lua": script('local s = "never closed\nreturn s\n')},
         exit=2, stderr=[r"cannot load flow\.lua: flow\.lua:2: unfinished string"]),
    Case("goto a missing label",
         {"flow.lua": script('do goto nowhere end\n')},
         exit=2, stderr=[r"cannot load flow\.lua: flow\.lua:3: no visible label 'nowhere' for <goto> at line 2"]),
    Case("random bytes instead of a script",
         {"flow.lua": bytes(range(256)) * 4},
         exit=2, stderr=[r"cannot load flow\.lua: flow\.lua:1: unexpected symbol"]),
    Case("a corrupted precompiled chunk is refused, not run",
         {"flow.lua": CORRUPT_BYTECODE},
         exit=2, stderr=[r"cannot load flow\.lua: .*binary chunk"]),
    Case("an empty file",
         {"flow.lua": b""},
         exit=2, stderr=[r"flow\.lua must return a flow .* but it returned nil"]),
    Case("require of a module that does not exist",
         {"flow.lua": script('local helpers = require "no_such_helpers"\n')},
         exit=2, stderr=[r"flow\.lua failed while loading: flow\.lua:2: module 'no_such_helpers' not found"]),
    Case("flow.fail at the top level",
         {"flow.lua": script('flow.fail("not ready")\n')},
         exit=2, stderr=[r"flow\.lua failed while loading: not ready", r"flow\.lua:2: in main chunk"]),
    # Two tasks with one name would share a key in the history: refused at
    # load, naming both lines, before anything is recorded (no history
    # folder), for check, a run and a run without a history.
    *[Case(f"a task name defined twice ({how})",
           {"flow.lua": DUPLICATE_TASK},
           args=args, exit=2,
           stderr=[r"task 'load' is defined twice: flow\.lua:2 and flow\.lua:4"],
           not_stderr=[NOT_RUNNING, r"used twice"], may_create=())
      for how, args in [("check", ["check", "flow.lua"]), ("run", ["flow.lua"]),
                        ("run, --state :memory:", ["--state", ":memory:", "flow.lua"])]],
    Case("a task name defined twice, once in a required module",
         {"flow.lua": script('local a = flow.task("load", function() end)\n'
                             'local b = require "helpers"\n'
                             'return flow.define("f", function() a() b() end)\n'),
          "helpers.lua": script('return flow.task("load", function() end)\n')},
         args=["check", "flow.lua"], exit=2,
         stderr=[r"task 'load' is defined twice: flow\.lua:2 and \./helpers\.lua:2"],
         may_create=()),

    # ---- cannot build ----------------------------------------------------------
    Case("flow body errors with nil",
         {"flow.lua": script('return flow.define("f", function()\n  error()\nend)\n')},
         exit=2, stderr=[r"flow 'f': the flow body failed: \(error object is a nil value\)",
                         r"flow\.lua:3: in function"],
         not_stderr=[NOT_RUNNING]),
    Case("flow body errors with a table",
         {"flow.lua": script('return flow.define("f", function()\n  error({ code = 7 })\nend)\n')},
         exit=2, stderr=[r"flow 'f': the flow body failed: \(error object is a table value\)",
                         r"flow\.lua:3: in function"],
         not_stderr=[NOT_RUNNING]),
    Case("flow body yields",
         {"flow.lua": script('return flow.define("f", function()\n  coroutine.yield()\nend)\n')},
         exit=2, stderr=[r"flow 'f': the flow body failed: attempt to yield from outside a coroutine",
                         r"flow\.lua:3: in function"],
         not_stderr=[NOT_RUNNING]),
    Case("flow body indexes a nil parameter",
         {"flow.lua": script('return flow.define("f", { params = {} }, function(p)\n'
                             '  local url = p.source.url\nend)\n')},
         exit=2, stderr=[r"flow 'f': the flow body failed: flow\.lua:3: attempt to index a nil value \(field 'source'\)"],
         not_stderr=[NOT_RUNNING]),
    Case("node:after given a task instead of a node",
         {"flow.lua": script('local t = flow.task("t", function() end)\n'
                             'return flow.define("f", function()\n  t():after(t)\nend)\n')},
         exit=2, stderr=[r"flow\.lua:4: node:after: argument 1 must be a node \(the result of calling a task\), got userdata"],
         not_stderr=[NOT_RUNNING]),
    Case("task:map over a number",
         {"flow.lua": script('local t = flow.task("t", function(x) return x end)\n'
                             'return flow.define("f", function()\n  t:map(5)\nend)\n')},
         exit=1, stderr=[r"t: Failed: map: no list to map over \(argument 1 is number\); "
                         r"task 't':map called at flow\.lua:4"]),
    Case("task:map over lists of different lengths",
         {"flow.lua": script('local t = flow.task("t", function(a, b) return a end)\n'
                             'return flow.define("f", function()\n  t:map({ 1, 2, 3 }, { 1, 2 })\nend)\n')},
         exit=1, stderr=[r"t: Failed: map: argument 2 has 2 elements but argument 1 has 3 "
                         r"\(wrap an argument in flow\.unmapped to pass it whole\); "
                         r"task 't':map called at flow\.lua:4"]),
    Case("flow.unmapped without a value",
         {"flow.lua": script('local t = flow.task("t", function(x) return x end)\n'
                             'return flow.define("f", function()\n  t:map({ 1 }, flow.unmapped())\nend)\n')},
         exit=2, stderr=[r"flow\.lua:4: bad argument #1 to 'unmapped' \(value expected\)"],
         not_stderr=[NOT_RUNNING]),

    # ---- misuse while running -------------------------------------------------
    Case("a task maps another task",
         {"flow.lua": script('local inner = flow.task("inner", function(x) return x end)\n'
                             'local outer = flow.task("outer", function()\n'
                             '  return inner:map({ 1, 2 })\nend)\n'
                             'return flow.define("f", function() outer() end)\n')},
         exit=1, stderr=[r"outer: Failed .*flow\.lua:4: task 'inner':map called inside task 'outer': "
                         r"tasks are called from a flow body, not from other tasks"]),
    Case("a task adds an ordering edge",
         {"flow.lua": script('local a = flow.task("a", function() end)\nlocal kept\n'
                             'local b = flow.task("b", function()\n  kept:after(kept)\nend)\n'
                             'return flow.define("f", function() kept = a(); b() end)\n')},
         exit=1, stderr=[r"b: Failed .*flow\.lua:5: node:after called inside task 'b'"]),
    Case("a task defines a flow and calls its task",
         {"flow.lua": script('local a = flow.task("a", function() end)\n'
                             'local b = flow.task("b", function()\n'
                             '  local g = flow.define("g", function() end)\n  return a()\nend)\n'
                             'return flow.define("f", function() b() end)\n')},
         exit=1, stderr=[r"b: Failed .*flow\.lua:5: task 'a' called inside task 'b'"]),
    Case("a task closes the coroutine another task returned as its own",
         {"flow.lua": script('local co = flow.task("co", function()\n'
                             '  return coroutine.running()\nend)\n'
                             'local use = flow.task("use", function(c)\n  coroutine.close(c)\nend)\n'
                             'return flow.define("f", function() use(co()) end)\n')},
         exit=1, stderr=[r"use: Failed .*flow\.lua:6: coroutine\.close: that is the coroutine of task 'use', "
                         r"which flowlua runs: only flowlua may resume or close it"]),
    Case("a task resumes a coroutine another task returned while a third waits on it",
         {"flow.lua": script('local co = flow.task("co", function() return { coroutine.running() } end)\n'
                             'local sleeper = flow.task("sleeper", function() flow.sleep(0.3); return "slept" end)\n'
                             'local use = flow.task("use", function(c)\n  flow.sleep(0.05)\n'
                             '  assert(coroutine.resume(c[1]))\nend)\n'
                             'return flow.define("f", function()\n'
                             '  local n = co(); sleeper():after(n); use(n)\nend)\n')},
         exit=1, stderr=[r"use: Failed .*flow\.lua:6: .*coroutine of task 'sleeper'",
                         r"sleeper: Success"]),
    Case("a task resumes a coroutine another task returned, once the runtime keeps it for reuse",
         {"flow.lua": script('local co = flow.task("co", function() return { coroutine.running() } end)\n'
                             'local short = flow.task("short", function() flow.sleep(0.05) end)\n'
                             'local use = flow.task("use", function(c)\n  flow.sleep(0.3)\n'
                             '  assert(coroutine.resume(c[1]))\nend)\n'
                             'return flow.define("f", function()\n'
                             '  local n = co(); short():after(n); use(n)\nend)\n')},
         exit=1, stderr=[r"use: Failed .*flow\.lua:6: coroutine\.resume: that coroutine ran a flowlua "
                         r"task that has ended, and flowlua keeps it for its next tasks",
                         r"short: Success"]),
    Case("a task returns a suspended coroutine it made (no JSON for the history)",
         {"flow.lua": script('local co = flow.task("co", function()\n'
                             '  return coroutine.create(function() coroutine.yield(1) end)\nend)\n'
                             'local use = flow.task("use", function(c) assert(coroutine.resume(c)) end)\n'
                             'return flow.define("f", function() use(co()) end)\n')},
         exit=0, stderr=[r"co: Success", r"use: Success"]),
    Case("on_failure hook that errors is reported, the failure stands",
         {"flow.lua": one_task_flow('  error("task broke")',
                                    'on_failure = function() error("hook broke") end')},
         exit=1, stderr=[r"t: Failed \(attempt 1 of 1, .*\): flow\.lua:3: task broke",
                         r"t: on_failure hook failed \(ignored\): flow\.lua:2: hook broke"]),
    Case("retry_if that errors stops the retries",
         {"flow.lua": one_task_flow('  error("task broke")',
                                    'retries = 3, retry_if = function(e) error("retry_if broke") end')},
         exit=1, stderr=[r"t: retry_if failed; not retrying: flow\.lua:2: retry_if broke",
                         r"t: Failed \(attempt 1 of 4"]),
    Case("trigger function that errors",
         {"flow.lua": script('local a = flow.task("a", function() end)\n'
                             'local t = flow.task("t", { trigger = function(states)\n'
                             '  error("trigger broke")\nend }, function() end)\n'
                             'return flow.define("f", function() t(a()) end)\n')},
         exit=1, stderr=[r"t: TriggerFailed \(trigger function failed: flow\.lua:4: trigger broke"]),
    Case("cache_key that returns a table",
         {"flow.lua": one_task_flow('  return 1', 'cache_key = function() return {} end')},
         exit=1, stderr=[r"t: Failed \(before it started\): cache_key must return a string, got table"]),
    Case("flow.sleep with a negative time",
         {"flow.lua": one_task_flow('  flow.sleep(-1)')},
         exit=1, stderr=[r"t: Failed .*flow\.lua:3: bad argument #1 to 'sleep' \(seconds must be a number >= 0\)"]),
    Case("flow.log with a format that does not fit its values",
         {"flow.lua": one_task_flow('  flow.log.info("%d rows", "many")')},
         exit=1, stderr=[r"t: Failed .*flow\.lua:3: flow\.log\.info: bad argument #2 to '(string\.)?format' "
                         r"\(number expected, got string\)"]),
    Case("flow.secret of an unset variable",
         {"flow.lua": one_task_flow('  return flow.secret("FLOWLUA_BADINPUT_UNSET")')},
         exit=1, stderr=[r"t: Failed .*flow\.lua:3: flow\.secret: environment variable "
                         r"'FLOWLUA_BADINPUT_UNSET' is not set"]),
    Case("a task result too deep to store",
         {"flow.lua": one_task_flow('  local v = {}\n  for i = 1, 5000 do v = { v } end\n  return v')},
         exit=0, stderr=[r"t: Success"]),
]
