-- --param values are converted to the type of their defaults.
-- run: defaults
-- stderr: verify: Success
-- run: overrides
-- args: --param n=42 --param ratio=0.5 --param name=x=y --param on=false --param list=[1,2,3] {script}
-- env: EXPECT=overrides
-- stderr: verify: Success
-- run: options after the script and --opt=value form
-- args: {script} --param=n=42 --param ratio=0.5 --param name=x=y --param on=no --param list=[1,2,3]
-- env: EXPECT=overrides
-- stderr: verify: Success
-- run: unknown parameter
-- args: --param nope=1 {script}
-- exit: 2
-- stderr: flow 'params' has no parameter 'nope' \(its parameters: .*n.*\)
-- not-stderr: Running
-- run: not a number
-- args: --param n=abc {script}
-- exit: 2
-- stderr: parameter 'n' must be an integer \(its default is 1\), got 'abc'
-- run: not a boolean
-- args: --param on=maybe {script}
-- exit: 2
-- stderr: parameter 'on' must be true or false \(true/false, yes/no, on/off, 1/0, in any case\), got 'maybe'
-- run: not JSON
-- args: --param list={nope {script}
-- exit: 2
-- stderr: parameter 'list' must be a JSON object or array, got '\{nope' \(json.decode: .*line 1, column 2
-- run: JSON that is not a table
-- args: --param list=5 {script}
-- exit: 2
-- stderr: parameter 'list' must be a JSON object or array, got '5' \(not a table\)
-- run: an integer default refuses a fraction
-- args: --param n=3.7 {script}
-- exit: 2
-- stderr: parameter 'n' must be an integer \(its default is 1\), got '3.7'
-- not-stderr: Running
-- run: a whole number written as a float is an integer
-- args: --param n=42.0 --param ratio=0.5 --param name=x=y --param on=false --param list=[1,2,3] {script}
-- env: EXPECT=overrides
-- stderr: verify: Success
-- run: boolean words in any case
-- args: --param on=OFF {script}
-- env: EXPECT=off
-- stderr: verify: Success
-- run: boolean words in any case, yes
-- args: --param on=Yes {script}
-- stderr: verify: Success
-- run: missing equals sign
-- args: --param n {script}
-- exit: 2
-- stderr: --param expects NAME=VALUE, got 'n'
local flow = require "flowlua"
local check = require "lib.check"

local verify = flow.task("verify", function(p)
  if os.getenv("EXPECT") == "overrides" then
    check.eq(p.n, 42, "n")
    check.eq(math.type(p.n), "integer", "n is an integer")
    check.eq(p.ratio, 0.5, "ratio")
    check.eq(p.name, "x=y", "name keeps everything after the first '='")
    check.eq(p.on, false, "on")
    check.list(p.list, { 1, 2, 3 }, "list")
    check.eq(math.type(p.list[1]), "integer", "JSON integers in a table param are integers")
  elseif os.getenv("EXPECT") == "off" then
    check.eq(p.on, false, "on=OFF")
  else
    check.eq(p.n, 1, "n")
    check.eq(p.name, "default", "name")
    check.eq(p.on, true, "on")
    check.eq(#p.list, 0, "list")
  end
end)

return flow.define("params", {
  params = { n = 1, ratio = 1.0, name = "default", on = true, list = {} },
}, function(p)
  verify(p)
end)
