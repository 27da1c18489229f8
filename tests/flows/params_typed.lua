-- Typed params (flow.param.*): each type's good values reach the body as
-- plain Lua values; every refusal names the param, the value and what was
-- expected, before anything runs; a required param must be given; a
-- resume checks its stored params as --param values are; --help after the
-- script lists them.
-- run: defaults, with the required param given
-- args: {script} --param day=2024-02-29
-- stderr: verify: Success
-- run: good values of every type
-- args: {script} --param n=10 --param ratio=2.5 --param label=x=y --param on=NO --param day=2000-02-29 --param mode=full
-- env: EXPECT=overrides
-- stderr: verify: Success
-- run: a whole number written as a float is an integer
-- args: {script} --param day=2024-02-29 --param n=3.0
-- env: EXPECT=three
-- stderr: verify: Success
-- run: required param missing
-- args: {script}
-- exit: 2
-- stderr: flow 'typed': parameter 'day' is required \(a calendar date YYYY-MM-DD\) and has no default: give it with --param day=VALUE
-- not-stderr: Running
-- run: integer below its minimum
-- args: {script} --param day=2024-02-29 --param n=0
-- exit: 2
-- stderr: flow 'typed': parameter 'n' must be an integer >= 1 and <= 10, got '0'
-- not-stderr: Running
-- run: integer above its maximum
-- args: {script} --param day=2024-02-29 --param n=11
-- exit: 2
-- stderr: parameter 'n' must be an integer >= 1 and <= 10, got '11'
-- run: integer that is not whole
-- args: {script} --param day=2024-02-29 --param n=3.7
-- exit: 2
-- stderr: parameter 'n' must be an integer >= 1 and <= 10, got '3.7'
-- run: number that is not one
-- args: {script} --param day=2024-02-29 --param ratio=lots
-- exit: 2
-- stderr: parameter 'ratio' must be a finite number >= 0.5, got 'lots'
-- run: number below its minimum
-- args: {script} --param day=2024-02-29 --param ratio=0.25
-- exit: 2
-- stderr: parameter 'ratio' must be a finite number >= 0.5, got '0.25'
-- run: boolean that is not a word it knows
-- args: {script} --param day=2024-02-29 --param on=maybe
-- exit: 2
-- stderr: parameter 'on' must be true or false \(true/false, yes/no, on/off, 1/0, in any case\), got 'maybe'
-- run: date that is not a calendar date
-- args: {script} --param day=2023-02-29
-- exit: 2
-- stderr: parameter 'day' must be a calendar date YYYY-MM-DD, got '2023-02-29'
-- run: date in another form
-- args: {script} --param day=29/02/2024
-- exit: 2
-- stderr: parameter 'day' must be a calendar date YYYY-MM-DD, got '29/02/2024'
-- run: enum value not among the choices
-- args: {script} --param day=2024-02-29 --param mode=FULL
-- exit: 2
-- stderr: parameter 'mode' must be one of 'full', 'delta', got 'FULL'
-- run: --help after the script lists the params
-- args: {script} --help
-- stdout: ^Usage: flowlua
-- stdout: Flow 'typed' params \(--param NAME=VALUE\):
-- stdout: \n  day    date \(YYYY-MM-DD\), required\n  label  string, default "none"\n  mode   enum, default "delta", one of full, delta\n  n      integer, default 5, >= 1 and <= 10\n  on     boolean, default true\n  plain  integer, default 7\n  ratio  number, default 1, >= 0.5\n
-- not-stdout: Options:
-- no-file: .flowlua
-- run: --help before the script is the general usage
-- args: --help {script}
-- stdout: Options:
-- not-stdout: Flow 'typed'
-- run: check builds the flow without its required param
-- args: check {script}
-- stdout: ok: flow 'typed'
-- run: check refuses a --param the flow refuses
-- args: check {script} --param n=0
-- exit: 2
-- stderr: parameter 'n' must be an integer >= 1 and <= 10, got '0'
-- run: a resume runs with the typed params stored for the run
-- before: 1 {script} --param day=2024-03-01 --param n=7 --param mode=full
-- args: --resume last {script}
-- env: EXPECT=resumed
-- stderr: verify: Success
-- run: a resume refuses a stored param the flow now refuses
-- before: 1 {script} --param day=2024-03-01 --param n=7
-- args: --resume last {script}
-- env: TIGHTEN=1
-- exit: 2
-- stderr: cannot resume run [0-9a-f-]+: flow 'typed': its stored parameter 'n' must be an integer >= 8 and <= 10, got '7'
-- not-stderr: verify: Success
local flow = require "flowlua"
local check = require "lib.check"

-- TIGHTEN: the first run (which fails) leaves a file that raises n's
-- minimum for the resume, as an edited script would.
local tightened = io.open("tightened") ~= nil

local verify = flow.task("verify", function(p)
  local expect = os.getenv("EXPECT")
  if expect == "resumed" or os.getenv("TIGHTEN") then
    local first = io.open("ran-once") == nil
    if first then
      assert(io.open("ran-once", "w")):close()
      if os.getenv("TIGHTEN") then assert(io.open("tightened", "w")):close() end
      error("the first run fails, for a resume")
    end
  end
  if expect == "overrides" then
    check.eq(p.n, 10, "n")
    check.eq(p.ratio, 2.5, "ratio")
    check.eq(p.label, "x=y", "label")
    check.eq(p.on, false, "on (NO, in capitals)")
    check.eq(p.day, "2000-02-29", "day (a leap day of a leap century)")
    check.eq(p.mode, "full", "mode")
  elseif expect == "resumed" then
    check.eq(p.n, 7, "n, as stored")
    check.eq(p.day, "2024-03-01", "day, as stored")
    check.eq(p.mode, "full", "mode, as stored")
  else
    check.eq(p.n, expect == "three" and 3 or 5, "n")
    check.eq(p.ratio, 1, "ratio")
    check.eq(p.label, "none", "label")
    check.eq(p.on, true, "on")
    check.eq(p.day, "2024-02-29", "day")
    check.eq(p.mode, "delta", "mode")
  end
  check.eq(math.type(p.n), "integer", "n is an integer")
  check.eq(type(p.day), "string", "a date reaches the body as its string")
  check.eq(p.plain, 7, "a plain default beside typed ones")
end)

return flow.define("typed", {
  params = {
    n = flow.param.int(tightened and 8 or 5, { min = tightened and 8 or 1, max = 10 }),
    ratio = flow.param.number(1, { min = 0.5 }),
    label = flow.param.string("none"),
    on = flow.param.bool(true),
    day = flow.param.date(),
    mode = flow.param.enum({ "full", "delta" }, "delta"),
    plain = 7,
  },
}, function(p)
  verify(p)
end)
