-- A typed param defined wrongly fails the script's load (exit 2) with a
-- message naming the function and what is wrong.
-- run: a default its own bounds refuse
-- env: CASE=below
-- exit: 2
-- stderr: flow.param.int: the default must be an integer >= 1, got 0
-- run: an integer default that is not whole
-- env: CASE=fraction
-- exit: 2
-- stderr: flow.param.int: the default must be an integer, got 2.5
-- run: a bound that is not a number
-- env: CASE=bound
-- exit: 2
-- stderr: flow.param.number: option 'min' must be a finite number, got string
-- run: min above max
-- env: CASE=minmax
-- exit: 2
-- stderr: flow.param.int: option 'min' is greater than 'max'
-- run: an unknown option
-- env: CASE=option
-- exit: 2
-- stderr: flow.param.int: unknown option 'minimum'
-- run: an enum default that is not a choice
-- env: CASE=enum
-- exit: 2
-- stderr: flow.param.enum: the default must be one of 'full', 'delta', got 'all'
-- run: enum choices that are not strings
-- env: CASE=choices
-- exit: 2
-- stderr: flow.param.enum: choice 2 must be a string, got number
-- run: an empty list of choices
-- env: CASE=nochoices
-- exit: 2
-- stderr: the choices must be a non-empty list of strings
-- run: a date default that is not a date
-- env: CASE=date
-- exit: 2
-- stderr: flow.param.date: the default must be a calendar date YYYY-MM-DD, got '2024-02-30'
-- run: a bool default that is a string
-- env: CASE=bool
-- exit: 2
-- stderr: flow.param.bool: the default must be true or false .*, got 'yes'
-- run: a string param given two arguments
-- env: CASE=extra
-- exit: 2
-- stderr: flow.param.string takes one argument, the default \(nil: required\)
local flow = require "flowlua"
local P = flow.param

local cases = {
  below = function() return P.int(0, { min = 1 }) end,
  fraction = function() return P.int(2.5) end,
  bound = function() return P.number(1, { min = "0" }) end,
  minmax = function() return P.int(5, { min = 10, max = 1 }) end,
  option = function() return P.int(5, { minimum = 1 }) end,
  enum = function() return P.enum({ "full", "delta" }, "all") end,
  choices = function() return P.enum({ "full", 2 }) end,
  nochoices = function() return P.enum({}) end,
  date = function() return P.date("2024-02-30") end,
  bool = function() return P.bool("yes") end,
  extra = function() return P.string("a", "b") end,
}

return flow.define("bad", {
  params = { x = cases[os.getenv("CASE")]() },
}, function() end)
